"""CPU capacity: the CPU calendar built from the store, CPU allocations, the cores a lease holds (issue 13).

The GPU calendar's sibling (`capacity.py`): every node whose CPUs are described (CPU nodes, and the CPU side of GPU
nodes: only the cores and GiB not kept for their GPUs) and every live CPU lease's cores and memory still ahead of
now. Placements of CPU leases are serialised (an advisory lock on PostgreSQL, `BEGIN IMMEDIATE` on SQLite) and the
calendar is read from the store inside that transaction, so what it says is what is committed. On PostgreSQL the
exclusion constraint `no_double_booked_core` and the deferred guard on `memory_allocations` (migration 0015) refuse
a double-booked core or GiB whatever the application does.

Not kept in memory between requests, unlike the GPU calendars (`calendars.py`): CPU leases are booked at a few per
second at most (docs/cpu-leases.md has the cost per decision).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select

from gpulease.domain.cpu import cpuset
from gpulease.domain.cpu_placement import CpuCalendar, CpuPlacement, CpuRequest
from gpulease.domain.leases import PLAN_PRIORITY, LeaseState, Plan
from gpulease.domain.placement import Unplaceable
from gpulease.domain.queue import choose_cpu_preemptions, queue_head
from gpulease.services.capacity import QUEUE_HOLD, notice_start
from gpulease.services.context import epoch
from gpulease.services.inventory import cpu_node_view
from gpulease.services.work import Work
from gpulease.store.models import Allocation, CpuAllocation, Lease, MemoryAllocation, Node

PLACEMENT_LOCK = "placement:cpu"


def cpu_nodes(work: Work) -> list[Node]:
    """Nodes in service whose CPUs are described."""
    q = select(Node).where(Node.removed_at.is_(None), Node.cpu_cores > 0).order_by(Node.id)
    return list(work.session.scalars(q))


def load_cpu_calendar(work: Work) -> CpuCalendar:
    """Every node's CPUs and every live CPU hold still ahead of now."""
    session, now = work.session, work.now
    views = [v for v in (cpu_node_view(n) for n in cpu_nodes(work)) if v is not None]
    cal = CpuCalendar(views)
    if not views:
        return cal
    live = (CpuAllocation.ends_at.is_(None)) | (
        (CpuAllocation.ends_at > now) & (CpuAllocation.ends_at > CpuAllocation.starts_at)
    )
    cores: dict[tuple[int, int, datetime, datetime | None], list[int]] = defaultdict(list)
    for lease_id, node_id, core, start, end in session.execute(
        select(
            CpuAllocation.lease_id,
            CpuAllocation.node_id,
            CpuAllocation.core_index,
            CpuAllocation.starts_at,
            CpuAllocation.ends_at,
        ).where(CpuAllocation.released.is_(False), live)
    ):
        cores[(lease_id, node_id, start, end)].append(core)
    gib = {
        (lid, nid, s, e): g
        for lid, nid, g, s, e in session.execute(
            select(
                MemoryAllocation.lease_id,
                MemoryAllocation.node_id,
                MemoryAllocation.gib,
                MemoryAllocation.starts_at,
                MemoryAllocation.ends_at,
            ).where(MemoryAllocation.released.is_(False))
        )
    }
    for (lease_id, node_id, start, end), held in cores.items():
        cal.book(
            lease_id,
            node_id,
            tuple(sorted(held)),
            gib.get((lease_id, node_id, start, end), 0),
            epoch(start),
            None if end is None else epoch(end),
        )
    return cal


def placement_cpu_calendar(work: Work) -> CpuCalendar:
    """The CPU calendar to place on, as committed; CPU placements are serialised from here to the commit."""
    work.lock(PLACEMENT_LOCK)
    return load_cpu_calendar(work)


def allocate_cpu(work: Work, lease: Lease, placement: CpuPlacement, *, start: datetime, end: datetime | None) -> None:
    """One row per core and one for the memory, through the relationships (known without a query)."""
    for core in placement.cores:
        lease.cpu_allocations.append(
            CpuAllocation(lease_id=lease.id, node_id=placement.node_id, core_index=core, starts_at=start, ends_at=end)
        )
    lease.memory_allocations.append(
        MemoryAllocation(
            lease_id=lease.id, node_id=placement.node_id, gib=placement.memory_gib, starts_at=start, ends_at=end
        )
    )


def queued_cpu_request(work: Work, lease: Lease, start: int) -> CpuRequest:
    """A waiting CPU lease's request from `start`: its cores, memory and model (held to since it was queued)."""
    assert lease.cpu_cores is not None
    end = None if lease.duration_s is None else start + lease.duration_s
    return CpuRequest(
        lease.cpu_cores, start, end, lease.memory_gib, lease.cpu_model, work.settings.cpu_leases_on_gpu_nodes
    )


def hold_cpu_for(cal: CpuCalendar, req: CpuRequest) -> None:
    """Hold, in this calendar only, the cores `req` would get at its earliest start (EASY backfill's reservation
    for the head of the queue; the calendar is read from the store per transaction, so the hold is never kept)."""
    found = cal.earliest_placement(req, req.start)
    if found is not None:
        start, p = found
        cal.book(
            QUEUE_HOLD,
            p.node_id,
            p.cores,
            p.memory_gib,
            start,
            None if req.end is None else start + req.end - req.start,
        )


def hold_for_cpu_queue_head(work: Work, cal: CpuCalendar, plan: Plan) -> None:
    """`capacity.hold_for_queue_head` for the CPU queue: a request that is not itself queued may take cores only
    where it does not delay the start of the head of the waiting CPU leases, unless its plan ranks above the
    head's."""
    waiting = work.session.scalars(
        select(Lease).where(Lease.state == LeaseState.QUEUED.value, Lease.resource == "cpu")
    ).all()
    head = queue_head(waiting, key=lambda lz: (Plan(lz.plan), lz.created_at, lz.id))
    if head is None or PLAN_PRIORITY[Plan(head.plan)] < PLAN_PRIORITY[plan]:
        return
    hold_cpu_for(cal, queued_cpu_request(work, head, epoch(work.now)))


def interruptible_cpu_leases(work: Work) -> list[Lease]:
    q = select(Lease).where(
        Lease.resource == "cpu",
        Lease.plan == Plan.INTERRUPTIBLE.value,
        Lease.state.in_([LeaseState.ACTIVE.value, LeaseState.SCHEDULED.value]),
    )
    return list(work.session.scalars(q))


@dataclass(frozen=True)
class CpuRoom:
    """Where a CPU request fits once `victims` are preempted at `start` (the notice their quotes promise)."""

    victims: list[Lease]
    start: int
    end: int | None
    placement: CpuPlacement


def plan_cpu_room(work: Work, cal: CpuCalendar, req: CpuRequest, *, keep_length: bool) -> CpuRoom | None:
    """`capacity.make_room` for the CPU calendar, without giving notice yet (the caller does, with
    `capacity.give_notice`, once the booking's checks have passed): which interruptible CPU leases to preempt
    (`choose_cpu_preemptions`: fewest, then least work lost), the start their notice allows (`notice_start`; the
    end moves with it when `keep_length`, as for GPUs except reserved windows), and the placement then."""
    victims = {lease.id: lease for lease in interruptible_cpu_leases(work) if cal.booking_of(lease.id) is not None}
    if not victims:
        return None
    now = epoch(work.now)
    chosen = choose_cpu_preemptions(req, cal, {lid: epoch(v.starts_at) for lid, v in victims.items()}, now)
    if not chosen:
        return None
    lost = [victims[lid] for lid in chosen]
    start = notice_start(lost, req.start, now)
    end = req.end if req.end is None or not keep_length else req.end + start - req.start
    with cal.speculate():
        for lease in lost:
            cal.truncate(lease.id, start)
        try:
            placement = cal.place(replace(req, start=start, end=end))
        except Unplaceable:  # the notice does not free enough after all
            return None
    return CpuRoom(lost, start, end, placement)


@dataclass(frozen=True)
class HeldCores:
    """The cores a lease holds on one node (a CPU lease's own, or a GPU lease's share of its node)."""

    node: str
    node_id: int
    cores: tuple[int, ...]

    @property
    def cpuset(self) -> str:
        return cpuset(self.cores)


def held_cores(lease: Lease, gpus_held: list[Allocation]) -> list[HeldCores]:
    """A CPU lease: its unreleased cores of the latest start. A GPU lease: each of the GPUs it holds
    (`gpus_held`, `leases.held_allocations`) brings its share (`gpu_cores`) on nodes whose CPUs are described:
    the cores its runs are pinned to; none elsewhere."""
    if lease.resource == "cpu":
        live = [a for a in lease.cpu_allocations if not a.released]
        latest = max((a.starts_at for a in live), default=None)
        by_node: dict[int, list[CpuAllocation]] = defaultdict(list)
        for a in live:
            if a.starts_at == latest:
                by_node[a.node_id].append(a)
        return [
            HeldCores(rows[0].node.name, nid, tuple(sorted(a.core_index for a in rows)))
            for nid, rows in sorted(by_node.items())
        ]
    gpus: dict[int, list[int]] = defaultdict(list)
    nodes: dict[int, Node] = {}
    for g in gpus_held:
        gpus[g.node_id].append(g.gpu_index)
        nodes[g.node_id] = g.node
    out = []
    for nid, indexes in sorted(gpus.items()):
        view = cpu_node_view(nodes[nid])
        if view is None:
            continue
        cores = tuple(sorted(c for i in indexes if 0 <= i < view.gpu_count for c in view.gpu_cores(i)))
        out.append(HeldCores(nodes[nid].name, nid, cores))
    return out
