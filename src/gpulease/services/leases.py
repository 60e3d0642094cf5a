"""Lease use cases: availability, quote, book, extend, cancel, end, preempt, and which actions a lease offers.

Each is one transaction in the caller's unit of work (`Work`): it checks who may act, validates, changes the
lease through `transitions`, and asks for the runs of a closed lease to be stopped once it commits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload, object_session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from gpulease.domain.cpu import UnknownCpuModel, cpu_model
from gpulease.domain.cpu_placement import CpuCalendar, CpuPlacement, CpuRequest
from gpulease.domain.customers import ComplianceStatus
from gpulease.domain.inventory import NodeView, UnknownGpuModel, gpu_model
from gpulease.domain.leases import LeaseAction, LeaseFacts, LeaseState, Plan, offered_actions, refusal
from gpulease.domain.placement import Placement, PlacementRequest, Unplaceable
from gpulease.domain.pricing import PriceEntry, PricingError, Quote, Resource, make_quote, quote_entry
from gpulease.services import billing, budgets, limits
from gpulease.services.booking_checks import PENDING_MESSAGE, BookingFindings, check_booking, report
from gpulease.services.capacity import (
    allocate,
    draw_ids,
    give_notice,
    hold_for_queue_head,
    keep_placed,
    make_room,
    placement_calendar,
    queued,
    view_calendar,
)
from gpulease.services.context import Actor, Role, epoch, from_epoch
from gpulease.services.cpu_capacity import (
    CpuRoom,
    HeldCores,
    allocate_cpu,
    held_cores,
    hold_for_cpu_queue_head,
    load_cpu_calendar,
    placement_cpu_calendar,
    plan_cpu_room,
)
from gpulease.services.customer_terms import CustomerTerms, customer_terms
from gpulease.services.errors import Conflict, InvalidRequest, NoCapacity, NotCleared, NotFound
from gpulease.services.inventory import models_in_service
from gpulease.services.lease_queue import enqueue
from gpulease.services.permissions import Permission, allowed, require
from gpulease.services.prices import price_book, price_entry
from gpulease.services.transitions import (
    RUN_GOING,
    activate,
    current_holds,
    finish,
    holds,
    preempt,
    record_event,
    release,
    set_alloc_end,
    transition,
)
from gpulease.services.work import AuditEntry, LeasesChanged, Work
from gpulease.store import direct
from gpulease.store.models import Allocation, ApiKey, Lease, LeaseEvent, Node
from gpulease.store.prepared import Prepared

MAX_LEASE_GPUS = 64
PAST_TOLERANCE = timedelta(minutes=5)  # clock skew between a client and us

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
    # A CPU lease (issue 13) gives cpu_cores instead of a GPU model and count (then "" and 0): cores of one node,
    # memory_gib None = the cores' share of the node's memory, cpu_model None = any model (priced as placed).
    cpu_cores: int | None = None
    memory_gib: int | None = None
    cpu_model: str | None = None


# --------------------------------------------------------------------------------------------- reading


# One statement (a join) for one lease, rather than one per relationship: an end reads its lease this way.
_LEASE_WITH_GPUS = direct.ById(Lease, joinedload(Lease.allocations).joinedload(Allocation.node))


def get_lease(work: Work, *, actor: Actor, lease_id: int) -> Lease:
    lease = _LEASE_WITH_GPUS(work.session, lease_id) if limits.fits_id(lease_id) else None
    # Another tenant's lease answers exactly as a missing one: a customer never learns it exists.
    if lease is None or not actor.can_see_customer(lease.customer_id):
        raise NotFound(f"no lease with id {lease_id}")
    return lease


def held_allocations(lease: Lease) -> list[Allocation]:
    """The GPUs the lease holds in its current placement (`transitions.current_holds`)."""
    return current_holds(lease.allocations)


@dataclass(frozen=True)
class Holdings:
    """What a lease holds as its answer shows it."""

    gpus: list[tuple[str, int, int]]  # node name, node id, GPU index; by node and index
    cores: list[HeldCores]  # `cpu_capacity.held_cores`


# The nodes of a booking's GPUs, for its answer: their names, and whether their CPUs are described (cpu_node_view).
_NODE_FACTS = select(Node.id, Node.name, Node.cpu_cores, Node.cpu_model).where(
    Node.id.in_(bindparam("ids", expanding=True))
)
# A booking's GPUs on one node (the usual case): compiled once and run on the cursor (store/prepared.py).
_ONE_NODE_FACTS = Prepared(
    select(Node.id, Node.name, Node.cpu_cores, Node.cpu_model).where(Node.id == bindparam("id")), autoflush=True
)


def holdings(lease: Lease, nodes: Mapping[int, NodeView] | None = None) -> Holdings:
    """The GPUs the lease holds (or, once closed, held), with their nodes' names, and the cores it holds; read while
    its session is open.

    A lease just booked has its GPUs but not their nodes in the session. `nodes` (`Booked.nodes`): its nodes as the
    calendar it was placed on knows them, which name them without a statement. Otherwise their names are read with
    one statement of four columns rather than one ORM load of each node. Either way, unless a node's CPUs are
    described (its GPUs' share of cores is then shown, from the node itself)."""
    live = held_allocations(lease) or (lease.allocations if lease.state in ("ended", "preempted") else [])
    gpus_held = sorted(live, key=lambda a: (a.node_id, a.gpu_index))
    session = object_session(lease)
    if gpus_held and lease.resource != "cpu" and all("node" not in a.__dict__ for a in gpus_held):
        if nodes is not None and all(a.node_id in nodes for a in gpus_held):
            views = [nodes[a.node_id] for a in gpus_held]
            if not any(v.cpus_described for v in views):
                return Holdings([(v.name, a.node_id, a.gpu_index) for v, a in zip(views, gpus_held, strict=True)], [])
        elif session is not None:
            node_ids = sorted({a.node_id for a in gpus_held})
            if len(node_ids) == 1:
                rows: Sequence[Any] = _ONE_NODE_FACTS.rows(session, {"id": node_ids[0]})
            else:
                rows = session.execute(_NODE_FACTS, {"ids": node_ids}).all()
            names = {node_id: name for node_id, name, _cores, _model in rows}
            described = any(cores > 0 and model for _id, _name, cores, model in rows)
            if not described and all(a.node_id in names for a in gpus_held):
                return Holdings([(names[a.node_id], a.node_id, a.gpu_index) for a in gpus_held], [])
    return Holdings([(a.node.name, a.node_id, a.gpu_index) for a in gpus_held], held_cores(lease, gpus_held))


def list_leases(work: Work, *, actor: Actor, customer_id: int | None = None, state: str | None = None) -> list[Lease]:
    q = select(Lease).options(selectinload(Lease.allocations).selectinload(Allocation.node)).order_by(Lease.id)
    if actor.role is Role.CUSTOMER:
        q = q.where(Lease.customer_id == actor.customer_id)
    elif customer_id is not None:
        if not limits.fits_id(customer_id):
            raise InvalidRequest(f"customer_id must be between 1 and {limits.MAX_ID}")
        q = q.where(Lease.customer_id == customer_id)
    if state is not None:  # an empty state is no state: refused, as the schema says
        if state not in {st.value for st in LeaseState}:
            raise InvalidRequest(f"state must be one of {', '.join(st.value for st in LeaseState)}")
        q = q.where(Lease.state == state)
    return list(work.session.scalars(q))


@dataclass(frozen=True)
class EventView:
    """A lease event as the viewer may see it."""

    at: datetime
    from_state: str | None
    to_state: str
    actor: str
    reason: str | None


NAMELESS_ACTORS = frozenset({"scheduler", "compliance", "system", "cli", "executor", "budget", "gpulease"})


def lease_events(work: Work, *, actor: Actor, lease_id: int) -> list[EventView]:
    """The lease's events. A customer sees its own keys by name and everyone else as `gpulease`: never another
    tenant's or a staff member's key."""
    get_lease(work, actor=actor, lease_id=lease_id)
    rows = work.session.scalars(select(LeaseEvent).where(LeaseEvent.lease_id == lease_id).order_by(LeaseEvent.id))
    own: set[str] = set()
    if actor.role is Role.CUSTOMER:
        prefixes = work.session.scalars(select(ApiKey.prefix).where(ApiKey.customer_id == actor.customer_id))
        own = {f"key:{p}" for p in prefixes} | {actor.name}

    def shown(name: str) -> str:
        if actor.role is not Role.CUSTOMER or name in own or name in NAMELESS_ACTORS:
            return name
        return "gpulease"

    return [EventView(e.at, e.from_state, e.to_state, shown(e.actor), e.reason) for e in rows]


def facts(lease: Lease) -> LeaseFacts:
    return LeaseFacts(
        id=lease.id,
        state=LeaseState(lease.state),
        plan=Plan(lease.plan),
        started=lease.activated_at is not None,
        open_ended=lease.ends_at is None,
        notice_given=lease.preempt_at is not None,
    )


ACTION_PERMISSION = {
    LeaseAction.END: Permission.CHANGE_LEASE,
    LeaseAction.CANCEL: Permission.CHANGE_LEASE,
    LeaseAction.EXTEND: Permission.CHANGE_LEASE,
    LeaseAction.PREEMPT: Permission.PREEMPT_LEASE,
}


def allowed_actions(lease: Lease, actor: Actor) -> frozenset[LeaseAction]:
    """What this actor can do to this lease now: what the dashboard offers, and what the use cases accept."""
    if not actor.can_see_customer(lease.customer_id):
        return frozenset()
    return frozenset(a for a in offered_actions(facts(lease)) if allowed(actor, ACTION_PERMISSION[a]))


def _check(lease: Lease, action: LeaseAction) -> None:
    why = refusal(action, facts(lease))
    if why is not None:
        raise Conflict(why)


# --------------------------------------------------------------------------------------------- validation


def _model_name(name: str) -> str:
    try:
        return gpu_model(limits.required_text(name, what="gpu_model", max_len=limits.MODEL_NAME_MAX)).name
    except UnknownGpuModel as e:
        raise InvalidRequest(str(e)) from None


def _reason(work: Work, model: str, e: Unplaceable) -> str:
    """Why a request cannot be placed, in words; an unknown model names the models the facility has (the
    calendar only knows the nodes of the model asked for)."""
    if e.code == "unknown_model":
        known = ", ".join(models_in_service(work)) or "none yet"
        return f"no node has {model} GPUs; models in the facility: {known}."
    return e.message


def _plan(plan: str) -> Plan:
    try:
        return Plan(plan)
    except ValueError:
        raise InvalidRequest(f"plan must be one of {', '.join(p.value for p in Plan)}, got {plan[:40]!r}") from None


def _check_count(count: int) -> None:
    if not 1 <= count <= MAX_LEASE_GPUS:
        raise InvalidRequest(f"gpu_count must be between 1 and {MAX_LEASE_GPUS}, got {count}")


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime | None
    asap: bool


def resolve_window(req: LeaseRequest, now: datetime) -> Window:
    """The window asked for, within bounds: it ends at most `limits.HORIZON` from now, lasts at most
    `limits.LEASE_MAX_S`, and waits in the queue at most `limits.MAX_WAIT_MAX_S`."""
    if req.start in ("now", "asap"):
        start = now
    elif isinstance(req.start, datetime):
        start = limits.moment(req.start, what="start").replace(microsecond=0)
        if start < now - PAST_TOLERANCE:
            raise InvalidRequest(f"the window starts in the past ({start.isoformat()}); now is {now.isoformat()}")
        start = max(start, now)
    else:
        raise InvalidRequest('start must be "now", "asap" or an ISO 8601 time with offset')
    end = req.end
    if end is not None:
        end = limits.moment(end, what="end").replace(microsecond=0)
        if end <= start:
            raise InvalidRequest(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    if req.duration_s is not None:
        if req.duration_s <= 0:
            raise InvalidRequest("duration_s must be positive")
        if end is not None:
            raise InvalidRequest("give either end or duration_s, not both")
        limits.whole(req.duration_s, what="duration_s", low=1, high=limits.LEASE_MAX_S)
        end = start + timedelta(seconds=req.duration_s)
    if req.max_wait_s is not None:
        if req.max_wait_s <= 0:
            raise InvalidRequest("max_wait_s must be positive")
        limits.whole(req.max_wait_s, what="max_wait_s", low=1, high=limits.MAX_WAIT_MAX_S)
    _within_horizon(start, end, now)
    return Window(start, end, req.start == "asap")


def _within_horizon(start: datetime, end: datetime | None, now: datetime) -> None:
    horizon = now + limits.HORIZON
    if start > horizon or (end is not None and end > horizon):
        raise InvalidRequest(
            f"a lease can be booked to end at most {limits.HORIZON.days} days ahead ({horizon.isoformat()})"
        )
    if end is not None and (end - start).total_seconds() > limits.LEASE_MAX_S:
        raise InvalidRequest(f"a lease lasts at most {limits.LEASE_MAX_S} seconds")


def _quote(entry: PriceEntry, gpu_count: int, start: int, end: int | None, memory_gib: int = 0) -> Quote:
    try:
        return make_quote(entry, gpu_count, start, end, memory_gib)
    except PricingError as e:
        raise InvalidRequest(str(e)) from None


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
    cpu_model: str | None = None  # CPU cores asked for: the model asked for, or where they would land
    cpu_cores: int | None = None
    memory_gib: int | None = None


def availability(
    work: Work,
    *,
    gpu_model_name: str | None,
    gpu_count: int | None,
    start: StartSpec,
    end: datetime | None,
    cpu_cores: int | None = None,
    memory_gib: int | None = None,
    cpu_model_name: str | None = None,
) -> Availability:
    """Can this many GPUs of this model (or this many CPU cores) be had in this window, at what price, and if not,
    from when."""
    if cpu_cores is not None or memory_gib is not None or cpu_model_name is not None:
        if cpu_cores is None:
            raise InvalidRequest("give cpu_cores with memory_gib or cpu_model")
        asked = LeaseRequest(
            gpu_model_name or "",
            gpu_count or 0,
            Plan.ON_DEMAND,
            start,
            end,
            cpu_cores=cpu_cores,
            memory_gib=memory_gib,
            cpu_model=cpu_model_name,
        )
        return _cpu_availability(work, _cpu_shape(asked))
    if gpu_model_name is None or gpu_count is None:
        raise InvalidRequest("give gpu_model and gpu_count, or cpu_cores")
    model = _model_name(gpu_model_name)
    _check_count(gpu_count)
    w = resolve_window(LeaseRequest(model, gpu_count, Plan.ON_DEMAND, start, end), work.now)
    cal = view_calendar(work, model)
    req = PlacementRequest(model, gpu_count, epoch(w.start), None if w.end is None else epoch(w.end))
    available, reason = True, None
    earliest: datetime | None = w.start
    try:
        cal.place(req)
    except Unplaceable as e:
        available, reason = False, _reason(work, model, e)
        earliest = None if e.earliest_start is None else from_epoch(e.earliest_start)
    quotes: dict[str, Quote] = {}
    book = price_book(work.session)
    for plan in Plan:
        try:
            quotes[plan.value] = make_quote(
                book.entry(model, plan), gpu_count, epoch(w.start), None if w.end is None else epoch(w.end)
            )
        except PricingError:
            continue
    return Availability(model, gpu_count, w.start, w.end, available, earliest, reason, quotes)


def quote_request(work: Work, *, request: LeaseRequest) -> Quote:
    if request.cpu_cores is not None:
        return _cpu_quote(work, _cpu_shape(request))
    model = _model_name(request.gpu_model)
    _check_count(request.gpu_count)
    plan = _plan(request.plan)
    w = resolve_window(request, work.now)
    try:
        entry = price_entry(work.session, model, plan)
    except PricingError as e:
        raise InvalidRequest(str(e)) from None
    return _quote(entry, request.gpu_count, epoch(w.start), None if w.end is None else epoch(w.end))


# --------------------------------------------------------------------------------------------- booking


@dataclass
class Booked:
    lease: Lease
    preempted: list[int]  # interruptible leases given notice to make room
    # The nodes of its GPUs as the calendar it was placed on knows them, for its answer (`holdings`). That calendar
    # is current as of this transaction: every change of a model's nodes bumps the model's version, and a placement
    # behind the version reloads it first (services/calendars.py); a node's name and CPUs change only when it is
    # removed, which takes it out of the calendar.
    nodes: Mapping[int, NodeView] = field(default_factory=dict)


def create_lease(work: Work, *, actor: Actor, request: LeaseRequest) -> Booked:
    """Quote, check compliance, place on concrete GPUs and book, in one transaction."""
    req = request
    require(actor, Permission.BOOK_LEASE)
    customer_id = req.customer_id if req.customer_id is not None else actor.customer_id
    if customer_id is None:
        raise InvalidRequest("customer_id is required")
    actor.check_customer(customer_id)
    customer = customer_terms(work, customer_id) if limits.fits_id(customer_id) else None
    if customer is None:
        raise NotFound("no such customer")
    cpu = req.cpu_cores is not None
    if cpu:
        req = _cpu_shape(req)
    model = "" if cpu else _model_name(req.gpu_model)
    if not cpu:
        _check_count(req.gpu_count)
    plan = _plan(req.plan)
    w = resolve_window(req, work.now)
    if w.asap and plan is Plan.RESERVED:
        raise InvalidRequest("a reserved lease books a fixed window; give start and end")
    # Deliberately say nothing about why: the reason may itself be sensitive (a list hit).
    if ComplianceStatus(customer.compliance_status) is not ComplianceStatus.CLEARED:
        raise NotCleared(
            "This customer is not cleared to rent capacity. Please contact the compliance team.",
            record=AuditEntry(
                actor=actor.name,
                action="lease.refused",
                subject=f"customer:{customer_id}",
                data={"reason": "lease refused: customer not cleared"},
            ),
        )
    if cpu:
        return _create_cpu_lease(work, actor=actor, customer=customer, request=req, plan=plan, window=w)
    try:
        entry = price_entry(work.session, model, plan)
    except PricingError as e:
        raise InvalidRequest(str(e)) from None
    budgets.admit(work, customer=customer, entry=entry, gpu_count=req.gpu_count, start=w.start, end=w.end)
    # Red flags on the request itself and compute thresholds ahead of time (services/booking_checks.py).
    findings = check_booking(work, customer, model=model, gpu_count=req.gpu_count, start=w.start, end=w.end)
    if findings.block:
        return _pending_review(
            work, actor=actor, customer=customer, request=req, plan=plan, entry=entry, window=w, findings=findings
        )
    # As soon as possible, with nothing waiting for the model and the GPUs free now: placed now, where the queue
    # would place it, without going through the queue (its flush and its pass over the backlog cost 5-8 ms here).
    placed = _place(
        work, actor=actor, customer_id=customer_id, request=req, plan=plan, entry=entry, window=w, or_none=w.asap
    )
    booked = placed or _join_queue(
        work, actor=actor, customer_id=customer_id, request=req, plan=plan, entry=entry, window=w
    )
    if findings.compute is not None:  # allow-and-report: booked, and the projection goes to the review queue
        report(work, customer, booked.lease, findings)
    return booked


def _pending_review(
    work: Work,
    *,
    actor: Actor,
    customer: CustomerTerms,
    request: LeaseRequest,
    plan: Plan,
    entry: PriceEntry,
    window: Window,
    findings: BookingFindings,
) -> Booked:
    """A booking that needs a compliance review first: a lease in `pending_compliance`, no GPUs, a review item.
    An approval puts it in the waiting queue; a denial rejects it."""
    lease = _unplaced_lease(
        work, actor=actor, customer_id=customer.id, request=request, plan=plan, entry=entry, window=window
    )
    lease.state_reason = PENDING_MESSAGE  # it stays pending_compliance (as _new_lease left it) until decided
    report(work, customer, lease, findings)
    return Booked(lease, [])


def _place(
    work: Work,
    *,
    actor: Actor,
    customer_id: int,
    request: LeaseRequest,
    plan: Plan,
    entry: PriceEntry,
    window: Window,
    or_none: bool = False,
) -> Booked | None:
    """Place and book the request in its window, giving interruptible leases notice if it needs their GPUs; or
    refused (NoCapacity). `or_none` (a request to start as soon as possible): None, with nothing written, when
    anything waits in the model's queue or the GPUs are not free now; the request then joins the queue."""
    model, count = entry.gpu_model, request.gpu_count
    lease_id, first_allocation_id = draw_ids(work)  # before the model's lock, as the queue: no round trip holding it
    waiting = queued(work, model)
    if or_none and waiting:
        return None
    cal = placement_calendar(work, model)  # one placement per model at a time, across processes too
    hold_for_queue_head(work, cal, model, plan, waiting)
    start_s, end_s = epoch(window.start), None if window.end is None else epoch(window.end)
    preq = PlacementRequest(model, count, start_s, end_s)
    preempted: list[int] = []
    placement: Placement | None = None
    try:
        placement = cal.place(preq)
    except Unplaceable as e:
        failure = e
        if or_none and failure.code == "no_capacity":
            return None
        if failure.code in ("unknown_model", "too_large", "bad_request"):
            raise NoCapacity(_reason(work, model, failure), earliest_start=None) from None
        if plan is not Plan.INTERRUPTIBLE:
            room = make_room(work, cal, preq, actor=actor.name, reason=f"capacity needed by a {plan.value} lease")
            if room is not None:
                new_start, preempted = room
                if end_s is not None and plan is not Plan.RESERVED:
                    end_s += new_start - start_s  # keep the length asked for
                start_s = new_start
                preq = PlacementRequest(model, count, start_s, end_s)
                try:
                    placement = cal.place(preq)
                except Unplaceable:  # the notices given do not free enough after all: refused (rolled back)
                    placement = None
        if placement is None:
            earliest = failure.earliest_start
            raise NoCapacity(  # the message states the earliest start once; the field carries it for programs
                failure.message,
                earliest_start=None if earliest is None else from_epoch(earliest).isoformat(),
            ) from None
    placed = placement  # narrowed to Placement: the closure below keeps that type
    nodes = {n: cal.node(n) for n in placed.node_ids}  # now, under the model's lock (`keep_placed` lets it go)
    if not preempted and lease_id is not None:
        # Gave nobody notice (PostgreSQL): kept in the calendar now, and the next placement of the model goes on
        # at once (services/calendars.py, `placed`); SQLite keeps the model's lock to the commit.
        keep_placed(
            work, model, placed, lease_id, start=from_epoch(start_s), end=None if end_s is None else from_epoch(end_s)
        )
    lease = _book_placed(
        work,
        actor=actor,
        customer_id=customer_id,
        plan=plan,
        quote=_quote(entry, count, start_s, end_s),
        count=count,
        start_s=start_s,
        end_s=end_s,
        hold=lambda lease, start, end: allocate(
            work, lease, placed, start=start, end=end, first_id=first_allocation_id
        ),
        preempted=preempted,
        lease_id=lease_id,
    )
    return Booked(lease, preempted, nodes)


def _book_placed(
    work: Work,
    *,
    actor: Actor,
    customer_id: int,
    plan: Plan,
    quote: Quote,
    count: int,
    start_s: int,
    end_s: int | None,
    hold: Callable[[Lease, datetime, datetime | None], None],
    preempted: list[int],
    lease_id: int | None = None,
) -> Lease:
    """A placed booking of GPUs or cores: the lease, its holds (`hold` writes the allocation rows), scheduled, and
    active if its start has come; backends that mirror leases (Slurm) are told after the commit."""
    start_dt, end_dt = from_epoch(start_s), None if end_s is None else from_epoch(end_s)
    lease = _new_lease(
        work,
        actor=actor,
        customer_id=customer_id,
        gpu_count=count,
        plan=plan,
        quote=quote,
        start=start_dt,
        end=end_dt,
        duration_s=None if end_s is None else end_s - start_s,
        lease_id=lease_id,
    )
    hold(lease, start_dt, end_dt)
    transition(work, lease, LeaseState.SCHEDULED, actor=actor.name, reason="customer cleared; placed")
    if start_dt <= work.now:
        activate(work, lease, actor=actor.name)
    # The lease's first INSERT, in the state it has reached, and its holds: written directly, not by a flush
    # (store/direct.py), when nothing else changed. Leases given notice are flushed with it instead: the flush
    # cuts their holds before it inserts the new ones (PostgreSQL's exclusion constraint checks each statement).
    session = work.session
    fresh = [x for x in (lease, *holds(lease)) if x in session.new]
    if lease in fresh and not preempted and not session.dirty and not session.deleted:
        direct.insert_now(session, fresh)
    session.flush()  # whatever else is new or changed (nothing, when the lease was inserted above)
    work.after_commit(LeasesChanged((lease.id, *preempted)))
    return lease


def _join_queue(
    work: Work, *, actor: Actor, customer_id: int, request: LeaseRequest, plan: Plan, entry: PriceEntry, window: Window
) -> Booked:
    lease = _unplaced_lease(
        work, actor=actor, customer_id=customer_id, request=request, plan=plan, entry=entry, window=window
    )
    # The leases the queue preempted to make room, as it reports them: not two reads of every interruptible lease.
    return Booked(lease, sorted(enqueue(work, lease, max_wait_s=request.max_wait_s, actor=actor.name).preempted))


def _unplaced_lease(
    work: Work, *, actor: Actor, customer_id: int, request: LeaseRequest, plan: Plan, entry: PriceEntry, window: Window
) -> Lease:
    """A lease booked without GPUs yet (waiting for a review or in the queue), quoted for its window."""
    w = window
    duration = None if w.end is None else int((w.end - w.start).total_seconds())
    units = request.gpu_count if request.cpu_cores is None else request.cpu_cores
    quote = _quote(entry, units, epoch(w.start), None if w.end is None else epoch(w.end), request.memory_gib or 0)
    return _new_lease(
        work,
        actor=actor,
        customer_id=customer_id,
        gpu_count=units,
        plan=plan,
        quote=quote,
        start=w.start,
        end=w.end,
        duration_s=duration,
    )


def _new_lease(
    work: Work,
    *,
    actor: Actor,
    customer_id: int,
    gpu_count: int,
    plan: Plan,
    quote: Quote,
    start: datetime,
    end: datetime | None,
    duration_s: int | None,
    lease_id: int | None = None,
) -> Lease:
    cpu = quote.resource is Resource.CPU  # a CPU lease: the quote's model and units are a CPU model and cores
    # Made as the ORM makes a loaded object (store/direct.made), not through the constructor's attribute events.
    (lease,) = direct.made(
        Lease,
        [
            {
                "id": lease_id,  # drawn already (`draw_ids`), or given by the INSERT
                "customer_id": customer_id,
                "gpu_model": None if cpu else quote.gpu_model,
                "gpu_count": 0 if cpu else gpu_count,
                "resource": quote.resource.value,
                "cpu_model": quote.gpu_model if cpu else None,
                "cpu_cores": gpu_count if cpu else None,
                "memory_gib": quote.memory_gib if cpu else None,
                "plan": plan.value,
                "state": LeaseState.QUOTED.value,
                "starts_at": start,
                "ends_at": end,
                "quote": quote.to_dict(),
                "created_at": work.now,
                "duration_s": duration_s,
            }
        ],
    )
    for holds_none in ("allocations", "cpu_allocations", "memory_allocations"):
        set_committed_value(lease, holds_none, [])  # known to be none: no query to find out
    work.session.add(lease)
    if lease_id is None:  # its id is given by the INSERT
        work.session.flush()
    work.billed[lease.id] = Decimal(0)  # a lease booked now has no usage on record
    record_event(
        work,
        lease,
        actor=actor.name,
        action="lease.quoted",
        reason=f"{quote.rate} {quote.currency}/{quote.unit}",
        from_state=None,
        to_state=LeaseState.QUOTED.value,
        data={"customer_id": customer_id, "quote": quote.to_dict()},
    )
    transition(work, lease, LeaseState.PENDING_COMPLIANCE, actor=actor.name)
    return lease


# --------------------------------------------------------------------------------------------- changes


def extend(work: Work, *, actor: Actor, lease_id: int, new_end: datetime) -> Lease:
    """Move the end later, only if every GPU of the lease is free for the extra time."""
    require(actor, Permission.CHANGE_LEASE)
    lease = get_lease(work, actor=actor, lease_id=lease_id)
    # Locked, and read again: an end committed meanwhile is seen (and refused) rather than overwritten.
    work.session.refresh(lease, ["state", "ends_at", "preempt_at", "quote"], with_for_update=True)
    _check(lease, LeaseAction.EXTEND)
    if new_end.tzinfo is None:
        raise InvalidRequest("end must carry a UTC offset")
    new_end = limits.moment(new_end, what="end").replace(microsecond=0)
    old_end = lease.ends_at
    assert old_end is not None  # an open-ended lease was refused above
    if new_end <= old_end:
        raise InvalidRequest(f"the new end must be after the current end ({old_end.isoformat()})")
    _within_horizon(lease.starts_at, new_end, work.now)
    q = Quote.from_dict(lease.quote)
    customer = customer_terms(work, lease.customer_id)
    assert customer is not None
    units = lease.gpu_count if lease.resource != Resource.CPU else q.gpu_count
    # The time it adds is checked as a booking of its own: the lease's GPUs are free then, by its own end.
    budgets.admit(work, customer=customer, entry=quote_entry(q), gpu_count=units, start=old_end, end=new_end)
    if lease.resource == Resource.CPU:
        extendable = placement_cpu_calendar(work).can_extend(lease.id, epoch(new_end))
        what = "cores or memory"
    else:
        waiting = queued(work, q.gpu_model)
        cal = placement_calendar(work, q.gpu_model, holding=lease.id)
        hold_for_queue_head(work, cal, q.gpu_model, Plan(lease.plan), waiting)
        extendable, what = cal.can_extend(lease.id, epoch(new_end)), "GPUs"
    if not extendable:
        raise NoCapacity(
            f"the {what} of lease {lease_id} are booked by someone else before "
            f"{new_end.isoformat()}; it cannot be extended that far",
            earliest_start=None,
        )
    lease.quote = make_quote(quote_entry(q), units, q.start, epoch(new_end), q.memory_gib).to_dict()
    lease.ends_at = new_end
    set_alloc_end(lease, new_end)
    record_event(
        work,
        lease,
        actor=actor.name,
        action="lease.extended",
        reason=f"extended from {old_end.isoformat()} to {new_end.isoformat()}",
        from_state=lease.state,
        to_state=lease.state,
        data={"from": old_end.isoformat(), "to": new_end.isoformat()},
    )
    work.after_commit(LeasesChanged((lease.id,)))
    return lease


def cancel(work: Work, *, actor: Actor, lease_id: int) -> Lease:
    """Cancel before it starts: the GPUs are freed; a reserved window may carry a late-cancellation fee."""
    require(actor, Permission.CHANGE_LEASE)
    lease = get_lease(work, actor=actor, lease_id=lease_id)
    _check(lease, LeaseAction.CANCEL)
    held = lease.state == LeaseState.SUSPENDED.value
    release(lease)
    reason = "cancelled by " + actor.role
    # A lease on compliance hold could not be used: cancelling it carries no fee.
    fee = Decimal("0.00") if held else billing.record_cancellation_fee(work, lease)
    if fee > 0:  # said where the customer sees the cancellation (its answer, events, notification), not only billed
        q = Quote.from_dict(lease.quote)
        reason += (
            f"; late-cancellation fee {fee} {q.currency} ({q.cancel_fee_fraction * 100:.0f}% of the window, "
            f"cancelled less than {q.cancel_free_hours} h before its start)"
        )
    transition(work, lease, LeaseState.CANCELLED, actor=actor.name, reason=reason)
    work.stop_runs(lease.id)
    return lease


_END_READS = select(billing.USAGE_OF_ONE, RUN_GOING)


def end(work: Work, *, actor: Actor, lease_id: int) -> Lease:
    """End a lease now. Pay-as-you-go plans are billed to this second; reserved windows are billed whole.

    A lease that has not started yet is cancelled instead. Its runs are stopped once this commits.
    """
    require(actor, Permission.CHANGE_LEASE)
    lease = get_lease(work, actor=actor, lease_id=lease_id)
    _check(lease, LeaseAction.END)
    if lease.activated_at is None:
        return cancel(work, actor=actor, lease_id=lease_id)
    # Its usage on record (read now, before the end's rows are staged: one batch of inserts) and whether a run of it
    # may still be going, in one round trip.
    total, going = work.session.execute(_END_READS, {"lease_id": lease.id}).one()
    billing.keep_billed(work, lease.id, total)
    at = work.now if lease.ends_at is None else min(work.now, lease.ends_at)
    finish(
        work, lease, at=at, actor=actor.name, target=LeaseState.ENDED, reason=f"ended by {actor.role}", runs=bool(going)
    )
    # The changes to the lease and what it holds, written directly (store/direct.py) when nothing else changed.
    session = work.session
    mine = (lease, *holds(lease))
    dirty = session.dirty
    if not session.new and not session.deleted and dirty.issubset(mine):
        direct.update_now(session, [x for x in mine if x in dirty])
    return lease


def preempt_by_operator(work: Work, *, actor: Actor, lease_id: int) -> Lease:
    """Give an interruptible lease its notice: its GPUs are taken back when the notice period ends."""
    require(actor, Permission.PREEMPT_LEASE)
    lease = get_lease(work, actor=actor, lease_id=lease_id)
    _check(lease, LeaseAction.PREEMPT)
    notice = Quote.from_dict(lease.quote).preemption_notice_s
    preempt(work, lease, at=work.now + timedelta(seconds=notice), actor=actor.name, reason="preempted by the operator")
    return lease


# --------------------------------------------------------------------------------------------- CPU leases


def _cpu_shape(req: LeaseRequest) -> LeaseRequest:
    """A CPU request within bounds, its model (if any) by its catalogue name; no GPU fields beside it."""
    if req.gpu_model or req.gpu_count:
        raise InvalidRequest("give either gpu_model and gpu_count, or cpu_cores (a CPU lease), not both")
    assert req.cpu_cores is not None
    limits.whole(req.cpu_cores, what="cpu_cores", low=1, high=limits.CPU_CORES_MAX)
    if req.memory_gib is not None:
        limits.whole(req.memory_gib, what="memory_gib", low=1, high=limits.MEMORY_GIB_MAX)
    model = None
    if req.cpu_model is not None:
        try:
            model = cpu_model(limits.required_text(req.cpu_model, what="cpu_model", max_len=limits.MODEL_NAME_MAX)).name
        except UnknownCpuModel as e:
            raise InvalidRequest(str(e)) from None
    return replace(req, cpu_model=model)


def _cpu_request(work: Work, req: LeaseRequest, start: int, end: int | None) -> CpuRequest:
    assert req.cpu_cores is not None
    return CpuRequest(req.cpu_cores, start, end, req.memory_gib, req.cpu_model, work.settings.cpu_leases_on_gpu_nodes)


def _node_model(cal: CpuCalendar, placement: CpuPlacement) -> str:
    return next(v.cpu_model for v in cal.nodes() if v.id == placement.node_id)


def _create_cpu_lease(
    work: Work, *, actor: Actor, customer: CustomerTerms, request: LeaseRequest, plan: Plan, window: Window
) -> Booked:
    """Place cores and memory on one node (best fit), price them by the model they land on, and book, through the
    same checks, states and queue as a GPU lease."""
    w = window
    if w.asap and plan is Plan.RESERVED:
        raise InvalidRequest("a reserved lease books a fixed window; give start and end")
    cal = placement_cpu_calendar(work)  # CPU placements serialised from here to the commit
    hold_for_cpu_queue_head(work, cal, plan)  # not queued yet: it may only backfill around the head's start
    start_s, end_s = epoch(w.start), None if w.end is None else epoch(w.end)
    creq = _cpu_request(work, request, start_s, end_s)
    placement: CpuPlacement | None = None
    room: CpuRoom | None = None
    try:
        placement = cal.place(creq)
    except Unplaceable as e:
        if e.code == "no_capacity" and not w.asap and plan is not Plan.INTERRUPTIBLE:
            # As a GPU request: interruptible CPU leases will be given notice (after the checks below) to make room.
            room = plan_cpu_room(work, cal, creq, keep_length=plan is not Plan.RESERVED)
        if room is not None:
            placement, start_s, end_s = room.placement, room.start, room.end
        else:
            found = cal.earliest_placement(creq, start_s) if w.asap and e.code == "no_capacity" else None
            if found is None:
                earliest = None if e.earliest_start is None else from_epoch(e.earliest_start).isoformat()
                raise NoCapacity(e.message, earliest_start=earliest) from None
            model_of = _node_model(cal, found[1])  # queued: priced (and held to) the model it would start on
            request = replace(request, cpu_model=request.cpu_model or model_of)
    if placement is not None:
        request = replace(request, cpu_model=_node_model(cal, placement), memory_gib=placement.memory_gib)
    elif request.memory_gib is None:
        request = replace(request, memory_gib=found[1].memory_gib if found else None)
    assert request.cpu_model is not None and request.cpu_cores is not None
    try:
        entry = price_entry(work.session, request.cpu_model, plan)
    except PricingError as e:
        raise InvalidRequest(str(e)) from None
    if entry.resource is not Resource.CPU:
        raise InvalidRequest(f"{request.cpu_model} is not priced as a CPU model")
    cores = request.cpu_cores
    budgets.admit(work, customer=customer, entry=entry, gpu_count=cores, start=w.start, end=w.end)
    findings = check_booking(
        work, customer, model=request.cpu_model, gpu_count=cores, start=w.start, end=w.end, cpu=True
    )
    if findings.block:
        return _pending_review(
            work, actor=actor, customer=customer, request=request, plan=plan, entry=entry, window=w, findings=findings
        )
    if placement is None:
        booked = _join_queue(
            work, actor=actor, customer_id=customer.id, request=request, plan=plan, entry=entry, window=w
        )
    else:
        preempted: list[int] = []
        if room is not None:
            give_notice(work, room.victims, room.start, reason=f"capacity needed by a {plan.value} lease", cal=cal)
            preempted = [v.id for v in room.victims]
        booked = Booked(
            _book_cpu(
                work,
                actor=actor,
                customer_id=customer.id,
                entry=entry,
                plan=plan,
                placement=placement,
                start_s=start_s,
                end_s=end_s,
                preempted=preempted,
            ),
            preempted,
        )
    if findings.compute is not None:
        report(work, customer, booked.lease, findings)
    return booked


def _book_cpu(
    work: Work,
    *,
    actor: Actor,
    customer_id: int,
    entry: PriceEntry,
    plan: Plan,
    placement: CpuPlacement,
    start_s: int,
    end_s: int | None,
    preempted: list[int],
) -> Lease:
    return _book_placed(
        work,
        actor=actor,
        customer_id=customer_id,
        plan=plan,
        quote=_quote(entry, len(placement.cores), start_s, end_s, placement.memory_gib),
        count=len(placement.cores),
        start_s=start_s,
        end_s=end_s,
        hold=lambda lease, start, end: allocate_cpu(work, lease, placement, start=start, end=end),
        preempted=preempted,
    )


def _cpu_where(
    work: Work, cal: CpuCalendar, req: LeaseRequest, w: Window
) -> tuple[CpuPlacement | None, int | None, str]:
    """Where the request would be placed now (or None), the earliest start if not, and why not."""
    start_s, end_s = epoch(w.start), None if w.end is None else epoch(w.end)
    creq = _cpu_request(work, req, start_s, end_s)
    try:
        return cal.place(creq), start_s, ""
    except Unplaceable as e:
        return None, e.earliest_start, e.message


def _cpu_availability(work: Work, req: LeaseRequest) -> Availability:
    w = resolve_window(req, work.now)
    cal = load_cpu_calendar(work)
    placement, earliest, reason = _cpu_where(work, cal, req, w)
    model = req.cpu_model
    found = placement
    if found is None and earliest is not None:
        later = cal.earliest_placement(
            _cpu_request(work, req, epoch(w.start), None if w.end is None else epoch(w.end)), epoch(w.start)
        )
        found = None if later is None else later[1]
    if found is not None:
        model = _node_model(cal, found)
    memory = req.memory_gib if found is None else found.memory_gib
    quotes: dict[str, Quote] = {}
    if model is not None:
        book = price_book(work.session)
        for plan in Plan:
            try:
                quotes[plan.value] = make_quote(
                    book.entry(model, plan),
                    req.cpu_cores or 0,
                    epoch(w.start),
                    None if w.end is None else epoch(w.end),
                    memory or 0,
                )
            except PricingError:
                continue
    return Availability(
        "",
        0,
        w.start,
        w.end,
        placement is not None,
        w.start if placement is not None else (None if earliest is None else from_epoch(earliest)),
        None if placement is not None else reason,
        quotes,
        model,
        req.cpu_cores,
        memory,
    )


def _cpu_quote(work: Work, req: LeaseRequest) -> Quote:
    """A CPU request's price: by its model, or by the model it would be placed on now."""
    plan = _plan(req.plan)
    w = resolve_window(req, work.now)
    model, memory = req.cpu_model, req.memory_gib
    if model is None or memory is None:
        cal = load_cpu_calendar(work)
        placement, _, reason = _cpu_where(work, cal, req, w)
        if placement is None:
            raise NoCapacity(reason, earliest_start=None)
        model, memory = model or _node_model(cal, placement), memory or placement.memory_gib
    try:
        entry = price_entry(work.session, model, plan)
    except PricingError as e:
        raise InvalidRequest(str(e)) from None
    assert req.cpu_cores is not None
    return _quote(entry, req.cpu_cores, epoch(w.start), None if w.end is None else epoch(w.end), memory)
