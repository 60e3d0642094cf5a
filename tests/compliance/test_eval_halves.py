"""The screening benchmark's dev/test halves and its false-positive rule (benchmarks/screening.py)."""

from __future__ import annotations

from benchmarks.screening import DEFAULT_EVAL, Listed, Unlisted, _is_namesake_review, half, read_eval

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.screening import screen_name


def test_every_row_has_one_half_fixed_by_the_row() -> None:
    loaded = read_eval(DEFAULT_EVAL)
    assert loaded is not None
    listed, unlisted = loaded
    rows: list[Listed | Unlisted] = [*listed, *unlisted]
    halves = [half(r) for r in rows]
    assert set(halves) == {"dev", "test"}
    assert halves == [half(r) for r in rows]  # deterministic: a hash of the row, not a random draw
    dev = halves.count("dev")
    assert 0.4 < dev / len(rows) < 0.6


def test_a_namesake_reviewed_as_a_possible_namesake_is_no_false_positive(index: ScreeningIndex) -> None:
    assert _is_namesake_review(screen_name(index, "Kim Song", "KR"))
    assert not _is_namesake_review(screen_name(index, "Wagner Group", "RU"))  # denied: a listed firm
    assert not _is_namesake_review(screen_name(index, "Nvidia Corporation", "US"))  # cleared
