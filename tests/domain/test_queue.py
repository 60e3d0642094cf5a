"""Waiting queue, EASY backfill and preemption choice."""

from __future__ import annotations

import random

import pytest

from gpulease.domain.inventory import NodeView
from gpulease.domain.leases import Plan
from gpulease.domain.placement import CapacityCalendar, GpuRef, PlacementRequest
from gpulease.domain.queue import WaitingQueue, WaitingRequest, choose_preemptions, schedule

M = "A100-80GB"
H = 3600


def cluster(n: int = 2) -> CapacityCalendar:
    return CapacityCalendar([NodeView(i, f"n{i}", "c", "s", M, 8) for i in range(1, n + 1)])


def wr(
    i: int, k: int, duration: int | None, at: int = 0, plan: Plan = Plan.ON_DEMAND, max_wait: int | None = None
) -> WaitingRequest:
    return WaitingRequest(i, M, k, plan, duration, at, max_wait)


def test_order_is_priority_then_submission_then_id() -> None:
    q = WaitingQueue(
        [
            wr(1, 1, H, at=5, plan=Plan.INTERRUPTIBLE),
            wr(2, 1, H, at=9),
            wr(3, 1, H, at=9),
            wr(4, 1, H, at=20, plan=Plan.RESERVED),
            wr(5, 1, H, at=1),
        ]
    )
    assert [r.id for r in q.ordered()] == [4, 5, 2, 3, 1]
    q.remove(5)
    assert len(q) == 4 and 5 not in q


def full_cluster_with_head() -> tuple[CapacityCalendar, WaitingQueue]:
    cal = cluster(2)
    # node 1: 6 GPUs until 2h, 2 free; node 2: 4 GPUs until 1h, 4 free
    cal.book(100, [GpuRef(1, i) for i in range(6)], 0, 2 * H)
    cal.book(101, [GpuRef(2, i) for i in range(4)], 0, H)
    q = WaitingQueue(
        [
            wr(1, 8, 4 * H, at=0),  # head: needs a whole node; earliest at 1h on node 2
            wr(3, 2, 10 * H, at=1),  # long, but fits node 1's free pair without touching node 2
            wr(2, 2, 30 * 60, at=2),  # ends before 1h: may use node 2
            wr(4, 4, 10 * H, at=3),  # would take node 2's free half for 10 h: delays the head
            wr(5, 1, 10 * H, at=4),
        ]
    )
    return cal, q


def test_backfill_starts_small_jobs_without_delaying_the_head() -> None:
    cal, q = full_cluster_with_head()
    head_before = cal.earliest_start(PlacementRequest(M, 8, 0, 4 * H), 0)
    started = schedule(q, cal, 0)
    assert [d.request_id for d in started] == [3, 2]
    assert started.heads[M].request_id == 1 and started.heads[M].start == H
    assert cal.earliest_start(PlacementRequest(M, 8, 0, 4 * H), 0) == head_before == H
    assert [r.id for r in q.ordered()] == [1, 4, 5]
    assert cal.bookings_of(-1) == []  # the shadow reservation never outlives the pass
    assert {b.gpu.node_id for b in cal.bookings_of(3)} == {1}
    assert {b.gpu.node_id for b in cal.bookings_of(2)} == {2}


def test_fifo_stops_at_the_first_request_that_waits() -> None:
    cal, q = full_cluster_with_head()
    assert list(schedule(q, cal, 0, backfill=False)) == []
    assert len(q) == 5
    cal.release(101)
    assert [d.request_id for d in schedule(q, cal, 0, backfill=False)] == [1, 3]  # 2 waits


def test_open_ended_request_backfills_only_where_the_head_never_goes() -> None:
    cal, q = full_cluster_with_head()
    for i in (2, 3, 5):
        q.remove(i)
    q.push(wr(6, 2, None, at=5))
    started = schedule(q, cal, 0)
    assert [d.request_id for d in started] == [6]
    assert {b.gpu.node_id for b in cal.bookings_of(6)} == {1}


def test_expired_and_unplaceable_leave_the_queue() -> None:
    cal = cluster(1)
    cal.book(100, [GpuRef(1, i) for i in range(8)], 0, 10 * H)
    q = WaitingQueue([wr(1, 1, H, at=0, max_wait=60), wr(2, 64, H, at=0), wr(3, 1, H, at=0)])
    s = schedule(q, cal, 100)
    assert [r.id for r in s.expired] == [1]
    assert [(r.id, e.code) for r, e in s.unplaceable] == [(2, "too_large")]
    assert [r.id for r in q.ordered()] == [3]


def simulate(backfill: bool, seed: int) -> dict[int, int]:
    """Tiny event loop: random jobs on 2 nodes; returns the start time of every job."""
    rng = random.Random(seed)
    cal = cluster(2)
    q = WaitingQueue()
    jobs = [wr(i, rng.choice([1, 1, 2, 4, 8, 16]), rng.randint(60, 4 * H), at=rng.randint(0, 6 * H)) for i in range(60)]
    pending = sorted(jobs, key=lambda j: j.submitted_at)
    ends: list[int] = []
    started: dict[int, int] = {}
    t = 0
    while pending or len(q):
        while pending and pending[0].submitted_at <= t:
            q.push(pending.pop(0))
        for d in schedule(q, cal, t, backfill=backfill):
            started[d.request_id] = t
            ends.append(t + next(j.duration for j in jobs if j.id == d.request_id))  # type: ignore[operator]
        future = [e for e in ends if e > t] + ([pending[0].submitted_at] if pending else [])
        if not future:
            assert not len(q), "queue stuck with nothing running"
            break
        t = min(future)
    assert len(started) == len(jobs)
    return {j.id: started[j.id] - j.submitted_at for j in jobs}


@pytest.mark.parametrize("seed", range(8))
def test_no_starvation_every_job_starts(seed: int) -> None:
    simulate(True, seed)
    simulate(False, seed)


def test_backfill_beats_fifo_on_mean_wait() -> None:
    wins = 0
    for seed in range(10):
        bf, fifo = simulate(True, seed), simulate(False, seed)
        wins += sum(bf.values()) <= sum(fifo.values())
    assert wins >= 8


def test_preemption_picks_the_fewest_youngest_leases() -> None:
    cal = cluster(2)
    cal.book(1, [GpuRef(1, i) for i in range(4)], 0, None)  # non-interruptible
    cal.book(2, [GpuRef(1, i) for i in range(4, 8)], 0, None)  # interruptible, 4 GPUs, old
    cal.book(3, [GpuRef(2, i) for i in range(0, 4)], 0, None)  # interruptible, 4 GPUs, young
    cal.book(4, [GpuRef(2, 4)], 0, None)
    cal.book(5, [GpuRef(2, 5)], 0, None)
    cal.book(6, [GpuRef(2, 6)], 0, None)
    interruptible = {2: 0, 3: 9000, 4: 100, 5: 100, 6: 100}
    req = PlacementRequest(M, 4, 10_000, None)
    assert choose_preemptions(req, cal, interruptible, 10_000) == [3]  # one lease, least work lost
    req6 = PlacementRequest(M, 6, 10_000, None)
    assert choose_preemptions(req6, cal, interruptible, 10_000) == [3, 4]  # node 2: 1 free + 4 + 1
    req8 = PlacementRequest(M, 8, 10_000, None)
    assert choose_preemptions(req8, cal, interruptible, 10_000) == [3, 4, 5, 6]
    assert choose_preemptions(req8, cal, {2: 0}, 10_000) is None  # lease 1 is not interruptible
    assert choose_preemptions(PlacementRequest(M, 1, 10_000, None), cal, interruptible, 10_000) == []
    cal16 = PlacementRequest(M, 16, 10_000, None)
    assert choose_preemptions(cal16, cal, interruptible, 10_000) is None
    assert choose_preemptions(cal16, cal, {1: 0, **interruptible}, 10_000) == [1, 2, 3, 4, 5, 6]
