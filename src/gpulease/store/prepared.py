"""Statements compiled once and run on the DBAPI cursor of the transaction's connection.

A statement run through SQLAlchemy costs ~150 Python calls on the Connection, ~240 through the Session (the
execution context, the compiled cache's key, the result object, the ORM's execute hooks), against ~15 for the
driver's own cursor (docs/benchmarks.md). A booking and an end run about twenty small statements whose SQL never
changes: `Prepared` compiles each once per dialect (SQL string, parameter order, literal values and the types' bind
processors, all from SQLAlchemy's own compiler) and then hands the driver only the SQL and the processed values,
on the connection of the session's transaction.

What is the same as through SQLAlchemy: the SQL, the values as bound (every bind processor of the column types
applied), the transaction, and the errors (a driver error goes through the Connection's own handling: wrapped as
SQLAlchemy's exception, a lost connection invalidated). `rows` also does what the Session does before a
statement of its own (`autoflush` for a statement on mapped classes, rows staged for the transaction written
first: `BEFORE_STATEMENT`, store/staged.py). What is not: engine events per statement. So whenever something
listens for statements (`before_cursor_execute`, `after_cursor_execute`: the statement-counting tests, an
instrumentation) or the engine echoes SQL, the statement goes through SQLAlchemy as before. A statement whose
shape this does not cover (an expanding IN of values given per call, Python-side column defaults to apply, result
columns that need a type's processing) always goes through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, Executable, Float, Insert, bindparam, exc
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.type_api import TypeEngine

# What a session does before a statement of its own, beyond its autoflush (store/staged.py writes what is staged):
# done before a statement run here too. Registered by those modules as they are imported.
BEFORE_STATEMENT: list[Callable[[Session], None]] = []


@dataclass(frozen=True)
class _Plan:
    sql: str
    fixed: dict[str, Any]  # literal values of the statement, processed: bound name -> value
    given: tuple[tuple[str, str, Any], ...]  # per value given at each call: its key, bound name, bind processor
    # Positional drivers (SQLite): the values in order with the literal ones in place, and where each given one goes.
    template: list[Any] | None
    slots: tuple[tuple[int, str, Any], ...]  # position, key, bind processor


def _plan(stmt: Any, dialect: Dialect, keys: Sequence[str] | None) -> _Plan | None:
    """How to run `stmt` on `dialect`'s driver, given values for `keys` (None: the statement's own bindparams);
    None if this module does not cover its shape."""
    if keys is None:
        compiled = stmt.compile(dialect=dialect)
    else:  # as Connection.execute compiles for a list of rows: no RETURNING of ids the rows do not need back
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys), for_executemany=True)
    if not isinstance(compiled, SQLCompiler) or compiled.insert_prefetch or compiled.update_prefetch:
        return None  # Python-side defaults to compute per row
    for column in compiled._result_columns:
        if _converts(column.type, dialect):
            return None  # values the driver hands back that the type would convert
    given_keys: dict[str, list[str]] = {}
    for bind, name in compiled.bind_names.items():
        if bind.callable is not None:
            return None
        if bind.required or (keys is not None and bind.key in keys):
            if bind.expanding:
                return None  # an IN of values given per call: its SQL depends on them
            given_keys.setdefault(bind.key, []).append(compiled.escaped_bind_names.get(name, name))
    state = compiled.construct_expanded_state({key: None for key in given_keys})
    # The types' bind processors; those of an IN's literal values are the expanded state's.
    processors: dict[str, Callable[[Any], Any]] = {}
    for name, each in {**compiled._bind_processors, **state.processors}.items():
        if not callable(each):
            return None  # a tuple's processors, one per element
        processors[name] = each
    given_names = {name for names in given_keys.values() for name in names}
    fixed = {}
    for name, value in state.parameters.items():
        if name not in given_names:
            proc = processors.get(name)
            fixed[name] = proc(value) if proc is not None else value
    given = tuple((key, name, processors.get(name)) for key, names in given_keys.items() for name in names)
    if state.positiontup is None:
        return _Plan(state.statement, fixed, given, None, ())
    order = list(state.positiontup)
    template = [fixed.get(name) for name in order]
    slots = tuple((order.index(name), key, proc) for key, name, proc in given)
    if len(slots) + len(fixed) != len(order):
        return None  # a name bound twice
    return _Plan(state.statement, fixed, given, template, slots)


# A floating column's database type (PostgreSQL's float8 or float4: psycopg hands either back as a float).
_FLOAT8 = 701


def _converts(type_: TypeEngine[Any], dialect: Dialect) -> bool:
    """Whether `type_` converts the values the driver hands back. psycopg's numbers choose by the column's database
    type, unknown before a row comes (and refused without one): a Float column is a floating one there."""
    try:
        return type_._cached_result_processor(dialect, None) is not None
    except (TypeError, exc.InvalidRequestError):
        if isinstance(type_, Float) and not type_.asdecimal:
            return type_._cached_result_processor(dialect, _FLOAT8) is not None
        return True


Seen = dict[int, tuple[Any, Callable[[Any], Any], Any]]  # id of a value -> (the value, its processor, what it became)


def _values(plan: _Plan, params: Mapping[str, Any], seen: Seen | None = None) -> Any:
    """The values of one row as the driver takes them. `seen` (the rows of one statement): a value processed already
    by the same processor, the very same object, is not processed again (a booking's GPUs all start and end at the
    same datetime: converted once, not once per row; a bind processor is a pure function of its value)."""
    if plan.template is not None:
        ordered = plan.template.copy()
        for at, key, proc in plan.slots:
            ordered[at] = _processed(params[key], proc, seen)
        return ordered
    values = dict(plan.fixed)
    for key, name, proc in plan.given:
        values[name] = _processed(params[key], proc, seen)
    return values


def _processed(value: Any, proc: Callable[[Any], Any] | None, seen: Seen | None) -> Any:
    if proc is None:
        return value
    if seen is None:
        return proc(value)
    last = seen.get(id(value))
    if last is not None and last[0] is value and last[1] is proc:
        return last[2]
    done = proc(value)
    seen[id(value)] = (value, proc, done)  # the value kept: its id is not reused while this lives
    return done


def _watched(engine: Engine) -> bool:
    """Whether something must see each statement: listeners per statement, or echo."""
    return bool(engine.dispatch.before_cursor_execute or engine.dispatch.after_cursor_execute or engine.echo)


@contextmanager
def _cursor(conn: Connection, sql: str, values: Any) -> Iterator[Any]:
    """A cursor of the connection's driver, closed after; a driver error raised by what runs on it goes through
    SQLAlchemy's own handling (its exception classes, a lost connection invalidated)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    except Exception as exc:
        conn._handle_dbapi_exception(exc, sql, values, cursor, None)
    finally:
        cursor.close()


def _bare_insert(stmt: Executable) -> bool:
    """An INSERT of a table with neither values of its own nor RETURNING: rows can be given as VALUES."""
    return isinstance(stmt, Insert) and not (stmt._values or stmt._multi_values or stmt._returning)


MAX_ROWS = 32  # rows per multi-row INSERT: a statement (and a prepared plan) per row count up to this


def rows_insert(stmt: Insert, keys: Sequence[str], count: int, prefix: str = "") -> Insert:
    """`stmt` (an INSERT of a table) for `count` rows of `keys` in one statement (VALUES (...), (...)), the value
    of `key` in row i bound as `{prefix}{key}_{i}` with the column's type."""
    table = stmt.table
    return stmt.values(
        [{key: bindparam(f"{prefix}{key}_{i}", type_=table.c[key].type) for key in keys} for i in range(count)]
    )


class Prepared:
    """One statement, compiled once per dialect (and per set of keys given), run on the driver's cursor.

    `autoflush`: the statement reads mapped classes, so the session flushes what is pending first, as
    `Session.execute` would (a statement on tables or text does not)."""

    def __init__(self, stmt: Executable, *, autoflush: bool = False) -> None:
        self.stmt = stmt
        self.autoflush = autoflush
        self._plans: dict[tuple[str, tuple[str, ...] | None], _Plan | None] = {}
        self._rows_plans: dict[tuple[str, tuple[str, ...], int], _Plan | None] = {}  # multi-row INSERTs

    def _plan_for(self, dialect: Dialect, keys: tuple[str, ...] | None) -> _Plan | None:
        try:
            return self._plans[(dialect.name, keys)]
        except KeyError:
            plan = self._plans[(dialect.name, keys)] = _plan(self.stmt, dialect, keys)
            return plan

    def rows(self, session: Session, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """The statement's rows (as tuples) in the session's transaction; [] for one that returns none."""
        if self.autoflush and session.autoflush:
            session.flush()
        for hook in BEFORE_STATEMENT:
            hook(session)
        return self.rows_on(session.connection(), params)

    def scalar(self, session: Session, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, None without a row."""
        rows = self.rows(session, params)
        return rows[0][0] if rows else None

    def rows_on(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """As `rows`, on a Connection (nothing of a session's done first)."""
        params = params or {}
        plan = None if _watched(conn.engine) else self._plan_for(conn.dialect, None)
        if plan is None:
            result = conn.execute(self.stmt, dict(params))
            return [tuple(row) for row in result] if result.returns_rows else []
        values = _values(plan, params)
        with _cursor(conn, plan.sql, values) as cursor:
            cursor.execute(plan.sql, values)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description is not None else []

    def _rows_plan_for(self, dialect: Dialect, keys: tuple[str, ...], count: int) -> _Plan | None:
        """The plan of this INSERT for `count` rows in one statement (VALUES (...), (...)), the values of row i
        bound as `{key}_{i}`."""
        try:
            return self._rows_plans[(dialect.name, keys, count)]
        except KeyError:
            assert isinstance(self.stmt, Insert)
            stmt = rows_insert(self.stmt, keys, count)
            plan = self._rows_plans[(dialect.name, keys, count)] = _plan(stmt, dialect, None)
            return plan

    def many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once per row (an executemany); every row must give the same keys, as for
        `Connection.execute` with a list.

        On psycopg an INSERT of several rows is sent as one statement of several VALUES: psycopg runs an
        executemany as a pipeline, which for the two to eight rows of a booking waits on the socket several times
        per row, each wait a hand-over of the interpreter's lock under load (docs/benchmarks.md)."""
        if not rows:
            return
        keys = tuple(rows[0])
        seen: Seen = {}
        plan = None if _watched(conn.engine) else self._plan_for(conn.dialect, keys)
        if plan is None or any(row.keys() != rows[0].keys() for row in rows):
            conn.execute(self.stmt, [dict(row) for row in rows] if len(rows) > 1 else dict(rows[0]))
            return
        if len(rows) > 1 and conn.dialect.driver == "psycopg" and _bare_insert(self.stmt):
            done = 0
            while done < len(rows):
                chunk = rows[done : done + MAX_ROWS]
                rows_plan = self._rows_plan_for(conn.dialect, keys, len(chunk))
                if rows_plan is None:
                    break  # the rows not written yet go below
                flat = _values(rows_plan, {f"{key}_{i}": row[key] for i, row in enumerate(chunk) for key in keys}, seen)
                with _cursor(conn, rows_plan.sql, flat) as cursor:
                    cursor.execute(rows_plan.sql, flat)
                done += len(chunk)
            rows = rows[done:]
            if not rows:
                return
        values = [_values(plan, row, seen) for row in rows]
        with _cursor(conn, plan.sql, values) as cursor:
            if len(values) == 1:
                cursor.execute(plan.sql, values[0])
            else:
                cursor.executemany(plan.sql, values)
