"""Idempotency keys, the store's part: bind a key to the first transaction that commits a change while its
request runs, in that same transaction, with the rows it created.

That binding is what makes retries safe across a crash: a retry after the process died finds either nothing
done (and runs the request again) or the change together with what it created (and answers from that), never
a half. A key no request has used yet is claimed by that binding itself (its row inserted there, bound): the
request then costs no transaction of its own before it runs. Should another request have inserted the same key
meanwhile, the change is rolled back (`KeyTaken`) and the request goes on as a duplicate. Claiming, replaying
and expiring keys is services/idempotency.py.
"""

from __future__ import annotations

import contextvars
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, event, inspect, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from gpulease.store import direct
from gpulease.store.models import IdempotencyRecord
from gpulease.store.prepared import Prepared

# Rows of these tables are what a creating request hands back; a recovered retry answers with them.
RESOURCE_TABLES = frozenset({"leases", "customers", "api_keys", "runs", "nodes", "review_items", "webhooks"})


@dataclass
class ActiveClaim:
    """The claim of the request running in this context (set by the API's idempotency middleware).

    `row_id` None: the key is not in the store yet; the first transaction that commits a change inserts its row
    from `new_row` (principal, key, method, path, fingerprint, created_at, owner), bound."""

    row_id: int | None
    bound: bool = False
    new_row: dict[str, Any] | None = None


class KeyTaken(Exception):
    """Another request inserted this request's key while it ran: its change was rolled back, undone."""


current_claim: contextvars.ContextVar[ActiveClaim | None] = contextvars.ContextVar("idempotency_claim", default=None)


# --------------------------------------------------------------------------------------------- binding


def install(sessions: sessionmaker[Session]) -> None:
    """Bind a claim to the first transaction that commits a change while its request runs."""

    def _note(session: Session, new: Collection[object], changed: bool) -> None:
        active = current_claim.get()
        if active is None or active.bound:
            return
        if changed:
            session.info["idempotency_changed"] = True
        created: list[list[Any]] = session.info.setdefault("idempotency_created", [])
        for obj in new:
            table = getattr(obj, "__tablename__", None)
            if table in RESOURCE_TABLES:
                ident = inspect(obj).mapper.primary_key_from_instance(obj)  # pending still: no identity key yet
                if len(ident) == 1 and isinstance(ident[0], int):
                    created.append([table, ident[0]])

    @event.listens_for(sessions, "after_flush")
    def _note_changes(session: Session, _ctx: Any) -> None:
        _note(session, session.new, bool(session.new or session.dirty or session.deleted))

    # Rows written without a flush (store/direct.py: a booking's lease and allocations, an end's changes to them).
    direct.listen(sessions, lambda session, objects, new: _note(session, objects if new else (), bool(objects)))

    # Installed before the calendars' own (Store is made before the Runtime's calendars): a key's row is written
    # before the model's version row is bumped, so a duplicate waiting on the key holds no version row.
    @event.listens_for(sessions, "before_commit")
    def _bind(session: Session) -> None:
        active = current_claim.get()
        if active is None or active.bound:
            return
        session.flush()
        if not session.info.get("idempotency_changed"):
            return
        created = session.info.get("idempotency_created", [])
        if active.row_id is None:
            row_id = _insert_bound(session, active, created)
        else:
            session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.id == active.row_id, IdempotencyRecord.bound_at.is_(None))
                .values(bound_at=datetime.now(UTC), created_refs=created)
            )
            row_id = active.row_id
        session.info["idempotency_bound"] = (active, row_id)  # bound once the commit is through

    @event.listens_for(sessions, "after_soft_rollback")
    def _forget(session: Session, _previous: Any) -> None:
        for name in ("idempotency_changed", "idempotency_created", "idempotency_bound"):
            session.info.pop(name, None)

    @event.listens_for(sessions, "after_commit")
    def _clear(session: Session) -> None:
        session.info.pop("idempotency_changed", None)
        session.info.pop("idempotency_created", None)
        bound = session.info.pop("idempotency_bound", None)
        if bound is not None:
            active, row_id = bound
            active.row_id, active.bound = row_id, True


def _insert_bound(session: Session, active: ActiveClaim, created: list[list[Any]]) -> int:
    """The key's row, inserted bound to this transaction's change; KeyTaken (the change rolled back with it) when
    another request has inserted the key."""
    assert active.new_row is not None
    row = {**active.new_row, "bound_at": datetime.now(UTC), "created_refs": created}
    row_id = insert_new(session, row)
    if row_id is None:
        raise KeyTaken(active.new_row["key"])
    return row_id


_ROW = (
    "principal",
    "key",
    "method",
    "path",
    "fingerprint",
    "created_at",
    "locked_at",
    "owner",
    "bound_at",
    "created_refs",
    "completed_at",
    "response_status",
    "response_type",
    "response_body",
)


def _insert(dialect: Any) -> Prepared:
    return Prepared(
        dialect.insert(IdempotencyRecord)
        .values({name: bindparam(name) for name in _ROW})
        .on_conflict_do_nothing(index_elements=["principal", "key"])
        .returning(IdempotencyRecord.id)
    )


# The same SQL on both, but each dialect compiles only its own ON CONFLICT construct. Compiled once: built and
# compiled per call, an insert cost ~0.25 ms of a request's CPU.
_INSERT = {"postgresql": _insert(postgresql), "sqlite": _insert(sqlite)}


def insert_new(session: Session, row: dict[str, Any]) -> int | None:
    """Insert a key's row (`locked_at` its `created_at`, absent answer fields empty); None, inserting nothing, when
    the caller's key is in the store already. On PostgreSQL it waits for a transaction that holds the same key
    uncommitted to end."""
    values = dict.fromkeys(_ROW) | {"locked_at": row["created_at"], "created_refs": []} | row
    row_id = _INSERT[session.get_bind().dialect.name].scalar(session, values)
    return None if row_id is None else int(row_id)
