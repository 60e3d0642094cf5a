"""The clock's work: start leases at their start, close them at their end or preemption, serve the queue.

`tick(now)` is idempotent and runs in one transaction; the server calls it every `tick_seconds`, tests call
it with a simulated clock. Anything it changes is also what a restart would find in the store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from gpulease.domain.leases import LeaseState, Plan
from gpulease.domain.placement import Placement, PlacementRequest
from gpulease.domain.pricing import month_start
from gpulease.domain.queue import WaitingQueue, WaitingRequest, schedule
from gpulease.services import leases as lease_svc
from gpulease.services.context import epoch, from_epoch
from gpulease.store.db import Store
from gpulease.store.models import Alert, Lease

ACTOR = "scheduler"
log = logging.getLogger("gpulease.clock")


@dataclass
class TickResult:
    started: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)  # ended, preempted or failed: runs must stop
    expired: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # lease id -> why its step failed (retried next tick)


def due_leases(session: Session, now: datetime) -> list[Lease]:
    """Only the leases the clock must act on now: a tick costs what is due, not what is stored."""
    live = [LeaseState.SCHEDULED.value, LeaseState.ACTIVE.value, LeaseState.SUSPENDED.value]
    return list(
        session.scalars(
            select(Lease)
            .where(
                Lease.state.in_(live),
                or_(
                    Lease.preempt_at <= now,
                    Lease.ends_at <= now,
                    and_(Lease.state == LeaseState.SCHEDULED.value, Lease.starts_at <= now),
                    and_(Lease.state == LeaseState.SUSPENDED.value, Lease.queued_until <= now),
                ),
            )
            .order_by(Lease.id)
        )
    )


def tick(session: Session, store: Store, now: datetime) -> TickResult:
    """Advance every due lease, each in its own savepoint: one lease that fails is reported, not fatal."""
    out = TickResult()
    for lease in due_leases(session, now):
        lease_id = lease.id
        try:
            with session.begin_nested():
                _advance(session, lease, now, out)
        except Exception as exc:  # isolate the failure to this lease; retried next tick
            log.exception("the clock could not advance lease %s", lease_id)
            out.failed[lease_id] = f"{type(exc).__name__}: {exc}"
    try:
        with session.begin_nested():
            checkpoint_month(session, now)
    except Exception as exc:
        log.exception("month-end checkpoint failed")
        out.failed[0] = f"month-end checkpoint: {type(exc).__name__}: {exc}"
    try:
        with session.begin_nested():
            serve_queue(session, store, now, out)
    except Exception as exc:
        log.exception("serving the waiting queue failed")
        out.failed[-1] = f"waiting queue: {type(exc).__name__}: {exc}"
    return out


def _advance(session: Session, lease: Lease, now: datetime, out: TickResult) -> None:
    """What the clock does to one lease that is due."""
    state = LeaseState(lease.state)
    if lease.preempt_at is not None and lease.preempt_at <= now:
        lease_svc.finish(
            session,
            lease,
            max(lease.preempt_at, lease.activated_at or lease.preempt_at),
            now,
            ACTOR,
            LeaseState.PREEMPTED,
            reason="capacity taken back after notice",
        )
        out.ended.append(lease.id)
    elif lease.ends_at is not None and lease.ends_at <= now and state in (LeaseState.ACTIVE, LeaseState.SUSPENDED):
        if lease.activated_at is None:
            lease_svc.release(lease)
            lease_svc.transition(
                session, lease, LeaseState.CANCELLED, now, ACTOR, reason="the window ended before the lease started"
            )
        else:
            lease_svc.finish(session, lease, lease.ends_at, now, ACTOR, LeaseState.ENDED, reason="window ended")
        out.ended.append(lease.id)
    elif state is LeaseState.SUSPENDED and lease.queued_until is not None and lease.queued_until <= now:
        if not lease.allocations:  # held while still waiting for capacity: its wait is over
            lease_svc.transition(
                session, lease, LeaseState.FAILED, now, ACTOR, reason="no capacity within the maximum wait"
            )
            out.expired.append(lease.id)
    elif state is LeaseState.SCHEDULED and lease.starts_at <= now:
        if lease.ends_at is not None and lease.ends_at <= now:
            lease.activated_at = lease.starts_at  # the whole window passed between two ticks
            lease_svc.transition(session, lease, LeaseState.ACTIVE, now, ACTOR, effective=lease.starts_at)
            lease_svc.finish(session, lease, lease.ends_at, now, ACTOR, LeaseState.ENDED, "window ended")
            out.ended.append(lease.id)
        else:
            lease_svc.activate(session, lease, now, ACTOR)
            out.started.append(lease.id)


def report_failures(session: Session, failed: dict[int, str], now: datetime) -> None:
    """One operator alert per lease the clock could not advance (not one per tick while it keeps failing)."""
    open_alerts = session.scalars(
        select(Alert).where(Alert.kind == "clock_failure", Alert.acknowledged.is_(False))
    ).all()
    already = {a.data.get("lease_id") for a in open_alerts}
    for lease_id, why in failed.items():
        if lease_id in already:
            continue
        what = f"lease {lease_id}" if lease_id > 0 else ("the month-end checkpoint" if lease_id == 0 else "the queue")
        session.add(
            Alert(
                at=now,
                kind="clock_failure",
                data={"lease_id": lease_id, "error": why},
                message=f"the lease clock could not advance {what}: {why}; it retries every tick",
            )
        )


def checkpoint_month(session: Session, now: datetime) -> None:
    """At a month boundary, bill running leases up to it, so each month's invoice is final when it ends."""
    boundary = from_epoch(month_start(epoch(now)))
    # Runs every tick: only leases not yet billed up to this boundary (starts_at bounds the billing start).
    running = session.scalars(
        select(Lease).where(
            Lease.state.in_([LeaseState.ACTIVE.value, LeaseState.SUSPENDED.value]),
            Lease.activated_at.is_not(None),
            or_(Lease.billed_until < boundary, and_(Lease.billed_until.is_(None), Lease.starts_at < boundary)),
        )
    ).all()
    for lease in running:
        start = lease_svc.billing_start(lease)
        if start is not None and start < boundary:
            lease_svc.bill_through(session, lease, boundary, now)


def serve_queue(session: Session, store: Store, now: datetime, out: TickResult, models: set[str] | None = None) -> None:
    """Place waiting requests in priority order with backfill; expire those past their max wait.

    When the head of a model's queue (on-demand or reserved) cannot start now but would if interruptible
    leases gave their GPUs back, those leases get their notice and the head is booked for when it ends.
    """
    waiting = session.scalars(select(Lease).where(Lease.state == LeaseState.QUEUED.value).order_by(Lease.id)).all()
    by_model: dict[str, list[Lease]] = {}
    for lease in waiting:
        if models is not None and lease.gpu_model not in models:
            continue
        if lease.queued_until is not None and lease.queued_until <= now:
            lease_svc.transition(
                session, lease, LeaseState.FAILED, now, ACTOR, reason="no capacity within the maximum wait"
            )
            out.expired.append(lease.id)
        else:
            by_model.setdefault(lease.gpu_model, []).append(lease)
    for model, group in by_model.items():
        store.lock(session, f"placement:{model}")
        cal = lease_svc.load_calendar(session, model, now)
        queue = WaitingQueue()
        for lease in group:
            queue.push(
                WaitingRequest(
                    id=lease.id,
                    gpu_model=model,
                    gpu_count=lease.gpu_count,
                    plan=Plan(lease.plan),
                    duration=lease.duration_s,
                    submitted_at=epoch(lease.created_at),
                    max_wait=None,
                )
            )
        leases = {lease.id: lease for lease in group}
        result = schedule(queue, cal, epoch(now))
        for decision in result:
            _book_from_queue(session, leases[decision.request_id], decision.placement, decision.start, now, out)
        for req, why in result.unplaceable:
            lease_svc.transition(session, leases[req.id], LeaseState.FAILED, now, ACTOR, reason=why.message)
            out.expired.append(req.id)
        started = {d.request_id for d in result} | {r.id for r, _ in result.unplaceable}
        rest = [r for r in queue.ordered() if r.id not in started]
        if rest and rest[0].plan is not Plan.INTERRUPTIBLE:
            head = leases[rest[0].id]
            end = None if head.duration_s is None else epoch(now) + head.duration_s
            preq = PlacementRequest(model, head.gpu_count, epoch(now), end)
            cal.release(head.id)  # schedule() may have booked the head's future reservation
            room = lease_svc.make_room(
                session, cal, preq, now, ACTOR, reason=f"capacity needed by waiting {head.plan} lease {head.id}"
            )
            if room is not None:
                start, _ = room
                placement = cal.place(
                    PlacementRequest(
                        model, head.gpu_count, start, None if head.duration_s is None else start + head.duration_s
                    )
                )
                _book_from_queue(session, head, placement, start, now, out)


def _book_from_queue(
    session: Session, lease: Lease, placement: Placement, start_s: int, now: datetime, out: TickResult
) -> None:
    start = from_epoch(start_s)
    lease.starts_at = start
    if lease.duration_s is not None:
        lease.ends_at = from_epoch(start_s + lease.duration_s)
    q = dict(lease.quote)
    q["start"], q["end"] = start_s, None if lease.ends_at is None else epoch(lease.ends_at)
    lease.quote = q
    lease_svc.allocate(session, lease, placement, start, lease.ends_at)
    lease_svc.transition(session, lease, LeaseState.SCHEDULED, now, ACTOR, reason="placed from the queue")
    if start <= now:
        lease_svc.activate(session, lease, now, ACTOR)
        out.started.append(lease.id)
