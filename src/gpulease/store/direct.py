"""Rows written directly with Core statements, without the ORM's unit of work, the objects left clean in the session.

A booking adds a lease and its allocations (one to eight) and an end changes them, and nothing else in either
needs the unit of work: the flush's bookkeeping for them (dependency processing, topological sort, per-object
history, post-fetch) cost about as much CPU as the rest of their statements together. `insert_now` writes the same
rows a flush would (every column the mapper knows, Python-side scalar defaults applied) and makes the objects
persistent as if they had been loaded; `update_now` writes the columns changed since and marks the objects clean.

What listens to flushes for these objects (the calendars in memory, the idempotency binding) listens here too:
`listen` on the sessionmaker. Rows staged for the transaction (store/staged.py) are written after new rows, which
they may refer to.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, Table, any_, bindparam, insert, inspect, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import MANYTOONE, InstanceState, Mapper, Session, sessionmaker
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.interfaces import ORMOption
from sqlalchemy.orm.util import identity_key

from gpulease.store import prepared, staged

T = TypeVar("T")

Hook = Callable[[Session, Sequence[object], bool], None]

_HOOKS = "gpulease_direct_hooks"


def listen(sessions: sessionmaker[Session], hook: Hook) -> None:
    """Call `hook(session, objects, new)` after `insert_now` (new: True) or `update_now` (False) wrote `objects` in
    a session of `sessions` made from now on."""
    info = sessions.kw.setdefault("info", {})
    info.setdefault(_HOOKS, []).append(hook)  # each session's info is a shallow copy: the same list


class ById(Generic[T]):
    """`session.get(entity, ident, options=options)` with its SELECT built once.

    `Session.get` builds its statement, options included, afresh on every call and works out its cache key from
    scratch: a booking's customer and an end's lease with its GPUs and nodes took ~1,040 calls that way, ~900 with
    the statements built once (most of the rest is loading the rows as objects). An object already in the session
    is still looked up by `Session.get` itself (no statement where it needs none)."""

    def __init__(self, entity: type[T], *options: ORMOption) -> None:
        self.entity = entity
        self.options = options
        (pk,) = inspect(entity).primary_key
        self.stmt: Select[T] = select(entity).where(pk == bindparam("ident")).options(*options)

    def __call__(self, session: Session, ident: int) -> T | None:
        if identity_key(self.entity, ident) in session.identity_map:
            return session.get(self.entity, ident, options=self.options)
        return session.execute(self.stmt, {"ident": ident}).unique().scalar_one_or_none()


_REFUSED = object()


class _Shape:
    """What insert_now and update_now need to know of a mapped class, worked out once."""

    def __init__(self, mapper: Mapper[Any]) -> None:
        table = mapper.local_table
        assert isinstance(table, Table)
        self.table = table
        # Per column: attribute, column, the value written for None (_REFUSED: none can be), primary key.
        self.columns: list[tuple[str, str, Any, bool]] = []
        for prop in mapper.column_attrs:
            col = prop.columns[0]
            if col.default is not None:
                default = col.default.arg if col.default.is_scalar else _REFUSED
            else:
                default = _REFUSED if col.server_default is not None else None
            self.columns.append((prop.key, col.key, default, bool(col.primary_key)))
        self.column_of = {attr: column for attr, column, _default, _primary in self.columns}
        self.updates: dict[tuple[tuple[str, ...], bool], prepared.Prepared] = {}  # (attributes, by a list of ids)
        (pk,) = table.primary_key.columns
        self.pk_attr = mapper.get_property_by_column(pk).key
        # Foreign keys a flush would copy from a parent object (many-to-one): relationship, [(attribute, parent's)].
        self.parents: list[tuple[str, list[tuple[str, str]]]] = []
        for rel in mapper.relationships:
            if rel.direction is MANYTOONE:
                pairs = [
                    (mapper.get_property_by_column(local).key, rel.mapper.get_property_by_column(remote).key)
                    for local, remote in rel.local_remote_pairs
                ]
                self.parents.append((rel.key, pairs))
        self.insert = prepared.Prepared(insert(table))
        self.numbering = insert(table).returning(pk, sort_by_parameter_order=True)  # ids in the rows' order

    def update(self, attrs: tuple[str, ...], *, by_ids: bool) -> prepared.Prepared:
        """The UPDATE of these attributes' columns (bound as `_{attribute}`) of the row with id `_pk`, or, `by_ids`
        (PostgreSQL), of every row whose id is in the list `_pks`; built once."""
        stmt = self.updates.get((attrs, by_ids))
        if stmt is None:
            pk = self.table.c[self.column_of[self.pk_attr]]
            which = pk == any_(bindparam("_pks", type_=postgresql.ARRAY(pk.type))) if by_ids else pk == bindparam("_pk")
            stmt = self.updates[(attrs, by_ids)] = prepared.Prepared(
                update(self.table).where(which).values({self.column_of[a]: bindparam("_" + a) for a in attrs})
            )
        return stmt

    def row(self, obj: Any, values: dict[str, Any]) -> dict[str, Any]:
        for rel, pairs in self.parents:
            parent = values.get(rel)
            if parent is not None:
                for attr, parent_attr in pairs:
                    if values.get(attr) is None:
                        setattr(obj, attr, getattr(parent, parent_attr))
        row: dict[str, Any] = {}
        for attr, column, default, primary in self.columns:
            value = values.get(attr)
            if value is None:
                if default is _REFUSED:
                    raise ValueError(f"{self.table.name}.{column}: a server or callable default; set the value first")
                if primary:
                    continue  # numbered by the INSERT
                value = default
                setattr(obj, attr, value)  # loaded as that, not expired: no refresh on first read
            row[column] = value
        return row


_SHAPES: dict[Mapper[Any], _Shape] = {}


def _shape(mapper: Mapper[Any]) -> _Shape:
    shape = _SHAPES.get(mapper)
    if shape is None:
        shape = _SHAPES[mapper] = _Shape(mapper)
    return shape


@functools.cache
def _columns(mapper: Mapper[Any]) -> frozenset[str]:
    return frozenset(mapper.column_attrs.keys())


def made(entity: type[T], rows: Iterable[dict[str, Any]]) -> list[T]:
    """New (transient) instances of a mapped class holding `rows`' column values, made as the ORM makes the objects
    it loads (`ClassManager.new_instance`, values put in the instance's dict), not through the constructor, which
    fires an attribute event for every column it sets: a booking of 8 GPUs made 8 allocations that way, ~100 events
    and ~560 Python calls. Add them to the session (or write them with `insert_now`) as any new object; a
    relationship is not set by a column's value (`lease_id` does not put the allocation in `lease.allocations`)."""
    mapper = inspect(entity)
    manager, known = mapper.class_manager, _columns(mapper)
    out: list[T] = []
    for values in rows:
        if not known.issuperset(values):  # what the constructor would refuse: a name that is no column
            raise TypeError(f"{entity.__name__} has no column {sorted(set(values) - known)}")
        obj = manager.new_instance()
        obj.__dict__.update(values)
        out.append(obj)
    return out


def insert_now(session: Session, objects: Sequence[Any]) -> None:
    """INSERT `objects` now, one statement per table, and make them persistent in `session`.

    Each must be new (pending in `session` or transient), parents before their children (a child's foreign key is
    taken from its parent object, as a flush would). Rows of one table either all carry their ids or all get them
    from the INSERT (one statement on PostgreSQL; SQLite returns ids in order only row by row). A column left
    None that has a server-side default, or a callable Python default, is refused (the row would not be what a
    flush writes).
    """
    if not objects:
        return
    groups: dict[_Shape, list[Any]] = {}  # tables in the order they first appear
    states = [instance_state(obj) for obj in objects]
    for obj, state in zip(objects, states, strict=True):
        if state.key is not None:
            raise ValueError(f"{obj!r} is already persistent")
        shape = _shape(state.mapper)
        groups.setdefault(shape, []).append(obj)
    conn = session.connection()
    for shape, objs in groups.items():
        rows = [shape.row(obj, obj.__dict__) for obj in objs]
        numbered = [shape.pk_attr not in r for r in rows]
        if any(numbered) and not all(numbered):
            raise ValueError(f"{shape.table.name}: give every new row its id, or none")
        if all(numbered):
            ids = conn.execute(shape.numbering, rows).scalars().all()
            for obj, ident in zip(objs, ids, strict=True):
                setattr(obj, shape.pk_attr, ident)
        else:
            shape.insert.many(conn, rows)
    _settle(session, objects, states)
    for hook in session.info.get(_HOOKS, ()):
        hook(session, objects, True)
    staged.write(session)


def update_now(session: Session, objects: Sequence[Any]) -> None:
    """UPDATE the columns of `objects` (persistent in `session`) changed since they were loaded, one statement per
    table and set of columns, and leave the objects clean, as a flush would. Where a relationship or collection of
    one of them changed too, the session is flushed instead (the unit of work writes what that means)."""
    groups: dict[tuple[_Shape, tuple[str, ...]], list[tuple[Any, dict[str, Any]]]] = {}
    states = [instance_state(obj) for obj in objects]
    for obj, state in zip(objects, states, strict=True):
        if not state.persistent or state.session is not session:
            raise ValueError(f"{obj!r} is not persistent in this session")
        shape = _shape(state.mapper)
        values = state.dict
        changed = []
        for attr, old in state.committed_state.items():
            column = shape.column_of.get(attr)
            if column is None:
                session.flush()
                return
            if values.get(attr) != old:
                changed.append(attr)
        if changed:
            key = tuple(sorted(changed))
            row = {"_pk": values[shape.pk_attr]} | {"_" + a: values.get(a) for a in key}
            groups.setdefault((shape, key), []).append((obj, row))
    conn = session.connection()
    for (shape, key), items in groups.items():
        if len(items) > 1 and conn.dialect.name == "postgresql":
            # The same changes to several rows (an end's GPUs): one statement for all, not an executemany
            # (psycopg runs that as a pipeline, several waits on the socket per row: store/prepared.py).
            first = {k: v for k, v in items[0][1].items() if k != "_pk"}
            if all(row[k] == v for _obj, row in items[1:] for k, v in first.items()):
                shape.update(key, by_ids=True).many(conn, [first | {"_pks": [row["_pk"] for _obj, row in items]}])
                continue
        shape.update(key, by_ids=False).many(conn, [row for _obj, row in items])
    _settle(session, objects, states)
    for hook in session.info.get(_HOOKS, ()):
        hook(session, objects, False)


def _settle(session: Session, objects: Sequence[Any], states: Sequence[InstanceState[Any]]) -> None:
    """The objects persistent and clean in `session`: what they hold is what the store holds.

    What a flush does once its statements ran (`Session._register_persistent`, its one step after the unit of work's
    own): new objects get their identity and join the identity map, every object's changes are committed, and the
    transaction remembers them, so a rollback expunges the new ones and expires the rest as after a flush. Taking
    them out and putting them back through the public API (`make_transient`, `make_transient_to_detached`, `add`)
    cost about 1,450 Python calls per booking + end; this costs a tenth of that."""
    settled = set()
    for obj, state in zip(objects, states, strict=True):
        if state.session_id is None:
            _add(session, obj, state)
        settled.add(state)
    session._register_persistent(settled)


def add_new(session: Session, objects: Iterable[Any]) -> None:
    """`session.add_all(objects)` for new objects: an object that holds no related object (one made by `made`) is
    added without `add`'s cascade, which walks every relationship of its mapper to find nothing to follow (an
    8-GPU booking's allocations: ~300 Python calls)."""
    for obj in objects:
        _add(session, obj, instance_state(obj))


def _add(session: Session, obj: Any, state: InstanceState[Any]) -> None:
    if state.key is None and _relationships(state.mapper).isdisjoint(state.dict):
        # What `Session.add` does for a transient object once its cascade found nothing (`_save_or_update_state`).
        state._orphaned_outside_of_session = False
        session._save_impl(state)
    else:
        session.add(obj)


@functools.cache
def _relationships(mapper: Mapper[Any]) -> frozenset[str]:
    return frozenset(mapper.relationships.keys())
