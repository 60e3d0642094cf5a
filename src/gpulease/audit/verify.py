"""Verification: the chain record by record, and every checkpoint against it.

The chain alone shows an edited, deleted or re-ordered record. Checkpoints show what the chain alone
cannot: a chain re-hashed from the first altered record on (its head no longer matches a signed head),
records deleted from the tail, and an emptied table. Each checkpoint's signature is checked against the
trusted keys, so a checkpoint rewritten to match a forged chain fails too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gpulease.audit.chain import ChainWalk, sealed_records
from gpulease.audit.checkpoints import Checkpoint, VerifierKey, utc_text
from gpulease.store.models import AuditCheckpoint, AuditRecord


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int  # sealed records that check out
    broken_seq: int | None = None  # the first record that does not, where one record is to blame
    problem: str | None = None
    pending: int = 0  # committed records the sealer has not chained yet
    checkpoints: int = 0  # signed checkpoints compared with the chain
    signatures_checked: bool = False  # False when no trusted public key was at hand


def stored_checkpoints(session: Session) -> list[Checkpoint]:
    rows = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id))
    return [Checkpoint(r.size, r.head, r.at, r.key_id, r.signature) for r in rows]


def _named(cp: Checkpoint, source: str) -> str:
    return f"the checkpoint of {cp.size} records signed {utc_text(cp.at)} ({source})"


def verify(
    session: Session, *, keys: Sequence[VerifierKey] = (), checkpoints: Iterable[tuple[str, Checkpoint]] = ()
) -> VerifyResult:
    """Check the chain and every checkpoint, stored ones and those given as (where it came from, checkpoint)."""
    found: dict[tuple[int, str, str], tuple[str, Checkpoint]] = {}
    for source, cp in [*(("in the store", cp) for cp in stored_checkpoints(session)), *checkpoints]:
        found.setdefault((cp.size, cp.head, cp.signature), (source, cp))
    every = list(found.values())
    pending = session.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.seq.is_(None))) or 0

    def broken(problem: str, seq: int | None = None, records: int = 0) -> VerifyResult:
        return VerifyResult(False, records, seq, problem, pending, len(every), bool(keys))

    by_id = {k.key_id: k for k in keys}
    if keys:
        for source, cp in every:
            key = by_id.get(cp.key_id)
            if key is None:
                return broken(f"{_named(cp, source)} is signed by key {cp.key_id}, which is not a trusted key")
            if not key.verifies(cp):
                return broken(f"{_named(cp, source)} has a signature that does not verify: it was forged or altered")

    moved = session.scalar(
        select(AuditRecord.id).where(AuditRecord.seq.is_(None), AuditRecord.hash.is_not(None)).limit(1)
    )
    if moved is not None:
        return broken(f"record id {moved} was sealed but has lost its place in the chain: it was moved")

    pins: dict[int, list[tuple[str, Checkpoint]]] = {}
    for source, cp in every:
        pins.setdefault(cp.size, []).append((source, cp))
    walk = ChainWalk()
    for rec in sealed_records(session):
        problem = walk.step(rec)
        if problem is not None:
            return broken(problem, walk.size + 1, walk.size)
        for source, cp in pins.get(walk.size, ()):
            if cp.head != walk.head:
                return broken(
                    f"records 1–{cp.size} no longer match {_named(cp, source)}: records were changed and re-hashed",
                    records=walk.size,
                )
    if every:
        source, top = max(every, key=lambda sc: sc[1].size)
        if top.size > walk.size:
            return broken(
                f"records {walk.size + 1}–{top.size} are missing: {_named(top, source)} covers {top.size} records, "
                f"the log has {walk.size}",
                walk.size + 1,
                walk.size,
            )
    if walk.size == 0 and pending == 0:
        # Every store's log starts with a first record (migration 0005), so zero means deleted.
        return broken("the audit log is empty: its records were deleted", 1)
    return VerifyResult(True, walk.size, None, None, pending, len(every), bool(keys))
