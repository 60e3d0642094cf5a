"""store/prepared.py: statements compiled once and run on the driver's cursor, as SQLAlchemy would run them (both
stores)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import Table, bindparam, event, insert, select, text
from sqlalchemy.exc import IntegrityError

from gpulease.runtime import Runtime
from gpulease.services import billing, booking_checks, calendars, capacity, leases, telemetry, transitions
from gpulease.store import prepared, staged
from gpulease.store.models import Customer, LeaseEvent
from tests.conftest import Facility
from tests.test_direct import _lease, _stored_lease, statements

T = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
EVENTS = cast(Table, LeaseEvent.__table__)


def _lease_id(facility: Facility, runtime: Runtime) -> int:
    """A stored lease's id, for rows that refer to one."""
    (node,) = facility.nodes(1)
    return _stored_lease(runtime, (facility.customer()["id"], node["id"]))


def test_the_hot_statements_run_on_the_cursor(runtime: Runtime) -> None:
    """Each statement a booking and an end run this way is of a shape covered (none falls back unnoticed)."""
    dialect = runtime.store.engine.dialect
    hot = [booking_checks._HELD, transitions._UNFINISHED_RUN, calendars._VERSION, calendars._BUMP]
    hot += [calendars._SEQUENCE_ONE, capacity._ANY_QUEUED, leases._ONE_NODE_FACTS]
    hot += [capacity._NEXT_ID if runtime.store.is_postgres else capacity._NEXT_ROWIDS]
    hot += [telemetry._SUMMARY, billing._ADD_COMPUTE]  # an end's: floating columns back
    for stmt in hot:
        assert stmt._plan_for(dialect, None) is not None, stmt.stmt
    events = staged._insert(EVENTS)
    assert events._plan_for(dialect, ("lease_id", "at", "from_state", "to_state", "actor", "reason")) is not None


def test_rows_written_on_the_cursor_are_those_sqlalchemy_writes(facility: Facility, runtime: Runtime) -> None:
    """Values go through the column types' processing (a UTC datetime on SQLite's text, say) as SQLAlchemy's
    own executemany does, in order; and a statement listened to goes through SQLAlchemy, where it is seen."""
    lease_id = _lease_id(facility, runtime)
    row = {"lease_id": lease_id, "at": T, "from_state": None, "to_state": "active", "actor": "a", "reason": None}
    fast = prepared.Prepared(insert(EVENTS))
    with runtime.work() as w:
        conn = w.session.connection()
        fast.many(conn, [row | {"actor": "fast-1"}, row | {"actor": "fast-2", "reason": "r"}])
        conn.execute(insert(EVENTS), [row | {"actor": "sa-1"}, row | {"actor": "sa-2", "reason": "r"}])
    with statements(runtime) as seen, runtime.work() as w:
        fast.many(w.session.connection(), [row | {"actor": "seen"}])
    assert any("INSERT INTO lease_events" in s for s in seen)
    with runtime.work() as w:
        got = w.session.execute(
            select(LeaseEvent.actor, LeaseEvent.at, LeaseEvent.reason)
            .where(LeaseEvent.lease_id == lease_id)
            .order_by(LeaseEvent.id)
        ).all()
        stored = w.session.execute(
            text("SELECT at FROM lease_events WHERE lease_id = :l ORDER BY id"), {"l": lease_id}
        ).scalars()
        assert len(set(stored)) == 1  # the same text (SQLite) or value (PostgreSQL) either way
    assert [tuple(r) for r in got] == [
        ("fast-1", T, None),
        ("fast-2", T, "r"),
        ("sa-1", T, None),
        ("sa-2", T, "r"),
        ("seen", T, None),
    ]


def test_a_read_sees_what_the_session_holds_and_has_staged(facility: Facility, runtime: Runtime) -> None:
    """As `Session.execute` would: pending objects flushed first for a statement on mapped classes, staged rows
    written first for any."""
    (node,) = facility.nodes(1)
    customer_id = facility.customer()["id"]
    held = prepared.Prepared(
        select(Customer.id).where(Customer.id == bindparam("c")),
        autoflush=True,
    )
    events = prepared.Prepared(text("SELECT count(*) FROM lease_events WHERE lease_id = :l"))
    with runtime.work() as w:
        lease = _lease(customer_id, node["id"])
        w.session.add(lease)
        w.session.flush()
        row = {"lease_id": lease.id, "at": T, "from_state": None, "to_state": "active", "actor": "a", "reason": None}
        staged.stage(w.session, EVENTS, row)
        assert events.scalar(w.session, {"l": lease.id}) == 1
        assert held.scalar(w.session, {"c": customer_id}) == customer_id
        w.session.rollback()


def test_a_floating_column_comes_back_as_sqlalchemy_gives_it(facility: Facility, runtime: Runtime) -> None:
    """A Float column read on the cursor: psycopg's numbers convert by the column's database type, which the plan
    cannot know before a row comes (it raised there); a floating column is handed back as a float either way."""
    customer_id = facility.customer()["id"]
    with runtime.work() as w:
        after = billing._ADD_COMPUTE.scalar(w.session, {"customer_id": customer_id, "added": 2.5e20})
        again = billing._ADD_COMPUTE.scalar(w.session, {"customer_id": customer_id, "added": 0.5e20})
        read = w.session.scalar(select(Customer.cumulative_flop).where(Customer.id == customer_id))
        mean, peak = telemetry.summary(w.session, 0, T, T + timedelta(hours=1))
        w.session.rollback()
    assert isinstance(after, float) and isinstance(again, float) and again == read and again - after == 0.5e20
    assert (mean, peak) == (None, None)


def test_a_driver_error_is_sqlalchemy_s(facility: Facility, runtime: Runtime) -> None:
    """A refused row raises SQLAlchemy's IntegrityError, as through the Connection, whatever the driver."""
    customer_id = facility.customer()["id"]
    clash = prepared.Prepared(text("INSERT INTO customers (id, legal_name, country) VALUES (:i, :n, 'US')"))
    with pytest.raises(IntegrityError), runtime.work() as w:
        clash.rows(w.session, {"i": customer_id, "n": "twice"})


def test_the_statement_budget_counts_what_the_cursor_runs(runtime: Runtime) -> None:
    """Something listening for statements turns the cursor path off (the statement-counting tests count every one)."""
    engine = runtime.store.engine
    assert not prepared._watched(engine)

    def note(*_: object) -> None:
        pass

    event.listen(engine, "before_cursor_execute", note)
    try:
        assert prepared._watched(engine)
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_rows_of_an_insert_go_as_one_statement_on_psycopg(
    facility: Facility, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psycopg runs an executemany as a pipeline (several waits on the socket per row); the rows of an INSERT go as
    one statement of several VALUES instead, at most 32 to a statement, in order, with the types' processing."""
    if not runtime.store.is_postgres:
        pytest.skip("psycopg only: SQLite's executemany is one loop in C")
    import psycopg

    lease_id = _lease_id(facility, runtime)
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def seen(self: psycopg.Cursor[Any], query: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(query)
        return execute(self, query, *args, **kwargs)

    def refused(*_: object, **__: object) -> None:
        raise AssertionError("an executemany was run")

    monkeypatch.setattr(psycopg.Cursor, "execute", seen)
    monkeypatch.setattr(psycopg.Cursor, "executemany", refused)
    rows = [
        {"lease_id": lease_id, "at": T + timedelta(seconds=i), "from_state": None, "to_state": "active",
         "actor": f"row-{i}", "reason": "r" if i % 2 else None}
        for i in range(40)
    ]  # fmt: skip
    with runtime.work() as w:
        prepared.Prepared(insert(EVENTS)).many(w.session.connection(), rows)
    assert [q.split(" (")[0] for q in sent if "lease_events" in q] == ["INSERT INTO lease_events"] * 2  # 32 + 8
    monkeypatch.undo()
    with runtime.work() as w:
        got = w.session.execute(
            select(LeaseEvent.actor, LeaseEvent.at, LeaseEvent.reason)
            .where(LeaseEvent.lease_id == lease_id)
            .order_by(LeaseEvent.id)
        ).all()
    assert [tuple(r) for r in got] == [(r["actor"], r["at"], r["reason"]) for r in rows]


def test_a_value_given_in_several_rows_is_processed_once() -> None:
    """A booking's allocations all start and end at the same datetime object: its bind processor runs once per
    statement, not once per row; another object, even an equal one, is processed on its own."""
    done: list[Any] = []

    def proc(value: Any) -> str:
        done.append(value)
        return f"<{value}>"

    plan = prepared._Plan("INSERT", {}, (("at", "at", proc), ("n", "n", None)), None, ())
    seen: prepared.Seen = {}
    same = datetime(2030, 1, 1, tzinfo=UTC)
    rows = [{"at": same, "n": i} for i in range(8)] + [{"at": datetime(2030, 1, 1, tzinfo=UTC), "n": 8}]
    out = [prepared._values(plan, row, seen) for row in rows]
    assert [v["at"] for v in out] == ["<2030-01-01 00:00:00+00:00>"] * 9 and [v["n"] for v in out] == list(range(9))
    assert len(done) == 2  # the shared object once, the equal but distinct one once
