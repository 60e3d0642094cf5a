"""Dashboard sign-ins: a random session id in the browser, its hash and expiry here; sign-out revokes it."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, or_, select

from gpulease import audit
from gpulease.services.context import Actor, Role
from gpulease.services.work import Work
from gpulease.store.models import ApiKey, WebSession


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _works(now: datetime) -> ColumnElement[bool]:
    """The key is not revoked, or was rotated and is still in its grace period."""
    return or_(ApiKey.revoked_at.is_(None), ApiKey.revoked_at > now)


def sign_in(work: Work, *, key: str) -> tuple[str, Actor] | None:
    """Trade a valid API key for a new session id (shown to the browser only), or None for a bad key."""
    session, now = work.session, work.now
    lifetime = timedelta(hours=work.settings.session_hours)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == _hash(key), _works(now)))
    if row is None:
        return None
    token = secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=_hash(token), api_key_id=row.id, created_at=now, expires_at=now + lifetime))
    audit.append(session, at=now, actor=f"key:{row.prefix}", action="dashboard.signed_in", subject=f"key:{row.id}")
    return token, Actor(Role(row.role), row.customer_id, name=f"key:{row.prefix}")


def resolve(work: Work, *, token: str) -> Actor | None:
    """The actor behind a live session: not expired, not signed out, its key not revoked."""
    now = work.now
    row = work.session.execute(
        select(ApiKey.role, ApiKey.customer_id, ApiKey.prefix)
        .join(WebSession, WebSession.api_key_id == ApiKey.id)
        .where(
            WebSession.token_hash == _hash(token),
            WebSession.revoked_at.is_(None),
            WebSession.expires_at > now,
            _works(now),
        )
    ).first()
    if row is None:
        return None
    role, customer_id, prefix = row
    return Actor(Role(role), customer_id, name=f"key:{prefix}")


def sign_out(work: Work, *, token: str) -> None:
    session, now = work.session, work.now
    ws = session.scalar(select(WebSession).where(WebSession.token_hash == _hash(token)))
    if ws is None or ws.revoked_at is not None:
        return
    ws.revoked_at = now
    audit.append(session, at=now, actor="dashboard", action="dashboard.signed_out", subject=f"key:{ws.api_key_id}")


def purge_expired(work: Work) -> None:
    """Forget sessions that ended more than a day ago (the clock's housekeeping)."""
    work.session.execute(delete(WebSession).where(WebSession.expires_at < work.now - timedelta(days=1)))
