"""CPU placement benchmark: decisions on a mixed CPU/GPU facility (a component figure).

    .venv/bin/python benchmarks/cpu_placement.py            # full run
    .venv/bin/python benchmarks/cpu_placement.py --quick    # smaller, for a smoke test
    .venv/bin/python benchmarks/cpu_placement.py --json-out /tmp/cpu_placement.json

Builds C CPU nodes (2 x EPYC-9654: 192 cores, 1,536 GiB) and G GPU nodes (8 x H100-80GB, 2 x Xeon-8480+: 112
cores, 2,048 GiB, keeping 12 cores and 192 GiB per GPU), fills the CPU calendar with R reservations (1-64 cores, 1 h
- 3 d, over 90 days), then times a mix of requests: CPU leases (1-96 cores, some with memory, half allowing GPU
nodes) through `CpuCalendar.place` and GPU leases (1-8 GPUs) through `CapacityCalendar.place`, each placed request
booked so the facility fills as it would. A refusal (with its earliest-start search) counts as a decision. Then
whole-node CPU requests (192 cores, 14-45 days, not booked) time refusals with their earliest-start search.

These are component figures: the calendars alone, in one process, no database or API in the way.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gpulease.domain.cpu import CpuNodeView, gpu_share
from gpulease.domain.cpu_placement import CpuCalendar, CpuRequest
from gpulease.domain.inventory import NodeView
from gpulease.domain.placement import CapacityCalendar, PlacementRequest, Unplaceable

GPU = "H100-80GB"
DAY = 86400
HOUR = 3600
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
HORIZON = 90 * DAY
CPU_SIZES = [1, 2, 4, 8, 16, 32, 64, 96]
CPU_WEIGHTS = [15, 15, 20, 20, 12, 10, 5, 3]
GPU_SIZES = [1, 2, 4, 8]
GPU_WEIGHTS = [40, 20, 20, 20]


def log_uniform(rng: random.Random, lo: int, hi: int) -> int:
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def facility(cpu_nodes: int, gpu_nodes: int) -> tuple[CpuCalendar, CapacityCalendar]:
    cpu = [CpuNodeView(i, f"cpu-{i:04d}", "cpu", "site-1", "EPYC-9654", 2, 192, 1536) for i in range(cpu_nodes)]
    gpu_ids = range(cpu_nodes, cpu_nodes + gpu_nodes)
    cpu += [
        CpuNodeView(i, f"gpu-{i:04d}", "gpu", "site-1", "Xeon-8480+", 2, 112, 2048, gpu_count=8, share=gpu_share(GPU))
        for i in gpu_ids
    ]
    gpus = CapacityCalendar(NodeView(i, f"gpu-{i:04d}", "gpu", "site-1", GPU, 8) for i in gpu_ids)
    return CpuCalendar(cpu), gpus


def fill(cal: CpuCalendar, cpu_nodes: int, reservations: int, rng: random.Random) -> float:
    t0 = time.perf_counter()
    made, lease = 0, 1_000_000
    while made < reservations:
        node = rng.randrange(cpu_nodes)
        start = NOW + rng.randrange(HORIZON)
        end = start + log_uniform(rng, HOUR, 3 * DAY)
        k = rng.choice([1, 2, 4, 8, 16, 32, 64])
        free = cal.free_cores(node, start, end)
        if len(free) < k or cal.free_memory_gib(node, start, end) < 8 * k:
            continue
        cal.book(lease, node, tuple(free[:k]), 8 * k, start, end)
        lease += 1
        made += 1
    return time.perf_counter() - t0


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def run(cpu_nodes: int, gpu_nodes: int, reservations: int, decisions: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    cpus, gpus = facility(cpu_nodes, gpu_nodes)
    build = fill(cpus, cpu_nodes, reservations, rng)
    times: dict[str, list[float]] = {"cpu": [], "gpu": []}
    placed = {"cpu": 0, "gpu": 0}
    clock = time.perf_counter
    lease = 5_000_000
    for _ in range(decisions):
        start = NOW if rng.random() < 0.3 else NOW + rng.randrange(HORIZON)
        end = start + log_uniform(rng, HOUR, 7 * DAY)
        lease += 1
        if rng.random() < 0.7:
            k = rng.choices(CPU_SIZES, CPU_WEIGHTS)[0]
            mem = None if rng.random() < 0.5 else k * rng.choice([4, 8, 16])
            req = CpuRequest(k, start, end, mem, None, rng.random() < 0.5)
            t = clock()
            try:
                p = cpus.place(req)
                times["cpu"].append(clock() - t)
                cpus.book(lease, p.node_id, p.cores, p.memory_gib, start, end)
                placed["cpu"] += 1
            except Unplaceable:
                times["cpu"].append(clock() - t)
        else:
            g = rng.choices(GPU_SIZES, GPU_WEIGHTS)[0]
            greq = PlacementRequest(GPU, g, start, end)
            t = clock()
            try:
                gp = gpus.place(greq)
                times["gpu"].append(clock() - t)
                gpus.book(lease, gp.gpus, start, end)
                placed["gpu"] += 1
            except Unplaceable:
                times["gpu"].append(clock() - t)
    # Whole-node CPU requests over 14-45 days, not booked: many are refused, each refusal with its earliest start.
    refusals: list[float] = []
    for _ in range(max(1, decisions // 10)):
        start = NOW + rng.randrange(HORIZON)
        req = CpuRequest(192, start, start + log_uniform(rng, 14 * DAY, 45 * DAY), cpu_model="EPYC-9654")
        t = clock()
        try:
            cpus.place(req)
        except Unplaceable:
            refusals.append(clock() - t)
    every = times["cpu"] + times["gpu"]
    out: dict[str, object] = {
        "cpu_nodes": cpu_nodes,
        "gpu_nodes": gpu_nodes,
        "reservations": reservations,
        "fill_s": build,
        "decisions": len(every),
        "decisions_per_s": len(every) / sum(every),
        "p50_s": pct(every, 0.5),
        "p99_s": pct(every, 0.99),
    }
    out["refusals"] = {
        "asked": max(1, decisions // 10),
        "refused": len(refusals),
        "p50_s": pct(refusals, 0.5),
        "p99_s": pct(refusals, 0.99),
    }
    for kind in ("cpu", "gpu"):
        xs = times[kind]
        out[kind] = {
            "decisions": len(xs),
            "placed": placed[kind],
            "p50_s": pct(xs, 0.5),
            "p99_s": pct(xs, 0.99),
            "mean_s": statistics.fmean(xs) if xs else float("nan"),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--cpu-nodes", type=int, default=500)
    ap.add_argument("--gpu-nodes", type=int, default=250)
    ap.add_argument("--reservations", type=int, default=20_000)
    ap.add_argument("--decisions", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json-out", type=Path)
    a = ap.parse_args()
    if a.quick:
        a.cpu_nodes, a.gpu_nodes, a.reservations, a.decisions = 50, 25, 1_000, 500
    r = run(a.cpu_nodes, a.gpu_nodes, a.reservations, a.decisions, a.seed)
    print("CPU placement on a mixed facility (component figure: the calendars alone, one process, no DB or API)")
    print(f"  {a.cpu_nodes} CPU nodes x 192 cores, {a.gpu_nodes} GPU nodes x 8 {GPU} (16 leasable cores each)")
    print(f"  {a.reservations:,} CPU reservations booked first in {r['fill_s']:.1f} s")
    print(
        f"  all: {r['decisions']} decisions, {r['decisions_per_s']:,.0f} decisions/s, "
        f"p50 {float(str(r['p50_s'])) * 1e6:,.1f} µs, p99 {float(str(r['p99_s'])) * 1e6:,.1f} µs"
    )
    for kind in ("cpu", "gpu"):
        k = r[kind]
        assert isinstance(k, dict)
        print(
            f"  {kind}: {k['decisions']} decisions, {k['placed']} placed, p50 {k['p50_s'] * 1e6:,.1f} µs, "
            f"p99 {k['p99_s'] * 1e6:,.1f} µs"
        )
    ref = r["refusals"]
    assert isinstance(ref, dict)
    print(
        f"  whole-node CPU requests: {ref['refused']} of {ref['asked']} refused (with earliest start), "
        f"p50 {ref['p50_s'] * 1e6:,.1f} µs, p99 {ref['p99_s'] * 1e6:,.1f} µs"
    )
    if a.json_out:
        a.json_out.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
