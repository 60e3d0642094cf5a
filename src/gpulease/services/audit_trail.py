"""Checking the hash-chained audit log (the chain itself is gpulease.audit)."""

from __future__ import annotations

from gpulease import audit
from gpulease.services.context import Actor
from gpulease.services.permissions import Permission, require
from gpulease.services.work import Work


def verify(work: Work, *, actor: Actor) -> audit.VerifyResult:
    """Walk the chain; the result names the first record that no longer fits, if any."""
    require(actor, Permission.VERIFY_RECORDS)
    return audit.verify(work.session)
