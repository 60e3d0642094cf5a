"""Metering and invoices. Usage is written in the same transaction as the lease event that causes it."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import Float, Table, bindparam, event, func, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from gpulease.compliance.compute import cpu_flops_per_core, crossed_thresholds, training_operations
from gpulease.domain.inventory import gpu_model
from gpulease.domain.pricing import Quote, Resource, cancellation_fee, money, month_start, rate_usage
from gpulease.services import limits, telemetry
from gpulease.services.context import Actor, epoch, from_epoch
from gpulease.services.errors import InvalidRequest, NotFound
from gpulease.services.permissions import Permission, require
from gpulease.services.work import Work
from gpulease.store import staged
from gpulease.store.models import Customer, Lease, LeaseEvent, ReviewItem, UsageRecord
from gpulease.store.prepared import Prepared

_USAGE = cast(Table, UsageRecord.__table__)


def _add_record(
    work: Work,
    lease: Lease,
    q: Quote,
    *,
    kind: str,
    period: str,
    start: datetime,
    end: datetime,
    seconds: int,
    amount: Decimal,
    util: tuple[float | None, int | None] = (None, None),  # the GPUs' mean use and peak memory (telemetry)
) -> None:
    """Stage the usage record's row (store/staged.py): nothing reads it back as an object, and an end wrote it
    by a flush of its own (~500 calls of the ORM's unit of work for one row)."""
    cpu = q.resource is Resource.CPU  # the cores and memory it was rated for, as the quote has them
    staged.stage(
        work.session,
        _USAGE,
        {
            "lease_id": lease.id,
            "customer_id": lease.customer_id,
            "period": period,
            "kind": kind,
            "starts_at": start,
            "ends_at": end,
            "seconds": seconds,
            "gpu_model": lease.gpu_model,
            "gpu_count": lease.gpu_count,
            "plan": lease.plan,
            "rate": q.rate,
            "unit": q.unit,
            "resource": "cpu" if cpu else "gpu",
            "cpu_model": q.gpu_model if cpu else None,
            "cpu_cores": q.gpu_count if cpu else None,
            "memory_gib": q.memory_gib if cpu else None,
            "gib_rate": q.gib_rate if cpu else None,
            "currency": q.currency,
            "amount": amount,
            "gpu_util_pct": util[0],
            "gpu_mem_used_mib_max": util[1],
            "created_at": work.now,
        },
    )
    if lease.id in work.billed:
        work.billed[lease.id] += amount


def billed_units(lease: Lease, q: Quote) -> int:
    """What a lease's usage is rated per: its GPUs, or a CPU lease's cores (its quote's)."""
    return q.gpu_count if q.resource is Resource.CPU else lease.gpu_count


_BILLED = (
    select(UsageRecord.lease_id, func.sum(UsageRecord.amount))
    .where(UsageRecord.lease_id.in_(bindparam("ids", expanding=True)))
    .group_by(UsageRecord.lease_id)
)


# One lease's usage on record as a column, to read in one statement with other things (an end: services/leases.py);
# `keep_billed` then keeps what it read.
USAGE_OF_ONE = (
    select(func.sum(UsageRecord.amount)).where(UsageRecord.lease_id == bindparam("lease_id")).scalar_subquery()
)


def keep_billed(work: Work, lease_id: int, total: Decimal | None) -> None:
    """A lease's usage on record as the caller read it (`USAGE_OF_ONE`), kept as `billed_totals` keeps its own."""
    work.billed.setdefault(lease_id, Decimal(total or 0))


def billed_totals(work: Work, lease_ids: Sequence[int]) -> dict[int, Decimal]:
    """Usage on record per lease (0.00 for none), rounded to the cent; each lease's sum is read once per unit of
    work and kept current with the records the unit of work adds (`Work.billed`)."""
    missing = sorted({i for i in lease_ids if i not in work.billed})
    if missing:
        work.session.flush()
        rows = work.session.execute(_BILLED, {"ids": missing}).all()
        work.billed.update(dict.fromkeys(missing, Decimal(0)))
        work.billed.update((lease_id, Decimal(total or 0)) for lease_id, total in rows)
    return {i: money(work.billed[i]) for i in lease_ids}


def record_usage(work: Work, lease: Lease, start: datetime, end: datetime) -> None:
    """Rate [start, end) of the lease at its quote, one record per calendar month."""
    if end <= start:
        return
    q = Quote.from_dict(lease.quote)
    units = billed_units(lease, q)
    seconds = 0
    for seg in rate_usage(q, units, epoch(start), epoch(end)):
        seg_start, seg_end = from_epoch(seg.start), from_epoch(seg.end)
        # The GPUs' readings over the segment, before its record is written: it is inserted once, with them.
        gpu = q.resource is Resource.GPU
        util = telemetry.summary(work.session, lease.id, seg_start, seg_end) if gpu else (None, None)
        _add_record(
            work,
            lease,
            q,
            kind=seg.kind,
            period=seg.period,
            start=seg_start,
            end=seg_end,
            seconds=seg.seconds,
            amount=seg.amount,
            util=util,
        )
        seconds += seg.seconds
    _track_compute(
        work,
        lease.customer_id,
        model=q.gpu_model,
        gpu_seconds=seconds * units,
        thresholds=work.settings.compute_thresholds,
        cpu=q.resource is Resource.CPU,
    )


def record_cancellation_fee(work: Work, lease: Lease) -> Decimal:
    """Bill the late-cancellation fee cancelling now costs, if any; returns it (0.00 when none)."""
    now = work.now
    q = Quote.from_dict(lease.quote)
    fee = cancellation_fee(q, epoch(now))
    if fee > 0:
        _add_record(
            work,
            lease,
            q,
            kind="cancellation_fee",
            period=now.strftime("%Y-%m"),
            start=now,
            end=now,
            seconds=0,
            amount=fee,
        )
    return fee


PENDING_COMPUTE = "pending_compute"  # session.info: compute to add to customers when the transaction commits


@dataclass(frozen=True)
class _Compute:
    customer_id: int
    operations: float
    model: str
    cpu: bool
    thresholds: tuple[float, ...]
    at: datetime


def _track_compute(
    work: Work, customer_id: int, *, model: str, gpu_seconds: int, thresholds: Sequence[float], cpu: bool = False
) -> None:
    """Accumulate training compute (GPU-seconds x peak dense BF16 FLOP/s, or for a CPU lease core-seconds x the
    model's per-core peak FLOP/s); crossing a threshold goes to review. Added when the transaction commits
    (`add_pending_compute`): the customer's row is then locked for the COMMIT alone, not for the rest of the
    end, so ends of one customer's leases do not queue on it."""
    per_unit = cpu_flops_per_core(model) if cpu else gpu_model(model).bf16_flops_per_second
    added = training_operations(gpu_seconds, per_unit)
    pending = work.session.info.setdefault(PENDING_COMPUTE, [])
    pending.append(_Compute(customer_id, added, model, cpu, tuple(thresholds), work.now))


def pending_compute_mark(session: Session) -> int:
    """Where the compute to add stands now (for a savepoint: `drop_pending_compute` if it rolls back)."""
    return len(session.info.get(PENDING_COMPUTE, []))


def drop_pending_compute(session: Session, mark: int) -> None:
    del session.info.get(PENDING_COMPUTE, [])[mark:]


# Every end adds its compute so: compiled once and run on the cursor (store/prepared.py).
_ADD_COMPUTE = Prepared(
    update(Customer)
    .where(Customer.id == bindparam("customer_id"))
    .values(cumulative_flop=Customer.cumulative_flop + bindparam("added", type_=Float))
    .returning(Customer.cumulative_flop)
)


def add_pending_compute(session: Session) -> None:
    """Add the transaction's compute to its customers, one atomic increment each (two commits of one customer
    each add their share; a value computed from the row as read would lose one of them under read committed),
    in customer order (two commits never wait on each other's rows); review what crosses a threshold.
    Run just before the commit (`install`)."""
    pending: list[_Compute] = session.info.pop(PENDING_COMPUTE, [])
    by_customer: dict[int, list[_Compute]] = {}
    for c in pending:
        by_customer.setdefault(c.customer_id, []).append(c)
    for customer_id in sorted(by_customer):
        items = by_customer[customer_id]
        total = sum(c.operations for c in items)
        after = _ADD_COMPUTE.scalar(session, {"customer_id": customer_id, "added": total})
        known = session.identity_map.get(identity_key(Customer, customer_id))
        if known is not None:
            set_committed_value(known, "cumulative_flop", after)
        running = after - total
        for c in items:
            for t in crossed_thresholds(running, running + c.operations, c.thresholds):
                customer = session.get(Customer, customer_id)
                assert customer is not None
                session.add(
                    ReviewItem(
                        kind="compute_threshold",
                        customer_id=customer_id,
                        status="open",
                        created_at=c.at,
                        summary=f"{customer.legal_name} crossed {t:.0e} operations of cumulative training compute",
                        details={
                            "threshold": t,
                            "cumulative_flop": running + c.operations,
                            ("cpu_model" if c.cpu else "gpu_model"): c.model,
                        },
                    )
                )
            running += c.operations
    if pending:
        session.flush()


def install(sessions: sessionmaker[Session]) -> None:
    """Add each transaction's compute just before it commits (after the calendars' own work, registered first)."""

    @event.listens_for(sessions, "before_commit")
    def _before(session: Session) -> None:
        if session.info.get(PENDING_COMPUTE):
            session.flush()  # what is pending first (and the rows staged with it): a review item follows them
            add_pending_compute(session)


PERIOD = re.compile(limits.PERIOD)


@dataclass(frozen=True)
class InvoiceLine:
    lease_id: int
    kind: str
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
    resource: str = "gpu"
    cpu_model: str | None = None
    cpu_cores: int | None = None
    memory_gib: int | None = None
    gib_rate: Decimal | None = None


@dataclass(frozen=True)
class Invoice:
    customer_id: int
    period: str
    currency: str
    lines: list[InvoiceLine]

    @property
    def total(self) -> Decimal:
        return money(sum((line.amount for line in self.lines), Decimal("0")))


def _usage(session: Session, actor: Actor, customer_id: int, period: str | None) -> list[UsageRecord]:
    actor.check_customer(customer_id)
    if not limits.fits_id(customer_id) or session.get(Customer, customer_id) is None:
        raise NotFound("no such customer")
    q = select(UsageRecord).where(UsageRecord.customer_id == customer_id)
    if period is not None:
        if not PERIOD.fullmatch(period):
            raise InvalidRequest(f"period must look like YYYY-MM, got {period[:40]!r}")
        q = q.where(UsageRecord.period == period)
    return list(session.scalars(q.order_by(UsageRecord.starts_at, UsageRecord.id)))


def invoice(work: Work, *, actor: Actor, customer_id: int, period: str) -> Invoice:
    recs = _usage(work.session, actor, customer_id, period)
    currencies = {r.currency for r in recs} or {"USD"}
    if len(currencies) > 1:
        raise InvalidRequest(f"usage in {period} is in several currencies: {sorted(currencies)}")
    lines = [
        InvoiceLine(
            lease_id=r.lease_id,
            kind=r.kind,
            description=_describe(r),
            gpu_model=r.gpu_model,
            gpu_count=r.gpu_count,
            plan=r.plan,
            start=r.starts_at,
            end=r.ends_at,
            seconds=r.seconds,
            rate=Decimal(r.rate),
            unit=r.unit,
            amount=money(Decimal(r.amount)),
            resource=r.resource,
            cpu_model=r.cpu_model,
            cpu_cores=r.cpu_cores,
            memory_gib=r.memory_gib,
            gib_rate=None if r.gib_rate is None else Decimal(r.gib_rate),
        )
        for r in recs
    ]
    return Invoice(customer_id, period, currencies.pop(), lines)


def _describe(r: UsageRecord) -> str:
    if r.kind == "cancellation_fee":
        return f"Lease {r.lease_id}: late cancellation fee"
    hours = Decimal(r.seconds) / 3600
    if r.resource == "cpu":  # "EPYC-9654, 16 cores (+ 128 GiB) x 10.0 h at 0.045/core-hour (+ 0.005/GiB-hour)"
        unit = r.unit.replace("core_", "")
        gib = Decimal(r.gib_rate or 0)
        memory = f" (+ {r.memory_gib} GiB)" if r.memory_gib else ""
        memory_rate = f" (+ {gib.normalize():f} {r.currency}/GiB-{unit})" if gib else ""
        return (
            f"Lease {r.lease_id}: {r.cpu_model}, {r.cpu_cores} cores{memory} {r.plan}, "
            f"{hours.quantize(Decimal('0.0001'))} h at {Decimal(r.rate).normalize():f} {r.currency}/core-{unit}"
            f"{memory_rate}"
        )
    return (
        f"Lease {r.lease_id}: {r.gpu_count}x {r.gpu_model} {r.plan}, {hours.quantize(Decimal('0.0001'))} h"
        f" at {Decimal(r.rate).normalize():f} {r.currency}/{r.unit.replace('gpu_', 'GPU-')}"
    )


CSV_FIELDS = [
    "lease_id",
    "period",
    "kind",
    "start",
    "end",
    "seconds",
    "gpu_model",
    "gpu_count",
    "plan",
    "rate",
    "unit",
    "currency",
    "amount",
]


def usage_csv(work: Work, *, actor: Actor, customer_id: int, period: str | None) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_FIELDS)
    for r in _usage(work.session, actor, customer_id, period):
        w.writerow(
            [
                r.lease_id,
                r.period,
                r.kind,
                r.starts_at.isoformat(),
                r.ends_at.isoformat(),
                r.seconds,
                r.gpu_model,
                r.gpu_count,
                r.plan,
                f"{Decimal(r.rate):f}",
                r.unit,
                r.currency,
                f"{money(Decimal(r.amount)):f}",
            ]
        )
    return out.getvalue()


# ------------------------------------------------------------------------------------------ reproducibility

UsageKey = tuple[int, str, str, datetime, datetime, int, Decimal]


def expected_from_events(lease: Lease, events: Sequence[LeaseEvent], now: datetime) -> list[UsageKey]:
    """What the usage records of a lease must be, recomputed from its quote and its event log alone."""
    q = Quote.from_dict(lease.quote)
    at = {e.to_state: e.at for e in reversed(events)}  # the first time each state was entered
    out: list[UsageKey] = []
    if "cancelled" in at and "active" not in at:
        fee = cancellation_fee(q, epoch(at["cancelled"]))
        if fee > 0:
            out.append(
                (
                    lease.id,
                    at["cancelled"].strftime("%Y-%m"),
                    "cancellation_fee",
                    at["cancelled"],
                    at["cancelled"],
                    0,
                    fee,
                )
            )
    if "active" not in at:
        return out
    closed = next((at[s] for s in ("ending", "ended", "preempted", "failed") if s in at), None)
    if q.billed_for_whole_window:
        start, end = from_epoch(q.start), (from_epoch(q.end) if q.end is not None else closed)
        if closed is None:  # still running: billed up to the last month boundary
            end = min(end or now, from_epoch(month_start(epoch(now))))
    else:
        start = at["active"]
        end = closed if closed is not None else from_epoch(month_start(epoch(now)))
    if end is None or end <= start:
        return out
    for s in rate_usage(q, billed_units(lease, q), epoch(start), epoch(end)):
        out.append((lease.id, s.period, s.kind, from_epoch(s.start), from_epoch(s.end), s.seconds, s.amount))
    return out


def usage_periods(work: Work, *, actor: Actor, customer_id: int) -> list[str]:
    """The months in which this customer has usage on record, newest first."""
    actor.check_customer(customer_id)
    if not limits.fits_id(customer_id):
        raise NotFound("no such customer")
    q = select(UsageRecord.period).where(UsageRecord.customer_id == customer_id).distinct()
    return sorted(work.session.scalars(q), reverse=True)


def verify_usage(work: Work, *, actor: Actor, period: str | None = None) -> list[str]:
    """Every usage record against its recomputation from the event log; returns the differences found."""
    require(actor, Permission.VERIFY_RECORDS)
    if period is not None and not PERIOD.fullmatch(period):
        raise InvalidRequest(f"period must look like YYYY-MM, got {period[:40]!r}")
    session, now = work.session, work.now
    problems: list[str] = []
    leases = session.scalars(select(Lease).order_by(Lease.id)).all()
    for lease in leases:
        events = session.scalars(
            select(LeaseEvent).where(LeaseEvent.lease_id == lease.id).order_by(LeaseEvent.id)
        ).all()
        want = sorted(k for k in expected_from_events(lease, events, now) if period is None or k[1] == period)
        q = select(UsageRecord).where(UsageRecord.lease_id == lease.id)
        if period is not None:
            q = q.where(UsageRecord.period == period)
        got = sorted(
            (r.lease_id, r.period, r.kind, r.starts_at, r.ends_at, r.seconds, money(Decimal(r.amount)))
            for r in session.scalars(q)
        )
        if got != want:
            missing = [k for k in want if k not in got]
            extra = [k for k in got if k not in want]
            problems.append(
                f"lease {lease.id}: {len(missing)} expected record(s) missing {_show(missing)}, "
                f"{len(extra)} unexpected {_show(extra)}"
            )
    return problems


def _show(keys: list[UsageKey]) -> str:
    return (
        "[" + "; ".join(f"{k[1]} {k[2]} {k[3]:%Y-%m-%dT%H:%M:%S}→{k[4]:%Y-%m-%dT%H:%M:%S} {k[6]}" for k in keys) + "]"
    )
