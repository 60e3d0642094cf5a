"""Charts for docs/benchmarks.md, drawn as small hand-written SVG from the benchmarks' `--json-out` files.

    .venv/bin/python benchmarks/placement.py --json-out /tmp/placement.json
    .venv/bin/python benchmarks/replay.py --trace philly --json-out /tmp/replay-philly.json
    .venv/bin/python benchmarks/screening.py --nomenklatura-queries 20 --json-out /tmp/screening.json
    .venv/bin/python benchmarks/plots.py --from /tmp/placement.json /tmp/replay-philly.json \\
        /tmp/screening.json --out docs/img

Each JSON file says which benchmark wrote it; `--from` also takes a directory (its *.json files that a
benchmark wrote). No plotting library: a line / step (CDF) / grouped-bar chart with linear or log axes,
ticks, grid, legend and axis labels is all these pages need.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

WIDTH = 720
FONT = "'DejaVu Sans', 'Segoe UI', Helvetica, Arial, sans-serif"
INK = "#222222"
MUTED = "#555555"
GRID = "#e4e4e4"
AXIS = "#999999"
BLUE = "#1f6fb4"
ORANGE = "#e07b00"
GREEN = "#2a9d55"
PURPLE = "#7b4fa8"
GREY = "#8a8a8a"
RED = "#c0392b"

TITLE_SIZE = 16
LABEL_SIZE = 13
TICK_SIZE = 12


def text_width(s: str, size: float) -> float:
    """A generous estimate of rendered width (DejaVu Sans is among the widest common faces)."""
    return 0.62 * size * len(s)


def nice_step(raw: float) -> float:
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * mag >= raw * 0.999:
            return m * mag
    return 10 * mag


def plain(v: float) -> str:
    return f"{v:,.10g}"


def si_count(v: float) -> str:
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:g}{suffix}"
    return f"{v:g}"


def duration(seconds: float) -> str:
    for div, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= div * 0.999:
            return f"{seconds / div:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


@dataclass
class Axis:
    lo: float
    hi: float
    label: str
    log: bool = False
    fmt: Callable[[float], str] = plain
    ticks: Sequence[float] | None = None

    def frac(self, v: float) -> float:
        if self.log:
            lo, hi = math.log10(self.lo), math.log10(self.hi)
            return (math.log10(max(v, self.lo * 1e-3)) - lo) / (hi - lo)
        return (v - self.lo) / (self.hi - self.lo)

    def tick_values(self) -> list[float]:
        if self.ticks is not None:
            return list(self.ticks)
        if self.log:
            a = math.floor(math.log10(self.lo) + 1e-9)
            b = math.ceil(math.log10(self.hi) - 1e-9)
            return [10.0**k for k in range(a, b + 1) if self.lo * 0.999 <= 10.0**k <= self.hi * 1.001]
        step = nice_step((self.hi - self.lo) / 6)
        out = []
        v = math.ceil(self.lo / step - 1e-9) * step
        while v <= self.hi + step * 1e-9:
            out.append(round(v, 12))
            v += step
        return out

    def minor_values(self) -> list[float]:
        """2..9 x 10^k on a log axis (unlabelled), nothing on a linear one."""
        if not self.log:
            return []
        out = []
        for k in range(math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi)) + 1):
            out += [m * 10.0**k for m in range(2, 10) if self.lo <= m * 10.0**k <= self.hi]
        return out


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]
    color: str
    dash: str | None = None
    width: float = 2.2
    markers: bool = False
    step: bool = False
    point_labels: list[str] | None = None
    label_above: bool = True
    z: int = 0  # drawing order (higher on top); the legend keeps the list order


@dataclass
class Svg:
    width: int
    height: int
    parts: list[str] = field(default_factory=list)

    def text(
        self,
        x: float,
        y: float,
        s: str,
        size: float = TICK_SIZE,
        anchor: str = "start",
        color: str = INK,
        weight: str = "normal",
        rotate: bool = False,
    ) -> None:
        transform = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if rotate else ""
        bold = ' font-weight="bold"' if weight == "bold" else ""
        self.parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{color}"'
            f"{bold}{transform}>{escape(s)}</text>"
        )

    def line(self, x1: float, y1: float, x2: float, y2: float, color: str, width: float = 1, dash: str = "") -> None:
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" '
            f'stroke-width="{width}"{d}/>'
        )

    def rect(self, x: float, y: float, w: float, h: float, color: str) -> None:
        self.parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{color}"/>')

    def render(self, title: str) -> str:
        return "\n".join(
            [
                f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
                f'viewBox="0 0 {self.width} {self.height}" role="img" font-family="{escape(FONT)}">',
                f"<title>{escape(title)}</title>",
                f'<rect width="{self.width}" height="{self.height}" fill="#ffffff"/>',
                *self.parts,
                "</svg>",
                "",
            ]
        )


@dataclass
class Frame:
    """The plot area of a chart: maps data to pixels."""

    x: Axis
    y: Axis
    left: float
    top: float
    width: float
    height: float

    def px(self, v: float) -> float:
        return self.left + self.x.frac(v) * self.width

    def py(self, v: float) -> float:
        return self.top + (1 - self.y.frac(v)) * self.height


LegendItem = tuple[str, str, str | None, str]  # label, colour, dash, "line" | "box"


def draw_legend(svg: Svg, items: Sequence[LegendItem], left: float, top: float, right: float) -> float:
    """Legend under the title: swatch + label items flowing left to right, wrapping; returns the y below it."""
    if not items:
        return top - 14
    x, y = left, top
    for label, color, dash, kind in items:
        w = 30 + 0.9 * text_width(label, LABEL_SIZE) + 16
        if x + w > right and x > left:
            x, y = left, y + 22
        if kind == "box":
            svg.rect(x, y - 11, 14, 14, color)
            tx = x + 20
        else:
            svg.line(x, y - 4, x + 24, y - 4, color, 3, dash or "")
            tx = x + 30
        svg.text(tx, y, label, LABEL_SIZE, color=INK)
        x += w
    return y + 14


def draw_title(svg: Svg, title: str, subtitle: str) -> float:
    """Title (shrunk to fit the width) and an optional muted subtitle; returns the y below them."""
    size = min(TITLE_SIZE, (svg.width - 32) / (0.62 * len(title)))
    svg.text(16, 26, title, round(size, 1), weight="bold")
    if not subtitle:
        return 40
    svg.text(16, 46, subtitle, min(LABEL_SIZE, round((svg.width - 32) / (0.62 * len(subtitle)), 1)), color=MUTED)
    return 60


def draw_frame(
    svg: Svg,
    title: str,
    subtitle: str,
    legend: Sequence[LegendItem],
    x: Axis | None,
    y: Axis,
    bottom_pad: float = 0,
) -> Frame:
    """Title, legend, grid, ticks and axis labels; x=None leaves the x axis to the caller (bar charts)."""
    below = draw_title(svg, title, subtitle)
    y_ticks = y.tick_values()
    widest = max(text_width(y.fmt(v), TICK_SIZE) for v in y_ticks)
    left = 16 + 18 + 8 + widest + 8
    right = svg.width - 28
    top = draw_legend(svg, legend, left, below + 12, right) + 12
    bottom = svg.height - 52 - bottom_pad
    frame = Frame(x or Axis(0, 1, ""), y, left, top, right - left, bottom - top)
    for v in y.minor_values():
        svg.line(left, frame.py(v), right, frame.py(v), GRID, 0.6)
    for v in y_ticks:
        py = frame.py(v)
        svg.line(left, py, right, py, GRID, 1)
        svg.line(left - 5, py, left, py, AXIS, 1)
        svg.text(left - 8, py + 4, y.fmt(v), TICK_SIZE, anchor="end", color=MUTED)
    svg.text(20, (top + bottom) / 2, y.label, LABEL_SIZE, anchor="middle", color=INK, rotate=True)
    if x is not None:
        for v in x.minor_values():
            svg.line(frame.px(v), top, frame.px(v), bottom, GRID, 0.6)
        ticks = x.tick_values()
        labels = [x.fmt(v) for v in ticks]
        spacing = min((frame.px(b) - frame.px(a) for a, b in itertools.pairwise(ticks)), default=1e9)
        every = 1
        while max(text_width(s, TICK_SIZE) for s in labels) + 10 > spacing * every:
            every += 1
        for i, v in enumerate(ticks):
            px = frame.px(v)
            svg.line(px, top, px, bottom, GRID, 1)
            svg.line(px, bottom, px, bottom + 5, AXIS, 1)
            if i % every == 0:
                svg.text(px, bottom + 20, labels[i], TICK_SIZE, anchor="middle", color=MUTED)
        svg.text((left + right) / 2, bottom + 42, x.label, LABEL_SIZE, anchor="middle")
    svg.line(left, top, left, bottom, AXIS, 1)
    svg.line(left, bottom, right, bottom, AXIS, 1)
    return frame


def line_chart(
    title: str,
    subtitle: str,
    x: Axis,
    y: Axis,
    series: Sequence[Series],
    height: int = 430,
    vlines: Sequence[tuple[float, str]] = (),
) -> str:
    svg = Svg(WIDTH, height)
    legend: list[LegendItem] = [(s.label, s.color, s.dash, "line") for s in series]
    f = draw_frame(svg, title, subtitle, legend, x, y)
    svg.parts.append(
        f'<clipPath id="plot"><rect x="{f.left:.1f}" y="{f.top - 2:.1f}" width="{f.width + 2:.1f}" '
        f'height="{f.height + 4:.1f}"/></clipPath>'
    )
    for v, label in vlines:
        px = f.px(v)
        svg.line(px, f.top, px, f.top + f.height, RED, 1.5, "6 4")
        svg.text(px + 6, f.top + f.height - 10, label, TICK_SIZE, color=RED)
    for s in sorted(series, key=lambda s: s.z):
        pts: list[tuple[float, float]] = []
        for i, (a, b) in enumerate(s.points):
            if s.step and i:
                pts.append((f.px(a), f.py(s.points[i - 1][1])))
            pts.append((f.px(a), f.py(b)))
        path = " ".join(f"{'M' if i == 0 else 'L'}{a:.1f},{b:.1f}" for i, (a, b) in enumerate(pts))
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        svg.parts.append(
            f'<path d="{path}" fill="none" stroke="{s.color}" stroke-width="{s.width}"{dash} '
            f'stroke-linejoin="round" clip-path="url(#plot)"/>'
        )
        if s.markers:
            for a, b in s.points:
                svg.parts.append(
                    f'<circle cx="{f.px(a):.1f}" cy="{f.py(b):.1f}" r="4.5" fill="{s.color}" stroke="#fff"/>'
                )
        for (a, b), label in zip(s.points, s.point_labels or [], strict=False):
            dy = -10 if s.label_above else 20
            svg.text(f.px(a), f.py(b) + dy, label, TICK_SIZE, anchor="middle", color=s.color, weight="bold")
    return svg.render(title)


def bar_chart(
    title: str,
    subtitle: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    y: Axis,
    value_fmt: Callable[[float], str],
    height: int = 400,
) -> str:
    svg = Svg(WIDTH, height)
    legend: list[LegendItem] = [(label, color, None, "box") for label, _, color in series]
    f = draw_frame(svg, title, subtitle, legend if len(series) > 1 else [], None, y, bottom_pad=-22)
    group = f.width / len(categories)
    bar = min(64.0, group * 0.72 / len(series))
    base = f.py(y.lo)
    for c, category in enumerate(categories):
        center = f.left + group * (c + 0.5)
        svg.text(center, base + 20, category, LABEL_SIZE, anchor="middle")
        for k, (_, values, color) in enumerate(series):
            v = values[c]
            x0 = center + (k - len(series) / 2) * bar + 2
            top = f.py(min(max(v, y.lo), y.hi))
            svg.rect(x0, top, bar - 4, base - top, color)
            svg.text(x0 + (bar - 4) / 2, top - 6, value_fmt(v), TICK_SIZE, anchor="middle", color=INK)
    return svg.render(title)


def cdf(values: Sequence[float], points: int = 800) -> list[tuple[float, float]]:
    """(value, share <= value) at up to `points` places, for a step line; values sorted here."""
    s = sorted(values)
    n = len(s)
    idx = sorted({min(n - 1, round(i * (n - 1) / points)) for i in range(points + 1)})
    out = [(s[0], 0.0)]
    for i in idx:
        j = i
        while j + 1 < n and s[j + 1] == s[i]:
            j += 1
        out.append((s[i], (j + 1) / n))
    return out


def share_axis(label: str, hi: float = 1.0) -> Axis:
    return Axis(0, hi, label, fmt=lambda v: f"{v:.0%}", ticks=[0, 0.2, 0.4, 0.6, 0.8, 1.0])


# --------------------------------------------------------------------------- placement


def placement_charts(d: dict[str, Any]) -> dict[str, str]:
    per = d["per_node"]
    n = [float(p["reservations"]) for p in per]
    med = [p["median_s"] * 1e6 for p in per]
    p99 = [p["p99_s"] * 1e6 for p in per]
    n0, m0 = n[0], med[0]
    ref_x = [n0 * 10 ** (k / 20) for k in range(0, 20 * round(math.log10(n[-1] / n0)) + 1)]
    scaling = line_chart(
        "Per-node check vs reservations on the node",
        "free_gpus(node, window) on one 8-GPU node, 2,000 random windows; labels in µs",
        Axis(n0 / 2, n[-1] * 2, "reservations on the node (log scale)", log=True, fmt=si_count),
        Axis(1, 1000, "time per check (log scale)", log=True, fmt=lambda v: duration(v * 1e-6)),
        [
            Series(
                "median (measured)",
                list(zip(n, med, strict=True)),
                BLUE,
                markers=True,
                point_labels=[f"{v:.1f}" for v in med],
                label_above=False,
                z=2,
            ),
            Series(
                "p99 (measured)",
                list(zip(n, p99, strict=True)),
                ORANGE,
                markers=True,
                point_labels=[f"{v:.1f}" for v in p99],
                z=1,
            ),
            Series(
                "O(log n), scaled to the 1k median",
                [(x, m0 * math.log(x) / math.log(n0)) for x in ref_x],
                GREEN,
                "3 4",
                2.2,
            ),
            Series("O(n), scaled to the 1k median", [(x, m0 * x / n0) for x in ref_x], GREY, "7 5", 1.8),
        ],
    )
    decisions = d["decisions"]
    everything = [x["seconds"] for x in decisions]
    placed = [x["seconds"] for x in decisions if x["placed"]]
    refused = [x["seconds"] for x in decisions if not x["placed"]]
    lo = 10 ** math.floor(math.log10(min(everything)))
    hi = 10 ** math.ceil(math.log10(max(everything)))
    series = [Series(f"all decisions (n={len(everything):,})", cdf(everything), INK, width=1.6, dash="5 3", z=1)]
    series.append(Series(f"placed (n={len(placed):,})", cdf(placed), BLUE, step=True))
    if refused:
        series.append(
            Series(f"refused, incl. earliest-start search (n={len(refused):,})", cdf(refused), ORANGE, step=True)
        )
    for s in series:
        s.step = True
    latency = line_chart(
        "Placement decision latency (CDF)",
        f"{len(everything):,} place() calls on {d['nodes']:,} nodes x 8 GPUs holding {d['reservations']:,} "
        f"reservations",
        Axis(lo, hi, "time per place() call (log scale)", log=True, fmt=duration),
        share_axis("share of decisions at or below"),
        series,
        vlines=[(1e-3, "1 ms target for the median")],
    )
    return {"placement-scaling.svg": scaling, "placement-latency-cdf.svg": latency}


# --------------------------------------------------------------------------- replay


def replay_charts(d: dict[str, Any]) -> dict[str, str]:
    trace = d["trace"]
    colors = {"EASY backfill": BLUE, "FIFO": ORANGE}
    modes: dict[str, dict[str, Any]] = d["modes"]
    where = f"{d['trace'].capitalize()} trace, {d['jobs']:,} jobs on {d['nodes']} nodes / {d['gpus']} GPUs"
    top = max(m["max_wait_s"] for m in modes.values()) / 3600
    hi = nice_step(top / 6) * math.ceil(top / nice_step(top / 6))
    waits = line_chart(
        "Wait before start (CDF): EASY backfill vs FIFO",
        where,
        Axis(0, hi, "wait from submission to start (hours)"),
        share_axis("share of jobs started within"),
        [
            Series(label, [(w / 3600, q) for w, q in cdf(m["waits_s"])], colors.get(label, GREEN), step=True)
            for label, m in modes.items()
        ],
    )
    stats = [("mean", "mean_wait_s"), ("median", "median_wait_s"), ("p95", "p95_wait_s"), ("max", "max_wait_s")]
    peak = max(m[k] for m in modes.values() for _, k in stats) / 3600
    step = nice_step(peak / 5)
    bars = bar_chart(
        "Wait per job: EASY backfill vs FIFO",
        where,
        [f"{name} wait" for name, _ in stats],
        [(label, [m[k] / 3600 for _, k in stats], colors.get(label, GREEN)) for label, m in modes.items()],
        Axis(0, step * math.ceil(peak * 1.08 / step), "hours", fmt=plain),
        lambda v: f"{v:.1f} h",
    )
    out = {f"replay-{trace}-wait-cdf.svg": waits, f"replay-{trace}-wait-bars.svg": bars}
    if all("series" in m for m in modes.values()):
        per = 6  # hours per point: max queue length within each 6 h
        lines = []
        longest = 0
        span = 0.0
        for label, m in modes.items():
            s = m["series"]
            q = s["queue_max"]
            pts = [(i * s["bin_s"] / 86400, float(max(q[i : i + per]))) for i in range(0, len(q), per)]
            longest = max(longest, max(q))
            span = max(span, len(q) * s["bin_s"] / 86400)
            lines.append(Series(label, pts, colors.get(label, GREEN), width=1.4))
        lines.sort(key=lambda s: s.label != "FIFO")  # FIFO (the taller one) underneath
        qstep = nice_step(longest / 5)
        out[f"replay-{trace}-queue.svg"] = line_chart(
            "Jobs waiting over simulated time",
            where,
            Axis(0, math.ceil(span / 10) * 10, "simulated day"),
            Axis(0, qstep * math.ceil(longest / qstep), "jobs waiting (max per 6 h)", fmt=plain),
            lines,
        )
    return out


# --------------------------------------------------------------------------- screening


def screening_charts(d: dict[str, Any]) -> dict[str, str]:
    methods = d["methods"]
    names = [f"{m['label']}" for m in methods]
    colors = [BLUE, ORANGE, PURPLE, GREEN][: len(methods)]
    top = max(m["names_per_s"] for m in methods)
    low = min(m["names_per_s"] for m in methods)
    svg = Svg(WIDTH, 400)
    title = "Screening throughput (one core)"
    f = draw_frame(
        svg,
        title,
        f"{d['entries']:,} listed entries, {d['distinct_names']:,} distinct names; higher is better",
        [],
        None,
        Axis(
            10 ** math.floor(math.log10(low)),
            10 ** math.ceil(math.log10(top) + 0.15),
            "names/s (log scale)",
            log=True,
            fmt=lambda v: f"{v:,.0f}",
        ),
        bottom_pad=0,
    )
    group = f.width / len(methods)
    base = f.top + f.height
    for i, m in enumerate(methods):
        center = f.left + group * (i + 0.5)
        top_px = f.py(m["names_per_s"])
        svg.rect(center - 40, top_px, 80, base - top_px, colors[i])
        svg.text(
            center,
            top_px - 6,
            f"{m['names_per_s']:,.0f}" if m["names_per_s"] >= 10 else f"{m['names_per_s']:.1f}",
            LABEL_SIZE,
            anchor="middle",
            weight="bold",
        )
        svg.text(center, base + 20, names[i], LABEL_SIZE, anchor="middle")
        svg.text(center, base + 38, f"{m['queries']:,} queries", TICK_SIZE, anchor="middle", color=MUTED)
    throughput = svg.render(title)
    accuracy = bar_chart(
        f"Screening accuracy at the review threshold ({d['review_threshold']:g})",
        f"{d['positives']:,} listed-name variants, {d['negatives']:,} unlisted names (fewer for the scans)",
        names,
        [
            ("recall (listed variants found)", [m["recall"] for m in methods], GREEN),
            ("false-positive rate (unlisted names hit)", [m["fp_rate"] for m in methods], RED),
        ],
        share_axis("share of queries", hi=1.08),
        lambda v: f"{v:.1%}",
    )
    return {"screening-throughput.svg": throughput, "screening-accuracy.svg": accuracy}


CHARTS: dict[str, Callable[[dict[str, Any]], dict[str, str]]] = {
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
    args = ap.parse_args()
    figures = load(args.sources)
    if not figures:
        raise SystemExit("no benchmark JSON found")
    args.out.mkdir(parents=True, exist_ok=True)
    for d in figures:
        for name, svg in CHARTS[d["benchmark"]](d).items():
            (args.out / name).write_text(svg, encoding="utf-8")
            print(args.out / name)


if __name__ == "__main__":
    main()
