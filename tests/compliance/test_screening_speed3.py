"""Screening speed, third round: what is remembered or skipped gives what the plain computation gives."""

from __future__ import annotations

import random

from gpulease.compliance.index import ScreeningIndex, blocking_keys
from gpulease.compliance.normalize import _T2S, _t2s_changes, _to_simplified, normalize_name


def test_simplified_skips_opencc_only_where_it_changes_nothing(index: ScreeningIndex) -> None:
    changes = _t2s_changes()
    assert changes is not None  # (opencc's tables as expected: otherwise every text is converted, as before)
    chars, phrases = changes
    assert "華" in chars and "为" not in chars
    listed = [
        name for entry in index.entries for name in (entry.name, *entry.aliases, *(a.alias for a in entry.enrichment))
    ]
    chinese = [name for name in listed if any("\u4e00" <= ch <= "\u9fff" for ch in name)]
    # Random texts of the tables' own characters (simplified ones among them), the phrases' words written in.
    pool = sorted({*"".join(chinese), *chars, *(ch for found in phrases.values() for p in found for ch in p)})
    words = [p for found in phrases.values() for p in found]
    rng = random.Random(7)
    texts = [*chinese, "华为技术有限公司", "華為技術有限公司", "", "Huawei 华为 (深圳)"]
    for _ in range(20_000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 10)))
        if rng.random() < 0.3:
            text = text[:2] + rng.choice(words) + text[2:]
        texts.append(text)
    skipped = 0
    for text in texts:
        assert _to_simplified(text) == _T2S.convert(text), text
        skipped += _to_simplified(text) is text
    assert skipped > 100  # (the shortcut is taken: simplified names are most of the listed Chinese ones)


def test_normalize_name_remembered_is_the_same_name() -> None:
    for name in ("Huawei Technologies Co., Ltd.", "華為技術有限公司", "Bank Melli Iran", "بانک ملی ایران"):
        assert normalize_name(name) == normalize_name.__wrapped__(name)
        assert normalize_name(name) is normalize_name(name)


def test_names_under_remembered_are_the_names_under(index: ScreeningIndex) -> None:
    for token in ("china", "technology", "bank", "hikvision", "sberbank", "zzqxv", "co", "of"):
        keys = blocking_keys(token)
        first: list[tuple[int, str, float]] = []
        again: list[tuple[int, str, float]] = []
        ids, lists = index._names_under(keys, 1.5, first)
        assert keys in index._under
        ids_again, lists_again = index._names_under(keys, 2.5, again)
        fresh = set().union(*lists)
        assert ids == ids_again == fresh and lists_again == lists
        assert fresh <= set().union(*(index.postings.get(k, []) for k in keys))
        assert [(n, k) for n, k, _ in first] == [(n, k) for n, k, _ in again]
        assert all(w == 2.5 for _, _, w in again)  # (the weight is the caller's, not the one remembered)
