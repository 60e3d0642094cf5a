"""Placement benchmark: decision latency on a 1,000-node facility, and how it scales with reservations.

    .venv/bin/python benchmarks/placement.py            # full run (about a minute)
    .venv/bin/python benchmarks/placement.py --quick    # smaller, for a smoke test
    .venv/bin/python benchmarks/placement.py --json-out /tmp/placement.json  # also write the figures as JSON

Builds N nodes x 8 A100-80GB in a few clusters, books R existing reservations through the calendar
(random windows over 90 days, never overlapping on a GPU), then times `CapacityCalendar.place` for a
request mix of 1-32 GPUs with windows between now and +90 days. The refusals are timed again with the
calendar changing under them (a reservation booked and one released before each), as in a server that
keeps its calendar in memory. Then the scaling curves: the per-node check (`free_gpus`) and one
booking plus its release on one node holding 1k / 10k / 100k reservations, and whole decisions on
facilities holding 1k / 10k / 100k reservations.

These are component figures: the calendar alone, in one process, no database or API in the way.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gpulease.domain.inventory import NodeView
from gpulease.domain.placement import (
    CapacityCalendar,
    GpuRef,
    PlacementRequest,
    Unplaceable,
)

MODEL = "A100-80GB"
DAY = 86400
HOUR = 3600
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
HORIZON = 90 * DAY
SIZES = [1, 2, 4, 8, 16, 32]
SIZE_WEIGHTS = [40, 20, 15, 15, 7, 3]
RES_SIZES = [1, 2, 4, 8]
RES_WEIGHTS = [60, 15, 15, 10]


def log_uniform(rng: random.Random, lo: int, hi: int) -> int:
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def facility(nodes: int, clusters: int) -> CapacityCalendar:
    per = math.ceil(nodes / clusters)
    return CapacityCalendar(
        NodeView(i, f"node-{i:04d}", f"cluster-{i // per}", "site-1", MODEL, 8) for i in range(nodes)
    )


def fill(cal: CapacityCalendar, nodes: int, reservations: int, rng: random.Random) -> float:
    """Book `reservations` leases (1-8 GPUs on one node, 1 h - 3 d) at random free windows."""
    t0 = time.perf_counter()
    made = 0
    lease = 1_000_000
    while made < reservations:
        k = rng.choices(RES_SIZES, RES_WEIGHTS)[0]
        node = rng.randrange(nodes)
        start = NOW + rng.randrange(HORIZON)
        end = start + log_uniform(rng, HOUR, 3 * DAY)
        free = cal.free_gpus(node, start, end)
        if len(free) < k:
            continue
        cal.book(lease, [GpuRef(node, i) for i in free[:k]], start, end)
        lease += 1
        made += 1
    return time.perf_counter() - t0


def request_mix(rng: random.Random, n: int) -> list[PlacementRequest]:
    out = []
    for _ in range(n):
        k = rng.choices(SIZES, SIZE_WEIGHTS)[0]
        start = NOW if rng.random() < 0.3 else NOW + rng.randrange(HORIZON)
        out.append(PlacementRequest(MODEL, k, start, start + log_uniform(rng, HOUR, 7 * DAY)))
    return out


def time_decisions(cal: CapacityCalendar, reqs: list[PlacementRequest]) -> tuple[list[float], int]:
    """Seconds per place() call (a refusal, with its earliest-start search, counts too); and how many fit."""
    times = []
    placed = 0
    clock = time.perf_counter
    for r in reqs:
        t = clock()
        try:
            cal.place(r)
            placed += 1
            ok = True
        except Unplaceable:
            ok = False
        times.append(clock() - t)
        OUTCOMES.append(ok)
    return times, placed


OUTCOMES: list[bool] = []


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def us(x: float) -> str:
    return f"{x * 1e6:9.1f} µs"


def refusals_while_booking(
    cal: CapacityCalendar, reqs: list[PlacementRequest], nodes: int, rng: random.Random
) -> list[float]:
    """Seconds per refused place() when, before each, one reservation is booked and another released."""
    times = []
    clock = time.perf_counter
    lease = 9_000_000
    for r in reqs:
        while True:  # a 1-GPU reservation somewhere free, booked and kept (so nodes change under us)
            node, start = rng.randrange(nodes), NOW + rng.randrange(HORIZON)
            end = start + log_uniform(rng, HOUR, 3 * DAY)
            free = cal.free_gpus(node, start, end)
            if free:
                cal.book(lease, [GpuRef(node, free[0])], start, end)
                cal.release(lease - 1)  # and the previous one given back
                lease += 1
                break
        t = clock()
        with contextlib.suppress(Unplaceable):
            cal.place(r)
        times.append(clock() - t)
    cal.release(lease - 1)
    return times


def per_node_curve(rng: random.Random, sizes: list[int], probes: int) -> list[dict[str, object]]:
    print("\nPer-node check: free_gpus(node, window) on one 8-GPU node; and one booking + its release there")
    print(f"{'reservations on node':>22} {'median':>12} {'p99':>12} {'build s':>8} {'book+release':>13}")
    curve: list[dict[str, object]] = []
    for r in sizes:
        cal = facility(1, 1)
        per_gpu = r // 8
        span = per_gpu * 2 * HOUR  # average half the time booked, whatever the count
        lease = 0
        t0 = time.perf_counter()
        for gpu in range(8):
            points = sorted(rng.sample(range(0, span, 60), 2 * per_gpu))
            windows = list(zip(points[::2], points[1::2], strict=True))
            rng.shuffle(windows)  # book in random order, as a real calendar fills
            for s, e in windows:
                cal.book(lease, [GpuRef(0, gpu)], NOW + s, NOW + e)
                lease += 1
        build = time.perf_counter() - t0
        windows2 = []
        for _ in range(probes):
            s = NOW + rng.randrange(span)
            windows2.append((s, s + log_uniform(rng, 60, 4 * HOUR)))
        times = []
        clock = time.perf_counter
        for s, e in windows2:
            t = clock()
            cal.free_gpus(0, s, e)
            times.append(clock() - t)
        churn = []
        for s, e in windows2:
            free = cal.free_gpus(0, s, e)
            if free:
                t = clock()
                cal.book(-1, [GpuRef(0, free[0])], s, e)
                cal.release(-1)
                churn.append(clock() - t)
        print(
            f"{cal.reservation_count():>22,} {us(statistics.median(times))} {us(pct(times, 0.99))} {build:8.1f} "
            f"{us(statistics.median(churn))}"
        )
        curve.append(
            {
                "reservations": cal.reservation_count(),
                "median_s": statistics.median(times),
                "p99_s": pct(times, 0.99),
                "build_s": build,
                "book_release_median_s": statistics.median(churn),
            }
        )
    return curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--clusters", type=int, default=4)
    ap.add_argument("--reservations", type=int, default=100_000)
    ap.add_argument("--decisions", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="100 nodes, 10k reservations, short curves")
    ap.add_argument("--json-out", type=Path, help="also write the figures (and every decision's time) as JSON here")
    args = ap.parse_args()
    if args.quick:
        args.nodes, args.reservations, args.decisions = 100, 10_000, 1000
    rng = random.Random(args.seed)

    cal = facility(args.nodes, args.clusters)
    build = fill(cal, args.nodes, args.reservations, rng)
    print(
        f"Facility: {args.nodes} nodes x 8 {MODEL} in {args.clusters} clusters; "
        f"{args.reservations:,} reservations ({cal.reservation_count():,} GPU bookings) "
        f"booked in {build:.1f} s; utilisation over 90 days "
        f"{cal.utilisation(NOW, NOW + HORIZON):.0%}"
    )
    reqs = request_mix(rng, args.decisions)
    time_decisions(cal, reqs[:200])  # warm-up
    OUTCOMES.clear()
    times, placed = time_decisions(cal, reqs)
    outcomes = list(OUTCOMES)
    total = sum(times)
    print(
        f"\nPlacement decisions ({len(reqs):,}, mix {dict(zip(SIZES, SIZE_WEIGHTS, strict=True))} %, "
        f"30% start now, rest within 90 days, 1 h - 7 d):"
    )
    print(
        f"  median {us(statistics.median(times))}   p99 {us(pct(times, 0.99))}   "
        f"mean {us(total / len(times))}   {len(times) / total:,.0f} decisions/s   "
        f"placed {placed / len(reqs):.0%}"
    )
    for label, want in (("placed", True), ("refused (incl. earliest-start search)", False)):
        sub = [t for t, ok in zip(times, outcomes, strict=True) if ok is want]
        if sub:
            print(f"  {label}: median {us(statistics.median(sub))}  p99 {us(pct(sub, 0.99))}  n={len(sub)}")
    for k in SIZES:
        sub = [t for t, r in zip(times, reqs, strict=True) if r.gpu_count == k]
        if sub:
            print(f"  {k:>3} GPUs: median {us(statistics.median(sub))}  p99 {us(pct(sub, 0.99))}  n={len(sub)}")
    refused = [r for r, ok in zip(reqs, outcomes, strict=True) if not ok]
    churned = refusals_while_booking(cal, refused, args.nodes, random.Random(args.seed + 2)) if refused else []
    if churned:
        print(
            f"  refused, the calendar changing between them (a booking and a release before each): "
            f"median {us(statistics.median(churned))}  p99 {us(pct(churned, 0.99))}  n={len(churned)}"
        )

    curve = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    per_node = per_node_curve(rng, curve, 2000)
    whole: list[dict[str, object]] = []

    print(f"\nWhole decisions vs reservations in the facility ({args.nodes} nodes)")
    print(f"{'reservations':>14} {'GPU bookings':>13} {'median':>12} {'p99':>12} {'decisions/s':>12}")
    for r in curve:
        c = facility(args.nodes, args.clusters)
        fill(c, args.nodes, r, random.Random(args.seed + r))
        rq = request_mix(random.Random(args.seed + 1), min(args.decisions, 2000))
        ts, _ = time_decisions(c, rq)
        print(
            f"{r:>14,} {c.reservation_count():>13,} {us(statistics.median(ts))} {us(pct(ts, 0.99))} "
            f"{len(ts) / sum(ts):>12,.0f}"
        )
        whole.append(
            {
                "reservations": r,
                "gpu_bookings": c.reservation_count(),
                "median_s": statistics.median(ts),
                "p99_s": pct(ts, 0.99),
                "decisions_per_s": len(ts) / sum(ts),
            }
        )

    if args.json_out:
        figures = {
            "benchmark": "placement",
            "nodes": args.nodes,
            "clusters": args.clusters,
            "reservations": args.reservations,
            "gpu_bookings": cal.reservation_count(),
            "decisions": [
                {"seconds": t, "placed": ok, "gpus": r.gpu_count}
                for t, ok, r in zip(times, outcomes, reqs, strict=True)
            ],
            "refused_while_booking_s": churned,
            "per_node": per_node,
            "whole": whole,
        }
        args.json_out.write_text(json.dumps(figures, indent=1) + "\n")
        print(f"figures written to {args.json_out}", file=sys.stderr)


if __name__ == "__main__":
    main()
