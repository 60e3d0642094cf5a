"""What a customer spends: a lease's cost so far and ahead, a month's forecast, and the two limits an operator
sets (a monthly spend limit, a quota of concurrent GPUs per model), as pure functions over plain numbers.

Times are epoch seconds, money is Decimal. A lease is seen as a `LeaseCost`: its price, how many GPUs, where
its unbilled time begins, and when it stops if nothing changes. What is on record (usage records) is "billed";
what a running lease has used since is "accrued"; what the leases booked now will cost until a month ends is
the "forecast".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from gpulease.domain.pricing import PriceUnit, money, month_start, next_month_start, price_span

ZERO = Decimal("0.00")
THRESHOLDS = (50, 80, 100)  # shares of the monthly limit at which the customer and the operators are told


@dataclass(frozen=True, slots=True)
class LeaseCost:
    """A lease as spend sees it."""

    lease_id: int
    rate: Decimal
    unit: PriceUnit
    gpu_count: int
    unbilled_from: int | None  # where time not yet on record begins (None: nothing accrues: not started)
    starts: int  # when it starts (a scheduled lease) or started being billed
    stops: int | None  # when it stops if nothing changes (end, preemption deadline); None: open-ended
    running: bool  # it is using its GPUs now and accrues by the second
    gib_rate: Decimal = ZERO  # a CPU lease: gpu_count is its cores, and its memory is priced at this rate
    memory_gib: int = 0

    def price(self, start: int, end: int) -> Decimal:
        if end <= start:
            return ZERO
        return price_span(self.rate, self.unit, self.gpu_count, start, end, self.gib_rate, self.memory_gib)


def period_bounds(period: str) -> tuple[int, int]:
    """`YYYY-MM` -> [first second of the month, first second of the next) in UTC."""
    y, m = (int(x) for x in period.split("-"))
    start = int(datetime(y, m, 1, tzinfo=UTC).timestamp())
    return start, next_month_start(start)


def period_of(ts: int) -> str:
    return datetime.fromtimestamp(month_start(ts), UTC).strftime("%Y-%m")


def periods_between(start: int, end: int) -> list[str]:
    """The months [start, end) touches, in order."""
    out, t = [], month_start(start)
    while t < end:
        out.append(period_of(t))
        t = next_month_start(t)
    return out


def accrued(lease: LeaseCost, now: int, period: tuple[int, int] | None = None) -> Decimal:
    """What a running lease has used and is not on record yet, up to `now` (within `period` if given)."""
    if not lease.running or lease.unbilled_from is None:
        return ZERO
    start, end = lease.unbilled_from, now if lease.stops is None else min(now, lease.stops)
    if period is not None:
        start, end = max(start, period[0]), min(end, period[1])
    return lease.price(start, end)


def ahead(lease: LeaseCost, now: int, until: int, *, open_ended_runs: bool) -> Decimal:
    """What the lease will cost from `now` (or its start) to `until` if nothing changes.

    An open-ended lease has no end to count to: `open_ended_runs` says whether to assume it keeps running to
    `until` (a forecast) or to count nothing for it (what is committed: it stops when it is ended).
    """
    start = max(now, lease.starts)
    if lease.stops is None:
        return lease.price(start, until) if open_ended_runs else ZERO
    return lease.price(start, min(until, lease.stops))


@dataclass(frozen=True, slots=True)
class MonthSpend:
    """One month of a customer's spend, as of `now`."""

    billed: Decimal  # on record
    accrued: Decimal  # used by running leases since their last record, not billed yet
    committed: Decimal  # what leases with an end will still cost this month
    forecast: Decimal  # billed + accrued + what every lease booked now costs to the month's end

    @property
    def to_date(self) -> Decimal:
        return self.billed + self.accrued


def month_spend(billed: Decimal, leases: Iterable[LeaseCost], now: int, period: str) -> MonthSpend:
    """Spend in `period`: the billed part as given, the accrued part and what lies ahead from the leases.

    For a month already over, nothing lies ahead; for a month not begun, nothing has accrued.
    """
    ps, pe = period_bounds(period)
    acc = committed = open_ahead = ZERO
    for lease in leases:
        if now > ps:
            acc += accrued(lease, min(now, pe), (ps, pe))
        if now < pe:
            view = max(now, ps)
            fixed = ahead(lease, view, pe, open_ended_runs=False)
            committed += fixed
            open_ahead += ahead(lease, view, pe, open_ended_runs=True) - fixed
    return MonthSpend(billed, acc, committed, billed + acc + committed + open_ahead)


PATH_POINTS = 60  # a forecast path's moments at most: a chart's width, whatever the number of leases


def forecast_path(spent: Decimal, leases: Sequence[LeaseCost], now: int, period: str) -> list[tuple[int, Decimal]]:
    """The forecast as the chart draws it: spend at `now`, at each moment a lease starts or stops before the
    month ends, and at the month's end (the forecast itself, exactly as `month_spend` counts what lies ahead).
    Between two points spend grows linearly, so a lease that stops in an hour shows as a rise that then levels
    off, not as a slope to the month's end. One sweep over the leases' starts and stops (each lease's cost spread
    evenly over its seconds: the points between are to the cent, for a picture), thinned to PATH_POINTS."""
    ps, pe = period_bounds(period)
    view = max(now, ps)
    if view >= pe:
        return []
    slope_change: defaultdict[int, Decimal] = defaultdict(Decimal)  # per second, from that moment on
    ahead_total = ZERO
    for x in leases:
        start, stop = max(view, x.starts), pe if x.stops is None else min(pe, x.stops)
        if stop <= start:
            continue
        cost = x.price(start, stop)
        ahead_total += cost
        slope_change[start] += cost / (stop - start)
        slope_change[stop] -= cost / (stop - start)
    path: list[tuple[int, Decimal]] = []
    value, slope, last = spent, ZERO, view
    for t in sorted({view, pe, *slope_change}):
        value += slope * (t - last)
        slope += slope_change.get(t, ZERO)
        last = t
        path.append((t, money(value)))
    path[-1] = (pe, spent + ahead_total)
    if len(path) > PATH_POINTS:
        step = (len(path) - 1) / (PATH_POINTS - 1)
        path = [path[round(i * step)] for i in range(PATH_POINTS)]
    return path


# --------------------------------------------------------------------------------------------- limits


@dataclass(frozen=True, slots=True)
class Over:
    """A booking that would pass the monthly spend limit in `period`: spend would come to `projected`."""

    period: str
    projected: Decimal
    limit: Decimal


def over_limit(limit: Decimal, months: dict[str, MonthSpend], new: LeaseCost, now: int) -> Over | None:
    """Whether booking `new` would pass `limit` in some month it touches.

    A month's projection is its spend to date, what leases with an end will still cost in it, and the new
    lease's cost in it. An open-ended lease commits nothing ahead (it is ended with notice when the month
    reaches the limit), so it is refused only once the month has reached the limit already.
    """
    touched = [period_of(new.starts)] if new.stops is None else periods_between(new.starts, new.stops)
    for period in touched:
        m = months.get(period, MonthSpend(ZERO, ZERO, ZERO, ZERO))
        so_far = m.to_date + m.committed
        if new.stops is None:
            if so_far >= limit:
                return Over(period, so_far, limit)
            continue
        ps, pe = period_bounds(period)
        projected = so_far + new.price(max(new.starts, ps, now), min(new.stops, pe))
        if projected > limit:
            return Over(period, projected, limit)
    return None


def thresholds_reached(spent: Decimal, limit: Decimal) -> list[int]:
    """The shares of the limit (50, 80, 100 %) that `spent` has reached."""
    if limit <= 0:
        return list(THRESHOLDS)
    return [t for t in THRESHOLDS if spent * 100 >= limit * t]


@dataclass(frozen=True, slots=True)
class Holding:
    """GPUs of one model a lease holds (or will) over [start, end); end None: open-ended."""

    start: int
    end: int | None
    gpus: int


def peak_gpus(holdings: Sequence[Holding], start: int, end: int | None) -> int:
    """The most GPUs held at once at any instant of [start, end) (end None: from start on)."""
    edges: list[tuple[int, int]] = []
    for h in holdings:
        s, e = max(h.start, start), h.end if end is None else (end if h.end is None else min(h.end, end))
        if e is not None and e <= s:
            continue
        edges.append((s, h.gpus))
        if e is not None:
            edges.append((e, -h.gpus))
    peak = held = 0
    for _, delta in sorted(edges, key=lambda x: (x[0], x[1])):  # at one instant, releases before takes
        held += delta
        peak = max(peak, held)
    return peak
