"""Screening speed, second round: the shortcuts give what the plain definitions give."""

from __future__ import annotations

import math
import random
import string

from wordfreq import get_frequency_dict, zipf_frequency

from gpulease.compliance import index as index_module
from gpulease.compliance import romanize
from gpulease.compliance.index import ScreeningIndex, _capped, _english_zipf, common_english
from gpulease.compliance.normalize import _REWRITE_NEEDS, _SPELLING_REWRITES, GENERIC_WEIGHT, spelling_variants
from gpulease.compliance.romanize import fold_variants, is_pinyin, korean_fold


def _words(count: int) -> list[str]:
    """Common and rare English words, and made-up ones (no frequency at all)."""
    rng = random.Random(11)
    listed = [w for w in get_frequency_dict("en") if w.isascii() and w.isalpha() and w.islower()]
    made_up = ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(1, 12))) for _ in range(count)]
    return [*listed[:count], *rng.sample(listed, count), *made_up]


def test_english_zipf_is_wordfreqs_own() -> None:
    for word in _words(3000):
        assert _english_zipf(word) == zipf_frequency(word, "en"), word


def test_common_english_other_words_still_go_through_wordfreq() -> None:
    # Capitals, apostrophes, digits and other scripts are tokenized by wordfreq as before.
    for word in ("The", "don't", "x86", "café", "Москва", "new-york"):
        for zipf in (0.01, 3.0, 4.5):
            assert common_english.__wrapped__(word, zipf) == bool(zipf_frequency(word, "en") >= zipf), word


def _plain_fold(token: str) -> str:
    """fold_variants as it was written: the pinyin test first, for every word."""
    korean = not is_pinyin(token)
    if len(token) < romanize.FOLD_FROM:
        return korean_fold(token) if korean else token
    for old, new in romanize._VARIANTS:
        if old in token:
            token = token.replace(old, new)
    token = romanize._HARD_C.sub("k", token)
    token = romanize._FINAL_EY.sub("ey", romanize._FINAL_Y.sub("y", token))
    token = romanize._DOUBLE.sub(r"\1", romanize._MEDIAL_IY.sub("i", token))
    return korean_fold(token) if korean else token


def test_fold_variants_asks_for_pinyin_only_where_it_matters(index: ScreeningIndex) -> None:
    rng = random.Random(5)
    words = [*rng.sample(sorted(index.document_frequency), 20_000), *_words(1000)]
    # Korean (RR and MR), pinyin read as Korean, and short words.
    words += ["goryeo", "joseon", "pyeongyang", "geumgang", "eun", "seoul", "zhongguo", "xingeun", "heun", "dow", "axa"]
    for word in words:
        assert fold_variants.__wrapped__(word) == _plain_fold(word), word


def test_weight_remembered_is_the_weight(index: ScreeningIndex) -> None:
    names = len(index.names)
    for token in ("bank", "company", "hikvision", "sberbank", "servcies", "zzqxv", "ivanovich", "valentinovich"):
        df = index.document_frequency.get(token)
        if df:
            expected = _capped(token, math.log1p(names / df))
        elif index_module._misspelt_common_word(token):
            expected = GENERIC_WEIGHT
        else:
            expected = _capped(token, min(index._max_weight, index_module.UNSEEN_WEIGHT))
        assert index.weight(token) == expected == index.weight(token), token


def test_the_index_build_makes_the_word_tables_of_the_first_screen() -> None:
    index_module._common_word_keys.cache_clear()
    ScreeningIndex.build([])
    assert index_module._common_word_keys.cache_info().currsize == 1


def test_spelling_rewrites_skipped_only_where_they_cannot_apply(index: ScreeningIndex) -> None:
    # Every rewrite, tried on every word: where its letters are missing, its regex changes nothing.
    rng = random.Random(3)
    words = [*rng.sample(sorted(index.document_frequency), 20_000), *_words(1000)]
    words += ["prigojine", "evguenii", "schukow", "djamil", "iakov", "eslami", "ghods", "tareq", "hussein"]
    for word in words:
        for (_, pattern, replacement), needs in zip(_SPELLING_REWRITES, _REWRITE_NEEDS, strict=True):
            if needs not in word:
                assert pattern.sub(replacement, word) == word, (word, pattern.pattern)
    assert spelling_variants("prigojine") and spelling_variants("evguenii")
