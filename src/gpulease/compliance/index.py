"""The blocking index: every listed name normalised once; a query looks at a few dozen candidates."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import compress, pairwise

from gpulease.compliance.countries import country_code
from gpulease.compliance.match import Hit, QueryScorer, compare, explain
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
    total: float = 1.0  # sum(weights) or 1.0
    joined: tuple[tuple[int, str], ...] = ()  # (j, strong[j] + strong[j + 1]): spacing variants


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
        # The postings regrouped by what put a name under a key: one listed token (the key is the token
        # or one of its deletions) or one pair of adjacent tokens. A token's deletion keys all lead back
        # to the same names, so a query gathers the few sources behind its keys first and then each
        # source's names once, instead of the same names once per key.
        source_names: list[list[int]] = []
        sources: dict[str | tuple[str, str], int] = {}
        for name_id, indexed in enumerate(names):
            strong = indexed.norm.strong
            name_sources: set[str | tuple[str, str]] = {*strong, *pairwise(strong)}
            for source in name_sources:
                number = sources.get(source)
                if number is None:
                    number = sources[source] = len(source_names)
                    source_names.append([])
                source_names[number].append(name_id)
        key_sources: dict[str, list[int]] = {}
        for source, number in sources.items():
            keys = blocking_keys(source) if isinstance(source, str) else (source[0] + source[1],)
            for key in keys:
                key_sources.setdefault(key, []).append(number)
        self._sources = source_names
        self._key_sources = key_sources

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
        for position, name, norm in normalised:
            weights = tuple(_capped(t, math.log1p(total / frequency[t])) for t in norm.strong)
            strong = norm.strong
            joined = tuple((j, strong[j] + strong[j + 1]) for j in range(len(strong) - 1))
            names.append(IndexedName(position, name, norm, weights, sum(weights) or 1.0, joined))
        # Name ids in order of total weight (list order among equals): a tie in the blocking score goes
        # to the lower id, the listed name that the same matched tokens cover the most.
        names.sort(key=lambda indexed: indexed.total)
        postings: dict[str, list[int]] = {}
        for name_id, indexed in enumerate(names):
            norm = indexed.norm
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

    def _names_under(self, keys: Iterable[str], w: float, skipped: list[tuple[int, str, float]]) -> set[int]:
        """Names under any of `keys`; keys above POSTING_CAP go to `skipped` instead."""
        found: set[int] = set()
        for key in keys:
            posting = self.postings.get(key)
            if posting is None:
                continue
            if len(posting) > POSTING_CAP:
                skipped.append((len(posting), key, w))
                continue
            found.update(self._key_sources[key])
        if len(found) == 1:
            return set(self._sources[found.pop()])
        ids: set[int] = set()
        for source in found:
            ids.update(self._sources[source])
        return ids

    def _candidates(self, strong: Sequence[str], weights: Sequence[float]) -> list[int]:
        scores: dict[int, float] = {}
        skipped: list[tuple[int, str, float]] = []

        def add(ids: set[int], w: float) -> None:
            if not scores:
                scores.update(dict.fromkeys(ids, w))
                return
            for name_id in scores.keys() & ids:
                scores[name_id] += w
            scores.update(dict.fromkeys(ids.difference(scores), w))

        for token, w in zip(strong, weights, strict=True):
            add(self._names_under(blocking_keys(token), w, skipped), w)
        for a, b, wa, wb in zip(strong, strong[1:], weights, weights[1:], strict=False):
            add(self._names_under((a + b,), wa + wb, []), wa + wb)
        if not scores and skipped:
            # Only common words in the query: fall back to the rarest of them.
            _, key, w = min(skipped)
            scores = dict.fromkeys(self.postings[key], w)
        if len(scores) <= CANDIDATES:
            ranked = sorted(scores)
            ranked.sort(key=scores.__getitem__, reverse=True)
            return ranked
        # Best blocking score first; ties go to the lower name id (see build). Scores above the
        # CANDIDATES-th best are few; the tie at it can be large (every name sharing one common token),
        # so it is cut by id alone. All loops here run in C.
        cut = sorted(scores.values(), reverse=True)[CANDIDATES - 1]
        above = sorted(compress(scores, map(cut.__lt__, scores.values())))
        above.sort(key=scores.__getitem__, reverse=True)
        tied = sorted(compress(scores, map(cut.__eq__, scores.values())))
        return above + tied[: CANDIDATES - len(above)]

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
        scorer = QueryScorer(query.strong, q_weights)
        names = self.names
        best: dict[int, tuple[float, IndexedName]] = {}
        candidates = [names[name_id] for name_id in self._candidates(query.strong, q_weights)]
        tokens: set[str] = set()
        for candidate in candidates:
            tokens.update(candidate.norm.strong)
        scorer.prepare(tokens)
        for candidate in candidates:
            score = scorer.score(candidate.norm.strong, candidate.weights, candidate.total, candidate.joined)
            current = best.get(candidate.entry)
            if current is None or score > current[0]:
                best[candidate.entry] = (score, candidate)
        query_country = country_code(country) if country else None
        cities = _cities(address)
        # Scores, bonuses and the cut first; the token-by-token explanation only for the hits returned.
        passed: list[tuple[float, ListEntry, IndexedName, bool | None, list[str]]] = []
        for position, (score, candidate) in best.items():
            if score < min_score - COUNTRY_BONUS - CITY_BONUS:
                continue
            entry = self.entries[position]
            context: list[str] = []
            agrees: bool | None = None
            if query_country and entry.countries:
                agrees = query_country in entry.countries
                if agrees:
                    score = min(100.0, score + COUNTRY_BONUS)
                    context.append(f"same country: {query_country}")
                else:
                    context.append(f"different country: {query_country}, listed {', '.join(entry.countries)}")
            if cities:
                listed_cities = {fold(a.city) for a in entry.addresses if a.city}
                shared = cities & listed_cities
                if shared:
                    score = min(100.0, score + CITY_BONUS)
                    context.append(f"same city: {', '.join(sorted(shared))}")
            if score < min_score:
                continue
            passed.append((round(score, 2), entry, candidate, agrees, context))
        passed.sort(key=lambda p: (-p[0], p[1].id))
        hits: list[Hit] = []
        for score, entry, candidate, agrees, context in passed[:limit]:
            result = compare(query.strong, q_weights, candidate.norm.strong, candidate.weights)
            hits.append(
                Hit(
                    entry_id=entry.id,
                    list=entry.list,
                    name=entry.name,
                    matched_name=candidate.name,
                    score=score,
                    reasons=(*explain(query, candidate.norm, result), *context),
                    entry=entry,
                    country_agrees=agrees,
                )
            )
        return hits


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
