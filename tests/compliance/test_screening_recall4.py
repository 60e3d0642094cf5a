"""Classes of screening error fixed in the screen-recall4 round (issue 9), a positive and a negative case each.

Each name here is written for the test (not taken from the evaluation set) and was screened wrongly before.
"""

from __future__ import annotations

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.model import ListEntry
from gpulease.compliance.normalize import normalize_name
from gpulease.compliance.romanize import hangul_words
from gpulease.compliance.screening import screen_name
from tests.compliance.screening_checks import found

DAEDONG = "SDN-16085"  # DAEDONG CREDIT BANK
TANGUN = "SDN-11599"  # KOREA TANGUN TRADING CORPORATION
RYONHA = "SDN-9527"  # KOREA RYONHA MACHINERY JOINT VENTURE CORPORATION
ILSIM = "SDN-19508"  # ILSIM INTERNATIONAL BANK
DAESONG = "SDN-12312"  # KOREA DAESONG BANK


def test_a_one_word_name_equal_to_the_query_is_a_candidate_among_many_one_letter_away(index: ScreeningIndex) -> None:
    # "tbank" is one deletion from "bank", under which hundreds of listed names are: the listed "TBANK" tied
    # with all of them and lost the tie to the lightest. A synthetic entry, since the lists carry no such name.
    entry = ListEntry(id="T-1", list="SDN", list_name="test", type="entity", name="TBANK")
    extended = ScreeningIndex.build((*index.entries, entry))
    for name in ("ТБанк", "TBank", "Tbank"):
        assert found(extended, name, "RU", "T-1"), name


def test_an_exact_word_does_not_pull_in_names_of_its_neighbours(index: ScreeningIndex) -> None:
    entry = ListEntry(id="T-1", list="SDN", list_name="test", type="entity", name="TBANK")
    extended = ScreeningIndex.build((*index.entries, entry))
    for name in ("T Bank", "Tank Bank", "Bank"):
        assert not any(h.entry_id == "T-1" for h in extended.screen(name, "US")), name


def test_korean_company_words_in_hangul_read_as_the_lists_translate_them() -> None:
    assert hangul_words("조선단군무역회사") == "korea tangun trading company"
    assert hangul_words("대동신용은행") == "taedong credit bank"
    assert normalize_name("조선련하기계합영회사").strong == ("korea", "ryonha", "machinery", "joint", "venture")
    # No company word: the run is romanised whole, as before.
    assert hangul_words("고려항공") == "goryeohanggong"
    assert hangul_words("삼성전자") == "samseongjeonja"


def test_a_listed_north_korean_company_written_in_hangul_is_found(index: ScreeningIndex) -> None:
    for name, entry_id in (
        ("대동신용은행", DAEDONG),
        ("조선단군무역회사", TANGUN),
        ("조선련하기계합영회사", RYONHA),
        ("일심국제은행", ILSIM),
        ("조선 대성 은행", DAESONG),
        ("원자력총국", "SDN-11598"),  # GENERAL BUREAU OF ATOMIC ENERGY
    ):
        assert found(index, name, "KP", entry_id), name


def test_south_korean_companies_in_hangul_stay_cleared(index: ScreeningIndex) -> None:
    # Company words split off leave a name; a name unlike any listed one still clears.
    names = ["신한은행", "국민은행", "한국산업은행", "대한해운", "금호석유화학", "삼성전자", "조선일보", "조선호텔"]
    names += ["원자력안전위원회", "한국원자력연구원"]  # South Korea's nuclear safety commission and research institute
    for name in names:
        assert screen_name(index, name, "KR").decision == "cleared", name


VALFAJR = "SDN-25439"
ZAGROS_PETROCHEMICAL = "SDN-29422"
XPCC = "SDN-29299"  # XINJIANG PRODUCTION AND CONSTRUCTION CORPS


def test_persian_words_of_trade_read_as_the_english_the_lists_use(index: ScreeningIndex) -> None:
    assert normalize_name("پتروشیمی زاگرس").strong == ("petrochemical", "zgrs")
    assert found(index, "پتروشیمی زاگرس", "IR", ZAGROS_PETROCHEMICAL)
    assert found(index, "کشتیرانی والفجر", "IR", VALFAJR)


def test_one_abjad_word_beside_common_words_is_still_matched_by_consonants_only(index: ScreeningIndex) -> None:
    # "university" is a common word: Amirkabir University is not Amir Kabir Petrochemical, nor Tehran University a
    # listed party with t-h-r-n in its name.
    assert screen_name(index, "دانشگاه صنعتی امیرکبیر", "IR").decision == "cleared"
    assert screen_name(index, "دانشگاه تهران", "IR").decision == "cleared"
    assert screen_name(index, "صنایع غذایی بهروز", "IR").decision == "cleared"


def test_a_second_name_of_a_listed_state_body_is_an_alias(index: ScreeningIndex) -> None:
    # The XPCC is also China Xinjian Group (中国新建集团公司): an enrichment alias with its source.
    for name in ("中国新建集团公司", "China Xinjian Group"):
        assert found(index, name, "CN", XPCC), name
    assert screen_name(index, "Xinjiang Tianshan Cement Group", "CN").decision == "cleared"
