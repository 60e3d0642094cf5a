"""Screening recall on two keyboard slips in a name's most distinctive word (issue 9, the screen-typos18 round): a swap
beside a letter dropped, two slips in a word of six letters for a listed one of seven or more, a slip at the second
letter of a long word, and a fold that adds an edit to the word as written (on either side).

Each name here is written for the test (not taken from the evaluation set, benchmarks' dev_extra.csv or the typo
probe's output); each positive case was cleared before this round.
"""

from __future__ import annotations

import pytest

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.match import two_slips
from gpulease.compliance.normalize import normalize_name
from gpulease.compliance.screening import screen_name
from tests.compliance.screening_checks import found

SUKHODOLOV = "SDN-41159"  # SUKHODOLOV, Aleksei Borisovich
KRASNOYE_SORMOVO = "SDN-36033"  # PUBLIC JOINT STOCK COMPANY KRASNOYE SORMOVO SHIPYARD
DIVETECHNOSERVICES = "SDN-24647"  # DIVETECHNOSERVICES
KESHAVARZI = "SDN-4639"  # BANK KESHAVARZI IRAN
RUSKONSALT = "SDN-34754"  # RUSKONSALT
SPETSTECHNOTRADE = "SDN-45932"  # LIMITED LIABILITY COMPANY SPETSTECHNOTRADE


@pytest.mark.parametrize(
    ("name", "country", "entry_id"),
    [
        # Among the listed name's other words (the typo in context): the o dropped, then d and l swapped across the
        # gap, two slips and three edits as OSA counts them; two letters dropped from a word of eight.
        ("Sukholdov, Aleksei Borisovich", "RU", SUKHODOLOV),
        ("Public Joint Stock Company Krasoe Sormovo Shipyard", "RU", KRASNOYE_SORMOVO),
        # Alone or with common words only (the two-edit look-up): two slips as written, three once x is read as ks;
        # w for e, its neighbour, and a-r swapped; the u dropped and a-l swapped; x for c and the r dropped, two slips
        # from the listed word as written, three from its canonical form ("spectechnotrade").
        ("Divetecnoservixes", "RU", DIVETECHNOSERVICES),
        ("Kwshavrazi Bank", "IR", KESHAVARZI),
        ("Rskonslat", "RU", RUSKONSALT),
        ("Spetstexhnotade LLC", "RU", SPETSTECHNOTRADE),
    ],
)
def test_two_slips_in_a_long_word_are_found(index: ScreeningIndex, name: str, country: str, entry_id: str) -> None:
    assert found(index, name, country, entry_id)


@pytest.mark.parametrize(
    ("name", "country"),
    [
        ("Fifth Eleven Trading", "RU"),  # an English word two slips from the listed ELEMENT: written as meant
        ("Bank Kmshavrazi", "IR"),  # m is no neighbour of e: another second letter, another word
        ("Formado Ltd", "MX"),  # Spanish, a neighbouring key at the second letter of a word of seven from FIRMACO
        ("Sermaye Bank", "TR"),  # Turkish "capital", two edits from the listed SARMAYEH, e far from a
        ("Europei Ltd", None),  # Italian, two edits from the listed EUROBET as written: a word of seven
    ],
)
def test_look_alikes_two_edits_away_that_are_no_slips_stay_cleared(
    index: ScreeningIndex, name: str, country: str
) -> None:
    assert screen_name(index, name, country).decision == "cleared"


@pytest.mark.parametrize(
    ("query", "listed", "slips"),
    [
        ("suholdov", "suhodolov", True),  # a letter dropped and a swap across the gap
        ("krasoe", "krasnoye", True),  # two letters dropped from a word of eight
        ("elmnet", "element", True),  # (an English word or not is the caller's question)
        ("krasnoye", "krasnoye", False),  # the same word
        ("trasoe", "krasnoye", False),  # the first letter too
        ("kraoe", "krasnoye", False),  # three letters dropped
        ("karsoe", "krasnoye", False),  # three slips
        ("sugon", "sugar", False),  # too short to tell two slips from another word
    ],
)
def test_two_slips(query: str, listed: str, slips: bool) -> None:
    assert two_slips(query, listed) is slips


def test_the_two_edit_look_up_reads_slips_at_the_second_letter_of_long_words_and_the_word_as_written(
    index: ScreeningIndex,
) -> None:
    assert "ruskonsalt" in index.two_edit_matches("rskonslat")  # the second letter dropped
    assert "keshavarzi" not in index.two_edit_matches("kmshavrazi")  # m is no neighbour of e
    # "Kwshavrazi" folds to "kvshavrazi" (w read as v, which is no neighbour of e): found as written.
    assert "keshavarzi" not in index.two_edit_matches("kvshavrazi")
    assert "keshavarzi" in index.two_edit_matches("kvshavrazi", "kwshavrazi")
    assert "firmaco" not in index.two_edit_matches("formado")  # seven letters: the second as written
    assert "divetechnoservices" in index.two_edit_matches("divetecnoservikses", "divetecnoservixes")
    # ... and against the listed words as written where their canonical form is not.
    (canonical,) = normalize_name("Spetstexhnotade").strong
    assert "spectechnotrade" not in index.two_edit_matches(canonical)
    assert "spectechnotrade" in index.two_edit_matches(canonical, "spetstexhnotade")
