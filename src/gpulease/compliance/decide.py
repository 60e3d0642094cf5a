"""Name hits into a decision: cleared, review or denied, each hit with the rule that decided it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gpulease.compliance.match import Hit
from gpulease.compliance.model import SUBSIDIARY
from gpulease.compliance.restrictions import BLOCKING_LISTS, restriction

Outcome = Literal["cleared", "review", "denied"]
# Lists whose parties may not be served at all without a licence: the Entity List, OFAC SDN,
# the Denied Persons List and UN Security Council sanctions. Hits on the others (SSI, UVL, MEU,
# CMIC, DTC, ISN ...) restrict particular dealings, so they go to a person (compliance.restrictions).
DENYING_LISTS: frozenset[str] = BLOCKING_LISTS
_RANK: dict[str, int] = {"cleared": 0, "review": 1, "denied": 2}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Score thresholds (0..100) for name hits."""

    deny: float = 92.0  # a hit this strong on a denying list, with the country agreeing, denies
    exact: float = 98.0  # this strong denies unless the countries disagree
    review: float = 80.0  # anything from here up goes to a person
    deny_lists: frozenset[str] = field(default=DENYING_LISTS)


@dataclass(frozen=True, slots=True)
class Ruling:
    """What one hit implies, and the rule that says so (in words a compliance officer reads)."""

    outcome: Outcome
    rule: str


@dataclass(frozen=True, slots=True)
class Decision:
    decision: Outcome
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "reasons": list(self.reasons)}


def worst(*outcomes: Outcome) -> Outcome:
    """The most restrictive of several outcomes."""
    return max(outcomes, key=_RANK.__getitem__, default="cleared")


def rule_for(hit: Hit, thresholds: Thresholds = Thresholds()) -> Ruling:
    """The outcome of one hit and the rule that gives it."""
    t = thresholds
    if hit.score < t.review:
        return Ruling("cleared", f"score {hit.score:.0f} is below the review threshold {t.review:g}")
    if hit.list not in t.deny_lists:
        meaning = restriction(hit.list)
        also = ""
        if hit.affiliate:
            also = " (and a possible affiliate of the listed party: establish ownership and control)"
        return Ruling("review", f"{hit.list} is not a blocking list: {meaning.restricts}; review the dealing{also}")
    if hit.affiliate:
        return Ruling(
            "review",
            "possible affiliate of a listed party (BIS affiliates rule, OFAC 50% rule): not the listed name "
            "itself; establish ownership and control before serving",
        )
    strong = hit.score >= t.exact and hit.country_agrees is not False
    strong = strong or (hit.score >= t.deny and hit.country_agrees is True)
    if hit.entry.type == "individual" and hit.score >= t.deny:
        if hit.identifiers_agree is True:
            return Ruling(
                "denied", "blocking list: the listed individual's name and date of birth or nationality agree"
            )
        if hit.identifiers_agree is False:
            return Ruling("review", "the name matches a listed individual but the date of birth or nationality differs")
        return Ruling(
            "review",
            "the name matches a listed individual, but no date of birth or nationality agrees: possibly a namesake",
        )
    if strong:
        if hit.score >= t.exact and hit.country_agrees is not True:
            return Ruling("denied", f"blocking list: exact name match (score ≥ {t.exact:g})")
        return Ruling("denied", f"blocking list: strong name match (score ≥ {t.deny:g}) in the listed country")
    if hit.score >= t.exact:
        return Ruling("review", "exact name match, but the listed party is in another country")
    if hit.entry.type == "individual" and hit.identifiers_agree is not True:
        return Ruling(
            "review",
            f"similar to a listed individual's name (score {hit.score:.0f}, below the denial threshold {t.deny:g}) "
            "and no date of birth or nationality agrees: possibly a namesake",
        )
    return Ruling("review", f"similar name (score {hit.score:.0f}, below the denial threshold {t.deny:g})")


def hit_outcome(hit: Hit, thresholds: Thresholds = Thresholds()) -> Outcome:
    """What one hit alone implies."""
    return rule_for(hit, thresholds).outcome


def decide_name(hits: Sequence[Hit], thresholds: Thresholds = Thresholds(), label: str = "") -> Decision:
    """Decision for one screened name from its hits."""
    outcome: Outcome = "cleared"
    reasons: list[str] = []
    prefix = f"{label}: " if label else ""
    for hit in hits:
        ruling = rule_for(hit, thresholds)
        if ruling.outcome == "cleared":
            continue
        outcome = worst(outcome, ruling.outcome)
        verb = "matches" if ruling.outcome == "denied" else "resembles"
        if hit.enrichment is not None and hit.enrichment.kind == SUBSIDIARY:
            # (The name matched is the subsidiary's, not the listed party's: say whose it is.)
            what = (
                f"'{hit.matched_name}', a known subsidiary of {hit.list} entry {hit.entry_id} '{hit.name}' "
                f"(score {hit.score:.0f})"
            )
        else:
            what = f"{hit.list} entry {hit.entry_id} '{hit.matched_name}' (score {hit.score:.0f})"
        reasons.append(f"{prefix}{verb} {what}: {ruling.rule}")
    if not reasons:
        top = f" (best score {hits[0].score:.0f})" if hits else ""
        reasons.append(f"{prefix}no listed party above the review threshold{top}")
    return Decision(outcome, tuple(reasons))
