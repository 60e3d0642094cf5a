"""The compliance review queue: listing it, and a compliance officer's decision with what follows from it."""

from __future__ import annotations

from sqlalchemy import select

from gpulease import audit
from gpulease.domain.customers import ComplianceStatus
from gpulease.services import limits
from gpulease.services.context import Actor
from gpulease.services.errors import Conflict, InvalidRequest, NotFound
from gpulease.services.holds import close_leases, release_holds
from gpulease.services.permissions import Permission, require
from gpulease.services.work import Work
from gpulease.store.models import Customer, ReviewItem

STATUSES = ("open", "approved", "denied", "all")


def list_reviews(work: Work, *, actor: Actor, status: str = "open", customer_id: int | None = None) -> list[ReviewItem]:
    require(actor, Permission.VIEW_REVIEWS)
    if status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}")
    q = select(ReviewItem).order_by(ReviewItem.id)
    if status != "all":
        q = q.where(ReviewItem.status == status)
    if customer_id is not None:
        q = q.where(ReviewItem.customer_id == customer_id)
    return list(work.session.scalars(q))


def get_review(work: Work, *, actor: Actor, review_id: int) -> ReviewItem:
    require(actor, Permission.VIEW_REVIEWS)
    item = work.session.get(ReviewItem, review_id) if limits.fits_id(review_id) else None
    if item is None:
        raise NotFound(f"no review item {review_id}")
    return item


def decide_review(work: Work, *, actor: Actor, review_id: int, decision: str, comment: str) -> ReviewItem:
    """A compliance officer approves (customer cleared, holds released) or denies (customer denied, its leases
    closed: ended or cancelled, runs stopped, GPUs freed, billing closed)."""
    require(actor, Permission.DECIDE_REVIEWS)
    session, now = work.session, work.now
    item = get_review(work, actor=actor, review_id=review_id)
    if item.status != "open":
        raise Conflict(f"review item {review_id} was already decided: {item.status}")
    if decision not in ("approve", "deny"):
        raise InvalidRequest("decision must be approve or deny")
    if not comment.strip():
        raise InvalidRequest("a comment is required: it is the record of why")
    comment = limits.required_text(comment, what="the comment", max_len=limits.COMMENT_MAX, pattern=limits.TEXT)
    c = session.get(Customer, item.customer_id)
    assert c is not None
    item.status = "approved" if decision == "approve" else "denied"
    item.decided_by, item.decided_at, item.comment = actor.name, now, comment
    if item.kind in ("screening", "rescreen"):
        if decision == "approve":
            c.compliance_status = ComplianceStatus.CLEARED.value
            release_holds(work, c, actor=actor.name)
        else:
            c.compliance_status = ComplianceStatus.DENIED.value
            close_leases(work, c, actor=actor.name, detail=f"denied by compliance review {item.id}")
        # Other open screening reviews of the same customer are settled by this decision.
        for other in session.scalars(
            select(ReviewItem).where(
                ReviewItem.customer_id == c.id,
                ReviewItem.status == "open",
                ReviewItem.id != item.id,
                ReviewItem.kind.in_(["screening", "rescreen"]),
            )
        ):
            other.status, other.decided_by, other.decided_at = item.status, actor.name, now
            other.comment = f"settled by review {item.id}"
    audit.append(
        session,
        at=now,
        actor=actor.name,
        action="review.decided",
        subject=f"review:{item.id}",
        data={
            "customer_id": c.id,
            "decision": item.status,
            "comment": comment,
            "kind": item.kind,
            "customer_status": c.compliance_status,
        },
    )
    return item
