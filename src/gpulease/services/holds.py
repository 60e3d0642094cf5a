"""Compliance holds on leases: a customer under review or denied gets its leases suspended; an approval
releases them. The runs on a held lease stop once the hold commits."""

from __future__ import annotations

from sqlalchemy import select

from gpulease.domain.leases import LeaseState
from gpulease.services.transitions import transition
from gpulease.services.work import LeasesChanged, Work
from gpulease.store.models import Customer, Lease


def hold_leases(work: Work, c: Customer, *, reason: str) -> int:
    """Suspend active and future leases: no new work starts; nothing is deleted. Returns how many."""
    held = []
    for lease in work.session.scalars(
        select(Lease).where(
            Lease.customer_id == c.id,
            Lease.state.in_([LeaseState.ACTIVE.value, LeaseState.SCHEDULED.value, LeaseState.QUEUED.value]),
        )
    ):
        transition(work, lease, LeaseState.SUSPENDED, actor="compliance", reason=reason)
        held.append(lease.id)
    work.stop_runs(*held)
    return len(held)


def release_holds(work: Work, c: Customer, *, actor: str) -> None:
    released: list[int] = []
    for lease in work.session.scalars(
        select(Lease).where(Lease.customer_id == c.id, Lease.state == LeaseState.SUSPENDED.value)
    ):
        target = LeaseState.ACTIVE if lease.activated_at is not None else LeaseState.SCHEDULED
        if lease.ends_at is not None and lease.ends_at <= work.now:
            continue  # the clock will close it
        if target is LeaseState.SCHEDULED and not lease.allocations:
            target = LeaseState.QUEUED  # held while waiting for capacity: back in the queue (the clock expires it)
        transition(work, lease, target, actor=actor, reason="compliance hold released")
        released.append(lease.id)
    if released:
        work.after_commit(LeasesChanged(tuple(released)))  # Slurm: the tenant gets its reservation back
