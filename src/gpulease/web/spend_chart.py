"""A month's spend as a small SVG chart: what was spent day by day (cumulative, solid), the forecast to the
month's end (dashed), and the monthly limit (a red line).

Built on the server as a string, like the capacity calendar, so it needs no JavaScript and tests can read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from html import escape

from markupsafe import Markup

from gpulease.services.spend import CustomerSpend

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 14, 28


@dataclass(frozen=True)
class Point:
    day: float  # days since the month began
    amount: Decimal


def _day(s: CustomerSpend, at: datetime) -> float:
    """`at` as days since the first of the month `s` is about (the chart's x axis)."""
    return (at - datetime.strptime(s.period + "-01", "%Y-%m-%d").replace(tzinfo=UTC)).total_seconds() / 86400


def cumulative(s: CustomerSpend) -> list[Point]:
    """Spend to the end of each day so far; the last point is now, at the month-to-date figure."""
    points, total = [Point(0.0, Decimal(0))], Decimal(0)
    for i, d in enumerate(s.days):
        total += d.amount
        points.append(Point(float(i + 1), total))
    if points[1:]:
        now = _day(s, s.as_of)
        last = points[-1]
        points[-1] = Point(min(last.day, max(now, last.day - 1)), s.month_to_date)
    return points


def axis_ticks(highest: Decimal, most: int = 5) -> list[Decimal]:
    """Round amounts from 0 to at least `highest`, at most `most` of them, a step of 1, 2, 2.5 or 5 times a power
    of ten: a scale a reader takes in at a glance (0, 0.25, 0.50, …; 0, 2,500, 5,000, …), each label distinct."""
    raw = highest / (most - 1)
    power = Decimal(10) ** (raw.adjusted())
    step = next(
        m * power for m in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)) if m * power >= raw
    )
    n = math.ceil(highest / step)  # the last tick at or above the highest amount
    return [step * i for i in range(n + 1)]


def _money(d: Decimal, currency: str) -> str:
    return f"{d:,.2f} {currency}"


def render(s: CustomerSpend, days_in_month: int) -> Markup:
    """The chart of `s` (a month of `days_in_month` days)."""
    points = cumulative(s)
    ticks = axis_ticks(max([s.forecast, s.month_to_date, s.limit or Decimal(0), Decimal(1)]))
    top = ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(day: float) -> float:
        return LEFT + plot_w * day / days_in_month

    def y(amount: Decimal) -> float:
        return TOP + plot_h * (1 - float(amount / top))

    cur = escape(s.currency)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="spend-chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="Spend in {escape(s.period)}: '
        f'{_money(s.month_to_date, cur)} so far, {_money(s.forecast, cur)} forecast">',
        f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafbfc" stroke="#e2e5eb"/>',
    ]
    places = max(0, -ticks[1].normalize().as_tuple().exponent)  # type: ignore[operator]  # 0.25 → 2, 500 → 0
    for amount in ticks:
        yy = y(amount)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eceef2"/>')
        out.append(
            f'<text class="tick" x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="11" fill="#6b7385">'
            f"{amount:,.{places}f}</text>"
        )
    for day in sorted({1, 8, 15, 22, days_in_month}):
        xx = x(day - 0.5)
        out.append(
            f'<text x="{xx:.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11" fill="#6b7385">{day}</text>'
        )
    if s.limit is not None:
        yy = y(s.limit)
        out.append(
            f'<line class="limit" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#c0322b" '
            f'stroke-dasharray="2 3"><title>monthly limit {_money(s.limit, cur)}</title></line>'
        )
        out.append(
            f'<text x="{WIDTH - RIGHT - 4}" y="{yy - 4:.1f}" text-anchor="end" font-size="11" fill="#c0322b">'
            f"limit {_money(s.limit, cur)}</text>"
        )
    if len(points) > 1:
        last = points[-1]
        over = s.limit is not None and s.forecast > s.limit
        ahead = [Point(_day(s, t), a) for t, a in s.forecast_path[1:]]
        if not ahead:  # a spend made without its path: straight to the forecast at the month's end
            ahead = [Point(float(days_in_month), s.forecast)]
        path = " ".join(f"{x(p.day):.1f},{y(p.amount):.1f}" for p in [last, *ahead])
        out.append(
            f'<polyline class="forecast{" over" if over else ""}" points="{path}" fill="none" '
            f'stroke="{"#c0322b" if over else "#6b7385"}" stroke-width="2" stroke-dasharray="6 4">'
            f"<title>forecast {_money(s.forecast, cur)} by the month's end</title></polyline>"
        )
        coords = " ".join(f"{x(p.day):.1f},{y(p.amount):.1f}" for p in points)
        out.append(
            f'<polyline class="spent" points="{coords}" fill="none" stroke="#2f6fdb" stroke-width="2.5">'
            f"<title>{_money(s.month_to_date, cur)} spent so far</title></polyline>"
        )
    else:
        out.append(
            f'<text x="{LEFT + plot_w / 2:.0f}" y="{TOP + plot_h / 2:.0f}" text-anchor="middle" fill="#6b7385">'
            "nothing spent in this month</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))
