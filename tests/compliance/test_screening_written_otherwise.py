"""Names written otherwise than the lists write them (issue 9).

A Chinese or Korean person written given names first, the Western way ("Hsien Cheng Chou" for the listed "CHOU, Hsien
Cheng"), is read with the last word as the surname too. Before, romanised names were read by the place of each word
only: "Hsien Cheng Chou" came out as "xian zhengzhou" (a Wade-Giles given name joined into a city) and "Chun Ryong Cho"
kept its Korean spelling while the listed "CHO, Chun-ryong" was read as Chinese: no hit at all.

A hyphenated listed name written without its hyphen, as one word ("RTCAPITAL" for RT-CAPITAL), is found.

Names are the lists' own, reordered or joined for the test.
"""

from __future__ import annotations

import pytest

from gpulease.compliance.index import ScreeningIndex, _surname_last
from gpulease.compliance.screening import screen_name
from tests.compliance.screening_checks import found

CHOU_HSIEN_CHENG = "SDN-11268"


@pytest.mark.parametrize(
    ("name", "listed"),
    [
        ("Hsien Cheng Chou", "CHOU, Hsien Cheng"),
        ("Chun Ryong Cho", "CHO, Chun-ryong"),
        ("Myong-Chin Chang", "CHANG, Myong-Chin"),
        ("Hsein Tai Tsai", "TSAI, Hsein Tai"),
    ],
)
def test_a_person_written_given_names_first_is_found(index: ScreeningIndex, name: str, listed: str) -> None:
    result = screen_name(index, name, None)
    assert result.decision == "review"  # a name alone: a possible namesake, never a denial
    hit = next(h.hit for h in result.hits if listed in h.hit.entry.names)
    assert any("then the surname" in reason for reason in hit.reasons)


def test_the_reading_is_tried_only_on_plain_person_like_names(index: ScreeningIndex) -> None:
    assert _surname_last("Hsien Cheng Chou") == "Chou, Hsien Cheng"
    # Names that read the same either way, firms and single words get no second reading (and no second look-up).
    assert _surname_last("Vladimir Putin") is None
    assert _surname_last("Li Wei Trading") is None
    assert _surname_last("Acme Ltd.") is None
    assert _surname_last("Chou") is None
    assert _surname_last("Wang Bank Holdings Group Co") is None
    # The reading gives listed individuals only: an unlisted person's and a firm's names stay cleared.
    for name in ("Zhengzhou Chou", "Li Wei Trading", "Acme Holdings"):
        assert screen_name(index, name, None).decision == "cleared", name
    assert found(index, "Chou Hsien Cheng", None, CHOU_HSIEN_CHENG)  # (the list's order, as before)


RT_CAPITAL = "SDN-37790"  # RT-CAPITAL LIMITED LIABILITY COMPANY


@pytest.mark.parametrize("name", ["RTCAPITAL Limited Liability Company", "Rtcapital"])
def test_a_hyphenated_listed_name_written_as_one_word_is_found(index: ScreeningIndex, name: str) -> None:
    # RT-CAPITAL is read as rt + kapital; written without its hyphen it is one word, "rtcapital", which the forms
    # joined ("rtkapital") did not meet: no candidate at all before.
    assert found(index, name, "RU", RT_CAPITAL)
    assert found(index, name, None, RT_CAPITAL)
    # The explanation aligns the words as the score does (it had said "name similarity 0" beside a score of 100).
    hit = next(h.hit for h in screen_name(index, name, "RU").hits if h.hit.entry_id == RT_CAPITAL)
    assert any(r.startswith("name similarity 100") for r in hit.reasons)
    assert any("rtcapital≈rt kapital" in r for r in hit.reasons)


RUSSIAN_ELECTRONICS = "OPEN JOINT STOCK COMPANY RUSSIAN ELECTRONICS"


def test_medial_iy_and_ii_are_one_spelling(index: ScreeningIndex) -> None:
    # -ий- before a consonant: BGN/PCGN's "Rossiyskaya" (as most of the lists write it) and ICAO's "Rossiiskaia"
    # (as the party's Russian name reads romanised) were two words; the BGN form of Росэлектроника's full name cleared.
    from gpulease.compliance.romanize import fold_variants

    assert fold_variants("rossiyskaya") == fold_variants("rossiiskaia")
    assert fold_variants("kiyv") == "kiyv"  # (not before a vowel or at the end: those are _FINAL_Y's)
    for name in ("Aktsionernoye obshchestvo Rossiyskaya elektronika", "Rossiiskaia elektronika"):
        result = screen_name(index, name, "RU")
        assert any(h.hit.entry.name == RUSSIAN_ELECTRONICS and h.hit.score >= 80 for h in result.hits), name


def test_myanma_is_myanmar_s_own_adjective(index: ScreeningIndex) -> None:
    # The lists write Myanmar's state enterprises with its own adjective ("MYANMA OIL AND GAS ENTERPRISE"): a
    # distinctive word to the matcher, which "Myanmar" (a place) never met: MOGE so written cleared.
    result = screen_name(index, "Myanmar Oil and Gas Enterprise", "MM")
    assert any(h.hit.entry.name == "MYANMA OIL AND GAS ENTERPRISE" and h.hit.score >= 90 for h in result.hits)
    assert result.decision == "review"  # (a menu-based sanctions entry: review, not denial)
    for name in ("Myanma Airways", "Myanma Port Authority"):  # unlisted state bodies stay cleared
        assert screen_name(index, name, "MM").decision == "cleared", name
