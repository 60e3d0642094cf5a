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

router = APIRouter(tags=["compliance"])


class ScreenIn(BaseModel):
    name: str = Field(min_length=1, max_length=500, examples=["iFlytek Co., Ltd."])
    country: str | None = Field(default=None, examples=["CN"])
    address: str | None = None


class ScoreFeature(BaseModel):
    name: str
    points: float
    detail: str


class EnrichmentSource(BaseModel):
    kind: str
    script: str | None
    source_url: str | None
    note: str | None


class ListedAddress(BaseModel):
    street: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    country: str | None


class ListedIdentifier(BaseModel):
    kind: str
    value: str
    country: str | None


class ScreenHit(BaseModel):
    """A hit explained for a compliance officer: what matched, what the listing means, which rule decided."""

    entry_id: str
    list: str
    list_name: str
    name: str
    matched_name: str
    matched_kind: str  # primary name, alias, enrichment alias
    enrichment: EnrichmentSource | None
    score: float
    features: builtins.list[ScoreFeature]  # `list` is a field name in this class
    reasons: builtins.list[str]
    outcome: Literal["cleared", "review", "denied"]
    rule: str
    blocking: bool
    restriction: str
    entry_type: str
    programs: builtins.list[str]
    federal_register: str | None
    listing_date: str | None
    license_requirement: str | None
    license_policy: str | None
    addresses: builtins.list[ListedAddress]
    countries: builtins.list[str]
    dates_of_birth: builtins.list[str]
    nationalities: builtins.list[str]
    identifiers: builtins.list[ListedIdentifier]
    remarks: str | None
    source_url: str | None
    country_agrees: bool | None
    affiliate: bool


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
    """List versions: the one in force, counts per list, sources; `lists` gives each list's publication date
    and a warning when it is older than the configured age (GPULEASE_LISTS_MAX_AGE_DAYS)."""
    today = rt.clock().date()
    max_age = rt.settings.lists_max_age_days
    with rt.store.transaction() as s:
        return [
            {
                "id": v.id,
                "in_force": v.in_force,
                "loaded_at": v.loaded_at,
                "counts": v.counts,
                "sources": v.sources,
                "content_hash": v.content_hash,
                "lists": [r.to_dict() for r in screening.list_status(v, today, max_age)],
            }
            for v in screening.list_versions(s)
        ]


@router.get("/audit/verify")
def audit_verify(rt: RuntimeDep, actor: ActorDep) -> dict[str, Any]:
    actor.require(Role.OPERATOR, Role.COMPLIANCE)
    with rt.store.transaction() as s:
        r = audit.verify(s)
    return {"ok": r.ok, "records": r.records, "broken_seq": r.broken_seq, "problem": r.problem}
