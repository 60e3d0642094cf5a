"""Screening, the review queue, lists, alerts and the audit chain."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gpulease import audit
from gpulease.api.deps import ActorDep, IdPath, RuntimeDep
from gpulease.services import customers, screening
from gpulease.services.context import Role
from gpulease.services.errors import Conflict

router = APIRouter(tags=["compliance"])


class ScreenIn(BaseModel):
    name: str = Field(min_length=1, max_length=500, examples=["iFlytek Co., Ltd."])
    country: str | None = Field(default=None, examples=["CN"])
    address: str | None = None


class ScreenHit(BaseModel):
    entry_id: str
    list: str
    name: str
    matched_name: str
    score: float
    reasons: builtins.list[str]  # `list` is a field name in this class
    countries: builtins.list[str]
    programs: builtins.list[str]
    source_url: str | None


class ScreenOut(BaseModel):
    decision: Literal["cleared", "review", "denied"]
    reasons: list[str]
    list_version: str | None
    hits: list[ScreenHit]


@router.post("/screen", response_model=ScreenOut)
def screen(body: ScreenIn, rt: RuntimeDep, actor: ActorDep) -> ScreenOut:
    """Screen a name (any script) against the lists in force; every hit says which name matched and why."""
    actor.require(Role.OPERATOR, Role.COMPLIANCE)
    index = rt.screening.index()
    result = screening.screen_name(index, body.name, body.country, body.address)
    with rt.store.transaction() as s:
        audit.append(
            s,
            at=rt.clock(),
            actor=actor.name,
            action="screen",
            subject="name",
            data={
                "name": body.name,
                "country": body.country,
                "decision": result["decision"],
                "top": result["hits"][0]["entry_id"] if result["hits"] else None,
            },
        )
    return ScreenOut.model_validate(result)


class ReviewOut(BaseModel):
    id: int
    kind: str
    customer_id: int
    status: str
    summary: str
    details: dict[str, Any]
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None


class DecisionIn(BaseModel):
    decision: Literal["approve", "deny"]
    comment: str = Field(min_length=1, max_length=4000)


def _review(r: Any) -> ReviewOut:
    return ReviewOut(
        id=r.id,
        kind=r.kind,
        customer_id=r.customer_id,
        status=r.status,
        summary=r.summary,
        details=r.details,
        created_at=r.created_at,
        decided_by=r.decided_by,
        decided_at=r.decided_at,
        comment=r.comment,
    )


@router.get("/reviews", response_model=list[ReviewOut])
def list_reviews(
    rt: RuntimeDep,
    actor: ActorDep,
    status: Literal["open", "approved", "denied", "all"] = "open",
) -> list[ReviewOut]:
    with rt.store.transaction() as s:
        return [_review(r) for r in customers.list_reviews(s, actor, status)]


@router.post("/reviews/{review_id}/decision", response_model=ReviewOut)
def decide(review_id: IdPath, body: DecisionIn, rt: RuntimeDep, actor: ActorDep) -> ReviewOut:
    """Compliance role: approve (customer cleared, held leases released) or deny, with a comment."""
    with rt.store.transaction() as s:
        out = _review(customers.decide_review(s, actor, review_id, body.decision, body.comment, rt.clock()))
    rt.after_lease_change()
    return out


def _alert(a: Any) -> dict[str, Any]:
    return {
        "id": a.id,
        "at": a.at,
        "kind": a.kind,
        "message": a.message,
        "data": a.data,
        "acknowledged": a.acknowledged,
    }


@router.get("/alerts")
def alerts(rt: RuntimeDep, actor: ActorDep, unacknowledged: bool = False) -> list[dict[str, Any]]:
    """Operator alerts, newest first (a customer newly hit after a list load, …)."""
    with rt.store.transaction() as s:
        return [_alert(a) for a in customers.list_alerts(s, actor, unacknowledged)]


@router.post("/alerts/{alert_id}/ack")
def acknowledge(alert_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> dict[str, Any]:
    with rt.store.transaction() as s:
        return _alert(customers.acknowledge_alert(s, actor, alert_id, rt.clock()))


@router.get("/lists")
def lists_status(rt: RuntimeDep, actor: ActorDep) -> list[dict[str, Any]]:
    """List versions: the one in force, counts per list, sources."""
    with rt.store.transaction() as s:
        return [
            {
                "id": v.id,
                "in_force": v.in_force,
                "loaded_at": v.loaded_at,
                "counts": v.counts,
                "sources": v.sources,
                "content_hash": v.content_hash,
            }
            for v in screening.list_versions(s)
        ]


@router.get("/audit/verify")
def audit_verify(rt: RuntimeDep, actor: ActorDep) -> dict[str, Any]:
    """The chain record by record, and every signed checkpoint (stored and in the data folder) against it."""
    actor.require(Role.OPERATOR, Role.COMPLIANCE)
    with rt.store.transaction() as s:
        r = rt.audit_log.verify(s)
    return {
        "ok": r.ok,
        "records": r.records,
        "broken_seq": r.broken_seq,
        "problem": r.problem,
        "pending": r.pending,
        "checkpoints": r.checkpoints,
        "signatures_checked": r.signatures_checked,
    }


@router.get("/audit/checkpoint")
def audit_checkpoint(rt: RuntimeDep, actor: ActorDep) -> dict[str, Any]:
    """The signed checkpoint of the current head (sealing first): keep it elsewhere to detect deletions later."""
    actor.require(Role.OPERATOR, Role.COMPLIANCE)
    try:
        cp = rt.audit_log.checkpoint()
    except (audit.ChainMismatch, audit.AuditKeyError) as e:
        raise Conflict(str(e)) from e
    return {
        "size": cp.size,
        "head": cp.head,
        "time": cp.at,
        "key_id": cp.key_id,
        "signature": cp.signature,
        "note": cp.note(),
        "public_key": rt.audit_log.public_key().vkey,
    }
