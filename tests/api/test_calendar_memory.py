"""The capacity calendar a server keeps in memory stays equal to the store: after concurrent bookings, ends,
extensions and node failures (both stores), and across server processes kept in step by NOTIFY (PostgreSQL).
The store stays the safety net: a process that missed another's booking reloads, it never double-books."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from gpulease.domain.placement import OPEN_END, PlacementRequest
from gpulease.queueing import FairSemaphore
from gpulease.runtime import CONFLICT_RETRIES, Runtime
from gpulease.services import calendars, leases, node_failure
from gpulease.services.calendars import CalendarBusy
from gpulease.services.capacity import load_calendar
from gpulease.services.context import SYSTEM
from gpulease.services.errors import ServiceError
from gpulease.services.work import Work
from gpulease.settings import Settings
from tests.api.test_concurrency import _overlaps
from tests.conftest import Clock, Facility, wait_for

MODEL = "A100-80GB"


def _in_store(runtime: Runtime) -> set[tuple[int, int, int, int, int]]:
    with runtime.work() as w:
        cal = load_calendar(w, MODEL)
        now = int(w.now.timestamp())
    return {(b.lease_id, b.gpu.node_id, b.gpu.index, b.start, b.end) for b in cal.bookings() if b.end > now}


def _in_memory(runtime: Runtime, now: int) -> set[tuple[int, int, int, int, int]]:
    snap = runtime.calendars.snapshot(MODEL)
    assert snap is not None, "the calendar is not in memory"
    return {(lid, n, i, s, OPEN_END if e is None else e) for lid, n, i, s, e in snap if (e is None or e > now)}


def _request(customer_id: int, rng: random.Random, clock: Clock) -> leases.LeaseRequest:
    start = clock() + timedelta(minutes=rng.choice((0, 0, 10, 60)))
    return leases.LeaseRequest(
        gpu_model=MODEL,
        gpu_count=rng.choice((1, 2, 4, 8)),
        plan=rng.choice(("on_demand", "reserved", "interruptible")),
        start=start,
        end=start + timedelta(hours=rng.choice((1, 2, 3))),
        customer_id=customer_id,
    )


def test_calendar_in_memory_equals_the_store_after_concurrent_changes(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    nodes = facility.nodes(4)
    facility.prices()
    cust = facility.customer()
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[int] = []
        try:
            for _ in range(12):
                roll = rng.random()
                try:
                    if roll < 0.55 or not mine:
                        booked = runtime.perform(
                            leases.create_lease, actor=SYSTEM, request=_request(cust["id"], rng, clock)
                        )
                        mine.append(booked.lease.id)
                    elif roll < 0.8:
                        runtime.perform(leases.end, actor=SYSTEM, lease_id=mine.pop(rng.randrange(len(mine))))
                    else:
                        lease_id = rng.choice(mine)
                        with runtime.work() as w:
                            lease = leases.get_lease(w, actor=SYSTEM, lease_id=lease_id)
                            end = lease.ends_at
                        if end is not None:
                            runtime.perform(
                                leases.extend, actor=SYSTEM, lease_id=lease_id, new_end=end + timedelta(minutes=30)
                            )
                except ServiceError:
                    continue  # refused (no capacity, already ended, …): a correct answer
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    # A node fails while they book: its leases are moved or ended.
    runtime.perform(node_failure.node_lost, node_id=nodes[0]["id"], reason="PSU failure")
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    now = int(clock().timestamp())
    assert _in_memory(runtime, now) == _in_store(runtime)
    assert _overlaps(runtime) == []
    # Time passes, the clock ends and starts leases: still equal.
    clock.advance(minutes=90)
    runtime.tick()
    rng = random.Random(7)
    for _ in range(5):
        try:
            runtime.perform(leases.create_lease, actor=SYSTEM, request=_request(cust["id"], rng, clock))
        except ServiceError:
            continue
    assert _in_memory(runtime, int(clock().timestamp())) == _in_store(runtime)


def test_a_refused_or_failed_transaction_leaves_the_calendar_as_it_was(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    body = {"customer_id": cust["id"], "gpu_model": MODEL, "plan": "on_demand"}
    facility.lease(gpu_count=6, **body)
    before = runtime.calendars.snapshot(MODEL)
    facility.lease(gpu_count=4, expect=409, **body)  # does not fit: rolled back
    assert runtime.calendars.snapshot(MODEL) == before
    reloads = runtime.calendars.reloads
    facility.lease(gpu_count=2, **body)
    assert runtime.calendars.reloads == reloads  # the calendar in memory was still current: no reload
    assert _in_memory(runtime, int(clock().timestamp())) == _in_store(runtime)


def test_another_process_booking_makes_a_reload_never_a_double_booking(
    facility: Facility, runtime: Runtime, settings: Settings, clock: Clock
) -> None:
    """A second Runtime on the same store (another server process) books without this one hearing of it (no
    listener): this one's next placement sees the version moved and reloads; both stores."""
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    body = {"customer_id": cust["id"], "gpu_model": MODEL, "plan": "on_demand"}
    facility.lease(gpu_count=4, **body)  # this process's calendar is loaded
    other = Runtime(settings, clock=clock)
    try:
        req = leases.LeaseRequest(gpu_model=MODEL, gpu_count=4, plan="on_demand", customer_id=cust["id"])
        other.perform(leases.create_lease, actor=SYSTEM, request=req)
    finally:
        other.close()
    reloads = runtime.calendars.reloads
    facility.lease(gpu_count=1, expect=409, **body)  # the node is full: the stale calendar is not trusted
    assert runtime.calendars.reloads == reloads + 1
    assert _overlaps(runtime) == []
    assert _in_memory(runtime, int(clock().timestamp())) == _in_store(runtime)


@contextmanager
def _two_processes(
    facility: Facility, runtime: Runtime, settings: Settings, clock: Clock, *, nodes: int
) -> Iterator[tuple[dict[str, Any], Runtime]]:
    """`nodes` nodes with prices and a customer, and a second process (Runtime) on the same PostgreSQL store, both
    following each other's changes (LISTEN); yields the customer and the other process, closed after."""
    if not runtime.store.is_postgres:
        pytest.skip("several server processes need PostgreSQL (LISTEN/NOTIFY); SQLite processes reload instead")
    facility.nodes(nodes)
    facility.prices()
    cust = facility.customer()
    runtime.listen_for_calendar_changes()
    other = Runtime(settings, clock=clock)
    try:
        other.listen_for_calendar_changes()
        yield cust, other
    finally:
        other.close()


def test_notify_keeps_two_processes_calendars_in_step(
    facility: Facility, runtime: Runtime, settings: Settings, clock: Clock
) -> None:
    with _two_processes(facility, runtime, settings, clock, nodes=2) as (cust, other):
        body = {"customer_id": cust["id"], "gpu_model": MODEL, "plan": "on_demand"}
        facility.lease(gpu_count=1, **body)  # loads this process's calendar
        req = leases.LeaseRequest(gpu_model=MODEL, gpu_count=8, plan="on_demand", customer_id=cust["id"])
        booked = other.perform(leases.create_lease, actor=SYSTEM, request=req)  # loads the other's
        now = int(clock().timestamp())
        wait_for(lambda: _in_memory(runtime, now) == _in_store(runtime), 5, "this process to hear of the booking")
        assert runtime.calendars.remote_applied >= 1
        reloads = runtime.calendars.reloads
        facility.lease(gpu_count=4, **body)  # its calendar is current: placed without a reload
        assert runtime.calendars.reloads == reloads
        other.perform(leases.end, actor=SYSTEM, lease_id=booked.lease.id)
        wait_for(lambda: _in_memory(runtime, now) == _in_store(runtime), 5, "this process to hear of the end")
        wait_for(lambda: _in_memory(other, now) == _in_store(other), 5, "the other process to hear of our booking")
        other_reloads = other.calendars.reloads
        other.perform(leases.create_lease, actor=SYSTEM, request=req)  # fits where the 8-GPU lease was
        assert other.calendars.reloads == other_reloads
        assert _overlaps(runtime) == []


def test_a_booking_and_an_end_each_send_their_notice_with_the_number_it_carries(
    facility: Facility, runtime: Runtime, settings: Settings, clock: Clock
) -> None:
    """The version bump of a booking and the calendar_seq bump of an end carry their NOTIFY in the same statement
    (one round trip, not two), and the other process applies both as it did a notice of their own."""
    from sqlalchemy import event

    with _two_processes(facility, runtime, settings, clock, nodes=2) as (cust, other):
        seen: list[str] = []

        def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            seen.append(" ".join(statement.split()))

        body = {"customer_id": cust["id"], "gpu_model": MODEL, "plan": "on_demand"}
        facility.lease(gpu_count=1, **body)  # this process's calendar loaded
        req = leases.LeaseRequest(gpu_model=MODEL, gpu_count=8, plan="on_demand", customer_id=cust["id"])
        event.listen(other.store.engine, "before_cursor_execute", note)
        try:
            booked = other.perform(leases.create_lease, actor=SYSTEM, request=req)
            notices = [x for x in seen if "pg_notify" in x]
            assert len(notices) == 1 and notices[0].startswith("WITH b AS (INSERT INTO calendar_versions"), seen
            now = int(clock().timestamp())
            wait_for(lambda: _in_memory(runtime, now) == _in_store(runtime), 5, "this process to hear of the booking")
            seen.clear()
            other.perform(leases.end, actor=SYSTEM, lease_id=booked.lease.id)
            notices = [x for x in seen if "pg_notify" in x]
            assert len(notices) == 1 and notices[0].startswith("WITH q AS (UPDATE leases SET calendar_seq"), seen
        finally:
            event.remove(other.store.engine, "before_cursor_execute", note)
        wait_for(lambda: _in_memory(runtime, now) == _in_store(runtime), 5, "this process to hear of the end")
        assert runtime.calendars.reloads == 1  # its first load only: both notices applied, never a reload


def test_a_placement_waits_for_the_notice_of_another_process_commit_rather_than_reload(
    facility: Facility, runtime: Runtime, settings: Settings, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A placement that finds another process committed a change it has not heard of yet waits a moment for the
    change's NOTIFY, which applies it, instead of reading the whole calendar from the store at once (with two
    workers 3-5% of placements did, each holding the model's lock for as long as the load took)."""
    if not runtime.store.is_postgres:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    monkeypatch.setattr(calendars, "WAIT_FOR_NOTIFY_S", 2.0)  # a loaded CI machine: the notice may take a while
    facility.nodes(2)
    facility.prices()
    cust = facility.customer()
    heard = runtime.calendars.on_notification

    def late(payload: str) -> None:  # each notice heard 0.2 s after it was sent
        time.sleep(0.2)
        heard(payload)

    monkeypatch.setattr(runtime.calendars, "on_notification", late)
    runtime.listen_for_calendar_changes()
    other = Runtime(settings, clock=clock)
    try:
        req = leases.LeaseRequest(gpu_model=MODEL, gpu_count=2, plan="on_demand", customer_id=cust["id"])
        runtime.perform(leases.create_lease, actor=SYSTEM, request=req)  # this process's calendar loaded
        reloads = runtime.calendars.reloads
        other.perform(leases.create_lease, actor=SYSTEM, request=req)  # committed; heard of 0.2 s later
        runtime.perform(leases.create_lease, actor=SYSTEM, request=req)  # at once: behind the other's commit
        assert runtime.calendars.reloads == reloads
        assert runtime.calendars.remote_applied >= 1
        now = int(clock().timestamp())
        assert _in_memory(runtime, now) == _in_store(runtime)
        assert _overlaps(runtime) == []
    finally:
        other.close()


def _held(runtime: Runtime, lease_id: int) -> set[tuple[int, int]]:
    with runtime.work() as w:
        lease = leases.get_lease(w, actor=SYSTEM, lease_id=lease_id)
        return {(a.node_id, a.gpu_index) for a in lease.allocations if not a.released}


def test_placements_of_one_model_overlap_on_postgresql(facility: Facility, runtime: Runtime) -> None:
    """A booking still in flight (placed, not committed) neither blocks the next placement of its model nor
    loses its GPUs to it, even when the calendar is read afresh meanwhile; a rollback gives its GPUs back."""
    if not runtime.store.is_postgres:
        pytest.skip("SQLite has one writer at a time: its placements are serialised by the store itself")
    facility.nodes(2)
    facility.prices()
    cust = facility.customer()
    req = leases.LeaseRequest(gpu_model=MODEL, gpu_count=4, plan="on_demand", customer_id=cust["id"])
    facility.lease(gpu_count=1, customer_id=cust["id"], gpu_model=MODEL, plan="on_demand")  # calendar loaded
    placed, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def slow(w: Work, *, fail: bool) -> int:
        booked = leases.create_lease(w, actor=SYSTEM, request=req)
        placed.set()
        assert release.wait(30)
        if fail:
            raise RuntimeError("rolled back after placing")
        return booked.lease.id

    def in_flight(fail: bool) -> None:
        try:
            outcome["id"] = runtime.perform(slow, fail=fail)
        except RuntimeError as e:
            outcome["error"] = e

    t = threading.Thread(target=in_flight, args=(False,))
    t.start()
    try:
        assert placed.wait(30)
        runtime.calendars.forget_all()  # read afresh while the first is in flight: it keeps its GPUs
        second = runtime.perform(leases.create_lease, actor=SYSTEM, request=req)  # does not wait for the first
        assert t.is_alive() and "id" not in outcome
    finally:
        release.set()
        t.join(30)
    first = outcome["id"]
    assert isinstance(first, int)
    assert _held(runtime, first).isdisjoint(_held(runtime, second.lease.id))
    assert _overlaps(runtime) == []

    placed.clear()
    release.clear()
    t = threading.Thread(target=in_flight, args=(True,))
    t.start()
    assert placed.wait(30)
    # The node left has 7 GPUs free... less the 4 in flight: a 4-GPU request must wait for them.
    with pytest.raises(ServiceError):
        runtime.perform(leases.create_lease, actor=SYSTEM, request=req)
    release.set()
    t.join(30)
    assert isinstance(outcome.get("error"), RuntimeError)
    runtime.perform(leases.create_lease, actor=SYSTEM, request=req)  # rolled back: its GPUs are free again
    assert _overlaps(runtime) == []
    now = int(runtime.clock().timestamp())
    assert _in_memory(runtime, now) == _in_store(runtime)


def test_two_processes_booking_and_ending_at_once_never_fail(
    facility: Facility, runtime: Runtime, settings: Settings, clock: Clock
) -> None:
    """Two server processes (Runtimes) on one PostgreSQL database, each booking and ending leases from several
    threads at once, as `gpulease serve --workers 2` does under load: each places without knowing what the other
    has in flight, so they often pick the same GPUs. The store refuses one of each such pair and the action is
    retried; no request may fail for it, and both calendars end equal to the store."""
    errors: list[BaseException] = []
    booked = [0]
    with _two_processes(facility, runtime, settings, clock, nodes=4) as (cust, other):

        def worker(rt: Runtime, seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(15):
                n = rng.choice((1, 1, 2, 8))
                req = leases.LeaseRequest(gpu_model=MODEL, gpu_count=n, plan="on_demand", customer_id=cust["id"])
                try:
                    lease = rt.perform(leases.create_lease, actor=SYSTEM, request=req).lease
                    booked[0] += 1
                    rt.perform(leases.end, actor=SYSTEM, lease_id=lease.id)
                except ServiceError:  # full for the moment (409): an answer, not a failure
                    pass
                except BaseException as e:  # the test reports every other failure
                    errors.append(e)

        threads = [threading.Thread(target=worker, args=(rt, i)) for i, rt in enumerate([runtime, other] * 4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        assert booked[0] > 60
        assert _overlaps(runtime) == []
        now = int(clock().timestamp())
        wait_for(lambda: _in_memory(runtime, now) == _in_store(runtime), 5, "this process's calendar to settle")
        wait_for(lambda: _in_memory(other, now) == _in_store(other), 5, "the other's calendar to settle")


def test_two_processes_place_apart(facility: Facility, runtime: Runtime, settings: Settings, clock: Clock) -> None:
    """Server processes on one PostgreSQL store rank themselves by the changes they hear from one another, each
    places in its own part of the nodes first and breaks ties from its own share of the way along (two: 0 and 1/2).
    They choose apart, so the store seldom refuses one of them (it refused 18% of two workers' bookings under
    `api_load.py --workers 2` when the places were drawn at random)."""

    def where(rt: Runtime, n: int) -> tuple[float, set[tuple[int, int]], tuple[int, int]]:
        now = int(clock().timestamp())
        with rt.work() as w:
            cal = rt.calendars.view(w, MODEL)
            placed = cal.place(PlacementRequest(MODEL, n, now, now + 3600))
            return cal.spread, {(g.node_id, g.index) for g in placed.gpus}, cal.part

    with _two_processes(facility, runtime, settings, clock, nodes=4) as (cust, other):
        assert where(runtime, 1)[0] == 0.0  # alone: ties go to the first in id order
        req = leases.LeaseRequest(gpu_model=MODEL, gpu_count=1, plan="on_demand", customer_id=cust["id"])
        for rt in (runtime, other):  # each commits a change the other hears
            rt.perform(leases.create_lease, actor=SYSTEM, request=req)
        wait_for(lambda: {where(runtime, 1)[0], where(other, 1)[0]} == {0.0, 0.5}, 5, "each to hear the other")
        assert {where(runtime, 1)[2], where(other, 1)[2]} == {(0, 2), (1, 2)}  # each its own half of the nodes
        for n in (1, 2, 8):
            assert where(runtime, n)[1].isdisjoint(where(other, n)[1]), n

        def where_later(rt: Runtime) -> set[int]:
            now = int(clock().timestamp())
            with rt.work() as w:
                cal = rt.calendars.for_placement(w, MODEL)
                assert cal.apart_until == now + calendars.APART_S
                later = now + 2 * 86400
                return {g.node_id for g in cal.place(PlacementRequest(MODEL, 8, later, later + 3600)).gpus}

        # A window that starts later is placed as one process would (first fit), by both: two processes' future
        # windows seldom overlap, and whole nodes taken from two places at once fragmented the timeline.
        with runtime.work() as w:  # where one process alone would place it: the first node free then
            later = int(clock().timestamp()) + 2 * 86400
            alone = load_calendar(w, MODEL).place(PlacementRequest(MODEL, 8, later, later + 3600))
        assert where_later(runtime) == where_later(other) == {g.node_id for g in alone.gpus}


def test_a_process_gone_silent_stops_taking_a_part_of_the_nodes(
    facility: Facility, runtime: Runtime, settings: Settings, clock: Clock
) -> None:
    """A worker killed (or stopped) sends nothing more; the one left alone hears nothing either (never itself), so
    its own loop drops a process silent for `PEER_TTL_S` and it places on every node first again, as one alone."""
    with _two_processes(facility, runtime, settings, clock, nodes=4) as (cust, other):
        req = leases.LeaseRequest(gpu_model=MODEL, gpu_count=1, plan="on_demand", customer_id=cust["id"])
        for rt in (runtime, other):
            rt.perform(leases.create_lease, actor=SYSTEM, request=req)
        wait_for(lambda: len(runtime.calendars._peers) == 1, 5, "this process to hear the other")
        runtime._housekeeping()
        assert runtime.calendars._part[1] == 2
        other.close()  # silent from now on
        runtime._housekeeping()
        assert runtime.calendars._part[1] == 2  # heard of lately: still counted
        long_ago = time.monotonic() - calendars.PEER_TTL_S - 1
        with runtime.calendars._guard:  # as if PEER_TTL_S had passed since
            runtime.calendars._peers = dict.fromkeys(runtime.calendars._peers, long_ago)
        runtime._housekeeping()
    assert (runtime.calendars._part, runtime.calendars._spread) == ((0, 1), 0.0)
    with runtime.work() as w:
        assert runtime.calendars.view(w, MODEL).part == (0, 1)


def test_a_retried_placement_goes_ahead_of_the_units_still_waiting(runtime: Runtime) -> None:
    """A unit whose placement the store refused has waited its turn for a slot once already: it runs again before
    the units still queued (behind them it doubled its latency: those retries were two server processes' p99)."""
    runtime._slots = FairSemaphore(1)
    order: list[str] = []
    waiters: list[threading.Thread] = []

    def unit(name: str) -> Callable[[Work], None]:
        def run(_w: Work) -> None:
            order.append(name)
            time.sleep(0.2)  # long enough for the refused one to queue again meanwhile

        return run

    def refused_once(_w: Work) -> None:
        order.append("refused" if not order else "again")
        if order == ["refused"]:
            for name in ("queued 1", "queued 2"):  # queued behind it, in this order
                waiters.append(threading.Thread(target=runtime.perform, args=(unit(name),)))
                waiters[-1].start()
                queued = len(waiters)
                wait_for(lambda: len(runtime._slots._waiters) == queued, 5, f"{name} to queue")  # noqa: B023
            raise IntegrityError("INSERT INTO allocations …", {}, Exception('violates "no_double_booking"'))

    runtime.perform(refused_once)
    for t in waiters:
        t.join(5)
    assert order == ["refused", "queued 1", "again", "queued 2"]


def test_a_placement_refused_by_the_store_every_time_answers_busy_not_500(runtime: Runtime) -> None:
    """The exclusion constraint refusing an action again and again (other processes taking the GPUs it chose
    first, each time) ends in a 409 the client may retry, after the retries, never in an unhandled error."""
    tries = [0]

    def always_taken(_w: Work) -> None:
        tries[0] += 1
        raise IntegrityError("INSERT INTO allocations …", {}, Exception('violates "no_double_booking"'))

    with pytest.raises(CalendarBusy) as refused:
        runtime.perform(always_taken)
    assert tries[0] == CONFLICT_RETRIES + 1
    assert refused.value.status == 409


def test_a_commit_reads_each_leases_gpus_from_the_session_loaded_or_expired(
    facility: Facility, runtime: Runtime
) -> None:
    """What a commit tells the calendar (`_lease_gpus`): the lease's live GPUs of its latest start, in node and
    index order, whether its allocations are loaded, expired (read again), or some released."""
    facility.nodes(2)
    facility.prices()
    cust = facility.customer()
    lease = facility.lease(customer_id=cust["id"], gpu_model=MODEL, gpu_count=4, plan="on_demand", duration_s=3600)
    with runtime.work() as w:
        got = leases.get_lease(w, actor=SYSTEM, lease_id=lease["id"])
        expected = sorted((a.node_id, a.gpu_index) for a in got.allocations)
        start, end = int(got.starts_at.timestamp()), int(got.ends_at.timestamp())  # type: ignore[union-attr]
        read = calendars._lease_gpus(w.session, {got.id}, {})
        assert read == [(got.id, MODEL, expected, start, end, 0)]
        w.session.expire(got.allocations[0])  # its columns out of its dict: read through the attributes (loaded)
        assert "node_id" not in got.allocations[0].__dict__
        assert calendars._lease_gpus(w.session, {got.id}, {}) == read
        got.allocations[1].released = True  # a released GPU is not the lease's any more
        read = calendars._lease_gpus(w.session, {got.id}, {})
        assert read is None  # three of four: the caller cannot tell the lease's GPUs and reloads
        w.session.rollback()
