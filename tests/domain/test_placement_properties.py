"""Property tests: whatever sequence of operations, no GPU is ever booked twice at the same time."""

from __future__ import annotations

import contextlib
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from gpulease.domain.inventory import NodeState, NodeView
from gpulease.domain.placement import (
    OPEN_END,
    CapacityCalendar,
    DoubleBooking,
    GpuRef,
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
def test_random_operations_never_double_book(sequence: list[tuple[object, ...]]) -> None:
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
