"""A node's state (available, draining, down) and what a node failure does to the leases on it.

A node that goes down, because an operator marks it so or because its backend reports it lost (`node_lost`, which
the executor and the backends call), takes its leases with it, by plan:
- interruptible leases end at the failure;
- on-demand, reserved and long-term leases move to free GPUs of the same model for the rest of their window when
  such GPUs exist (a new allocation from the failure on; the lease keeps its id, its quote and its billing),
  and end at the failure otherwise;
- a lease that has not started yet is placed elsewhere for its whole window in the same way, or cancelled
  (without a late-cancellation fee: the failure is not the customer's doing).
An ended lease is billed up to the failure and no further, whole-window plans included. Every lease hit gets an
event saying what happened and why (the customer sees it on the lease), the operator gets an alert, and after the
commit the runs on the lost node are stopped and a `LeaseDisplaced` effect says what became of each lease (a
webhook notifier hooks in there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from gpulease import audit
from gpulease.domain.cpu_placement import CpuCalendar, CpuRequest
from gpulease.domain.inventory import NodeState
from gpulease.domain.leases import LeaseState, Plan
from gpulease.domain.placement import CapacityCalendar, PlacementRequest, Unplaceable
from gpulease.domain.pricing import Quote, cut_short
from gpulease.services import limits, notifications
from gpulease.services.capacity import allocate, placement_calendar
from gpulease.services.context import Actor, epoch
from gpulease.services.cpu_capacity import allocate_cpu, placement_cpu_calendar
from gpulease.services.errors import InvalidRequest, NotFound
from gpulease.services.permissions import Permission, require
from gpulease.services.transitions import finish, record_event, release, set_alloc_end, transition
from gpulease.services.work import LeaseDisplaced, Work
from gpulease.store.models import Alert, Allocation, AuditRecord, Cluster, CpuAllocation, Lease, Node

STARTED = (LeaseState.ACTIVE.value, LeaseState.SUSPENDED.value)
NOT_STARTED = (LeaseState.SCHEDULED.value,)


@dataclass
class NodeFailure:
    """What a node failure did: the leases moved to other GPUs and those ended (or cancelled before their start)."""

    node_id: int
    node: str
    at: datetime
    reason: str
    moved: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)


def _node(session: Session, node_id: int) -> Node:
    node = session.get(Node, node_id) if limits.fits_id(node_id) else None
    if node is None or node.removed_at is not None:
        raise NotFound(f"no node with id {node_id}")
    return node


def set_node_state(
    work: Work, *, actor: Actor, node_id: int, state: str, reason: str | None = None
) -> tuple[Node, NodeFailure | None]:
    """Drain (no new leases; running ones run to their end), make available again, or mark down: a node failure,
    whose leases are moved or ended by plan (`node_lost`)."""
    require(actor, Permission.MANAGE_INVENTORY)
    try:
        new_state = NodeState(state)
    except ValueError:
        raise InvalidRequest(f"a node's state is one of {', '.join(s.value for s in NodeState)}") from None
    why = limits.text(reason, what="the reason", max_len=limits.COMMENT_MAX, pattern=limits.TEXT)
    node = _node(work.session, node_id)
    if new_state is NodeState.DOWN:
        failure = node_lost(work, node_id=node.id, reason=why or f"marked down by {actor.name}", actor=actor.name)
        return node, failure
    before = node.state
    node.state = new_state
    audit.append(
        work.session,
        at=work.now,
        actor=actor.name,
        action="node.state",
        subject=f"node:{node.id}",
        data={"from": before, "to": new_state},
    )
    return node, None


def node_lost(work: Work, *, node_id: int, reason: str, actor: str = "backend") -> NodeFailure:
    """The node is down from now on: move or end every lease that holds its GPUs now or later, by plan.

    Idempotent: a node already down that holds nothing any more changes nothing.
    """
    session, now = work.session, work.now
    reason = reason.strip()[: limits.COMMENT_MAX] or "node lost"
    node = _node(session, node_id)
    before = node.state
    failure = NodeFailure(node.id, node.name, now, reason)
    hit = _leases_on(session, node.id, now)
    cpu_hit = _cpu_leases_on(session, node.id, now)  # CPU leases holding its cores
    if before == NodeState.DOWN and not hit and not cpu_hit:
        return failure
    node.state = NodeState.DOWN
    audit.append(
        session,
        at=now,
        actor=actor,
        action="node.state",
        subject=f"node:{node.id}",
        data={"from": before, "to": NodeState.DOWN.value, "reason": reason},
    )
    if hit and node.gpu_model is not None:  # GPU leases hit (a CPU node holds none)
        cal = placement_calendar(work, node.gpu_model)  # placing moved leases, like any booking
        for lease in hit:
            _displaced(work, lease, node, failure, _move(work, cal, lease, failure, actor=actor), actor=actor)
    if cpu_hit:
        cpu_cal = placement_cpu_calendar(work)  # the node is down (flushed): nothing is placed on it
        for lease in cpu_hit:
            moved = _move_cpu(work, cpu_cal, lease, failure, actor=actor)
            _displaced(work, lease, node, failure, moved, actor=actor)
    hit = hit + cpu_hit
    session.add(
        Alert(
            at=now,
            kind="node_down",
            message=(
                f"node {node.name} is down ({reason}): "
                + (f"leases moved: {_ids(failure.moved)}; ended: {_ids(failure.ended)}" if hit else "it held no leases")
            ),
            data={
                "node_id": node.id,
                "node": node.name,
                "reason": reason,
                "moved": failure.moved,
                "ended": failure.ended,
            },
        )
    )
    return failure


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids)) or "none"


@dataclass(frozen=True)
class BackendNode:
    """A node as its backend (Slurm) reports it: whether work may run there, and the backend's own words."""

    available: bool
    state: str
    reason: str | None = None


@dataclass
class NodesFollowed:
    """What following a backend's node states changed: failures handled, nodes back in service."""

    lost: list[NodeFailure] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)


def follow_backend_nodes(work: Work, *, backend: str, nodes: dict[str, BackendNode]) -> NodesFollowed:
    """Bring the inventory's nodes of `backend` clusters in line with what the backend says of them (the clock
    calls it with Slurm's `sinfo`).

    A node the backend will not run work on (Slurm: down, drained or draining, failing, not responding) is a node
    failure (`node_lost`: its leases moved or ended by plan, an alert) unless gpulease has it down already. A node
    the backend runs work on again is made available again, but only if it was the backend that took it down: a
    node an operator marked down or draining stays so. Nodes the backend does not know are left alone.
    """
    actor = f"backend:{backend}"  # no operator's name: a node an operator took down is never brought back here
    out = NodesFollowed()
    mine = work.session.scalars(
        select(Node)
        .join(Cluster, Node.cluster_id == Cluster.id)
        .where(Cluster.backend == backend, Node.removed_at.is_(None))
        .order_by(Node.id)
    ).all()
    for node in mine:
        seen = nodes.get(node.name)
        if seen is None:
            continue
        if not seen.available and node.state != NodeState.DOWN:
            words = f"{backend} reports it {seen.state}" + (f": {seen.reason}" if seen.reason else "")
            out.lost.append(node_lost(work, node_id=node.id, reason=words, actor=actor))
        elif seen.available and node.state == NodeState.DOWN and _downed_by(work.session, node.id) == actor:
            node.state = NodeState.AVAILABLE
            audit.append(
                work.session,
                at=work.now,
                actor=actor,
                action="node.state",
                subject=f"node:{node.id}",
                data={"from": NodeState.DOWN.value, "to": NodeState.AVAILABLE.value, "reason": seen.state},
            )
            work.session.add(
                Alert(
                    at=work.now,
                    kind="node_up",
                    message=f"node {node.name} is back: {backend} reports it {seen.state}",
                    data={"node_id": node.id, "node": node.name, "state": seen.state},
                )
            )
            out.restored.append(node.name)
    return out


def _downed_by(session: Session, node_id: int) -> str | None:
    """Who made the node's last change of state (the actor of its latest `node.state` record)."""
    return session.scalar(
        select(AuditRecord.actor)
        .where(AuditRecord.action == "node.state", AuditRecord.subject == f"node:{node_id}")
        .order_by(AuditRecord.id.desc())
        .limit(1)
    )


def _displaced(work: Work, lease: Lease, node: Node, failure: NodeFailure, moved: bool, *, actor: str) -> None:
    """A lease the failure moved, or else ends: recorded, and the customer told (notice and webhooks)."""
    if moved:
        failure.moved.append(lease.id)
    else:
        _end(work, lease, failure, actor=actor)
        failure.ended.append(lease.id)
    outcome: Literal["moved", "ended"] = "moved" if moved else "ended"
    notifications.node_failure(work, lease, outcome=outcome)
    work.after_commit(
        LeaseDisplaced(
            lease_id=lease.id,
            customer_id=lease.customer_id,
            node_id=node.id,
            node=node.name,
            outcome=outcome,
            at=work.now,
            reason=failure.reason,
        )
    )


def _cpu_leases_on(session: Session, node_id: int, now: datetime) -> list[Lease]:
    """CPU leases holding cores of the node now or later, in a state that holds capacity."""
    ids = select(CpuAllocation.lease_id).where(
        CpuAllocation.node_id == node_id,
        CpuAllocation.released.is_(False),
        (CpuAllocation.ends_at.is_(None)) | (CpuAllocation.ends_at > now),
    )
    q = select(Lease).where(Lease.id.in_(ids), Lease.state.in_([*STARTED, *NOT_STARTED])).order_by(Lease.id)
    return list(session.scalars(q))


def _move_cpu(work: Work, cal: CpuCalendar, lease: Lease, failure: NodeFailure, *, actor: str) -> bool:
    """Place a CPU lease's cores and memory on another node for the rest of its window; False if none fits."""
    if lease.plan == Plan.INTERRUPTIBLE or lease.cpu_cores is None:
        return False
    start, end = max(lease.starts_at, work.now), lease.ends_at
    req = CpuRequest(
        lease.cpu_cores,
        epoch(start),
        None if end is None else epoch(end),
        lease.memory_gib,
        lease.cpu_model,
        work.settings.cpu_leases_on_gpu_nodes,
    )
    cal.release(lease.id)
    try:
        placement = cal.place(req)
    except Unplaceable:
        return False
    set_alloc_end(lease, start)  # the cores held so far stay on record up to the failure
    work.session.flush()
    allocate_cpu(work, lease, placement, start=start, end=end)
    cal.book(lease.id, placement.node_id, placement.cores, placement.memory_gib, req.start, req.end)
    record_event(
        work,
        lease,
        actor=actor,
        action="lease.moved",
        reason=f"node {failure.node} failed ({failure.reason}): moved to cores {placement.cpuset} of another node "
        f"from {start.isoformat()}",
        from_state=lease.state,
        to_state=lease.state,
        data={
            "node_id": failure.node_id,
            "reason": failure.reason,
            "to_node": placement.node_id,
            "to": list(placement.cores),
            "at": start.isoformat(),
        },
    )
    return True


def _leases_on(session: Session, node_id: int, now: datetime) -> list[Lease]:
    """Leases holding a GPU of the node now or later, in a state that holds capacity (not yet closing)."""
    ids = select(Allocation.lease_id).where(
        Allocation.node_id == node_id,
        Allocation.released.is_(False),
        (Allocation.ends_at.is_(None)) | (Allocation.ends_at > now),
    )
    q = (
        select(Lease)
        .where(Lease.id.in_(ids), Lease.state.in_([*STARTED, *NOT_STARTED]))
        .options(selectinload(Lease.allocations))
        .order_by(Lease.id)
    )
    return list(session.scalars(q))


def _move(work: Work, cal: CapacityCalendar, lease: Lease, failure: NodeFailure, *, actor: str) -> bool:
    """Place the lease on free GPUs of its model for the rest of its window; False if there are none."""
    if lease.plan == Plan.INTERRUPTIBLE:
        return False
    now = work.now
    start = max(lease.starts_at, now)
    end = lease.ends_at
    req = PlacementRequest(lease.gpu_model or "", lease.gpu_count, epoch(start), None if end is None else epoch(end))
    try:
        placement = cal.place(req, ignore_leases=frozenset({lease.id}), explain=False)
    except Unplaceable:
        return False
    before = sorted((a.node_id, a.gpu_index) for a in lease.allocations if not a.released)
    # The GPUs held so far stay on record up to the failure; the new ones are held from then on.
    cal.release(lease.id)
    set_alloc_end(lease, start)
    work.session.flush()
    allocate(work, lease, placement, start=start, end=end)
    cal.book(lease.id, placement.gpus, req.start, req.end)
    work.session.flush()
    work.session.expire(lease, ["allocations"])
    after = sorted((g.node_id, g.index) for g in placement.gpus)
    record_event(
        work,
        lease,
        actor=actor,
        action="lease.moved",
        reason=f"node {failure.node} failed ({failure.reason}): moved to other GPUs from {start.isoformat()}",
        from_state=lease.state,
        to_state=lease.state,
        data={
            "node_id": failure.node_id,
            "reason": failure.reason,
            "from": before,
            "to": after,
            "at": start.isoformat(),
        },
    )
    return True


def _end(work: Work, lease: Lease, failure: NodeFailure, *, actor: str) -> None:
    """End a started lease at the failure, or cancel one that has not started; billed up to the failure only.

    A plan sold by the window has its window (and its quote) cut short at the failure first, so what it owes, and
    what billing's check recomputes from the event log, stops there; a lease cancelled before its start owes no
    late-cancellation fee.
    """
    now = work.now
    why = f"node {failure.node} failed ({failure.reason})"
    more = "" if lease.plan == Plan.INTERRUPTIBLE else "; no other GPUs were free"
    quote = Quote.from_dict(lease.quote)
    if quote.billed_for_whole_window and (lease.ends_at is None or lease.ends_at > now):
        cut = cut_short(quote, epoch(now))
        old_end = lease.ends_at
        lease.quote = cut.to_dict()
        lease.ends_at = max(now, lease.starts_at) if lease.activated_at is not None else lease.starts_at
        record_event(
            work,
            lease,
            actor=actor,
            action="lease.cut_short",
            reason=f"{why}: "
            + ("the window ends at the failure, billed up to it" if lease.activated_at else "nothing is owed for it"),
            from_state=lease.state,
            to_state=lease.state,
            data={"from": None if old_end is None else old_end.isoformat(), "to": lease.ends_at.isoformat()},
        )
    if lease.activated_at is None:
        release(lease)
        transition(work, lease, LeaseState.CANCELLED, actor=actor, reason=why + more)
        work.stop_runs(lease.id)
        return
    set_alloc_end(lease, now)
    finish(work, lease, at=now, actor=actor, target=LeaseState.ENDED, reason=why + more)
