"""Country and place evidence against namesakes: a similar name elsewhere is another party, a branch is not."""

from __future__ import annotations

import pytest

from gpulease.compliance.index import COUNTRY_DIFFERS, ScreeningIndex
from gpulease.compliance.screening import screen_name


@pytest.mark.parametrize(
    ("name", "country", "listed"),
    [
        ("Hana Bank", "KR", "HANA ELECTRONICS"),  # South Korean bank, DPRK electronics firm
        ("Wagner Equipment Co.", "US", "WAGNER GROUP"),
        ("SINA Corporation", "CN", "SINA SHIPPING COMPANY LIMITED"),  # Chinese portal, Iranian shipper
    ],
)
def test_a_similar_name_in_another_country_is_cleared_with_the_reason(
    index: ScreeningIndex, name: str, country: str, listed: str
) -> None:
    result = screen_name(index, name, country)
    assert result.decision == "cleared"
    hits = [h for h in index.screen(name, country=country, min_score=0.0) if h.matched_name == listed]
    assert hits, "the listed name is still found, only scored lower"
    differs = [f for f in hits[0].features if f.name == "different country"]
    assert differs and differs[0].points == COUNTRY_DIFFERS
    assert "more likely another party" in differs[0].detail


def test_the_same_name_in_another_country_is_not_marked_down(index: ScreeningIndex) -> None:
    # The listed name itself (score ≥ 98) stays a hit wherever the customer says it is.
    result = screen_name(index, "Wagner Group", "US")
    assert result.decision != "cleared"
    assert all(f.points == 0.0 for h in result.hits for f in h.hit.features if f.name == "different country")


def test_a_branch_abroad_keeps_its_parents_name_and_is_not_marked_down(index: ScreeningIndex) -> None:
    # Foreign subsidiaries are in another country by their nature: a place word the listed name lacks.
    result = screen_name(index, "Sberbank (Switzerland) AG", "CH")
    assert result.decision != "cleared"
    assert any("SBERBANK" in h.hit.name.upper() for h in result.hits)


def test_a_country_named_by_the_sanctions_programme_counts_as_the_partys(index: ScreeningIndex) -> None:
    # Cubana de Aviación's listed addresses are all outside Cuba; the CUBA programme places it there.
    result = screen_name(index, "Cubana de Aviación", "CU")
    assert any(h.hit.name == "EMPRESA CUBANA DE AVIACION" for h in result.hits if h.ruling.outcome != "cleared")


def test_mainland_china_and_hong_kong_are_one_place(index: ScreeningIndex) -> None:
    result = screen_name(index, "Semiconductor Manufacturing International Corp", "HK")
    assert result.decision != "cleared"


@pytest.mark.parametrize(
    ("name", "country"),
    [
        ("Kuwait Investment Authority", "KW"),  # Libyan Investment Authority is listed
        ("Qatar Investment Authority", "QA"),
        ("Guangzhou Automobile Group Co., Ltd.", "CN"),  # Minsk Automobile Plant is listed
    ],
)
def test_a_listed_place_replaced_by_another_is_no_affiliate(index: ScreeningIndex, name: str, country: str) -> None:
    result = screen_name(index, name, country)
    assert result.decision == "cleared", result.reasons
    assert not any(h.hit.affiliate for h in result.hits)


def test_a_branch_keeping_the_listed_place_is_still_an_affiliate(index: ScreeningIndex) -> None:
    result = screen_name(index, "Huawei Technologies USA Inc.", "US")
    assert result.decision == "review"
    assert any(h.hit.affiliate and "affiliate" in h.ruling.rule for h in result.hits)


@pytest.mark.parametrize(
    ("name", "country"),
    [
        ("China Mobile International (USA) Inc.", "US"),
        ("China Mobile International Limited", "HK"),
        ("China Telecom (Americas) Corporation", "US"),
        ("ChinaTelecom Global Limited", "HK"),  # the listed words joined
    ],
)
def test_a_listed_name_of_common_words_and_its_place_plus_structure_words_is_a_possible_affiliate(
    index: ScreeningIndex, name: str, country: str
) -> None:
    result = screen_name(index, name, country)
    assert result.decision == "review"
    hit = next(h for h in result.hits if h.hit.affiliate)
    assert hit.hit.name.startswith(("CHINA MOBILE", "CHINA TELECOM"))
    assert "possible affiliate" in hit.ruling.rule and "not a blocking list" in hit.ruling.rule
    assert any("affiliate" in r for r in hit.hit.reasons)


def test_common_words_without_a_place_plus_a_place_are_no_affiliate(index: ScreeningIndex) -> None:
    # "Industrial Bank" is listed; "Industrial Bank of Korea" is any industrial bank of Korea.
    result = screen_name(index, "Industrial Bank of Korea", "KR")
    assert not any(h.hit.affiliate for h in result.hits)
    assert result.decision == "cleared"


def test_one_shared_word_of_a_long_listed_name_is_no_affiliate(index: ScreeningIndex) -> None:
    # "Industrial Resources General Trading" is listed; China Resources shares one word of it.
    result = screen_name(index, "China Resources (Holdings) Company Limited", "CN")
    assert not any(h.hit.affiliate for h in result.hits)
    assert result.decision == "cleared"


def test_chinese_sector_words_are_read_as_words_not_brands(index: ScreeningIndex) -> None:
    # 上海电气 (Shanghai Electric) and the listed 航天电器 (Aerospace Electrical) share no name.
    assert screen_name(index, "上海电气集团股份有限公司", "CN").decision == "cleared"


def test_a_similar_name_of_a_listed_individual_is_reviewed_as_a_possible_namesake(index: ScreeningIndex) -> None:
    result = screen_name(index, "Kim Song", "KR")
    assert result.decision == "review"
    asking = [h for h in result.hits if h.ruling.outcome != "cleared"]
    assert asking and all("possibly a namesake" in h.ruling.rule for h in asking)


@pytest.mark.parametrize(
    ("name", "listed"),
    [
        ("Hua-wei Chi-shu Yu-hsien Kung-ssu", "Huawei Technologies Co., Ltd."),
        ("Chung-kuo Hang-k'ung Kung-yeh Chi-t'uan Yu-hsien Kung-ssu", "AVIATION INDUSTRY CORPORATION OF CHINA, LTD."),
    ],
)
def test_wade_giles_legal_names_find_the_listed_party(index: ScreeningIndex, name: str, listed: str) -> None:
    result = screen_name(index, name, "CN")
    assert result.decision != "cleared"
    assert any(h.hit.name == listed for h in result.hits if h.ruling.outcome != "cleared")


def test_a_listed_name_doing_business_as_another_is_two_names(index: ScreeningIndex) -> None:
    # The DPL lists "SIBERIAN AIRLINES D/B/A S7 AIRLINES": each part is a name of the party.
    for name in ("Siberian Airlines", "S7 Airlines"):
        result = screen_name(index, name, "RU")
        asking = [h.hit.name for h in result.hits if h.ruling.outcome != "cleared"]
        assert "SIBERIAN AIRLINES D/B/A S7 AIRLINES" in asking


def test_an_original_script_name_in_brackets_is_a_name_of_its_own(index: ScreeningIndex) -> None:
    # The UN lists "Hay’at Tahrir al-Sham (HTS) (هيئة تحرير الشام" as one alias of Al-Nusrah Front.
    result = screen_name(index, "هيئة تحرير الشام", "SY")
    assert any(h.hit.list == "UN" and h.ruling.outcome != "cleared" for h in result.hits)


def test_in_is_a_filler_word(index: ScreeningIndex) -> None:
    result = screen_name(index, "National Supercomputing Center in Shenzhen", "CN")
    assert result.decision != "cleared"
