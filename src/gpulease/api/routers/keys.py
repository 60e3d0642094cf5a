"""API keys: customers make, name, rotate and revoke their own; operators any. A secret is shown once."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gpulease.api.deps import ActorDep, IdPath, RuntimeDep
from gpulease.api.routing import OneTripRoute
from gpulease.api.schemas import KeyCreatedOut, KeyIn, KeyOut, KeyPatch, KeyRotateIn
from gpulease.services import keys

router = APIRouter(tags=["keys"], route_class=OneTripRoute)

# The idempotency middleware keeps a copy of each answer to replay it; this field of it is kept out of that copy.
SHOWN_ONCE = {"X-Gpulease-Shown-Once": "key"}


@router.post("/keys", status_code=201, response_model=KeyCreatedOut)
def create_key(body: KeyIn, rt: RuntimeDep, actor: ActorDep, response: Response) -> KeyCreatedOut:
    """A new key; its secret is in this answer only. Customers: a key for themselves. Operators: any role."""
    issued = rt.perform(keys.issue_key, actor=actor, role=body.role, customer_id=body.customer_id, label=body.label)
    response.headers.update(SHOWN_ONCE)
    return KeyCreatedOut.issued(issued)


@router.get("/keys", response_model=list[KeyOut])
def list_keys(rt: RuntimeDep, actor: ActorDep, customer_id: IdPath | None = None) -> list[KeyOut]:
    """Customers: their own keys. Operators and compliance: every key (or one customer's)."""
    return [KeyOut.of(k) for k in rt.perform(keys.list_keys, actor=actor, customer_id=customer_id)]


@router.delete("/keys/{key_id}", response_model=KeyOut)
def revoke_key(key_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> KeyOut:
    """Revoke: the key stops working now."""
    return KeyOut.of(rt.perform(keys.revoke_key, actor=actor, key_id=key_id))


@router.post("/keys/{key_id}/rotate", status_code=201, response_model=KeyCreatedOut)
def rotate_key(key_id: IdPath, body: KeyRotateIn, rt: RuntimeDep, actor: ActorDep, response: Response) -> KeyCreatedOut:
    """A new secret in place of this key; the old one stops working after `grace_s` seconds (0: now)."""
    issued = rt.perform(keys.rotate_key, actor=actor, key_id=key_id, grace_s=body.grace_s)
    response.headers.update(SHOWN_ONCE)
    return KeyCreatedOut.issued(issued)


@router.patch("/keys/{key_id}", response_model=KeyOut)
def rename_key(key_id: IdPath, body: KeyPatch, rt: RuntimeDep, actor: ActorDep) -> KeyOut:
    return KeyOut.of(rt.perform(keys.rename_key, actor=actor, key_id=key_id, label=body.label))
