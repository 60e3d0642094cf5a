"""Hash-chained, append-only audit log.

Each record carries the hash of the one before it: hash = sha256(prev_hash || canonical JSON of the
record's fields). Editing, deleting or re-ordering any record breaks every hash after it, and
`verify` names the first record that no longer fits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpulease.store.models import AuditRecord

GENESIS = "0" * 64


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
    """Append one record in the caller's transaction (so the audit entry commits with the change)."""
    # Serialise appenders: on PostgreSQL lock the tail row; SQLite transactions are already exclusive.
    last = session.execute(
        select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1).with_for_update()
    ).scalar_one_or_none()
    seq = 1 if last is None else last.seq + 1
    prev = GENESIS if last is None else last.hash
    # Round-trip through JSON so what we hash is exactly what the store gives back later.
    payload: dict[str, Any] = json.loads(json.dumps(data or {}, default=str))
    at = at.replace(microsecond=0)
    rec = AuditRecord(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        data=payload,
        prev_hash=prev,
        hash=chain_hash(prev, seq, at, actor, action, subject, payload),
    )
    session.add(rec)
    session.flush()
    return rec


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    broken_seq: int | None = None
    problem: str | None = None


def verify_records(records: Iterable[AuditRecord]) -> VerifyResult:
    prev = GENESIS
    expected_seq = 1
    n = 0
    for rec in records:
        n += 1
        if rec.seq != expected_seq:
            return VerifyResult(False, n, expected_seq, f"record {expected_seq} is missing (next is {rec.seq})")
        if rec.prev_hash != prev:
            return VerifyResult(False, n, rec.seq, f"record {rec.seq} does not point at record {rec.seq - 1}")
        if chain_hash(prev, rec.seq, rec.at, rec.actor, rec.action, rec.subject, rec.data) != rec.hash:
            return VerifyResult(
                False, n, rec.seq, f"record {rec.seq} was altered: its content no longer matches its hash"
            )
        prev = rec.hash
        expected_seq += 1
    return VerifyResult(True, n)


def verify(session: Session) -> VerifyResult:
    rows = session.execute(select(AuditRecord).order_by(AuditRecord.seq)).scalars()
    return verify_records(rows)
