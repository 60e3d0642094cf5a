"""A booking and an end cost a handful of SQL statements, whatever is stored (counted with an engine event)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from gpulease.runtime import Runtime
from gpulease.services import inventory
from gpulease.services.context import SYSTEM
from gpulease.services.inventory import NodeCpus
from gpulease.settings import Settings
from gpulease.store.models import Run
from tests.conftest import Clock, Facility

# Through the API, one request each. Booking: the customer, the price, the GPUs the customer holds (a young
# company's only: booking_checks.py; this one is established), the lease's
# id (drawn before placing, so the lease is inserted once, in the state it reaches, never updated), the queue
# head, the calendar version (which also serialises placements of the model), the lease, its allocations (one
# insert: on SQLite their ids are drawn with the lease's, or its driver would insert them one by one to read each
# id back), its events, audit records and notification as one insert each (store/staged.py). No calendar read, no
# webhook read (the Runtime knows who listens), no usage sum for a lease booked now, no read of the nodes' names
# for the answer (the calendar it was placed on names them). (Before: 34, plus the calendar growing; then 20 + 1
# per GPU; then 14 + 1 per GPU; then 15 on PostgreSQL, with the lease inserted early for its id and updated after;
# then 12 + 1 per GPU on SQLite; then 12 with the nodes' names and an established company's holdings read.)
BOOK_MAX = 10  # + 1 on SQLite (its BEGIN IMMEDIATE counted), whatever the GPUs. PostgreSQL: + 2, the version read
# when placing and bumped at the commit (placements of a model overlap there; services/calendars.py) and the NOTIFY.
# Ending: the lease and its GPUs in one read, its usage on record and whether a run of it is going in another (read
# once, before anything is staged, so the events, audit records and notification go in one batch each), the state
# changes, the GPUs released, the calendar sequence and, on PostgreSQL, the NOTIFY. (Before: 16; then 10, its runs
# and its usage read apart.)
END_MAX = 9


@contextmanager
def counting(runtime: Runtime) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement.split("\n")[0][:100])

    event.listen(runtime.store.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(runtime.store.engine, "before_cursor_execute", note)


def test_a_booking_and_an_end_take_a_handful_of_statements(facility: Facility, runtime: Runtime) -> None:
    facility.nodes(20)
    facility.prices()
    cust = facility.customer()
    key = facility.customer_key(cust["id"])
    body = {"customer_id": cust["id"], "gpu_model": "A100-80GB", "plan": "on_demand"}
    # Warm: the calendar is loaded once, the key looked up once; then many leases are stored.
    for n in (1, 8, 2, 4):
        facility.lease(key, gpu_count=n, **body)
    for n in (1, 8, 1, 8):
        with counting(runtime) as book:
            lease = facility.lease(key, gpu_count=n, **body)
        with counting(runtime) as end:
            r = facility.c.post(f"/api/v1/leases/{lease['id']}/end", headers=key)
            assert r.status_code == 200 and r.json()["state"] == "ended", r.text
        assert len(book) <= BOOK_MAX + (2 if runtime.store.is_postgres else 1), "\n".join(book)
        assert len(end) <= END_MAX, "\n".join(end)
        # The calendar is not read from the store per request: no query of clusters, sites or every allocation.
        assert not [x for x in book if x.startswith("UPDATE leases")], "\n".join(book)  # inserted as it ends up
        for stmt in book:
            assert not stmt.startswith(
                ("SELECT clusters", "SELECT sites", "SELECT allocations.lease_id", "SELECT nodes")
            ), stmt
    assert runtime.calendars.reloads == 1


def test_allocations_numbered_ahead_never_collide_with_ones_the_store_numbers(
    facility: Facility, runtime: Runtime
) -> None:
    """SQLite numbers a booking's allocations itself (one insert); a session that already holds allocations the
    store will number (none of this path's, but a use case may) gets none of those ids: the store numbers them all."""
    from datetime import timedelta

    from gpulease.domain.placement import GpuRef, Placement
    from gpulease.services.capacity import allocate, draw_ids
    from gpulease.store.models import Allocation, Lease

    facility.nodes(2)
    facility.prices()
    cust = facility.customer()
    key = facility.customer_key(cust["id"])
    body = {"customer_id": cust["id"], "gpu_model": "A100-80GB", "plan": "on_demand"}
    leases = [facility.lease(key, gpu_count=n, duration_s=3600, **body)["id"] for n in (8, 2)]
    with runtime.work() as w:
        _, first = draw_ids(w)
        if not runtime.store.is_postgres:
            assert first is not None and first > 0
        a, b = (w.session.get(Lease, i) for i in leases)
        assert a is not None and b is not None
        end = a.starts_at + timedelta(days=30)  # after both leases: nothing overlaps
        node = a.allocations[0].node_id
        # An allocation the store will number, pending in the session, then a placement numbered ahead.
        a.allocations.append(Allocation(node_id=node, gpu_index=0, starts_at=end, ends_at=None))
        allocate(w, b, Placement((GpuRef(node, 1), GpuRef(node, 2))), start=end, end=None, first_id=first)
        assert [x.id for x in b.allocations if x in w.session.new] == [None, None]  # the store numbers them
        w.session.flush()
        ids = [x.id for x in (*a.allocations, *b.allocations)]
        assert len(set(ids)) == len(ids)
        w.session.rollback()
    with runtime.work() as w:
        _, first = draw_ids(w)
        b = w.session.get(Lease, leases[1])
        assert b is not None
        allocate(w, b, Placement((GpuRef(node, 1), GpuRef(node, 2))), start=end, end=None, first_id=first)
        if first is not None:  # SQLite: numbered ahead, consecutively, past every allocation stored
            assert sorted(x.id for x in w.session.new if isinstance(x, Allocation)) == [first, first + 1]
        w.session.flush()
        assert all(x.id is not None for x in b.allocations)
        w.session.rollback()


def test_a_booking_names_the_nodes_of_its_gpus_without_a_statement(facility: Facility, runtime: Runtime) -> None:
    nodes = facility.nodes(2)
    facility.prices()
    cust = facility.customer()
    key = facility.customer_key(cust["id"])
    body = {"customer_id": cust["id"], "gpu_model": "A100-80GB", "plan": "on_demand"}
    warm = facility.lease(key, gpu_count=1, **body)  # the calendar loaded, the key looked up
    assert facility.c.post(f"/api/v1/leases/{warm['id']}/end", headers=key).status_code == 200
    with counting(runtime) as book:
        lease = facility.lease(key, gpu_count=12, **body)  # more than one node holds
    names = {n["id"]: n["name"] for n in nodes}
    assert len({g["node_id"] for g in lease["gpus"]}) == 2
    assert all(g["node"] == names[g["node_id"]] for g in lease["gpus"]), lease["gpus"]
    assert lease["gpus"] == sorted(lease["gpus"], key=lambda g: (g["node_id"], g["index"]))
    assert [x for x in book if x.startswith("SELECT nodes")] == [], "\n".join(book)
    # The end's answer names the same nodes (read with the lease, in one statement), and so does a look.
    r = facility.c.post(f"/api/v1/leases/{lease['id']}/end", headers=key)
    assert r.status_code == 200 and r.json()["gpus"] == lease["gpus"], r.text
    assert facility.c.get(f"/api/v1/leases/{lease['id']}", headers=key).json()["gpus"] == lease["gpus"]


def test_nodes_added_and_removed_by_another_process_are_named_as_stored(
    facility: Facility, runtime: Runtime, settings: Settings, clock: Clock
) -> None:
    """The names in a booking's answer come from the calendar in memory: a node another process adds (CPUs
    described or not) or removes is seen by the next booking here, without a listener (both stores)."""
    first = facility.nodes(1, model="H100-80GB", prefix="here")[0]
    facility.prices("H100-80GB")
    cust = facility.customer()
    key = facility.customer_key(cust["id"])
    body = {"customer_id": cust["id"], "gpu_model": "H100-80GB", "plan": "on_demand"}
    held = facility.lease(key, gpu_count=8, **body)  # this process's calendar loaded; the node full
    assert {g["node"] for g in held["gpus"]} == {first["name"]} and held["cores"] == []
    other = Runtime(settings, clock=clock)
    try:
        for name, cpus in (("there-plain", None), ("there-dgx", NodeCpus("Xeon-8480+", 112, 2048))):
            node = other.perform(
                inventory.add_node,
                actor=SYSTEM,
                site="s1",
                cluster="c1",
                name=name,
                gpu_model_name="H100-80GB",
                gpu_count=8,
                cpus=cpus,
            )
            lease = facility.lease(key, gpu_count=8, **body)  # only the new node is free
            assert {(g["node"], g["node_id"]) for g in lease["gpus"]} == {(name, node.id)}, lease
            looked = facility.c.get(f"/api/v1/leases/{lease['id']}", headers=key).json()
            assert (looked["gpus"], looked["cores"]) == (lease["gpus"], lease["cores"])
            assert (lease["cores"] != []) == (cpus is not None), lease["cores"]
            end = facility.c.post(f"/api/v1/leases/{lease['id']}/end", headers=key)
            assert end.status_code == 200, end.text
            other.perform(inventory.remove_node, actor=SYSTEM, node_id=node.id)  # renamed "~removed" as it goes
        assert facility.c.post(f"/api/v1/leases/{held['id']}/end", headers=key).status_code == 200
        lease = facility.lease(key, gpu_count=8, **body)
        assert {g["node"] for g in lease["gpus"]} == {first["name"]}, lease
    finally:
        other.close()


def test_an_end_reads_its_usage_and_whether_a_run_is_going_in_one_statement(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    """A run not finished on record keeps the ended lease `ending` (its runs are being stopped); a finished one, or
    none, lets it be `ended` at once."""
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    key = facility.customer_key(cust["id"])
    body = {"customer_id": cust["id"], "gpu_model": "A100-80GB", "plan": "on_demand"}
    booked = [facility.lease(key, gpu_count=1, **body)["id"] for _ in range(3)]
    with runtime.work() as w:
        for lease_id, state in ((booked[0], "succeeded"), (booked[0], "running"), (booked[1], "failed")):
            w.session.add(
                Run(
                    id=f"run-{lease_id}-{state}",
                    lease_id=lease_id,
                    customer_id=cust["id"],
                    command=["true"],
                    env={},
                    backend="sandbox",
                    state=state,
                    log_path="/dev/null",
                    created_at=clock(),
                )
            )
    states = []
    for lease_id in booked:
        with counting(runtime) as end:
            r = facility.c.post(f"/api/v1/leases/{lease_id}/end", headers=key)
        assert r.status_code == 200, r.text
        states.append(r.json()["state"])
        # Before its writes: the lease with its GPUs, then its usage and runs together (stopping them comes after).
        reads = [x for x in end[: end.index(next(x for x in end if x.startswith("UPDATE")))] if x.startswith("SELECT")]
        assert len(reads) == 2 and "usage_records" in reads[1], "\n".join(end)
    assert states == ["ending", "ended", "ended"]


def test_a_booking_as_soon_as_possible_that_fits_now_costs_what_a_booking_now_costs(
    facility: Facility, runtime: Runtime
) -> None:
    """With nothing waiting and the GPUs free, `start: asap` is placed now, where the queue would place it, without
    going through the queue (its flush of a queued lease and its pass over the backlog); with a queue, it joins it."""
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    key = facility.customer_key(cust["id"])
    body = {"customer_id": cust["id"], "gpu_model": "A100-80GB", "plan": "on_demand", "duration_s": 3600}
    facility.lease(key, gpu_count=1, **body)  # warm
    with counting(runtime) as now:
        facility.lease(key, gpu_count=2, **body)
    with counting(runtime) as asap:
        lease = facility.lease(key, gpu_count=2, start="asap", max_wait_s=600, **body)
    assert lease["state"] == "active" and len(lease["gpus"]) == 2
    assert len(asap) == len(now), "\n".join(asap)
    # The next one does not fit now (3 GPUs free): it waits. The one after it would fit, but joins the queue rather
    # than jump it (the queue's backfill decides whether it may start before the head).
    waiting = facility.lease(key, gpu_count=4, start="asap", max_wait_s=600, **body)
    behind = facility.lease(key, gpu_count=1, start="asap", max_wait_s=600, **body)
    assert waiting["state"] == "queued", waiting
    events = facility.c.get(f"/api/v1/leases/{behind['id']}/events", headers=key).json()
    assert "queued" in [e["to_state"] for e in events], events
