"""Trace replay: the real calendar and queue under a simulated clock, EASY backfill vs plain FIFO.

    .venv/bin/python benchmarks/replay.py --trace philly               # 82k jobs, 80 nodes x 8 GPUs
    .venv/bin/python benchmarks/replay.py --trace alibaba              # 1,213 nodes, 7k GPU pods
    .venv/bin/python benchmarks/replay.py --trace alibaba --node-fraction 0.1
    .venv/bin/python benchmarks/replay.py --trace philly --json-out /tmp/replay.json  # also write figures as JSON

Event-driven: job submissions and completions; after all events at one instant, `schedule` runs once.
Durations are known up front (the trace's), so backfill sees exact run times, as Slurm does with
accurate time limits. A job's booking is released when it completes, which keeps the calendar to the
running jobs (past bookings never affect a future window).
"""

from __future__ import annotations

import argparse
import csv
import heapq
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gpulease.domain.inventory import NodeView
from gpulease.domain.leases import Plan
from gpulease.domain.placement import CapacityCalendar
from gpulease.domain.queue import WaitingQueue, WaitingRequest, schedule

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    submit: int
    duration: int
    gpus: int
    model: str


def load_philly(trace_dir: Path, nodes: int) -> tuple[list[NodeView], list[Job]]:
    jobs = []
    with open(trace_dir / "philly" / "philly.csv", newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            ts = int(datetime.fromisoformat(row["timestamp"] + "+00:00").timestamp())
            jobs.append(Job(i, ts, max(1, math.ceil(float(row["duration"]))), int(row["num_gpus"]), "P100"))
    # Philly publishes no node list: one cluster of 8-GPU nodes (jobs above 8 GPUs take whole nodes).
    facility = [NodeView(i, f"philly-{i:03d}", "philly", "msr", "P100", 8) for i in range(nodes)]
    return facility, jobs


def load_alibaba(trace_dir: Path, fraction: float) -> tuple[list[NodeView], list[Job]]:
    d = trace_dir / "alibaba-gpu-v2023"
    facility = []
    with open(d / "openb_node_list_gpu_node.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # Keep every k-th node so the mix of models and sizes survives the cut.
    step = max(1, round(1 / fraction))
    for i, row in enumerate(rows[::step]):
        # No pod in the default list asks for a GPU type (gpu_spec is empty), so every node is one pool;
        # the model becomes the cluster, node sizes (1-8 GPUs) are kept.
        facility.append(NodeView(i, row["sn"], row["model"], "openb", "openb-gpu", int(row["gpu"])))
    jobs = []
    with open(d / "openb_pod_list_default.csv", newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            n = int(row["num_gpu"])
            if n == 0:
                continue  # CPU-only pod
            created = int(row["creation_time"])
            began = int(row["scheduled_time"]) if row["scheduled_time"] else created
            # A pod sharing a GPU (gpu_milli < 1000) still gets a whole GPU: leases are whole GPUs.
            jobs.append(Job(i, created, max(1, int(row["deletion_time"]) - began), n, "openb-gpu"))
    return facility, jobs


@dataclass(slots=True)
class Outcome:
    wall_s: float
    schedule_calls: int
    decisions: int
    waits: list[int]
    makespan: int
    utilisation: float
    one_node_2_8: float
    min_nodes_multi: float
    expired: int
    unplaceable: int
    max_queue: int
    started: dict[int, int]  # job id -> simulated start time


def replay(facility: list[NodeView], jobs: list[Job], backfill: bool) -> Outcome:
    cal = CapacityCalendar(facility)
    queue = WaitingQueue()
    by_id = {j.id: j for j in jobs}
    order = sorted(jobs, key=lambda j: (j.submit, j.id))
    completions: list[tuple[int, int]] = []
    started: dict[int, int] = {}
    nodes_used: dict[int, int] = {}
    calls = 0
    unplaceable = expired = max_queue = 0
    i = 0
    t0 = time.perf_counter()
    while i < len(order) or completions:
        now = min(order[i].submit if i < len(order) else math.inf, completions[0][0] if completions else math.inf)
        assert isinstance(now, int)
        while completions and completions[0][0] == now:
            cal.release(heapq.heappop(completions)[1])
        while i < len(order) and order[i].submit == now:
            j = order[i]
            queue.push(WaitingRequest(j.id, j.model, j.gpus, Plan.ON_DEMAND, j.duration, j.submit))
            i += 1
        max_queue = max(max_queue, len(queue))
        result = schedule(queue, cal, now, backfill=backfill)
        calls += 1
        unplaceable += len(result.unplaceable)
        expired += len(result.expired)
        for d in result:
            started[d.request_id] = now
            nodes_used[d.request_id] = len(d.placement.node_ids)
            heapq.heappush(completions, (now + by_id[d.request_id].duration, d.request_id))
        if not completions and len(queue) and i == len(order):
            break  # nothing running, nothing coming, queue stuck (should not happen)
    wall = time.perf_counter() - t0
    done = [by_id[k] for k in started]
    waits = [started[j.id] - j.submit for j in done]
    first = min(j.submit for j in jobs)
    end = max(started[j.id] + j.duration for j in done)
    capacity = sum(n.gpu_count for n in facility) * (end - first)
    small = [j for j in done if 2 <= j.gpus <= 8]
    big = [j for j in done if j.gpus > 8]
    return Outcome(
        wall_s=wall,
        schedule_calls=calls,
        decisions=len(started),
        waits=waits,
        makespan=end - first,
        utilisation=sum(j.gpus * j.duration for j in done) / capacity,
        one_node_2_8=sum(nodes_used[j.id] == 1 for j in small) / len(small) if small else 1.0,
        min_nodes_multi=(sum(nodes_used[j.id] == math.ceil(j.gpus / 8) for j in big) / len(big) if big else 1.0),
        expired=expired,
        unplaceable=unplaceable,
        max_queue=max_queue,
        started=started,
    )


def hours(s: float) -> str:
    return f"{s / 3600:,.2f} h"


def report(name: str, facility: list[NodeView], jobs: list[Job], results: dict[str, Outcome]) -> None:
    gpus = sum(n.gpu_count for n in facility)
    span = max(j.submit for j in jobs) - min(j.submit for j in jobs)
    demand = sum(j.gpus * j.duration for j in jobs)
    print(
        f"\n{name}: {len(jobs):,} jobs on {len(facility):,} nodes / {gpus:,} GPUs; offered load over the "
        f"submission span {demand / (gpus * span):.0%}"
    )
    rows: list[tuple[str, ...]] = [("", *results)]

    def row(label: str, f: object) -> None:
        rows.append((label, *(f(o) for o in results.values())))  # type: ignore[operator]

    row("replay wall time", lambda o: f"{o.wall_s:.1f} s")
    row("schedule() calls", lambda o: f"{o.schedule_calls:,}")
    row("start decisions", lambda o: f"{o.decisions:,}")
    row("decisions/s (wall)", lambda o: f"{o.decisions / o.wall_s:,.0f}")
    row("schedule() calls/s", lambda o: f"{o.schedule_calls / o.wall_s:,.0f}")
    row("GPU utilisation", lambda o: f"{o.utilisation:.1%}")
    row("mean wait", lambda o: hours(statistics.fmean(o.waits)))
    row("median wait", lambda o: hours(statistics.median(o.waits)))
    row("p95 wait", lambda o: hours(sorted(o.waits)[int(0.95 * len(o.waits))]))
    row("max wait", lambda o: hours(max(o.waits)))
    row("makespan", lambda o: f"{o.makespan / 86400:,.1f} d")
    row("2-8 GPU leases on one node", lambda o: f"{o.one_node_2_8:.1%}")
    row(">8 GPU leases on fewest nodes", lambda o: f"{o.min_nodes_multi:.1%}")
    row("longest queue", lambda o: f"{o.max_queue:,}")
    row("unplaceable (too large)", lambda o: f"{o.unplaceable:,}")
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        print(
            "  "
            + "  ".join(
                cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(r, widths, strict=True))
            )
        )


def series(jobs: list[Job], o: Outcome, gpus: int, bin_s: int) -> dict[str, object]:
    """Queue length (max per bin) and busy GPUs (mean per bin) over simulated time, rebuilt after the replay
    from submission and start times, so recording them costs the timed loop nothing."""
    delta: dict[int, list[int]] = {}  # instant -> [queue change, busy GPU change]
    for j in jobs:
        delta.setdefault(j.submit, [0, 0])[0] += 1
        if j.id in o.started:
            s = o.started[j.id]
            delta.setdefault(s, [0, 0])[0] -= 1
            delta[s][1] += j.gpus
            delta.setdefault(s + j.duration, [0, 0])[1] -= j.gpus
    t0 = min(delta)
    bins = (max(delta) - t0) // bin_s + 1
    queue_max = [0] * bins
    busy_area = [0.0] * bins
    queue = busy = 0
    prev = t0
    for t in sorted(delta):
        while prev < t:  # busy GPUs were constant over [prev, t)
            b = (prev - t0) // bin_s
            step = min(t, t0 + (b + 1) * bin_s) - prev
            busy_area[b] += busy * step
            prev += step
        dq, db = delta[t]
        queue += dq
        busy += db
        b = (t - t0) // bin_s
        queue_max[b] = max(queue_max[b], queue)
    return {
        "bin_s": bin_s,
        "queue_max": queue_max,
        "utilisation": [round(a / (bin_s * gpus), 4) for a in busy_area],
    }


def write_json(
    path: Path, trace: str, name: str, facility: list[NodeView], jobs: list[Job], results: dict[str, Outcome]
) -> None:
    gpus = sum(n.gpu_count for n in facility)
    modes = {}
    for label, o in results.items():
        waits = sorted(o.waits)
        modes[label] = {
            "wall_s": o.wall_s,
            "schedule_calls": o.schedule_calls,
            "decisions": o.decisions,
            "utilisation": o.utilisation,
            "mean_wait_s": statistics.fmean(waits),
            "median_wait_s": statistics.median(waits),
            "p95_wait_s": waits[int(0.95 * len(waits))],
            "max_wait_s": waits[-1],
            "makespan_s": o.makespan,
            "max_queue": o.max_queue,
            "waits_s": waits,
            "series": series(jobs, o, gpus, 3600),
        }
    figures = {
        "benchmark": "replay",
        "trace": trace,
        "name": name,
        "nodes": len(facility),
        "gpus": gpus,
        "jobs": len(jobs),
        "modes": modes,
    }
    path.write_text(json.dumps(figures) + "\n")
    print(f"figures written to {path}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", choices=["philly", "alibaba"], required=True)
    ap.add_argument("--trace-dir", type=Path, default=REPO.parent / "shared" / "traces")
    ap.add_argument("--nodes", type=int, default=80, help="Philly: number of 8-GPU nodes")
    ap.add_argument("--node-fraction", type=float, default=1.0, help="Alibaba: keep this share of nodes")
    ap.add_argument(
        "--compress",
        type=float,
        default=1.0,
        help="divide submission times by this (arrivals faster, durations unchanged)",
    )
    ap.add_argument("--limit", type=int, default=0, help="replay only the first N jobs (by submission)")
    ap.add_argument("--mode", choices=["both", "backfill", "fifo"], default="both")
    ap.add_argument("--json-out", type=Path, help="also write the figures (every wait, queue over time) as JSON here")
    args = ap.parse_args()
    if args.trace == "philly":
        facility, jobs = load_philly(args.trace_dir, args.nodes)
        name = f"Philly ({args.nodes} x 8-GPU nodes, one cluster)"
    else:
        facility, jobs = load_alibaba(args.trace_dir, args.node_fraction)
        name = f"Alibaba GPU v2023 (node fraction {args.node_fraction})"
    if args.compress != 1.0:
        jobs = [Job(j.id, int(j.submit / args.compress), j.duration, j.gpus, j.model) for j in jobs]
        name += f", arrivals compressed x{args.compress:g}"
    if args.limit:
        jobs = sorted(jobs, key=lambda j: (j.submit, j.id))[: args.limit]
    modes = {"backfill": True, "fifo": False}
    if args.mode != "both":
        modes = {args.mode: modes[args.mode]}
    results = {}
    for bf in modes.values():
        results["EASY backfill" if bf else "FIFO"] = replay(facility, jobs, bf)
    report(name, facility, jobs, results)
    if args.json_out:
        write_json(args.json_out, args.trace, name, facility, jobs, results)


if __name__ == "__main__":
    main()
