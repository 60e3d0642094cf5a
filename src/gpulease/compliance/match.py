"""Scoring one query name against one listed name, with the features that produced the score.

A hit's score is the sum of named features: the name similarity (weighted token coverage both ways) and
the adjustments for country, city, date of birth, nationality and the affiliate pattern. Each feature
says in words what it saw, so a compliance officer can follow the score.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import mul
from typing import Any, Protocol

from rapidfuzz import process
from rapidfuzz.distance import OSA, DamerauLevenshtein, JaroWinkler

from gpulease.compliance.model import EnrichmentAlias, ListEntry
from gpulease.compliance.normalize import NormalizedName, canonical, place_tokens
from gpulease.compliance.romanize import joined

# Two tokens count as the same word with a typo from this similarity up; below it they are different
# words: "iflytec"/"iflytek" and "sensetine"/"sensetime" pass, "sugar"/"sugon" and "tesco"/"teaco" do not.
TOKEN_SIMILARITY = 0.82
TOKEN_SIMILARITY_OTHER_START = 0.86
FUZZY_MIN_LENGTH = 4
SWAP_MIN_LENGTH = 3  # a swap of neighbours is a typo from three letters ("ari" / "air"): the letters are all there
_OSA_CUTOFF = TOKEN_SIMILARITY - 0.01  # a little below the line: rapidfuzz's cut-off is not ours to round
# Words of four or five letters: low enough for one swap of neighbouring letters (OSA share 0.75, 0.8),
# accepted below; longer words pass the line with a swap anyway.
_OSA_CUTOFF_SHORT = 0.74
_SHORT = 5
# Words of eight letters or more may carry two typos ("ristance" for "resistance", "platftms" for
# "platforms") and still be told apart from other words, if the first letter is right.
TWO_EDITS_FROM = 8
# An abjad's transliteration ("mrkzy") equal to a listed token's consonants ("markazi"): a near match.
SKELETON_SIMILARITY = 0.9
# Extra similarities for a query: listed token -> (query position, similarity) pairs (skeleton matches).
Extra = Mapping[str, Sequence[tuple[int, float]]]


@dataclass(frozen=True, slots=True)
class Feature:
    """One named part of a hit's score: the points it adds (or takes away) and what it saw."""

    name: str
    points: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "points": round(self.points, 1), "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Hit:
    """A listed entry that resembles a screened name, with its score (0..100), features and reasons."""

    entry_id: str
    list: str
    name: str
    matched_name: str
    score: float
    reasons: tuple[str, ...]
    entry: ListEntry
    country_agrees: bool | None = None  # None when either side has no country
    matched_kind: str = "primary name"  # primary name, alias, enrichment alias
    enrichment: EnrichmentAlias | None = None  # the curated alias that matched, with its source
    features: tuple[Feature, ...] = ()
    affiliate: bool = False  # the listed party's distinctive name plus only place or structure words
    identifiers_agree: bool | None = None  # individuals: date of birth / nationality agree, conflict, unknown

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "list": self.list,
            "list_name": self.entry.list_name,
            "name": self.name,
            "matched_name": self.matched_name,
            "matched_kind": self.matched_kind,
            "score": round(self.score, 1),
            "reasons": list(self.reasons),
            "features": [f.to_dict() for f in self.features],
            "country_agrees": self.country_agrees,
            "programs": list(self.entry.programs),
            "source_url": self.entry.source_url,
        }


@dataclass(frozen=True, slots=True)
class NameScore:
    score: float
    exact: tuple[str, ...]  # tokens found on both sides (as the query wrote them)
    similar: tuple[str, ...]  # "query≈listed" pairs accepted as typos, spacing or skeleton variants
    query_cover: tuple[float, ...] = ()  # per query token: its best similarity on the listed side
    listed_cover: tuple[float, ...] = ()  # per listed token: its best similarity on the query side


def _similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    la, lb = len(a), len(b)
    if la < FUZZY_MIN_LENGTH or lb < FUZZY_MIN_LENGTH:
        return 0.0
    # Cheap bound: the edit distance is at least the length difference, so the OSA share is at most
    # 1 - |la - lb| / max(la, lb); most token pairs of a query fail here without calling rapidfuzz.
    longer, apart = (la, la - lb) if la > lb else (lb, lb - la)
    if (
        apart > (2 if la >= TWO_EDITS_FROM and lb >= TWO_EDITS_FROM else 0)
        and (longer - apart) / longer < TOKEN_SIMILARITY - 1e-9
    ):
        return 0.0  # (a swap keeps the lengths equal: this bound is 1 for it)
    # Jaro-Winkler alone is generous to short words ("seven"/"sever" 0.92); the edit-distance share
    # keeps one typo in five letters below the line while one in six or more passes.
    return _accepted(a, b, min(JaroWinkler.normalized_similarity(a, b), OSA.normalized_similarity(a, b)))


def similarity_of(a: str, b: str) -> float:
    """Two words' similarity as a typo apart (0.0 where they are other words): `a` the query's, `b` the listed one."""
    return _similarity(a, b)


def neighbours_swapped(a: str, b: str) -> bool:
    """Two neighbouring letters swapped, not the first ("yiut"/"yitu"): the commonest typo, and in a short
    word one that a one-letter change ("sugon"/"sugar") is not: the letters are all there."""
    size = len(a)
    if size != len(b) or a[0] != b[0]:
        return False
    k = 1  # (the first letters are the same)
    while k < size and a[k] == b[k]:
        k += 1
    # The first difference and the next letter crossed, the rest the same: exactly two neighbours differ, swapped.
    return k + 1 < size and a[k] == b[k + 1] and a[k + 1] == b[k] and a[k + 2 :] == b[k + 2 :]


def _two_edits(a: str, b: str) -> bool:
    """Two letters added, dropped, changed or swapped in a long word, the first letter kept."""
    return (
        a[0] == b[0]
        and len(a) >= TWO_EDITS_FROM
        and len(b) >= TWO_EDITS_FROM
        and OSA.distance(a, b, score_cutoff=2) <= 2
    )


# Endings of English words of one stem ("supercomputing" / "supercomputer", "processing" / "processor").
_ENDINGS = ("ing", "ers", "er", "ors", "or", "ed", "ions", "ion")
STEM_FROM = 6  # letters of the stem both words share


def _stem(word: str) -> str:
    for ending in _ENDINGS:
        if word.endswith(ending):
            return word[: -len(ending)]
    return word


def _same_stem(a: str, b: str) -> bool:
    """Two long words of one stem with other endings ("supercomputing" / "supercomputer")."""
    if a[0] != b[0] or len(a) < TWO_EDITS_FROM or len(b) < TWO_EDITS_FROM:
        return False
    stem = _stem(a)
    # (The OSA share bound keeps the pair among those QueryScorer.prepare looks at: both paths score alike.)
    return (
        len(stem) >= STEM_FROM and stem == _stem(b) and a != b and OSA.normalized_similarity(a, b) >= _OSA_CUTOFF_SHORT
    )


# Edits a misspelt word may carry and still be read as the listed word where the rest of the name is the listed
# party's own (see ScreeningIndex's typo in context): one in a word of four letters or more, two in one of
# TYPO_TWO_EDITS_FROM letters or more whose first letter is right.
TYPO_TWO_EDITS_FROM = 7


def _doubled(a: str, b: str) -> bool:
    """Whether one word is the other with one of its letters written twice."""
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    size = len(shorter)
    if len(longer) != size + 1:
        return False
    # The letter left out can only be where the words first differ (or the last), and one of a pair: the second of
    # it, as the first difference is.
    k = 0
    while k < size and longer[k] == shorter[k]:
        k += 1
    return k >= 1 and longer[k] == longer[k - 1] and longer[k + 1 :] == shorter[k:]


def typo_apart(a: str, b: str) -> bool:
    """Whether two different words are a typo apart: a letter doubled, one edit (a letter added, dropped, changed,
    or two neighbours swapped) in words of four letters or more, two with the first letter kept in longer ones; two
    neighbours swapped, the first letter kept, in a word of three ("ari" for "air")."""
    la, lb = len(a), len(b)
    if a == b or la - lb > 2 or lb - la > 2:
        return False
    shorter = la if la < lb else lb
    if shorter >= 2 and (la - lb == 1 or lb - la == 1) and _doubled(a, b):
        return True  # a key pressed twice ("all" for "al", "rtt" for "rt"), in a word of any length
    if shorter == SWAP_MIN_LENGTH and neighbours_swapped(a, b):
        return True
    if shorter < FUZZY_MIN_LENGTH:
        return False
    limit = 2 if shorter >= TYPO_TWO_EDITS_FROM and a[0] == b[0] else 1
    return OSA.distance(a, b, score_cutoff=limit) <= limit


# Two edits inside a word of six letters, its first and last letters as listed: keyboard slips fall between a word's
# ends, which a writer checks ("Osnohr" for "Onshor", "Gebral" for "General"). Read so only in context, and only for a
# word no English list has (a real word, "Taxing" beside a listed "Trading", is written as meant).
TYPO_INSIDE_LETTERS = 6


def typo_inside(a: str, b: str) -> bool:
    """Whether two words of six letters or more (one may be a letter longer) are two edits apart inside, their first
    and last letters alike: the keyboard slips `typo_apart` does not read in a word shorter than TYPO_TWO_EDITS_FROM."""
    la, lb = len(a), len(b)
    if a == b or min(la, lb) < TYPO_INSIDE_LETTERS or abs(la - lb) > 1 or a[0] != b[0] or a[-1] != b[-1]:
        return False
    return OSA.distance(a, b, score_cutoff=2) <= 2


# Two keyboard slips in a longer word, its first letter kept, counted as a writer makes them: a swap beside a letter
# dropped or added is two slips ("Abramcnhko": the e of ABRAMCHENKO dropped, then c-n-h for c-h-n), where OSA, which
# edits no letter twice, counts three. The listed word has TWO_SLIPS_LISTED letters or more and the query's
# TWO_SLIPS_WRITTEN ("Elemtn" for ELEMENT, "Krsnoe" for KRASNOYE): two slips in a word of five are another word.
TWO_SLIPS_LISTED = 7
TWO_SLIPS_WRITTEN = 6


def two_slips(a: str, b: str) -> bool:
    """Whether the query's word `a` is two keyboard slips from the listed word `b` (Damerau-Levenshtein distance two,
    the first letter kept; TWO_SLIPS_LISTED letters or more listed, TWO_SLIPS_WRITTEN written)."""
    if a[0] != b[0] or a == b:  # (most pairs part here)
        return False
    la, lb = len(a), len(b)
    if lb < TWO_SLIPS_LISTED or la < TWO_SLIPS_WRITTEN or la - lb > 2 or lb - la > 2:
        return False
    return DamerauLevenshtein.distance(a, b, score_cutoff=2) <= 2


# QWERTY neighbours: a slip at a word's first key hits one of them (or adds it before the word).
_KEY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_KEY_AT = {key: (row, col + 0.5 * row) for row, keys in enumerate(_KEY_ROWS) for col, key in enumerate(keys)}
FIRST_KEY_SLIP_LETTERS = 6  # letters of the shorter word: in shorter ones another first letter is another word


def _keys_near(x: str, y: str) -> bool:
    at_x, at_y = _KEY_AT.get(x), _KEY_AT.get(y)
    return at_x is not None and at_y is not None and abs(at_x[0] - at_y[0]) <= 1 and abs(at_x[1] - at_y[1]) <= 1


# Each letter's QWERTY neighbours, as `_keys_near` finds them.
KEY_NEIGHBOURS = {x: "".join(y for y in _KEY_AT if y != x and _keys_near(x, y)) for x in _KEY_AT}


ENGLISH_WORDS_KEPT = 30_000  # the commonest English words (Zipf about 3 and up): "Darwin" is no slip of SARVIN


@functools.cache
def english_canonical_words() -> frozenset[str]:
    """Canonical forms of the commonest English words: a query word that is one is written as meant."""
    from wordfreq import top_n_list  # (its English list loads on first use, about a second: not at import)

    return frozenset(canonical(w) for w in top_n_list("en", ENGLISH_WORDS_KEPT) if w.isalpha())


def first_key_slip(a: str, b: str) -> bool:
    """One typo at the first letter of a word of six letters or more, the rest as written: a neighbouring key for
    the first ("buawei"/"huawei"), a neighbouring key pressed before it ("vgroupe"/"groupe"), the first two letters
    swapped ("ethrani"/"tehrani") or the first letter dropped ("bukhovskoye"/"obukhovskoye"; "ehran"/"behran" is
    too short). `a` is the query's word, `b` the listed one."""
    la, lb = len(a), len(b)
    if min(la, lb) < FIRST_KEY_SLIP_LETTERS or a in english_canonical_words():
        return False
    if la == lb:
        if a[0] == b[1] and a[1] == b[0]:  # the first two letters swapped
            return a[2:] == b[2:]
        return a[1:] == b[1:] and _keys_near(a[0], b[0])
    if la == lb + 1:  # a key pressed before the word's first
        return a[1:] == b and _keys_near(a[0], b[0])
    return lb == la + 1 and b[1:] == a  # the first letter dropped


def _accepted(a: str, b: str, sim: float) -> float:
    if a in place_tokens() and b not in place_tokens():
        # The query's place is that place, not a misspelling of a listed party's word ("Xinjiang" / "Xinjian");
        # a misspelt place ("Shangai") may still be a listed place. (`a` is the query's word, `b` the listed one.)
        return 0.0
    if sim < TOKEN_SIMILARITY and (neighbours_swapped(a, b) or _two_edits(a, b) or _same_stem(a, b)):
        return TOKEN_SIMILARITY
    if a[0] != b[0]:
        # Typos rarely hit the first letter; anagram-like pairs ("orchid"/"rachid") often differ there. One slip at
        # the first key of a long word, the rest as listed, is a typo all the same ("Buawei", "Qrctic", "Gupolev").
        if sim >= TOKEN_SIMILARITY and first_key_slip(a, b):
            return sim
        return sim if sim >= TOKEN_SIMILARITY_OTHER_START else 0.0
    return sim if sim >= TOKEN_SIMILARITY else 0.0


def compare(
    query: Sequence[str],
    query_weights: Sequence[float],
    listed: Sequence[str],
    listed_weights: Sequence[float],
    extra: Extra | None = None,
    shown: Sequence[str] | None = None,
    similarities: Callable[[str], Sequence[tuple[int, float]]] | None = None,
    listed_joined: Sequence[tuple[int, str]] | None = None,
) -> NameScore:
    """Weighted token alignment: each side's tokens, weighted by rarity, covered by the other side's.

    The score is the geometric mean of both coverages, so a query that is a small part of a long
    listed name (or the reverse) scores low, while reordered tokens and legal forms do not matter.
    `similarities` (`QueryScorer.similarities` of this query): a listed token's non-zero `_similarity` to the
    query's tokens, remembered across the listed names one query is aligned with.
    `listed_joined` (the index's `IndexedName.joined`): each two neighbouring listed words written as one, where the
    index has more forms of them than their forms joined.
    """
    nq, nl = len(query), len(listed)
    best_q = [0.0] * nq
    best_l = [0.0] * nl
    pair_q: list[int] = [-1] * nq
    if similarities is None:
        for i, a in enumerate(query):
            for j, b in enumerate(listed):
                s = _similarity(a, b)
                if extra is not None and b in extra:
                    s = max([s, *(sim for k, sim in extra[b] if k == i)])
                if s > best_q[i]:
                    best_q[i] = s
                    pair_q[i] = j
                if s > best_l[j]:
                    best_l[j] = s
    else:
        # The same comparisons listed token by listed token: for each query token the listed ones still come in
        # order (the first best is its pair), and a zero similarity changes nothing.
        for j, b in enumerate(listed):
            pairs: Iterable[tuple[int, float]] = similarities(b)
            if extra is not None and b in extra:
                merged = dict(pairs)
                for k, sim in extra[b]:
                    if sim > merged.get(k, 0.0):
                        merged[k] = sim
                pairs = merged.items()
            for i, s in pairs:
                if s > best_q[i]:
                    best_q[i] = s
                    pair_q[i] = j
                if s > best_l[j]:
                    best_l[j] = s
    similar: list[str] = []
    # Spacing variants: "hik vision" against "hikvision", either way round.
    for i in range(nq - 1):
        together = joined(query[i], query[i + 1])
        for j, b in enumerate(listed):
            if together == b:
                best_q[i] = best_q[i + 1] = best_l[j] = 1.0
                pair_q[i] = pair_q[i + 1] = -1
                similar.append(f"{query[i]} {query[i + 1]}≈{b}")
    if listed_joined is None:
        listed_joined = [(j, joined(listed[j], listed[j + 1])) for j in range(nl - 1)]
    for j, together in listed_joined:
        for i, a in enumerate(query):
            if together == a:
                best_q[i] = best_l[j] = best_l[j + 1] = 1.0
                pair_q[i] = -1
                similar.append(f"{a}≈{listed[j]} {listed[j + 1]}")
        if extra is not None and together in extra:
            # Two listed words that one query word writes as one, by an extra similarity (an abjad's skeleton).
            for i, s in extra[together]:
                if s > best_q[i]:
                    best_q[i] = s
                    pair_q[i] = -1
                best_l[j] = max(best_l[j], s)
                best_l[j + 1] = max(best_l[j + 1], s)
                similar.append(f"{query[i]}≈{listed[j]} {listed[j + 1]}")
    total_q = sum(query_weights) or 1.0
    total_l = sum(listed_weights) or 1.0
    # (The products added in the same order as a generator of `w * s` would: the same floats.)
    cover_q = sum(map(mul, query_weights, best_q)) / total_q
    cover_l = sum(map(mul, listed_weights, best_l)) / total_l
    written = list(shown) if shown else list(query)
    exact = tuple([written[i] for i, (a, s) in enumerate(zip(query, best_q, strict=True)) if s == 1.0 and a in listed])
    for i in range(nq):
        if 0.0 < best_q[i] < 1.0 and pair_q[i] >= 0:
            similar.append(f"{written[i]}≈{listed[pair_q[i]]}")
    return NameScore(100.0 * (cover_q * cover_l) ** 0.5, exact, tuple(similar), tuple(best_q), tuple(best_l))


class ScoredName(Protocol):
    """A listed name as `QueryScorer.score_all` reads it (the index's `IndexedName`)."""

    @property
    def norm(self) -> NormalizedName: ...
    @property
    def weights(self) -> tuple[float, ...]: ...
    @property
    def total(self) -> float: ...  # sum(weights) or 1.0
    @property
    def joined(self) -> tuple[tuple[int, str], ...]: ...  # (j, strong[j] and strong[j + 1] written as one)


# Row of a query against one listed token: (best similarity over the query's tokens, the non-zero
# (query position, similarity) pairs). Rows with a zero maximum are stored as _NO_MATCH.
_Row = tuple[float, tuple[tuple[int, float], ...]]
_NO_MATCH: _Row = (0.0, ())


class QueryScorer:
    """`compare(query, weights, listed, ...).score` for many listed names against one query, faster.

    Candidates of one query share most of their tokens, so the similarity of each distinct listed token
    to the query's tokens is computed once per query (a row) and candidates are scored from the rows.
    The arithmetic is the same as `compare`'s, in the same order, so the scores are identical.
    """

    __slots__ = ("_extra", "_joins", "_plain", "_positions", "_rows", "_size", "query", "total", "weights")

    def __init__(self, query: Sequence[str], weights: Sequence[float], extra: Extra | None = None) -> None:
        self.query = tuple(query)
        self.weights = tuple(weights)
        self.total = sum(self.weights) or 1.0
        positions: dict[str, list[int]] = {}
        for i, a in enumerate(self.query):
            positions.setdefault(a, []).append(i)
        self._positions = positions
        self._extra = extra or {}
        self._size = len(self.query)
        # Listed pairs written as one word that `score` must look at: a query word, or a word with extra similarities.
        self._joins = frozenset(positions).union(self._extra)
        self._plain: dict[str, tuple[tuple[int, float], ...]] = {}
        rows: dict[str, _Row] = {}
        # Spacing variants, query side: "hik vision" covers a listed "hikvision" and is covered by it.
        for i in range(len(self.query) - 1):
            together = joined(self.query[i], self.query[i + 1])
            row = rows.get(together) or self._row(together)
            sims = dict(row[1])
            sims[i] = sims[i + 1] = 1.0
            rows[together] = (1.0, tuple(sorted(sims.items())))
        self._rows = rows
        # A token with extra similarities (skeleton matches, other spellings: an abjad word may have a hundred) gets
        # its row, extras included, when a candidate has it (`_add_row`), not from `prepare`; one that is also a
        # spacing variant gets it now, in place of the spacing variant's.
        for token in self._extra:
            if token in rows:
                rows[token] = self._row(token)

    def prepare(self, tokens: Iterable[str]) -> None:
        """Compute the rows of many listed tokens at once: one rapidfuzz scan per query token instead of
        a Python loop over token pairs. Gives the same rows as computing them one by one."""
        rows = self._rows
        extra = self._extra
        todo = {t for t in tokens if t not in rows}
        if not todo:
            return
        # Tokens with extra similarities get their plain similarities from the same scan and their rows, extras
        # included, at the end: `score_all` then finds every candidate's row computed.
        extras = todo.intersection(extra) if extra else ()
        # Every token is scanned; a word shorter than FUZZY_MIN_LENGTH is left out of the matches only (it is the same
        # word or none: `_similarity`), which is cheaper than leaving it out of the scan.
        listed = list(todo)
        found: dict[str, list[tuple[int, float]]] = {}
        for i, a in enumerate(self.query):
            if len(a) < FUZZY_MIN_LENGTH:
                if a in todo:
                    found.setdefault(a, []).append((i, 1.0))
                continue
            # The OSA share bounds min(Jaro-Winkler, OSA) from above: only pairs past it are looked at.
            for b, osa, _ in process.extract(
                a,
                listed,
                scorer=OSA.normalized_similarity,
                processor=None,
                score_cutoff=_OSA_CUTOFF_SHORT if len(a) <= _SHORT or len(a) >= TWO_EDITS_FROM else _OSA_CUTOFF,
                limit=None,
            ):
                if len(b) < FUZZY_MIN_LENGTH:
                    continue
                s = 1.0 if a == b else _accepted(a, b, min(JaroWinkler.normalized_similarity(a, b), osa))
                if s > 0.0:
                    found.setdefault(b, []).append((i, s))
        rows.update(dict.fromkeys(todo, _NO_MATCH))
        # (Their plain similarities, for `compare` too; a token with extra similarities gets its row below.)
        plain = self._plain
        plain.update(dict.fromkeys(todo, ()))
        for b, pairs in found.items():
            pairs.sort()
            plain[b] = similar = tuple(pairs)
            rows[b] = (max([s for _, s in similar]), similar)
        for token in extras:
            rows[token] = self._row(token)

    def similarities(self, token: str) -> tuple[tuple[int, float], ...]:
        """A listed token's non-zero `_similarity` to the query's tokens, (position, similarity) in order of
        position; worked out once per query."""
        found = self._plain.get(token)
        if found is None:
            found = self._plain[token] = tuple(
                [(i, s) for i, a in enumerate(self.query) if (s := _similarity(a, token)) > 0.0]
            )
        return found

    def _row(self, token: str) -> _Row:
        sims = dict(self.similarities(token))
        for i, s in self._extra.get(token, ()):
            sims[i] = max(sims.get(i, 0.0), s)
        if not sims:
            return _NO_MATCH
        pairs = tuple(sorted(sims.items()))
        return (max(sims.values()), pairs)

    def score(
        self,
        listed: Sequence[str],
        listed_weights: Sequence[float],
        listed_total: float,
        listed_joined: Sequence[tuple[int, str]] = (),
    ) -> float:
        """The score `compare` gives; `listed_total` is `sum(listed_weights) or 1.0`, `listed_joined`
        the (j, listed[j] + listed[j + 1]) pairs of the listed name."""
        rows = self._rows
        best_q = [0.0] * self._size
        covered_l = 0.0
        forced: dict[int, float] | None = None
        joins = self._joins
        for _, pair in listed_joined:
            if pair in joins:
                forced = self._joined(listed_joined, best_q)
                break
        if forced is None:
            for token, w in zip(listed, listed_weights, strict=True):
                row = rows.get(token) or self._add_row(token)
                top = row[0]
                if top:
                    covered_l += w * top
                    for i, s in row[1]:
                        if s > best_q[i]:
                            best_q[i] = s
        else:
            for j, (token, w) in enumerate(zip(listed, listed_weights, strict=True)):
                top, pairs = rows.get(token) or self._add_row(token)
                if j in forced and forced[j] > top:
                    top = forced[j]
                if top:
                    covered_l += w * top
                    for i, s in pairs:
                        if s > best_q[i]:
                            best_q[i] = s
        if not covered_l:
            return 0.0
        cover_q = sum(map(mul, self.weights, best_q)) / self.total
        cover_l = covered_l / listed_total
        score: float = 100.0 * (cover_q * cover_l) ** 0.5
        return score

    def score_all(self, names: Sequence[ScoredName]) -> list[float]:
        """`score` of each listed name, in order: the same arithmetic in one loop (a query scores about thirty
        candidates; the rows of their words are there after `prepare`)."""
        rows = self._rows
        joins = self._joins
        weights = self.weights
        total = self.total
        size = self._size
        scores = [0.0] * len(names)
        for k, name in enumerate(names):
            listed_joined = name.joined
            best_q = [0.0] * size
            covered_l = 0.0
            forced: dict[int, float] | None = None
            for _, pair in listed_joined:
                if pair in joins:
                    forced = self._joined(listed_joined, best_q)
                    break
            if forced is None:
                for token, w in zip(name.norm.strong, name.weights, strict=True):
                    try:
                        top, pairs = rows[token]
                    except KeyError:
                        top, pairs = self._add_row(token)
                    if top:
                        covered_l += w * top
                        for i, s in pairs:
                            if s > best_q[i]:
                                best_q[i] = s
            else:
                for j, (token, w) in enumerate(zip(name.norm.strong, name.weights, strict=True)):
                    try:
                        top, pairs = rows[token]
                    except KeyError:
                        top, pairs = self._add_row(token)
                    if j in forced and forced[j] > top:
                        top = forced[j]
                    if top:
                        covered_l += w * top
                        for i, s in pairs:
                            if s > best_q[i]:
                                best_q[i] = s
            if covered_l:
                cover_q = sum(map(mul, weights, best_q)) / total
                cover_l = covered_l / name.total
                scores[k] = 100.0 * (cover_q * cover_l) ** 0.5
        return scores

    def _add_row(self, token: str) -> _Row:
        row = self._rows[token] = self._row(token)
        return row

    def _joined(self, listed_joined: Sequence[tuple[int, str]], best_q: list[float]) -> dict[int, float]:
        """Spacing variants, listed side ("hikvision" against a listed "hik vision", or an abjad word against a
        listed pair by its skeleton): marks the query's covered tokens in `best_q`, returns the listed positions
        covered and how well."""
        forced: dict[int, float] = {}
        for j, pair in listed_joined:
            found = self._positions.get(pair)
            if found:
                for i in found:
                    best_q[i] = 1.0
                forced[j] = forced[j + 1] = 1.0
            for i, s in self._extra.get(pair, ()):
                if s > best_q[i]:
                    best_q[i] = s
                for k in (j, j + 1):
                    if s > forced.get(k, 0.0):
                        forced[k] = s
        return forced


def explain(query: NormalizedName, listed: NormalizedName, result: NameScore) -> list[str]:
    """Sentences an analyst reads next to the score."""
    reasons: list[str] = [
        f"name similarity {result.score:.0f} (weighted share of each name's words found in the other)"
    ]
    if result.exact:
        reasons.append(f"tokens matched: {', '.join(result.exact)}")
    if result.similar:
        reasons.append(f"similar tokens: {', '.join(result.similar)}")
    reasons.extend(query.notes)
    reasons.extend(f"listed name {note}" for note in listed.notes if note.startswith("transliterated"))
    if query.weak or listed.weak:
        reasons.append("legal forms ignored: " + ", ".join(dict.fromkeys(query.weak + listed.weak)))
    return reasons
