"""Screening benchmark: throughput, latency, precision/recall on the bundled lists.

    .venv/bin/python benchmarks/screening.py [--positives 1500] [--seed 20240101] [--baseline-queries 300]
                                             [--json-out /tmp/screening.json]

Positives are variants of listed names (aliases, Chinese names, typos, reordered tokens, legal-form
changes) generated with a fixed seed; negatives are real unlisted companies (benchmarks/data/).
A query counts as found when the expected entry is among its hits at or above the review threshold;
a negative is a false positive when any hit reaches the review threshold.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import opencc
from rapidfuzz import fuzz, process, utils

from gpulease.compliance.decide import Thresholds
from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.lists import bundled_dataset
from gpulease.compliance.model import ListEntry
from gpulease.compliance.normalize import LEGAL_FORMS, normalize_name

HERE = Path(__file__).resolve().parent
LEGAL_SUFFIXES = ("Ltd.", "LLC", "Co., Ltd.", "GmbH", "Inc.", "S.A.", "Limited", "Corp.")
_S2T = opencc.OpenCC("s2t")


def negatives() -> list[str]:
    lines = (HERE / "data" / "unlisted_companies.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _typo(name: str, rng: random.Random) -> str | None:
    words = name.split()
    candidates = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
    if not candidates:
        return None
    i = rng.choice(candidates)
    word = words[i]
    pos = rng.randrange(1, len(word) - 1)  # typos rarely hit the first letter
    kind = rng.choice(("substitute", "delete", "transpose", "insert"))
    letter = rng.choice("aeioulnrst")
    if kind == "substitute":
        word = word[:pos] + letter + word[pos + 1 :]
    elif kind == "delete":
        word = word[:pos] + word[pos + 1 :]
    elif kind == "transpose":
        word = word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]
    else:
        word = word[:pos] + letter + word[pos:]
    words[i] = word
    return " ".join(words)


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def positives(entries: tuple[ListEntry, ...], count: int, seed: int) -> list[tuple[str, str, str]]:
    """(kind, query, expected entry id), deterministic for a seed."""
    rng = random.Random(seed)
    out: list[tuple[str, str, str]] = []
    for entry in entries:  # every Chinese name on the lists, in both scripts
        for alias in entry.names:
            if _has_cjk(alias):
                out.append(("transliteration", alias, entry.id))
                out.append(("transliteration", _S2T.convert(alias), entry.id))
    pool = [e for e in entries if len(normalize_name(e.name).strong) >= 1]
    kinds = ("alias", "typo", "reordered", "legal form")
    while len(out) < count:
        entry = rng.choice(pool)
        kind = rng.choice(kinds)
        query: str | None = None
        if kind == "alias" and entry.aliases:
            query = rng.choice(entry.aliases)
        elif kind == "typo":
            query = _typo(entry.name, rng)
        elif kind == "reordered":
            words = entry.name.replace(",", " ").split()
            if len(words) >= 2:
                rng.shuffle(words)
                query = " ".join(words)
        elif kind == "legal form":
            words = [w for w in entry.name.replace(",", " ").split() if w.lower().strip(".") not in LEGAL_FORMS]
            if words and entry.type in ("entity", "unknown"):
                query = " ".join(words) + " " + rng.choice(LEGAL_SUFFIXES)
        if query and normalize_name(query).strong:
            out.append((kind, query, entry.id))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_index(index: ScreeningIndex, pos: list[tuple[str, str, str]], neg: list[str], review: float) -> dict[str, Any]:
    latencies: list[float] = []
    found: dict[str, list[bool]] = {}
    start = time.perf_counter()
    for kind, query, expected in pos:
        t0 = time.perf_counter()
        hits = index.screen(query, limit=50)
        latencies.append(time.perf_counter() - t0)
        found.setdefault(kind, []).append(any(h.entry_id == expected and h.score >= review for h in hits))
    false_pos: list[str] = []
    for query in neg:
        t0 = time.perf_counter()
        hits = index.screen(query, limit=5)
        latencies.append(time.perf_counter() - t0)
        if hits and hits[0].score >= review:
            false_pos.append(f"{query} -> {hits[0].matched_name} ({hits[0].entry_id}, {hits[0].score:.0f})")
    elapsed = time.perf_counter() - start
    all_found = [f for values in found.values() for f in values]
    return {
        "names_per_s": len(latencies) / elapsed,
        "median_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "recall": sum(all_found) / len(all_found),
        "recall_by_kind": {k: (sum(v) / len(v), len(v)) for k, v in sorted(found.items())},
        "fp_rate": len(false_pos) / len(neg),
        "false_positives": false_pos,
    }


def run_scan(
    entries: tuple[ListEntry, ...], pos: list[tuple[str, str, str]], neg: list[str], cutoff: float, limit: int
) -> dict[str, Any]:
    """Plain rapidfuzz: extractOne over every listed name (WRatio, default processor)."""
    names: list[str] = []
    owner: list[str] = []
    for entry in entries:
        for name in entry.names:
            names.append(name)
            owner.append(entry.id)
    processed = [utils.default_process(n) for n in names]
    latencies: list[float] = []
    hits = 0
    sample = pos[:limit]
    start = time.perf_counter()
    for _, query, expected in sample:
        t0 = time.perf_counter()
        best = process.extractOne(utils.default_process(query), processed, scorer=fuzz.WRatio, processor=None)
        latencies.append(time.perf_counter() - t0)
        if best and best[1] >= cutoff and owner[best[2]] == expected:
            hits += 1
    fps = 0
    neg_sample = neg[:limit]
    for query in neg_sample:
        t0 = time.perf_counter()
        best = process.extractOne(utils.default_process(query), processed, scorer=fuzz.WRatio, processor=None)
        latencies.append(time.perf_counter() - t0)
        if best and best[1] >= cutoff:
            fps += 1
    elapsed = time.perf_counter() - start
    return {
        "names_per_s": len(latencies) / elapsed,
        "median_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "recall": hits / len(sample),
        "fp_rate": fps / len(neg_sample),
    }


def run_nomenklatura(
    python: Path, pos: list[tuple[str, str, str]], neg: list[str], entries: tuple[ListEntry, ...], limit: int
) -> dict[str, Any] | str:
    if not python.exists():
        return f"not installed ({python} missing)"
    payload = {
        "entries": [[e.id, e.type, list(e.names)] for e in entries],
        "positives": [[q, x] for _, q, x in pos[:limit]],
        "negatives": neg[:limit],
    }
    script = HERE / "nomenklatura_runner.py"
    try:
        proc = subprocess.run(
            [str(python), str(script)],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "timed out after 900 s"
    if proc.returncode != 0:
        return "failed: " + proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
    return dict(json.loads(proc.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--positives", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--baseline-queries", type=int, default=300)
    parser.add_argument("--baseline-cutoff", type=float, default=90.0)
    parser.add_argument("--nomenklatura-python", type=Path, default=Path("/tmp/nk-venv/bin/python"))
    parser.add_argument("--nomenklatura-queries", type=int, default=40)
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--json-out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    t0 = time.perf_counter()
    dataset = bundled_dataset()
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = ScreeningIndex.build(dataset.entries, dataset.version)
    build_s = time.perf_counter() - t0
    review = Thresholds().review
    pos = positives(dataset.entries, args.positives, args.seed)
    neg = negatives()
    print(f"lists: {len(dataset.entries)} entries, {len(index.names)} distinct names, version {dataset.version}")
    print(
        f"load {load_s:.2f} s, index build {build_s:.2f} s; {len(pos)} positives, {len(neg)} negatives; "
        f"review threshold {review:g}"
    )
    ours = run_index(index, pos, neg, review)
    scan = run_scan(dataset.entries, pos, neg, args.baseline_cutoff, args.baseline_queries)
    nk = run_nomenklatura(args.nomenklatura_python, pos, neg, dataset.entries, args.nomenklatura_queries)
    print()
    print(f"{'method':44} {'names/s':>9} {'median ms':>10} {'p99 ms':>8} {'recall':>7} {'FP rate':>8}")
    rows = [
        ("gpulease index (1 core)", ours),
        (
            f"rapidfuzz extractOne scan, WRatio>={args.baseline_cutoff:g} ({args.baseline_queries}+"
            f"{args.baseline_queries} q)",
            scan,
        ),
    ]
    if isinstance(nk, dict):
        rows.append(
            (
                f"nomenklatura name-based, full scan ({args.nomenklatura_queries}+{args.nomenklatura_queries} q)",
                nk,
            )
        )
    for label, r in rows:
        print(
            f"{label:44} {r['names_per_s']:9.0f} {r['median_ms']:10.3f} {r['p99_ms']:8.2f} "
            f"{r['recall']:7.3f} {r['fp_rate']:8.3f}"
        )
    if not isinstance(nk, dict):
        print(f"nomenklatura: {nk}")
    print()
    print("recall by variant kind (gpulease):")
    for kind, (recall, n) in ours["recall_by_kind"].items():
        print(f"  {kind:16} {recall:.3f}  (n={n})")
    print(f"false positives ({len(ours['false_positives'])}):")
    for line in ours["false_positives"]:
        print(f"  {line}")
    if args.json_out:
        keys = ("names_per_s", "median_ms", "p99_ms", "recall", "fp_rate")
        methods = [
            {"key": key, "label": label, "queries": queries, **{k: r[k] for k in keys}}
            for key, label, queries, r in [
                ("gpulease", "gpulease index", len(pos) + len(neg), ours),
                ("rapidfuzz", "rapidfuzz scan", 2 * args.baseline_queries, scan),
                *(
                    [("nomenklatura", "nomenklatura", 2 * args.nomenklatura_queries, nk)]
                    if isinstance(nk, dict)
                    else []
                ),
            ]
        ]
        figures = {
            "benchmark": "screening",
            "entries": len(dataset.entries),
            "distinct_names": len(index.names),
            "positives": len(pos),
            "negatives": len(neg),
            "review_threshold": review,
            "load_s": load_s,
            "build_s": build_s,
            "methods": methods,
            "recall_by_kind": {k: v[0] for k, v in ours["recall_by_kind"].items()},
            "nomenklatura": "ok" if isinstance(nk, dict) else nk,
        }
        args.json_out.write_text(json.dumps(figures, indent=1) + "\n")
        print(f"figures written to {args.json_out}", file=sys.stderr)
    if args.show_misses:
        for kind, query, expected in pos:
            hits = index.screen(query, limit=50)
            if not any(h.entry_id == expected and h.score >= review for h in hits):
                top = hits[0] if hits else None
                print(
                    f"  miss [{kind}] {query!r} expected {expected}; top "
                    f"{top.entry_id if top else '-'} {top.score if top else 0:.0f}"
                )


if __name__ == "__main__":
    main()
