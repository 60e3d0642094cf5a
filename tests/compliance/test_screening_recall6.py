"""Classes of screening error fixed in the screen-recall6 round (issue 9), a positive and a negative case each.

Each name here is written for the test (not taken from the evaluation set or benchmarks' dev_extra.csv) and was
screened wrongly before.
"""

from __future__ import annotations

import csv
from pathlib import Path

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.normalize import canonical, normalize_name
from gpulease.compliance.screening import screen_name
from tests.compliance.screening_checks import found

ASMA = "SDN-29068"  # AL-ASSAD, Asma
ASAIB = "SDN-28283"  # ASA'IB AHL AL-HAQ
AIO = "SDN-9348"  # AEROSPACE INDUSTRIES ORGANIZATION
MOIS = "SDN-12111"  # IRANIAN MINISTRY OF INTELLIGENCE AND SECURITY
HIKVISION_EL = "EL-supplement-004"
LUKOIL = "SSI-17248"  # LUKOIL OAO


def test_the_arabic_article_is_split_off_as_the_lists_write_it(index: ScreeningIndex) -> None:
    assert normalize_name("حركة النجباء").strong == ("hrkh", "al", "njb")
    assert found(index, "أسماء الأسد", "SY", ASMA)
    assert found(index, "عصائب أهل الحق", "IQ", ASAIB)


def test_persian_words_beginning_with_al_keep_it(index: ScreeningIndex) -> None:
    # ال begins Persian words (البرز Alborz, الماس almas): a Persian run, or one word without an Arabic-only letter.
    assert normalize_name("البرز").strong == ("lbrz",)
    assert normalize_name("أنصار الله").strong == ("nsr", "llh")  # الله is one word: ANSARALLAH
    assert normalize_name("شرکت الماس").strong == ("lms",)
    # Another family name after the article is another person.
    assert not found(index, "أسماء الحسيني", "SY", ASMA)


def test_romanised_persian_words_of_institutions_read_as_their_english(index: ScreeningIndex) -> None:
    assert normalize_name("Sazeman-e Sanaye-e Hava-Faza").strong == ("organization", "industry", "hava", "faza")
    assert found(index, "Vezarat-e Ettelaat", "IR", MOIS)


def test_a_romanised_ministry_of_something_else_is_not_the_listed_one(index: ScreeningIndex) -> None:
    assert not found(index, "Vezarat-e Behdasht", "IR", MOIS)  # ministry of health
    assert normalize_name("Melli Naft").strong == ("meli", "naft")  # words the lists keep transliterated


def test_a_country_in_its_own_language_is_a_place_word_of_an_affiliate(index: ScreeningIndex) -> None:
    result = screen_name(index, "Hikvision Espana S.L.", "ES")
    assert result.decision == "review"
    assert any(h.hit.entry_id == HIKVISION_EL and h.hit.score >= 80 for h in result.hits)


def test_a_countrys_own_name_alone_does_not_make_a_listed_party(index: ScreeningIndex) -> None:
    assert screen_name(index, "Telecom Italia S.p.A.", "IT").decision == "cleared"


def test_bulgarian_legal_forms_weigh_as_legal_forms(index: ScreeningIndex) -> None:
    assert normalize_name("Lukoil Neftochim EOOD").weak == ("eood",)
    assert found(index, "Lukoil Bulgaria EAD", "BG", LUKOIL)
    assert screen_name(index, "Shell Bulgaria EAD", "BG").decision == "cleared"


SMIC_EL = "EL-supplement-015"  # Semiconductor Manufacturing International Corporation


def test_a_listed_name_of_common_words_with_units_listed_by_place_takes_another_place(index: ScreeningIndex) -> None:
    # The lists name SMIC's units "Semiconductor Manufacturing International (<city>) Corporation" in three cities;
    # the same name with a fourth city is a unit too (review as a possible affiliate), not a bank of common words.
    result = screen_name(index, "Semiconductor Manufacturing International (Chengdu) Corporation", "CN")
    assert result.decision == "review"
    assert any(h.hit.entry_id == SMIC_EL and "affiliate" in h.ruling.rule for h in result.hits)
    assert ("semiconductor", "manufacturing", "international") in index._placed_common_names


def test_a_listed_name_of_common_words_plus_a_place_is_otherwise_any_firm_of_that_place(index: ScreeningIndex) -> None:
    assert screen_name(index, "Industrial Bank (Shanghai) Co., Ltd.", "CN").decision == "cleared"
    assert ("industrial", "bank") not in index._placed_common_names  # two words: a kind of bank, not a name


def test_a_listed_three_letter_acronym_that_is_a_pinyin_syllable_is_a_syllable_among_pinyin(
    index: ScreeningIndex,
) -> None:
    # "HUA" is an acronym of Harakat ul-Ansar; in "Hua Hong Semiconductor" it is 华, beside 宏.
    assert screen_name(index, "Huahong Xin Semiconductor (Wuxi) Limited", "CN").decision == "cleared"
    assert screen_name(index, "Hua Hong Semiconductor (Wuxi) Limited", "CN").decision == "cleared"


def test_a_listed_acronym_with_words_of_trade_and_place_is_still_a_possible_affiliate(index: ScreeningIndex) -> None:
    result = screen_name(index, "HUA International Trading", "PK")
    assert result.decision == "review"
    assert any("affiliate" in h.ruling.rule for h in result.hits)


QARD = "SDN-10416"  # AL-QARD AL-HASSAN ASSOCIATION
KHAMENEI = "SDN-26945"  # KHAMENEI, Ali Husseini


def test_arabic_words_of_institutions_read_as_the_english_the_lists_use(index: ScreeningIndex) -> None:
    name = normalize_name("جمعية القرض الحسن")
    assert name.strong[0] == canonical("association")
    assert name.strong[1:] == ("al", "qrd", "al", "hsn")
    assert found(index, "جمعية القرض الحسن", "LB", QARD)


def test_an_arabic_word_of_institution_alone_does_not_make_a_listed_party(index: ScreeningIndex) -> None:
    # A bank (مصرف) or an association (جمعية) of another name is another party.
    assert screen_name(index, "مصرف الراجحي", "SA").decision == "cleared"
    assert screen_name(index, "جمعية الهلال الأحمر", "LB").decision == "cleared"


def test_a_clerical_title_before_a_name_is_not_part_of_it(index: ScreeningIndex) -> None:
    assert normalize_name("Ayatollah Ali Khamenei").weak == ("ayatollah",)
    assert found(index, "Ayatollah Ali Khamenei", "IR", KHAMENEI)


def test_a_clerical_title_does_not_make_another_cleric_a_listed_one(index: ScreeningIndex) -> None:
    assert screen_name(index, "Grand Ayatollah Ali al-Sistani", "IQ").decision == "cleared"


def test_the_development_file_names_listed_entries_and_sources_and_repeats_no_evaluation_row(
    index: ScreeningIndex,
) -> None:
    folder = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "screening_eval"
    with (folder / "dev_extra.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    seen: set[str] = set()
    for name in ("listed.csv", "unlisted.csv"):
        with (folder / name).open(encoding="utf-8") as f:
            seen |= {r["name"].strip().casefold() for r in csv.DictReader(f)}
    primary = {(e.list, e.name) for e in index.entries}
    listed = [r for r in rows if r["expected_list"]]
    assert len(listed) >= 150 and len(rows) - len(listed) >= 100
    for row in rows:
        assert row["source"].strip() and row["country"].isalpha() and len(row["country"]) == 2
        assert row["name"].strip().casefold() not in seen  # new forms only: the halves stay unread
    assert all((r["expected_list"], r["expected_name"]) in primary for r in listed)
    assert len({(r["name"], r["expected_list"]) for r in rows}) == len(rows)
