"""Idempotency keys, the store's part: bind a claimed key to the first transaction that commits a change while
its request runs, in that same transaction, with the rows it created.

That binding is what makes retries safe across a crash: a retry after the process died finds either nothing
done (and runs the request again) or the change together with what it created (and answers from that), never
a half. Claiming, replaying and expiring keys is services/idempotency.py.
"""

from __future__ import annotations

import contextvars
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, inspect, update
from sqlalchemy.orm import Session, sessionmaker

from gpulease.store import direct
from gpulease.store.models import IdempotencyRecord

# Rows of these tables are what a creating request hands back; a recovered retry answers with them.
RESOURCE_TABLES = frozenset({"leases", "customers", "api_keys", "runs", "nodes", "review_items", "webhooks"})


@dataclass
class ActiveClaim:
    """The claim of the request running in this context (set by the API's idempotency middleware)."""

    row_id: int
    bound: bool = False


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

    @event.listens_for(sessions, "before_commit")
    def _bind(session: Session) -> None:
        active = current_claim.get()
        if active is None or active.bound:
            return
        session.flush()
        if not session.info.get("idempotency_changed"):
            return
        session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == active.row_id, IdempotencyRecord.bound_at.is_(None))
            .values(bound_at=datetime.now(UTC), created_refs=session.info.get("idempotency_created", []))
        )
        active.bound = True

    @event.listens_for(sessions, "after_soft_rollback")
    def _forget(session: Session, _previous: Any) -> None:
        session.info.pop("idempotency_changed", None)
        session.info.pop("idempotency_created", None)

    @event.listens_for(sessions, "after_commit")
    def _clear(session: Session) -> None:
        session.info.pop("idempotency_changed", None)
        session.info.pop("idempotency_created", None)
