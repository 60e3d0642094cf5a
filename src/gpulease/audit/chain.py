"""Sequencing and sealing: records are numbered on insert, chained afterwards in the order they committed.

`append` only inserts: the database numbers the record (`id`) and nothing is read or locked, so any
number of transactions can audit at once. `seal` then gives each committed, unsealed record its place in
the chain — `seq`, the previous record's hash and its own, hash = sha256(prev_hash || canonical JSON of
seq, at, actor, action, subject, data) — in `id` order as it finds them. A transaction that took a lower
id but committed later is simply sealed later: chain order is seal order. Sealed records are never
touched again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, select, update
from sqlalchemy.orm import Session

from gpulease.store import staged
from gpulease.store.db import advisory_lock
from gpulease.store.models import AuditRecord

AUDIT_LOG = cast(Table, AuditRecord.__table__)
_SEAL = (
    update(AUDIT_LOG)
    .where(AUDIT_LOG.c.id == bindparam("rid"))
    .values(seq=bindparam("s"), prev_hash=bindparam("p"), hash=bindparam("h"))
)

_SEAL_PENDING = (  # a planned link: written only where the record is still pending
    update(AUDIT_LOG)
    .where(AUDIT_LOG.c.id == bindparam("rid"), AUDIT_LOG.c.seq.is_(None), AUDIT_LOG.c.hash.is_(None))
    .values(seq=bindparam("s"), prev_hash=bindparam("p"), hash=bindparam("h"))
)

GENESIS = "0" * 64
SEALER_LOCK = "gpulease.audit.sealer"


def _canonical(seq: int, at: datetime, actor: str, action: str, subject: str, data: dict[str, Any]) -> bytes:
    body = {"seq": seq, "at": at.isoformat(), "actor": actor, "action": action, "subject": subject, "data": data}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def chain_hash(
    prev_hash: str, seq: int, at: datetime, actor: str, action: str, subject: str, data: dict[str, Any]
) -> str:
    return hashlib.sha256(prev_hash.encode() + _canonical(seq, at, actor, action, subject, data)).hexdigest()


def append(
    session: Session, *, at: datetime, actor: str, action: str, subject: str, data: dict[str, Any] | None = None
) -> AuditRecord:
    """Record one fact in the caller's transaction (it commits with the change); the sealer chains it later.

    Takes no lock and reads nothing: the database numbers the record when the session flushes.
    """
    rec = AuditRecord(**_row(at, actor, action, subject, data))
    session.add(rec)
    return rec


def append_staged(
    session: Session, *, at: datetime, actor: str, action: str, subject: str, data: dict[str, Any] | None = None
) -> None:
    """`append` for the hot path: the same record, written in bulk with the transaction's other staged rows
    (store/staged.py) instead of as an ORM object; nothing is returned (its id is not known yet)."""
    staged.stage(session, AUDIT_LOG, _row(at, actor, action, subject, data))


def _row(at: datetime, actor: str, action: str, subject: str, data: dict[str, Any] | None) -> dict[str, Any]:
    # Round-trip through JSON so what the sealer hashes is exactly what the store gives back later.
    payload: dict[str, Any] = json.loads(json.dumps(data or {}, default=str))
    at = at.astimezone(UTC).replace(microsecond=0)
    return {"at": at, "actor": actor, "action": action, "subject": subject, "data": payload}


@dataclass(frozen=True)
class SealResult:
    sealed: int  # records chained by this call
    size: int  # records in the chain now
    head: str  # hash of the last one (GENESIS while the chain is empty)


def chain_tail(session: Session) -> tuple[int, str]:
    """(size, head hash) of the sealed chain."""
    row = session.execute(
        select(AuditRecord.seq, AuditRecord.hash)
        .where(AuditRecord.seq.is_not(None))
        .order_by(AuditRecord.seq.desc())
        .limit(1)
    ).first()
    if row is None or row.seq is None or row.hash is None:
        return 0, GENESIS
    return row.seq, row.hash


@dataclass(frozen=True)
class SealPlan:
    """The links for the records pending in a read-only snapshot, worked out there (`plan_seal`) so that the
    transaction writing them does little more than write. SQLite has one writer: hashing a second's records
    inside its lock held every booking back by 15-50 ms once a second."""

    after: tuple[int, str]  # the chain's (size, head) the links extend
    links: list[dict[str, Any]]  # the UPDATE's parameters, in chain order
    size: int
    head: str


def _pending(session: Session, batch: int) -> list[Any]:
    # `hash IS NULL` too: a record with a hash but no position was taken out of the chain by hand; it
    # stays out (verify reports it) rather than being re-sealed somewhere else.
    t = AUDIT_LOG.c
    return list(
        session.execute(  # columns, not ORM objects: thousands of records a minute pass through here
            select(t.id, t.at, t.actor, t.action, t.subject, t.data)
            .where(t.seq.is_(None), t.hash.is_(None))
            .order_by(t.id)
            .limit(batch)
        ).all()
    )


def _link(pending: list[Any], size: int, head: str) -> tuple[list[dict[str, Any]], int, str]:
    links = []
    for rec in pending:
        size += 1
        prev, head = head, chain_hash(head, size, rec.at, rec.actor, rec.action, rec.subject, rec.data)
        links.append({"rid": rec.id, "s": size, "p": prev, "h": head})
    return links, size, head


def plan_seal(session: Session, *, batch: int = 5000) -> SealPlan:
    """Work out the links of the records pending in `session`'s snapshot (which may be read-only)."""
    size, head = chain_tail(session)
    links, end, last = _link(_pending(session, batch), size, head)
    return SealPlan((size, head), links, end, last)


class ChainMoved(RuntimeError):
    """A seal plan's records were not all still pending when it was written: the transaction must roll back."""


def seal(
    session: Session, *, wait: bool = True, batch: int = 5000, plan: SealPlan | None = None, rest: bool = True
) -> SealResult | None:
    """Chain every committed, unsealed record, in the caller's transaction.

    One sealer at a time across processes (a PostgreSQL advisory lock; SQLite writers are serialised
    anyway). With `wait=False` it returns None at once when another sealer holds the lock. `plan`: links worked
    out beforehand (`plan_seal`), written first if the chain has not moved since (else worked out afresh);
    raises ChainMoved if one of its records is no longer pending, which the caller's rollback undoes.
    `rest=False` with a plan that still fits: write the plan's links only and leave the records committed since
    it was made to the next pass (on SQLite, hashing them here would hold every writer up: a pass waits its turn
    for the writer lock, behind a queue of bookings that append records meanwhile).
    """
    if not advisory_lock(session, SEALER_LOCK, wait=wait):
        return None
    size, head = chain_tail(session)
    sealed = 0
    if plan is not None and plan.links and plan.after == (size, head):
        written = cast(CursorResult[Any], session.execute(_SEAL_PENDING, plan.links)).rowcount
        if written != len(plan.links):
            raise ChainMoved(f"{len(plan.links) - written} of the records planned for sealing were no longer pending")
        size, head, sealed = plan.size, plan.head, len(plan.links)
        _expire_records(session)
        if not rest:
            return SealResult(sealed, size, head)
    elif plan is not None and not rest and plan.after == (size, head):
        return SealResult(0, size, head)  # nothing was pending when planned: what came since waits for the next
    while True:
        pending = _pending(session, batch)
        links, size, head = _link(pending, size, head)
        if links:
            session.execute(_SEAL, links)
            _expire_records(session)
        sealed += len(pending)
        if len(pending) < batch:
            return SealResult(sealed, size, head)


def _expire_records(session: Session) -> None:
    for obj in list(session.identity_map.values()):  # records this session holds: as sealed now
        if isinstance(obj, AuditRecord):
            session.expire(obj)


@dataclass
class ChainWalk:
    """Checks sealed records one by one in `seq` order, from a known position of the chain."""

    size: int = 0  # records checked so far (or the position the walk starts after)
    head: str = GENESIS  # the hash of record `size`

    def step(self, rec: AuditRecord) -> str | None:
        """Check the next record and move past it; or say what is wrong with it (and stay)."""
        expected = self.size + 1
        if rec.seq != expected:
            return f"record {expected} is missing (next is {rec.seq})"
        if rec.prev_hash != self.head:
            return f"record {expected} does not point at record {self.size}"
        if rec.hash != chain_hash(self.head, expected, rec.at, rec.actor, rec.action, rec.subject, rec.data):
            return f"record {expected} was altered: its content no longer matches its hash"
        self.size, self.head = expected, rec.hash
        return None


def sealed_records(session: Session, *, after: int = 0) -> Iterable[AuditRecord]:
    """Sealed records in chain order, from position `after + 1`, streamed."""
    return session.scalars(
        select(AuditRecord).where(AuditRecord.seq > after).order_by(AuditRecord.seq).execution_options(yield_per=2000)
    )
