"""store/direct.py: new rows written with one INSERT per table, the objects persistent as if loaded (both stores)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, inspect, select
from sqlalchemy.orm.attributes import set_committed_value

from gpulease.runtime import Runtime
from gpulease.store import direct, staged
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
            direct.insert_now(s, [lease, *lease.allocations])
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
        direct.insert_now(s, [lease, *lease.allocations])
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
            direct.insert_now(s, [lease, *lease.allocations])
        assert [x.split(" (")[0] for x in seen][-1] == "INSERT INTO lease_events", seen
    with runtime.store.transaction() as s:
        assert s.scalar(select(LeaseEvent.to_state).where(LeaseEvent.lease_id == 555_000)) == "active"


@pytest.mark.parametrize("written_by", ["flush", "insert_now"])
def test_objects_made_without_the_constructor_are_written_as_constructed_ones(
    runtime: Runtime, ids: tuple[int, int], written_by: str
) -> None:
    """`made` (as a booking makes its lease and allocations) gives objects a flush and `insert_now` both write whole:
    the columns given, the Python defaults for the rest, the allocations known to their lease without a query."""
    customer_id, node_id = ids
    lease_id = 777_001 if written_by == "flush" else 777_002
    values = {"id": lease_id, "customer_id": customer_id, "gpu_model": "A100-80GB", "gpu_count": 2,
              "plan": "on_demand", "state": "active", "starts_at": T, "ends_at": None, "quote": {"rate": "1.25"},
              "created_at": T}  # fmt: skip
    with runtime.store.transaction() as s:
        (lease,) = direct.made(Lease, [values])
        allocs = direct.made(
            Allocation,
            [{"id": None, "lease_id": lease_id, "node_id": node_id, "gpu_index": i, "starts_at": T, "ends_at": None,
              "released": False} for i in (4, 5)],
        )  # fmt: skip
        set_committed_value(lease, "allocations", allocs)
        s.add_all([lease, *allocs])
        if written_by == "flush":
            s.flush()
        else:
            direct.insert_now(s, [lease, *allocs])
        assert all(inspect(x).persistent and not inspect(x).modified for x in (lease, *allocs))
        with statements(runtime) as seen:
            assert [a.gpu_index for a in lease.allocations] == [4, 5] and lease.calendar_seq == 0
        assert seen == []
    with runtime.store.transaction() as s:
        stored = s.get(Lease, lease_id)
        assert stored is not None and (stored.state, stored.quote, stored.resource) == (
            "active",
            {"rate": "1.25"},
            "gpu",
        )
        assert [(a.gpu_index, a.released) for a in stored.allocations] == [(4, False), (5, False)]
    with pytest.raises(TypeError, match="no column"):  # as the constructor refuses a name it does not know
        direct.made(Lease, [values | {"gpus": 2}])


def test_a_value_only_the_store_or_a_function_would_give_is_refused(runtime: Runtime) -> None:
    with runtime.store.transaction() as s:
        c = Customer(legal_name="X", country="US", created_at=T, owners=None)  # `owners` defaults to list()
        with pytest.raises(ValueError, match=r"customers\.owners"):
            direct.insert_now(s, [c])


def test_an_object_already_stored_is_refused(runtime: Runtime, ids: tuple[int, int]) -> None:
    customer_id, _ = ids
    with runtime.store.transaction() as s:
        c = s.get(Customer, customer_id)
        with pytest.raises(ValueError, match="already persistent"):
            direct.insert_now(s, [c])


def test_listeners_hear_of_the_new_objects(runtime: Runtime, ids: tuple[int, int]) -> None:
    """What follows flushes (the calendars, the idempotency binding) follows these inserts too."""
    customer_id, node_id = ids
    heard: list[list[object]] = []
    direct.listen(runtime.store.sessions, lambda _s, objects, _new: heard.append(list(objects)))
    with runtime.store.transaction() as s:
        lease = _lease(customer_id, node_id)
        objects = [lease, *lease.allocations]
        direct.insert_now(s, objects)
    assert heard == [objects]


def _stored_lease(runtime: Runtime, ids: tuple[int, int], gpus: Sequence[int] = (0, 1)) -> int:
    customer_id, node_id = ids
    with runtime.store.transaction() as s:
        lease = _lease(customer_id, node_id, gpus=gpus)
        direct.insert_now(s, [lease, *lease.allocations])
        return lease.id


def test_changed_columns_are_written_and_the_objects_left_clean(runtime: Runtime, ids: tuple[int, int]) -> None:
    lease_id = _stored_lease(runtime, ids)
    heard: list[tuple[int, bool]] = []
    direct.listen(runtime.store.sessions, lambda _s, objects, new: heard.append((len(objects), new)))
    with runtime.store.transaction() as s:
        lease = s.get(Lease, lease_id)
        assert lease is not None
        a, b = lease.allocations
        lease.state, lease.ended_at = "ended", T + timedelta(minutes=5)
        a.released = b.released = True
        lease.gpu_count = 2  # set to what it was: not written
        with statements(runtime) as seen:
            direct.update_now(s, [lease, a, b])
        assert [x.split(" SET")[0] for x in seen] == ["UPDATE leases", "UPDATE allocations"], seen
        assert "gpu_count" not in seen[0]
        assert not s.dirty and not s.new
        for state in (inspect(lease), inspect(a), inspect(b)):
            assert state.persistent and not state.modified
        with statements(runtime) as seen:
            s.flush()
        assert seen == []
    assert heard == [(3, False)]
    with runtime.store.transaction() as s:
        stored = s.get(Lease, lease_id)
        assert stored is not None and stored.state == "ended" and stored.ended_at == T + timedelta(minutes=5)
        assert [x.released for x in stored.allocations] == [True, True]


def test_a_changed_relationship_is_left_to_the_flush(runtime: Runtime, ids: tuple[int, int]) -> None:
    customer_id, node_id = ids
    lease_id = _stored_lease(runtime, ids)
    with runtime.store.transaction() as s:
        lease = s.get(Lease, lease_id)
        assert lease is not None
        lease.allocations.append(Allocation(node_id=node_id, gpu_index=5, starts_at=T, ends_at=None))
        lease.state = "ended"
        direct.update_now(s, [lease])  # the collection changed: flushed, the new allocation inserted with it
        assert not s.new and not s.dirty
    with runtime.store.transaction() as s:
        stored = s.get(Lease, lease_id)
        assert stored is not None and stored.state == "ended" and len(stored.allocations) == 3
        assert stored.customer_id == customer_id


def test_an_end_through_the_api_writes_its_changes_directly(
    facility: Facility, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path the server runs: the end's lease and GPUs written by update_now, the calendar told, the GPUs free."""
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    body = {"customer_id": cust["id"], "gpu_model": "A100-80GB", "gpu_count": 8, "plan": "on_demand"}
    calls: list[int] = []
    real = direct.update_now

    def spy(session: Any, objects: Sequence[Any]) -> None:
        calls.append(len(objects))
        real(session, objects)

    first = facility.lease(duration_s=3600, **body)
    monkeypatch.setattr(direct, "update_now", spy)
    r = facility.c.post(f"/api/v1/leases/{first['id']}/end", headers=facility.k.op)
    monkeypatch.undo()
    assert r.status_code == 200 and r.json()["state"] == "ended", r.text
    assert calls == [9]  # the lease and its 8 GPUs
    # The calendar in memory heard of it: the whole node is free again at once.
    again = facility.lease(duration_s=3600, **body)
    assert again["state"] == "active" and {g["node"] for g in again["gpus"]} == {g["node"] for g in first["gpus"]}


def test_a_rollback_takes_the_new_objects_out_of_the_session_as_after_a_flush(
    runtime: Runtime, ids: tuple[int, int]
) -> None:
    customer_id, node_id = ids
    s = runtime.store.sessions()
    try:
        s.begin()
        lease = _lease(customer_id, node_id, lease_id=444_000, gpus=(0,))
        direct.insert_now(s, [lease, *lease.allocations])
        assert lease in s and inspect(lease).persistent
        s.rollback()
        # As for rows a flush wrote: the objects are transient again, nothing of them is stored.
        assert lease not in s and inspect(lease).transient
        assert s.get(Lease, 444_000) is None
    finally:
        s.close()


def test_by_id_reads_what_session_get_reads(runtime: Runtime, ids: tuple[int, int]) -> None:
    customer_id, node_id = ids
    by_id = direct.ById(Lease)
    with runtime.store.transaction() as s:
        direct.insert_now(s, [lease := _lease(customer_id, node_id, lease_id=333_000)])
    with runtime.store.transaction() as s:
        with statements(runtime) as seen:
            got = by_id(s, 333_000)
        assert got is not None and got.id == 333_000 and got.gpu_count == 2
        assert [x for x in seen if x.startswith("SELECT")], seen
        # In the session already: the same object, no statement.
        with statements(runtime) as seen:
            assert by_id(s, 333_000) is got
        assert seen == []
        assert by_id(s, 333_001) is None
        assert s.get(Customer, customer_id) is direct.ById(Customer)(s, customer_id)
    assert lease.id == 333_000


def test_the_same_change_to_several_rows_is_one_statement_on_postgresql(
    runtime: Runtime, ids: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An end's GPUs all change alike: on PostgreSQL one UPDATE for them (`= ANY` of their ids), not an executemany
    (a pipeline in psycopg); rows changed differently still get theirs."""
    if not runtime.store.is_postgres:
        pytest.skip("PostgreSQL only")
    import psycopg

    lease_id = _stored_lease(runtime, ids, gpus=(0, 1, 2, 3))
    many: list[int] = []
    executemany = psycopg.Cursor.executemany

    def counted(self: psycopg.Cursor[object], query: str, params: Sequence[Any], **kwargs: Any) -> None:
        many.append(len(params))
        executemany(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "executemany", counted)
    with runtime.store.transaction() as s:
        stored = s.get(Lease, lease_id)
        assert stored is not None
        for a in stored.allocations:
            a.released = True
        direct.update_now(s, list(stored.allocations))
        assert many == []
        a, b, *_ = stored.allocations
        a.ends_at, b.ends_at = T + timedelta(minutes=1), T + timedelta(minutes=2)
        direct.update_now(s, [a, b])
        assert many == [2]  # different values: one row each
        assert not s.dirty
    with runtime.store.transaction() as s:
        got = s.execute(
            select(Allocation.released, Allocation.ends_at)
            .where(Allocation.lease_id == lease_id)
            .order_by(Allocation.id)
        ).all()
    assert [tuple(r) for r in got] == [
        (True, T + timedelta(minutes=1)),
        (True, T + timedelta(minutes=2)),
        (True, None),
        (True, None),
    ]


def test_rows_staged_into_several_tables_are_one_statement_on_postgresql(
    runtime: Runtime, ids: tuple[int, int]
) -> None:
    """A booking stages its events, audit records and notifications: PostgreSQL gets them in one statement (each
    table's INSERT a CTE), SQLite one INSERT per table; either way every row is stored, in the order staged."""
    from gpulease.store.models import AuditRecord, Notification

    lease_id = _stored_lease(runtime, ids, gpus=(0,))
    customer_id, _node_id = ids
    with runtime.store.transaction() as s:
        before = s.scalar(select(AuditRecord.id).order_by(AuditRecord.id.desc()).limit(1))
        for to in ("scheduled", "active"):
            row = {"lease_id": lease_id, "at": T, "from_state": None, "to_state": to, "actor": "t", "reason": None}
            staged.stage(s, LeaseEvent.__table__, row)  # type: ignore[arg-type]
        for n in range(3):
            audit = {"at": T, "actor": "t", "action": f"test.{n}", "subject": f"lease:{lease_id}", "data": {"n": n}}
            staged.stage(s, AuditRecord.__table__, audit)  # type: ignore[arg-type]
        note = {"customer_id": customer_id, "lease_id": lease_id, "type": "test", "at": T, "data": {}}
        staged.stage(s, Notification.__table__, note)  # type: ignore[arg-type]
        with statements(runtime) as seen:
            staged.write(s)
        heads = [x.split(" (")[0] for x in seen]
        if runtime.store.is_postgres:
            assert len(seen) == 1 and seen[0].startswith("WITH s0 AS"), seen
        else:
            assert heads == ["INSERT INTO lease_events", "INSERT INTO audit_log", "INSERT INTO notifications"], seen
    with runtime.store.transaction() as s:
        events = s.scalars(select(LeaseEvent.to_state).where(LeaseEvent.lease_id == lease_id).order_by(LeaseEvent.id))
        assert list(events)[-2:] == ["scheduled", "active"]
        actions = s.scalars(select(AuditRecord.action).where(AuditRecord.id > before).order_by(AuditRecord.id))
        assert list(actions) == ["test.0", "test.1", "test.2"]
        assert s.scalar(select(Notification.type).where(Notification.lease_id == lease_id)) == "test"


def test_new_objects_are_added_as_add_adds_them(runtime: Runtime, ids: tuple[int, int]) -> None:
    """`add_new`: an object holding no related object is pending in the session, heard of by the session's
    listeners, written by the flush and taken out again by a rollback, as with `add`; one that holds a new related
    object brings it along (the cascade `add` follows)."""
    customer_id, node_id = ids
    attached: list[object] = []

    def note(_session: Any, obj: object) -> None:
        attached.append(obj)

    row = {"lease_id": None, "node_id": node_id, "starts_at": T, "ends_at": None, "released": False}
    with runtime.store.transaction() as s:
        event.listen(s, "after_attach", note)
        lease = _lease(customer_id, node_id, gpus=())
        s.add(lease)
        s.flush()
        plain = direct.made(Allocation, [row | {"lease_id": lease.id, "gpu_index": i} for i in (6, 7)])
        direct.add_new(s, plain)
        assert all(inspect(a).pending for a in plain) and attached[-2:] == plain
        other = _lease(customer_id, node_id, gpus=(3,))  # holds a new allocation: added through the cascade
        direct.add_new(s, [other])
        assert inspect(other).pending and inspect(other.allocations[0]).pending
        s.flush()
        assert all(inspect(a).persistent for a in (*plain, other, *other.allocations))
        kept = lease.id
    with runtime.store.transaction() as s:
        rows = s.scalars(select(Allocation.gpu_index).where(Allocation.lease_id == kept)).all()
        assert sorted(rows) == [6, 7]
    with pytest.raises(RuntimeError), runtime.store.transaction() as s:
        gone = direct.made(Allocation, [row | {"lease_id": kept, "gpu_index": 2}])
        direct.add_new(s, gone)
        s.flush()
        raise RuntimeError("roll back")
    assert inspect(gone[0]).transient
