"""benchmarks/plots.py turns each benchmark's --json-out file into the charts docs/benchmarks.md shows."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

PLOTS = Path(__file__).resolve().parents[1] / "benchmarks" / "plots.py"


@pytest.fixture(scope="module")
def plots() -> object:
    spec = importlib.util.spec_from_file_location("benchmark_plots", PLOTS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def figures() -> list[dict[str, object]]:
    waits = [i * 97 % 40_000 for i in range(3000)]
    mode = {
        "mean_wait_s": 9000,
        "median_wait_s": 4000,
        "p95_wait_s": 30000,
        "max_wait_s": 39999,
        "waits_s": sorted(waits),
        "series": {"bin_s": 3600, "queue_max": [i % 50 for i in range(300)], "utilisation": [0.5] * 300},
    }
    return [
        {
            "benchmark": "placement",
            "nodes": 100,
            "reservations": 10_000,
            "decisions": [{"seconds": 1e-5 * (1 + i % 90), "placed": i % 30 != 0, "gpus": 1} for i in range(900)],
            "per_node": [
                {"reservations": n, "median_s": 3e-6 * (1 + i), "p99_s": 8e-6 * (1 + i)}
                for i, n in enumerate((1_000, 10_000, 100_000))
            ],
        },
        {
            "benchmark": "replay",
            "trace": "philly",
            "nodes": 80,
            "gpus": 640,
            "jobs": 3000,
            "modes": {"EASY backfill": mode, "FIFO": mode},
        },
        {
            "benchmark": "screening",
            "entries": 9094,
            "distinct_names": 20855,
            "review_threshold": 80,
            "positives": 1500,
            "negatives": 396,
            "methods": [
                {"label": name, "names_per_s": rate, "queries": 600, "recall": 0.99, "fp_rate": 0.01}
                for name, rate in (("index", 4000.0), ("scan", 40.0), ("nomenklatura", 1.5))
            ],
        },
    ]


def test_every_chart_of_the_docs_is_drawn_from_the_json(plots: object, tmp_path: Path) -> None:
    src = tmp_path / "json"
    src.mkdir()
    for i, d in enumerate(figures()):
        (src / f"{i}.json").write_text(json.dumps(d))
    (src / "other.json").write_text('{"benchmark": "not ours"}')  # ignored
    argv = sys.argv
    sys.argv = ["plots.py", "--from", str(src), "--out", str(tmp_path / "img")]
    try:
        plots.main()  # type: ignore[attr-defined]
    finally:
        sys.argv = argv
    docs = (PLOTS.parents[1] / "docs" / "benchmarks.md").read_text()
    drawn = sorted(p.name for p in (tmp_path / "img").iterdir())
    shown = sorted({line.split("(img/")[1].split(")")[0] for line in docs.splitlines() if "](img/" in line})
    assert drawn == shown
    for name in drawn:
        svg = (tmp_path / "img" / name).read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert "<dc:date>" not in svg  # no timestamp: the same figures give the same file
