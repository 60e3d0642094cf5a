"""Screening recall of the screen-recall15 round (issue 9): names a query declares itself ("X (formerly Y)", "X f/k/a
Y", "X d/b/a Y") and the round's enrichment aliases (former names, English names, Hong Kong officials' Chinese names).

Each name here is written for the test (not taken from the evaluation set or benchmarks' dev_extra.csv); each positive
case was cleared before this round.
"""

from __future__ import annotations

import pytest

from gpulease.compliance.index import ScreeningIndex, _declared_names, _korean_person
from gpulease.compliance.screening import screen_name
from tests.compliance.screening_checks import found

ROSTEC = "SDN-17260"  # STATE CORPORATION ROSTEC
OTKRITIE = "SDN-34497"  # PUBLIC JOINT STOCK COMPANY BANK FINANCIAL CORPORATION OTKRITIE
GAZPROM_NEFT = "SSI-17143"  # PUBLIC JOINT STOCK COMPANY GAZPROM NEFT
SBERBANK = "SDN-17018"  # PUBLIC JOINT STOCK COMPANY SBERBANK OF RUSSIA
POLYUS = "SDN-43097"  # PUBLIC JOINT STOCK COMPANY POLYUS
MEHL = "SDN-31517"  # MYANMA ECONOMIC HOLDINGS PUBLIC COMPANY LIMITED
IRISL = "SDN-25396"  # ISLAMIC REPUBLIC OF IRAN SHIPPING LINES
HOUTHIS = "UN-YEe.001"  # THE HOUTHIS
CARRIE_LAM = "SDN-29249"  # LAM, Carrie
TERESA_CHENG = "SDN-29243"  # CHENG, Teresa


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("Acme Holdings (formerly Beta Trading)", ["Beta Trading", "Acme Holdings"]),
        ("Acme Bank f/k/a Beta Bank", ["Acme Bank", "Beta Bank"]),
        ("Acme Air d/b/a Beta", ["Acme Air", "Beta"]),
        ("Acme Corp, formerly Beta Corp", ["Acme Corp", "Beta Corp"]),
        ("Beta Corp, now Acme Corp", ["Beta Corp", "Acme Corp"]),
        ("Acme Ltd [f/k/a Beta Ltd]", ["Beta Ltd", "Acme Ltd"]),
        ("Acme Ltd (ex-Beta Ltd)", ["Beta Ltd", "Acme Ltd"]),
    ],
)
def test_a_query_that_declares_other_names_gives_each(name: str, parts: list[str]) -> None:
    assert _declared_names(name) == parts


@pytest.mark.parametrize(
    "name",
    [
        "Nordic Trading AS",  # a Norwegian legal form, not "trading as"
        "Right Now Media",  # "now" between words, not after a comma
        "Formerly Yours Ltd",  # nothing before the marker
        "Hikvision (Hangzhou)",  # a bracket that is no other name
        "Foo, Extra Bar",  # "ex" only as a word of its own
    ],
)
def test_names_that_only_look_like_declaring_another_give_none(name: str) -> None:
    assert _declared_names(name) == []


def test_a_renamed_party_is_found_under_the_name_it_declares(index: ScreeningIndex) -> None:
    # Each part alone was found before; the whole was cleared, the brackets and markers hiding both names.
    assert found(index, "Rostec Corp. (formerly Russian Technologies)", "RU", ROSTEC)
    assert found(index, "Otkritie Bank f/k/a Nomos-Bank", "RU", OTKRITIE)
    result = screen_name(index, "Rostec Corp. (formerly Russian Technologies)", "RU")
    hit = next(h.hit for h in result.hits if h.hit.entry_id == ROSTEC)
    assert any("the query itself gives for the same party" in reason for reason in hit.reasons)


def test_an_unlisted_firm_that_declares_its_former_name_stays_cleared(index: ScreeningIndex) -> None:
    for name in ("Acme Robotics Inc. (formerly Acme Automation Inc.)", "Example Foods Ltd t/a Example Kitchen"):
        assert screen_name(index, name, "US").decision == "cleared"


@pytest.mark.parametrize(
    ("name", "country", "entry_id"),
    [
        ("Sibneft", "RU", GAZPROM_NEFT),
        ("Nomos-Bank", "RU", OTKRITIE),
        ("Savings Bank of the Russian Federation", "RU", SBERBANK),
        ("Polyus Gold", "RU", POLYUS),
        ("UMEHL", "MM", MEHL),
        ("Arya National Shipping Lines", "IR", IRISL),
        ("Houthi Movement", "YE", HOUTHIS),
        ("林鄭月娥", "HK", CARRIE_LAM),
        ("鄭若驊", None, TERESA_CHENG),
    ],
)
def test_the_rounds_aliases_find_their_parties(index: ScreeningIndex, name: str, country: str, entry_id: str) -> None:
    assert found(index, name, country, entry_id)


def test_a_hong_kong_officials_chinese_name_is_a_review_as_a_possible_namesake(index: ScreeningIndex) -> None:
    result = screen_name(index, "林鄭月娥", "HK")
    assert result.decision == "review"  # a person's name alone, without a date of birth
    # A similar, unlisted Hong Kong name is not read as a listed official's (李嘉誠, not 李家超).
    assert screen_name(index, "李嘉誠", "HK").decision == "cleared"


def test_the_aliases_words_alone_do_not_stop_unlisted_firms(index: ScreeningIndex) -> None:
    for name, country in (
        ("NOMOS Glashütte/SA Roland Schwertner KG", "DE"),
        ("The Federal Savings Bank", "US"),
        ("National Shipping Company of Saudi Arabia", "SA"),
    ):
        assert screen_name(index, name, country).decision == "cleared", name


def test_no_alias_of_the_round_makes_a_common_name_a_group_brand(index: ScreeningIndex) -> None:
    # An enrichment row makes a party's one-word name a brand looked for among other words (README, step 5). The
    # round left out the rows that would have made surnames and given names brands: Irkut's new name Yakovlev, the
    # Lazarus Group's other names, SADRA's English name. Firms of those words stay cleared.
    assert not {"yakovlev", "lazarus", "sadra"} & index._brand_words.keys()
    assert {"sibneft", "milandr"} <= index._brand_words.keys()  # rare words of one party each
    for name, country in (
        ("Yakovlev and Partners", "RU"),
        ("The Lazarus Project Ltd", "GB"),
        ("Sadra Trading FZE", "AE"),
    ):
        assert screen_name(index, name, country).decision == "cleared", name


RI_PYONG_CHOL = "SDN-23215"  # RI, Pyong Chol
KIM_YONG_CHOL = ("SDN-12211", "SDN-17614")  # KIM, Yong Chol (two entries)
JONG_KYONG_THAEK = "SDN-23212"  # JONG, Kyong Thaek


def test_a_korean_name_in_hangul_is_read_as_surname_and_given_name(index: ScreeningIndex) -> None:
    # Romanised whole, 리병철 was one word ("ribyeongcheol") and no listed person's name: no hit.
    assert _korean_person("리병철") == "ri byeongcheol"
    assert _korean_person("김 영철") == "kim yeongcheol"  # the surname as the lists spell it, not RR's "gim"
    assert found(index, "리병철", "KP", RI_PYONG_CHOL)
    assert found(index, "정경택", None, JONG_KYONG_THAEK)
    assert any(found(index, "김영철", "KP", entry) for entry in KIM_YONG_CHOL)
    result = screen_name(index, "리병철", "KP")
    assert result.decision == "review"  # a person's name alone: a possible namesake
    hit = next(h.hit for h in result.hits if h.hit.entry_id == RI_PYONG_CHOL)
    assert any("read as surname and given name" in reason for reason in hit.reasons)


def test_a_korean_company_name_is_not_read_as_a_person(index: ScreeningIndex) -> None:
    # A company word at its end, or four syllables after a one-syllable surname: no person reading.
    assert _korean_person("조선무역회사") is None and _korean_person("삼성전자") is None
    assert _korean_person("Kim Yong Chol") is None
    # Unlisted Koreans and firms stay cleared.
    for name in ("손흥민", "이재명", "현대", "한화"):
        assert screen_name(index, name, "KR").decision == "cleared", name
