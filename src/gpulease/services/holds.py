"""Compliance holds on leases: a customer under review gets its leases suspended; an approval releases them;
a denial closes them. The runs on a held or closed lease stop once the change commits.

Billing follows the hold: a started lease is billed up to the moment it is held, nothing accrues while it is
held (the customer cannot use it), and billing resumes from the moment the hold is released
(`transitions.bill_through` bills nothing for a suspended lease).

What the customer sees of a hold is `ON_HOLD_MESSAGE` and nothing else: the lease's reason, its events and
its notifications carry no screening word; the why is in the audit record only (`detail`).
"""

from __future__ import annotations

from sqlalchemy import select

from gpulease import audit
from gpulease.domain.leases import LeaseState
from gpulease.services.notifications import ON_HOLD_MESSAGE
from gpulease.services.transitions import bill_through, finish, release, transition
from gpulease.services.work import LeasesChanged, Work
from gpulease.store.models import Customer, Lease

HOLD_ACTOR = "compliance"
CLOSED_MESSAGE = "This lease was closed. Please contact support."
HELD_STATES = (LeaseState.ACTIVE.value, LeaseState.SCHEDULED.value, LeaseState.QUEUED.value)
OPEN_STATES = (*HELD_STATES, LeaseState.SUSPENDED.value, LeaseState.PENDING_COMPLIANCE.value, LeaseState.QUOTED.value)


def hold_leases(work: Work, c: Customer, *, detail: str) -> int:
    """Suspend active and future leases: no new work starts; nothing is deleted. Returns how many.

    `detail` (why) goes into the audit record only, never where the customer can read it.
    """
    held = []
    for lease in work.session.scalars(
        select(Lease).where(Lease.customer_id == c.id, Lease.state.in_(HELD_STATES)).order_by(Lease.id)
    ):
        if lease.state == LeaseState.ACTIVE.value:
            bill_through(work, lease, work.now)  # billed up to the hold; nothing accrues while held
        transition(work, lease, LeaseState.SUSPENDED, actor=HOLD_ACTOR, reason=ON_HOLD_MESSAGE)
        held.append(lease.id)
    work.stop_runs(*held)
    if held:
        _audit(work, c, "customer.leases_held", held, detail)
    return len(held)


def release_holds(work: Work, c: Customer, *, actor: str) -> list[int]:
    """Cleared: held leases go back to where they were; billing resumes from now."""
    released: list[int] = []
    for lease in work.session.scalars(
        select(Lease).where(Lease.customer_id == c.id, Lease.state == LeaseState.SUSPENDED.value).order_by(Lease.id)
    ):
        target = LeaseState.ACTIVE if lease.activated_at is not None else LeaseState.SCHEDULED
        if lease.ends_at is not None and lease.ends_at <= work.now:
            continue  # the clock will close it
        if target is LeaseState.SCHEDULED and not lease.allocations:
            target = LeaseState.QUEUED  # held while waiting for capacity: back in the queue (the clock expires it)
        if lease.activated_at is not None or lease.starts_at < work.now:
            lease.billed_until = work.now  # the time on hold is not billed
        transition(work, lease, target, actor=HOLD_ACTOR, reason="hold released")
        released.append(lease.id)
    if released:
        work.after_commit(LeasesChanged(tuple(released)))  # Slurm: the tenant gets its reservation back
        _audit(work, c, "customer.holds_released", released, f"released by {actor}")
    return released


def close_leases(work: Work, c: Customer, *, actor: str, detail: str) -> list[int]:
    """Denied: every open lease of the customer is closed now. Started ones end (runs stopped, GPUs freed,
    billing closed at the hold), the others are cancelled without a fee; each as a lease event."""
    closed: list[int] = []
    for lease in work.session.scalars(
        select(Lease).where(Lease.customer_id == c.id, Lease.state.in_(OPEN_STATES)).order_by(Lease.id)
    ):
        if lease.activated_at is not None and lease.state in (LeaseState.ACTIVE.value, LeaseState.SUSPENDED.value):
            at = work.now if lease.ends_at is None else min(work.now, lease.ends_at)
            finish(work, lease, at=at, actor=HOLD_ACTOR, target=LeaseState.ENDED, reason=CLOSED_MESSAGE)
        else:
            release(lease)
            target = LeaseState.REJECTED if lease.state in ("quoted", "pending_compliance") else LeaseState.CANCELLED
            transition(work, lease, target, actor=HOLD_ACTOR, reason=CLOSED_MESSAGE)
        closed.append(lease.id)
    work.stop_runs(*closed)
    if closed:
        work.after_commit(LeasesChanged(tuple(closed)))
        _audit(work, c, "customer.leases_closed", closed, f"{detail} ({actor})")
    return closed


def _audit(work: Work, c: Customer, action: str, lease_ids: list[int], detail: str) -> None:
    audit.append(
        work.session,
        at=work.now,
        actor=HOLD_ACTOR,
        action=action,
        subject=f"customer:{c.id}",
        data={"leases": lease_ids, "detail": detail},
    )
