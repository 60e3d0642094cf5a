"""The blocking index: every listed name normalised once; a query looks at a few dozen candidates."""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gpulease.compliance.countries import country_code
from gpulease.compliance.match import Hit, NameScore, compare, explain
from gpulease.compliance.model import Address, ListEntry
from gpulease.compliance.normalize import GENERIC_WEIGHT, GENERIC_WORDS, NormalizedName, fold, normalize_name

# A key shared by more names than this says little about identity ("technology", "al"): it is not
# used to find candidates (it still counts in the score) unless nothing rarer matched.
POSTING_CAP = 1500
CANDIDATES = 40
COUNTRY_BONUS = 4.0
CITY_BONUS = 3.0
DEFAULT_MIN_SCORE = 70.0


@functools.lru_cache(maxsize=200_000)
def blocking_keys(token: str) -> tuple[str, ...]:
    """The token and its single-character deletions: two tokens one edit apart share a key."""
    if len(token) < 4:
        return (token,)
    deletions = {token[:i] + token[i + 1 :] for i in range(len(token))}
    deletions.discard(token)
    return (token, *sorted(deletions))


def _capped(token: str, weight: float) -> float:
    return min(weight, GENERIC_WEIGHT) if token in GENERIC_WORDS else weight


@dataclass(frozen=True, slots=True)
class IndexedName:
    entry: int  # position in ScreeningIndex.entries
    name: str
    norm: NormalizedName
    weights: tuple[float, ...]


class ScreeningIndex:
    """In-memory screening index over one list version."""

    def __init__(
        self,
        entries: tuple[ListEntry, ...],
        names: list[IndexedName],
        postings: dict[str, list[int]],
        document_frequency: dict[str, int],
        version: str | None,
    ) -> None:
        self.entries = entries
        self.names = names
        self.postings = postings
        self.document_frequency = document_frequency
        self.version = version
        self.by_id = {e.id: e for e in entries}
        self._max_weight = math.log1p(max(len(names), 1))

    @classmethod
    def build(cls, entries: Iterable[ListEntry], version: str | None = None) -> ScreeningIndex:
        """Normalise every name and alias once and build the inverted index of blocking keys."""
        entry_tuple = tuple(entries)
        normalised: list[tuple[int, str, NormalizedName]] = []
        frequency: dict[str, int] = {}
        for position, entry in enumerate(entry_tuple):
            seen: set[str] = set()
            for name in entry.names:
                norm = normalize_name(name)
                if not norm.strong or norm.key in seen:
                    continue
                seen.add(norm.key)
                normalised.append((position, name, norm))
                for token in set(norm.strong):
                    frequency[token] = frequency.get(token, 0) + 1
        total = max(len(normalised), 1)
        names: list[IndexedName] = []
        postings: dict[str, list[int]] = {}
        for name_id, (position, name, norm) in enumerate(normalised):
            weights = tuple(_capped(t, math.log1p(total / frequency[t])) for t in norm.strong)
            names.append(IndexedName(position, name, norm, weights))
            keys: set[str] = set()
            for token in norm.strong:
                keys.update(blocking_keys(token))
            for a, b in zip(norm.strong, norm.strong[1:], strict=False):
                keys.add(a + b)
            for key in keys:
                postings.setdefault(key, []).append(name_id)
        return cls(entry_tuple, names, postings, frequency, version)

    def weight(self, token: str) -> float:
        """Rarity of a token among listed names; unseen tokens weigh the most."""
        df = self.document_frequency.get(token)
        if not df:
            return _capped(token, self._max_weight)
        return _capped(token, math.log1p(len(self.names) / df))

    def _candidates(self, strong: Sequence[str], weights: Sequence[float]) -> list[int]:
        scores: dict[int, float] = {}
        skipped: list[tuple[int, str, float]] = []
        for token, w in zip(strong, weights, strict=True):
            ids: set[int] = set()
            for key in blocking_keys(token):
                posting = self.postings.get(key)
                if posting is None:
                    continue
                if len(posting) > POSTING_CAP:
                    skipped.append((len(posting), key, w))
                    continue
                ids.update(posting)
            for name_id in ids:
                scores[name_id] = scores.get(name_id, 0.0) + w
        for a, b, wa, wb in zip(strong, strong[1:], weights, weights[1:], strict=False):
            posting = self.postings.get(a + b)
            if posting is not None and len(posting) <= POSTING_CAP:
                for name_id in posting:
                    scores[name_id] = scores.get(name_id, 0.0) + wa + wb
        if not scores and skipped:
            # Only common words in the query: fall back to the rarest of them.
            _, key, w = min(skipped)
            for name_id in self.postings[key]:
                scores[name_id] = w
        if len(scores) <= CANDIDATES:
            return list(scores)
        return heapq.nlargest(CANDIDATES, scores, key=scores.__getitem__)

    def screen(
        self,
        name: str,
        country: str | None = None,
        address: Address | str | None = None,
        limit: int = 10,
        min_score: float = DEFAULT_MIN_SCORE,
    ) -> list[Hit]:
        """Listed entries resembling `name`, best first, one hit per entry."""
        query = normalize_name(name)
        if not query.strong:
            return []
        q_weights = [self.weight(t) for t in query.strong]
        best: dict[int, tuple[float, IndexedName, NameScore]] = {}
        for name_id in self._candidates(query.strong, q_weights):
            candidate = self.names[name_id]
            result = compare(query.strong, q_weights, candidate.norm.strong, candidate.weights)
            current = best.get(candidate.entry)
            if current is None or result.score > current[0]:
                best[candidate.entry] = (result.score, candidate, result)
        query_country = country_code(country) if country else None
        cities = _cities(address)
        hits: list[Hit] = []
        for position, (score, candidate, result) in best.items():
            if score < min_score - COUNTRY_BONUS - CITY_BONUS:
                continue
            entry = self.entries[position]
            reasons = explain(query, candidate.norm, result)
            agrees: bool | None = None
            if query_country and entry.countries:
                agrees = query_country in entry.countries
                if agrees:
                    score = min(100.0, score + COUNTRY_BONUS)
                    reasons.append(f"same country: {query_country}")
                else:
                    reasons.append(f"different country: {query_country}, listed {', '.join(entry.countries)}")
            if cities:
                listed_cities = {fold(a.city) for a in entry.addresses if a.city}
                shared = cities & listed_cities
                if shared:
                    score = min(100.0, score + CITY_BONUS)
                    reasons.append(f"same city: {', '.join(sorted(shared))}")
            if score < min_score:
                continue
            hits.append(
                Hit(
                    entry_id=entry.id,
                    list=entry.list,
                    name=entry.name,
                    matched_name=candidate.name,
                    score=round(score, 2),
                    reasons=tuple(reasons),
                    entry=entry,
                    country_agrees=agrees,
                )
            )
        hits.sort(key=lambda h: (-h.score, h.entry_id))
        return hits[:limit]


def _cities(address: Address | str | None) -> set[str]:
    if address is None:
        return set()
    if isinstance(address, Address):
        return {fold(address.city)} if address.city else set()
    # Free text: compare each comma-separated part with listed cities.
    return {fold(part.strip()) for part in address.split(",") if part.strip()}


@functools.cache
def bundled_index() -> ScreeningIndex:
    """Index over the lists shipped with the package, built once per process."""
    from gpulease.compliance.lists import bundled_dataset

    dataset = bundled_dataset()
    return ScreeningIndex.build(dataset.entries, dataset.version)
