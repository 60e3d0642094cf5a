"""Rows that need no id back (a lease's events, audit records, notifications nobody is sent), written in bulk.

A use case stages them on its session; they are inserted with one statement per table (an executemany; on PostgreSQL
every table's rows in one statement, `_together`) with the session's next flush (after its own inserts), before its
next statement, or at its commit, whichever comes first, so every read in the same transaction sees them and they
commit with it. A rollback drops them. This replaces one ORM object and one INSERT each (a booking records four
state changes): the rows are the same, in the order they were staged.

The listeners are on the Session class: any session (the Runtime's, a test's) writes what it staged. Inside a
savepoint nothing is staged (the row is inserted at once), so a savepoint rolled back never takes with it rows
staged outside it; rows staged before a savepoint began are set aside while it runs and written after it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, event, insert
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from gpulease.store import prepared

_KEY = "gpulease_staged"
_ASIDE = "gpulease_staged_aside"
_INSERTS: dict[Table, prepared.Prepared] = {}  # one statement per table, compiled once (store/prepared.py)


def _insert(table: Table) -> prepared.Prepared:
    stmt = _INSERTS.get(table)
    if stmt is None:
        stmt = _INSERTS[table] = prepared.Prepared(insert(table))
    return stmt


def stage(session: Session, table: Table, row: dict[str, Any]) -> None:
    """Insert `row` into `table` in this transaction, with the next statement (see the module)."""
    if session.in_nested_transaction():
        _insert(table).many(session.connection(), [row])
        return
    staged: list[tuple[Table, dict[str, Any]]] | None = session.info.get(_KEY)
    if staged is None:
        session.info[_KEY] = [(table, row)]
    else:
        staged.append((table, row))


def write(session: Session) -> None:
    """Insert what is staged now: one executemany per table, each table's rows in staging order (the tables
    staged into refer to none of each other)."""
    staged: list[tuple[Table, dict[str, Any]]] | None = session.info.pop(_KEY, None)
    if not staged:
        return
    by_table: dict[Table, list[dict[str, Any]]] = {}
    for table, row in staged:
        by_table.setdefault(table, []).append(row)
    conn = session.connection()
    if len(by_table) > 1 and conn.dialect.driver == "psycopg":
        together = _together(by_table)
        if together is not None:
            stmt, values = together
            stmt.rows_on(conn, values)
            return
    for table, rows in by_table.items():
        _insert(table).many(conn, rows)


_TOGETHER: dict[tuple[tuple[str, tuple[str, ...], int], ...], prepared.Prepared] = {}
_TOGETHER_MAX = 256  # shapes kept compiled (a booking's and an end's are a handful)


def _together(
    by_table: dict[Table, list[dict[str, Any]]],
) -> tuple[prepared.Prepared, dict[str, Any]] | None:
    """PostgreSQL: every table's rows in one statement, each table's INSERT a data-modifying CTE of the last one
    (`WITH s0 AS (INSERT ...), s1 AS (INSERT ...) INSERT ...`): one round trip instead of one per table (a booking
    stages into three tables, an end into three or four). The tables refer to none of each other, so that every
    part of the statement sees the same snapshot changes nothing. None where a table's rows differ in their keys
    or are too many for one statement: those go one INSERT per table."""
    shape = []
    for table, rows in by_table.items():
        keys = tuple(rows[0])
        if len(rows) > prepared.MAX_ROWS or any(row.keys() != rows[0].keys() for row in rows):
            return None
        shape.append((table.name, keys, len(rows)))
    key = tuple(shape)
    stmt = _TOGETHER.get(key)
    if stmt is None:
        parts = [
            prepared.rows_insert(insert(table), keys, count, prefix=f"s{j}_")
            for j, (table, (_name, keys, count)) in enumerate(zip(by_table, shape, strict=True))
        ]
        last = parts.pop()
        stmt = prepared.Prepared(last.add_cte(*(part.cte(f"s{j}") for j, part in enumerate(parts))))
        if len(_TOGETHER) < _TOGETHER_MAX:
            _TOGETHER[key] = stmt
    values = {
        f"s{j}_{k}_{i}": v
        for j, rows in enumerate(by_table.values())
        for i, row in enumerate(rows)
        for k, v in row.items()
    }
    return stmt, values


# Written after the ORM's own inserts, which they may refer to (a lease's events, inserted with the lease when
# its id was known before the flush).
@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _ctx: UOWTransaction) -> None:
    write(session)


def before_statement(session: Session) -> None:
    """What is staged, written before a statement of the session (one run past it too: store/prepared.py)."""
    if session.info.get(_KEY) and session.new and session.autoflush:
        session.flush()  # the objects they may refer to first; writes them after (above)
    write(session)


prepared.BEFORE_STATEMENT.append(before_statement)


@event.listens_for(Session, "do_orm_execute")
def _before_statement(state: ORMExecuteState) -> None:
    before_statement(state.session)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.info.get(_KEY):
        session.flush()
        write(session)


@event.listens_for(Session, "after_transaction_create")
def _savepoint_begins(session: Session, transaction: Any) -> None:
    if transaction.nested and _KEY in session.info:  # not written inside it: its rollback must not take them
        session.info.setdefault(_ASIDE, []).append((transaction, session.info.pop(_KEY)))


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost transaction: rolled back with what it staged (a commit wrote it)
        session.info.pop(_KEY, None)
        session.info.pop(_ASIDE, None)
        return
    aside = session.info.get(_ASIDE)
    if aside and aside[-1][0] is transaction:  # the savepoint is over: what was set aside is staged again
        rows = aside.pop()[1]
        session.info[_KEY] = rows + session.info.get(_KEY, [])
