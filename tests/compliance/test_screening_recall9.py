"""Classes of screening error fixed in the screen-recall9 round (issue 9), a positive and a negative case each.

Each name here is written for the test (not taken from the evaluation set or benchmarks' dev_extra.csv); each positive
case was screened wrongly before.
"""

from __future__ import annotations

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.screening import screen_name
from tests.compliance.screening_checks import found

KARAFARIN = "SDN-13134"  # KARAFARIN BANK
HIZBALLAH = "SDN-4697"
URALVAGONZAVOD = "SDN-16885"
LUKOIL = "SSI-17248"  # LUKOIL OAO
AL_SHABAAB = "SDN-10761"
HAMAS = "SDN-4695"
TALIBAN = "SDN-6636"
DPRK_CENTRAL_BANK = "SDN-23015"  # CENTRAL BANK OF THE DEMOCRATIC PEOPLE'S REPUBLIC OF KOREA


def test_a_distinctive_word_two_edits_off_is_found(index: ScreeningIndex) -> None:
    # Two edits (a swap and a change; a change and a swap; two letters dropped): no one-letter deletion key is shared.
    assert found(index, "KAARFQRIN BANK", "IR", KARAFARIN)
    assert found(index, "HIZNALLHA", "LB", HIZBALLAH)
    assert found(index, "URLVAGONZAVD", "RU", URALVAGONZAVOD)


def test_a_real_word_or_another_start_is_no_two_edit_typo(index: ScreeningIndex) -> None:
    # Words English has (a firm's name, a French word) are written as meant; Turkish "sermaye" starts otherwise than
    # the listed SARMAYEH (se-, sa-).
    for name, country in (("Hitachi, Ltd.", "JP"), ("Parisien Bank", "FR"), ("Sermaye Bank", "TR")):
        assert screen_name(index, name, country).decision == "cleared", name


def test_a_typo_that_folds_otherwise_is_found_by_its_written_form(index: ScreeningIndex) -> None:
    # "lukoul" folds to "lukul" (ou → u), two edits from "lukoil"; as written it is one.
    assert found(index, "LUKOUL OAO", "RU", LUKOIL)
    assert screen_name(index, "Lukovit OAO", "BG").decision == "cleared"


def test_a_listed_group_with_a_word_of_its_kind(index: ScreeningIndex) -> None:
    assert found(index, "Hezbollah Organization", "LB", HIZBALLAH)
    assert found(index, "Al-Shabaab Militia", "SO", AL_SHABAAB)
    # In Arabic script: حركة (movement) before the listed name.
    assert found(index, "حركة حماس", "PS", HAMAS)
    assert found(index, "حركة طالبان", "AF", TALIBAN)


def test_a_word_of_its_kind_after_everyday_words_or_a_person_s_name_is_not(index: ScreeningIndex) -> None:
    # Everyday English before it: the word keeps its weight ("Green Movement" is not GREEN INDUSTRIES ...).
    assert screen_name(index, "Green Movement", "IR").decision == "cleared"
    assert screen_name(index, "Face Movement", None).decision == "cleared"
    # An organisation is not a listed individual (النهضة, nhdh, has the consonants of NIHADH).
    assert screen_name(index, "حركة النهضة", "TN").decision == "cleared"


def test_north_korea_and_dprk_read_as_the_lists_long_form(index: ScreeningIndex) -> None:
    assert found(index, "Central Bank of North Korea", "KP", DPRK_CENTRAL_BANK)
    assert found(index, "Central Bank of the DPRK", "KP", DPRK_CENTRAL_BANK)
    result = screen_name(index, "Central Bank of the DPRK", "KP")
    hit = next(h.hit for h in result.hits if h.hit.entry_id == DPRK_CENTRAL_BANK)
    assert any("Democratic People's Republic of Korea" in reason for reason in hit.reasons)


def test_korea_alone_is_not_north_korea(index: ScreeningIndex) -> None:
    assert screen_name(index, "Bank of Korea", "KR").decision == "cleared"
    assert not found(index, "Korea Development Bank", "KR", DPRK_CENTRAL_BANK)


def test_a_persian_e_where_the_lists_write_arabic_i(index: ScreeningIndex) -> None:
    # "Tareq" (Persian e in the last syllable) for the listed TARIQ.
    assert found(index, "Tareq Aziz", "IQ", "UN-IQi.025")


def test_an_english_word_is_not_read_with_arabic_i(index: ScreeningIndex) -> None:
    # "seven" read as "sevin" would be the listed SEVIN.
    assert screen_name(index, "Seven & i Holdings", "JP").decision == "cleared"


def test_a_person_s_name_that_reads_as_a_word_of_kind_still_names_the_person(index: ScreeningIndex) -> None:
    # جمعه (Juma, a given name) has the consonants of جماعة (group): a query with it is no organisation for a listed
    # individual who bears the name. The UN's own Arabic alias of NAJIBULLAH MUHAMMAD JUMA, screened as listed, was
    # cleared with no hit at all (found by screening every listed name and alias against the index).
    assert found(index, "نجيب الله محمد جمعه", "AF", "UN-TAi.132")
    # An organisation is still no individual of another name.
    assert screen_name(index, "جماعة محمد", "AF").decision == "cleared"
    assert screen_name(index, "حركة النهضة", "TN").decision == "cleared"
