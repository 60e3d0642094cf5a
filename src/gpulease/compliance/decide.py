"""Name hits into a decision: cleared, review or denied, with the reasons."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gpulease.compliance.match import Hit

Outcome = Literal["cleared", "review", "denied"]
# Lists whose parties may not be served at all without a licence: the Entity List, OFAC SDN,
# the Denied Persons List and UN Security Council sanctions. Hits on the others (SSI, UVL, MEU,
# CMIC, DTC, ISN ...) restrict particular dealings, so they go to a person.
DENYING_LISTS: frozenset[str] = frozenset({"SDN", "EL", "DPL", "UN"})
_RANK: dict[str, int] = {"cleared": 0, "review": 1, "denied": 2}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Score thresholds (0..100) for name hits."""

    deny: float = 92.0  # a hit this strong on a denying list, with the country agreeing, denies
    exact: float = 98.0  # this strong denies unless the countries disagree
    review: float = 80.0  # anything from here up goes to a person
    deny_lists: frozenset[str] = field(default=DENYING_LISTS)


@dataclass(frozen=True, slots=True)
class Decision:
    decision: Outcome
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "reasons": list(self.reasons)}


def worst(*outcomes: Outcome) -> Outcome:
    """The most restrictive of several outcomes."""
    return max(outcomes, key=_RANK.__getitem__, default="cleared")


def hit_outcome(hit: Hit, thresholds: Thresholds = Thresholds()) -> Outcome:
    """What one hit alone implies."""
    if hit.score < thresholds.review:
        return "cleared"
    if hit.list in thresholds.deny_lists:
        if hit.score >= thresholds.deny and hit.country_agrees is True:
            return "denied"
        if hit.score >= thresholds.exact and hit.country_agrees is not False:
            return "denied"
    return "review"


def decide_name(hits: Sequence[Hit], thresholds: Thresholds = Thresholds(), label: str = "") -> Decision:
    """Decision for one screened name from its hits."""
    outcome: Outcome = "cleared"
    reasons: list[str] = []
    prefix = f"{label}: " if label else ""
    for hit in hits:
        this = hit_outcome(hit, thresholds)
        if this == "cleared":
            continue
        outcome = worst(outcome, this)
        verb = "matches" if this == "denied" else "resembles"
        reasons.append(f"{prefix}{verb} {hit.list} entry {hit.entry_id} '{hit.matched_name}' (score {hit.score:.0f})")
    if not reasons:
        top = f" (best score {hits[0].score:.0f})" if hits else ""
        reasons.append(f"{prefix}no listed party above the review threshold{top}")
    return Decision(outcome, tuple(reasons))
