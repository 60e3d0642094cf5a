"""Charts for docs/benchmarks.md, drawn with matplotlib from the benchmarks' `--json-out` files.

    .venv/bin/python benchmarks/placement.py --json-out /tmp/placement.json
    .venv/bin/python benchmarks/replay.py --trace philly --json-out /tmp/replay-philly.json
    .venv/bin/python benchmarks/screening.py --nomenklatura-queries 20 --json-out /tmp/screening.json
    .venv/bin/python benchmarks/plots.py --from /tmp/placement.json /tmp/replay-philly.json \\
        /tmp/screening.json --out docs/img

Each JSON file says which benchmark wrote it; `--from` also takes a directory (its *.json files that a
benchmark wrote). The charts are SVG drawn with the Agg backend (no display needed), text kept as text,
with no timestamp or random ids in them, so the same figures give the same files.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # after choosing the backend
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

plt.rcParams.update(
    {
        "svg.fonttype": "none",  # text stays text: smaller files, searchable
        "svg.hashsalt": "gpulease",  # stable element ids
        "font.size": 10,
        "axes.titlesize": 12,
        "axes.titleweight": "bold",
        "axes.grid": True,
        "grid.color": "#e4e4e4",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
    }
)
BLUE, ORANGE, GREEN, PURPLE, GREY, RED, INK = "#1f6fb4", "#e07b00", "#2a9d55", "#7b4fa8", "#8a8a8a", "#c0392b", "#222"
MODE_COLORS = {"EASY backfill": BLUE, "FIFO": ORANGE}


def duration(seconds: float, _pos: object = None) -> str:
    for div, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= div * 0.999:
            return f"{seconds / div:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def si_count(v: float, _pos: object = None) -> str:
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:g}{suffix}"
    return f"{v:g}"


def figure(title: str, subtitle: str, height: float = 4.2) -> tuple[Figure, Axes]:
    fig, ax = plt.subplots(figsize=(7.6, height), layout="constrained")
    ax.set_title(f"{title}\n", loc="left")
    ax.text(0, 1.02, subtitle, transform=ax.transAxes, color="#555", fontsize=9)
    return fig, ax


def ecdf(ax: Axes, values: Sequence[float], points: int = 400, **style: Any) -> None:
    """The empirical CDF as a step line through `points` evenly spaced ranks (keeps the SVG small)."""
    s = sorted(values)
    n = len(s)
    ranks = sorted({round(i * (n - 1) / points) for i in range(points + 1)})
    ax.step([s[0], *(s[i] for i in ranks)], [0.0, *((i + 1) / n for i in ranks)], where="post", **style)


def share_axis(ax: Axes, label: str) -> None:
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel(label)


def label_bars(ax: Axes, bars: Any, fmt: Callable[[float], str]) -> None:
    ax.bar_label(bars, labels=[fmt(b.get_height()) for b in bars], padding=2, fontsize=8)


# --------------------------------------------------------------------------- placement


def placement_charts(d: dict[str, Any]) -> dict[str, Figure]:
    per = d["per_node"]
    n = [float(p["reservations"]) for p in per]
    med = [p["median_s"] for p in per]
    p99 = [p["p99_s"] for p in per]
    fig, ax = figure(
        "Per-node check vs reservations on the node",
        "free_gpus(node, window) on one 8-GPU node, 2,000 random windows",
    )
    ax.set(xscale="log", yscale="log", xlabel="reservations on the node (log scale)", ylabel="time per check")
    ref = [n[0] * 10 ** (k / 20) for k in range(20 * round(math.log10(n[-1] / n[0])) + 1)]
    ax.plot(ref, [med[0] * math.log(x) / math.log(n[0]) for x in ref], ":", color=GREEN, label="O(log n), from 1k")
    ax.plot(ref, [med[0] * x / n[0] for x in ref], "--", color=GREY, label="O(n), from 1k")
    for values, color, label in ((med, BLUE, "median (measured)"), (p99, ORANGE, "p99 (measured)")):
        ax.plot(n, values, "o-", color=color, label=label)
        for x, y in zip(n, values, strict=True):
            ax.annotate(duration(y), (x, y), textcoords="offset points", xytext=(6, -4), fontsize=8, color=color)
    ax.set_ylim(min(med) / 3, max(med) * n[-1] / n[0] * 2)
    ax.xaxis.set_major_formatter(FuncFormatter(si_count))
    ax.yaxis.set_major_formatter(FuncFormatter(duration))
    ax.legend(loc="upper left")
    charts = {"placement-scaling.svg": fig}

    decisions = d["decisions"]
    fig, ax = figure(
        "Placement decision latency (CDF)",
        f"{len(decisions):,} place() calls on {d['nodes']:,} nodes x 8 GPUs holding {d['reservations']:,} reservations",
    )
    everything = [x["seconds"] for x in decisions]
    ecdf(ax, everything, color=INK, linestyle="--", label=f"all decisions (n={len(everything):,})")
    for placed, color, label in ((True, BLUE, "placed"), (False, ORANGE, "refused, incl. earliest-start search")):
        times = [x["seconds"] for x in decisions if x["placed"] is placed]
        if times:
            ecdf(ax, times, color=color, label=f"{label} (n={len(times):,})")
    ax.axvline(1e-3, color=RED, linewidth=1, linestyle=":", label="1 ms target for the median")
    ax.set(xscale="log", xlabel="time per place() call (log scale)")
    ax.xaxis.set_major_formatter(FuncFormatter(duration))
    share_axis(ax, "share of decisions at or below")
    ax.legend(loc="lower left", bbox_to_anchor=(0.3, 0.02))
    charts["placement-latency-cdf.svg"] = fig
    return charts


# --------------------------------------------------------------------------- replay


def replay_charts(d: dict[str, Any]) -> dict[str, Figure]:
    trace, modes = d["trace"], d["modes"]
    where = f"{trace.capitalize()} trace, {d['jobs']:,} jobs on {d['nodes']} nodes / {d['gpus']} GPUs"
    fig, ax = figure("Wait before start (CDF): EASY backfill vs FIFO", where)
    for label, m in modes.items():
        ecdf(ax, [w / 3600 for w in m["waits_s"]], color=MODE_COLORS.get(label, GREEN), label=label)
    ax.set(xlabel="wait from submission to start (hours)", xlim=(0, None))
    share_axis(ax, "share of jobs started within")
    ax.legend(loc="lower right")
    charts = {f"replay-{trace}-wait-cdf.svg": fig}

    stats = [("mean", "mean_wait_s"), ("median", "median_wait_s"), ("p95", "p95_wait_s"), ("max", "max_wait_s")]
    fig, ax = figure("Wait per job: EASY backfill vs FIFO", where)
    width = 0.8 / len(modes)
    for i, (label, m) in enumerate(modes.items()):
        xs = [j + (i - (len(modes) - 1) / 2) * width for j in range(len(stats))]
        hours = [m[k] / 3600 for _, k in stats]
        bars = ax.bar(xs, hours, width * 0.92, color=MODE_COLORS.get(label, GREEN), label=label)
        label_bars(ax, bars, lambda v: f"{v:.1f} h")
    ax.set_xticks(range(len(stats)), [f"{name} wait" for name, _ in stats])
    ax.set(ylabel="hours")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper left")
    charts[f"replay-{trace}-wait-bars.svg"] = fig

    if all("series" in m for m in modes.values()):
        fig, ax = figure("Jobs waiting over simulated time", where)
        per = 6  # hours per point: the longest queue within each 6 h
        for label in sorted(modes, key=lambda name: name != "FIFO"):  # FIFO (the taller one) underneath
            s = modes[label]["series"]
            q = s["queue_max"]
            days = [i * s["bin_s"] / 86400 for i in range(0, len(q), per)]
            peaks = [max(q[i : i + per]) for i in range(0, len(q), per)]
            ax.plot(days, peaks, color=MODE_COLORS.get(label, GREEN), linewidth=1.2, label=label)
        ax.set(xlabel="simulated day", ylabel="jobs waiting (max per 6 h)", xlim=(0, None), ylim=(0, None))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.legend(loc="upper right")
        charts[f"replay-{trace}-queue.svg"] = fig
    return charts


# --------------------------------------------------------------------------- screening


def screening_charts(d: dict[str, Any]) -> dict[str, Figure]:
    methods = d["methods"]
    names = [m["label"] for m in methods]
    colors = [BLUE, ORANGE, PURPLE, GREEN][: len(methods)]
    fig, ax = figure(
        "Screening throughput (one core)",
        f"{d['entries']:,} listed entries, {d['distinct_names']:,} distinct names; higher is better",
    )
    bars = ax.bar(names, [m["names_per_s"] for m in methods], 0.5, color=colors)
    label_bars(ax, bars, lambda v: f"{v:,.0f}" if v >= 10 else f"{v:.1f}")
    ax.set(yscale="log", ylabel="names/s (log scale)")
    ax.set_xticks(range(len(methods)), [f"{m['label']}\n{m['queries']:,} queries" for m in methods])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.grid(axis="x", visible=False)
    charts = {"screening-throughput.svg": fig}

    fig, ax = figure(
        f"Screening accuracy at the review threshold ({d['review_threshold']:g})",
        f"{d['positives']:,} listed-name variants, {d['negatives']:,} unlisted names (fewer for the scans)",
    )
    series = [
        ("recall (listed variants found)", "recall", GREEN),
        ("false-positive rate (unlisted names hit)", "fp_rate", RED),
    ]
    for i, (label, key, color) in enumerate(series):
        xs = [j + (i - 0.5) * 0.38 for j in range(len(methods))]
        bars = ax.bar(xs, [m[key] for m in methods], 0.35, color=color, label=label)
        label_bars(ax, bars, lambda v: f"{v:.1%}")
    ax.set_xticks(range(len(methods)), names)
    share_axis(ax, "share of queries")
    ax.set_ylim(0, 1.25)  # room for the legend above the bars
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper center", ncols=2)
    charts["screening-accuracy.svg"] = fig
    return charts


CHARTS: dict[str, Callable[[dict[str, Any]], dict[str, Figure]]] = {
    "placement": placement_charts,
    "replay": replay_charts,
    "screening": screening_charts,
}


def load(paths: Sequence[Path]) -> list[dict[str, Any]]:
    files: list[Path] = []
    for p in paths:
        files += sorted(p.glob("*.json")) if p.is_dir() else [p]
    out = []
    for p in files:
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(d, dict) and d.get("benchmark") in CHARTS:
            out.append(d)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--from",
        dest="sources",
        type=Path,
        nargs="+",
        required=True,
        help="JSON files written with --json-out, or directories holding them",
    )
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--format", choices=["svg", "png"], default="svg", help="png: for a quick look (the docs use svg)")
    args = ap.parse_args()
    figures = load(args.sources)
    if not figures:
        raise SystemExit("no benchmark JSON found")
    args.out.mkdir(parents=True, exist_ok=True)
    for d in figures:
        for name, fig in CHARTS[d["benchmark"]](d).items():
            path = (args.out / name).with_suffix(f".{args.format}")
            fig.savefig(path, format=args.format, metadata={"Date": None} if args.format == "svg" else {}, dpi=110)
            plt.close(fig)
            print(path)


if __name__ == "__main__":
    main()
