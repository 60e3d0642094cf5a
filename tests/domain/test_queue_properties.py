"""Property tests for the queue pass: the sub-queue pass starts exactly what a plain in-order EASY walk
over the whole backlog starts, never delays the head, and keeps its sub-queues in step with the queue."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from hypothesis import example, given, note, settings
from hypothesis import strategies as st

from gpulease.domain.inventory import NodeState, NodeView
from gpulease.domain.leases import Plan
from gpulease.domain.placement import (
    CapacityCalendar,
    DoubleBooking,
    GpuRef,
    Placement,
    PlacementRequest,
    Unplaceable,
)
from gpulease.domain.queue import WaitingQueue, WaitingRequest, queue_head, schedule, service_order

A, B = "A100-80GB", "H100-80GB"


@dataclass(frozen=True)
class World:
    nodes: list[NodeView]
    bookings: list[tuple[int, list[GpuRef], int, int | None]]
    requests: list[WaitingRequest]
    now: int

    def calendar(self) -> CapacityCalendar:
        cal = CapacityCalendar(self.nodes)
        for lid, gpus, s, e in self.bookings:
            with contextlib.suppress(DoubleBooking):
                cal.book(lid, gpus, s, e)
        return cal

    def queue(self) -> WaitingQueue:
        return WaitingQueue(
            WaitingRequest(r.id, r.gpu_model, r.gpu_count, r.plan, r.duration, r.submitted_at, r.max_wait)
            for r in self.requests
        )


@st.composite
def worlds(draw: st.DrawFn) -> World:
    nodes = []
    for i in range(1, draw(st.integers(2, 5)) + 1):
        nodes.append(
            NodeView(
                i,
                f"n{i}",
                draw(st.sampled_from(["a", "b"])),
                "s",
                draw(st.sampled_from([A, A, A, B])),
                draw(st.sampled_from([2, 4, 8, 8])),
                draw(st.sampled_from([NodeState.AVAILABLE] * 4 + [NodeState.DRAINING])),
            )
        )
    bookings = []
    for lid in range(draw(st.integers(0, 12))):
        node = draw(st.sampled_from(nodes))
        idx = draw(st.lists(st.integers(0, node.gpu_count - 1), min_size=1, max_size=node.gpu_count, unique=True))
        s = draw(st.integers(0, 40))
        e = draw(st.one_of(st.none(), st.integers(s + 1, s + 60)))
        bookings.append((1000 + lid, [GpuRef(node.id, i) for i in idx], s, e))
    requests = []
    for rid in range(1, draw(st.integers(1, 14)) + 1):
        requests.append(
            WaitingRequest(
                rid,
                draw(st.sampled_from([A, A, A, B, "T4"])),
                draw(st.sampled_from([1, 1, 2, 3, 4, 8, 12, 16, 40, 0])),
                draw(st.sampled_from(list(Plan))),
                draw(st.one_of(st.none(), st.integers(1, 70), st.just(0))),
                draw(st.integers(0, 20)),
                draw(st.one_of(st.none(), st.integers(0, 30))),
            )
        )
    return World(nodes, bookings, requests, draw(st.integers(10, 30)))


def in_order_easy(
    queue: WaitingQueue, cal: CapacityCalendar, now: int, backfill: bool
) -> list[tuple[int, tuple[GpuRef, ...]]]:
    """The rule as stated, walked over every waiting request in service order (what the pass must equal)."""
    queue.pop_expired(now)
    started = []
    for model in sorted({r.gpu_model for r in queue.ordered()}):
        head = None
        hold = -999
        try:
            for r in [r for r in queue.ordered() if r.gpu_model == model]:
                try:
                    cal.validate(r.window(now))
                    placement = cal.place(r.window(now), explain=False)
                except Unplaceable as exc:
                    if exc.code != "no_capacity" or head is not None:
                        continue
                    head = r
                    if not backfill:
                        break
                    found = cal.earliest_placement(r.window(now), now + 1)
                    if found is None:
                        break
                    s, where = found
                    cal.book(hold, where.gpus, s, None if r.duration is None else s + r.duration)
                    continue
                cal.book(r.id, placement.gpus, now, None if r.duration is None else now + r.duration)
                started.append((r.id, placement.gpus))
        finally:
            cal.release(hold)
    return started


# A request of the head's own shape (12 GPUs, 1 s) that ends before the head's reservation starts.
SAME_SHAPE_AS_HEAD = World(
    nodes=[
        NodeView(1, "n1", "a", "s", A, 2),
        NodeView(2, "n2", "a", "s", A, 2),
        NodeView(3, "n3", "b", "s", A, 4),
        NodeView(4, "n4", "b", "s", A, 8),
    ],
    bookings=[(1000, [GpuRef(1, 0)], 0, None), (1001, [GpuRef(3, 0)], 11, 12)],
    requests=[WaitingRequest(1, A, 12, Plan.ON_DEMAND, 1, 0), WaitingRequest(2, A, 12, Plan.RESERVED, None, 0)]
    + [WaitingRequest(i, A, 1, Plan.ON_DEMAND, None, 0) for i in range(3, 11)],
    now=10,
)


@settings(max_examples=200, deadline=None)
@given(worlds(), st.booleans())
@example(SAME_SHAPE_AS_HEAD, True)
def test_the_sub_queue_pass_starts_what_the_in_order_walk_starts(world: World, backfill: bool) -> None:
    note(repr(world))
    expected = in_order_easy(world.queue(), world.calendar(), world.now, backfill)
    cal, queue = world.calendar(), world.queue()
    result = schedule(queue, cal, world.now, backfill=backfill, class_scan=10**6, max_tests=10**6)
    assert [(d.request_id, d.placement.gpus) for d in result] == expected
    # what left the queue: started, expired or hopeless; the rest is still there, sub-queues included
    gone = {d.request_id for d in result} | {r.id for r in result.expired} | {r.id for r, _ in result.unplaceable}
    assert {r.id for r in queue.ordered()} == {r.id for r in world.requests} - gone
    in_shapes = sorted(
        key
        for model in queue.models()
        for shape in queue.shapes(model).values()
        for keys in shape.classes.values()
        for key in keys
    )
    assert in_shapes == sorted(r.order_key for r in queue.ordered())
    for req, exc in result.unplaceable:
        assert exc.code in ("bad_request", "unknown_model", "too_large"), (req, exc.code)


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_backfill_never_delays_the_head(world: World) -> None:
    cal, queue = world.calendar(), world.queue()
    result = schedule(queue, cal, world.now)
    for model, reservation in result.heads.items():
        head = queue.get(reservation.request_id)
        assert queue.head(model) == head
        # With everything the pass started booked, the head still starts when its reservation said ...
        assert cal.earliest_start(head.window(world.now), world.now + 1) == reservation.start
        # ... which is as early as it could start after the requests served before it (the backfilled
        # ones, behind it in the queue, took nothing it needed).
        ahead = world.calendar()
        by_id = {r.id: r for r in world.requests}
        for d in result:
            r = by_id[d.request_id]
            if r.gpu_model == model and r.order_key < head.order_key:
                ahead.book(r.id, d.placement.gpus, world.now, None if r.duration is None else world.now + r.duration)
        assert ahead.earliest_start(head.window(world.now), world.now + 1) == reservation.start


@settings(max_examples=200, deadline=None)
@given(worlds(), st.lists(st.integers(0, 20), min_size=1, max_size=6))
def test_passes_over_time_keep_the_queue_and_calendar_consistent(world: World, steps: list[int]) -> None:
    """Several passes on one queue and calendar (so remembered answers are reused) start only what fits."""
    cal, queue = world.calendar(), world.queue()
    now = world.now
    for step in steps:
        now += step
        result = schedule(queue, cal, now)
        for d in result:
            booked = cal.bookings_of(d.request_id)
            assert {b.gpu for b in booked} == set(d.placement.gpus) and all(b.start == now for b in booked)
        reference = world.calendar()  # same bookings, no history: must agree on every head's start
        for lid in cal.lease_ids():
            if lid >= 1000:
                continue
            bs = cal.bookings_of(lid)
            reference.book(lid, [b.gpu for b in bs], bs[0].start, None if bs[0].end >= 2**62 else bs[0].end)
        for reservation in result.heads.values():
            head = queue.get(reservation.request_id)
            assert reference.earliest_start(head.window(now), now + 1) == reservation.start


def test_queue_head_is_priority_then_submission_then_id() -> None:
    rows = [("x", Plan.ON_DEMAND, 5, 3), ("y", Plan.RESERVED, 9, 7), ("z", Plan.RESERVED, 9, 2)]
    assert queue_head(rows, key=lambda r: (r[1], r[2], r[3])) == ("z", Plan.RESERVED, 9, 2)
    assert queue_head([], key=lambda r: (Plan.ON_DEMAND, 0, 0)) is None
    assert service_order(Plan.INTERRUPTIBLE, 0, 1) > service_order(Plan.ON_DEMAND, 50, 9)


def test_a_deep_backlog_is_served_without_walking_it() -> None:
    """10,000 long requests wait behind a blocked head; a short one at the back starts in one pass that
    looks at a handful of requests (a walk would place-test all 10,000)."""
    cal = CapacityCalendar([NodeView(i, f"n{i}", "c", "s", A, 8) for i in range(1, 5)])
    cal.book(1, [GpuRef(n, i) for n in range(1, 5) for i in range(8) if (n, i) != (4, 7)], 0, 1000)
    queue = WaitingQueue([WaitingRequest(2, A, 32, Plan.ON_DEMAND, 500, 0)])  # the head: all 32 GPUs
    for rid in range(3, 10_003):
        queue.push(WaitingRequest(rid, A, 1, Plan.ON_DEMAND, 5000, rid))  # would run past the head's start
    queue.push(WaitingRequest(20_000, A, 1, Plan.ON_DEMAND, 100, 20_000))  # ends before it
    calls = 0
    place = cal.place

    def counting_place(req: PlacementRequest, **kw: Any) -> Placement:
        nonlocal calls
        calls += 1
        return place(req, **kw)

    cal.place = counting_place  # type: ignore[method-assign]
    result = schedule(queue, cal, 10)
    assert [d.request_id for d in result] == [20_000]
    assert result.heads[A].start == 1000
    assert calls <= 5
