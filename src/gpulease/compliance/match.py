"""Scoring one query name against one listed name, with the features that produced the score."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import OSA, JaroWinkler

from gpulease.compliance.model import ListEntry
from gpulease.compliance.normalize import NormalizedName

# Two tokens count as the same word with a typo from this similarity up; below it they are different
# words: "iflytec"/"iflytek" and "sensetine"/"sensetime" pass, "sugar"/"sugon" and "tesco"/"teaco" do not.
TOKEN_SIMILARITY = 0.82
TOKEN_SIMILARITY_OTHER_START = 0.86
FUZZY_MIN_LENGTH = 4


@dataclass(frozen=True, slots=True)
class Hit:
    """A listed entry that resembles a screened name, with its score (0..100) and the reasons."""

    entry_id: str
    list: str
    name: str
    matched_name: str
    score: float
    reasons: tuple[str, ...]
    entry: ListEntry
    country_agrees: bool | None = None  # None when either side has no country

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "list": self.list,
            "list_name": self.entry.list_name,
            "name": self.name,
            "matched_name": self.matched_name,
            "score": round(self.score, 1),
            "reasons": list(self.reasons),
            "country_agrees": self.country_agrees,
            "programs": list(self.entry.programs),
            "source_url": self.entry.source_url,
        }


@dataclass(frozen=True, slots=True)
class NameScore:
    score: float
    exact: tuple[str, ...]  # tokens found on both sides
    similar: tuple[str, ...]  # "query≈listed" pairs accepted as typos or spacing variants


def _similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if len(a) < FUZZY_MIN_LENGTH or len(b) < FUZZY_MIN_LENGTH:
        return 0.0
    # Jaro-Winkler alone is generous to short words ("seven"/"sever" 0.92); the edit-distance share
    # keeps one typo in five letters below the line while one in six or more passes.
    sim = min(JaroWinkler.normalized_similarity(a, b), OSA.normalized_similarity(a, b))
    if a[0] != b[0]:
        # Typos rarely hit the first letter; anagram-like pairs ("orchid"/"rachid") often differ there.
        return sim if sim >= TOKEN_SIMILARITY_OTHER_START else 0.0
    return sim if sim >= TOKEN_SIMILARITY else 0.0


def compare(
    query: Sequence[str],
    query_weights: Sequence[float],
    listed: Sequence[str],
    listed_weights: Sequence[float],
) -> NameScore:
    """Weighted token alignment: each side's tokens, weighted by rarity, covered by the other side's.

    The score is the geometric mean of both coverages, so a query that is a small part of a long
    listed name (or the reverse) scores low, while reordered tokens and legal forms do not matter.
    """
    nq, nl = len(query), len(listed)
    best_q = [0.0] * nq
    best_l = [0.0] * nl
    pair_q: list[int] = [-1] * nq
    for i, a in enumerate(query):
        for j, b in enumerate(listed):
            s = _similarity(a, b)
            if s > best_q[i]:
                best_q[i] = s
                pair_q[i] = j
            if s > best_l[j]:
                best_l[j] = s
    similar: list[str] = []
    # Spacing variants: "hik vision" against "hikvision", either way round.
    for i in range(nq - 1):
        joined = query[i] + query[i + 1]
        for j, b in enumerate(listed):
            if joined == b:
                best_q[i] = best_q[i + 1] = best_l[j] = 1.0
                pair_q[i] = pair_q[i + 1] = -1
                similar.append(f"{query[i]} {query[i + 1]}≈{b}")
    for j in range(nl - 1):
        joined = listed[j] + listed[j + 1]
        for i, a in enumerate(query):
            if joined == a:
                best_q[i] = best_l[j] = best_l[j + 1] = 1.0
                pair_q[i] = -1
                similar.append(f"{a}≈{listed[j]} {listed[j + 1]}")
    total_q = sum(query_weights) or 1.0
    total_l = sum(listed_weights) or 1.0
    cover_q = sum(w * s for w, s in zip(query_weights, best_q, strict=True)) / total_q
    cover_l = sum(w * s for w, s in zip(listed_weights, best_l, strict=True)) / total_l
    exact = tuple(a for a, s in zip(query, best_q, strict=True) if s == 1.0 and a in listed)
    for i, a in enumerate(query):
        if 0.0 < best_q[i] < 1.0 and pair_q[i] >= 0:
            similar.append(f"{a}≈{listed[pair_q[i]]}")
    return NameScore(100.0 * (cover_q * cover_l) ** 0.5, exact, tuple(similar))


def explain(query: NormalizedName, listed: NormalizedName, result: NameScore) -> list[str]:
    """Sentences an analyst reads next to the score."""
    reasons: list[str] = []
    if result.exact:
        reasons.append(f"tokens matched: {', '.join(result.exact)}")
    if result.similar:
        reasons.append(f"similar tokens: {', '.join(result.similar)}")
    reasons.extend(query.notes)
    reasons.extend(f"listed name {note}" for note in listed.notes if note.startswith("transliterated"))
    if query.weak or listed.weak:
        reasons.append("legal forms ignored: " + ", ".join(dict.fromkeys(query.weak + listed.weak)))
    return reasons
