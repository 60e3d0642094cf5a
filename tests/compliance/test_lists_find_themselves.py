"""Every listed name and alias, screened exactly as listed, finds its own entry (issue 9).

A self-check that needs no evaluation set: the lists' own spellings are the first forms a listed party would use.
It found the UN's Arabic alias of NAJIBULLAH MUHAMMAD JUMA cleared with no hit (جمعه, Juma, read as جماعة, a word
of kind). Names in other scripts than Latin are all checked; Latin ones by a fixed sample (all ~37,000 take ~25 s:
set SAMPLE_EVERY to 1 to run them all).
"""

from __future__ import annotations

import unicodedata

import pytest

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.lists import bundled_dataset
from gpulease.compliance.screening import screen_name

SAMPLE_EVERY = 20  # every 20th Latin name (about 1,900), every name in another script


def _latin(name: str) -> bool:
    return all(not ch.isalpha() or "LATIN" in unicodedata.name(ch, "") for ch in name)


@pytest.fixture(scope="module")
def own_index() -> ScreeningIndex:
    """An index of its own: thousands of queries fill the shared one's memory of common keys, which other tests
    look at (`test_screening_speed3`)."""
    dataset = bundled_dataset()
    return ScreeningIndex.build(dataset.entries, dataset.version)


def test_every_listed_name_finds_its_entry(own_index: ScreeningIndex) -> None:
    index = own_index
    missed = []
    latin = 0
    for entry in index.entries:
        for name in (entry.name, *entry.aliases):
            if _latin(name):
                latin += 1
                if latin % SAMPLE_EVERY:
                    continue
            result = screen_name(index, name, entry.countries[0] if entry.countries else None)
            own = any(h.hit.entry_id == entry.id and h.hit.score >= 80 for h in result.hits)
            # A name several entries share (one party on several lists) may be answered by another of them.
            shared = result.decision != "cleared" and any(h.hit.score >= 100 for h in result.hits)
            if not (own or shared):
                missed.append((entry.id, name, result.decision, [(h.hit.entry_id, h.hit.score) for h in result.hits]))
    assert missed == []
