"""The waiting queue: requests with start "asap" wait here, and the queue decides who starts when.

`serve_queue` places waiting requests in priority order with backfill (domain/queue.py decides; this module
reads the store, books what it decided and records why the others failed). Booking calls it for one model
right after a request joins, and the clock calls it every tick.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from gpulease.domain.leases import LeaseState, Plan
from gpulease.domain.placement import Placement, PlacementRequest, Unplaceable
from gpulease.domain.queue import WaitingQueue, WaitingRequest, schedule, service_order
from gpulease.services.capacity import allocate, make_room, placement_calendar
from gpulease.services.context import epoch, from_epoch
from gpulease.services.cpu_capacity import allocate_cpu, hold_cpu_for, placement_cpu_calendar, queued_cpu_request
from gpulease.services.transitions import activate, transition
from gpulease.services.work import Work
from gpulease.store.models import Lease

DEFAULT_MAX_WAIT_S = 3600
ACTOR = "scheduler"


@dataclass
class QueueOutcome:
    started: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)  # gave up: past their maximum wait, or never placeable
    preempted: list[int] = field(default_factory=list)  # interruptible leases preempted to make room for a head


def enqueue(work: Work, lease: Lease, *, max_wait_s: int | None, actor: str) -> QueueOutcome:
    """A new request joins the queue; the queue decides at once whether it can start (priority, backfill)."""
    lease.queued_until = work.now + timedelta(seconds=max_wait_s or DEFAULT_MAX_WAIT_S)
    transition(work, lease, LeaseState.QUEUED, actor=actor, reason="customer cleared; waiting for capacity")
    work.session.flush()
    out = serve_queue(work, models={CPU_QUEUE if lease.resource == "cpu" else lease.gpu_model or ""})
    work.session.flush()
    return out


def serve_queue(work: Work, models: set[str] | None = None) -> QueueOutcome:
    """Place waiting requests in priority order with backfill; expire those past their max wait.

    When the head of a model's queue (on-demand or reserved) cannot start now but would if interruptible
    leases gave their GPUs back, those leases get their notice and the head is booked for when it ends.
    """
    session, now = work.session, work.now
    out = QueueOutcome()
    waiting = session.scalars(select(Lease).where(Lease.state == LeaseState.QUEUED.value).order_by(Lease.id)).all()
    by_model: dict[str, list[Lease]] = {}
    cpu: list[Lease] = []
    for lease in waiting:
        key = CPU_QUEUE if lease.resource == "cpu" else lease.gpu_model
        if models is not None and key not in models:
            continue
        if lease.queued_until is not None and lease.queued_until <= now:
            transition(work, lease, LeaseState.FAILED, actor=ACTOR, reason="no capacity within the maximum wait")
            out.expired.append(lease.id)
        elif lease.resource == "cpu":
            cpu.append(lease)
        elif lease.gpu_model is not None:
            by_model.setdefault(lease.gpu_model, []).append(lease)
    if cpu:
        _serve_cpu(work, cpu, out)
    for model, group in by_model.items():
        cal = placement_calendar(work, model)
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
            _book_from_queue(work, leases[decision.request_id], decision.placement, start_s=decision.start, out=out)
        for req, why in result.unplaceable:
            transition(work, leases[req.id], LeaseState.FAILED, actor=ACTOR, reason=why.message)
            out.expired.append(req.id)
        started = {d.request_id for d in result} | {r.id for r, _ in result.unplaceable}
        rest = [r for r in queue.ordered() if r.id not in started]
        if rest and rest[0].plan is not Plan.INTERRUPTIBLE:
            head = leases[rest[0].id]
            end = None if head.duration_s is None else epoch(now) + head.duration_s
            preq = PlacementRequest(model, head.gpu_count, epoch(now), end)
            cal.release(head.id)  # schedule() may have booked the head's future reservation
            room = make_room(
                work, cal, preq, actor=ACTOR, reason=f"capacity needed by waiting {head.plan} lease {head.id}"
            )
            if room is not None:
                start, preempted = room
                out.preempted.extend(preempted)
                placement = cal.place(
                    PlacementRequest(
                        model, head.gpu_count, start, None if head.duration_s is None else start + head.duration_s
                    )
                )
                _book_from_queue(work, head, placement, start_s=start, out=out)
    return out


CPU_QUEUE = "cpu"  # the queue key of CPU leases (`enqueue`, `serve_queue(models=...)`)


def _serve_cpu(work: Work, waiting: list[Lease], out: QueueOutcome) -> None:
    """Waiting CPU leases in the queue's order (plan, then arrival): each that fits now starts, on its model.

    EASY backfill, as the GPU queue: the first that cannot start now (the head) gets its earliest start held, and
    a later one starts now only where it does not delay that start."""
    cal = placement_cpu_calendar(work)
    t = epoch(work.now)
    held = False
    for lease in sorted(waiting, key=lambda x: service_order(Plan(x.plan), x.created_at, x.id)):
        req = queued_cpu_request(work, lease, t)
        end = req.end
        try:
            placement = cal.place(req)
        except Unplaceable as e:
            if e.code != "no_capacity":
                transition(work, lease, LeaseState.FAILED, actor=ACTOR, reason=e.message)
                out.expired.append(lease.id)
            elif not held:
                hold_cpu_for(cal, req)
                held = True
            continue
        cal.book(lease.id, placement.node_id, placement.cores, placement.memory_gib, t, end)
        _set_start(lease, t)
        allocate_cpu(work, lease, placement, start=lease.starts_at, end=lease.ends_at)
        transition(work, lease, LeaseState.SCHEDULED, actor=ACTOR, reason="placed from the queue")
        activate(work, lease, actor=ACTOR)
        out.started.append(lease.id)


def _set_start(lease: Lease, start_s: int) -> None:
    lease.starts_at = from_epoch(start_s)
    if lease.duration_s is not None:
        lease.ends_at = from_epoch(start_s + lease.duration_s)
    q = dict(lease.quote)
    q["start"], q["end"] = start_s, None if lease.ends_at is None else epoch(lease.ends_at)
    lease.quote = q


def _book_from_queue(work: Work, lease: Lease, placement: Placement, *, start_s: int, out: QueueOutcome) -> None:
    start: datetime = from_epoch(start_s)
    _set_start(lease, start_s)
    allocate(work, lease, placement, start=start, end=lease.ends_at)
    transition(work, lease, LeaseState.SCHEDULED, actor=ACTOR, reason="placed from the queue")
    if start <= work.now:
        activate(work, lease, actor=ACTOR)
        out.started.append(lease.id)
