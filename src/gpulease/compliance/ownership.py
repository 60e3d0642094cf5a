"""Ownership graph: the OFAC 50% rule and the BIS affiliates rule over declared owners and parents."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gpulease.compliance.match import Hit
from gpulease.compliance.normalize import fold

LISTED_SHARE = 0.5


class Owned(Protocol):
    """Anything that declares its owners and parent (a KycProfile, a known party)."""

    @property
    def owners(self) -> Sequence[tuple[str, float]]: ...

    @property
    def parent(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class OwnershipPath:
    """A chain from the customer up to a listed party; `share` is the product of the stakes."""

    names: tuple[str, ...]
    percents: tuple[float, ...]  # stake of names[i+1] in names[i], in percent
    share: float  # 0..1
    listed: Hit

    def describe(self) -> str:
        steps = [self.names[0]]
        for name, percent in zip(self.names[1:], self.percents, strict=True):
            steps.append(f"owned {percent:g}% by {name}")
        return " → ".join(steps) + f" [{self.listed.list} {self.listed.entry_id}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "percents": list(self.percents),
            "share": round(self.share, 4),
            "listed_entry": self.listed.entry_id,
            "listed_list": self.listed.list,
            "description": self.describe(),
        }


@dataclass(frozen=True, slots=True)
class OwnershipResult:
    share: float  # aggregate share (0..1) held by listed parties
    paths: tuple[OwnershipPath, ...]

    @property
    def treated_as_listed(self) -> bool:
        return self.share >= LISTED_SHARE - 1e-9

    def to_dict(self) -> dict[str, Any]:
        return {
            "share": round(self.share, 4),
            "treated_as_listed": self.treated_as_listed,
            "paths": [p.to_dict() for p in self.paths],
        }


def stakes(party: Owned) -> list[tuple[str, float]]:
    """Declared owners as fractions; a declared parent without a percent counts as 100% control."""
    result = [(name, max(0.0, min(percent, 100.0)) / 100.0) for name, percent in party.owners if name]
    if party.parent and all(fold(n) != fold(party.parent) for n, _ in result):
        result.append((party.parent, 1.0))
    return result


def listed_share(
    customer: Owned,
    customer_name: str,
    known_parties: Mapping[str, Owned],
    listed: Callable[[str], Hit | None],
) -> OwnershipResult:
    """Aggregate share of `customer` held by listed parties, directly or through chains.

    Stakes multiply along a chain and add up across owners. An intermediate company held 50% or
    more by listed parties is itself treated as listed (OFAC guidance of 13 August 2014; BIS
    affiliates rule), so its whole stake counts. A chain that comes back to a company already on
    it contributes nothing, so cycles end.
    """
    known = {fold(name): party for name, party in known_parties.items()}

    def walk(party: Owned, chain: tuple[str, ...]) -> tuple[float, list[OwnershipPath]]:
        total = 0.0
        paths: list[OwnershipPath] = []
        seen = {fold(n) for n in chain}
        for owner, stake in stakes(party):
            key = fold(owner)
            if key in seen:
                continue
            hit = listed(owner)
            if hit is not None:
                total += stake
                paths.append(OwnershipPath((*chain, owner), (stake * 100,), stake, hit))
                continue
            owner_party = known.get(key)
            if owner_party is None:
                continue
            inner, inner_paths = walk(owner_party, (*chain, owner))
            effective = 1.0 if inner >= LISTED_SHARE - 1e-9 else inner
            total += stake * effective
            for p in inner_paths:
                paths.append(OwnershipPath(p.names, (stake * 100, *p.percents), stake * p.share, p.listed))
        return min(total, 1.0), paths

    share, paths = walk(customer, (customer_name,))
    return OwnershipResult(share, tuple(sorted(paths, key=lambda p: -p.share)))
