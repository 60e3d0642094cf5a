"""Lease internals every lease use case and the clock share: state changes with their event and audit
entry, activation, closing a lease (billing what it used, freeing its GPUs), preemption notices.

All of it runs in the caller's unit of work; nothing here checks roles (the use cases do).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol, TypeVar, cast

from sqlalchemy import Table, bindparam, exists, select

from gpulease import audit
from gpulease.backends import RunState
from gpulease.domain.cpu_placement import CpuCalendar
from gpulease.domain.leases import LeaseState, Plan, check_transition
from gpulease.domain.placement import CapacityCalendar
from gpulease.domain.pricing import Quote
from gpulease.services import billing, notifications
from gpulease.services.context import epoch
from gpulease.services.errors import Conflict
from gpulease.services.work import NotifyPreemption, Work
from gpulease.store import staged
from gpulease.store.models import Allocation, CpuAllocation, Lease, LeaseEvent, MemoryAllocation, Run
from gpulease.store.prepared import Prepared

LEASE_EVENTS = cast(Table, LeaseEvent.__table__)


def transition(
    work: Work,
    lease: Lease,
    target: LeaseState,
    *,
    actor: str,
    reason: str | None = None,
    effective: datetime | None = None,
) -> None:
    """Move a lease to `target`, record the event and the audit entry, all in the caller's transaction.

    `effective` is when the change took effect if that is not now (a window that ended between two ticks):
    the event carries it, so usage can be recomputed from the event log alone.
    """
    current = LeaseState(lease.state)
    check_transition(current, target)
    lease.state = target.value
    lease.state_reason = reason
    at = effective or work.now
    record_event(
        work,
        lease,
        actor=actor,
        action="lease.transition",
        reason=reason,
        from_state=current.value,
        to_state=target.value,
        data={"from": current.value, "to": target.value, "reason": reason, "effective": at.isoformat()},
        effective=at,
    )


def record_event(
    work: Work,
    lease: Lease,
    *,
    actor: str,
    action: str,
    reason: str | None,
    from_state: str | None,
    to_state: str,
    data: dict[str, object],
    effective: datetime | None = None,
) -> None:
    """One entry in the lease's event log, the same fact in the audit chain, and what the customer is told of it
    (services/notifications.py: a notification and its webhook deliveries, in this same transaction)."""
    # Staged (store/staged.py): written in bulk with the transaction's next statement, not as ORM objects.
    staged.stage(
        work.session,
        LEASE_EVENTS,
        {
            "lease_id": lease.id,
            "at": effective or work.now,
            "from_state": from_state,
            "to_state": to_state,
            "actor": actor,
            "reason": reason,
        },
    )
    audit.append_staged(work.session, at=work.now, actor=actor, action=action, subject=f"lease:{lease.id}", data=data)
    notifications.on_lease_event(work, lease, action=action, from_state=from_state, to_state=to_state)


def activate(work: Work, lease: Lease, *, actor: str) -> None:
    lease.activated_at = work.now
    transition(work, lease, LeaseState.ACTIVE, actor=actor)


def holds(lease: Lease) -> list[Allocation | CpuAllocation | MemoryAllocation]:
    """What the lease holds: its GPUs, or a CPU lease's cores and memory (not loaded for a GPU lease)."""
    held: list[Allocation | CpuAllocation | MemoryAllocation] = [*lease.allocations]
    if lease.resource == "cpu":
        held += [*lease.cpu_allocations, *lease.memory_allocations]
    return held


class _Held(Protocol):
    @property
    def starts_at(self) -> datetime: ...
    @property
    def released(self) -> bool: ...


H = TypeVar("H", bound=_Held)


def current_holds(rows: Iterable[H]) -> list[H]:
    """What a lease holds in its current placement: its unreleased allocations of the latest start. A lease moved
    off a failed node keeps the ones it held before on record, closed at the move (the calendars read the same)."""
    live = [a for a in rows if not a.released]
    latest = max((a.starts_at for a in live), default=None)
    return [a for a in live if a.starts_at == latest]


def set_alloc_end(lease: Lease, end: datetime | None) -> None:
    """Give what the lease holds now (`current_holds`) a new end: an extension, an end, a truncation.

    The allocations it held before a move are history and are never reopened (an extension once gave the failed
    node's GPUs back to the lease); an end before the move cuts them.
    """
    held = [a for a in holds(lease) if not a.released]
    current = current_holds(held)
    for a in held:
        if a not in current and (end is None or a.ends_at is None or end >= a.ends_at):
            continue  # history, not cut by the new end
        if end is not None and end <= a.starts_at:
            a.released = True  # ended within its first second: it holds nothing, never an empty [t, t)
        else:
            a.ends_at = end


def release(lease: Lease) -> None:
    for a in holds(lease):
        a.released = True


def billing_start(lease: Lease) -> datetime | None:
    """Where the unbilled time of a started lease begins."""
    if lease.activated_at is None:
        return None
    if lease.billed_until is not None:
        return lease.billed_until
    return lease.starts_at if Quote.from_dict(lease.quote).billed_for_whole_window else lease.activated_at


def bill_through(work: Work, lease: Lease, until: datetime) -> None:
    """Record the lease's usage from where billing stopped up to `until` (idempotent).

    A lease on compliance hold is billed nothing: it was billed up to the hold (`holds.hold_leases`) and billing
    resumes from the release."""
    if lease.state == LeaseState.SUSPENDED.value:
        return
    start = billing_start(lease)
    if start is None or until <= start:
        return
    billing.record_usage(work, lease, start, until)
    lease.billed_until = until


def finish(
    work: Work,
    lease: Lease,
    *,
    at: datetime,
    actor: str,
    target: LeaseState,
    reason: str | None,
    runs: bool | None = None,
) -> None:
    """Close a lease at `at`: free its GPUs from then on and bill what it used, in this transaction.

    A lease that ends goes to `ending` while its runs are being stopped; the executor makes it `ended` once
    nothing of the customer's runs on the GPUs any more (`close_ending`); at once if no run is on record.
    `runs`: whether a run of it may still be going, if the caller read it already (`RUN_GOING`) in this transaction.
    """
    if runs is None:
        runs = _has_runs(work, lease.id)  # asked first: nothing of this change is flushed for it yet
    if lease.activated_at is None:
        release(lease)
    else:
        whole = Quote.from_dict(lease.quote).billed_for_whole_window
        bill_through(work, lease, (lease.ends_at or at) if whole else at)
        if not whole or lease.ends_at is None or at < lease.ends_at:
            set_alloc_end(lease, max(at, lease.activated_at))
    lease.ended_at = at
    if target is LeaseState.ENDED:
        target = LeaseState.ENDING
    transition(work, lease, target, actor=actor, reason=reason, effective=at)
    if target is LeaseState.ENDING and not runs:
        # Nothing runs on its GPUs: handed back at once, as the executor would (no pass over every run later).
        transition(work, lease, LeaseState.ENDED, actor="executor", reason=handed_back(lease))
    work.stop_runs(lease.id, runs_on_record=runs)


def handed_back(lease: Lease) -> str:
    """Why an ended lease is closed: what it held is free again (a CPU lease held cores, not GPUs)."""
    held = "cores and memory" if lease.resource == "cpu" else "GPUs"
    return f"{held} handed back: no run left on them"


RUN_FINISHED = (RunState.SUCCEEDED.value, RunState.FAILED.value, RunState.STOPPED.value)


_RUN_NOT_FINISHED = (Run.lease_id == bindparam("lease_id"), Run.state.notin_(RUN_FINISHED))
# Whether a run of a lease may still be going, as a column to read with other things (an end: services/leases.py).
RUN_GOING = exists().where(*_RUN_NOT_FINISHED)
_UNFINISHED_RUN = Prepared(select(Run.id).where(*_RUN_NOT_FINISHED).limit(1), autoflush=True)


def _has_runs(work: Work, lease_id: int) -> bool:
    """Whether a run of the lease may still be going (one not finished on record)."""
    return _UNFINISHED_RUN.scalar(work.session, {"lease_id": lease_id}) is not None


def close_ending(work: Work, *, actor: str) -> list[int]:
    """Leases whose runs have all been stopped: `ending` -> `ended`.

    Several server processes may reconcile at once: each lease is locked as it is read (PostgreSQL), and one
    another process is closing right now is skipped, so a lease is closed (and its event recorded) once.
    """
    closed = []
    q = select(Lease).where(Lease.state == LeaseState.ENDING.value).with_for_update(skip_locked=True)
    for lease in work.session.scalars(q):
        transition(work, lease, LeaseState.ENDED, actor=actor, reason=handed_back(lease))
        closed.append(lease.id)
    return closed


def preempt(
    work: Work,
    lease: Lease,
    *,
    at: datetime,
    actor: str,
    reason: str,
    cal: CapacityCalendar | CpuCalendar | None = None,
) -> None:
    """Give an interruptible lease notice: its GPUs (a CPU lease: its cores) are taken back at `at` (the tick
    closes it then)."""
    if lease.plan != Plan.INTERRUPTIBLE:
        raise Conflict(f"lease {lease.id} is {lease.plan}; only interruptible leases can be preempted")
    if lease.state == LeaseState.SCHEDULED and lease.starts_at >= at:
        release(lease)
        if cal is not None:
            cal.release(lease.id)
        transition(work, lease, LeaseState.PREEMPTED, actor=actor, reason=reason)
        return
    if lease.state not in (LeaseState.ACTIVE, LeaseState.SCHEDULED):
        raise Conflict(f"lease {lease.id} is {lease.state} and cannot be preempted")
    lease.preempt_at = at
    set_alloc_end(lease, at)
    if cal is not None:
        cal.truncate(lease.id, epoch(at))
    record_event(
        work,
        lease,
        actor=actor,
        action="lease.preemption_notice",
        reason=f"preemption notice: {'cores' if lease.resource == 'cpu' else 'GPUs'} taken back at "
        f"{at.isoformat()} ({reason})",
        from_state=lease.state,
        to_state=lease.state,
        data={"at": at.isoformat(), "reason": reason},
    )
    work.after_commit(NotifyPreemption(lease.id, at))  # the runs learn of it once the notice is committed
