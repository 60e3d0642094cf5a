"""The fast paths of the screening engine give what the plain definitions give."""

from __future__ import annotations

import random
import string
import unicodedata
from collections.abc import Iterator

import pytest

from gpulease.compliance.index import CANDIDATES, EXACT_KEY_BONUS, KNOWN_SUBSIDIARY, ScreeningIndex, blocking_keys
from gpulease.compliance.match import QueryScorer, _similarity, compare
from gpulease.compliance.normalize import NormalizedName, fold, normalize_name
from gpulease.compliance.romanize import joined

QUERIES = [
    "iFlytek Co., Ltd.",
    "Iflytec",
    "Hik Vision",
    "Hikvision Digital Technology Co., Ltd. Hang Zhou",
    "Digital Technology Hangzhou Hikvision",
    "National Bank of Cuba",
    "Beijing Technology Development",
    "北京商湯科技開發有限公司",
    "Sensetine Group",
    "Bank",
    "Cruise LLC",
]


def _variants(index: ScreeningIndex, count: int) -> list[str]:
    """Listed names reordered, with two adjacent tokens joined or one token split."""
    rng = random.Random(7)
    out: list[str] = []
    for _ in range(count):
        tokens = list(rng.choice(index.names).norm.strong)
        rng.shuffle(tokens)
        k = rng.randrange(len(tokens))
        if len(tokens) > 1 and rng.random() < 0.5:
            tokens[k : k + 2] = [tokens[k] + tokens[(k + 1) % len(tokens)]]
        elif len(tokens[k]) > 5:
            tokens[k : k + 1] = [tokens[k][:3], tokens[k][3:]]
        out.append(" ".join(tokens))
    return out


def _queries(index: ScreeningIndex, variants: int) -> Iterator[tuple[str, NormalizedName, list[float]]]:
    """The fixed queries and `variants` generated ones, normalised (those with a strong word), with their weights."""
    for text in QUERIES + _variants(index, variants):
        query = normalize_name(text)
        if query.strong:
            yield text, query, [index.weight(t) for t in query.strong]


@pytest.mark.parametrize("prepared", [False, True])
def test_query_scorer_equals_compare(index: ScreeningIndex, prepared: bool) -> None:
    rng = random.Random(11)
    checked = 0
    for text, query, weights in _queries(index, 150):
        scorer = QueryScorer(query.strong, weights)
        ids = set(index._candidates(query.strong, weights)) | set(rng.sample(range(len(index.names)), 20))
        if prepared:
            scorer.prepare(t for i in ids for t in index.names[i].norm.strong)
        for name_id in ids:
            listed = index.names[name_id]
            expected = compare(
                query.strong, weights, listed.norm.strong, listed.weights, listed_joined=listed.joined
            ).score
            got = scorer.score(listed.norm.strong, listed.weights, listed.total, listed.joined)
            assert got == expected, (text, listed.name)
            checked += 1
    assert checked > 3000


def test_query_scorer_with_extra_similarities_equals_compare(index: ScreeningIndex) -> None:
    """Extra similarities (skeleton matches, other spellings) count as `compare` counts them, whether prepare() saw
    the token or not."""
    checked = 0
    for text, query, weights in _queries(index, 60):
        ids = index._candidates(query.strong, weights)
        listed_tokens = sorted({t for i in ids for t in index.names[i].norm.strong})
        # (Not on a token that two query tokens written as one also give: QueryScorer counts that one otherwise.)
        spacing = {joined(a, b) for a, b in zip(query.strong, query.strong[1:], strict=False)}
        some = [t for t in listed_tokens[::3] if t not in spacing]
        extra = {t: [(k % len(query.strong), 0.9)] for k, t in enumerate(some)}
        for prepared in (False, True):
            scorer = QueryScorer(query.strong, weights, extra)
            if prepared:
                scorer.prepare(listed_tokens)
            for name_id in ids:
                listed = index.names[name_id]
                expected = compare(
                    query.strong, weights, listed.norm.strong, listed.weights, extra, listed_joined=listed.joined
                ).score
                got = scorer.score(listed.norm.strong, listed.weights, listed.total, listed.joined)
                assert got == expected, (text, listed.name, prepared)
                checked += 1
    assert checked > 2000


def test_compare_with_remembered_similarities_equals_compare(index: ScreeningIndex) -> None:
    """`compare` given a QueryScorer's remembered similarities aligns as it does on its own: the same score, covers,
    pairs and words, also with the extra similarities of skeleton matches and typos in context, and where prepare()
    worked them out for many tokens at once."""
    checked = 0
    checked_queries: list[str] = []
    for text, query, weights in _queries(index, 100):
        scorer = QueryScorer(query.strong, weights)
        ids = index._candidates(query.strong, weights)
        if len(checked_queries) % 2:  # (as screening does: the similarities of the candidates' tokens at once)
            tokens = {t for i in ids for t in index.names[i].norm.strong}
            scorer.prepare(tokens)
            for token in tokens:
                one_by_one = tuple((i, s) for i, a in enumerate(query.strong) if (s := _similarity(a, token)) > 0.0)
                assert scorer.similarities(token) == one_by_one, (text, token)
        checked_queries.append(text)
        for name_id in ids:
            listed = index.names[name_id].norm
            last = len(query.strong) - 1
            for extra in (None, {listed.strong[0]: [(last, 0.9), (0, 0.0)], listed.strong[-1]: [(0, 0.82)]}):
                plain = compare(
                    query.strong, weights, listed.strong, index.names[name_id].weights, extra, query.display
                )
                remembered = compare(
                    query.strong,
                    weights,
                    listed.strong,
                    index.names[name_id].weights,
                    extra,
                    query.display,
                    scorer.similarities,
                )
                assert remembered == plain, (text, listed.original, extra)
                checked += 1
    assert checked > 3000


def test_spacing_variants_both_ways() -> None:
    scorer = QueryScorer(("hik", "vision", "digital"), (3.0, 1.0, 2.0))
    plain = compare(("hik", "vision", "digital"), (3.0, 1.0, 2.0), ("hikvision", "digital"), (4.0, 2.0))
    assert scorer.score(("hikvision", "digital"), (4.0, 2.0), 6.0, ((0, "hikvisiondigital"),)) == plain.score == 100.0
    scorer = QueryScorer(("hikvision",), (4.0,))
    plain = compare(("hikvision",), (4.0,), ("hik", "vision"), (3.0, 1.0))
    assert scorer.score(("hik", "vision"), (3.0, 1.0), 4.0, ((0, "hikvision"),)) == plain.score == 100.0


def _blocking_scores(index: ScreeningIndex, strong: tuple[str, ...], weights: list[float]) -> dict[int, float]:
    """The blocking score of every name, straight from the postings (no regrouping, no cut)."""
    scores: dict[int, float] = {}
    for token, w in zip(strong, weights, strict=True):
        ids: set[int] = set()
        for key in blocking_keys(token):
            posting = index.postings.get(key, [])
            if len(posting) <= 1500:
                ids.update(posting)
        for name_id in ids:
            scores[name_id] = scores.get(name_id, 0.0) + w
        # Names with the query word itself, where enough others are one letter away to crowd them out.
        if len(ids) > CANDIDATES and 0 < len(index.postings.get(token, [])) <= 1500:
            for name_id in ids:
                if token in index.names[name_id].norm.strong:
                    scores[name_id] += w * EXACT_KEY_BONUS
    for a, b, wa, wb in zip(strong, strong[1:], weights, weights[1:], strict=False):
        posting = index.postings.get(joined(a, b), [])
        if len(posting) <= 1500:
            for name_id in posting:
                scores[name_id] = scores.get(name_id, 0.0) + (wa + wb)
    return scores


def test_candidates_are_the_best_blocking_scores_ties_to_lower_ids(index: ScreeningIndex) -> None:
    for text in QUERIES + _variants(index, 100):
        query = normalize_name(text)
        weights = [index.weight(t) for t in query.strong]
        scores = _blocking_scores(index, query.strong, weights)
        if not scores:
            continue
        expected = sorted(scores, key=lambda name_id: (-scores[name_id], name_id))[:CANDIDATES]
        assert index._candidates(query.strong, weights) == expected, text


def test_names_are_ordered_by_total_weight(index: ScreeningIndex) -> None:
    # The listed names first, then the known subsidiaries (they lose ties for the candidate slots), each by weight.
    order = [(name.kind == KNOWN_SUBSIDIARY, name.total) for name in index.names]
    assert order == sorted(order)
    assert order[0][0] is False and order[-1][0] is True


def test_fold_ascii_fast_path_matches_unicode_path() -> None:
    def slow(text: str) -> str:
        text = unicodedata.normalize("NFKC", text).casefold()
        return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))

    rng = random.Random(3)
    samples = [chr(c) for c in range(128)] + [
        "".join(rng.choice(string.printable) for _ in range(rng.randrange(40))) for _ in range(2000)
    ]
    for text in [*samples, "Société Générale", "ＡＢＣ", "Straße"]:
        assert fold(text) == slow(text)
