"""Property tests: whatever the sequence of operations, no core and no GiB is ever booked twice at the same time,
and no core kept for a GPU is ever booked."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gpulease.domain.cpu import CpuNodeView, GpuShare
from gpulease.domain.cpu_placement import CpuCalendar, CpuRequest
from gpulease.domain.placement import OPEN_END, DoubleBooking, Unplaceable

NODES = [
    CpuNodeView(1, "c1", "a", "s", "EPYC-9654", 2, 8, 64),
    CpuNodeView(2, "c2", "a", "s", "Grace", 1, 6, 32),
    CpuNodeView(3, "g3", "b", "s", "EPYC-9654", 2, 12, 96, gpu_count=4, share=GpuShare(2, 16)),
    CpuNodeView(4, "g4", "b", "s", "Xeon-8480+", 1, 8, 64, gpu_count=2, share=GpuShare(3, 8)),
]
VIEW = {n.id: n for n in NODES}

times = st.integers(0, 60)
ends = st.one_of(st.none(), st.integers(1, 80))
ops = st.one_of(
    st.tuples(
        st.just("place"),
        st.integers(1, 10),
        times,
        ends,
        st.one_of(st.none(), st.integers(1, 40)),
        st.sampled_from([None, "EPYC-9654", "Grace", "Xeon-8480+"]),
        st.booleans(),
    ),
    st.tuples(
        st.just("book"),
        st.sampled_from(sorted(VIEW)),
        st.lists(st.integers(0, 7), min_size=1, max_size=3),
        st.integers(0, 40),
        times,
        ends,
    ),
    st.tuples(st.just("release"), st.integers(0, 30)),
    st.tuples(st.just("truncate"), st.integers(0, 30), times),
    st.tuples(st.just("extend"), st.integers(0, 30), ends),
    st.tuples(st.just("speculate"), st.integers(0, 30), st.integers(0, 30), times, st.booleans()),
)


def check_invariants(cal: CpuCalendar) -> None:
    per_node: dict[int, list[Any]] = {}
    for b in cal.bookings():
        per_node.setdefault(b.node_id, []).append(b)
    for node_id, bs in per_node.items():
        view = VIEW[node_id]
        for b in bs:
            assert b.cores <= set(view.leasable_cores) and not b.cores & view.reserved_cores
            # memory held at b's start (the instants where memory use rises) never exceeds what the node leases
            held = sum(o.memory_gib for o in bs if o.start <= b.start < o.end)
            assert held <= view.leasable_memory_gib
            for o in bs:
                if o is not b and o.start < b.end and b.start < o.end:
                    assert not b.cores & o.cores, (b, o)


def fits_brute(cal: CpuCalendar, req: CpuRequest, start: int) -> bool:
    end = OPEN_END if req.end is None else start + (req.end - req.start)
    for v in NODES:
        if (v.is_gpu_node and not req.allow_gpu_nodes) or (req.cpu_model and v.cpu_model != req.cpu_model):
            continue
        mem = v.default_memory_gib(req.cpu_cores) if req.memory_gib is None else req.memory_gib
        bs = [b for b in cal.bookings() if b.node_id == v.id and b.start < end and start < b.end]
        busy = set().union(*(b.cores for b in bs)) if bs else set()
        instants = [start, *(b.start for b in bs if b.start > start)]
        peak = max(sum(b.memory_gib for b in bs if b.start <= t < b.end) for t in instants)
        if len([c for c in v.leasable_cores if c not in busy]) >= req.cpu_cores and peak + mem <= v.leasable_memory_gib:
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=40))
def test_never_double_books(sequence: list[tuple[Any, ...]]) -> None:
    cal = CpuCalendar(NODES)
    next_id = 0
    for op in sequence:
        kind = op[0]
        if kind == "place":
            _, k, s, e, mem, model, allow = op
            end = None if e is None else max(e, s + 1)
            req = CpuRequest(k, s, end, mem, model, allow)
            try:
                p = cal.place(req)
            except Unplaceable as exc:
                assert not fits_brute(cal, req, s)
                if exc.earliest_start is not None:
                    assert exc.earliest_start > s and fits_brute(cal, req, exc.earliest_start)
                    # no booking end before the answer (the only instants more is free) fits
                    for t in {b.end for b in cal.bookings() if s < b.end < exc.earliest_start}:
                        assert not fits_brute(cal, req, t)
                continue
            assert fits_brute(cal, req, s)
            view = VIEW[p.node_id]
            assert len(p.cores) == k and (allow or not view.is_gpu_node)
            assert model is None or view.cpu_model == model
            next_id += 1
            cal.book(next_id, p.node_id, p.cores, p.memory_gib, s, end)  # a placement always books
        elif kind == "book":
            _, node_id, cores, mem, s, e = op
            end = None if e is None else max(e, s + 1)
            next_id += 1
            with contextlib.suppress(DoubleBooking):
                cal.book(next_id, node_id, tuple(cores), mem, s, end)
        elif kind == "release":
            cal.release(op[1])
        elif kind == "truncate":
            cal.truncate(op[1], op[2])
        elif kind == "extend":
            with contextlib.suppress(DoubleBooking):
                cal.extend(op[1], op[2])
        elif kind == "speculate":  # release one lease, truncate another; kept or rolled back
            _, a, b, t, keep = op
            before = sorted(cal.bookings(), key=lambda x: x.lease_id)
            with cal.speculate() as spec:
                cal.release(a)
                cal.truncate(b, t)
                check_invariants(cal)
                if keep:
                    spec.keep()
            if not keep:
                assert sorted(cal.bookings(), key=lambda x: x.lease_id) == before
        check_invariants(cal)
