"""Screening, the review queue, lists, alerts and the audit chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from gpulease.api.deps import ActorDep, IdPath, IdQuery, RuntimeDep
from gpulease.api.routing import OneTripRoute
from gpulease.api.schemas import (
    AlertOut,
    AuditCheckOut,
    CheckpointOut,
    DecisionIn,
    ListVersionOut,
    ReviewOut,
    ScreenIn,
    ScreenOut,
)
from gpulease.services import alerts, audit_trail, reviews, screening
from gpulease.services.records import ReviewItem
from gpulease.services.work import Work

router = APIRouter(tags=["compliance"], route_class=OneTripRoute)


@router.post("/screen", response_model=ScreenOut)
def screen(body: ScreenIn, rt: RuntimeDep, actor: ActorDep) -> ScreenOut:
    """Screen a name (any script) against the lists in force; every hit says which name matched and why."""
    result = rt.perform(
        screening.screen_name,
        actor=actor,
        name=body.name,
        country=body.country,
        address=body.address,
        date_of_birth=body.date_of_birth,
        nationality=body.nationality,
    )
    return ScreenOut.of(result)


@router.get("/reviews", response_model=list[ReviewOut])
def list_reviews(
    rt: RuntimeDep,
    actor: ActorDep,
    status: Annotated[str, Query(json_schema_extra={"enum": list(reviews.STATUSES)})] = "open",
    customer_id: IdQuery | None = None,
) -> list[ReviewOut]:
    """The review queue: open, approved, denied or all items."""
    with rt.work() as w:
        items = reviews.list_reviews(w, actor=actor, status=status, customer_id=customer_id)
        cleared = reviews.cleared_parties(w)
        return [ReviewOut.of(r, licence_needed_for=reviews.needs_licence(r, cleared)) for r in items]


def _review_out(w: Work, item: ReviewItem) -> ReviewOut:
    """A review item with its decisions and, while open, what an approval would need a licence for."""
    needed = reviews.needs_licence(item, reviews.cleared_parties(w)) if item.status in reviews.OPEN else []
    return ReviewOut.of(item, reviews.decisions_of(w, item), needed)


@router.get("/reviews/{review_id}", response_model=ReviewOut)
def get_review(review_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> ReviewOut:
    """One review item with its evidence (`details`: the screening's hits and their reasons, ownership paths, red
    flags), what an approval would need a licence for, and every officer's decision so far."""
    with rt.work() as w:
        item = reviews.get_review(w, actor=actor, review_id=review_id)
        return _review_out(w, item)


@router.post(
    "/reviews/{review_id}/decision",
    response_model=ReviewOut,
    responses={202: {"model": ReviewOut, "description": "first approval: awaiting a second compliance officer"}},
)
def decide(review_id: IdPath, body: DecisionIn, rt: RuntimeDep, actor: ActorDep, response: Response) -> ReviewOut:
    """Compliance role: approve (customer cleared, held leases released) or deny (its leases closed), with a
    comment. Clearing a strong hit on a blocking list needs `licence` and a second, different compliance officer:
    the first approval answers 202 with the review `awaiting_second_approval`; the same officer twice, 409."""
    with rt.work() as w:
        item = reviews.decide_review(
            w,
            actor=actor,
            review_id=review_id,
            decision=body.decision,
            comment=body.comment,
            licence=None if body.licence is None else body.licence.input(),
        )
        if item.status == reviews.AWAITING:
            response.status_code = 202
        return _review_out(w, item)


@router.get("/alerts", response_model=list[AlertOut])
def list_alerts(rt: RuntimeDep, actor: ActorDep, unacknowledged: bool = False) -> list[AlertOut]:
    """Operator alerts, newest first (a customer newly hit after a list load, …)."""
    with rt.work() as w:
        return [AlertOut.of(a) for a in alerts.list_alerts(w, actor=actor, unacknowledged_only=unacknowledged)]


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut)
def acknowledge(alert_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> AlertOut:
    with rt.work() as w:
        return AlertOut.of(alerts.acknowledge_alert(w, actor=actor, alert_id=alert_id))


@router.get("/lists", response_model=list[ListVersionOut])
def lists_status(rt: RuntimeDep, actor: ActorDep) -> list[ListVersionOut]:
    """List versions: the one in force, counts per list, sources; `lists` gives each list's publication date
    and a warning when it is older than the configured age (GPULEASE_LISTS_MAX_AGE_DAYS)."""
    with rt.work() as w:
        today, max_age = w.now.date(), w.settings.lists_max_age_days
        return [
            ListVersionOut.of(v, screening.list_status(v, today, max_age))
            for v in screening.list_versions(w, actor=actor)
        ]


@router.get("/audit/verify", response_model=AuditCheckOut)
def audit_verify(rt: RuntimeDep, actor: ActorDep) -> AuditCheckOut:
    """The chain record by record, and every signed checkpoint (stored and in the data folder) against it."""
    r = rt.perform(audit_trail.verify, actor=actor, log=rt.audit_log)
    return AuditCheckOut(
        ok=r.ok,
        records=r.records,
        broken_seq=r.broken_seq,
        problem=r.problem,
        pending=r.pending,
        checkpoints=r.checkpoints,
        signatures_checked=r.signatures_checked,
    )


@router.get("/audit/checkpoint", response_model=CheckpointOut)
def audit_checkpoint(rt: RuntimeDep, actor: ActorDep) -> CheckpointOut:
    """The signed checkpoint of the current head (sealing first): keep it elsewhere to detect deletions later."""
    cp = audit_trail.checkpoint(actor=actor, log=rt.audit_log)
    return CheckpointOut(
        size=cp.size,
        head=cp.head,
        time=cp.at,
        key_id=cp.key_id,
        signature=cp.signature,
        note=cp.note(),
        public_key=audit_trail.public_key(actor=actor, log=rt.audit_log),
    )
