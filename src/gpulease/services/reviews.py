"""The compliance review queue: listing it, and compliance officers' decisions with what follows from them.

Every decision is stored (`ReviewDecision`) with the evidence it saw, fingerprinted (compliance/decisions.py).
Clearing a strong hit on a blocking list, directly or through listed owners, needs a licence or exception
(authority, number, expiry, scope) and a second, different compliance officer: the first approval leaves the
review `awaiting_second_approval`, the second clears it. One officer may deny. A licence that expires re-opens
the review (`expire_licences`, run by the clock).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select

from gpulease import audit
from gpulease.compliance.decisions import Licence, blocking_entries, evidence_of, fingerprint
from gpulease.domain.customers import ComplianceStatus
from gpulease.domain.leases import LeaseState
from gpulease.services import limits
from gpulease.services.context import Actor
from gpulease.services.errors import Conflict, InvalidRequest, NotFound
from gpulease.services.holds import close_leases, hold_leases, release_holds
from gpulease.services.lease_queue import enqueue
from gpulease.services.permissions import Permission, require
from gpulease.services.transitions import transition
from gpulease.services.work import Work
from gpulease.store.models import Alert, Customer, Lease, ReviewDecision, ReviewItem, Screening

AWAITING = "awaiting_second_approval"
OPEN = ("open", AWAITING)
STATUSES = ("open", AWAITING, "approved", "denied", "all")
SCREENING_KINDS = ("screening", "rescreen", "licence_expired")


@dataclass(frozen=True)
class LicenceInput:
    authority: str | None = None
    number: str | None = None
    expires_on: date | None = None
    scope: str | None = None


def list_reviews(work: Work, *, actor: Actor, status: str = "open", customer_id: int | None = None) -> list[ReviewItem]:
    """`open` lists items awaiting a second approval too."""
    require(actor, Permission.VIEW_REVIEWS)
    if status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}")
    q = select(ReviewItem).order_by(ReviewItem.id)
    if status == "open":
        q = q.where(ReviewItem.status.in_(OPEN))
    elif status != "all":
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


def evidence(item: ReviewItem) -> dict[str, Any]:
    """What a decision on this item is about: the screening's hits, red flags and ownership findings."""
    sc = item.details.get("screening") if item.kind in SCREENING_KINDS else None
    if isinstance(sc, dict):
        return evidence_of(sc)
    return {"kind": item.kind, "details": item.details}


def needs_licence(item: ReviewItem, cleared: Collection[str] = ()) -> list[str]:
    """The blocking-list entries an approval of this item would clear (empty: no licence needed); `cleared`:
    parties already cleared under a running licence (`cleared_parties`)."""
    return blocking_entries(evidence(item), cleared) if item.kind in SCREENING_KINDS else []


def decisions_of(work: Work, item: ReviewItem) -> list[ReviewDecision]:
    return list(
        work.session.scalars(
            select(ReviewDecision).where(ReviewDecision.review_id == item.id).order_by(ReviewDecision.id)
        )
    )


def _licence(work: Work, given: LicenceInput | None) -> Licence:
    if given is None or not (given.authority and given.number and given.expires_on):
        raise InvalidRequest(
            "clearing a hit on a blocking list (SDN, Entity List, Denied Persons, UN) needs a licence or exception: "
            "give licence.authority, licence.number and licence.expires_on"
        )
    if given.expires_on <= work.now.date():
        raise InvalidRequest("the licence has expired: licence.expires_on must be after today")
    authority = limits.required_text(given.authority, what="licence.authority", max_len=100)
    number = limits.required_text(given.number, what="licence.number", max_len=100)
    scope = limits.text(given.scope, what="licence.scope", max_len=500) or "as issued"
    return Licence(authority, number, given.expires_on, scope)


def decide_review(
    work: Work,
    *,
    actor: Actor,
    review_id: int,
    decision: str,
    comment: str,
    licence: LicenceInput | None = None,
) -> ReviewItem:
    """Approve (customer cleared, held leases released) or deny (customer denied, its leases closed).

    An approval that clears a blocking-list hit needs a licence and a second compliance officer: the first
    leaves the item `awaiting_second_approval`; the same officer approving twice is a Conflict.
    """
    require(actor, Permission.DECIDE_REVIEWS)
    session, now = work.session, work.now
    item = get_review(work, actor=actor, review_id=review_id)
    if item.status not in OPEN:
        raise Conflict(f"review item {review_id} was already decided: {item.status}")
    if decision not in ("approve", "deny"):
        raise InvalidRequest("decision must be approve or deny")
    if not comment.strip():
        raise InvalidRequest("a comment is required: it is the record of why")
    comment = limits.required_text(comment, what="the comment", max_len=limits.COMMENT_MAX, pattern=limits.TEXT)
    c = session.get(Customer, item.customer_id)
    assert c is not None
    seen = evidence(item)
    print_ = fingerprint(seen)
    blocking = needs_licence(item, cleared_parties(work))
    earlier = [d for d in decisions_of(work, item) if d.decision == "approve"]
    lic: Licence | None = None
    final = True
    if decision == "approve" and blocking:
        if any(d.actor == actor.name for d in earlier):
            raise Conflict(
                f"review item {review_id} already has your approval: the second approval must come from a "
                "different compliance officer"
            )
        if earlier:
            first = earlier[0]
            lic = _licence(work, licence) if licence is not None and licence.number else None
            if lic is None and first.licence:
                lic = Licence(
                    first.licence["authority"],
                    first.licence["number"],
                    date.fromisoformat(first.licence["expires_on"]),
                    first.licence.get("scope", "as issued"),
                )
        else:
            lic = _licence(work, licence)
            final = False
    elif licence is not None and licence.number:
        lic = _licence(work, licence)
    row = ReviewDecision(
        review_id=item.id,
        customer_id=c.id,
        at=now,
        actor=actor.name,
        decision=decision,
        comment=comment,
        licence=None if lic is None else lic.to_dict(),
        licence_expires_on=None if lic is None else lic.expires_on,
        evidence=seen,
        fingerprint=print_,
        cleared_entries=blocking if decision == "approve" and final else [],
        final=final,
        expired=False,
    )
    session.add(row)
    if not final:
        item.status = AWAITING
        _audit(work, actor, item, c, row, stage="first approval")
        return item
    item.status = "approved" if decision == "approve" else "denied"
    item.decided_by, item.decided_at, item.comment = actor.name, now, comment
    if len(earlier) == 1 and decision == "approve":
        item.decided_by = f"{earlier[0].actor} + {actor.name}"
    if item.kind == "booking":
        _settle_booking(work, actor, item, c, approve=decision == "approve")
    if item.kind in SCREENING_KINDS:
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
                ReviewItem.status.in_(OPEN),
                ReviewItem.id != item.id,
                ReviewItem.kind.in_(SCREENING_KINDS),
            )
        ):
            other.status, other.decided_by, other.decided_at = item.status, actor.name, now
            other.comment = f"settled by review {item.id}"
    _audit(work, actor, item, c, row, stage="final")
    return item


def _settle_booking(work: Work, actor: Actor, item: ReviewItem, c: Customer, *, approve: bool) -> None:
    """A booking held for review: approved, it joins the waiting queue (it starts when capacity allows);
    denied, it is rejected."""
    lease = work.session.get(Lease, int(item.details.get("lease_id", 0)))
    if lease is None or lease.state != LeaseState.PENDING_COMPLIANCE.value:
        return  # cancelled meanwhile
    if approve and c.compliance_status == ComplianceStatus.CLEARED.value:
        enqueue(work, lease, max_wait_s=None, actor=actor.name)
    else:
        transition(work, lease, LeaseState.REJECTED, actor="compliance", reason="This booking was not accepted.")


def _audit(work: Work, actor: Actor, item: ReviewItem, c: Customer, row: ReviewDecision, *, stage: str) -> None:
    audit.append(
        work.session,
        at=work.now,
        actor=actor.name,
        action="review.decided" if stage == "final" else "review.first_approval",
        subject=f"review:{item.id}",
        data={
            "customer_id": c.id,
            "decision": item.status,
            "comment": row.comment,
            "kind": item.kind,
            "customer_status": c.compliance_status,
            "licence": row.licence,
            "evidence_fingerprint": row.fingerprint,
            "cleared_entries": row.cleared_entries,
        },
    )


# ------------------------------------------------------------------------------------ standing decisions


def standing_approval(work: Work, customer_id: int) -> ReviewDecision | None:
    """The customer's latest final approval of a screening, if its licence (if any) still runs."""
    row = work.session.scalars(
        select(ReviewDecision)
        .where(
            ReviewDecision.customer_id == customer_id,
            ReviewDecision.final.is_(True),
        )
        .order_by(ReviewDecision.id.desc())
        .limit(1)
    ).first()
    if row is None or row.decision != "approve" or row.expired:
        return None
    if row.licence_expires_on is not None and row.licence_expires_on <= work.now.date():
        return None
    return row


def cleared_parties(work: Work) -> dict[str, str]:
    """Blocking-list entries cleared under a licence that still runs: entry id -> the decision and licence."""
    out: dict[str, str] = {}
    today = work.now.date()
    for d in work.session.scalars(
        select(ReviewDecision).where(
            ReviewDecision.final.is_(True),
            ReviewDecision.decision == "approve",
            ReviewDecision.expired.is_(False),
            ReviewDecision.licence_expires_on > today,
        )
    ):
        assert d.licence is not None
        lic = d.licence
        why = f"review {d.review_id}, licence {lic['authority']} {lic['number']} to {lic['expires_on']}"
        for entry in d.cleared_entries:
            out[str(entry)] = why
    return out


def expire_licences(work: Work) -> list[int]:
    """The clock: a clearance whose licence expired re-opens review (customer held). Returns the customers."""
    session, now = work.session, work.now
    reopened: list[int] = []
    for d in session.scalars(
        select(ReviewDecision).where(
            ReviewDecision.final.is_(True),
            ReviewDecision.expired.is_(False),
            ReviewDecision.licence_expires_on <= now.date(),
        )
    ):
        d.expired = True
        c = session.get(Customer, d.customer_id)
        assert c is not None
        if c.compliance_status != ComplianceStatus.CLEARED.value or d.decision != "approve":
            continue
        c.compliance_status = ComplianceStatus.REVIEW.value
        held = hold_leases(work, c, detail=f"licence of review {d.review_id} expired")
        latest = session.scalars(
            select(Screening).where(Screening.customer_id == c.id).order_by(Screening.id.desc()).limit(1)
        ).first()
        session.add(
            ReviewItem(
                kind="licence_expired",
                customer_id=c.id,
                status="open",
                created_at=now,
                summary=f"{c.legal_name}: the licence of review {d.review_id} expired",
                details={"screening": {} if latest is None else latest.result, "licence": d.licence},
            )
        )
        session.add(
            Alert(
                at=now,
                kind="licence_expired",
                data={"customer_id": c.id, "review_id": d.review_id, "leases_held": held},
                message=f"{c.legal_name} (customer {c.id}): licence {d.licence and d.licence.get('number')} expired; "
                f"{held} lease(s) held pending review",
            )
        )
        audit.append(
            session,
            at=now,
            actor="compliance",
            action="licence.expired",
            subject=f"customer:{c.id}",
            data={"review_id": d.review_id, "licence": d.licence, "leases_held": held},
        )
        reopened.append(c.id)
    return reopened
