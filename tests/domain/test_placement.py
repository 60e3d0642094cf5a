"""Capacity calendar and placement: behaviour a customer or an operator would notice."""

from __future__ import annotations

import pytest

from gpulease.domain.inventory import NodeState, NodeView
from gpulease.domain.placement import (
    OPEN_END,
    CapacityCalendar,
    DoubleBooking,
    GpuRef,
    PlacementRequest,
    Unplaceable,
)

H = 3600
A100 = "A100-80GB"


def node(
    i: int, cluster: str = "c1", n: int = 8, model: str = A100, state: NodeState = NodeState.AVAILABLE
) -> NodeView:
    return NodeView(i, f"node-{i}", cluster, "site-1", model, n, state)


def gpus(node_id: int, *idx: int) -> list[GpuRef]:
    return [GpuRef(node_id, i) for i in idx]


def req(n: int, start: int = 0, end: int | None = H, model: str = A100) -> PlacementRequest:
    return PlacementRequest(model, n, start, end)


def test_book_rejects_overlap_and_leaves_nothing_behind() -> None:
    cal = CapacityCalendar([node(1)])
    cal.book(10, gpus(1, 0, 1), 0, 100)
    with pytest.raises(DoubleBooking, match="GPU 1 of node 1"):
        cal.book(11, gpus(1, 2, 1), 50, 150)  # GPU 2 is free, GPU 1 is not
    assert cal.bookings_of(11) == []
    assert cal.free_gpus(1, 50, 150) == [2, 3, 4, 5, 6, 7]
    cal.book(12, gpus(1, 1), 100, 200)  # touching windows do not overlap
    assert cal.free_gpus(1, 0, 200) == [2, 3, 4, 5, 6, 7]


def test_release_truncate_extend() -> None:
    cal = CapacityCalendar([node(1)])
    cal.book(1, gpus(1, 0), 0, 100)
    cal.book(2, gpus(1, 0), 200, None)
    assert not cal.can_extend(1, 250)
    with pytest.raises(DoubleBooking):
        cal.extend(1, 250)
    cal.extend(1, 200)
    assert cal.bookings_of(1)[0].end == 200
    cal.truncate(2, 300)
    assert cal.free_gpus(1, 300, 400) == list(range(8))
    assert cal.bookings_of(2)[0].end == 300
    cal.release(1)
    assert cal.free_gpus(1, 0, 200) == list(range(8))
    cal.truncate(2, 100)  # before it starts: nothing left
    assert cal.bookings_of(2) == []
    cal.book(3, gpus(1, 0), 0, None)
    assert cal.bookings_of(3)[0].end == OPEN_END


def test_best_fit_picks_the_fullest_node_that_still_fits() -> None:
    cal = CapacityCalendar([node(1), node(2), node(3)])
    cal.book(1, gpus(2, 0, 1, 2, 3, 4), 0, 10 * H)  # node 2: 3 free
    cal.book(2, gpus(3, 0, 1, 2, 3, 4, 5), 0, 10 * H)  # node 3: 2 free
    assert cal.place(req(2)).node_ids == (3,)  # perfect fit
    assert cal.place(req(3)).node_ids == (2,)
    assert cal.place(req(4)).node_ids == (1,)  # only the empty node has 4
    # after the booking ends every node is empty: lowest id wins
    assert cal.place(req(2, 10 * H, 11 * H)).node_ids == (1,)


def test_small_requests_stay_on_one_node() -> None:
    cal = CapacityCalendar([node(1), node(2)])
    cal.book(1, gpus(1, 0, 1, 2, 3, 4), 0, H)
    cal.book(2, gpus(2, 0, 1, 2, 3, 4), 0, H)  # 3 + 3 free, but 4 on one node: no
    with pytest.raises(Unplaceable) as info:
        cal.place(req(4))
    assert info.value.code == "no_capacity"
    assert info.value.earliest_start == H
    assert "6 of that model are free" in info.value.message
    p = cal.place(req(3))
    assert len(p.gpus) == 3 and len(p.node_ids) == 1


def test_large_request_takes_whole_nodes_in_one_cluster() -> None:
    nodes = [node(i, "a") for i in range(1, 4)] + [node(i, "b") for i in range(4, 7)]
    cal = CapacityCalendar(nodes)
    cal.book(1, gpus(1, 0), 0, H)  # cluster a: 2 whole nodes left
    cal.book(2, gpus(4, 0, 1, 2, 3), 0, H)  # cluster b: 2 whole nodes, one with 4 free
    p = cal.place(req(20))
    # 16 on two whole nodes + 4 on one further node, all in one cluster; b has the 4-free node.
    assert set(p.node_ids) == {4, 5, 6}
    assert len(p.gpus) == len(set(p.gpus)) == 20
    whole = [n for n in p.node_ids if sum(g.node_id == n for g in p.gpus) == 8]
    assert sorted(whole) == [5, 6]
    p16 = cal.place(req(16))
    assert len({cal.node(n).cluster for n in p16.node_ids}) == 1
    assert all(sum(g.node_id == n for g in p16.gpus) == 8 for n in p16.node_ids)
    with pytest.raises(Unplaceable) as info:
        cal.place(req(32))
    assert info.value.code == "too_large"
    assert "32" in info.value.message and "largest cluster has 24" in info.value.message


def test_draining_node_gets_no_new_leases_but_keeps_its_own() -> None:
    cal = CapacityCalendar([node(1), node(2)])
    cal.book(1, gpus(1, 0, 1), 0, 10 * H)
    cal.upsert_node(node(1, state=NodeState.DRAINING))
    assert cal.place(req(6)).node_ids == (2,)  # node 1 would be the better fit, but it drains
    cal.upsert_node(node(2, state=NodeState.DOWN))
    with pytest.raises(Unplaceable) as info:
        cal.place(req(1))
    assert "draining or down" in info.value.message
    assert cal.bookings_of(1)[0].end == 10 * H
    assert cal.earliest_start(req(1), 0) is None


def test_unplaceable_codes_and_messages() -> None:
    cal = CapacityCalendar([node(1)])
    with pytest.raises(Unplaceable) as info:
        cal.place(req(1, model="H100-80GB"))
    assert info.value.code == "unknown_model"
    assert "H100-80GB" in info.value.message and A100 in info.value.message
    with pytest.raises(Unplaceable) as info:
        cal.place(req(0))
    assert info.value.code == "bad_request"
    with pytest.raises(Unplaceable) as info:
        cal.place(req(1, 10, 5))
    assert info.value.code == "bad_request"
    cal.book(1, gpus(1, *range(8)), 0, None)
    with pytest.raises(Unplaceable) as info:
        cal.place(req(1))
    assert info.value.code == "no_capacity"
    assert info.value.earliest_start is None
    assert "1 A100-80GB GPU(s) asked, only 0 free" in info.value.message


def test_earliest_start_keeps_duration_and_finds_the_gap() -> None:
    cal = CapacityCalendar([node(1, n=2)])
    cal.book(1, gpus(1, 0), 0, 10)
    cal.book(2, gpus(1, 1), 0, 20)
    cal.book(3, gpus(1, 0), 25, 40)
    cal.book(4, gpus(1, 1), 30, 50)
    r = req(2, 0, 5)
    assert cal.earliest_start(r, 0) == 20  # [20, 25) fits both GPUs
    assert cal.earliest_start(req(2, 0, 6), 0) == 50  # 6 s does not fit before 25
    assert cal.earliest_start(req(1, 0, 15), 0) == 10  # GPU 0: [10, 25)
    assert cal.earliest_start(req(1, 0, 100), 0) == 40
    assert cal.earliest_start(req(1, 0, None), 0) == 40
    assert cal.earliest_start(req(3, 0, 1), 0) is None  # larger than any node and cluster
    assert cal.earliest_start(req(2, 0, 5), 21) == 50


def test_earliest_start_multi_node() -> None:
    cal = CapacityCalendar([node(i) for i in range(1, 4)])
    cal.book(1, gpus(1, 0), 0, 100)
    cal.book(2, gpus(2, 0), 0, 200)
    cal.book(3, gpus(2, 1), 300, 400)
    # 16 GPUs for 50 s: nodes 1 and 3 free from 100
    assert cal.earliest_start(req(16, 0, 50), 0) == 100
    # 24 GPUs for 50 s: all three whole from 200 to 300
    assert cal.earliest_start(req(24, 0, 50), 0) == 200
    # ... but 150 s does not fit before node 2's booking at 300
    assert cal.earliest_start(req(24, 0, 150), 0) == 400
    p = cal.place(req(24, 400, 550))
    assert len(p.gpus) == 24


def test_ignore_leases_answers_would_it_fit() -> None:
    cal = CapacityCalendar([node(1)])
    cal.book(1, gpus(1, *range(6)), 0, None)
    cal.book(2, gpus(1, 6), 0, None)
    with pytest.raises(Unplaceable):
        cal.place(req(4))
    p = cal.place(req(4), ignore_leases=frozenset({1}))
    assert len(p.gpus) == 4 and GpuRef(1, 6) not in p.gpus
    assert cal.leases_on(gpus(1, 0, 6), 0, 10) == {1, 2}


def test_remove_node_reports_the_leases_that_lived_there() -> None:
    cal = CapacityCalendar([node(1), node(2)])
    cal.book(1, gpus(1, 0) + gpus(2, 0), 0, 10)
    cal.book(2, gpus(2, 1), 0, 10)
    assert cal.remove_node(2) == {1, 2}
    assert [b.gpu for b in cal.bookings_of(1)] == gpus(1, 0)
    assert cal.bookings_of(2) == []


def test_speculation_tries_a_hold_and_gives_everything_back() -> None:
    cal = CapacityCalendar([node(1), node(2)])
    cal.book(1, gpus(1, *range(8)), 0, 10 * H)
    state = cal.state
    with cal.speculate():
        head = cal.earliest_placement(req(8, 0, 4 * H), 0)
        assert head is not None
        start, where = head
        assert (start, where.node_ids) == (0, (2,))
        cal.book(-1, where.gpus, start, start + 4 * H)  # the queue head's hold
        with pytest.raises(Unplaceable):
            cal.place(req(1, 0, 5 * H), explain=False)  # node 1 is booked, node 2 held for the first 4 h
        assert cal.place(req(1, 4 * H, 5 * H)).node_ids == (2,)
    assert cal.state == state and cal.bookings_of(-1) == []
    assert cal.place(req(8, 0, 5 * H)).node_ids == (2,)
    with cal.speculate() as spec:
        cal.book(2, gpus(2, 0), 0, H)
        spec.keep()
    assert cal.bookings_of(2)[0].gpu == GpuRef(2, 0)


def test_ended_bookings_can_be_forgotten() -> None:
    cal = CapacityCalendar([node(1)])
    cal.book(1, gpus(1, 0), 0, 100)
    cal.book(2, gpus(1, 1), 50, None)
    assert cal.forget_ended(100) == 1
    assert cal.lease_ids() == [2]
    assert cal.free_total(A100, 200) == 7


def test_free_counts_and_remembered_answers_follow_the_inventory() -> None:
    cal = CapacityCalendar([node(1), node(2)])
    cal.book(1, gpus(1, 0, 1), 0, 10 * H)
    assert cal.free_total(A100, H) == 14
    assert cal.earliest_start(req(8, 0, H), 0) == 0  # node 2 is free (and the answer is remembered)
    cal.upsert_node(node(2, state=NodeState.DRAINING))
    assert cal.free_total(A100, H) == 6 == cal.free_now(A100, H)[0]
    assert cal.earliest_start(req(8, 0, H), 0) == 10 * H  # not the remembered node 2
    cal.upsert_node(node(2))
    assert cal.free_total(A100, H) == 14
    cal.remove_node(1)
    assert cal.free_total(A100, H) == 8


def test_processes_side_by_side_each_pack_their_own_part_of_the_nodes() -> None:
    """With the nodes in parts (several processes placing at once), each places in its own part of each cluster
    first, best fit within it, and takes another's only when its own has no room: two processes then fill
    different nodes instead of both choosing the one tightest node. Alone (one part): the best fit over all."""

    def calendar(part: tuple[int, int]) -> CapacityCalendar:
        cal = CapacityCalendar([node(i) for i in range(1, 11)])
        cal.book(1, gpus(2, 0, 1, 2, 3, 4, 5, 6), 0, H)  # node 2: 1 free, the tightest of all
        cal.book(2, gpus(8, 0, 1, 2, 3, 4, 5), 0, H)  # node 8: 2 free, the tightest of the second half
        cal.part, cal.spread = part, part[0] / part[1]
        return cal

    def where(cal: CapacityCalendar, n: int) -> set[int]:
        return {g.node_id for g in cal.place(req(n)).gpus}

    assert where(calendar((0, 1)), 1) == {2}
    assert where(calendar((0, 2)), 1) == {2}
    assert where(calendar((1, 2)), 1) == {8}  # its own part's tightest, not node 2
    assert where(calendar((0, 2)), 8) == {1} and where(calendar((1, 2)), 8) == {6}
    assert where(calendar((0, 2)), 16) == {1, 3} and where(calendar((1, 2)), 16) == {6, 7}  # whole nodes: the same
    second = calendar((1, 2))
    for i, nid in enumerate((6, 7, 9, 10)):
        second.book(10 + i, gpus(nid, *range(8)), 0, H)
    second.book(20, gpus(8, 6, 7), 0, H)  # its part full
    assert where(second, 1) == {2}  # then the best fit over all
    assert where(second, 8) == {1}


def test_windows_that_start_later_are_placed_as_by_one_process() -> None:
    """Part and spread keep processes apart where their bookings meet, around now (`apart_until`); a window that
    starts later is placed as one process would place it: first fit in id order, whole nodes taken from one end,
    so that whole nodes stay free together for the requests of several nodes."""
    cal = CapacityCalendar([node(i) for i in range(1, 11)])
    cal.part, cal.spread, cal.apart_until = (1, 2), 0.5, 2 * H
    now, later = req(8, 0, H), req(8, 5 * H, 6 * H)
    assert {g.node_id for g in cal.place(now).gpus} == {6}  # its own part
    assert {g.node_id for g in cal.place(later).gpus} == {1}  # as one process: the first node
    assert {g.node_id for g in cal.place(req(16, 5 * H, 6 * H)).gpus} == {1, 2}
    assert cal.place(req(2, 5 * H, 6 * H)).gpus == tuple(gpus(1, 0, 1))  # GPUs from the start too, no spread
    cal.apart_until = None  # by default, every request
    assert {g.node_id for g in cal.place(later).gpus} == {6}


def test_spread_breaks_ties_elsewhere_and_never_at_the_cost_of_the_best_fit() -> None:
    """Two processes placing on copies of one calendar: with different `spread` they choose different nodes (and
    GPUs) among equally good ones, so the store seldom refuses one of them; a tighter fit still wins."""

    def calendar(spread: float) -> CapacityCalendar:
        cal = CapacityCalendar([node(i) for i in range(1, 11)])
        cal.book(1, gpus(5, 0, 1, 2, 3), 0, H)  # node 5 has 4 free: the best fit for 4 or fewer GPUs
        cal.spread = spread
        return cal

    def chosen(spread: float, n: int) -> tuple[GpuRef, ...]:
        return calendar(spread).place(req(n)).gpus

    assert {g.node_id for g in chosen(0, 8)} == {1}  # default: the first in id order
    whole = {frozenset(g.node_id for g in chosen(s / 10, 8)) for s in range(10)}
    assert len(whole) > 5 and frozenset({5}) not in whole  # whole nodes from many places, never the busy one
    assert chosen(0, 2) == tuple(gpus(5, 4, 5))
    two = {chosen(s / 10, 2) for s in range(10)}
    assert all({g.node_id for g in c} == {5} for c in two) and len(two) > 1  # best fit kept, other GPUs on it
    # Two processes (shares 0 and 1/2) never meet on a node with two GPUs free or more, nor on whole nodes.
    assert {g.node_id for g in chosen(0.5, 8)} == {6}
    for n in (1, 2):
        assert set(chosen(0, n)).isdisjoint(chosen(0.5, n))
    cal = calendar(0.7)
    placed = cal.place(req(3))
    cal.book(2, placed.gpus, 0, H)
    assert len(cal.free_gpus(5, 0, H)) == 1  # a real placement: booked where it said
