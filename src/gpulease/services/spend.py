"""What leases cost so far and what a customer spends in a month: read models over the usage on record and the
leases still running (domain/spend.py does the arithmetic).

- A lease's **cost so far** is its usage on record plus what it has used since (accrued, by the second, at its
  quote); its **final cost** is its usage on record once it is closed (the number no longer changes).
- A month's **billed** spend is its usage on record (the invoice's lines); **accrued** is what running leases
  have used in it since their last record; the **forecast** is billed + accrued + what every lease booked now
  will cost until the month ends if nothing changes (a lease with an end stops at it; an open-ended lease is
  assumed to keep running to the month's end; a queued request is not counted until it has GPUs).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from gpulease.domain.leases import LeaseState
from gpulease.domain.pricing import Quote, money
from gpulease.domain.spend import (
    LeaseCost,
    MonthSpend,
    accrued,
    forecast_path,
    month_spend,
    period_bounds,
    period_of,
)
from gpulease.services import billing, limits
from gpulease.services.billing import PERIOD, Invoice
from gpulease.services.context import Actor, epoch, from_epoch
from gpulease.services.errors import InvalidRequest, NotFound
from gpulease.services.transitions import billing_start
from gpulease.services.work import Work
from gpulease.store.models import Customer, Lease, UsageRecord

RUNNING = (LeaseState.ACTIVE,)  # using GPUs now: they accrue by the second (a lease on hold accrues nothing)
LIVE = (LeaseState.SCHEDULED, *RUNNING, LeaseState.SUSPENDED)  # booked and not closed: what lies ahead of them counts
CLOSED = frozenset(
    {LeaseState.ENDING, LeaseState.ENDED, LeaseState.CANCELLED, LeaseState.PREEMPTED, LeaseState.FAILED}
    | {LeaseState.REJECTED}
)
FORECAST_METHOD = (
    "billed + accrued + what every lease booked now costs until the month ends if nothing changes: a lease "
    "with an end stops at it, an open-ended lease is assumed to run to the month's end, queued requests "
    "count once they have GPUs"
)


def lease_cost(lease: Lease) -> LeaseCost:
    """A lease as the spend arithmetic sees it."""
    q = Quote.from_dict(lease.quote)
    state = LeaseState(lease.state)
    start = billing_start(lease)
    stops = lease.ends_at
    if lease.preempt_at is not None:
        stops = lease.preempt_at if stops is None else min(stops, lease.preempt_at)
    if q.billed_for_whole_window and lease.ends_at is not None:
        stops = lease.ends_at  # a reserved window is paid in full even if given back early
    return LeaseCost(
        lease_id=lease.id,
        rate=q.rate,
        unit=q.unit,
        gpu_count=billing.billed_units(lease, q),
        unbilled_from=None if start is None else epoch(start),
        starts=epoch(start if start is not None else lease.starts_at),
        stops=None if stops is None else epoch(stops),
        running=state in RUNNING and start is not None,
        gib_rate=q.gib_rate,
        memory_gib=q.memory_gib,
    )


# --------------------------------------------------------------------------------------------- per lease


@dataclass(frozen=True)
class LeaseSpend:
    """What a lease has cost and how long it has run, as of `as_of`."""

    lease_id: int
    currency: str
    cost_so_far: Decimal
    accrued: Decimal  # the part of cost_so_far not on record yet (running leases)
    final_cost: Decimal | None  # once closed
    elapsed_s: int
    remaining_s: int | None  # None: open-ended (it runs until it is ended)
    as_of: datetime


def of_leases(work: Work, leases: Sequence[Lease]) -> dict[int, LeaseSpend]:
    """Cost so far, elapsed and remaining time of each lease (one query for what is on record)."""
    billed = billing.billed_totals(work, [x.id for x in leases])
    return {x.id: _lease_spend(x, billed.get(x.id, Decimal("0.00")), work.now) for x in leases}


def of_lease(work: Work, lease: Lease) -> LeaseSpend:
    return of_leases(work, [lease])[lease.id]


def _lease_spend(lease: Lease, billed: Decimal, now: datetime) -> LeaseSpend:
    state = LeaseState(lease.state)
    more = accrued(lease_cost(lease), epoch(now))
    closed = state in CLOSED
    elapsed = 0
    if lease.activated_at is not None:
        stop = lease.ended_at if lease.ended_at is not None else now
        elapsed = max(0, int((min(stop, now) - lease.activated_at).total_seconds()))
    remaining: int | None
    if closed:
        remaining = 0
    else:
        ends = lease.ends_at
        if lease.preempt_at is not None:
            ends = lease.preempt_at if ends is None else min(ends, lease.preempt_at)
        remaining = None if ends is None else max(0, int((ends - max(now, lease.starts_at)).total_seconds()))
    return LeaseSpend(
        lease_id=lease.id,
        currency=Quote.from_dict(lease.quote).currency,
        cost_so_far=money(billed + more),
        accrued=more,
        final_cost=billed if closed else None,
        elapsed_s=elapsed,
        remaining_s=remaining,
        as_of=now,
    )


# --------------------------------------------------------------------------------------------- per customer


@dataclass(frozen=True)
class LeaseLine:
    """One lease's part in a month's spend."""

    lease_id: int
    gpu_model: str | None
    gpu_count: int
    plan: str
    state: str
    billed: Decimal
    accrued: Decimal
    running: bool


@dataclass(frozen=True)
class DayPoint:
    day: date
    amount: Decimal  # spent that day (billed and accrued), unrounded shares of the records


@dataclass(frozen=True)
class CustomerSpend:
    """A customer's spend in one month, as of `as_of`."""

    customer_id: int
    period: str
    currency: str
    billed: Decimal
    accrued: Decimal
    forecast: Decimal
    limit: Decimal | None
    as_of: datetime
    leases: list[LeaseLine]
    days: list[DayPoint]  # each day of the month up to today
    forecast_method: str = FORECAST_METHOD
    # (moment, spend by then) from now to the month's end, the last the forecast: the path the chart draws
    forecast_path: list[tuple[datetime, Decimal]] = field(default_factory=list)

    @property
    def month_to_date(self) -> Decimal:
        return self.billed + self.accrued

    @property
    def percent_of_limit(self) -> Decimal | None:
        if self.limit is None or self.limit <= 0:
            return None
        return (self.month_to_date * 100 / self.limit).quantize(Decimal("0.1"))


def check_period(period: str) -> str:
    if not PERIOD.match(period):
        raise InvalidRequest(f"period must look like YYYY-MM, got {period!r}")
    return period


def customer_spend(work: Work, *, actor: Actor, customer_id: int, period: str | None = None) -> CustomerSpend:
    """Month-to-date spend (billed and accrued), the forecast to the month's end, and the limit."""
    actor.check_customer(customer_id)
    customer = work.session.get(Customer, customer_id) if limits.fits_id(customer_id) else None
    if customer is None:
        raise NotFound("no such customer")
    period = check_period(period or work.now.strftime("%Y-%m"))
    return spend_of(work, customer, period)


def live_leases(work: Work, customer_id: int) -> list[Lease]:
    return list(
        work.session.scalars(
            select(Lease)
            .where(Lease.customer_id == customer_id, Lease.state.in_([s.value for s in LIVE]))
            .order_by(Lease.id)
        )
    )


def billed_in(work: Work, customer_id: int, period: str) -> Decimal:
    total = work.session.scalar(
        select(func.sum(UsageRecord.amount)).where(UsageRecord.customer_id == customer_id, UsageRecord.period == period)
    )
    return money(Decimal(total or 0))


def month_of(work: Work, customer_id: int, period: str, leases: Sequence[Lease] | None = None) -> MonthSpend:
    """The month's spend figures alone (what the limit is checked against)."""
    live = live_leases(work, customer_id) if leases is None else leases
    return month_spend(billed_in(work, customer_id, period), [lease_cost(x) for x in live], epoch(work.now), period)


def months_of(work: Work, customer_ids: Sequence[int], period: str) -> dict[int, tuple[MonthSpend, list[Lease]]]:
    """The month's figures of many customers at once (three queries, whatever their number), with each one's
    live leases: what the clock's budget watch reads every tick."""
    if not customer_ids:
        return {}
    ids = list(customer_ids)
    billed = dict(
        work.session.execute(
            select(UsageRecord.customer_id, func.sum(UsageRecord.amount))
            .where(UsageRecord.customer_id.in_(ids), UsageRecord.period == period)
            .group_by(UsageRecord.customer_id)
        ).all()
    )
    live: dict[int, list[Lease]] = defaultdict(list)
    for x in work.session.scalars(
        select(Lease).where(Lease.customer_id.in_(ids), Lease.state.in_([s.value for s in LIVE])).order_by(Lease.id)
    ):
        live[x.customer_id].append(x)
    now = epoch(work.now)
    return {
        cid: (
            month_spend(money(Decimal(billed.get(cid) or 0)), [lease_cost(x) for x in live[cid]], now, period),
            live[cid],
        )
        for cid in ids
    }


def spend_of(work: Work, customer: Customer, period: str) -> CustomerSpend:
    now = epoch(work.now)
    ps, pe = period_bounds(period)
    records = list(
        work.session.scalars(
            select(UsageRecord)
            .where(UsageRecord.customer_id == customer.id, UsageRecord.period == period)
            .order_by(UsageRecord.starts_at, UsageRecord.id)
        )
    )
    live = live_leases(work, customer.id)
    costs = [lease_cost(x) for x in live]
    m = month_spend(money(sum((Decimal(r.amount) for r in records), Decimal(0))), costs, now, period)
    currencies = {r.currency for r in records} | {Quote.from_dict(x.quote).currency for x in live}
    if len(currencies) > 1:
        raise InvalidRequest(f"spend in {period} is in several currencies: {sorted(currencies)}")
    lines: dict[int, LeaseLine] = {}
    billed_per: dict[int, Decimal] = defaultdict(Decimal)
    for r in records:
        billed_per[r.lease_id] += Decimal(r.amount)
    leases = {x.id: x for x in live}
    missing = set(billed_per) - set(leases)
    if missing:
        leases |= {x.id: x for x in work.session.scalars(select(Lease).where(Lease.id.in_(missing)))}
    for lease_id, lease in sorted(leases.items()):
        cost = lease_cost(lease)
        acc = accrued(cost, min(now, pe), (ps, pe)) if now > ps else Decimal("0.00")
        billed = money(billed_per.get(lease_id, Decimal(0)))
        if billed or acc or cost.running:
            lines[lease_id] = LeaseLine(
                lease_id, lease.gpu_model, lease.gpu_count, lease.plan, lease.state, billed, acc, cost.running
            )
    return CustomerSpend(
        customer_id=customer.id,
        period=period,
        currency=currencies.pop() if currencies else "USD",
        billed=m.billed,
        accrued=m.accrued,
        forecast=m.forecast,
        limit=None if customer.monthly_spend_limit is None else money(Decimal(customer.monthly_spend_limit)),
        as_of=work.now,
        leases=list(lines.values()),
        days=_days(records, costs, ps, min(pe, max(now, ps))),
        forecast_path=[(from_epoch(t), a) for t, a in forecast_path(m.billed + m.accrued, costs, now, period)],
    )


def _days(records: Sequence[UsageRecord], live: Sequence[LeaseCost], start: int, end: int) -> list[DayPoint]:
    """What was spent each day of [start, end): each record shared out over its seconds, plus what running
    leases accrued. Shares are left unrounded so the days add up to the month's figures."""
    first = datetime.fromtimestamp(start, UTC).date()
    n = max(0, (end - start + 86399) // 86400)
    per_day = [Decimal(0)] * n
    for r in records:
        s, e, amount = epoch(r.starts_at), epoch(r.ends_at), Decimal(r.amount)
        if e <= s:  # a fee: on the day it was charged
            i = (s - start) // 86400
            if 0 <= i < n:
                per_day[i] += amount
            continue
        _spread(per_day, start, s, e, _share_of(amount, s, e))
    for lease in live:
        if lease.running and lease.unbilled_from is not None:
            stop = end if lease.stops is None else min(end, lease.stops)
            _spread(per_day, start, lease.unbilled_from, stop, lease.price)
    return [DayPoint(first + timedelta(days=i), amount) for i, amount in enumerate(per_day)]


def _share_of(amount: Decimal, s: int, e: int) -> Callable[[int, int], Decimal]:
    return lambda a, b: amount * (b - a) / (e - s)


def _spread(per_day: list[Decimal], origin: int, s: int, e: int, amount_of: Callable[[int, int], Decimal]) -> None:
    """Add what [s, e) cost to each day (from `origin`) it covers."""
    t = max(s, origin)
    while t < e:
        i = (t - origin) // 86400
        if i >= len(per_day):
            break
        boundary = min(e, origin + (i + 1) * 86400)
        per_day[i] += amount_of(t, boundary)
        t = boundary


@dataclass(frozen=True)
class AccruedLine:
    """A running lease's use in the month since its last usage record: on no invoice yet, not final."""

    lease_id: int
    description: str
    gpu_model: str | None
    gpu_count: int
    plan: str
    start: datetime
    end: datetime
    seconds: int
    rate: Decimal
    unit: str
    amount: Decimal


@dataclass(frozen=True)
class InvoiceSoFar:
    """The month's invoice (usage on record) and, apart from it, what running leases have accrued."""

    invoice: Invoice
    accrued: list[AccruedLine]

    @property
    def accrued_total(self) -> Decimal:
        return money(sum((a.amount for a in self.accrued), Decimal(0)))


def invoice_so_far(work: Work, *, actor: Actor, customer_id: int, period: str | None = None) -> InvoiceSoFar:
    """The invoice of `period` (this month when None) with the running leases' accrued use beside it, marked as
    such. A period given is checked as given (an empty one is refused, not taken for this month)."""
    if period is None:
        period = work.now.strftime("%Y-%m")
    inv = billing.invoice(work, actor=actor, customer_id=customer_id, period=period)
    now = epoch(work.now)
    ps, pe = period_bounds(period)
    lines = []
    for lease in live_leases(work, customer_id):
        cost = lease_cost(lease)
        if not cost.running or cost.unbilled_from is None:
            continue
        start = max(cost.unbilled_from, ps)
        end = min(now, pe) if cost.stops is None else min(now, pe, cost.stops)
        if end <= start:
            continue
        q = Quote.from_dict(lease.quote)
        hours = (Decimal(end - start) / 3600).quantize(Decimal("0.0001"))
        lines.append(
            AccruedLine(
                lease_id=lease.id,
                description=f"Lease {lease.id}: {_what(lease)} {lease.plan}, {hours} h so far "
                "(running: accrued, not final)",
                gpu_model=lease.gpu_model,
                gpu_count=lease.gpu_count,
                plan=lease.plan,
                start=from_epoch(start),
                end=from_epoch(end),
                seconds=end - start,
                rate=q.rate,
                unit=q.unit.value,
                amount=cost.price(start, end),
            )
        )
    return InvoiceSoFar(inv, lines)


def _what(lease: Lease) -> str:
    if lease.resource == "cpu":
        return f"{lease.cpu_model}, {lease.cpu_cores} cores (+ {lease.memory_gib} GiB)"
    return f"{lease.gpu_count}x {lease.gpu_model}"


def current_period(work: Work) -> str:
    return period_of(epoch(work.now))
