"""The clock's work: start leases at their start, close them at their end or preemption, serve the queue.

`tick(work)` is idempotent and runs in one transaction; the server calls it every `tick_seconds`, tests call
it with a simulated clock. Anything it changes is also what a restart would find in the store.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from gpulease.domain.leases import LeaseState
from gpulease.domain.pricing import month_start
from gpulease.services import billing, budgets, notifications, reviews
from gpulease.services.context import epoch, from_epoch
from gpulease.services.lease_queue import serve_queue
from gpulease.services.transitions import activate, bill_through, billing_start, finish, release, transition
from gpulease.services.work import Work
from gpulease.store.models import Alert, Lease

ACTOR = "scheduler"
log = logging.getLogger("gpulease.clock")


@dataclass
class TickResult:
    started: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)  # ended, preempted or failed: runs must stop
    expired: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # lease id -> why its step failed (retried next tick)
    noticed: list[int] = field(default_factory=list)  # given notice: their customer reached its spend limit
    reopened: list[int] = field(default_factory=list)  # customers whose licence expired: back in review


WATCH = -2  # the key in `failed` of the spend-limit and lease-end watch (0: month-end checkpoint, -1: queue)
LICENCES = -3  # the key in `failed` of licence expiry


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


@contextmanager
def _savepoint(work: Work) -> Iterator[None]:
    """One part of a tick in a savepoint. If it rolls back, so does what the unit of work remembers of it: the
    usage totals read or added (read again) and the compute waiting for the commit (dropped)."""
    mark = billing.pending_compute_mark(work.session)
    try:
        with work.session.begin_nested():
            yield
    except Exception:
        work.billed.clear()
        billing.drop_pending_compute(work.session, mark)
        raise


def tick(work: Work) -> TickResult:
    """Advance every due lease, each in its own savepoint: one lease that fails is reported, not fatal."""
    session = work.session
    out = TickResult()
    for lease in due_leases(session, work.now):
        lease_id = lease.id
        try:
            with _savepoint(work):
                _advance(work, lease, out)
        except Exception as exc:  # isolate the failure to this lease; retried next tick
            log.exception("the clock could not advance lease %s", lease_id)
            out.failed[lease_id] = f"{type(exc).__name__}: {exc}"
    try:
        with _savepoint(work):
            checkpoint_month(work)
    except Exception as exc:
        log.exception("month-end checkpoint failed")
        out.failed[0] = f"month-end checkpoint: {type(exc).__name__}: {exc}"
    try:
        with _savepoint(work):
            served = serve_queue(work)
        out.started.extend(served.started)
        out.expired.extend(served.expired)
    except Exception as exc:
        log.exception("serving the waiting queue failed")
        out.failed[-1] = f"waiting queue: {type(exc).__name__}: {exc}"
    try:
        with _savepoint(work):
            out.reopened = reviews.expire_licences(work)  # a clearance whose licence expired goes back to review
    except Exception as exc:
        log.exception("expiring licences failed")
        out.failed[LICENCES] = f"licence expiry: {type(exc).__name__}: {exc}"
    try:
        with _savepoint(work):
            out.noticed = budgets.watch(work)  # budget thresholds; the spend limit ends leases with notice
            notifications.tell_leases_ending_soon(work)
    except Exception as exc:
        log.exception("watching spend limits and lease ends failed")
        out.failed[WATCH] = f"spend and lease-end watch: {type(exc).__name__}: {exc}"
    return out


def _advance(work: Work, lease: Lease, out: TickResult) -> None:
    """What the clock does to one lease that is due."""
    now = work.now
    state = LeaseState(lease.state)
    if lease.preempt_at is not None and lease.preempt_at <= now:
        finish(
            work,
            lease,
            at=max(lease.preempt_at, lease.activated_at or lease.preempt_at),
            actor=ACTOR,
            target=LeaseState.PREEMPTED,
            reason="capacity taken back after notice",
        )
        out.ended.append(lease.id)
    elif lease.ends_at is not None and lease.ends_at <= now and state in (LeaseState.ACTIVE, LeaseState.SUSPENDED):
        if lease.activated_at is None:
            release(lease)
            transition(
                work, lease, LeaseState.CANCELLED, actor=ACTOR, reason="the window ended before the lease started"
            )
        else:
            finish(work, lease, at=lease.ends_at, actor=ACTOR, target=LeaseState.ENDED, reason="window ended")
        out.ended.append(lease.id)
    elif state is LeaseState.SUSPENDED and lease.queued_until is not None and lease.queued_until <= now:
        if not lease.allocations:  # held while still waiting for capacity: its wait is over
            transition(work, lease, LeaseState.FAILED, actor=ACTOR, reason="no capacity within the maximum wait")
            out.expired.append(lease.id)
    elif state is LeaseState.SCHEDULED and lease.starts_at <= now:
        if lease.ends_at is not None and lease.ends_at <= now:
            lease.activated_at = lease.starts_at  # the whole window passed between two ticks
            transition(work, lease, LeaseState.ACTIVE, actor=ACTOR, effective=lease.starts_at)
            finish(work, lease, at=lease.ends_at, actor=ACTOR, target=LeaseState.ENDED, reason="window ended")
            out.ended.append(lease.id)
        else:
            activate(work, lease, actor=ACTOR)
            out.started.append(lease.id)


def report_failures(work: Work, failed: dict[int, str]) -> None:
    """One operator alert per lease the clock could not advance (not one per tick while it keeps failing)."""
    open_alerts = work.session.scalars(
        select(Alert).where(Alert.kind == "clock_failure", Alert.acknowledged.is_(False))
    ).all()
    already = {a.data.get("lease_id") for a in open_alerts}
    for lease_id, why in failed.items():
        if lease_id in already:
            continue
        what = (
            f"lease {lease_id}"
            if lease_id > 0
            else {0: "the month-end checkpoint", WATCH: "the spend watch", LICENCES: "licence expiry"}.get(
                lease_id, "the queue"
            )
        )
        work.session.add(
            Alert(
                at=work.now,
                kind="clock_failure",
                data={"lease_id": lease_id, "error": why},
                message=f"the lease clock could not advance {what}: {why}; it retries every tick",
            )
        )


def checkpoint_month(work: Work) -> None:
    """At a month boundary, bill running leases up to it, so each month's invoice is final when it ends."""
    boundary = from_epoch(month_start(epoch(work.now)))
    # Runs every tick: only leases not yet billed up to this boundary (starts_at bounds the billing start).
    running = work.session.scalars(
        select(Lease).where(
            Lease.state == LeaseState.ACTIVE.value,  # a held lease is billed nothing while held
            Lease.activated_at.is_not(None),
            or_(Lease.billed_until < boundary, and_(Lease.billed_until.is_(None), Lease.starts_at < boundary)),
        )
    ).all()
    for lease in running:
        start = billing_start(lease)
        if start is not None and start < boundary:
            bill_through(work, lease, boundary)
