"""A booking and an end cost a handful of SQL statements, whatever is stored (counted with an engine event)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from gpulease.runtime import Runtime
from tests.conftest import Facility

# Through the API, one request each. Booking: the customer, the price, the GPUs the customer holds, the lease's
# id (drawn before placing, so the lease is inserted once, in the state it reaches, never updated), the queue
# head, the calendar version (which also serialises placements of the model), the lease, its allocations (one row
# per GPU: SQLite's driver inserts them one by one), its events, audit records and notification as one insert each
# (store/staged.py), the nodes' names for the answer. No calendar read, no webhook read (the Runtime knows who
# listens), no usage sum for a lease booked now. (Before: 34, plus the calendar growing; then 20 + 1 per GPU; then
# 14 + 1 per GPU; then 15 on PostgreSQL, with the lease inserted early for its id and updated after.)
BOOK_MAX = 12  # + 1 per GPU on SQLite (its BEGIN IMMEDIATE counted). PostgreSQL: + 2 flat, the version read when
# placing and bumped at the commit (placements of a model overlap there; services/calendars.py) and the NOTIFY;
# the allocations go in one insert.
# Ending: the lease and its GPUs in one read, its runs, its usage on record (read once, before anything is
# staged, so the events, audit records and notification go in one batch each), the state changes, the GPUs
# released, the calendar sequence and, on PostgreSQL, the NOTIFY. (Before: 16.)
END_MAX = 10


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
        assert len(book) <= BOOK_MAX + (2 if runtime.store.is_postgres else n), "\n".join(book)
        assert len(end) <= END_MAX, "\n".join(end)
        # The calendar is not read from the store per request: no query of clusters, sites or every allocation.
        assert not [x for x in book if x.startswith("UPDATE leases")], "\n".join(book)  # inserted as it ends up
        for stmt in book:
            assert not stmt.startswith(("SELECT clusters", "SELECT sites", "SELECT allocations.lease_id")), stmt
    assert runtime.calendars.reloads == 1
