"""The screening benchmark's dev/test halves and its false-positive rule (benchmarks/screening.py)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.screening import DEFAULT_EVAL, Listed, Unlisted, _is_namesake_review, dump_outcomes, half, read_eval

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


def test_dump_writes_each_rows_outcome_in_order(index: ScreeningIndex, tmp_path: Path) -> None:
    """--dump: one line per row, in order, with the decision, the top entry and score, and the whole result."""
    rows = [("Wagner Group", "RU"), ("Nvidia Corporation", "US"), ("Kim Song", "KR")]
    out = tmp_path / "outcomes.jsonl"
    dump_outcomes(index, rows, out)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(line["name"], line["country"]) for line in lines] == [(n, c) for n, c in rows]
    for (name, country), line in zip(rows, lines, strict=True):
        result = screen_name(index, name, country)
        assert line["decision"] == result.decision
        assert line["result"] == json.loads(json.dumps(result.to_dict()))
        top = result.hits[0].hit if result.hits else None
        assert line["top_score"] == (f"{top.score:.1f}" if top else None)
        assert line["top_entry"] == (f"{top.entry_id} {top.matched_name}" if top else None)
    assert lines[0]["decision"] == "denied" and lines[1]["decision"] == "cleared"
