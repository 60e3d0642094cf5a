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


@pytest.mark.parametrize(
    ("name", "letters", "surname"),
    [
        ("V. Putin", ("v",), "Putin"),
        ("J. G. Tapia Quintero", ("j", "g"), "Tapia Quintero"),
        ("J. Pérez-Díaz", ("j",), "Pérez-Díaz"),
    ],
)
def test_one_initial_and_two_surnames_are_read_as_a_person(name: str, letters: tuple[str, ...], surname: str) -> None:
    person = person_initials(name)
    assert person is not None and (person.letters, person.surname) == (letters, surname)


@pytest.mark.parametrize("name", ["VV Putin", "IBM", "Vladimir V. Putin", "Putin V.", "J. Ab", "A. B. One Two Three"])
def test_letters_without_full_stops_a_given_name_or_three_words_are_not_this_shape(name: str) -> None:
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
    dmitry = hits.get(LUKASHENKO_DMITRY)  # (Dmitry: no A., no G.)
    assert dmitry is None or hits[LUKASHENKO_ALEXANDER].score > dmitry.score


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


# Issue 9, screen-initials14: one initial before a surname, and initials before two surnames (Spanish order).
MADURO = "SDN-22790"
RAISI = "SDN-27844"
TAPIA_QUINTERO = "SDN-15913"
RODRIGUEZ_GOMEZ_DELCY = "SDN-25077"
RODRIGUEZ_GOMEZ_JORGE = "SDN-25078"


@pytest.mark.parametrize(("name", "entry"), [("N. Maduro", MADURO), ("E. Raisi", RAISI), ("V. Putin", PUTIN)])
def test_one_initial_and_a_rare_listed_surname_go_to_review_with_the_reason(
    index: ScreeningIndex, name: str, entry: str
) -> None:
    result = screen_name(index, name, "VE", nationality="VE" if entry == MADURO else None)
    hit = next(h.hit for h in result.hits if h.hit.entry_id == entry)
    assert result.decision == "review" and 80.0 <= hit.score < 92.0
    assert any(f.name == "one initial agrees" and "weak evidence" in f.detail for f in hit.features)


def test_one_initial_never_denies_even_with_the_nationality(index: ScreeningIndex) -> None:
    assert screen_name(index, "N. Maduro", "VE", nationality="VE").decision == "review"


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("J. G. Tapia Quintero", TAPIA_QUINTERO),
        ("D. E. Rodríguez Gómez", RODRIGUEZ_GOMEZ_DELCY),
        ("N. Maduro Moros", MADURO),
    ],
)
def test_initials_and_two_surnames_find_the_person_listed_with_them(
    index: ScreeningIndex, name: str, entry: str
) -> None:
    assert found(index, name, "MX", entry)


def test_initials_that_are_no_given_name_of_the_listed_person_give_no_hit(index: ScreeningIndex) -> None:
    hits = {h.hit.entry_id for h in screen_name(index, "D. E. Rodríguez Gómez", "VE").hits}
    assert RODRIGUEZ_GOMEZ_JORGE not in hits  # (Jorge Jesus: neither D. nor E.)
    assert screen_name(index, "G. Maduro", "VE").decision == "cleared"
    assert screen_name(index, "K. Raisi", "IR").decision == "cleared"


@pytest.mark.parametrize("name", ["J. Smith", "M. Garcia", "A. Kim", "S. Kim", "J. Garcia", "M. Rodríguez García"])
def test_an_initial_and_a_common_surname_stay_cleared(index: ScreeningIndex, name: str) -> None:
    assert screen_name(index, name, "US").decision == "cleared"
