"""Property tests: whatever sequence of operations, no GPU is ever booked twice at the same time."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gpulease.domain.inventory import NodeState, NodeView
from gpulease.domain.placement import (
    OPEN_END,
    CapacityCalendar,
    DoubleBooking,
    GpuRef,
    Hold,
    PlacementRequest,
    Unplaceable,
)

MODEL = "A100-80GB"
NODES = [
    NodeView(1, "n1", "a", "s", MODEL, 8),
    NodeView(2, "n2", "a", "s", MODEL, 8),
    NodeView(3, "n3", "b", "s", MODEL, 4),
    NodeView(4, "n4", "b", "s", MODEL, 8, NodeState.DRAINING),
]
SIZE = {n.id: n.gpu_count for n in NODES}

times = st.integers(0, 60)
ends = st.one_of(st.none(), st.integers(1, 80))
ops = st.one_of(
    st.tuples(st.just("place"), st.sampled_from([1, 2, 3, 4, 8, 12, 16]), times, ends),
    st.tuples(
        st.just("book"),
        st.lists(st.sampled_from([GpuRef(n, i) for n, c in SIZE.items() for i in range(c)]), min_size=1, max_size=4),
        times,
        ends,
    ),
    st.tuples(st.just("release"), st.integers(0, 30)),
    st.tuples(st.just("truncate"), st.integers(0, 30), times),
    st.tuples(st.just("extend"), st.integers(0, 30), ends),
)


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def busy(model: dict[int, tuple[tuple[GpuRef, ...], int, int]], g: GpuRef, s: int, e: int) -> bool:
    return any(g in gs and overlaps((s, e), (bs, be)) for gs, bs, be in model.values())


def check_invariants(cal: CapacityCalendar, model: dict[int, tuple[tuple[GpuRef, ...], int, int]]) -> None:
    per_gpu: dict[GpuRef, list[tuple[int, int, int]]] = {}
    for b in cal.bookings():
        per_gpu.setdefault(b.gpu, []).append((b.start, b.end, b.lease_id))
    for windows in per_gpu.values():
        windows.sort()
        for (_, e1, _), (s2, _, _) in itertools.pairwise(windows):
            assert e1 <= s2, f"overlap on a GPU: {windows}"
    expected = sorted((lid, g, s, e) for lid, (gs, s, e) in model.items() for g in gs)
    got = sorted((b.lease_id, b.gpu, b.start, b.end) for b in cal.bookings())
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=40))
def test_random_operations_never_double_book(sequence: list[Op]) -> None:
    cal = CapacityCalendar(NODES)
    model: dict[int, tuple[tuple[GpuRef, ...], int, int]] = {}
    next_id = 0
    for op in sequence:
        kind = op[0]
        if kind == "place":
            _, k, s, e = op
            assert isinstance(k, int) and isinstance(s, int)
            end = None if e is None else s + 1 + int(str(e))
            req = PlacementRequest(MODEL, k, s, end)
            try:
                p = cal.place(req)
            except Unplaceable as exc:
                assert exc.code in ("no_capacity", "too_large")
                if exc.code == "no_capacity" and k <= 8:
                    # truly no schedulable node had k free GPUs in the window
                    for n in NODES:
                        if n.schedulable and n.gpu_count >= k:
                            free = [
                                i for i in range(n.gpu_count) if not busy(model, GpuRef(n.id, i), s, end or OPEN_END)
                            ]
                            assert len(free) < k
                if exc.earliest_start is not None:
                    later = PlacementRequest(
                        MODEL, k, exc.earliest_start, None if end is None else exc.earliest_start + end - s
                    )
                    cal.place(later)  # the promised start really fits
                continue
            assert len(p.gpus) == k == len(set(p.gpus))
            assert all(SIZE[g.node_id] and NODES[g.node_id - 1].schedulable for g in p.gpus)
            if k <= 8:
                assert len(p.node_ids) == 1
            else:
                assert len({NODES[n - 1].cluster for n in p.node_ids}) == 1
            for g in p.gpus:
                assert not busy(model, g, s, end or OPEN_END)
            cal.book(next_id, p.gpus, s, end)
            model[next_id] = (p.gpus, s, end or OPEN_END)
            next_id += 1
        elif kind == "book":
            _, refs, s, e = op
            assert isinstance(refs, list) and isinstance(s, int)
            end = None if e is None else s + 1 + int(str(e))
            gs = tuple(dict.fromkeys(refs))
            clash = any(busy(model, g, s, end or OPEN_END) for g in gs)
            try:
                cal.book(next_id, gs, s, end)
                assert not clash
                model[next_id] = (gs, s, end or OPEN_END)
            except DoubleBooking:
                assert clash
            next_id += 1
        elif kind == "release":
            lid = int(str(op[1]))
            cal.release(lid)
            model.pop(lid, None)
        elif kind == "truncate":
            lid, t = int(str(op[1])), int(str(op[2]))
            if lid in model:
                cal.truncate(lid, t)
                gs, s, e = model[lid]
                if t <= s:
                    del model[lid]
                elif t < e:
                    model[lid] = (gs, s, t)
        elif kind == "extend":
            lid = int(str(op[1]))
            if lid in model:
                gs, s, e = model[lid]
                new_end = None if op[2] is None else e + int(str(op[2])) if e < OPEN_END else None
                target = OPEN_END if new_end is None else new_end
                others = {k: v for k, v in model.items() if k != lid}
                extendable = all(not busy(others, g, e, target) for g in gs) if target > e else True
                assert cal.can_extend(lid, new_end) == extendable
                if extendable:
                    cal.extend(lid, new_end)
                    model[lid] = (gs, s, max(e, target))
                else:
                    try:
                        cal.extend(lid, new_end)
                        raise AssertionError("extend over a busy GPU succeeded")
                    except DoubleBooking:
                        pass
        check_invariants(cal, model)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 40), st.integers(1, 15)), max_size=12),
    st.integers(1, 2),
    st.integers(1, 20),
    st.integers(0, 30),
)
def test_earliest_start_is_the_first_start_that_fits(
    bookings: list[tuple[int, int, int]], k: int, duration: int, not_before: int
) -> None:
    cal = CapacityCalendar([NodeView(1, "n", "a", "s", MODEL, 2)])
    for lid, (gpu, s, d) in enumerate(bookings):
        with contextlib.suppress(DoubleBooking):
            cal.book(lid, [GpuRef(1, gpu)], s, s + d)

    def fits(t: int) -> bool:
        return len(cal.free_gpus(1, t, t + duration)) >= k

    expected = next(t for t in range(not_before, 200) if fits(t))
    assert cal.earliest_start(PlacementRequest(MODEL, k, 0, duration), not_before) == expected


# ----- the structures behind the calendar -------------------------------------------------------------

FLEET = [
    NodeView(1, "n1", "a", "s", MODEL, 8),
    NodeView(2, "n2", "a", "s", MODEL, 8),
    NodeView(3, "n3", "a", "s", MODEL, 4),
    NodeView(4, "n4", "b", "s", MODEL, 8),
    NodeView(5, "n5", "b", "s", MODEL, 8),
    NodeView(6, "n6", "b", "s", MODEL, 8, NodeState.DRAINING),
]
FLEET_GPUS = [GpuRef(n.id, i) for n in FLEET for i in range(n.gpu_count)]
Spec = list[tuple[list[GpuRef], int, int | None]]  # (GPUs, start, duration or None) to try booking
Booked = dict[int, tuple[tuple[GpuRef, ...], int, int]]  # what got booked: lease -> (GPUs, start, end)
Op = tuple[Any, ...]

bookings = st.lists(
    st.tuples(
        st.lists(st.sampled_from(FLEET_GPUS), min_size=1, max_size=10, unique=True),
        st.integers(0, 50),
        st.one_of(st.none(), st.integers(1, 40)),
    ),
    max_size=25,
)


def filled(spec: Spec) -> tuple[CapacityCalendar, Booked]:
    """A calendar with whichever of `spec` fit, and the model of what was booked."""
    cal = CapacityCalendar(FLEET)
    booked: Booked = {}
    for lid, (gpus, s, d) in enumerate(spec):
        end = None if d is None else s + d
        with contextlib.suppress(DoubleBooking):
            cal.book(lid, gpus, s, end)
            booked[lid] = (tuple(gpus), s, OPEN_END if end is None else end)
    return cal, booked


def fits_by_hand(booked: Booked, k: int, s: int, e: int) -> bool:
    """One-node requests, from the raw bookings: some schedulable node has k GPUs free over [s, e)."""
    for n in FLEET:
        if not n.schedulable or n.gpu_count < k:
            continue
        free = [i for i in range(n.gpu_count) if not busy(booked, GpuRef(n.id, i), s, e)]
        if len(free) >= k:
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=400), st.integers(-5, 45))
def test_sorted_ints_match_a_sorted_list(ops: list[tuple[bool, int]], probe: int) -> None:
    from gpulease.domain import placement

    saved, placement._LOAD = placement._LOAD, 4  # tiny blocks, so splits, merges and the index are exercised
    try:
        xs, oracle = placement._SortedInts(), []
        for add, x in ops:
            if add:
                xs.add(x)
                oracle.append(x)
            elif x in oracle:
                xs.remove(x)
                oracle.remove(x)
            oracle.sort()
            assert len(xs) == len(oracle)
            for _ in range(3):  # queries between changes, so cached offsets are built and dropped too
                assert xs.rank_left(probe) == sum(1 for v in oracle if v < probe)
                if oracle:
                    assert xs.at(len(oracle) // 2) == oracle[len(oracle) // 2]
        assert list(xs) == oracle == xs.to_list()
        assert xs.rank_left(probe) == sum(1 for v in oracle if v < probe)
        assert xs.rank_right(probe) == sum(1 for v in oracle if v <= probe)
        assert [xs.at(i) for i in range(len(oracle))] == oracle
        if oracle:
            assert xs.at(-1) == oracle[-1]
            xs.add_many(probe, 3)
            xs.remove_many(probe, 3)
            assert list(xs) == oracle
    finally:
        placement._LOAD = saved


@settings(max_examples=300, deadline=None)
@given(bookings, st.sampled_from([1, 2, 3, 4, 6, 8, 12, 16, 24]), st.integers(1, 30), st.booleans(), st.integers(0, 60))
def test_earliest_start_is_the_first_that_fits(spec: Spec, k: int, d: int, open_ended: bool, not_before: int) -> None:
    cal, booked = filled(spec)
    req = PlacementRequest(MODEL, k, 0, None if open_ended else d)
    found = cal.earliest_placement(req, not_before)

    def fits(t: int) -> bool:
        window = PlacementRequest(MODEL, k, t, None if open_ended else t + d)
        try:
            cal.place(window, explain=False)
        except Unplaceable:
            return False
        if k <= 8:  # one node: the raw bookings agree
            assert fits_by_hand(booked, k, t, OPEN_END if open_ended else t + d)
        return True

    # every booking ends by 91 (or never), so if nothing fits by then nothing ever will
    expected = next((t for t in range(not_before, 100) if fits(t)), None)
    if expected is None:
        assert found is None
        return
    assert found is not None and found[0] == expected
    start, where = found
    end = OPEN_END if open_ended else start + d
    assert len(where.gpus) == k == len(set(where.gpus))
    for g in where.gpus:  # the placement it comes with really is free then
        assert not busy(booked, g, start, end)
        assert FLEET[g.node_id - 1].schedulable


busy_until = st.lists(st.integers(0, 45), min_size=len(FLEET_GPUS), max_size=len(FLEET_GPUS))


@settings(max_examples=200, deadline=None)
# Found by CI: a 16-GPU answer remembered at start 1 kept node n2's "whole from 1" (worked out once the search
# had moved to 1); after a release on n3 the request fits at 0, which that stale bound hid.
@example(
    spec=[([GpuRef(3, 3)], 0, 1), ([GpuRef(5, 7)], 0, 1), ([GpuRef(1, 0)], 0, None)],
    until=[0] * len(FLEET_GPUS),
    ops=[("ask", 16, 5, 0), ("release", 0), ("ask", 16, 5, 0)],
)
@given(
    bookings,
    busy_until,
    st.lists(
        st.one_of(
            st.tuples(st.just("ask"), st.sampled_from([1, 2, 8, 16]), st.sampled_from([5, 20]), st.integers(0, 3)),
            st.tuples(st.just("release"), st.integers(0, 60)),
            st.tuples(st.just("truncate"), st.integers(0, 60), st.integers(0, 60)),
            st.tuples(
                st.just("book"),
                st.lists(st.sampled_from(FLEET_GPUS), min_size=1, max_size=8, unique=True),
                st.integers(0, 50),
                st.integers(1, 30),
            ),
        ),
        max_size=30,
    ),
)
def test_remembered_earliest_starts_match_fresh_ones(spec: Spec, until: list[int], ops: list[Op]) -> None:
    """Questions asked again after bookings, releases and truncations get the answer a calendar built
    from scratch gives (the start; the placement may differ but must be free)."""
    # every GPU busy from 0 until some time, one lease each (ids 0..n), so that releases free capacity
    # that changes the answers; the random bookings come after
    spec = [([g], 0, u) for g, u in zip(FLEET_GPUS, until, strict=True) if u] + spec
    cal, booked = filled(spec)
    next_id = 1000
    clock = 0  # asked the way a scheduler asks: from "now" on, now moving forward
    for op in ops:
        if op[0] == "ask":
            _, k, d, step = op
            clock += step
            nb = clock
            req = PlacementRequest(MODEL, k, 0, d)
            found = cal.earliest_placement(req, nb)
            fresh = CapacityCalendar(FLEET)
            for lid, (gs, s, e) in booked.items():
                fresh.book(lid, gs, s, None if e == OPEN_END else e)
            assert (found and found[0]) == fresh.earliest_start(req, nb)
            if found is not None:
                assert all(not busy(booked, g, found[0], found[0] + d) for g in found[1].gpus)
        elif op[0] == "release":
            cal.release(op[1])
            booked.pop(op[1], None)
        elif op[0] == "truncate":
            if op[1] in booked:
                cal.truncate(op[1], op[2])
                gs, s, e = booked[op[1]]
                if op[2] <= s:
                    del booked[op[1]]
                elif op[2] < e:
                    booked[op[1]] = (gs, s, op[2])
        else:
            _, gs, s, d = op
            with contextlib.suppress(DoubleBooking):
                cal.book(next_id, gs, s, s + d)
                booked[next_id] = (tuple(gs), s, s + d)
            next_id += 1


@settings(max_examples=200, deadline=None)
@given(bookings, st.lists(ops, max_size=25), st.lists(ops, max_size=10), st.booleans())
def test_speculation_rolls_back_exactly(spec: Spec, inside: list[Op], nested: list[Op], keep: bool) -> None:
    cal, _ = filled(spec)
    before, state = sorted(cal.bookings(), key=str), cal.state
    asked = cal.earliest_start(PlacementRequest(MODEL, 8, 0, 10), 0)

    def run(sequence: list[Op]) -> None:
        for i, op in enumerate(sequence):
            with contextlib.suppress(DoubleBooking, Unplaceable, ValueError, KeyError):
                if op[0] == "place":
                    _, k, s, e = op
                    req = PlacementRequest(MODEL, k, s, None if e is None else s + 1 + e)
                    cal.book(500 + i, cal.place(req, explain=False).gpus, req.start, req.end)
                elif op[0] == "book":
                    cal.book(600 + i, op[1], op[2], None if op[3] is None else op[2] + 1 + op[3])
                elif op[0] == "release":
                    cal.release(op[1])
                elif op[0] == "truncate":
                    cal.truncate(op[1], op[2])
                else:
                    cal.extend(op[1], op[2])
            cal.earliest_start(PlacementRequest(MODEL, 8, 0, 10), 0)  # answers remembered inside

    with cal.speculate():
        run(inside)
        with cal.speculate() as inner:
            run(nested)
            if keep:
                inner.keep()
        middle = sorted(cal.bookings(), key=str)
    assert sorted(cal.bookings(), key=str) == before and cal.state == state
    assert cal.earliest_start(PlacementRequest(MODEL, 8, 0, 10), 0) == asked
    with cal.speculate() as spec_:
        run(inside)
        after_inside = sorted(cal.bookings(), key=str)
        spec_.keep()
    assert sorted(cal.bookings(), key=str) == after_inside
    del middle


@settings(max_examples=200, deadline=None)
@given(
    bookings,
    st.sampled_from([1, 2, 4, 8, 16, 24]),
    st.one_of(st.none(), st.integers(1, 30)),
    st.sampled_from([1, 2, 3, 8, 12, 16]),
    st.one_of(st.none(), st.integers(1, 40)),
)
def test_a_hold_places_like_a_booking(spec: Spec, head_k: int, head_d: int | None, k: int, d: int | None) -> None:
    """Placing next to a Hold (a queue head's reservation) gives what booking it first would, without
    touching the bookings."""
    now = 10
    cal, _ = filled(spec)
    head = cal.earliest_placement(PlacementRequest(MODEL, head_k, now, None if head_d is None else now + head_d), now)
    if head is None:
        return
    start, where = head
    end = None if head_d is None else start + head_d
    hold = Hold(where.gpus, start, OPEN_END if end is None else end)
    booked_hold, _ = filled(spec)
    booked_hold.book(-1, where.gpus, start, end)
    before = sorted(cal.bookings(), key=str)
    req = PlacementRequest(MODEL, k, now, None if d is None else now + d)

    def outcome(c: CapacityCalendar, h: Hold | None) -> object:
        try:
            return c.place(req, explain=False, hold=h).gpus
        except Unplaceable:
            return None

    assert outcome(cal, hold) == outcome(booked_hold, None)
    assert cal.longest_fits(MODEL, now, hold) == booked_hold.longest_fits(MODEL, now)
    assert cal.longest_fit(MODEL, k, now, hold) == booked_hold.longest_fit(MODEL, k, now)
    assert sorted(cal.bookings(), key=str) == before


@settings(max_examples=300, deadline=None)
@given(bookings, st.sampled_from([1, 2, 3, 4, 8, 12, 16, 24]), st.integers(0, 60))
def test_longest_fit_is_the_longest_window_that_fits(spec: Spec, k: int, start: int) -> None:
    cal, _ = filled(spec)

    def fits(end: int | None) -> bool:
        try:
            cal.place(PlacementRequest(MODEL, k, start, end), explain=False)
            return True
        except Unplaceable:
            return False

    longest = cal.longest_fit(MODEL, k, start)
    if k <= 8:
        assert cal.longest_fits(MODEL, start)[k - 1] == longest
    if longest == OPEN_END:
        assert fits(None)
    else:
        assert not fits(None) and not fits(start + longest + 1)
        assert longest == 0 or fits(start + longest)
    free = cal.free_now(MODEL, start)[0]
    assert cal.free_total(MODEL, start) == free
    # no request needing g more GPUs than are free can start before freed_by says
    for g in range(1, 9):
        by = cal.freed_by(MODEL, start, g)
        for t in range(start + 1, min(by, 100)):
            assert cal.free_total(MODEL, t) < free + g
