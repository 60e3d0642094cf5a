"""store/inserted.py: new rows written with one INSERT per table, the objects persistent as if loaded (both stores)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, inspect, select

from gpulease.runtime import Runtime
from gpulease.store import inserted, staged
from gpulease.store.models import Allocation, Customer, Lease, LeaseEvent
from tests.conftest import Facility

T = datetime(2030, 1, 1, 12, 0, 0).astimezone()


@contextmanager
def statements(rt: Runtime) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split())[:60])

    event.listen(rt.store.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(rt.store.engine, "before_cursor_execute", note)


def _lease(customer_id: int, node_id: int, lease_id: int | None = None, gpus: Sequence[int] = (0, 1)) -> Lease:
    lease = Lease(
        id=lease_id,
        customer_id=customer_id,
        gpu_model="A100-80GB",
        gpu_count=len(gpus),
        plan="on_demand",
        state="active",
        starts_at=T,
        ends_at=T + timedelta(hours=1),
        quote={},
        created_at=T,
        allocations=[],
    )
    for i in gpus:
        lease.allocations.append(Allocation(lease_id=lease_id, node_id=node_id, gpu_index=i, starts_at=T, ends_at=None))
    return lease


@pytest.fixture
def ids(facility: Facility) -> tuple[int, int]:
    (node,) = facility.nodes(1)
    return facility.customer()["id"], node["id"]


def test_rows_are_written_by_one_insert_per_table_and_the_objects_are_persistent(
    runtime: Runtime, ids: tuple[int, int]
) -> None:
    customer_id, node_id = ids
    with runtime.store.transaction() as s:
        lease = _lease(customer_id, node_id)
        s.add(lease)  # pending, as a use case leaves it: taken out of the flush by insert_now
        with statements(runtime) as seen:
            inserted.insert_now(s, [lease, *lease.allocations])
        # SQLite gives ids back in the rows' order only one row at a time (the booking draws them instead).
        per_row = 1 if runtime.store.is_postgres else 2
        inserts = [x.split(" (")[0] for x in seen if x != "BEGIN IMMEDIATE"]
        assert inserts == ["INSERT INTO leases", *["INSERT INTO allocations"] * per_row], seen
        # The ids came back from the INSERTs, in the objects' order; the allocations point at their lease.
        assert lease.id is not None
        a, b = lease.allocations
        assert a.id is not None and b.id is not None and a.id < b.id
        for state in (inspect(lease), inspect(a), inspect(b)):
            assert state.persistent and not state.modified
        assert not s.new and not s.dirty
        # Columns left unset read as written (None, or the Python default), with no refresh from the store.
        with statements(runtime) as seen:
            assert lease.ended_at is None and lease.calendar_seq == 0 and a.released is False
            s.flush()
        assert seen == []
        # A later change is an ordinary UPDATE of what was inserted.
        lease.state = "ending"
        with statements(runtime) as seen:
            s.flush()
        assert len(seen) == 1 and seen[0].startswith("UPDATE leases SET state"), seen
        lease_id = lease.id
    with runtime.store.transaction() as s:
        stored = s.scalar(select(Lease).where(Lease.id == lease_id))
        assert stored is not None and stored.state == "ending" and stored.gpu_count == 2
        rows = s.execute(select(Allocation.gpu_index, Allocation.released).where(Allocation.lease_id == lease_id))
        assert sorted(tuple(r) for r in rows) == [(0, False), (1, False)]


def test_ids_given_are_kept(runtime: Runtime, ids: tuple[int, int]) -> None:
    customer_id, node_id = ids
    with runtime.store.transaction() as s:
        lease = _lease(customer_id, node_id, lease_id=987_654, gpus=(3,))
        lease.allocations[0].id = 876_543
        inserted.insert_now(s, [lease, *lease.allocations])
    with runtime.store.transaction() as s:
        assert s.get(Allocation, 876_543) is not None
        got = s.get(Lease, 987_654)
        assert got is not None and got.allocations[0].gpu_index == 3


def test_rows_staged_for_the_new_lease_follow_it(runtime: Runtime, ids: tuple[int, int]) -> None:
    """An event staged before the lease exists is written after it (PostgreSQL checks the foreign key at once)."""
    customer_id, node_id = ids
    with runtime.store.transaction() as s:
        lease = _lease(customer_id, node_id, lease_id=555_000)
        row = {"lease_id": 555_000, "at": T, "from_state": None, "to_state": "active", "actor": "t", "reason": None}
        staged.stage(s, LeaseEvent.__table__, row)  # type: ignore[arg-type]
        with statements(runtime) as seen:
            inserted.insert_now(s, [lease, *lease.allocations])
        assert [x.split(" (")[0] for x in seen][-1] == "INSERT INTO lease_events", seen
    with runtime.store.transaction() as s:
        assert s.scalar(select(LeaseEvent.to_state).where(LeaseEvent.lease_id == 555_000)) == "active"


def test_a_value_only_the_store_or_a_function_would_give_is_refused(runtime: Runtime) -> None:
    with runtime.store.transaction() as s:
        c = Customer(legal_name="X", country="US", created_at=T, owners=None)  # `owners` defaults to list()
        with pytest.raises(ValueError, match=r"customers\.owners"):
            inserted.insert_now(s, [c])


def test_an_object_already_stored_is_refused(runtime: Runtime, ids: tuple[int, int]) -> None:
    customer_id, _ = ids
    with runtime.store.transaction() as s:
        c = s.get(Customer, customer_id)
        with pytest.raises(ValueError, match="already persistent"):
            inserted.insert_now(s, [c])


def test_listeners_hear_of_the_new_objects(runtime: Runtime, ids: tuple[int, int]) -> None:
    """What follows flushes (the calendars, the idempotency binding) follows these inserts too."""
    customer_id, node_id = ids
    heard: list[list[object]] = []
    inserted.listen(runtime.store.sessions, lambda _s, objects: heard.append(list(objects)))
    with runtime.store.transaction() as s:
        lease = _lease(customer_id, node_id)
        objects = [lease, *lease.allocations]
        inserted.insert_now(s, objects)
    assert heard == [objects]
