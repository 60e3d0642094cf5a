"""API keys: random secrets shown once, stored as SHA-256 (they are high-entropy, so no slow KDF needed)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpulease import audit
from gpulease.services import limits
from gpulease.services.context import Actor, Role
from gpulease.services.errors import InvalidRequest, NotFound
from gpulease.services.permissions import Permission, require
from gpulease.services.work import Work
from gpulease.store.models import ApiKey, Customer


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create_key(work: Work, *, actor: Actor, role: str, customer_id: int | None = None, label: str | None = None) -> str:
    """Create a key and return its plaintext (the only time it is ever visible)."""
    # Keys grant roles, an operator key included: only an operator hands them out.
    require(actor, Permission.MANAGE_KEYS)
    session, now = work.session, work.now
    try:
        role_v = Role(role)
    except ValueError:
        raise InvalidRequest(f"role must be one of {', '.join(r.value for r in Role)}") from None
    if role_v is Role.CUSTOMER:
        if customer_id is None:
            raise InvalidRequest("a customer key acts for one customer: choose the customer this key is for")
        if not limits.fits_id(customer_id) or session.get(Customer, customer_id) is None:
            raise NotFound(f"no customer with id {customer_id}")
    elif customer_id is not None:
        raise InvalidRequest(f"an {role_v} key is not tied to a customer")
    prefix = secrets.token_hex(4)
    key = f"gl_{prefix}_{secrets.token_urlsafe(32)}"
    label = limits.text(label, what="the label", max_len=limits.LABEL_MAX)
    row = ApiKey(
        prefix=prefix, key_hash=_hash(key), role=role_v.value, customer_id=customer_id, label=label, created_at=now
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        at=now,
        actor=actor.name,
        action="key.created",
        subject=f"key:{row.id}",
        data={"role": role_v.value, "customer_id": customer_id, "prefix": prefix},
    )
    return key


def revoke_key(work: Work, *, actor: Actor, key_id: int) -> None:
    require(actor, Permission.MANAGE_KEYS)
    row = work.session.get(ApiKey, key_id) if limits.fits_id(key_id) else None
    if row is None:
        raise NotFound(f"no key with id {key_id}")
    row.revoked_at = work.now
    audit.append(work.session, at=work.now, actor=actor.name, action="key.revoked", subject=f"key:{row.id}", data={})


@dataclass(frozen=True)
class KeyRow:
    """An API key as it is listed: never its secret, nor its hash."""

    id: int
    prefix: str
    role: str
    customer_id: int | None
    customer: str | None
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


def list_keys(work: Work, *, actor: Actor) -> list[KeyRow]:
    require(actor, Permission.VIEW_KEYS)
    rows = work.session.execute(
        select(
            ApiKey.id,
            ApiKey.prefix,
            ApiKey.role,
            ApiKey.customer_id,
            Customer.legal_name,
            ApiKey.label,
            ApiKey.created_at,
            ApiKey.revoked_at,
        )
        .outerjoin(Customer, ApiKey.customer_id == Customer.id)
        .order_by(ApiKey.id.desc())
    ).all()
    return [KeyRow(*r) for r in rows]


def authenticate(session: Session, key: str) -> Actor | None:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == _hash(key), ApiKey.revoked_at.is_(None)))
    if row is None:
        return None
    return Actor(Role(row.role), row.customer_id, name=f"key:{row.prefix}")
