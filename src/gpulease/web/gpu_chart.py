"""A lease's GPU use as a small SVG chart: utilisation (0–100 %, solid) and the memory in use (dashed, against the
peak), from the clock's NVML readings (services/gpu_usage.py).

Built on the server as a string, like the spend chart, so it needs no JavaScript and tests can read it.
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

from gpulease.services.gpu_usage import GpuUsage

WIDTH, HEIGHT = 640, 180
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 12, 26


def render(u: GpuUsage) -> Markup:
    """The chart of `u`; a sentence instead where there are no readings."""
    span = max((u.until - u.since).total_seconds(), 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    peak = max(u.peak_memory_mib or 0, 1)

    def x(seconds: float) -> float:
        return LEFT + plot_w * seconds / span

    def y(frac: float) -> float:
        return TOP + plot_h * (1 - frac)

    label = (
        f"GPU use from {u.since:%Y-%m-%d %H:%M} to {u.until:%H:%M} UTC: mean {u.mean_utilization_pct:.0f}%, "
        f"peak memory {u.peak_memory_mib:,} MiB"
        if u.readings
        else "no GPU readings"
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gpu-chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'role="img" aria-label="{escape(label)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafbfc" stroke="#e2e5eb"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        yy = y(frac)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eceef2"/>')
        out.append(
            f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="11" fill="#6b7385">'
            f"{frac * 100:.0f}%</text>"
        )
    for frac, anchor in ((0.0, "start"), (1.0, "end")):
        at = u.since if frac == 0.0 else u.until
        out.append(
            f'<text x="{x(span * frac):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}" font-size="11" '
            f'fill="#6b7385">{at:%Y-%m-%d %H:%M}</text>'
        )
    if u.points:
        width = span / max(len(u.points), 1)

        def mid(p_at: float) -> float:
            return x(min(p_at + width / 2, span))

        starts = [(p.at - u.since).total_seconds() for p in u.points]
        util = " ".join(f"{mid(s):.1f},{y(p.utilization_pct / 100):.1f}" for s, p in zip(starts, u.points, strict=True))
        mem = " ".join(f"{mid(s):.1f},{y(p.memory_used_mib / peak):.1f}" for s, p in zip(starts, u.points, strict=True))
        out.append(
            f'<polyline class="memory" points="{mem}" fill="none" stroke="#8a5cd1" stroke-width="1.5" '
            f'stroke-dasharray="5 3"><title>memory in use, against the peak of {u.peak_memory_mib:,} MiB</title>'
            "</polyline>"
        )
        out.append(
            f'<polyline class="utilization" points="{util}" fill="none" stroke="#2f6fdb" stroke-width="2.5">'
            f"<title>utilisation, mean {u.mean_utilization_pct:.0f}%</title></polyline>"
        )
        lx = LEFT + (plot_w - 300) // 2
        out.append(  # the legend, between the times below
            f'<line x1="{lx}" x2="{lx + 22}" y1="{HEIGHT - 12}" y2="{HEIGHT - 12}" stroke="#2f6fdb" '
            'stroke-width="2.5"/>'
            f'<text x="{lx + 26}" y="{HEIGHT - 8}" font-size="11" fill="#6b7385">utilisation</text>'
            f'<line x1="{lx + 96}" x2="{lx + 118}" y1="{HEIGHT - 12}" y2="{HEIGHT - 12}" stroke="#8a5cd1" '
            'stroke-width="1.5" stroke-dasharray="5 3"/>'
            f'<text x="{lx + 122}" y="{HEIGHT - 8}" font-size="11" fill="#6b7385">memory (100% = '
            f"{u.peak_memory_mib:,} MiB)</text>"
        )
    else:
        out.append(
            f'<text x="{LEFT + plot_w / 2:.0f}" y="{TOP + plot_h / 2:.0f}" text-anchor="middle" fill="#6b7385">'
            "no GPU readings in this window</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))
