"""What the screening case tests ask of a name: found on the entry they expect, at a score to review or more."""

from __future__ import annotations

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.screening import screen_name


def found(index: ScreeningIndex, name: str, country: str | None, entry_id: str) -> bool:
    result = screen_name(index, name, country)
    return result.decision != "cleared" and any(h.hit.entry_id == entry_id and h.hit.score >= 80 for h in result.hits)
