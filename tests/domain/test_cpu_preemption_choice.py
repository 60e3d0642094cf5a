"""`choose_cpu_preemptions`: the GPU rule (fewest interruptible leases, then least work lost) on the CPU calendar."""

from __future__ import annotations

from gpulease.domain.cpu import CpuNodeView
from gpulease.domain.cpu_placement import CpuCalendar, CpuRequest
from gpulease.domain.queue import choose_cpu_preemptions


def node(id: int) -> CpuNodeView:
    """2 sockets x 8 cores, 256 GiB."""
    return CpuNodeView(id, f"n{id}", "c", "s", "EPYC-9654", 2, 16, 256)


def test_fits_already_needs_none_and_hopeless_gets_none() -> None:
    cal = CpuCalendar([node(1)])
    cal.book(1, 1, tuple(range(8)), 64, 0, None)
    assert choose_cpu_preemptions(CpuRequest(8, 10, 100), cal, {1: 0}, 10) == []
    cal.book(2, 1, tuple(range(8, 16)), 64, 0, None)  # not interruptible: preempting lease 1 cannot free 16
    assert choose_cpu_preemptions(CpuRequest(16, 10, 100), cal, {1: 0}, 10) is None
    assert choose_cpu_preemptions(CpuRequest(17, 10, 100), cal, {1: 0, 2: 0}, 10) is None  # too large


def test_fewest_leases_then_least_work_lost() -> None:
    cal = CpuCalendar([node(1), node(2)])
    # node 1: two 4-core leases and one 8-core lease; node 2: one 8-core lease started long ago, 8 cores held
    cal.book(1, 1, (0, 1, 2, 3), 32, 0, None)
    cal.book(2, 1, (4, 5, 6, 7), 32, 0, None)
    cal.book(3, 1, tuple(range(8, 16)), 64, 50, None)
    cal.book(4, 2, tuple(range(8)), 64, 0, None)
    cal.book(5, 2, tuple(range(8, 16)), 64, 0, None)
    started = {1: 0, 2: 0, 3: 50, 4: 0}
    # 8 cores: one lease is enough (3 or 4); lease 3 is younger, so it loses less work
    assert choose_cpu_preemptions(CpuRequest(8, 100, 200), cal, started, 100) == [3]
    # 12 cores: only node 1 can (lease 5 is not interruptible): 3 and one 4-core lease, the cheaper of the two
    assert choose_cpu_preemptions(CpuRequest(12, 100, 200), cal, {**started, 2: 10}, 100) == [2, 3]
    # the calendar is unchanged by the search (every try is undone)
    assert {b.lease_id for b in cal.bookings()} == {1, 2, 3, 4, 5}


def test_leases_outside_the_window_are_not_victims() -> None:
    cal = CpuCalendar([node(1)])
    cal.book(1, 1, tuple(range(16)), 128, 0, 100)  # ends before the request
    cal.book(2, 1, tuple(range(8)), 64, 100, None)
    assert choose_cpu_preemptions(CpuRequest(16, 100, 200), cal, {1: 0, 2: 100}, 100) == [2]
