"""API keys: random secrets shown once, stored as SHA-256 (they are high-entropy, so no slow KDF needed)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpulease import audit
from gpulease.services.context import Actor, Role
from gpulease.services.errors import InvalidRequest, NotFound
from gpulease.store.models import ApiKey, Customer


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    session: Session, *, role: str, customer_id: int | None, now: datetime, label: str | None = None, actor: str = "cli"
) -> str:
    """Create a key and return its plaintext (the only time it is ever visible)."""
    try:
        role_v = Role(role)
    except ValueError:
        raise InvalidRequest(f"role must be one of {', '.join(r.value for r in Role)}") from None
    if role_v is Role.CUSTOMER:
        if customer_id is None:
            raise InvalidRequest("a customer key needs --customer ID")
        if session.get(Customer, customer_id) is None:
            raise NotFound(f"no customer with id {customer_id}")
    elif customer_id is not None:
        raise InvalidRequest(f"an {role_v} key is not tied to a customer")
    prefix = secrets.token_hex(4)
    key = f"gl_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        prefix=prefix, key_hash=_hash(key), role=role_v.value, customer_id=customer_id, label=label, created_at=now
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        at=now,
        actor=actor,
        action="key.created",
        subject=f"key:{row.id}",
        data={"role": role_v.value, "customer_id": customer_id, "prefix": prefix},
    )
    return key


def revoke_key(session: Session, key_id: int, now: datetime, actor: str = "cli") -> None:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no key with id {key_id}")
    row.revoked_at = now
    audit.append(session, at=now, actor=actor, action="key.revoked", subject=f"key:{row.id}", data={})


def authenticate(session: Session, key: str) -> Actor | None:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == _hash(key), ApiKey.revoked_at.is_(None)))
    if row is None:
        return None
    return Actor(Role(row.role), row.customer_id, name=f"key:{row.prefix}")
