"""Idempotency keys (Stripe's semantics): claim a key for its request, keep the first response for 24 h, say
what became of a request whose key was used before.

A key not in the store is claimed by the change its request commits, in that change's transaction
(store/idempotency.py), or with its answer (`keep`) when the request changed nothing; a key already there is
claimed first (`claim`), before its request runs, and then bound to the change the same way. Either way a retry
after a crash finds the change and what it created.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gpulease.services.work import Work
from gpulease.store.idempotency import ActiveClaim, KeyTaken, current_claim, insert_new
from gpulease.store.models import IdempotencyRecord
from gpulease.store.prepared import Prepared

__all__ = [
    "ActiveClaim",
    "Claim",
    "KeyTaken",
    "Outcome",
    "claim",
    "complete",
    "current_claim",
    "fingerprint",
    "keep",
    "known",
    "peek",
    "release",
]

REPLAY_FOR = timedelta(hours=24)


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
    work: Work,
    *,
    principal: str,
    key: str,
    method: str,
    path: str,
    fp: str,
    stale_after: timedelta,
) -> Claim:
    """Claim `key` for this request, or say what became of the request that claimed it first."""
    s, now = work.session, work.now
    for _ in range(3):
        try:
            with s.begin_nested():  # a concurrent insert of the same key fails this savepoint only
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
                    # Its first run died before changing anything: take the key over, once (compare and set).
                    taken = s.execute(
                        update(IdempotencyRecord)
                        .where(
                            IdempotencyRecord.id == row.id,
                            IdempotencyRecord.locked_at == row.locked_at,
                            IdempotencyRecord.owner == row.owner,
                        )
                        .values(locked_at=now, owner=OWNER)
                    )
                    if getattr(taken, "rowcount", 0) == 1:
                        return Claim(Outcome.NEW, row.id, path=path)
                return _view(row, Outcome.IN_PROGRESS)
        except IntegrityError:
            continue  # a concurrent request inserted the same key first: read what it did
    raise RuntimeError("could not claim the idempotency key")


_KNOWN = Prepared(
    select(IdempotencyRecord.id).where(
        IdempotencyRecord.principal == bindparam("principal"), IdempotencyRecord.key == bindparam("key")
    )
)
_COMPLETE = Prepared(
    update(IdempotencyRecord)
    .where(IdempotencyRecord.id == bindparam("row_id"), IdempotencyRecord.completed_at.is_(None))
    .values(
        completed_at=bindparam("at"),
        response_status=bindparam("status"),
        response_type=bindparam("content_type"),
        response_body=bindparam("body"),
    )
)


def known(session: Session, *, principal: str, key: str) -> bool:
    """Whether the key is in the store (used before, expired or not): a read, no claim."""
    return _KNOWN.scalar(session, {"principal": principal, "key": key}) is not None


def keep(work: Work, *, row: dict[str, object], status: int, content_type: str, body: str) -> bool:
    """Claim a key not in the store together with the answer of its request, which changed nothing: False, and
    nothing written, when another request has inserted the key meanwhile."""
    answer = {"completed_at": work.now, "response_status": status, "response_type": content_type}
    return insert_new(work.session, {**row, **answer, "response_body": body}) is not None


def peek(work: Work, *, row_id: int) -> Claim | None:
    """What became of a claimed key: None once its request let it go (it failed before changing anything)."""
    row = work.session.get(IdempotencyRecord, row_id)
    if row is None:
        return None
    return _view(row, Outcome.REPLAY if row.completed_at is not None else Outcome.IN_PROGRESS)


def complete(work: Work, *, row_id: int, status: int, content_type: str, body: str) -> None:
    """Keep the first response, to be replayed to every retry for 24 h."""
    _COMPLETE.rows(
        work.session, {"row_id": row_id, "at": work.now, "status": status, "content_type": content_type, "body": body}
    )


def release(work: Work, *, row_id: int) -> None:
    """Forget a claim whose request changed nothing (it failed early): a retry runs it afresh."""
    work.session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.id == row_id,
            IdempotencyRecord.bound_at.is_(None),
            IdempotencyRecord.completed_at.is_(None),
        )
    )


def purge_expired(work: Work) -> int:
    """Forget keys older than the replay window (the clock's housekeeping)."""
    result = work.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < work.now - REPLAY_FOR))
    return int(getattr(result, "rowcount", 0) or 0)
