"""API keys: random secrets shown once, stored as SHA-256 (they are high-entropy, so no slow KDF needed).

Operators create keys of any role and list and revoke any key. A customer manages its own keys: creates,
names, rotates (a new secret; the old one stops working at once or after a grace period) and revokes them.
A key stops working at `revoked_at`: now when revoked, later when rotated with a grace period.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gpulease import audit
from gpulease.services import limits
from gpulease.services.context import Actor, Role
from gpulease.services.errors import Conflict, Forbidden, InvalidRequest, NotFound
from gpulease.services.permissions import Permission, allowed, require
from gpulease.services.work import Work
from gpulease.store.models import ApiKey, Customer

LABEL_MAX = 200
MAX_GRACE = timedelta(days=7)


def key_hash(key: str) -> str:
    """What the store keeps of a key, and what a server remembers it by."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


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
    revoked_at: datetime | None  # when it stopped (or, after a rotation with grace, stops) working

    def works_at(self, t: datetime) -> bool:
        return self.revoked_at is None or self.revoked_at > t


@dataclass(frozen=True)
class IssuedKey:
    """A key just made: its listing and its secret, which is shown this once."""

    key: KeyRow
    secret: str


def _label(label: str | None) -> str | None:
    return limits.text(label, what="the label", max_len=LABEL_MAX)


def _mint(work: Work, *, actor: Actor, role: Role, customer_id: int | None, label: str | None) -> IssuedKey:
    session, now = work.session, work.now
    prefix = secrets.token_hex(4)
    key = f"gl_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        prefix=prefix, key_hash=key_hash(key), role=role.value, customer_id=customer_id, label=label, created_at=now
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        at=now,
        actor=actor.name,
        action="key.created",
        subject=f"key:{row.id}",
        data={"role": role.value, "customer_id": customer_id, "prefix": prefix},
    )
    return IssuedKey(_row(session, row), key)


def issue_key(
    work: Work, *, actor: Actor, role: str | None = None, customer_id: int | None = None, label: str | None = None
) -> IssuedKey:
    """A new key. Operators: any role (a customer key for a named customer). Customers: a key for themselves."""
    if actor.role is Role.CUSTOMER:
        require(actor, Permission.MANAGE_OWN_KEYS)
        if role not in (None, Role.CUSTOMER.value):
            raise Forbidden("a customer key can only create customer keys")
        if customer_id not in (None, actor.customer_id):
            raise NotFound("no such customer")
        return _mint(work, actor=actor, role=Role.CUSTOMER, customer_id=actor.customer_id, label=_label(label))
    # Keys grant roles, an operator key included: only an operator hands them out.
    require(actor, Permission.MANAGE_KEYS)
    if role is None:
        raise InvalidRequest(f"choose the key's role: {', '.join(r.value for r in Role)}")
    try:
        role_v = Role(role)
    except ValueError:
        raise InvalidRequest(f"role must be one of {', '.join(r.value for r in Role)}") from None
    if role_v is Role.CUSTOMER:
        if customer_id is None:
            raise InvalidRequest("a customer key acts for one customer: choose the customer this key is for")
        if not limits.fits_id(customer_id) or work.session.get(Customer, customer_id) is None:
            raise NotFound(f"no customer with id {customer_id}")
    elif customer_id is not None:
        raise InvalidRequest(f"an {role_v} key is not tied to a customer")
    return _mint(work, actor=actor, role=role_v, customer_id=customer_id, label=_label(label))


def create_key(work: Work, *, actor: Actor, role: str, customer_id: int | None = None, label: str | None = None) -> str:
    """Create a key and return its plaintext (the only time it is ever visible)."""
    return issue_key(work, actor=actor, role=role, customer_id=customer_id, label=label).secret


def _own(work: Work, actor: Actor, key_id: int) -> ApiKey:
    """A key the actor may change: any key for an operator, its own tenant's for a customer."""
    if not (allowed(actor, Permission.MANAGE_KEYS) or allowed(actor, Permission.MANAGE_OWN_KEYS)):
        require(actor, Permission.MANAGE_KEYS)
    row = work.session.get(ApiKey, key_id) if limits.fits_id(key_id) else None
    mine = row is not None and (
        actor.role is not Role.CUSTOMER or (row.role == Role.CUSTOMER.value and row.customer_id == actor.customer_id)
    )
    if row is None or not mine:
        raise NotFound(f"no key with id {key_id}")
    return row


def revoke_key(work: Work, *, actor: Actor, key_id: int) -> KeyRow:
    """The key stops working now (a key already revoked stays so)."""
    row = _own(work, actor, key_id)
    if row.revoked_at is None or row.revoked_at > work.now:
        row.revoked_at = work.now
        audit.append(
            work.session, at=work.now, actor=actor.name, action="key.revoked", subject=f"key:{row.id}", data={}
        )
    return _row(work.session, row)


def rotate_key(work: Work, *, actor: Actor, key_id: int, grace_s: int = 0) -> IssuedKey:
    """A new secret in place of this key (same role, customer and name); the old one stops working after
    `grace_s` seconds (0: at once), so running clients can be switched over."""
    row = _own(work, actor, key_id)
    if row.revoked_at is not None and row.revoked_at <= work.now:
        raise Conflict(f"key {key_id} is revoked; create a new key instead")
    if not 0 <= grace_s <= MAX_GRACE.total_seconds():
        raise InvalidRequest(f"the grace period is 0 to {int(MAX_GRACE.total_seconds())} seconds (7 days)")
    stops = work.now + timedelta(seconds=grace_s)
    row.revoked_at = stops if row.revoked_at is None else min(row.revoked_at, stops)
    new = _mint(work, actor=actor, role=Role(row.role), customer_id=row.customer_id, label=row.label)
    audit.append(
        work.session,
        at=work.now,
        actor=actor.name,
        action="key.rotated",
        subject=f"key:{row.id}",
        data={"replaced_by": new.key.id, "old_key_stops": row.revoked_at.isoformat()},
    )
    return new


def rename_key(work: Work, *, actor: Actor, key_id: int, label: str | None) -> KeyRow:
    row = _own(work, actor, key_id)
    row.label = _label(label)
    audit.append(work.session, at=work.now, actor=actor.name, action="key.renamed", subject=f"key:{row.id}", data={})
    return _row(work.session, row)


def _row(session: Session, k: ApiKey) -> KeyRow:
    customer = None if k.customer_id is None else session.get(Customer, k.customer_id)
    return KeyRow(
        k.id,
        k.prefix,
        k.role,
        k.customer_id,
        None if customer is None else customer.legal_name,
        k.label,
        k.created_at,
        k.revoked_at,
    )


def list_keys(work: Work, *, actor: Actor, customer_id: int | None = None) -> list[KeyRow]:
    """Every key (staff), or one customer's; a customer sees its own keys only."""
    q = (
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
    )
    if actor.role is Role.CUSTOMER:
        require(actor, Permission.MANAGE_OWN_KEYS)
        q = q.where(ApiKey.customer_id == actor.customer_id, ApiKey.role == Role.CUSTOMER.value)
    else:
        require(actor, Permission.VIEW_KEYS)
        if customer_id is not None:
            q = q.where(ApiKey.customer_id == customer_id)
    return [KeyRow(*r) for r in work.session.execute(q).all()]


def authenticate(session: Session, key: str, now: datetime) -> Actor | None:
    """The actor a key stands for, if it works at `now` (not revoked, or rotated and still in its grace)."""
    digest = key_hash(key)
    return actors_by_hash(session, [digest], now).get(digest)


def actors_by_hash(session: Session, hashes: Sequence[str], now: datetime) -> dict[str, Actor]:
    """The actors of the keys with these hashes that work at `now`, by hash, in one query per 500 (a server's
    look-up of every key it has in memory)."""
    found: dict[str, Actor] = {}
    for i in range(0, len(hashes), 500):
        rows = session.scalars(
            select(ApiKey).where(
                ApiKey.key_hash.in_(hashes[i : i + 500]), or_(ApiKey.revoked_at.is_(None), ApiKey.revoked_at > now)
            )
        )
        for row in rows:
            found[row.key_hash] = Actor(Role(row.role), row.customer_id, name=f"key:{row.prefix}")
    return found
