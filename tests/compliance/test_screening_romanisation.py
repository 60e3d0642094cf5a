"""Classes of screening error fixed in the screen-recall3 round (issue 9): other romanisations of listed names.

Each name here is written for the test (romanised with the published schemes, not taken from the evaluation set),
and each class has a positive and a negative case.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.normalize import normalize_name
from gpulease.compliance.screening import screen_name
from tests.compliance.screening_checks import found

GAZPROM = "SSI-17250"  # PUBLIC JOINT STOCK COMPANY GAZPROM
PROMSVYAZBANK = "SDN-34656"
UAC = "SDN-36431"  # PUBLIC JOINT STOCK COMPANY UNITED AIRCRAFT CORPORATION
ROSNEFT = "SSI-17022"  # OPEN JOINT-STOCK COMPANY ROSNEFT OIL COMPANY
PRIGOZHIN = "SDN-21171"
ATOMFLOT = "SDN-43111"  # FEDERAL STATE UNITARY ENTERPRISE ATOMFLOT


def test_russian_legal_forms_are_legal_forms_in_every_romanisation() -> None:
    # ПАО spelt out as BGN/PCGN (-oye), GOST 7034 (c, shh), GOST 52535 (tc), ISO 9 (š), and ООО spelt out.
    for name in (
        "Publichnoye aktsionernoye obshchestvo «Sberbank Rossii»",
        "Publichnoe akcionernoe obshhestvo «Sberbank Rossii»",
        "Publichnoe aktcionernoe obshchestvo «Sberbank Rossii»",
        "Publičnoe akcionernoe obščestvo «Sberbank Rossii»",
    ):
        assert normalize_name(name).strong == ("sberbank", "rosy"), name
    assert normalize_name("Obshchestvo s ogranichennoy otvetstvennost'yu «Vega»").strong == ("vega",)


def test_a_listed_company_with_its_legal_form_spelt_out_is_found(index: ScreeningIndex) -> None:
    assert found(index, "Publichnoe akcionernoe obshhestvo «Gazprom»", "RU", GAZPROM)
    assert found(index, "Atomflot", "RU", ATOMFLOT)  # FSUE (ФГУП) is a legal form too


def test_a_spelt_out_legal_form_does_not_make_an_unlisted_company_listed(index: ScreeningIndex) -> None:
    assert screen_name(index, "Publichnoe akcionernoe obshhestvo «Ozon»", "RU").decision == "cleared"
    assert screen_name(index, "Obshchestvo s ogranichennoy otvetstvennostyu «VkusVill»", "RU").decision == "cleared"


def test_soft_and_hard_signs_inside_a_word_join_it(index: ScreeningIndex) -> None:
    # ISO 9 ʹ and ʺ, BGN/PCGN ’ and ”, ALA-LC's ASCII " and BGN/PCGN's middle dot: one word, not two.
    assert normalize_name("Promsvjazʹbank").strong == ("promsvjazbank",)
    assert normalize_name("Ob”yedinёnnaya").strong == ("obyedinenaya",)
    assert normalize_name('Ob"edinennaia').strong == ("obedinenaya",)
    assert normalize_name("V·eB.RF").strong == ("vebrf",)
    assert found(index, "Promsvjazʹbank", "RU", PROMSVYAZBANK)
    assert found(index, "PAO «Obʺedinënnaja aviastroitelʹnaja korporacija»", "RU", UAC)


def test_a_quote_between_words_still_separates_them() -> None:
    assert normalize_name('Bank "Rossiya"').strong == ("bank", "rosiya")
    assert normalize_name('«Alfa» "Bank"').strong == ("alfa", "bank")


def test_french_and_ala_lc_spellings_of_russian_names(index: ScreeningIndex) -> None:
    assert found(index, "Prigojine Evguenii Viktorovitch", "RU", PRIGOZHIN)  # j as zh, gu, -ine, -itch
    assert found(index, "Publichnoe aktsionernoe obshchestvo «Neftianaia kompaniia «Rosneft'»", "RU", ROSNEFT)


def test_french_looking_names_that_are_no_russian_party_stay_cleared(index: ScreeningIndex) -> None:
    for name in ("Guerin Industries", "Setchine Partners", "Jeanne Marchand SA", "Sobianine Consulting"):
        assert screen_name(index, name, "FR").decision == "cleared", name


ANSAR_BANK = "SDN-12478"
HESA = "SDN-11195"  # IRAN AIRCRAFT MANUFACTURING INDUSTRIAL COMPANY


def test_persian_and_arabic_legal_forms_weigh_like_legal_forms(index: ScreeningIndex) -> None:
    # شرکت … (سهامی عام): "… company (public joint-stock)", as an Iranian company writes its registered name.
    assert normalize_name("شرکت بانک انصار (سهامی عام)").strong == ("bnk", "nsr")
    assert found(index, "شرکت بانک انصار (سهامی عام)", "IR", ANSAR_BANK)
    assert found(index, "شرکت صنایع هواپیماسازی ایران (سهامی عام)", "IR", HESA)


def test_a_persian_legal_form_does_not_make_an_unlisted_company_listed(index: ScreeningIndex) -> None:
    for name in ("شرکت کاله (سهامی عام)", "شرکت دیجی کالا (سهامی خاص)", "شرکت فیلیمو با مسئولیت محدود"):
        assert screen_name(index, name, "IR").decision == "cleared", name


AQI = "UN-QDe.115"  # AL-QAIDA IN IRAQ, the UN's entry for what OFAC lists as ISIL
HIZBALLAH = "SDN-4697"
ISLAMIC_JIHAD_GROUP_UN = "UN-QDe.119"  # the Uzbek group, not Hizballah's "Islamic Jihad"
HUAWEI_EL = "EL-supplement-009"


def test_a_party_on_two_lists_carries_the_names_of_both(index: ScreeningIndex) -> None:
    # OFAC lists ISIL with the alias AL-QAIDA IN IRAQ, the UN's primary name for it: one party, and the UN
    # entry is found under OFAC's names too, saying where the name comes from.
    hit = next(h.hit for h in screen_name(index, "Islamic State", "IQ").hits if h.hit.entry_id == AQI)
    assert hit.score >= 80
    assert hit.matched_kind == "name of the same party on SDN (SDN-8759)"
    assert any("name of the same party on SDN" in r for r in hit.reasons)


def test_parties_that_only_share_an_alias_or_a_legal_form_stay_apart(index: ScreeningIndex) -> None:
    names = {n.name for n in index.names if index.entries[n.entry].id == ISLAMIC_JIHAD_GROUP_UN}
    assert "HIZBALLAH" not in names  # Hizballah's alias "ISLAMIC JIHAD" is not the group "ISLAMIC JIHAD GROUP"
    # The CMIC entry of Huawei Technologies also names its parent; the Entity List's entry does not get it.
    names = {n.name for n in index.names if index.entries[n.entry].id == HUAWEI_EL}
    assert "HUAWEI INVESTMENT & HOLDING CO LTD" not in names


def test_a_place_in_brackets_in_an_original_script_name_is_no_alias(index: ScreeningIndex) -> None:
    # UN: "華信船務(香港)有限公司" (Huaxin Shipping (Hong Kong)): 香港 alone is Hong Kong, not the company.
    assert screen_name(index, "香港", "HK").decision == "cleared"
    assert screen_name(index, "華信船務(香港)有限公司", "HK").decision != "cleared"


GARANTEX = "SDN-36025"  # GARANTEX EUROPE OU


def test_a_brand_listed_with_an_estonian_legal_form_or_a_sector_word_is_the_brand(index: ScreeningIndex) -> None:
    # OÜ is Estonia's limited company; "aero", "zavod" (plant), "kombinat", "birzha" (exchange) say the trade.
    assert found(index, "Garantex", "RU", GARANTEX)
    assert normalize_name("Garantex Europe OU").weak == ("ou",)


def test_a_sector_word_or_legal_form_shared_with_a_listed_name_is_no_match(index: ScreeningIndex) -> None:
    for name, country in (("Bolt Technology OU", "EE"), ("Avia Solutions Group", "LT"), ("Garant Europe OU", "EE")):
        assert screen_name(index, name, country).decision == "cleared", name


RESALAT = "SDN-17156"  # GHARZOLHASANEH RESALAT BANK


def test_a_persian_zero_width_non_joiner_typed_as_a_space_is_the_same_name(index: ScreeningIndex) -> None:
    # The enrichment alias بانک قرض‌الحسنه رسالت (with the ZWNJ) and the same typed with a space.
    assert found(index, "بانک قرض الحسنه رسالت", "IR", RESALAT)
    assert found(index, "بانک قرض‌الحسنه رسالت", "IR", RESALAT)


def test_a_persian_name_sharing_only_the_compound_stays_cleared(index: ScreeningIndex) -> None:
    assert screen_name(index, "صندوق قرض الحسنه امام رضا", "IR").decision == "cleared"


EGHTESAD_NOVIN = "SDN-13131"
QODS_FORCE = "SDN-10465"


def test_persian_romanisation_variants_of_q_and_gh(index: ScreeningIndex) -> None:
    assert found(index, "Eqtesad Novin Bank", "IR", EGHTESAD_NOVIN)  # ق as q, the list writes gh
    assert found(index, "Ghods Force", "IR", QODS_FORCE)  # the list writes Qods


def test_english_words_with_q_or_gh_stay_cleared(index: ScreeningIndex) -> None:
    for name, country in (("Qualcomm", "US"), ("Google LLC", "US"), ("Ghods Trading GmbH", "DE"), ("Noor Bank", "AE")):
        assert screen_name(index, name, country).decision == "cleared", name


def test_a_misspelt_or_declined_russian_legal_form_is_still_a_legal_form() -> None:
    # "Akcionernyj Bank" (joint-stock bank) and a typo in a spelt-out legal form, as in "Limtied".
    assert normalize_name("Akcionernyj Bank Rossiya").weak == ("akcionernyj",)
    assert normalize_name("Aktsionenoe obshchestvo Proton").strong == ("proton",)


def test_a_word_that_only_starts_like_a_russian_legal_form_is_a_word() -> None:
    assert normalize_name("Obshchepit Trading").strong == ("obshepit", "trading")  # public catering


def test_russian_names_in_fifteen_romanisation_schemes_are_found(index: ScreeningIndex) -> None:
    # data/russian_romanisations.csv: every Cyrillic enrichment alias and 44 Cyrillic names of listed people
    # written for the probe, romanised with 15 published schemes (iuliia 0.13: BGN/PCGN, ALA-LC, BS 2979, GOST
    # 7034/779/52290/52535, ICAO 9303, ISO 9, MVD 310 French, scientific, Telegram, Wikipedia, Yandex, Mosmetro).
    # 223 of the 1,446 forms were missed before this round, 35 after (GOST 779's â/û/ŝ, "Azur Eyr", "GROu" ...).
    with (Path(__file__).parent / "data" / "russian_romanisations.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    missed: Counter[str] = Counter()
    for row in rows:
        result = screen_name(index, row["name"], row["country"])
        if result.decision == "cleared" or not any(
            h.hit.score >= 80 and h.hit.list == row["expected_list"] and h.hit.name == row["expected_name"]
            for h in result.hits
        ):
            missed[row["scheme"]] += 1
    assert sum(missed.values()) <= 0.03 * len(rows), missed
    for scheme in ("bgn_pcgn", "ala_lc_alt", "icao_doc_9303", "scientific", "gost_7034", "telegram"):
        assert missed[scheme] <= 5, (scheme, missed)
