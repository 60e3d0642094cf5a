"""Customers: onboarding with KYC and screening, re-screening, the review queue, and what follows from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpulease import audit
from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.redflags import KycProfile, RedFlagRules
from gpulease.compliance.screening import CustomerScreening, screen_customer
from gpulease.domain.leases import LeaseState
from gpulease.services.context import SYSTEM, Actor, Role
from gpulease.services.errors import Conflict, InvalidRequest, NotFound
from gpulease.settings import get_settings
from gpulease.store.models import Alert, Customer, Lease, ReviewItem, Screening

if TYPE_CHECKING:
    from gpulease.services.screening import LoadResult, ScreeningRegistry

RANK = {"cleared": 0, "review": 1, "denied": 2}


def profile_of(c: Customer, requested_gpus: int = 0) -> KycProfile:
    return KycProfile(
        legal_name=c.legal_name,
        local_name=c.local_name,
        country=c.country,
        address=c.address,
        incorporated_on=c.incorporated_on,
        email_domain=c.email_domain,
        website=c.website,
        parent=c.parent,
        owners=tuple((o["name"], float(o["percent"])) for o in c.owners),
        end_use=c.end_use,
        requested_gpus=requested_gpus,
    )


def declarations(session: Session) -> dict[int, tuple[str, KycProfile]]:
    """Every customer's declared name and ownership, so ownership chains can run through them."""
    return {c.id: (c.legal_name, profile_of(c)) for c in session.scalars(select(Customer))}


def others(declared: dict[int, tuple[str, KycProfile]], exclude: int) -> dict[str, KycProfile]:
    return {name: profile for cid, (name, profile) in declared.items() if cid != exclude}


def red_flag_rules() -> RedFlagRules:
    """The red-flag rules with the knobs an operator set (GPULEASE_REDFLAG_*)."""
    st = get_settings()
    defaults = RedFlagRules()
    return replace(
        defaults,
        recent_incorporation_days=st.redflag_recent_incorporation_days,
        large_request_gpus=st.redflag_large_request_gpus,
        countries_of_concern=frozenset(st.redflag_countries_of_concern or defaults.countries_of_concern),
        enabled=defaults.enabled - set(st.redflag_disabled),
    )


def _version_id(session: Session) -> int | None:
    from gpulease.services.screening import in_force

    v = in_force(session)
    return None if v is None else v.id


def _screen(
    session: Session,
    index: ScreeningIndex,
    c: Customer,
    now: datetime,
    trigger: str,
    requested_gpus: int = 0,
    declared: dict[int, tuple[str, KycProfile]] | None = None,
) -> CustomerScreening:
    """Screen one customer; `declared` (from `declarations`) saves re-reading everyone per customer."""
    known = others(declared if declared is not None else declarations(session), c.id)
    result = screen_customer(profile_of(c, requested_gpus), index, known, red_flag_rules(), today=now.date())
    session.add(
        Screening(
            customer_id=c.id,
            at=now,
            list_version_id=_version_id(session),
            status=result.status,
            trigger=trigger,
            result=result.to_dict(),
        )
    )
    audit.append(
        session,
        at=now,
        actor="screening",
        action="customer.screened",
        subject=f"customer:{c.id}",
        data={
            "status": result.status,
            "trigger": trigger,
            "reasons": list(result.reasons),
            "list_version": result.list_version,
        },
    )
    return result


def create_customer(
    session: Session, actor: Actor, index: ScreeningIndex, data: dict[str, Any], now: datetime
) -> Customer:
    """Register a customer and screen it at once; anything short of cleared goes to the review queue."""
    actor.require(Role.OPERATOR, Role.COMPLIANCE)
    country = str(data["country"]).upper()
    if len(country) != 2 or not country.isalpha():
        raise InvalidRequest("country must be an ISO 3166-1 alpha-2 code such as US or CN")
    owners = [{"name": o["name"].strip(), "percent": float(o["percent"])} for o in data.get("owners") or []]
    if sum(o["percent"] for o in owners) > 100.0001:
        raise InvalidRequest("the owners' percentages add up to more than 100")
    incorporated = data.get("incorporated_on")
    if isinstance(incorporated, date) and incorporated > now.date():
        raise InvalidRequest("incorporated_on is in the future")
    c = Customer(
        legal_name=data["legal_name"].strip(),
        local_name=data.get("local_name"),
        country=country,
        address=data.get("address"),
        incorporated_on=incorporated,
        email_domain=data.get("email_domain"),
        website=data.get("website"),
        parent=data.get("parent"),
        owners=owners,
        end_use=data.get("end_use"),
        compliance_status="review",
        cumulative_flop=0.0,
        created_at=now,
    )
    session.add(c)
    session.flush()
    audit.append(
        session,
        at=now,
        actor=actor.name,
        action="customer.created",
        subject=f"customer:{c.id}",
        data={"legal_name": c.legal_name, "country": country},
    )
    result = _screen(session, index, c, now, trigger="onboarding", requested_gpus=int(data.get("requested_gpus") or 0))
    c.compliance_status = result.status
    if result.status != "cleared":
        _queue_review(session, c, result, now, kind="screening")
    return c


def _queue_review(session: Session, c: Customer, result: CustomerScreening, now: datetime, kind: str) -> None:
    session.add(
        ReviewItem(
            kind=kind,
            customer_id=c.id,
            status="open",
            created_at=now,
            summary=f"{c.legal_name}: screening says {result.status}",
            details={"screening": result.to_dict()},
        )
    )


def get_customer(session: Session, actor: Actor, customer_id: int) -> Customer:
    actor.check_customer(customer_id)
    c = session.get(Customer, customer_id)
    if c is None:
        raise NotFound("no such customer")
    return c


def list_customers(session: Session, actor: Actor) -> list[Customer]:
    q = select(Customer).order_by(Customer.id)
    if actor.role is Role.CUSTOMER:
        q = q.where(Customer.id == actor.customer_id)
    return list(session.scalars(q))


def latest_screening(session: Session, actor: Actor, customer_id: int) -> Screening:
    get_customer(session, actor, customer_id)
    s = session.scalar(select(Screening).where(Screening.customer_id == customer_id).order_by(Screening.id.desc()))
    if s is None:
        raise NotFound("this customer has not been screened yet")
    return s


def _hold_leases(session: Session, c: Customer, now: datetime, reason: str) -> int:
    """Suspend active and future leases: no new work starts; nothing is deleted."""
    from gpulease.services.leases import transition

    held = 0
    for lease in session.scalars(
        select(Lease).where(
            Lease.customer_id == c.id,
            Lease.state.in_([LeaseState.ACTIVE.value, LeaseState.SCHEDULED.value, LeaseState.QUEUED.value]),
        )
    ):
        transition(session, lease, LeaseState.SUSPENDED, now, "compliance", reason=reason)
        held += 1
    return held


def _release_holds(session: Session, c: Customer, now: datetime, actor: str) -> None:
    from gpulease.services.leases import transition

    for lease in session.scalars(
        select(Lease).where(Lease.customer_id == c.id, Lease.state == LeaseState.SUSPENDED.value)
    ):
        target = LeaseState.ACTIVE if lease.activated_at is not None else LeaseState.SCHEDULED
        if lease.ends_at is not None and lease.ends_at <= now:
            continue  # the clock will close it
        if target is LeaseState.SCHEDULED and not lease.allocations:
            target = LeaseState.QUEUED  # held while waiting for capacity: back in the queue (the clock expires it)
        transition(session, lease, target, now, actor, reason="compliance hold released")


def rescreen_all(
    session: Session,
    index: ScreeningIndex,
    now: datetime,
    *,
    trigger: str,
    result: LoadResult | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> None:
    """Screen everyone again; a customer newly hit goes to review and its leases are held."""
    everyone = list(session.scalars(select(Customer).order_by(Customer.id)))
    declared = declarations(session)  # read once: re-screening n customers stays O(n) queries, not O(n²)
    for i, c in enumerate(everyone, 1):
        screening = _screen(session, index, c, now, trigger=trigger, declared=declared)
        if result is not None:
            result.rescreened += 1
        if RANK[screening.status] > RANK[c.compliance_status] or (
            screening.status != "cleared" and c.compliance_status == "cleared"
        ):
            before = c.compliance_status
            c.compliance_status = "review" if before == "cleared" else c.compliance_status
            if screening.status == "denied" and before != "cleared":
                c.compliance_status = "denied"
            held = _hold_leases(session, c, now, reason=f"re-screening after {trigger}: {screening.status}")
            _queue_review(session, c, screening, now, kind="rescreen")
            session.add(
                Alert(
                    at=now,
                    kind="customer_newly_hit",
                    data={"customer_id": c.id, "leases_held": held},
                    message=f"{c.legal_name} (customer {c.id}) is newly hit after {trigger}; "
                    f"{held} lease(s) suspended pending review",
                )
            )
            audit.append(
                session,
                at=now,
                actor="screening",
                action="customer.newly_hit",
                subject=f"customer:{c.id}",
                data={"from": before, "screening": screening.status, "leases_held": held},
            )
            if result is not None:
                result.newly_hit.append(c.id)
                result.suspended_leases += held
        if progress is not None:
            progress(i, len(everyone))


def list_reviews(session: Session, actor: Actor, status: str | None = "open") -> list[ReviewItem]:
    actor.require(Role.COMPLIANCE, Role.OPERATOR)
    q = select(ReviewItem).order_by(ReviewItem.id)
    if status and status != "all":
        q = q.where(ReviewItem.status == status)
    return list(session.scalars(q))


def decide_review(
    session: Session, actor: Actor, review_id: int, decision: str, comment: str, now: datetime
) -> ReviewItem:
    """A compliance officer approves (customer cleared, holds released) or denies (customer denied)."""
    actor.require(Role.COMPLIANCE)
    item = session.get(ReviewItem, review_id)
    if item is None:
        raise NotFound(f"no review item {review_id}")
    if item.status != "open":
        raise Conflict(f"review item {review_id} was already decided: {item.status}")
    if decision not in ("approve", "deny"):
        raise InvalidRequest("decision must be approve or deny")
    if not comment.strip():
        raise InvalidRequest("a comment is required: it is the record of why")
    c = session.get(Customer, item.customer_id)
    assert c is not None
    item.status = "approved" if decision == "approve" else "denied"
    item.decided_by, item.decided_at, item.comment = actor.name, now, comment
    if item.kind in ("screening", "rescreen"):
        if decision == "approve":
            c.compliance_status = "cleared"
            _release_holds(session, c, now, actor.name)
        else:
            c.compliance_status = "denied"
            _hold_leases(session, c, now, reason="denied by compliance review")
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


def list_alerts(session: Session, actor: Actor, unacknowledged_only: bool = False) -> list[Alert]:
    actor.require(Role.OPERATOR, Role.COMPLIANCE)
    q = select(Alert).order_by(Alert.id.desc()).limit(200)
    if unacknowledged_only:
        q = q.where(Alert.acknowledged.is_(False))
    return list(session.scalars(q))


def acknowledge_alert(session: Session, actor: Actor, alert_id: int, now: datetime) -> Alert:
    actor.require(Role.OPERATOR, Role.COMPLIANCE)
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    alert.acknowledged = True
    audit.append(
        session,
        at=now,
        actor=actor.name,
        action="alert.acknowledged",
        subject=f"alert:{alert.id}",
        data={"kind": alert.kind},
    )
    return alert


DEMO_CUSTOMERS: list[dict[str, Any]] = [
    {
        "legal_name": "Acme Robotics Inc.",
        "country": "US",
        "address": "1 Market St, San Francisco, CA",
        "incorporated_on": date(2015, 3, 1),
        "email_domain": "acme-robotics.example",
        "owners": [{"name": "Acme Holdings LLC", "percent": 100}],
        "end_use": "training vision models for warehouse picking robots",
    },
    {
        "legal_name": "iFlytek Co., Ltd.",
        "local_name": "科大讯飞股份有限公司",
        "country": "CN",
        "address": "666 Wangjiang West Road, Hefei",
        "email_domain": "iflytek.com",
        "end_use": "speech recognition research",
    },
    {
        "legal_name": "Shenzhen Xunfei Cloud Computing Co., Ltd.",
        "country": "CN",
        "parent": "iFlytek Co., Ltd.",
        "incorporated_on": date(2025, 6, 1),
        "end_use": "cloud AI services for enterprise customers",
    },
]


def seed_demo_customers(session: Session, registry: ScreeningRegistry, now: datetime) -> int:
    """Three demo customers: one cleared, a listed one, and an unlisted subsidiary of the listed one."""
    index = registry.index(session)
    ids = [create_customer(session, SYSTEM, index, dict(d), now).id for d in DEMO_CUSTOMERS]
    return ids[0]


def first_cleared_customer(session: Session) -> int | None:
    return session.scalar(select(Customer.id).where(Customer.compliance_status == "cleared").order_by(Customer.id))


def audit_refusal(session: Session, actor: Actor, customer_id: int | None, reason: str, now: datetime) -> None:
    audit.append(
        session,
        at=now,
        actor=actor.name,
        action="lease.refused",
        subject=f"customer:{customer_id}",
        data={"reason": reason},
    )
