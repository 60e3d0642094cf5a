"""Checking the audit log and publishing its signed checkpoints (the log itself is gpulease.audit)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gpulease import audit
from gpulease.services.context import Actor
from gpulease.services.errors import Conflict, InvalidRequest
from gpulease.services.permissions import Permission, require
from gpulease.services.work import Work


def verify(
    work: Work,
    *,
    actor: Actor,
    log: audit.AuditLog,
    files: Sequence[Path] = (),
    public_keys: Sequence[str] = (),
) -> audit.VerifyResult:
    """The chain record by record and every signed checkpoint (stored, in the data folder, `files`) against it.

    `public_keys` replace the locally found keys, so a key file swapped in the data folder cannot fool it.
    """
    require(actor, Permission.VERIFY_RECORDS)
    try:
        keys = [audit.VerifierKey.parse(k) for k in public_keys]
    except audit.CheckpointFormatError as e:
        raise InvalidRequest(str(e)) from None
    return log.verify(work.session, files=files, keys=keys)


def checkpoint(*, actor: Actor, log: audit.AuditLog) -> audit.Checkpoint:
    """Seal what has committed and sign the head (in transactions of its own): keep it elsewhere."""
    require(actor, Permission.VERIFY_RECORDS)
    try:
        return log.checkpoint()
    except (audit.ChainMismatch, audit.AuditKeyError) as e:
        raise Conflict(str(e)) from e


def public_key(*, actor: Actor, log: audit.AuditLog) -> str:
    """The key checkpoints are signed with, as `gpulease audit verify --public-key` takes it."""
    require(actor, Permission.VERIFY_RECORDS)
    try:
        return log.public_key().vkey
    except audit.AuditKeyError as e:
        raise Conflict(str(e)) from e
