"""The capacity calendar as an SVG Gantt chart: one row per GPU, grouped by cluster and node, one bar per booking;
and for the CPUs (`render_cpu`), one row per node whose CPUs are described, one bar per CPU lease.

Built on the server as a string, so the picture needs no JavaScript and tests can read it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from markupsafe import Markup

from gpulease.domain.cpu import cpuset
from gpulease.services.inventory import Booking, CpuBooking

PLAN_COLOURS = {
    "on_demand": "#2f6fdb",
    "reserved": "#7b4fc9",
    "long_term": "#13897a",
    "interruptible": "#d9822b",
}
PLAN_LABELS = {
    "on_demand": "on demand",
    "reserved": "reserved",
    "long_term": "long term",
    "interruptible": "interruptible",
}

WIDTH = 1160
LABEL_W = 190
RIGHT_PAD = 12
AXIS_H = 30
GROUP_H = 20
ROW_H = 8
NODE_GAP = 5


@dataclass(frozen=True)
class GanttNode:
    id: int
    name: str
    group: str  # "site/cluster · model"
    gpu_count: int
    state: str


@dataclass(frozen=True)
class NodeUse:
    """How busy a node is: GPUs held now, and the share of its GPU-time booked over the window."""

    node: GanttNode
    in_use_now: int
    booked_fraction: float


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")


def _tick_step(span: timedelta) -> timedelta:
    hours = span.total_seconds() / 3600
    for step in (1, 2, 3, 6, 12, 24, 48, 168):
        if hours / step <= 10:
            return timedelta(hours=step)
    return timedelta(days=30)


def utilisation(
    nodes: list[GanttNode], books: list[Booking], t0: datetime, t1: datetime, now: datetime
) -> list[NodeUse]:
    span = (t1 - t0).total_seconds()
    booked: dict[int, float] = defaultdict(float)
    now_used: dict[int, set[int]] = defaultdict(set)
    for b in books:
        s, e = max(b.start, t0), min(b.end or t1, t1)
        if e > s:
            booked[b.node_id] += (e - s).total_seconds()
        if b.covers(now):
            now_used[b.node_id].add(b.gpu)
    return [
        NodeUse(
            n, len(now_used[n.id]), min(1.0, booked[n.id] / (span * n.gpu_count)) if span > 0 and n.gpu_count else 0.0
        )
        for n in nodes
    ]


def _runs(indices: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs of GPU indices: [0, 1, 2, 5] -> [(0, 3), (5, 1)]."""
    out: list[tuple[int, int]] = []
    for i in sorted(indices):
        if out and out[-1][0] + out[-1][1] == i:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((i, 1))
    return out


def render(nodes: list[GanttNode], books: list[Booking], t0: datetime, t1: datetime, now: datetime) -> Markup:
    """The SVG: time runs left to right over [t0, t1); hover a bar for lease, customer and plan."""
    plot_w = WIDTH - LABEL_W - RIGHT_PAD
    span = max((t1 - t0).total_seconds(), 1.0)

    def x(t: datetime) -> float:
        return LABEL_W + max(0.0, min(1.0, (t - t0).total_seconds() / span)) * plot_w

    by_node: dict[int, list[Booking]] = defaultdict(list)
    for b in books:
        by_node[b.node_id].append(b)

    body: list[str] = []
    y = AXIS_H
    group = None
    node_top: dict[int, float] = {}
    for i, n in enumerate(nodes):
        if n.group != group:
            group = n.group
            body.append(f'<text class="g-group" x="4" y="{y + 14}">{escape(n.group)}</text>')
            y += GROUP_H
        h = n.gpu_count * ROW_H
        node_top[n.id] = y
        band = "g-band-odd" if i % 2 else "g-band"
        down = " g-node-down" if n.state != "available" else ""
        body.append(f'<rect class="{band}{down}" x="0" y="{y}" width="{WIDTH}" height="{h}"/>')
        label = n.name if len(n.name) <= 22 else n.name[:21] + "…"
        state = "" if n.state == "available" else f" ({n.state})"
        body.append(
            f'<text class="g-node" x="10" y="{y + h / 2 + 4:.1f}">{escape(label)}{escape(state)}'
            f"<title>{escape(n.name)}: {n.gpu_count} GPUs, {escape(n.state)}</title></text>"
        )
        for g in range(n.gpu_count):
            body.append(f'<text class="g-gpu" x="{LABEL_W - 6}" y="{y + g * ROW_H + ROW_H - 1}">{g}</text>')
        y += h + NODE_GAP
    height = y + 4

    grid: list[str] = []
    step = _tick_step(t1 - t0)
    # Ticks on multiples of the step from midnight, so that each day boundary carries the date.
    tick = t0.replace(hour=0, minute=0, second=0, microsecond=0)
    while tick < t0:
        tick += step
    while tick <= t1:
        tx = x(tick)
        label = tick.strftime("%a %d %b") if tick.hour == 0 else tick.strftime("%H:%M")
        grid.append(
            f'<line class="g-grid" x1="{tx:.1f}" y1="{AXIS_H - 6}" x2="{tx:.1f}" y2="{height}"/>'
            f'<text class="g-tick" x="{tx:.1f}" y="{AXIS_H - 10}">{label}</text>'
        )
        tick += step

    bars: list[str] = []
    for node_id, node_books in by_node.items():
        if node_id not in node_top:
            continue
        grouped: dict[tuple[int, datetime, datetime | None], list[Booking]] = defaultdict(list)
        for b in node_books:
            grouped[(b.lease_id, b.start, b.end)].append(b)
        node = next(n for n in nodes if n.id == node_id)
        for (lease_id, start, end), group_books in sorted(grouped.items(), key=lambda kv: kv[0][1]):
            b0 = group_books[0]
            x0, x1 = x(start), x(end or t1)
            indices = sorted(b.gpu for b in group_books)
            title = (
                f"Lease {lease_id} · {b0.customer} · {PLAN_LABELS.get(b0.plan, b0.plan)} · {b0.state}\n"
                f"{_fmt(start)} → {_fmt(end) if end else 'open-ended'}\n"
                f"{node.name} GPU {', '.join(map(str, indices))}"
            )
            colour = PLAN_COLOURS.get(b0.plan, "#667")
            for first, count in _runs(indices):
                ry = node_top[node_id] + first * ROW_H + 0.5
                bars.append(
                    f'<a href="/leases/{lease_id}"><rect class="g-bar g-{escape(b0.state)}" '
                    f'data-lease="{lease_id}" data-plan="{escape(b0.plan)}" x="{x0:.1f}" y="{ry:.1f}" '
                    f'width="{max(x1 - x0, 2.0):.1f}" height="{count * ROW_H - 1}" rx="2" fill="{colour}">'
                    f"<title>{escape(title)}</title></rect></a>"
                )

    now_line = ""
    if t0 <= now <= t1:
        nx = x(now)
        now_line = (
            f'<line class="g-now" x1="{nx:.1f}" y1="{AXIS_H - 4}" x2="{nx:.1f}" y2="{height}"/>'
            f'<text class="g-now-label" x="{nx + 3:.1f}" y="{AXIS_H - 1}">now</text>'
        )

    empty = ""
    if not nodes:
        empty = f'<text class="g-empty" x="{WIDTH / 2}" y="{AXIS_H + 20}">No nodes in the inventory yet.</text>'
        height = AXIS_H + 40

    svg = (
        f'<svg class="gantt" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'width="100%" role="img" aria-label="Capacity calendar from {_fmt(t0)} to {_fmt(t1)}">'
        f"{''.join(body)}{''.join(grid)}{''.join(bars)}{now_line}{empty}</svg>"
    )
    return Markup(svg)


@dataclass(frozen=True)
class CpuRow:
    """A node's CPUs as the CPU calendar draws them."""

    id: int
    name: str
    group: str  # "site/cluster · CPU model"
    leasable_cores: int
    leasable_memory_gib: int
    state: str


def _lanes(books: list[CpuBooking], t1: datetime) -> list[int]:
    """A lane per booking such that bookings of one lane do not overlap (greedy, by start)."""
    ends: list[datetime] = []
    out = []
    for b in books:
        for i, e in enumerate(ends):
            if e <= b.start:
                ends[i] = b.end or t1
                out.append(i)
                break
        else:
            ends.append(b.end or t1)
            out.append(len(ends) - 1)
    return out


def render_cpu(rows: list[CpuRow], books: list[CpuBooking], t0: datetime, t1: datetime, now: datetime) -> Markup:
    """The CPU side of the calendar: per node, each CPU lease a bar whose height is its share of the node's
    leasable cores (hover: lease, customer, cores, cpuset, GiB); the node's label says cores held now."""
    plot_w = WIDTH - LABEL_W - RIGHT_PAD
    span = max((t1 - t0).total_seconds(), 1.0)

    def x(t: datetime) -> float:
        return LABEL_W + max(0.0, min(1.0, (t - t0).total_seconds() / span)) * plot_w

    by_node: dict[int, list[CpuBooking]] = defaultdict(list)
    for b in books:
        by_node[b.node_id].append(b)
    body: list[str] = []
    bars: list[str] = []
    y = AXIS_H
    group = None
    lane_h = 3 * ROW_H
    for i, n in enumerate(rows):
        if n.group != group:
            group = n.group
            body.append(f'<text class="g-group" x="4" y="{y + 14}">{escape(n.group)}</text>')
            y += GROUP_H
        node_books = sorted(by_node.get(n.id, []), key=lambda b: (b.start, b.lease_id))
        lanes = _lanes(node_books, t1)
        h = max(1, max(lanes, default=0) + 1) * lane_h
        held_now = sum(len(b.cores) for b in node_books if b.covers(now))
        band = "g-band-odd" if i % 2 else "g-band"
        down = " g-node-down" if n.state != "available" else ""
        body.append(f'<rect class="{band}{down}" x="0" y="{y}" width="{WIDTH}" height="{h}"/>')
        label = n.name if len(n.name) <= 16 else n.name[:15] + "…"
        body.append(
            f'<text class="g-node" x="10" y="{y + lane_h / 2 + 4:.1f}">{escape(label)} '
            f'<tspan class="g-cores">{held_now}/{n.leasable_cores} cores</tspan>'
            f"<title>{escape(n.name)}: {held_now} of {n.leasable_cores} leasable cores and "
            f"{n.leasable_memory_gib} GiB held by CPU leases now</title></text>"
        )
        for b, lane in zip(node_books, lanes, strict=True):
            x0, x1 = x(b.start), x(b.end or t1)
            share = len(b.cores) / n.leasable_cores if n.leasable_cores else 1.0
            bh = max(2.0, (lane_h - 2) * min(1.0, share))
            by = y + lane * lane_h + (lane_h - 1 - bh)
            title = (
                f"Lease {b.lease_id} · {b.customer} · {PLAN_LABELS.get(b.plan, b.plan)} · {b.state}\n"
                f"{_fmt(b.start)} → {_fmt(b.end) if b.end else 'open-ended'}\n"
                f"{n.name}: {len(b.cores)} cores ({cpuset(b.cores)}), {b.memory_gib} GiB"
            )
            bars.append(
                f'<a href="/leases/{b.lease_id}"><rect class="g-bar g-cpu g-{escape(b.state)}" '
                f'data-lease="{b.lease_id}" data-cores="{len(b.cores)}" x="{x0:.1f}" y="{by:.1f}" '
                f'width="{max(x1 - x0, 2.0):.1f}" height="{bh:.1f}" rx="2" '
                f'fill="{PLAN_COLOURS.get(b.plan, "#667")}"><title>{escape(title)}</title></rect></a>'
            )
        y += h + NODE_GAP
    height = y + 4
    now_line = ""
    if t0 <= now <= t1:
        nx = x(now)
        now_line = f'<line class="g-now" x1="{nx:.1f}" y1="{AXIS_H - 4}" x2="{nx:.1f}" y2="{height}"/>'
    svg = (
        f'<svg class="gantt gantt-cpu" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'width="100%" role="img" aria-label="CPU capacity calendar from {_fmt(t0)} to {_fmt(t1)}">'
        f"{''.join(body)}{''.join(bars)}{now_line}</svg>"
    )
    return Markup(svg)
