"""Persian names of Iranian parties the lists write only in Latin letters (issue 9, eleventh session).

The names were written for these tests from the parties' own Persian names (not taken from the evaluation set or
dev_extra.csv); each positive case cleared or went to another entry before.
"""

from __future__ import annotations

import pytest

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.normalize import normalize_name
from gpulease.compliance.screening import screen_name
from tests.compliance.screening_checks import found

GHARARGAH_GHAEM = "SDN-10496"  # GHARARGAHE SAZANDEGI GHAEM
PETROPARS = "SDN-11633"  # PETROPARS LTD.
PARCHIN = "SDN-10887"  # PARCHIN CHEMICAL INDUSTRIES
FATER = "SDN-11792"  # FATER ENGINEERING INSTITUTE
MOALLEM = "SDN-25484"  # MOALLEM INSURANCE CO.
MAHAB_GHODSS = "SDN-12081"  # MAHAB GHODSS CONSULTING ENGINEERING COMPANY
ASTAN_QUDS = "SDN-30842"  # ASTAN QUDS RAZAVI
IRAN_INSURANCE = "SDN-11631"  # IRAN INSURANCE COMPANY (a.k.a. BIMEH IRAN)


def test_persian_reads_zad_and_its_sisters_as_z() -> None:
    # رضوی is Razavi in Persian (ی marks the text as Persian); an Arabic رمضان keeps its d (Ramadan).
    assert "rzwy" in normalize_name("قدس رضوی").strong
    assert "rmdn" in normalize_name("شهر رمضان").strong


def test_gh_written_by_gaf_and_he_is_two_letters(index: ScreeningIndex) -> None:
    # قرارگاه: گ then ه, "qrrgh", whose gh is no غ.
    assert found(index, "قرارگاه سازندگی قائم", "IR", GHARARGAH_GHAEM)


def test_a_listed_final_s_is_not_lost_to_the_plural_fold(index: ScreeningIndex) -> None:
    assert found(index, "پتروپارس", "IR", PETROPARS)


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("صنایع شیمیایی پارچین", PARCHIN),  # شیمیایی: chemical
        ("موسسه مهندسی فاطر", FATER),  # موسسه: institute, مهندسی: engineering
        ("شرکت بیمه معلم", MOALLEM),  # بیمه: insurance
        ("شرکت مهندسی مشاور مهاب قدس", MAHAB_GHODSS),  # مشاور: consulting
    ],
)
def test_persian_words_of_trade_read_as_the_english_the_lists_use(index: ScreeningIndex, name: str, entry: str) -> None:
    assert found(index, name, "IR", entry)


def test_enrichment_names_in_persian(index: ScreeningIndex) -> None:
    assert screen_name(index, "آستان قدس رضوی", "IR").decision == "denied"
    assert found(index, "آستان قدس رضوی", "IR", ASTAN_QUDS)
    assert found(index, "بیمه ایران", "IR", IRAN_INSURANCE)


@pytest.mark.parametrize(
    "name",
    ["شرکت ساختمانی آرمان", "مشاور املاک آرمان", "بیمه دانا", "پالایشگاه اصفهان", "دانشگاه تهران", "بیمارستان رضوی"],
)
def test_unlisted_persian_firms_stay_cleared(index: ScreeningIndex, name: str) -> None:
    assert screen_name(index, name, "IR").decision == "cleared"


def test_arabic_and_persian_group_is_a_legal_form(index: ScreeningIndex) -> None:
    # مجموعة (group) weighs as گروه does: مجموعة القاطرجي is the Qatirji group, as "Qatirji Group" is.
    assert "mjmwh" in normalize_name("مجموعة القاطرجي").weak
    assert found(index, "مجموعة القاطرجي", "SY", "SDN-24903")  # AL-QATIRJI COMPANY
