"""Waiting requests, their order, EASY backfill, and which interruptible leases to preempt.

Order is kept per GPU model (a request for T4s never waits behind one for H100s): within a model the
queue is served by plan priority, then submission time, then id (`service_order`, `queue_head`). In
backfill mode the first request of a model that cannot start now (the head) gets a reservation at its
earliest start (the shadow time); a later request of that model starts now only if it fits next to that
reservation, so it cannot delay the head. Like Slurm's backfill, this needs durations: an open-ended
request is treated as running forever, so it only backfills onto GPUs the head does not need at all.

A pass never walks the backlog. Waiting requests are kept in sub-queues by shape, (model, GPU count),
and within a shape by duration class (durations in [2^(c-1), 2^c), and open-ended ones apart), each in
service order. For one shape the calendar says how long a window it can give right now next to the
head's reservation (`CapacityCalendar.longest_fits`, with the reservation passed as a `Hold` rather than
booked); a request of that shape fits iff its duration is at most that. So the shape's candidate is the
first request of each class whose every member fits, or the first one that fits within the one class
straddling the bound, and the pass starts candidates in service order, re-checking each with a real
placement (capacity only shrinks during a pass, so a candidate found earlier is at worst optimistic).
A busy model's backlog is served by looking at a few requests per shape, however long the queue; a
pass starts exactly what walking every waiting request in order would start (property-tested), as
long as the bounds below are not reached.

Bounds, as Slurm bounds its backfill pass (`bf_max_job_test`: jobs tested per pass, 500 by default), so
that one pass costs a bounded amount whatever the backlog: after `max_tests` (500) placement attempts
that start nothing, a model's backfill ends for that pass; within the class straddling a shape's bound a
pass looks `class_scan` (2,000) requests deep at most, so one that would fit further down waits until it
moves up or the bound moves. Both are keyword arguments of `schedule`. In the Philly replays
(docs/benchmarks.md) a pass fails at most 8 placements, and the class bound is reached 6 times in
153,897 passes at 64 nodes (never at 80) without changing a single start.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Protocol, TypeVar

from sortedcontainers import SortedList

from gpulease.domain.cpu_placement import CpuCalendar, CpuRequest
from gpulease.domain.leases import PLAN_PRIORITY, Plan
from gpulease.domain.placement import (
    OPEN_END,
    CapacityCalendar,
    Hold,
    Placement,
    PlacementRequest,
    Unplaceable,
)

_EXACT_PREEMPTION_LIMIT = 12  # candidate leases on one node searched exhaustively (2**12 subsets)
BACKFILL_TESTS = 500  # placement attempts that start nothing, per model and pass (cf. Slurm bf_max_job_test)
CLASS_SCAN = 2_000  # requests looked at within the duration class that straddles a shape's bound
_OPEN_CLASS = 64  # duration class of open-ended requests; finite ones are d.bit_length(), 1..63
_BAD_CLASS = 0  # a duration <= 0: refused as a bad request when a pass sees it


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


S = TypeVar("S", bound=_Ordered)
T = TypeVar("T")


def service_order(plan: Plan, submitted_at: S, request_id: int) -> tuple[int, S, int]:
    """The queue's order as a sort key: higher plan priority first, then earlier submission, then lower id."""
    return (-PLAN_PRIORITY[plan], submitted_at, request_id)


def queue_head(waiting: Iterable[T], key: Callable[[T], tuple[Plan, S, int]]) -> T | None:
    """The request the queue serves first (None if there is none); `key` gives (plan, submitted at, id)."""
    best: T | None = None
    best_key: tuple[int, S, int] | None = None
    for item in waiting:
        k = service_order(*key(item))
        if best_key is None or k < best_key:
            best, best_key = item, k
    return best


@dataclass(slots=True)
class WaitingRequest:
    id: int
    gpu_model: str
    gpu_count: int
    plan: Plan
    duration: int | None  # seconds; None = open-ended (treated as "runs forever" by backfill)
    submitted_at: int
    max_wait: int | None = None  # seconds after submission before the request expires

    @property
    def order_key(self) -> tuple[int, int, int]:
        return service_order(self.plan, self.submitted_at, self.id)

    def window(self, start: int) -> PlacementRequest:
        end = None if self.duration is None else start + self.duration
        return PlacementRequest(self.gpu_model, self.gpu_count, start, end)


def _duration_class(duration: int | None) -> int:
    if duration is None:
        return _OPEN_CLASS
    return duration.bit_length() if duration > 0 else _BAD_CLASS


class _Shape:
    """The waiting requests of one model and GPU count: per duration class, their order keys in order."""

    __slots__ = ("_first", "classes", "durations")

    def __init__(self) -> None:
        self.classes: dict[int, SortedList] = {}
        self.durations: dict[int, int | None] = {}  # request id -> duration
        self._first: tuple[int, int, int] | None = None  # the first of all, while known

    def add(self, key: tuple[int, int, int], duration: int | None) -> None:
        self.classes.setdefault(_duration_class(duration), SortedList()).add(key)
        self.durations[key[2]] = duration
        if self._first is not None and key < self._first:
            self._first = key

    def remove(self, key: tuple[int, int, int], duration: int | None) -> None:
        cls = _duration_class(duration)
        keys = self.classes[cls]
        keys.remove(key)
        if not keys:
            del self.classes[cls]
        del self.durations[key[2]]
        if key == self._first:
            self._first = None

    def candidate(self, longest: int, scan: int, skip: Collection[int] = ()) -> tuple[int, int, int] | None:
        """The first request (in service order, not in `skip`) whose duration is at most `longest`, as far
        as the class straddling `longest` is looked at (`scan` requests)."""
        if longest >= OPEN_END:  # anything fits: the first of all, unless that is to be skipped
            if self._first is None:
                self._first = min((keys[0] for cls, keys in self.classes.items() if cls != _BAD_CLASS), default=None)
            if self._first is None or self._first[2] not in skip:
                return self._first
        best: tuple[int, int, int] | None = None
        for cls, keys in self.classes.items():
            if cls == _BAD_CLASS:
                continue
            if cls == _OPEN_CLASS:
                if longest < OPEN_END:
                    continue
                every = True
            elif 1 << (cls - 1) > longest:
                continue
            else:
                every = (1 << cls) - 1 <= longest  # every member fits, else the class straddles the bound
            durations = self.durations
            key = next(
                (
                    k
                    for k in (keys if every else keys.islice(0, scan))
                    if k[2] not in skip and (every or ((d := durations[k[2]]) is not None and d <= longest))
                ),
                None,
            )
            if key is not None and (best is None or key < best):
                best = key
        return best


class WaitingQueue:
    """Requests waiting for capacity: per model in service order, and in sub-queues by shape."""

    def __init__(self, requests: Iterable[WaitingRequest] = ()) -> None:
        self._by_id: dict[int, WaitingRequest] = {}
        self._order: dict[str, SortedList] = {}  # model -> order keys
        self._shapes: dict[str, dict[int, _Shape]] = {}  # model -> GPU count -> shape
        self._deadlines: SortedList = SortedList()  # (expires_at, id)
        # model -> (calendar inventory, the GPU counts judged placeable in it)
        self._checked: dict[str, tuple[int, set[int]]] = {}
        for r in requests:
            self.push(r)

    def push(self, req: WaitingRequest) -> None:
        if req.id in self._by_id:
            raise ValueError(f"request {req.id} is already queued")
        self._by_id[req.id] = req
        key = req.order_key
        self._order.setdefault(req.gpu_model, SortedList()).add(key)
        shape = self._shapes.setdefault(req.gpu_model, {}).get(req.gpu_count)
        if shape is None:
            shape = self._shapes[req.gpu_model][req.gpu_count] = _Shape()
        shape.add(key, req.duration)
        if req.max_wait is not None:
            self._deadlines.add((req.submitted_at + req.max_wait, req.id))

    def remove(self, request_id: int) -> WaitingRequest:
        req = self._by_id.pop(request_id)
        key, model = req.order_key, req.gpu_model
        order = self._order[model]
        order.remove(key)
        if not order:
            del self._order[model]
        shapes = self._shapes[model]
        shape = shapes[req.gpu_count]
        shape.remove(key, req.duration)
        if not shape.classes:
            del shapes[req.gpu_count]
            if not shapes:
                del self._shapes[model]
        if req.max_wait is not None:
            self._deadlines.remove((req.submitted_at + req.max_wait, req.id))
        return req

    def get(self, request_id: int) -> WaitingRequest:
        return self._by_id[request_id]

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._by_id

    def __iter__(self) -> Iterator[WaitingRequest]:
        return iter(self.ordered())

    def ordered(self) -> list[WaitingRequest]:
        """Service order: plan priority (highest first), then submission time, then id."""
        by_id = self._by_id
        return [by_id[key[2]] for key in heapq.merge(*self._order.values())]

    def head(self, gpu_model: str) -> WaitingRequest | None:
        """The model's request served first."""
        order = self._order.get(gpu_model)
        return self._by_id[order[0][2]] if order else None

    def models(self) -> set[str]:
        return set(self._order)

    def shapes(self, gpu_model: str) -> dict[int, _Shape]:
        return self._shapes.get(gpu_model, {})

    def pop_expired(self, now: int) -> list[WaitingRequest]:
        """Remove and return the requests whose max_wait has passed by `now`."""
        out: list[WaitingRequest] = []
        while self._deadlines and self._deadlines[0][0] < now:
            out.append(self.remove(self._deadlines[0][1]))
        return out


@dataclass(frozen=True, slots=True)
class StartDecision:
    request_id: int
    placement: Placement
    start: int


@dataclass(frozen=True, slots=True)
class HeadReservation:
    """Where and when the head of a model's queue will start at the latest, as computed this pass."""

    request_id: int
    start: int
    placement: Placement


class Schedule(list[StartDecision]):
    """The requests started by one schedule() pass, plus what else the pass found."""

    def __init__(self) -> None:
        super().__init__()
        self.expired: list[WaitingRequest] = []
        self.unplaceable: list[tuple[WaitingRequest, Unplaceable]] = []
        self.heads: dict[str, HeadReservation] = {}


def schedule(
    queue: WaitingQueue,
    calendar: CapacityCalendar,
    now: int,
    *,
    backfill: bool = True,
    max_tests: int = BACKFILL_TESTS,
    class_scan: int = CLASS_SCAN,
) -> Schedule:
    """Start what can start now; books each start into the calendar (lease id = request id).

    Started, expired and unplaceable (unknown model, too large) requests leave the queue. FIFO mode
    (backfill=False) starts requests of a model strictly in order and stops at the first that waits.
    """
    result = Schedule()
    result.expired = queue.pop_expired(now)
    for model in sorted(queue.models()):
        _Pass(queue, calendar, now, result, model).run(backfill, max_tests, class_scan)
    return result


class _Pass:
    """One model's part of a schedule() pass."""

    def __init__(self, queue: WaitingQueue, calendar: CapacityCalendar, now: int, result: Schedule, model: str) -> None:
        self.queue, self.calendar, self.now, self.result, self.model = queue, calendar, now, result, model
        self.total = 0  # free GPUs of the model at `now`
        self._fits: tuple[int, list[int]] | None = None  # (calendar state, longest_fits) last asked

    def run(self, backfill: bool, max_tests: int, class_scan: int) -> None:
        self._refuse_hopeless()
        if not self._serve_in_order() or not backfill:
            return
        head = self.queue.head(self.model)
        if head is not None and any(k <= self.total for k in self.queue.shapes(self.model)):
            self._backfill(head, max_tests, class_scan)

    def _refuse_hopeless(self) -> None:
        """Requests no amount of waiting would place (unknown model, too large, bad window) leave now."""
        queue, calendar, now = self.queue, self.calendar, self.now
        checked = queue._checked.get(self.model)
        if checked is None or checked[0] != calendar.inventory:  # shapes are judged once per inventory
            checked = queue._checked[self.model] = (calendar.inventory, set())
        for k, shape in list(queue.shapes(self.model).items()):
            if k in checked[1] and _BAD_CLASS not in shape.classes:
                continue
            try:
                calendar.validate(PlacementRequest(self.model, k, now, now + 1))
                checked[1].add(k)
                hopeless = list(shape.classes.get(_BAD_CLASS, ()))
            except Unplaceable:
                hopeless = [key for keys in shape.classes.values() for key in keys]
            for key in hopeless:
                req = queue.get(key[2])
                try:
                    calendar.validate(req.window(now))
                except Unplaceable as exc:
                    queue.remove(req.id)
                    self.result.unplaceable.append((req, exc))

    def _serve_in_order(self) -> bool:
        """Start requests in service order while they fit; True if some request is left waiting."""
        queue, calendar = self.queue, self.calendar
        self.total = calendar.free_total(self.model, self.now)
        while (head := queue.head(self.model)) is not None:
            if head.gpu_count > self.total:
                return True
            try:
                placement = calendar.place(head.window(self.now), explain=False)
            except Unplaceable:
                return True
            self._start(head, placement)
        return False

    def _start(self, req: WaitingRequest, placement: Placement) -> None:
        end = None if req.duration is None else self.now + req.duration
        self.calendar.book(req.id, placement.gpus, self.now, end)
        self.queue.remove(req.id)
        self.result.append(StartDecision(req.id, placement, self.now))
        self.total -= req.gpu_count

    def _longest(self, k: int, hold: Hold) -> int:
        """The longest window k GPUs can have from now next to the head's reservation, as things are."""
        calendar = self.calendar
        if self._fits is None or self._fits[0] != calendar.state:
            self._fits = calendar.state, calendar.longest_fits(self.model, self.now, hold)
        single = self._fits[1]
        return single[k - 1] if k <= len(single) else calendar.longest_fit(self.model, k, self.now, hold)

    def _backfill(self, head: WaitingRequest, max_tests: int, class_scan: int) -> None:
        """Start later requests, in service order, wherever they do not delay the head's reservation.

        Each shape's bound starts optimistic (anything fits) and becomes exact after a placement fails;
        capacity only shrinks during the pass, so a request the bound rules out cannot fit later in it.
        The reservation is not booked: placements are told to keep off it (a `Hold`), which costs
        nothing for requests that end before it starts.
        """
        queue, calendar, now, model = self.queue, self.calendar, self.now, self.model
        found = calendar.earliest_placement(head.window(now), now + 1)
        if found is None:  # no finite start known: let nothing jump ahead of it
            return
        start, where = found
        self.result.heads[model] = HeadReservation(head.id, start, where)
        hold = Hold(where.gpus, start, OPEN_END if head.duration is None else start + head.duration)
        shapes = queue.shapes(model)
        bounds: dict[int, int] = {}  # GPU count -> longest window known to fit (absent: not asked yet)
        # The head does not fit now, so nothing of its shape as long as it does.
        bounds[head.gpu_count] = OPEN_END - 1 if head.duration is None else head.duration - 1
        heap: list[tuple[tuple[int, int, int], int]] = []
        passed = {head.id}  # requests this pass will not try (again)

        def push(k: int) -> None:
            shape = shapes.get(k)
            if shape is None or k > self.total:
                return
            key = shape.candidate(bounds.get(k, OPEN_END), class_scan, passed)
            if key is not None:
                heapq.heappush(heap, (key, k))

        for k in list(shapes):
            push(k)
        tests = 0
        while heap:
            key, k = heapq.heappop(heap)
            req = queue.get(key[2])
            try:
                placement = calendar.place(req.window(now), explain=False, hold=hold)
            except Unplaceable:
                passed.add(req.id)
                tests += 1
                if tests >= max_tests:
                    return
                bounds[k] = self._longest(k, hold)
                push(k)
                continue
            self._start(req, placement)
            push(k)


def _gpu_seconds_lost(calendar: CapacityCalendar, lease_id: int, started: int, now: int) -> int:
    return len(calendar.bookings_of(lease_id)) * max(0, now - started)


def choose_preemptions(
    req: PlacementRequest,
    calendar: CapacityCalendar,
    interruptible: Mapping[int, int],
    now: int,
) -> list[int] | None:
    """Fewest interruptible leases (then fewest GPU-seconds of work lost) whose end lets `req` be placed.

    `interruptible` maps lease id -> the time it started (younger leases lose less work). Returns []
    if the request fits already, None if preempting every interruptible lease would not be enough.
    Single-node requests get an exact search per node; larger ones a minimal (irreducible) set.
    """
    try:
        calendar.place(req)
        return []
    except Unplaceable as exc:
        if exc.code != "no_capacity":
            return None
    everything = frozenset(interruptible)
    try:
        widest = calendar.place(req, ignore_leases=everything)
    except Unplaceable:
        return None

    def cost(leases: Iterable[int]) -> tuple[int, int, tuple[int, ...]]:
        ids = tuple(sorted(leases))
        lost = sum(_gpu_seconds_lost(calendar, lid, interruptible[lid], now) for lid in ids)
        return len(ids), lost, ids

    if len(widest.node_ids) == 1:
        best: tuple[int, int, tuple[int, ...]] | None = None
        for view in calendar.nodes():
            if view.gpu_model != req.gpu_model or not view.schedulable or view.gpu_count < req.gpu_count:
                continue
            found = _cheapest_on_node(
                calendar.occupancy(view.id, req.start, req.end), req.gpu_count, interruptible, cost
            )
            if found is not None and (best is None or found < best):
                best = found
        if best is not None:
            return list(best[2])
    # Multi-node (or no exact answer): start from the leases under the widest placement, then drop
    # the costliest ones while the request still fits.
    chosen = set(calendar.leases_on(widest.gpus, req.start, req.end)) & everything
    for lid in sorted(chosen, key=lambda x: cost([x])[1], reverse=True):
        try:
            calendar.place(req, ignore_leases=frozenset(chosen - {lid}))
            chosen.discard(lid)
        except Unplaceable:
            pass
    return sorted(chosen)


CPU_EXACT_VICTIMS = 8  # up to this many interruptible leases on a node: every subset is tried (at most 2^8)


def choose_cpu_preemptions(
    req: CpuRequest,
    calendar: CpuCalendar,
    interruptible: Mapping[int, int],
    now: int,
) -> list[int] | None:
    """`choose_preemptions` for the CPU calendar, by the same rule: fewest interruptible leases, then fewest
    core-seconds of work lost, whose end lets `req` be placed (a CPU lease is on one node, so per node).

    `interruptible` maps lease id -> the time it started. Returns [] if the request fits already, None if
    preempting every interruptible lease would not be enough. On a node with up to `CPU_EXACT_VICTIMS` candidates
    every subset is tried (smallest first); with more, a minimal (irreducible) set: all of them, then the costliest
    dropped while the request still fits. Each check is a real placement with the leases released inside a
    speculation (undone), so sockets, contiguity, memory and the GPUs' share all count as in a booking.
    """
    try:
        calendar.place(req)
        return []
    except Unplaceable as exc:
        if exc.code != "no_capacity":
            return None
    end = OPEN_END if req.end is None else req.end
    by_node: dict[int, list[int]] = {}
    for lid in sorted(interruptible):
        b = calendar.booking_of(lid)
        if b is not None and b.start < end and req.start < b.end:
            by_node.setdefault(b.node_id, []).append(lid)

    def lost(lid: int) -> int:
        b = calendar.booking_of(lid)
        return 0 if b is None else len(b.cores) * max(0, now - interruptible[lid])

    def cost(ids: Iterable[int]) -> tuple[int, int, tuple[int, ...]]:
        chosen = tuple(sorted(ids))
        return len(chosen), sum(lost(lid) for lid in chosen), chosen

    def fits_without(ids: Iterable[int]) -> bool:
        # Only this node's bookings change and nothing fitted before, so a fit found here is on this node.
        with calendar.speculate():
            for lid in ids:
                calendar.release(lid)
            try:
                calendar.place(req)
                return True
            except Unplaceable:
                return False

    best: tuple[int, int, tuple[int, ...]] | None = None
    for _node, ids in sorted(by_node.items()):
        if not fits_without(ids):
            continue
        found: tuple[int, int, tuple[int, ...]] | None = None
        if len(ids) <= CPU_EXACT_VICTIMS:
            for k in range(1, len(ids) + 1):  # the whole set fits, so some k does
                fitting = [cost(c) for c in combinations(ids, k) if fits_without(c)]
                if fitting:
                    found = min(fitting)
                    break
        else:
            kept = set(ids)
            for lid in sorted(ids, key=lost, reverse=True):
                if fits_without(kept - {lid}):
                    kept.discard(lid)
            found = cost(kept)
        if found is not None and (best is None or found < best):
            best = found
    return None if best is None else list(best[2])


def _cheapest_on_node(
    occupancy: list[frozenset[int]],
    k: int,
    interruptible: Mapping[int, int],
    cost: Callable[[Iterable[int]], tuple[int, int, tuple[int, ...]]],
) -> tuple[int, int, tuple[int, ...]] | None:
    free = sum(1 for held in occupancy if not held)
    need = k - free
    if need <= 0:
        return cost(())
    freeable = [held for held in occupancy if held and held <= interruptible.keys()]
    if len(freeable) < need:
        return None
    candidates = sorted(set().union(*freeable))
    if len(candidates) > _EXACT_PREEMPTION_LIMIT:
        # Too many to search: cheapest GPUs to clear first (fewest leases on them, then least work lost).
        chosen: set[int] = set()
        for held in sorted(freeable, key=lambda h: cost(h)[:2])[:need]:
            chosen |= held
        return cost(chosen)
    for size in range(1, len(candidates) + 1):
        options = [
            cost(combo)
            for combo in combinations(candidates, size)
            if sum(1 for held in freeable if held <= set(combo)) >= need
        ]
        if options:
            return min(options)
    return None
