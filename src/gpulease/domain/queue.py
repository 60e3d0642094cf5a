"""Waiting requests, their order, EASY backfill, and which interruptible leases to preempt.

Order is kept per GPU model (a request for T4s never waits behind one for H100s): within a model the
queue is served by plan priority, then submission time, then id. In backfill mode the first request of a
model that cannot start now (the head) gets a reservation at its earliest start (the shadow time); a
later request of that model starts now only if it fits next to that reservation, so it cannot delay
the head. Like Slurm's backfill, this needs durations: an open-ended request is treated as running
forever, so it only backfills onto GPUs the head does not need at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import combinations

from sortedcontainers import SortedList

from gpulease.domain.inventory import MAX_GPUS_PER_NODE
from gpulease.domain.leases import PLAN_PRIORITY, Plan
from gpulease.domain.placement import (
    OPEN_END,
    CapacityCalendar,
    Placement,
    PlacementRequest,
    Unplaceable,
)

_SHADOW_LEASE = -1  # the head's temporary reservation inside one schedule() pass
_EXACT_PREEMPTION_LIMIT = 12  # candidate leases on one node searched exhaustively (2**12 subsets)


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
        return (-PLAN_PRIORITY[self.plan], self.submitted_at, self.id)

    def window(self, start: int) -> PlacementRequest:
        end = None if self.duration is None else start + self.duration
        return PlacementRequest(self.gpu_model, self.gpu_count, start, end)


class WaitingQueue:
    """Requests waiting for capacity, kept in service order."""

    def __init__(self, requests: Iterable[WaitingRequest] = ()) -> None:
        self._by_id: dict[int, WaitingRequest] = {}
        self._order: SortedList = SortedList()  # (order_key, id)
        self._deadlines: SortedList = SortedList()  # (expires_at, id)
        self._models: Counter[str] = Counter()
        for r in requests:
            self.push(r)

    def push(self, req: WaitingRequest) -> None:
        if req.id in self._by_id:
            raise ValueError(f"request {req.id} is already queued")
        self._by_id[req.id] = req
        self._order.add(req.order_key)
        if req.max_wait is not None:
            self._deadlines.add((req.submitted_at + req.max_wait, req.id))
        self._models[req.gpu_model] += 1

    def remove(self, request_id: int) -> WaitingRequest:
        req = self._by_id.pop(request_id)
        self._order.remove(req.order_key)
        if req.max_wait is not None:
            self._deadlines.remove((req.submitted_at + req.max_wait, req.id))
        self._models[req.gpu_model] -= 1
        if not self._models[req.gpu_model]:
            del self._models[req.gpu_model]
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
        return [by_id[key[2]] for key in self._order]

    def walk(self) -> Iterator[WaitingRequest]:
        """Service order, lazily; the caller may remove the request it was just given."""
        order, by_id = self._order, self._by_id
        pos = 0
        while pos < len(order):
            key = order[pos]
            yield by_id[key[2]]
            if pos < len(order) and order[pos] == key:
                pos += 1

    def models(self) -> set[str]:
        return set(self._models)

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


def _dominated(failures: list[tuple[int, int]], k: int, d: int) -> bool:
    return any(k >= fk and d >= fd for fk, fd in failures)


def _add_failure(failures: list[tuple[int, int]], k: int, d: int) -> None:
    failures[:] = [(fk, fd) for fk, fd in failures if not (fk >= k and fd >= d)]
    failures.append((k, d))


def schedule(queue: WaitingQueue, calendar: CapacityCalendar, now: int, *, backfill: bool = True) -> Schedule:
    """Start what can start now; books each start into the calendar (lease id = request id).

    Started, expired and unplaceable (unknown model, too large) requests leave the queue. FIFO mode
    (backfill=False) starts requests of a model strictly in order and stops at the first that waits.
    """
    result = Schedule()
    result.expired = queue.pop_expired(now)
    if not len(queue):
        return result
    blocked: set[str] = set()  # models where nothing more can start this pass
    failures: dict[str, list[tuple[int, int]]] = {}
    free: dict[str, tuple[int, int, int]] = {}
    models = queue.models()
    shadows: list[int] = []
    heads: dict[str, HeadReservation | None] = {}
    head_ids: dict[str, int] = {}
    try:
        for req in queue.walk():
            model = req.gpu_model
            if model in blocked:
                if len(blocked) == len(models):
                    break
                continue
            k = req.gpu_count
            d = OPEN_END if req.duration is None else req.duration
            fails = failures.setdefault(model, [])
            if _dominated(fails, k, d):
                continue
            if model not in free:
                free[model] = calendar.free_now(model, now)
            total, most, _idle = free[model]
            has_head = model in heads
            if total == 0 and (has_head or not backfill):
                blocked.add(model)  # nothing of this model is free now: nobody else can start
                continue
            fits_now = total >= k and (k > MAX_GPUS_PER_NODE or most >= k)
            try:
                calendar.validate(req.window(now))
                if not fits_now:
                    raise Unplaceable("no_capacity", "no GPUs free now")
                if has_head and heads[model] is None:
                    # First backfill candidate of this model: only now is the head's shadow needed.
                    head = queue.get(head_ids[model])
                    found = calendar.earliest_placement(head.window(now), now + 1)
                    if found is None:  # no finite start known: let nothing jump ahead of it
                        blocked.add(model)
                        continue
                    start, where = found
                    lease = _SHADOW_LEASE - len(shadows)
                    end = None if head.duration is None else start + head.duration
                    calendar.book(lease, where.gpus, start, end)
                    shadows.append(lease)
                    heads[model] = result.heads[model] = HeadReservation(head.id, start, where)
                placement = calendar.place(req.window(now), explain=False)
            except Unplaceable as exc:
                if exc.code != "no_capacity":
                    queue.remove(req.id)
                    result.unplaceable.append((req, exc))
                    continue
                _add_failure(fails, k, d)
                if not backfill:
                    blocked.add(model)
                elif not has_head:
                    heads[model] = None  # its shadow reservation is worked out when first needed
                    head_ids[model] = req.id
                    if total == 0:
                        blocked.add(model)
                continue
            calendar.book(req.id, placement.gpus, now, None if req.duration is None else now + d)
            queue.remove(req.id)
            result.append(StartDecision(req.id, placement, now))
            del free[model]
    finally:
        for lease in shadows:
            calendar.release(lease)
    return result


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
