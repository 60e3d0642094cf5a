"""CPU placement: best fit over CPU nodes, one socket and contiguous cores, GPU nodes only by policy."""

from __future__ import annotations

import pytest

from gpulease.domain.cpu import CpuNodeView, GpuShare
from gpulease.domain.cpu_placement import CpuCalendar, CpuRequest, choose_cores
from gpulease.domain.inventory import NodeState
from gpulease.domain.placement import OPEN_END, DoubleBooking, Unplaceable

T = 1_767_225_600
H = 3600


def small(id: int, sockets: int = 2, memory: int = 256, state: NodeState = NodeState.AVAILABLE) -> CpuNodeView:
    """A node of `sockets` x 8 cores (not a catalogued count: shapes are the operator's)."""
    return CpuNodeView(id, f"n{id}", "c", "s", "EPYC-9654", sockets, 8 * sockets, memory, state)


def gpu_node(id: int) -> CpuNodeView:
    # 2 sockets x 8 cores, 4 GPUs keeping 3 cores and 32 GiB each: cores 0-2, 3-5 | 8-10, 11-13 kept
    return CpuNodeView(id, f"g{id}", "c", "s", "EPYC-9654", 2, 16, 256, gpu_count=4, share=GpuShare(3, 32))


def test_best_fit_one_socket_contiguous() -> None:
    cal = CpuCalendar([small(1), small(2)])
    cal.book(10, 1, tuple(range(0, 6)), 16, T, T + 10 * H)  # node 1 socket 0 has 2 cores left
    p = cal.place(CpuRequest(2, T, T + H))
    assert (p.node_id, p.cores, p.cpuset) == (1, (6, 7), "6-7")  # fills the fullest socket exactly
    p = cal.place(CpuRequest(4, T, T + H))
    assert p.node_id == 1 and p.cores == (8, 9, 10, 11)  # node 1 socket 1 before an empty node
    p = cal.place(CpuRequest(12, T, T + H))
    assert p.node_id == 2 and p.cores == tuple(range(12))  # spans two sockets: the smallest span
    assert p.memory_gib == 192  # default: 12/16 of 256 GiB


def test_contiguous_run_preferred_and_tightest_span_otherwise() -> None:
    n = small(1, sockets=1)
    assert choose_cores(n, [0, 2, 3, 5, 6, 7], 2) == ((2, 3), True)  # the shortest run long enough
    assert choose_cores(n, [0, 2, 4, 5, 7], 3) == ((2, 4, 5), True)  # no run: the smallest span


def test_memory_is_never_overcommitted() -> None:
    cal = CpuCalendar([small(1, sockets=1, memory=64)])
    cal.book(1, 1, (0,), 60, T, T + 2 * H)
    with pytest.raises(Unplaceable) as e:
        cal.place(CpuRequest(1, T + H, T + 3 * H, memory_gib=8))
    assert e.value.code == "no_capacity" and e.value.earliest_start == T + 2 * H
    with pytest.raises(DoubleBooking, match="GiB"):
        cal.book(2, 1, (1,), 5, T + H, T + 3 * H)
    cal.book(2, 1, (1,), 4, T + H, T + 3 * H)  # 60 + 4 = 64 fits exactly
    cal.book(3, 1, (2,), 60, T + 2 * H, T + 4 * H)  # lease 1 gave its 60 back at T+2h


def test_cores_are_never_double_booked() -> None:
    cal = CpuCalendar([small(1)])
    cal.book(1, 1, (0, 1), 1, T, T + H)
    with pytest.raises(DoubleBooking, match="already booked"):
        cal.book(2, 1, (1, 2), 1, T + H - 1, T + 2 * H)
    cal.book(2, 1, (1, 2), 1, T + H, T + 2 * H)  # half-open: back to back is fine
    with pytest.raises(DoubleBooking, match="already holds"):
        cal.book(2, 1, (5,), 1, T + 5 * H, T + 6 * H)


def test_gpu_nodes_only_by_policy_and_never_their_gpus_share() -> None:
    cal = CpuCalendar([gpu_node(5)])
    with pytest.raises(Unplaceable) as e:
        cal.place(CpuRequest(2, T, T + H))
    assert e.value.code == "too_large"
    p = cal.place(CpuRequest(2, T, T + H, allow_gpu_nodes=True))
    assert p.node_id == 5 and p.cores == (6, 7) and p.memory_gib == 64  # 2/4 of the 128 GiB not kept
    with pytest.raises(Unplaceable):
        cal.place(CpuRequest(5, T, T + H, allow_gpu_nodes=True))  # only 4 leasable cores
    with pytest.raises(DoubleBooking, match="kept for its GPUs"):
        cal.book(1, 5, (0,), 1, T, T + H)
    with pytest.raises(Unplaceable):
        cal.place(CpuRequest(1, T, T + H, memory_gib=129, allow_gpu_nodes=True))


def test_cpu_nodes_before_gpu_nodes() -> None:
    cal = CpuCalendar([gpu_node(1), small(2)])
    assert cal.place(CpuRequest(2, T, T + H, allow_gpu_nodes=True)).node_id == 2
    cal.book(9, 2, tuple(range(16)), 1, T, T + H)
    assert cal.place(CpuRequest(2, T, T + H, allow_gpu_nodes=True)).node_id == 1


def test_model_state_and_bad_requests() -> None:
    grace = CpuNodeView(3, "gr", "c", "s", "Grace", 1, 72, 480)
    cal = CpuCalendar([small(1, state=NodeState.DRAINING), grace])
    assert cal.place(CpuRequest(4, T, None)).node_id == 3
    assert cal.place(CpuRequest(4, T, None, cpu_model="grace")).node_id == 3
    with pytest.raises(Unplaceable) as e:
        cal.place(CpuRequest(4, T, None, cpu_model="EPYC-9654"))  # its only node is draining
    assert e.value.code == "too_large"
    for bad, code in [
        (CpuRequest(0, T, None), "bad_request"),
        (CpuRequest(1, T, T), "bad_request"),
        (CpuRequest(1, T, None, memory_gib=0), "bad_request"),
        (CpuRequest(1, T, None, cpu_model="Z80"), "unknown_model"),
    ]:
        with pytest.raises(Unplaceable) as e:
            cal.place(bad)
        assert e.value.code == code


def test_earliest_start_and_placement() -> None:
    cal = CpuCalendar([small(1, sockets=1), small(2, sockets=1)])
    cal.book(1, 1, tuple(range(8)), 8, T, T + 5 * H)
    cal.book(2, 2, tuple(range(4)), 8, T, T + 3 * H)
    cal.book(3, 2, tuple(range(4, 8)), 8, T, T + 4 * H)
    with pytest.raises(Unplaceable) as e:
        cal.place(CpuRequest(6, T, T + H))
    assert e.value.earliest_start == T + 4 * H
    start, p = cal.earliest_placement(CpuRequest(6, T, T + H), T) or (0, None)
    assert start == T + 4 * H and p is not None and p.node_id == 2
    assert cal.earliest_start(CpuRequest(2, T, T + H), T) == T + 3 * H
    assert cal.earliest_start(CpuRequest(9, T, T + H), T) is None
    cal.book(4, 2, (0,), 1, T + 10 * H, None)  # open-ended from +10 h: an open-ended request fits nowhere
    assert cal.earliest_start(CpuRequest(8, T, None), T) == T + 5 * H  # node 1 is free for ever from +5 h


def test_release_truncate_extend() -> None:
    cal = CpuCalendar([small(1, sockets=1)])
    cal.book(1, 1, (0, 1), 10, T, T + 2 * H)
    cal.book(2, 1, (0,), 10, T + 4 * H, T + 5 * H)
    assert cal.can_extend(1, T + 4 * H) and not cal.can_extend(1, T + 4 * H + 1) and not cal.can_extend(9, T)
    cal.extend(1, T + 4 * H)
    with pytest.raises(DoubleBooking):
        cal.extend(1, None)
    cal.truncate(1, T + H)
    assert cal.free_cores(1, T + H, T + 2 * H) == list(range(8))
    assert cal.free_memory_gib(1, T, T + 5 * H) == 246
    cal.truncate(1, T)  # at its start: released
    assert cal.booking_of(1) is None
    cal.release(2)
    assert cal.bookings() == []
    cal.book(3, 1, (3,), 1, T, None)
    assert cal.booking_of(3) is not None and cal.booking_of(3).end == OPEN_END  # type: ignore[union-attr]
    assert cal.forget_ended(T + 100 * H) == 0


def test_node_changes_must_keep_bookings_valid() -> None:
    cal = CpuCalendar([small(1, sockets=1, memory=64)])
    cal.book(1, 1, (7,), 40, T, T + H)
    with pytest.raises(DoubleBooking, match="memory"):
        cal.upsert_node(small(1, sockets=1, memory=32))
    shrunk = CpuNodeView(1, "n1", "c", "s", "EPYC-9654", 1, 8, 64, gpu_count=4, share=GpuShare(2, 1))
    with pytest.raises(DoubleBooking, match="no longer lease"):
        cal.upsert_node(shrunk)
    assert cal.nodes()[0].memory_gib == 64
    cal.upsert_node(small(1, sockets=1, memory=64, state=NodeState.DOWN))
    assert cal.nodes()[0].state is NodeState.DOWN


def test_speculation_undoes_unless_kept_and_nests() -> None:
    cal = CpuCalendar([small(1, sockets=1)])
    cal.book(1, 1, (0, 1), 8, T, T + 4 * H)
    before = cal.bookings()
    with cal.speculate():
        cal.book(2, 1, (2,), 8, T, T + H)
        cal.release(1)
        cal.book(3, 1, (0, 1), 8, T, T + H)
        cal.truncate(3, T + 1)
    assert cal.bookings() == before
    with cal.speculate() as outer:
        with cal.speculate() as inner:
            cal.extend(1, T + 8 * H)
            inner.keep()
        assert cal.booking_of(1).end == T + 8 * H  # type: ignore[union-attr]
    assert cal.bookings() == before  # the outer one was not kept: the inner one's change goes too
    with cal.speculate() as spec:
        cal.book(4, 1, (5,), 1, T, None)
        spec.keep()
    assert cal.booking_of(4) is not None
    assert not outer.kept


def test_remove_node_returns_its_leases() -> None:
    cal = CpuCalendar([small(1), small(2)])
    cal.book(1, 1, (0,), 1, T, T + H)
    cal.book(2, 2, (0,), 1, T, T + H)
    assert cal.remove_node(1) == {1} and cal.remove_node(1) == set()
    assert [b.lease_id for b in cal.bookings()] == [2] and [n.id for n in cal.nodes()] == [2]


def test_memory_peak_counts_back_to_back_windows_once() -> None:
    cal = CpuCalendar([small(1, sockets=1, memory=64)])
    cal.book(1, 1, (0,), 40, T, T + H)
    cal.book(2, 1, (1,), 40, T + H, T + 2 * H)
    assert cal.free_memory_gib(1, T, T + 2 * H) == 24
    assert cal.place(CpuRequest(1, T, T + 2 * H, memory_gib=24)).memory_gib == 24
    with pytest.raises(Unplaceable):
        cal.place(CpuRequest(1, T, T + 2 * H, memory_gib=25))
