"""Screening speed, fifth round (the cold pass): what the index works out as it is built is what a query would have
computed, and the shortcuts give what the plain definitions give."""

from __future__ import annotations

import gc
import math
import random

from gpulease.compliance.index import (
    CANDIDATES,
    UNSEEN_WEIGHT,
    ScreeningIndex,
    _capped,
    _misspelt_common_word,
    _written_forms,
)
from gpulease.compliance.normalize import (
    _ALL_PINYIN_SEGMENTS,
    GENERIC_WEIGHT,
    _pinyin_terms,
    _pinyin_words,
    spelling_variants,
)
from gpulease.compliance.romanize import (
    _SKELETON_FOLDS,
    _TWO_LETTER_FOLDS,
    _consonants,
    fold_variants,
    joined,
    skeleton,
    two_letter_skeleton,
)


def _pinyin_words_plain(tokens: list[str]) -> tuple[list[tuple[str, bool]], list[str]]:
    """`_pinyin_words` as it was before its shortcut: the split that reads the most syllables as terms."""
    terms = _pinyin_terms()
    n = len(tokens)
    best: list[tuple[int, int, int]] = [(0, 0, 0)] * (n + 1)
    for i in range(n - 1, -1, -1):
        options = [(best[i + 1][0], best[i + 1][1], 1)]
        for size in range(min(_ALL_PINYIN_SEGMENTS, n - i), 0, -1):
            if "".join(tokens[i : i + size]) in terms:
                after = best[i + size]
                options.append((after[0] - size, after[1] + 1, size))
        best[i] = min(options)
    out: list[tuple[str, bool]] = []
    mapped: list[str] = []
    i = 0
    while i < n:
        size = best[i][2]
        found = terms.get("".join(tokens[i : i + size]))
        if found is not None:
            out.extend((w, found[0]) for w in found[1])
            mapped.append(" ".join(tokens[i : i + size]))
        else:
            out.append((tokens[i], False))
        i += size
    return out, mapped


def test_pinyin_words_with_and_without_the_shortcut() -> None:
    rng = random.Random(7)
    terms = list(_pinyin_terms())
    words = ["you", "xian", "gong", "si", "ke", "ji", "bei", "jing", "huawei", "bank", "trading", "co", "k", "", "x"]
    for _ in range(5000):
        tokens = [rng.choice(words) for _ in range(rng.randint(0, 7))]
        if rng.random() < 0.3:  # a whole term, or a term cut in two, somewhere in the name
            term = rng.choice(terms)
            cut = rng.randint(1, max(len(term) - 1, 1))
            parts = [term] if rng.random() < 0.5 else [term[:cut], term[cut:]]
            at = rng.randint(0, len(tokens))
            tokens[at:at] = [p for p in parts if p]
        assert _pinyin_words(tokens) == _pinyin_words_plain(tokens), tokens


def test_the_two_skeletons_are_their_folds() -> None:
    rng = random.Random(3)
    for _ in range(3000):
        token = "".join(rng.choice("aeiouyghkqxwvtdhsbnrm") for _ in range(rng.randint(1, 12)))
        assert skeleton(token) == _consonants(token, _SKELETON_FOLDS)
        assert two_letter_skeleton(token) == _consonants(token, _TWO_LETTER_FOLDS)
    assert skeleton("markazi") == "mrkz"
    assert two_letter_skeleton("qrrgh") != skeleton("qrrgh")  # (gh two letters in one, one in the other)


def test_joined_is_the_fold_of_both_words() -> None:
    assert joined("hik", "vision") == fold_variants("hikvision")
    assert joined("zhong", "xing") == fold_variants("zhongxing")


def test_what_the_index_works_out_as_it_is_built(index: ScreeningIndex) -> None:
    """Weights of every listed word, written forms of every listed name, exact-word sets of the sources of more than
    CANDIDATES names: there before any query, and what the query would have computed."""
    rng = random.Random(11)
    for token in rng.sample(sorted(index.document_frequency), 2000):
        assert token in index._weights
        expected = _capped(token, math.log1p(len(index.names) / index.document_frequency[token]))
        assert index.weight(token) == expected
    unseen = "zqxwvkjh"
    assert index.weight(unseen) == (
        GENERIC_WEIGHT
        if _misspelt_common_word(unseen)
        else _capped(unseen, min(math.log1p(len(index.names)), UNSEEN_WEIGHT))
    )
    for name_id in rng.sample(range(len(index.names)), 3000):
        assert index._written_all[name_id] == _written_forms(index.names[name_id])
        assert index._written_differing[name_id] == _written_forms(index.names[name_id], True)
    for source in index._token_source.values():
        if len(index._sources[source]) > CANDIDATES:
            assert index._source_sets[source] == frozenset(index._sources[source])


def test_spelling_variants_either_way_asked() -> None:
    for word in ("Rostex", "Iurii", "Loukachenko", "Juri", "Prigojine", "huawei", "bank"):
        assert spelling_variants(word) == spelling_variants(word, False) == spelling_variants(word, pinyin_too=False)
    assert spelling_variants("juri") == ()  # (pinyin: ju + ri)
    assert spelling_variants("juri", True) != ()


def test_a_new_query_leaves_no_large_table_to_the_collector(index: ScreeningIndex) -> None:
    """The caches a query adds to keep keys the collector does not walk: after a collection (as the server's, once the
    index is built) and a query with words and pairs never seen, no table of 20,000 entries or more is young."""
    gc.collect()
    gc.freeze()
    try:
        index.screen("Qzvorlek Brantimox Yuriiovich Trading Xarqenbrot")
        young = gc.get_objects(generation=0) + gc.get_objects(generation=1)
        sizes = sorted((len(o) for o in young if isinstance(o, dict)), reverse=True)
        assert not sizes or sizes[0] < 20_000, sizes[:3]
    finally:
        gc.unfreeze()


def test_word_tables_a_first_query_would_build_are_built_with_the_index() -> None:
    """The common English words' forms (0.3 s) and the misspelt common words' table: built when the index is built
    (list load), not in the first screening request that needs them (merged in a round after speed5: the cold pass
    fell from ~2,150 to ~1,600 names per CPU second until this)."""
    from gpulease.compliance.index import _common_written_words
    from gpulease.compliance.match import english_canonical_words
    from gpulease.compliance.model import ListEntry

    english_canonical_words.cache_clear()
    _common_written_words.cache_clear()
    entry = ListEntry(id="EL-t-1", list="EL", list_name="Entity List", type="Entity", name="Orchid Frontier Ltd")
    ScreeningIndex.build([entry], version="t")
    assert english_canonical_words.cache_info().currsize == 1
    assert _common_written_words.cache_info().currsize == 1
