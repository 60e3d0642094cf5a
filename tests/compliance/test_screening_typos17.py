"""Screening recall on keyboard typos (issue 9, the screen-typos17 round): a slip at a long word's first key, and a
misspelt legal form or common word, which the matcher read as other words before this round.

Each name here is written for the test (not taken from the evaluation set, benchmarks' dev_extra.csv or the typo
probe's output); each positive case was cleared before this round.
"""

from __future__ import annotations

import pytest

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.match import first_key_slip, similarity_of
from gpulease.compliance.screening import screen_name
from tests.compliance.screening_checks import found

HUAWEI = "CMIC-30947"  # HUAWEI TECHNOLOGIES CO., LTD.
NORINCO = "CMIC-30957"  # CHINA NORTH INDUSTRIES GROUP CORPORATION LIMITED
TUPOLEV = "SDN-35898"  # TUPOLEV PUBLIC JOINT STOCK COMPANY
SECURITY_REFORM = "SDN-37681"  # JOINT STOCK COMPANY INFORMATION SECURITY REFORM
OBUKHOVSKOYE = "SDN-40326"  # JOINT STOCK COMPANY OBUKHOVSKOYE
UNITED_ARCTIC = "SDN-44989"  # UNITED ARCTIC COMPANY LLC


@pytest.mark.parametrize(
    ("name", "country", "entry_id"),
    [
        ("Buawei Technologies Co., Ltd.", "CN", HUAWEI),  # b for h, its neighbour
        ("Gupolev PJSC", "RU", TUPOLEV),  # g for t
        ("United Qrctic Company", "RU", UNITED_ARCTIC),  # q for a
        ("Bukhovskoye JSC", "RU", OBUKHOVSKOYE),  # the first letter dropped
    ],
)
def test_a_slip_at_the_first_key_of_a_long_word_is_found(
    index: ScreeningIndex, name: str, country: str, entry_id: str
) -> None:
    assert found(index, name, country, entry_id)


@pytest.mark.parametrize(
    ("name", "country", "entry_id"),
    [
        ("Joint Tsock Company Information Security Reform", "RU", SECURITY_REFORM),  # the legal form misspelt
        ("China North Industries Vgroup Corporation", "CN", NORINCO),  # a common word misspelt
    ],
)
def test_a_misspelt_legal_form_or_common_word_reads_as_written_right(
    index: ScreeningIndex, name: str, country: str, entry_id: str
) -> None:
    assert found(index, name, country, entry_id)


def test_the_misspelt_legal_form_is_set_aside_as_the_legal_form_is(index: ScreeningIndex) -> None:
    # The listed name's own words, its legal form misspelt: the same outcome as the name written right, and the hit
    # says how the word was read.
    typo = screen_name(index, "Joint Tsock Company Information Security Reform", "RU")
    right = screen_name(index, "Joint Stock Company Information Security Reform", "RU")
    assert typo.decision == right.decision == "denied"
    assert any("'tsock' as 'stock'" in reason for reason in typo.hits[0].hit.reasons)


@pytest.mark.parametrize(
    ("name", "country"),
    [
        ("Darwin Ltd", "US"),  # an English word, one key from the listed SARVIN: written as meant
        ("Muawei Technologies", "CN"),  # m is no neighbour of h: another word, not a slip
        ("Point Stock Company", "US"),  # "point" is a word, no misspelt "joint"
    ],
)
def test_look_alikes_that_are_no_slips_stay_cleared(index: ScreeningIndex, name: str, country: str) -> None:
    assert screen_name(index, name, country).decision == "cleared"


@pytest.mark.parametrize(
    ("query", "listed", "slip"),
    [
        ("buawei", "huawei", True),  # a neighbouring key
        ("ethrani", "tehrani", True),  # the first two letters swapped
        ("vgroupe", "groupe", True),  # a neighbouring key pressed before the word
        ("bukhovskoye", "obukhovskoye", True),  # the first letter dropped
        ("muawei", "huawei", False),  # not a neighbouring key
        ("buawe", "huawe", False),  # too short: another first letter is another word
        ("buawei", "huawey", False),  # a second difference
        ("darvin", "sarvin", False),  # "Darwin", an English word, as canonical
    ],
)
def test_first_key_slip(query: str, listed: str, slip: bool) -> None:
    assert first_key_slip(query, listed) is slip


def test_a_first_key_slip_passes_the_typo_line_where_another_first_letter_does_not() -> None:
    assert similarity_of("buawei", "huawei") > 0.0
    assert similarity_of("muawei", "huawei") == 0.0
