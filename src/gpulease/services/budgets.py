"""Budgets and quotas: a monthly spend limit and a quota of concurrent GPUs per model, set by operators and
visible to the customer; checked when a lease is booked, watched by the clock. (The bounds of what the API accepts
as input are another matter, not these.)

- `admit` is the one check a booking makes, in the booking's own transaction. It takes a per-customer lock
  first (PostgreSQL; SQLite serialises writers already), so many bookings of one customer racing each other
  are checked one after the other against what the earlier ones booked: together they never pass the limit.
- `watch` runs on every tick: once a customer's month-to-date spend reaches its limit, its running on-demand
  and interruptible leases are ended with notice (`spend_limit_notice_s`; their runs are told as of a
  preemption), and at 50, 80 and 100 % of the limit the operators get an alert and the customer a
  notification, once per month each. Reserved and long-term windows are paid for as booked and keep running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gpulease import audit
from gpulease.domain.inventory import UnknownGpuModel, gpu_model
from gpulease.domain.leases import LeaseState, Plan
from gpulease.domain.pricing import PriceEntry, money
from gpulease.domain.spend import (
    Holding,
    LeaseCost,
    MonthSpend,
    over_limit,
    peak_gpus,
    period_of,
    periods_between,
    thresholds_reached,
)
from gpulease.domain.webhooks import EventType
from gpulease.services import limits, notifications, spend
from gpulease.services.context import Actor, epoch
from gpulease.services.customer_terms import CustomerTerms
from gpulease.services.errors import Conflict, InvalidRequest, NotFound, ServiceError
from gpulease.services.permissions import Permission, require
from gpulease.services.transitions import record_event, set_alloc_end
from gpulease.services.work import NotifyPreemption, Work
from gpulease.store.models import Alert, Customer, Lease, SpendThreshold

MAX_LIMIT = Decimal("1e15")


class SpendLimitReached(ServiceError):
    status = 402
    type = "spend-limit"
    title = "Monthly spend limit reached"


class QuotaExceeded(Conflict):
    type = "gpu-quota"
    title = "GPU quota exceeded"


@dataclass(frozen=True)
class Limits:
    customer_id: int
    monthly_spend_limit: Decimal | None
    gpu_quota: dict[str, int]


def _limits(c: Customer) -> Limits:
    limit = None if c.monthly_spend_limit is None else money(Decimal(c.monthly_spend_limit))
    return Limits(c.id, limit, {str(k): int(v) for k, v in sorted(c.gpu_quota.items())})


def get_limits(work: Work, *, actor: Actor, customer_id: int) -> Limits:
    actor.check_customer(customer_id)
    c = work.session.get(Customer, customer_id) if limits.fits_id(customer_id) else None
    if c is None:
        raise NotFound("no such customer")
    return _limits(c)


def set_limits(
    work: Work,
    *,
    actor: Actor,
    customer_id: int,
    monthly_spend_limit: Decimal | str | None,
    gpu_quota: dict[str, int],
) -> Limits:
    """Operator: the customer's monthly spend limit (None: no limit) and GPU quota per model (replaced whole)."""
    require(actor, Permission.SET_LIMITS)
    c = work.session.get(Customer, customer_id) if limits.fits_id(customer_id) else None
    if c is None:
        raise NotFound("no such customer")
    limit = _amount(monthly_spend_limit)
    quota: dict[str, int] = {}
    for name, count in gpu_quota.items():
        try:
            model = gpu_model(name).name
        except UnknownGpuModel as e:
            raise InvalidRequest(str(e)) from None
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 100_000:
            raise InvalidRequest(f"the quota for {model} must be a whole number of GPUs from 0, got {count!r}")
        quota[model] = count
    before = _limits(c)
    c.monthly_spend_limit = limit
    c.gpu_quota = quota
    after = _limits(c)
    audit.append(
        work.session,
        at=work.now,
        actor=actor.name,
        action="customer.limits_set",
        subject=f"customer:{c.id}",
        data={
            "from": {"monthly_spend_limit": _text(before.monthly_spend_limit), "gpu_quota": before.gpu_quota},
            "to": {"monthly_spend_limit": _text(after.monthly_spend_limit), "gpu_quota": after.gpu_quota},
        },
    )
    return after


def _amount(value: Decimal | str | None) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidRequest(f"the monthly spend limit must be an amount such as 1000.00, got {value!r}") from None
    if not d.is_finite() or d < 0 or d >= MAX_LIMIT:
        raise InvalidRequest("the monthly spend limit must be an amount from 0, or empty for none")
    if d != d.quantize(Decimal("0.01")):
        raise InvalidRequest("the monthly spend limit is money: at most two decimals")
    return money(d)


def _text(d: Decimal | None) -> str | None:
    return None if d is None else f"{d:f}"


# --------------------------------------------------------------------------------------------- the check


def admit(
    work: Work,
    *,
    customer: CustomerTerms,
    entry: PriceEntry,
    gpu_count: int,
    start: datetime,
    end: datetime | None,
) -> None:
    """Refuse a booking that would take the customer past its GPU quota (409) or its monthly spend limit (402).

    Runs in the booking's transaction. An extension is checked as a booking of the time it adds (the lease's
    own GPUs are free then: it ends where the extension starts).
    """
    quota = customer.gpu_quota.get(entry.gpu_model)
    if quota is None and customer.monthly_spend_limit is None:
        return
    work.lock(f"customer-limits:{customer.id}")  # bookings of one customer are checked one at a time
    live = spend.live_leases(work, customer.id)
    if quota is not None:
        queued = work.session.scalars(
            select(Lease).where(Lease.customer_id == customer.id, Lease.state == LeaseState.QUEUED.value)
        )
        _check_quota(work, entry.gpu_model, quota, gpu_count, start, end, [*live, *queued])
    if customer.monthly_spend_limit is not None:
        _check_spend(work, customer, entry, gpu_count, start, end, live)


def _check_quota(
    work: Work,
    model: str,
    quota: int,
    count: int,
    start: datetime,
    end: datetime | None,
    leases: list[Lease],
) -> None:
    holdings = []
    for x in leases:
        if x.gpu_model != model:
            continue
        if x.state == LeaseState.QUEUED.value:  # no start yet: counted from now, for as long as it asks
            s = epoch(work.now)
            holdings.append(Holding(s, None if x.duration_s is None else s + x.duration_s, x.gpu_count))
            continue
        stop = x.ends_at if x.preempt_at is None else min(x.preempt_at, x.ends_at or x.preempt_at)
        holdings.append(Holding(epoch(x.starts_at), None if stop is None else epoch(stop), x.gpu_count))
    held = peak_gpus(holdings, epoch(start), None if end is None else epoch(end))
    if held + count > quota:
        raise QuotaExceeded(
            f"this lease would hold {held + count} {model} GPUs at once ({held} already booked in its window); "
            f"the customer's quota is {quota} {model} GPUs at a time",
            limit="gpu_quota",
            gpu_model=model,
            quota=quota,
            requested=count,
            held=held,
        )


def _check_spend(
    work: Work,
    customer: CustomerTerms,
    entry: PriceEntry,
    count: int,
    start: datetime,
    end: datetime | None,
    live: list[Lease],
) -> None:
    limit = money(Decimal(customer.monthly_spend_limit or 0))
    new = LeaseCost(
        lease_id=0,
        rate=entry.rate,
        unit=entry.unit,
        gpu_count=count,
        unbilled_from=None,
        starts=epoch(start),
        stops=None if end is None else epoch(end),
        running=False,
    )
    touched = [period_of(new.starts)] if new.stops is None else periods_between(new.starts, new.stops)
    months: dict[str, MonthSpend] = {p: spend.month_of(work, customer.id, p, live) for p in touched}
    over = over_limit(limit, months, new, epoch(work.now))
    if over is not None:
        cur = entry.currency
        what = "its spend has reached" if end is None else f"it would bring its spend to {over.projected:,.2f} {cur},"
        raise SpendLimitReached(
            f"this lease cannot be booked: in {over.period} {what} past the customer's monthly spend limit of "
            f"{limit:,.2f} {cur}",
            limit="monthly_spend_limit",
            period=over.period,
            projected=f"{over.projected:f}",
            monthly_spend_limit=f"{limit:f}",
            currency=cur,
        )


# --------------------------------------------------------------------------------------------- the clock


def watch(work: Work) -> list[int]:
    """Thresholds and the limit itself, for every customer with a limit; returns the leases given notice.

    A handful of queries per tick however many customers have a limit (spend.months_of reads them together).
    """
    period = spend.current_period(work)
    limited = list(work.session.scalars(select(Customer).where(Customer.monthly_spend_limit.is_not(None))))
    if not limited:
        return []
    months = spend.months_of(work, [c.id for c in limited], period)
    rows = work.session.execute(
        select(SpendThreshold.customer_id, SpendThreshold.percent).where(
            SpendThreshold.period == period, SpendThreshold.customer_id.in_([c.id for c in limited])
        )
    ).all()
    told = {(cid, pct) for cid, pct in rows}
    noticed: list[int] = []
    for c in limited:
        limit = money(Decimal(c.monthly_spend_limit or 0))
        m, live = months[c.id]
        reached = thresholds_reached(m.to_date, limit)
        new = [pct for pct in reached if (c.id, pct) not in told]
        if new:
            _tell_thresholds(work, c, period, new, m.to_date, limit)
        if 100 in reached:
            noticed += _end_with_notice(work, c, live, limit)
    return noticed


def _tell_thresholds(work: Work, c: Customer, period: str, reached: list[int], spent: Decimal, limit: Decimal) -> None:
    for pct in reached:
        try:
            with work.session.begin_nested():  # another server process told it first: once is enough
                work.session.add(SpendThreshold(customer_id=c.id, period=period, percent=pct, at=work.now))
                work.session.flush()
        except IntegrityError:
            continue
        data: dict[str, Any] = {
            "customer_id": c.id,
            "period": period,
            "percent": pct,
            "spent": f"{money(spent):f}",
            "monthly_spend_limit": f"{limit:f}",
        }
        work.session.add(
            Alert(
                at=work.now,
                kind="spend_threshold",
                data=data,
                message=f"{c.legal_name} (customer {c.id}) has spent {money(spent):,.2f} in {period}: "
                f"{pct}% of its monthly limit of {limit:,.2f}"
                + ("; its on-demand and interruptible leases are being ended" if pct >= 100 else ""),
            )
        )
        notifications.notify(work, customer_id=c.id, event=EventType.BUDGET_THRESHOLD, data=data)


def _end_with_notice(work: Work, c: Customer, live: list[Lease], limit: Decimal) -> list[int]:
    deadline = work.now + timedelta(seconds=work.settings.spend_limit_notice_s)
    noticed = []
    for lease in live:
        running = lease.state in (LeaseState.ACTIVE.value, LeaseState.SUSPENDED.value)
        if not running or Plan(lease.plan) not in (Plan.ON_DEMAND, Plan.INTERRUPTIBLE):
            continue
        stop = lease.ends_at if lease.preempt_at is None else min(lease.preempt_at, lease.ends_at or lease.preempt_at)
        if stop is not None and stop <= deadline:
            continue  # it ends by then anyway (or was given this notice on an earlier tick)
        old_end = lease.ends_at
        lease.ends_at = deadline
        set_alloc_end(lease, deadline)
        record_event(
            work,
            lease,
            actor="budget",
            action="lease.end_scheduled",
            reason=f"the monthly spend limit of {limit:,.2f} is reached: the lease ends at {deadline.isoformat()}",
            from_state=lease.state,
            to_state=lease.state,
            data={"from": None if old_end is None else old_end.isoformat(), "to": deadline.isoformat()},
        )
        notifications.lease_ending_soon(work, lease, cause="spend_limit")
        work.after_commit(NotifyPreemption(lease.id, deadline))  # the runs learn of it as of a preemption
        noticed.append(lease.id)
    return noticed
