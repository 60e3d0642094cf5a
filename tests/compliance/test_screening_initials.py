"""A person written as initials and a surname ("V. V. Putin", "Putin V.V."): the way Russian and many other usages
write a name (issue 9, eleventh session). Names written for these tests, not taken from the evaluation set."""

from __future__ import annotations

import pytest

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.normalize import person_initials
from gpulease.compliance.screening import screen_name
from tests.compliance.screening_checks import found

PUTIN = "SDN-35096"
LUKASHENKO_ALEXANDER = "SDN-9760"
LUKASHENKO_DMITRY = "SDN-32615"
KADYROV_RAMZAN = "SDN-23343"


@pytest.mark.parametrize(
    ("name", "letters", "surname"),
    [("V. V. Putin", ("v", "v"), "Putin"), ("Putin V.V.", ("v", "v"), "Putin"), ("Putin, V. V.", ("v", "v"), "Putin")],
)
def test_initials_and_a_surname_are_read_as_a_person(name: str, letters: tuple[str, ...], surname: str) -> None:
    person = person_initials(name)
    assert person is not None and (person.letters, person.surname) == (letters, surname)


@pytest.mark.parametrize("name", ["VV Putin", "IBM", "V. Putin", "Vladimir V. Putin"])
def test_letters_without_full_stops_one_initial_or_two_words_are_not_this_shape(name: str) -> None:
    assert person_initials(name) is None


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("V. V. Putin", PUTIN),
        ("Putin V.V.", PUTIN),
        ("A. G. Lukashenko", LUKASHENKO_ALEXANDER),
        ("R. A. Kadyrov", KADYROV_RAMZAN),
    ],
)
def test_a_listed_person_written_with_initials_is_found(index: ScreeningIndex, name: str, entry: str) -> None:
    assert found(index, name, "RU", entry)


def test_initials_pick_the_listed_person_whose_names_they_are(index: ScreeningIndex) -> None:
    hits = {h.hit.entry_id: h.hit for h in screen_name(index, "A. G. Lukashenko", "BY").hits}
    assert any(f.name == "initials agree" for f in hits[LUKASHENKO_ALEXANDER].features)
    assert hits[LUKASHENKO_ALEXANDER].score > hits[LUKASHENKO_DMITRY].score  # (Dmitry: no A., no G.)


def test_firms_of_that_shape_still_find_themselves(index: ScreeningIndex) -> None:
    # Read as persons too (initials and a surname), they take only listed persons from that reading.
    assert found(index, "A.S.P. Builders", "PK", "CSL-aa3ef79cf731")
    assert found(index, "CONSTRUCTORA H.L.P.", "CO", "SDN-13431")
    assert found(index, "CIMEX, S.A.", "CU", "SDN-537")
    assert screen_name(index, "Siemens A.G.", "DE").decision == "cleared"


def test_initials_of_other_given_names_do_not_make_a_namesake_a_hit(index: ScreeningIndex) -> None:
    assert screen_name(index, "J. P. Wagner", "DE").decision == "cleared"
    assert screen_name(index, "A. B. Smith", "US").decision == "cleared"


@pytest.mark.parametrize(
    ("name", "entry"),
    [("В. В. Путин", PUTIN), ("Лукашенко А.Г.", LUKASHENKO_ALEXANDER), ("Lukashenko A.G.", LUKASHENKO_ALEXANDER)],
)
def test_initials_after_the_surname_and_in_cyrillic(index: ScreeningIndex, name: str, entry: str) -> None:
    assert found(index, name, "BY", entry)
