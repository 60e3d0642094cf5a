"""Lease use cases: quote, book, extend, cancel, end, preempt; the capacity calendar built from the store."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from gpulease import audit
from gpulease.domain.inventory import UnknownGpuModel, gpu_model
from gpulease.domain.leases import PLAN_PRIORITY, LeaseState, Plan, check_transition
from gpulease.domain.placement import (
    CapacityCalendar,
    GpuRef,
    Placement,
    PlacementRequest,
    Unplaceable,
)
from gpulease.domain.pricing import PriceEntry, PricingError, Quote, make_quote
from gpulease.domain.queue import choose_preemptions, queue_head
from gpulease.services import billing
from gpulease.services.context import Actor, Role, epoch, from_epoch
from gpulease.services.errors import Conflict, InvalidRequest, NoCapacity, NotCleared, NotFound
from gpulease.services.inventory import node_view
from gpulease.services.prices import price_book
from gpulease.store.db import Store
from gpulease.store.models import Allocation, Customer, Lease, LeaseEvent, Node

MAX_LEASE_GPUS = 64
PAST_TOLERANCE = timedelta(minutes=5)  # clock skew between a client and us
DEFAULT_MAX_WAIT_S = 3600

StartSpec = datetime | Literal["now", "asap"]


@dataclass(frozen=True)
class LeaseRequest:
    gpu_model: str
    gpu_count: int
    plan: str
    start: StartSpec = "now"
    end: datetime | None = None
    customer_id: int | None = None
    duration_s: int | None = None  # with start "asap": how long, since the start is not known yet
    max_wait_s: int | None = None  # with start "asap": give up after this long in the queue


# --------------------------------------------------------------------------------------------- helpers


def transition(
    session: Session,
    lease: Lease,
    target: LeaseState,
    now: datetime,
    actor: str,
    reason: str | None = None,
    effective: datetime | None = None,
) -> None:
    """Move a lease to `target`, record the event and the audit entry, all in the caller's transaction.

    `effective` is when the change took effect if that is not `now` (a window that ended between two ticks):
    the event carries it, so usage can be recomputed from the event log alone.
    """
    current = LeaseState(lease.state)
    check_transition(current, target)
    lease.state = target.value
    lease.state_reason = reason
    at = effective or now
    record_event(
        session,
        lease,
        now,
        actor,
        "lease.transition",
        reason,
        current.value,
        target.value,
        {"from": current.value, "to": target.value, "reason": reason, "effective": at.isoformat()},
        at,
    )


def record_event(
    session: Session,
    lease: Lease,
    now: datetime,
    actor: str,
    action: str,
    reason: str | None,
    from_state: str | None,
    to_state: str,
    data: dict[str, object],
    effective: datetime | None = None,
) -> None:
    """One entry in the lease's event log and the same fact in the audit chain."""
    session.add(
        LeaseEvent(
            lease_id=lease.id, at=effective or now, from_state=from_state, to_state=to_state, actor=actor, reason=reason
        )
    )
    audit.append(session, at=now, actor=actor, action=action, subject=f"lease:{lease.id}", data=data)


def load_calendar(session: Session, model: str, now: datetime) -> CapacityCalendar:
    """The capacity calendar of one GPU model: its nodes and every live allocation still ahead of `now`."""
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
            (Allocation.ends_at.is_(None)) | (Allocation.ends_at > now),
        )
    ).all()
    grouped: dict[tuple[int, datetime, datetime | None], list[GpuRef]] = defaultdict(list)
    for lease_id, node_id, index, start, end in rows:
        grouped[(lease_id, start, end)].append(GpuRef(node_id, index))
    for (lease_id, start, end), gpus in grouped.items():
        cal.book(lease_id, gpus, epoch(start), None if end is None else epoch(end))
    return cal


def get_lease(session: Session, actor: Actor, lease_id: int) -> Lease:
    lease = session.get(Lease, lease_id, options=[selectinload(Lease.allocations).selectinload(Allocation.node)])
    if lease is None:
        raise NotFound(f"no lease with id {lease_id}")
    actor.check_customer(lease.customer_id, f"lease with id {lease_id}")
    return lease


def list_leases(
    session: Session, actor: Actor, customer_id: int | None = None, state: str | None = None
) -> list[Lease]:
    q = select(Lease).options(selectinload(Lease.allocations).selectinload(Allocation.node)).order_by(Lease.id)
    if actor.role is Role.CUSTOMER:
        q = q.where(Lease.customer_id == actor.customer_id)
    elif customer_id is not None:
        q = q.where(Lease.customer_id == customer_id)
    if state:
        q = q.where(Lease.state == state)
    return list(session.scalars(q))


def lease_events(session: Session, actor: Actor, lease_id: int) -> list[LeaseEvent]:
    get_lease(session, actor, lease_id)
    return list(session.scalars(select(LeaseEvent).where(LeaseEvent.lease_id == lease_id).order_by(LeaseEvent.id)))


def _model_name(name: str) -> str:
    try:
        return gpu_model(name).name
    except UnknownGpuModel as e:
        raise InvalidRequest(str(e)) from None


def _plan(plan: str) -> Plan:
    try:
        return Plan(plan)
    except ValueError:
        raise InvalidRequest(f"plan must be one of {', '.join(p.value for p in Plan)}, got {plan!r}") from None


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime | None
    asap: bool


def resolve_window(req: LeaseRequest, now: datetime) -> Window:
    if req.start in ("now", "asap"):
        start = now
    elif isinstance(req.start, datetime):
        if req.start.tzinfo is None:
            raise InvalidRequest("start must carry a UTC offset, e.g. 2026-12-01T09:00:00Z")
        start = req.start.replace(microsecond=0)
        if start < now - PAST_TOLERANCE:
            raise InvalidRequest(f"the window starts in the past ({start.isoformat()}); now is {now.isoformat()}")
        start = max(start, now)
    else:
        raise InvalidRequest('start must be "now", "asap" or an ISO 8601 time with offset')
    end = req.end
    if end is not None:
        if end.tzinfo is None:
            raise InvalidRequest("end must carry a UTC offset, e.g. 2026-12-01T17:00:00Z")
        end = end.replace(microsecond=0)
        if end <= start:
            raise InvalidRequest(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    if req.duration_s is not None:
        if req.duration_s <= 0:
            raise InvalidRequest("duration_s must be positive")
        if end is not None:
            raise InvalidRequest("give either end or duration_s, not both")
        end = start + timedelta(seconds=req.duration_s)
    return Window(start, end, req.start == "asap")


def _check_count(count: int) -> None:
    if not 1 <= count <= MAX_LEASE_GPUS:
        raise InvalidRequest(f"gpu_count must be between 1 and {MAX_LEASE_GPUS}, got {count}")


# --------------------------------------------------------------------------------------------- quote


@dataclass(frozen=True)
class Availability:
    gpu_model: str
    gpu_count: int
    start: datetime
    end: datetime | None
    available: bool
    earliest_start: datetime | None
    reason: str | None
    quotes: dict[str, Quote]


def availability(
    session: Session, *, gpu_model_name: str, gpu_count: int, start: StartSpec, end: datetime | None, now: datetime
) -> Availability:
    """Can this many GPUs of this model be had in this window, at what price, and if not, from when."""
    model = _model_name(gpu_model_name)
    _check_count(gpu_count)
    w = resolve_window(LeaseRequest(model, gpu_count, Plan.ON_DEMAND, start, end), now)
    cal = load_calendar(session, model, now)
    req = PlacementRequest(model, gpu_count, epoch(w.start), None if w.end is None else epoch(w.end))
    available, reason = True, None
    earliest: datetime | None = w.start
    try:
        cal.place(req)
    except Unplaceable as e:
        available, reason = False, e.message
        earliest = None if e.earliest_start is None else from_epoch(e.earliest_start)
    quotes: dict[str, Quote] = {}
    book = price_book(session)
    for plan in Plan:
        try:
            quotes[plan.value] = make_quote(
                book.entry(model, plan), gpu_count, epoch(w.start), None if w.end is None else epoch(w.end)
            )
        except PricingError:
            continue
    return Availability(model, gpu_count, w.start, w.end, available, earliest, reason, quotes)


def quote_request(session: Session, req: LeaseRequest, now: datetime) -> Quote:
    model = _model_name(req.gpu_model)
    _check_count(req.gpu_count)
    plan = _plan(req.plan)
    w = resolve_window(req, now)
    try:
        entry = price_book(session).entry(model, plan)
        return make_quote(entry, req.gpu_count, epoch(w.start), None if w.end is None else epoch(w.end))
    except PricingError as e:
        raise InvalidRequest(str(e)) from None


# --------------------------------------------------------------------------------------------- booking


@dataclass
class Booked:
    lease: Lease
    preempted: list[int]  # interruptible leases given notice to make room


def allocate(session: Session, lease: Lease, placement: Placement, start: datetime, end: datetime | None) -> None:
    for g in placement.gpus:
        session.add(Allocation(lease_id=lease.id, node_id=g.node_id, gpu_index=g.index, starts_at=start, ends_at=end))


def _interruptible_leases(session: Session, model: str) -> list[Lease]:
    return list(
        session.scalars(
            select(Lease).where(
                Lease.gpu_model == model,
                Lease.plan == Plan.INTERRUPTIBLE.value,
                Lease.state.in_([LeaseState.ACTIVE.value, LeaseState.SCHEDULED.value]),
            )
        )
    )


def make_room(
    session: Session, cal: CapacityCalendar, req: PlacementRequest, now: datetime, actor: str, reason: str
) -> tuple[int, list[int]] | None:
    """Give interruptible leases notice so `req` fits; returns (the start it can have, the preempted ids)."""
    victims = {lease.id: lease for lease in _interruptible_leases(session, req.gpu_model)}
    if not victims:
        return None
    chosen = choose_preemptions(req, cal, {lid: epoch(v.starts_at) for lid, v in victims.items()}, epoch(now))
    if not chosen:
        return None
    notice = max(Quote.from_dict(victims[lid].quote).preemption_notice_s for lid in chosen)
    start = max(req.start, epoch(now) + notice)
    for lid in chosen:
        preempt(session, victims[lid], at=from_epoch(start), now=now, actor=actor, reason=reason, cal=cal)
    return start, chosen


QUEUE_HOLD = -1  # the calendar id of the capacity held for the head of the waiting queue


def hold_for_queue_head(session: Session, cal: CapacityCalendar, model: str, plan: Plan, now: datetime) -> None:
    """Hold, in this calendar only, the GPUs the head of the model's queue will start on (EASY backfill).

    A request that is not itself queued may take capacity only where it does not delay that start, unless
    its plan ranks above the head's.
    """
    waiting = session.scalars(
        select(Lease).where(Lease.state == LeaseState.QUEUED.value, Lease.gpu_model == model)
    ).all()
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


def create_lease(session: Session, store: Store, actor: Actor, req: LeaseRequest, now: datetime) -> Booked:
    """Quote, check compliance, place on concrete GPUs and book, in one transaction."""
    customer_id = req.customer_id if req.customer_id is not None else actor.customer_id
    if customer_id is None:
        raise InvalidRequest("customer_id is required")
    actor.check_customer(customer_id)
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("no such customer")
    model = _model_name(req.gpu_model)
    _check_count(req.gpu_count)
    plan = _plan(req.plan)
    w = resolve_window(req, now)
    if w.asap and plan is Plan.RESERVED:
        raise InvalidRequest("a reserved lease books a fixed window; give start and end")
    # Deliberately say nothing about why: the reason may itself be sensitive (a list hit).
    if customer.compliance_status != "cleared":
        raise NotCleared("This customer is not cleared to rent capacity. Please contact the compliance team.")
    try:
        entry = price_book(session).entry(model, plan)
    except PricingError as e:
        raise InvalidRequest(str(e)) from None

    if w.asap:
        # Waiting is fair: an "asap" request joins the queue and the queue decides (priority, backfill).
        return _enqueue(session, store, actor, customer_id, model, req, plan, entry, w, now)
    store.lock(session, f"placement:{model}")  # one placement per model at a time (PostgreSQL)
    cal = load_calendar(session, model, now)
    hold_for_queue_head(session, cal, model, plan, now)
    start_s, end_s = epoch(w.start), None if w.end is None else epoch(w.end)
    preq = PlacementRequest(model, req.gpu_count, start_s, end_s)
    preempted: list[int] = []
    placement: Placement | None = None
    try:
        placement = cal.place(preq)
    except Unplaceable as e:
        failure = e
        if failure.code in ("unknown_model", "too_large", "bad_request"):
            raise NoCapacity(failure.message, earliest_start=None) from None
        if plan is not Plan.INTERRUPTIBLE:
            room = make_room(session, cal, preq, now, actor.name, reason=f"capacity needed by a {plan.value} lease")
            if room is not None:
                new_start, preempted = room
                if end_s is not None and plan is not Plan.RESERVED:
                    end_s += new_start - start_s  # keep the length asked for
                start_s = new_start
                preq = PlacementRequest(model, req.gpu_count, start_s, end_s)
                placement = cal.place(preq)
        if placement is None:
            earliest = failure.earliest_start
            raise NoCapacity(
                failure.message
                + ("" if earliest is None else f"; earliest start that fits: {from_epoch(earliest).isoformat()}"),
                earliest_start=None if earliest is None else from_epoch(earliest).isoformat(),
            ) from None
    try:
        quote = make_quote(entry, req.gpu_count, start_s, end_s)
    except PricingError as e:
        raise InvalidRequest(str(e)) from None

    start_dt, end_dt = from_epoch(start_s), None if end_s is None else from_epoch(end_s)
    lease = _new_lease(
        session,
        actor,
        customer_id,
        model,
        req.gpu_count,
        plan,
        quote,
        start_dt,
        end_dt,
        now,
        None if end_s is None else end_s - start_s,
    )
    assert placement is not None
    allocate(session, lease, placement, start_dt, end_dt)
    transition(session, lease, LeaseState.SCHEDULED, now, actor.name, reason="customer cleared; placed")
    if start_dt <= now:
        activate(session, lease, now, actor.name)
    session.flush()
    return Booked(lease, preempted)


def _new_lease(
    session: Session,
    actor: Actor,
    customer_id: int,
    model: str,
    gpu_count: int,
    plan: Plan,
    quote: Quote,
    start: datetime,
    end: datetime | None,
    now: datetime,
    duration_s: int | None,
) -> Lease:
    lease = Lease(
        customer_id=customer_id,
        gpu_model=model,
        gpu_count=gpu_count,
        plan=plan.value,
        state=LeaseState.QUOTED.value,
        starts_at=start,
        ends_at=end,
        quote=quote.to_dict(),
        created_at=now,
        duration_s=duration_s,
    )
    session.add(lease)
    session.flush()
    record_event(
        session,
        lease,
        now,
        actor.name,
        "lease.quoted",
        f"{quote.rate} {quote.currency}/{quote.unit}",
        None,
        LeaseState.QUOTED.value,
        {"customer_id": customer_id, "quote": quote.to_dict()},
    )
    transition(session, lease, LeaseState.PENDING_COMPLIANCE, now, actor.name)
    return lease


def _enqueue(
    session: Session,
    store: Store,
    actor: Actor,
    customer_id: int,
    model: str,
    req: LeaseRequest,
    plan: Plan,
    entry: PriceEntry,
    w: Window,
    now: datetime,
) -> Booked:
    from gpulease.services import lifecycle

    duration = None if w.end is None else int((w.end - w.start).total_seconds())
    if req.max_wait_s is not None and req.max_wait_s <= 0:
        raise InvalidRequest("max_wait_s must be positive")
    try:
        quote = make_quote(entry, req.gpu_count, epoch(w.start), None if w.end is None else epoch(w.end))
    except PricingError as e:
        raise InvalidRequest(str(e)) from None
    lease = _new_lease(session, actor, customer_id, model, req.gpu_count, plan, quote, w.start, w.end, now, duration)
    lease.queued_until = now + timedelta(seconds=req.max_wait_s or DEFAULT_MAX_WAIT_S)
    transition(session, lease, LeaseState.QUEUED, now, actor.name, reason="customer cleared; waiting for capacity")
    session.flush()
    before = {lease_.id for lease_ in _interruptible_leases(session, model) if lease_.preempt_at is not None}
    lifecycle.serve_queue(session, store, now, lifecycle.TickResult(), models={model})
    session.flush()
    after = {lease_.id for lease_ in _interruptible_leases(session, model) if lease_.preempt_at is not None}
    return Booked(lease, sorted(after - before))


def activate(session: Session, lease: Lease, now: datetime, actor: str) -> None:
    lease.activated_at = now
    transition(session, lease, LeaseState.ACTIVE, now, actor)


# --------------------------------------------------------------------------------------------- changes


def _set_alloc_end(lease: Lease, end: datetime | None) -> None:
    for a in lease.allocations:
        if not a.released:
            a.ends_at = end


def _release(lease: Lease) -> None:
    for a in lease.allocations:
        a.released = True


def extend(session: Session, store: Store, actor: Actor, lease_id: int, new_end: datetime, now: datetime) -> Lease:
    """Move the end later, only if every GPU of the lease is free for the extra time."""
    lease = get_lease(session, actor, lease_id)
    if lease.state not in (LeaseState.SCHEDULED, LeaseState.ACTIVE):
        raise Conflict(f"lease {lease_id} is {lease.state}; only scheduled or active leases can be extended")
    if new_end.tzinfo is None:
        raise InvalidRequest("end must carry a UTC offset")
    new_end = new_end.replace(microsecond=0)
    if lease.ends_at is None:
        raise Conflict(f"lease {lease_id} is open-ended; it runs until it is ended")
    if new_end <= lease.ends_at:
        raise InvalidRequest(f"the new end must be after the current end ({lease.ends_at.isoformat()})")
    if lease.preempt_at is not None:
        raise Conflict(f"lease {lease_id} has been given notice of preemption")
    store.lock(session, f"placement:{lease.gpu_model}")
    cal = load_calendar(session, lease.gpu_model, now)
    hold_for_queue_head(session, cal, lease.gpu_model, Plan(lease.plan), now)
    if not cal.can_extend(lease.id, epoch(new_end)):
        raise NoCapacity(
            f"the GPUs of lease {lease_id} are booked by someone else before "
            f"{new_end.isoformat()}; it cannot be extended that far",
            earliest_start=None,
        )
    old_end = lease.ends_at
    q = Quote.from_dict(lease.quote)
    entry_quote = make_quote(_quote_entry(q), lease.gpu_count, q.start, epoch(new_end))
    lease.quote = entry_quote.to_dict()
    lease.ends_at = new_end
    _set_alloc_end(lease, new_end)
    record_event(
        session,
        lease,
        now,
        actor.name,
        "lease.extended",
        f"extended from {old_end.isoformat()} to {new_end.isoformat()}",
        lease.state,
        lease.state,
        {"from": old_end.isoformat(), "to": new_end.isoformat()},
    )
    return lease


def _quote_entry(q: Quote) -> PriceEntry:
    """The price-book entry a quote was made from (the lease keeps its price when extended)."""
    return PriceEntry(
        gpu_model=q.gpu_model,
        plan=q.plan,
        rate=q.rate,
        currency=q.currency,
        cancel_free_hours=q.cancel_free_hours,
        cancel_fee_fraction=q.cancel_fee_fraction,
        preemption_notice_s=q.preemption_notice_s,
    )


def cancel(session: Session, actor: Actor, lease_id: int, now: datetime) -> Lease:
    """Cancel before it starts: the GPUs are freed; a reserved window may carry a late-cancellation fee."""
    lease = get_lease(session, actor, lease_id)
    if lease.state in (LeaseState.ACTIVE, LeaseState.ENDING):
        raise Conflict(f"lease {lease_id} is already active; end it instead of cancelling")
    if lease.state not in (
        LeaseState.SCHEDULED,
        LeaseState.QUEUED,
        LeaseState.SUSPENDED,
        LeaseState.QUOTED,
        LeaseState.PENDING_COMPLIANCE,
    ):
        raise Conflict(f"lease {lease_id} is {lease.state} and cannot be cancelled")
    if lease.state == LeaseState.SUSPENDED and lease.activated_at is not None:
        raise Conflict(f"lease {lease_id} has started; end it instead of cancelling")
    _release(lease)
    billing.record_cancellation_fee(session, lease, now)
    transition(session, lease, LeaseState.CANCELLED, now, actor.name, reason="cancelled by " + actor.role)
    return lease


def billing_start(lease: Lease) -> datetime | None:
    """Where the unbilled time of a started lease begins."""
    if lease.activated_at is None:
        return None
    if lease.billed_until is not None:
        return lease.billed_until
    return lease.starts_at if Quote.from_dict(lease.quote).billed_for_whole_window else lease.activated_at


def bill_through(session: Session, lease: Lease, until: datetime, now: datetime) -> None:
    """Record the lease's usage from where billing stopped up to `until` (idempotent)."""
    start = billing_start(lease)
    if start is None or until <= start:
        return
    billing.record_usage(session, lease, start, until, now)
    lease.billed_until = until


def finish(
    session: Session, lease: Lease, at: datetime, now: datetime, actor: str, target: LeaseState, reason: str | None
) -> None:
    """Close a lease at `at`: free its GPUs from then on and bill what it used, in this transaction.

    A lease that ends goes to `ending` while its runs are being stopped; the executor makes it `ended` once
    nothing of the customer's runs on the GPUs any more (`close_ending`).
    """
    if lease.activated_at is not None:
        q = Quote.from_dict(lease.quote)
        until = (lease.ends_at or at) if q.billed_for_whole_window else at
        bill_through(session, lease, until, now)
    if lease.activated_at is None:
        _release(lease)
    elif not Quote.from_dict(lease.quote).billed_for_whole_window or lease.ends_at is None or at < lease.ends_at:
        _set_alloc_end(lease, max(at, lease.activated_at))
    lease.ended_at = at
    if target is LeaseState.ENDED:
        target = LeaseState.ENDING
    transition(session, lease, target, now, actor, reason, effective=at)


def close_ending(session: Session, now: datetime, actor: str) -> list[int]:
    """Leases whose runs have all been stopped: `ending` -> `ended`."""
    closed = []
    for lease in session.scalars(select(Lease).where(Lease.state == LeaseState.ENDING.value)):
        transition(session, lease, LeaseState.ENDED, now, actor, reason="GPUs handed back: no run left on them")
        closed.append(lease.id)
    return closed


def end(session: Session, actor: Actor, lease_id: int, now: datetime) -> Lease:
    """End a lease now. Pay-as-you-go plans are billed to this second; reserved windows are billed whole."""
    lease = get_lease(session, actor, lease_id)
    if lease.state in (LeaseState.SCHEDULED, LeaseState.QUEUED) or (
        lease.state == LeaseState.SUSPENDED and lease.activated_at is None
    ):
        return cancel(session, actor, lease_id, now)
    if lease.state not in (LeaseState.ACTIVE, LeaseState.SUSPENDED, LeaseState.ENDING):
        raise Conflict(f"lease {lease_id} is {lease.state} and cannot be ended")
    at = now if lease.ends_at is None else min(now, lease.ends_at)
    finish(session, lease, at, now, actor.name, LeaseState.ENDED, reason=f"ended by {actor.role}")
    return lease


def preempt(
    session: Session,
    lease: Lease,
    *,
    at: datetime,
    now: datetime,
    actor: str,
    reason: str,
    cal: CapacityCalendar | None = None,
) -> None:
    """Give an interruptible lease notice: its GPUs are taken back at `at` (the tick closes it then)."""
    if lease.plan != Plan.INTERRUPTIBLE:
        raise Conflict(f"lease {lease.id} is {lease.plan}; only interruptible leases can be preempted")
    if lease.state == LeaseState.SCHEDULED and lease.starts_at >= at:
        _release(lease)
        if cal is not None:
            cal.release(lease.id)
        transition(session, lease, LeaseState.PREEMPTED, now, actor, reason)
        return
    if lease.state not in (LeaseState.ACTIVE, LeaseState.SCHEDULED):
        raise Conflict(f"lease {lease.id} is {lease.state} and cannot be preempted")
    lease.preempt_at = at
    _set_alloc_end(lease, at)
    if cal is not None:
        cal.truncate(lease.id, epoch(at))
    record_event(
        session,
        lease,
        now,
        actor,
        "lease.preemption_notice",
        f"preemption notice: GPUs taken back at {at.isoformat()} ({reason})",
        lease.state,
        lease.state,
        {"at": at.isoformat(), "reason": reason},
    )


def preempt_by_operator(session: Session, actor: Actor, lease_id: int, now: datetime) -> Lease:
    actor.require(Role.OPERATOR)
    lease = get_lease(session, actor, lease_id)
    notice = Quote.from_dict(lease.quote).preemption_notice_s
    preempt(
        session,
        lease,
        at=now + timedelta(seconds=notice),
        now=now,
        actor=actor.name,
        reason="preempted by the operator",
    )
    return lease
