"""Screening recall of the screen-recall16 round (issue 9): former and current English names, former Chinese short
names and Hong Kong stock short names of CMIC-listed Chinese parties, and an Entity List party's full English name,
that the lists and the enrichment file lacked.

Each name here is written for the test (not taken from the evaluation set or benchmarks' dev_extra.csv); each positive
case was cleared before this round, or reviewed only on another entry.
"""

from __future__ import annotations

import pytest

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.screening import screen_name
from tests.compliance.screening_checks import found

CASIC = "CMIC-30928"  # CHINA AEROSPACE SCIENCE AND INDUSTRY CORPORATION LIMITED
XIAN_AIRCRAFT = "CMIC-32052"  # AVIC XI'AN AIRCRAFT INDUSTRY GROUP COMPANY LTD.
JONHON = "CMIC-32055"  # AVIC JONHON OPTRONIC TECHNOLOGY CO., LTD.
AVIONICS = "CMIC-32090"  # CHINA AVIONICS SYSTEMS COMPANY LIMITED
CCCC = "CMIC-30930"  # CHINA COMMUNICATIONS CONSTRUCTION COMPANY LIMITED
CRCC = "CMIC-30959"  # CHINA RAILWAY CONSTRUCTION CORPORATION LIMITED
SJ_SEMI = "EL-supplement-034"  # SJ Semiconductor


@pytest.mark.parametrize(
    ("name", "entry_id"),
    [
        ("China Aerospace Machinery & Electronics Corp", CASIC),  # CASIC's name from 1999 to 2001
        ("China Aviation Optical Electrical Technology Co Ltd", JONHON),  # 002179's earlier English name
        ("西飞国际", XIAN_AIRCRAFT),  # 000768's short name until 2012
        ("中航飞機", XIAN_AIRCRAFT),  # its short name from 2012 to 2018, in traditional script
        ("AVIC Airborne Systems", AVIONICS),  # 600372's name since 2023
        ("China Comm Cons", CCCC),  # HKEX short name of 1800
        ("China Rail Cons", CRCC),  # HKEX short name of 1186
        ("SJ Semiconductor (Jiangyin) Corporation", SJ_SEMI),  # its name with its seat
    ],
)
def test_the_rounds_aliases_find_their_parties(index: ScreeningIndex, name: str, entry_id: str) -> None:
    assert found(index, name, "CN", entry_id)


def test_a_renamed_partys_new_name_is_a_review_not_a_denial(index: ScreeningIndex) -> None:
    # CMIC restricts investment, it does not block: the alias leads to review like the listed name does.
    assert screen_name(index, "AVIC Airborne Systems Co., Ltd.", "CN").decision == "review"


@pytest.mark.parametrize(
    ("name", "country"),
    [
        ("Airborne Systems North America Inc.", "US"),  # parachute maker, shares "Airborne Systems"
        ("China Aviation Oil (Singapore) Corporation Ltd", "SG"),  # shares "China Aviation"
        ("Hong Kong Aircraft Engineering Company Limited", "HK"),  # HAECO, shares "Aircraft"
        ("Xi'an International University", "CN"),  # shares "Xi'an International"
        ("China Railway Group Limited", "HK"),  # HKEX 0390, short name CHINA RAILWAY; not CRCC
        ("China Comm Services", "HK"),  # shares "China Comm"
    ],
)
def test_unlisted_firms_sharing_the_aliases_words_stay_cleared(index: ScreeningIndex, name: str, country: str) -> None:
    assert screen_name(index, name, country).decision == "cleared"


def test_no_alias_of_the_round_adds_a_group_brand(index: ScreeningIndex) -> None:
    # The round's names are several words each; none turns a word such as "airborne" into a brand looked for in
    # other firms' names (enrichment README, step 5).
    assert not {"airborne", "aircraft", "optical", "machinery"} & index._brand_words.keys()
