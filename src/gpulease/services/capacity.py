"""Capacity: the calendar of one GPU model built from the store, allocations, and making room.

Booking, extending and the queue all place against the same calendar; `make_room` gives interruptible leases
notice when a higher plan needs their GPUs, and `hold_for_queue_head` keeps the head of the waiting queue's
start free from requests that arrive after it (EASY backfill).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm.attributes import set_committed_value

from gpulease.domain.cpu_placement import CpuCalendar
from gpulease.domain.leases import PLAN_PRIORITY, LeaseState, Plan
from gpulease.domain.placement import CapacityCalendar, GpuRef, Placement, PlacementRequest
from gpulease.domain.pricing import Quote
from gpulease.domain.queue import choose_preemptions, queue_head
from gpulease.services.context import epoch, from_epoch
from gpulease.services.inventory import node_view
from gpulease.services.transitions import preempt
from gpulease.services.work import Work
from gpulease.store import direct
from gpulease.store.models import Allocation, Lease, Node
from gpulease.store.prepared import Prepared


def load_calendar(work: Work, model: str) -> CapacityCalendar:
    """The capacity calendar of one GPU model: its nodes and every live allocation still ahead of now."""
    session, now = work.session, work.now
    nodes = list(session.scalars(select(Node).where(Node.gpu_model == model, Node.removed_at.is_(None))))
    cal = CapacityCalendar(node_view(n) for n in nodes)
    if not nodes:
        return cal
    rows = session.execute(
        select(
            Allocation.lease_id, Allocation.node_id, Allocation.gpu_index, Allocation.starts_at, Allocation.ends_at
        ).where(
            Allocation.node_id.in_([n.id for n in nodes]),
            Allocation.released.is_(False),
            (Allocation.ends_at.is_(None)) | ((Allocation.ends_at > now) & (Allocation.ends_at > Allocation.starts_at)),
        )
    ).all()
    grouped: dict[tuple[int, datetime, datetime | None], list[GpuRef]] = defaultdict(list)
    for lease_id, node_id, index, start, end in rows:
        grouped[(lease_id, start, end)].append(GpuRef(node_id, index))
    for (lease_id, start, end), gpus in grouped.items():
        cal.book(lease_id, gpus, epoch(start), None if end is None else epoch(end))
    return cal


def placement_calendar(work: Work, model: str, *, holding: int | None = None) -> CapacityCalendar:
    """The model's calendar to place on, current as of this transaction; placements of one model are serialised
    (across processes too) from here to the commit. What the caller changes on it is undone when the transaction
    ends: the committed allocations are what the calendar follows."""
    if work.calendars is not None:
        return work.calendars.for_placement(work, model, holding=holding)
    work.lock(f"placement:{model}")  # one placement per model at a time (PostgreSQL)
    return load_calendar(work, model)


def view_calendar(work: Work, model: str) -> CapacityCalendar:
    """The model's calendar to read (availability); not serialised with placements."""
    if work.calendars is not None:
        return work.calendars.view(work, model)
    return load_calendar(work, model)


def allocate(
    work: Work,
    lease: Lease,
    placement: Placement,
    *,
    start: datetime,
    end: datetime | None,
    first_id: int | None = None,
) -> None:
    """Hold the placement's GPUs for the lease. `first_id` (SQLite, `draw_ids`): the allocations are numbered from
    it, so that they are inserted with one statement; without ids the ORM inserts them one by one on SQLite, to
    read each id back (an 8-GPU booking: 8 statements). Not used when the session holds an allocation still
    without an id (the store would number it from the same place at the flush), or one the store numbered since."""
    if first_id is not None and len(placement.gpus) > 1:
        session = work.session
        if any(
            isinstance(a, Allocation) and (a.id is None or a.id >= first_id)
            for a in (*session.new, *session.identity_map.values())
        ):
            first_id = None
    else:
        first_id = None
    rows = [
        {
            "id": None if first_id is None else first_id + i,
            "lease_id": lease.id,
            "node_id": g.node_id,
            "gpu_index": g.index,
            "starts_at": start,
            "ends_at": end,
            "released": False,
        }
        for i, g in enumerate(placement.gpus)
    ]
    if lease.id is not None and lease.__dict__.get("allocations") == []:
        # A lease that holds nothing yet (a booking, a start from the queue): its collection is set to the new
        # allocations as if loaded with them, and each is added to the session, without the events of an append
        # (each an attribute event and a backref) or of the constructor; a flush or `direct.insert_now` writes them.
        allocs = direct.made(Allocation, rows)
        direct.add_new(work.session, allocs)
        set_committed_value(lease, "allocations", allocs)
        return
    for row in rows:  # through the relationship: the lease's allocations known, no query
        lease.allocations.append(Allocation(**row))


# SQLite: the next rowids of both tables in one statement (this transaction is the store's only writer).
_NEXT_ROWIDS = Prepared(
    text("SELECT (SELECT coalesce(max(id), 0) + 1 FROM leases), (SELECT coalesce(max(id), 0) + 1 FROM allocations)")
)
_NEXT_ID = Prepared(text("SELECT nextval(pg_get_serial_sequence('leases', 'id'))"))


def draw_ids(work: Work) -> tuple[int | None, int | None]:
    """The id the lease being booked will have, and (SQLite) the first id of its allocations, drawn before
    placing. PostgreSQL: so that the placement can be kept in the calendar (`keep_placed`) and the model's lock
    let go before any row is written (its allocations are inserted in one statement there anyway). SQLite: the
    next rowids (this transaction is the only writer), so that the lease is inserted once, in its final state,
    rather than flushed early for its id and updated after, and its allocations with one statement.
    Drawn before anything is staged: a statement then would flush the lease early (store/staged.py)."""
    if not work.store.is_postgres:
        ((lease_id, allocation_id),) = _NEXT_ROWIDS.rows(work.session)
        return int(lease_id), int(allocation_id)
    if work.calendars is None:
        return None, None
    return int(_NEXT_ID.scalar(work.session)), None


def keep_placed(
    work: Work, model: str, placement: Placement, lease_id: int, *, start: datetime, end: datetime | None
) -> None:
    """Book the newly placed lease in the Runtime's calendar before the commit (where the store allows it)."""
    if work.calendars is not None:
        stop = None if end is None else epoch(end)
        work.calendars.placed(work, model, lease_id, list(placement.gpus), epoch(start), stop)


def interruptible_leases(work: Work, model: str) -> list[Lease]:
    return list(
        work.session.scalars(
            select(Lease).where(
                Lease.gpu_model == model,
                Lease.plan == Plan.INTERRUPTIBLE.value,
                Lease.state.in_([LeaseState.ACTIVE.value, LeaseState.SCHEDULED.value]),
            )
        )
    )


def make_room(
    work: Work, cal: CapacityCalendar, req: PlacementRequest, *, actor: str, reason: str
) -> tuple[int, list[int]] | None:
    """Give interruptible leases notice so `req` fits; returns (the start it can have, the preempted ids)."""
    now = work.now
    # Only leases the calendar holds: one it has not caught up with yet is not offered (never a wrong notice).
    victims = {lease.id: lease for lease in interruptible_leases(work, req.gpu_model) if cal.bookings_of(lease.id)}
    if not victims:
        return None
    chosen = choose_preemptions(req, cal, {lid: epoch(v.starts_at) for lid, v in victims.items()}, epoch(now))
    if not chosen:
        return None
    lost = [victims[lid] for lid in chosen]
    start = notice_start(lost, req.start, epoch(now))
    give_notice(work, lost, start, reason=reason, cal=cal)
    return start, chosen


def notice_start(victims: Iterable[Lease], start: int, now: int) -> int:
    """When the victims' resources are free: no earlier than `start`, and each gets the notice its quote promised
    (the longest of them, so that all end together)."""
    notice = max(Quote.from_dict(v.quote).preemption_notice_s for v in victims)
    return max(start, now + notice)


def give_notice(
    work: Work, victims: Iterable[Lease], at: int, *, reason: str, cal: CapacityCalendar | CpuCalendar
) -> None:
    """Preempt the victims at `at` (GPU or CPU leases: their holds in `cal` end then; billing stops there)."""
    for lease in victims:
        # The victim's events name the scheduler, never the tenant (or its key) that needed the capacity.
        preempt(work, lease, at=from_epoch(at), actor="scheduler", reason=reason, cal=cal)


QUEUE_HOLD = -1  # the calendar id of the capacity held for the head of the waiting queue


_QUEUED = select(Lease).where(Lease.state == LeaseState.QUEUED.value, Lease.gpu_model == bindparam("model"))
# Whether anything waits at all, on the cursor (store/prepared.py): most bookings find no queue, and loading none
# through the ORM cost ~200 calls; a queue costs one statement more.
_ANY_QUEUED = Prepared(
    select(Lease.id).where(Lease.state == LeaseState.QUEUED.value, Lease.gpu_model == bindparam("model")).limit(1),
    autoflush=True,
)


def queued(work: Work, model: str) -> list[Lease]:
    """The model's waiting queue, for `hold_for_queue_head`: read before taking the model's calendar, so that
    the round trip is not made while other placements of the model wait for it."""
    if not _ANY_QUEUED.rows(work.session, {"model": model}):
        return []
    return list(work.session.scalars(_QUEUED, {"model": model}))


def hold_for_queue_head(work: Work, cal: CapacityCalendar, model: str, plan: Plan, waiting: list[Lease]) -> None:
    """Hold, in this calendar only, the GPUs the head of the model's queue (`waiting`: `queued`) will start on
    (EASY backfill).

    A request that is not itself queued may take capacity only where it does not delay that start, unless
    its plan ranks above the head's.
    """
    now = work.now
    head = queue_head(waiting, key=lambda lz: (Plan(lz.plan), lz.created_at, lz.id))
    if head is None:
        return
    if PLAN_PRIORITY[Plan(head.plan)] < PLAN_PRIORITY[plan]:
        return
    t = epoch(now)
    req = PlacementRequest(model, head.gpu_count, t, None if head.duration_s is None else t + head.duration_s)
    found = cal.earliest_placement(req, t)
    if found is not None:
        start, placement = found
        cal.book(QUEUE_HOLD, placement.gpus, start, None if head.duration_s is None else start + head.duration_s)
