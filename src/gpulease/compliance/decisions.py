"""Decisions with evidence: what a compliance decision saw, fingerprinted, and what a licence clears.

A decision is stored against its evidence: the set of hits (list and entry), red flags and ownership findings of
the screening it decided. A later screening re-opens review only when that evidence changed (`fingerprint`).
Clearing a strong hit on a blocking list (SDN, Entity List, Denied Persons, UN), directly or through listed
owners, needs a licence or exception and a second compliance officer (`blocking_entries`). A cleared party
stays cleared wherever it appears in an ownership chain while its licence runs (`with_cleared_owners`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from gpulease.compliance.decide import Outcome, worst
from gpulease.compliance.restrictions import restriction
from gpulease.compliance.screening import CustomerScreening


def _blocking(list_code: str) -> bool:
    return restriction(list_code).blocking


def evidence_of(screening: Mapping[str, Any]) -> dict[str, Any]:
    """The evidence of a screening (`CustomerScreening.to_dict()`): what a decision on it is a decision about.

    Scores and wording are left out (a new matcher version must not re-open every decision); the parties hit,
    the red-flag rules and the listed owners with their shares are in.
    """
    hits = sorted(
        {
            (str(h.get("list")), str(h.get("entry_id")), str(n.get("decision")), _whose(str(n.get("role"))))
            for n in screening.get("name_hits", [])
            for h in n.get("hits", [])
        }
    )
    own = screening.get("ownership") or {}
    paths = sorted(
        {
            (str(p.get("listed_list")), str(p.get("listed_entry")), round(float(p.get("share", 0.0)), 4))
            for p in own.get("paths", [])
        }
    )
    flags = sorted({(str(f.get("rule")), str(f.get("severity"))) for f in screening.get("red_flags", [])})
    return {
        "hits": [list(h) for h in hits],
        "ownership": {"share": round(float(own.get("share", 0.0)), 4), "paths": [list(p) for p in paths]},
        "red_flags": [list(f) for f in flags],
    }


def _whose(role: str) -> str:
    """A name hit is on the customer itself ("own": legal or local name) or on a party in its chain."""
    return "own" if role in ("legal name", "local name") else "chain"


def fingerprint(evidence: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(evidence, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def blocking_entries(evidence: Mapping[str, Any], cleared: Collection[str] = ()) -> list[str]:
    """Entries on blocking lists that denied a name of the customer or own 50% or more of it: clearing them
    needs a licence and two compliance officers. Parties in the chain already `cleared` under a running licence are
    not asked for again; a strong hit on the customer's own name always is."""
    own: set[str] = set()
    chain: set[str] = set()
    for code, entry, decision, whose in evidence.get("hits", []):
        if decision == "denied" and _blocking(code):
            (own if whose == "own" else chain).add(entry)
    ownership = evidence.get("ownership", {})
    chain |= {entry for code, entry, _share in ownership.get("paths", []) if _blocking(code)}
    if float(ownership.get("share", 0.0)) < 0.5 - 1e-9:
        chain = set()  # listed minority owners (below the 50% rule) make a review, not a listed party
    return sorted(own | {e for e in chain if e not in cleared})


@dataclass(frozen=True, slots=True)
class Licence:
    """A licence or exception that a clearance relies on."""

    authority: str  # e.g. BIS, OFAC
    number: str
    expires_on: date
    scope: str  # what it covers, as the licence says

    def to_dict(self) -> dict[str, str]:
        return {
            "authority": self.authority,
            "number": self.number,
            "expires_on": self.expires_on.isoformat(),
            "scope": self.scope,
        }

    def describe(self) -> str:
        return f"{self.authority} {self.number} ({self.scope}), valid to {self.expires_on.isoformat()}"


def with_cleared_owners(s: CustomerScreening, cleared: Mapping[str, str]) -> CustomerScreening:
    """A decision on a party applies wherever it appears in an ownership chain: findings that come only from a
    listed owner or parent cleared under a running licence are set aside, and the customer's status is what the
    rest says (its own red flags still count). `cleared`: entry id -> the decision and licence.

    The customer's own names are never cleared this way beyond a resemblance (review): a strong hit on its own
    name is the listed party itself, and a licence names its licensee.
    """
    if s.status == "cleared" or not cleared:
        return s
    if not s.ownership.paths or any(p.listed.entry_id not in cleared for p in s.ownership.paths):
        return s
    outcome: Outcome = "cleared"
    for n in s.name_hits:
        verdict = n.decision.decision
        if verdict == "cleared":
            continue
        own_name = n.role in ("legal name", "local name")
        on_cleared = all(h.entry_id in cleared for h in n.hits)
        if not on_cleared or (own_name and verdict != "review"):
            outcome = worst(outcome, verdict)
    for flag in s.red_flags:
        outcome = worst(outcome, "denied" if flag.severity == "deny" else "review")
    if outcome == s.status:
        return s
    why = tuple(
        f"listed owner {p.names[-1]} [{p.listed.list} {p.listed.entry_id}] cleared: {cleared[p.listed.entry_id]}"
        for p in s.ownership.paths
    )
    return replace(s, status=outcome, reasons=(*s.reasons, *why))
