"""Screening a customer: names, ownership and red flags into one decision with its reasons."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from gpulease.compliance.decide import Decision, Outcome, Ruling, Thresholds, decide_name, hit_outcome, rule_for, worst
from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.match import Hit
from gpulease.compliance.normalize import fold
from gpulease.compliance.ownership import OwnershipResult, listed_share
from gpulease.compliance.redflags import KycProfile, RedFlag, RedFlagRules, evaluate
from gpulease.compliance.restrictions import restriction

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class ScreenedHit:
    """A hit with the rule that decided it: everything a compliance officer needs to judge it."""

    hit: Hit
    ruling: Ruling

    def to_dict(self) -> dict[str, Any]:
        hit, entry = self.hit, self.hit.entry
        meaning = restriction(hit.list)
        added = hit.enrichment
        return {
            "entry_id": hit.entry_id,
            "list": hit.list,
            "list_name": entry.list_name,
            "name": hit.name,
            "matched_name": hit.matched_name,
            "matched_kind": hit.matched_kind,
            "enrichment": None
            if added is None
            else {
                "kind": added.kind,
                "script": added.script,
                "source_url": added.source_url,
                "note": added.source_note,
                "relation": added.relation,
                "share": added.share,
            },
            "score": round(hit.score, 1),
            "features": [f.to_dict() for f in hit.features],
            "reasons": list(hit.reasons),
            "outcome": self.ruling.outcome,
            "rule": self.ruling.rule,
            "blocking": meaning.blocking,
            "restriction": meaning.restricts,
            "entry_type": entry.type,
            "programs": list(entry.programs),
            "federal_register": entry.federal_register,
            "listing_date": entry.listing_date,
            "license_requirement": entry.license_requirement,
            "license_policy": entry.license_policy,
            "addresses": [a.to_dict() for a in entry.addresses],
            "countries": list(entry.countries),
            "dates_of_birth": list(entry.dates_of_birth),
            "nationalities": list(entry.nationalities),
            "identifiers": [i.to_dict() for i in entry.identifiers],
            "remarks": entry.remarks,
            "source_url": entry.source_url,
            "country_agrees": hit.country_agrees,
            "affiliate": hit.affiliate,
        }


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    """One name screened: the decision, its reasons and every hit explained."""

    name: str
    decision: Outcome
    reasons: tuple[str, ...]
    hits: tuple[ScreenedHit, ...]
    list_version: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reasons": list(self.reasons),
            "list_version": self.list_version,
            "hits": [h.to_dict() for h in self.hits],
        }


def screen_name(
    index: ScreeningIndex,
    name: str,
    country: str | None = None,
    address: str | None = None,
    *,
    date_of_birth: date | str | None = None,
    nationality: str | None = None,
    thresholds: Thresholds = Thresholds(),
    limit: int = 10,
) -> ScreeningResult:
    """One name against the lists; `date_of_birth` and `nationality` tell an individual from namesakes."""
    hits = index.screen(
        name, country=country, address=address, limit=limit, date_of_birth=date_of_birth, nationality=nationality
    )
    decision = decide_name(hits, thresholds)
    return ScreeningResult(
        name=name,
        decision=decision.decision,
        reasons=decision.reasons,
        hits=tuple(ScreenedHit(h, rule_for(h, thresholds)) for h in hits),
        list_version=index.version,
    )


@dataclass(frozen=True, slots=True)
class NameScreening:
    """One name of the customer (legal, local, parent, owner) and what it hit."""

    role: str
    name: str
    hits: tuple[Hit, ...]
    decision: Decision

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "name": self.name,
            "decision": self.decision.decision,
            "reasons": list(self.decision.reasons),
            "hits": [h.to_dict() for h in self.hits],
        }


@dataclass(frozen=True, slots=True)
class CustomerScreening:
    status: Outcome
    reasons: tuple[str, ...]
    name_hits: tuple[NameScreening, ...]
    ownership: OwnershipResult
    red_flags: tuple[RedFlag, ...]
    list_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reasons": list(self.reasons),
            "name_hits": [n.to_dict() for n in self.name_hits],
            "ownership": self.ownership.to_dict(),
            "red_flags": [f.to_dict() for f in self.red_flags],
            "list_version": self.list_version,
        }


def _names(profile: KycProfile) -> list[tuple[str, str]]:
    names = [("legal name", profile.legal_name)]
    if profile.local_name:
        names.append(("local name", profile.local_name))
    if profile.parent:
        names.append(("parent", profile.parent))
    names.extend(("owner", owner) for owner, _ in profile.owners)
    names.extend(("officer", officer) for officer in profile.officers)
    seen: set[tuple[str, str]] = set()
    unique = []
    for role, name in names:
        if name and name.strip() and (role, fold(name)) not in seen:
            seen.add((role, fold(name)))
            unique.append((role, name))
    return unique


def screen_customer(
    profile: KycProfile,
    index: ScreeningIndex,
    known_parties: Mapping[str, KycProfile] | None = None,
    rules: RedFlagRules = RedFlagRules(),
    thresholds: Thresholds = Thresholds(),
    today: date | None = None,
) -> CustomerScreening:
    """Screen a customer's names, its ownership chain and its red flags.

    A strong hit on a denying list, ownership of 50% or more by listed parties, or a deny-severity
    red flag denies; weaker hits, minority listed ownership or any other red flag send it to review.
    """
    known = dict(known_parties or {})
    known_by_fold = {fold(k): v for k, v in known.items()}
    country_of = {fold(k): v.country for k, v in known.items()}
    outcome: Outcome = "cleared"
    reasons: list[str] = []

    screenings: list[NameScreening] = []
    # Individuals' date of birth and nationality tell them from listed namesakes (an exact name alone: review).
    ids = {fold(n): (dob, nat) for n, dob, nat in profile.identifiers}
    for role, name in _names(profile):
        country = profile.country if role in ("legal name", "local name") else country_of.get(fold(name))
        dob, nationality = ids.get(fold(name), (None, None)) if role in ("owner", "officer") else (None, None)
        hits = tuple(
            index.screen(
                name,
                country=country,
                address=profile.address if role == "legal name" else None,
                min_score=min(thresholds.review, 70.0),
                date_of_birth=dob,
                nationality=nationality,
            )
        )
        decision = decide_name(hits, thresholds, label=f"{role} '{name}'")
        screenings.append(NameScreening(role, name, hits, decision))
        if decision.decision != "cleared":
            # A listed owner denies through its share (the 50% rule below), not through its name: owners at
            # 24% + 24% are a review, as the rule says, not a denial.
            verdict: Outcome = "review" if role == "owner" else decision.decision
            outcome = worst(outcome, verdict)
            reasons.extend(decision.reasons)

    cache: dict[str, Hit | None] = {}

    def listed(name: str) -> Hit | None:
        key = fold(name)
        if key not in cache:
            party = known_by_fold.get(key)
            hits = index.screen(name, country=party.country if party else None, limit=3)
            cache[key] = next((h for h in hits if hit_outcome(h, thresholds) == "denied"), None)
        return cache[key]

    ownership = listed_share(profile, profile.legal_name, known, listed)
    if ownership.treated_as_listed:
        outcome = "denied"
        reasons.append(
            f"owned {ownership.share * 100:g}% by listed parties (50% rule): "
            + "; ".join(p.describe() for p in ownership.paths)
        )
    elif ownership.paths:
        outcome = worst(outcome, "review")
        reasons.append(
            f"listed parties own {ownership.share * 100:g}% (below 50%): "
            + "; ".join(p.describe() for p in ownership.paths)
        )

    flags = tuple(evaluate(profile, index, rules, today, known))
    for flag in flags:
        outcome = worst(outcome, "denied" if flag.severity == "deny" else "review")
        reasons.append(f"red flag {flag.rule}: {flag.evidence}")
    if not reasons:
        reasons.append("no listed party, listed owner or red flag found")
    return CustomerScreening(outcome, tuple(reasons), tuple(screenings), ownership, flags, index.version)


def screen_rows(
    rows: Iterable[Mapping[str, str]],
    index: ScreeningIndex,
    progress: Progress | None = None,
    thresholds: Thresholds = Thresholds(),
) -> Iterator[dict[str, Any]]:
    """Batch screening of CSV rows (column `name`, optional `country`); adds the decision columns."""
    for done, row in enumerate(rows, start=1):
        name = (row.get("name") or "").strip()
        hits = index.screen(name, country=(row.get("country") or None), limit=5) if name else []
        decision = decide_name(hits, thresholds)
        top = hits[0] if hits else None
        out: dict[str, Any] = dict(row)
        out["decision"] = decision.decision if name else "review"
        out["top_score"] = round(top.score, 1) if top else 0.0
        out["top_entry"] = f"{top.entry_id} {top.matched_name}" if top else ""
        out["top_list"] = top.list if top else ""
        if not name:
            out["top_entry"] = "no name given"
        if progress is not None and done % 100 == 0:
            progress(done, None)
        yield out
