"""Idempotency keys in the store: claim a key before a request runs, bind it to the change it commits, keep the
response for replay.

The binding is what makes retries safe across a crash: the first transaction that commits a change while a
claimed request runs also marks the claim (`bound_at`) and records the rows it created, in that same
transaction. A retry after the process died therefore finds either nothing done (and runs the request again)
or the change together with what it created (and answers from that), never a half.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import hashlib
import json
import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, event, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gpulease.store.models import IdempotencyRecord

if TYPE_CHECKING:
    from gpulease.store.db import Store

REPLAY_FOR = timedelta(hours=24)
# Rows of these tables are what a creating request hands back; a recovered retry answers with them.
RESOURCE_TABLES = frozenset({"leases", "customers", "api_keys", "runs", "nodes", "review_items", "webhooks"})


@dataclass
class ActiveClaim:
    """The claim of the request running in this context (set by the API middleware)."""

    row_id: int
    bound: bool = False


current_claim: contextvars.ContextVar[ActiveClaim | None] = contextvars.ContextVar("idempotency_claim", default=None)


def _process_identity() -> str:
    pid = os.getpid()
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            start = f.read().rsplit(b")", 1)[1].split()[19].decode()
    except OSError:
        start = "?"
    return f"{socket.gethostname()[:60]}:{pid}:{start}"


OWNER = _process_identity()


def owner_is_gone(owner: str) -> bool:
    """Whether the process that claimed a key is known to be dead (only decidable on this host)."""
    host, _, rest = owner.partition(":")
    pid_s, _, start = rest.partition(":")
    if host != socket.gethostname()[:60] or not pid_s.isdigit():
        return False
    try:
        with open(f"/proc/{pid_s}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode() != start
    except OSError:
        return True


def fingerprint(method: str, path: str, query: str, body: bytes, content_type: str) -> str:
    """What makes two requests "the same": method, path, query and body (JSON compared by value)."""
    if content_type.startswith("application/json") and body:
        with contextlib.suppress(ValueError):
            body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


class Outcome(enum.Enum):
    NEW = "new"  # this request owns the key now: run it
    REPLAY = "replay"  # the first response is stored: send it again
    RECOVER = "recover"  # the first run committed its change but died before its response was stored
    IN_PROGRESS = "in_progress"  # another request with this key is running
    MISMATCH = "mismatch"  # the key was used with a different request


@dataclass
class Claim:
    outcome: Outcome
    row_id: int
    status: int | None = None
    content_type: str | None = None
    body: str | None = None
    created: list[tuple[str, int]] = field(default_factory=list)
    path: str = ""


def _view(row: IdempotencyRecord, outcome: Outcome) -> Claim:
    return Claim(
        outcome,
        row.id,
        row.response_status,
        row.response_type,
        row.response_body,
        [(str(t), int(i)) for t, i in row.created_refs or []],
        row.path,
    )


def claim(
    store: Store,
    *,
    principal: str,
    key: str,
    method: str,
    path: str,
    fp: str,
    now: datetime,
    stale_after: timedelta,
) -> Claim:
    """Claim `key` for this request, or say what became of the request that claimed it first."""
    for _ in range(3):
        try:
            with store.transaction() as s:
                row = s.scalar(
                    select(IdempotencyRecord).where(
                        IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
                    )
                )
                if row is not None and row.created_at < now - REPLAY_FOR:
                    s.delete(row)  # expired: the key may be used afresh
                    s.flush()
                    row = None
                if row is None:
                    row = IdempotencyRecord(
                        principal=principal,
                        key=key,
                        method=method,
                        path=path,
                        fingerprint=fp,
                        created_at=now,
                        locked_at=now,
                        owner=OWNER,
                        created_refs=[],
                    )
                    s.add(row)
                    s.flush()
                    return Claim(Outcome.NEW, row.id, path=path)
                if row.fingerprint != fp:
                    return _view(row, Outcome.MISMATCH)
                if row.completed_at is not None:
                    return _view(row, Outcome.REPLAY)
                if row.bound_at is not None and (row.locked_at < now - stale_after or owner_is_gone(row.owner)):
                    return _view(row, Outcome.RECOVER)
                if row.locked_at < now - stale_after or owner_is_gone(row.owner):
                    row.locked_at, row.owner = now, OWNER  # its first run died before changing anything
                    return Claim(Outcome.NEW, row.id, path=path)
                return _view(row, Outcome.IN_PROGRESS)
        except IntegrityError:
            continue  # a concurrent request inserted the same key first: read what it did
    raise RuntimeError("could not claim the idempotency key")


def peek(store: Store, row_id: int) -> IdempotencyRecord | None:
    with store.transaction() as s:
        return s.get(IdempotencyRecord, row_id)


def complete(store: Store, row_id: int, *, status: int, content_type: str, body: str, now: datetime) -> None:
    with store.transaction() as s:
        s.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == row_id, IdempotencyRecord.completed_at.is_(None))
            .values(completed_at=now, response_status=status, response_type=content_type, response_body=body)
        )


def release(store: Store, row_id: int) -> None:
    """Forget a claim whose request changed nothing (it failed early): a retry runs it afresh."""
    with store.transaction() as s:
        s.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.id == row_id,
                IdempotencyRecord.bound_at.is_(None),
                IdempotencyRecord.completed_at.is_(None),
            )
        )


def purge_expired(session: Session, now: datetime) -> int:
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - REPLAY_FOR))
    return int(getattr(result, "rowcount", 0) or 0)


# --------------------------------------------------------------------------------------------- binding


def install(sessions: sessionmaker[Session]) -> None:
    """Bind a claim to the first transaction that commits a change while its request runs."""

    @event.listens_for(sessions, "after_flush")
    def _note_changes(session: Session, _ctx: Any) -> None:
        active = current_claim.get()
        if active is None or active.bound:
            return
        if session.new or session.dirty or session.deleted:
            session.info["idempotency_changed"] = True
        created: list[list[Any]] = session.info.setdefault("idempotency_created", [])
        for obj in session.new:
            table = getattr(obj, "__tablename__", None)
            if table in RESOURCE_TABLES:
                ident = inspect(obj).mapper.primary_key_from_instance(obj)  # pending still: no identity key yet
                if len(ident) == 1 and isinstance(ident[0], int):
                    created.append([table, ident[0]])

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
