"""Customer use cases: onboarding with KYC and screening, reading customers and their latest screening."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from gpulease import audit
from gpulease.domain.customers import ComplianceStatus
from gpulease.services import limits
from gpulease.services.context import SYSTEM, Actor, Role
from gpulease.services.customer_screening import queue_review, screen_and_record
from gpulease.services.errors import NotFound
from gpulease.services.kyc import KycInput, Owner, validated
from gpulease.services.permissions import Permission, require
from gpulease.services.screening import in_force
from gpulease.services.work import Work
from gpulease.store.models import Customer, Screening


def create_customer(work: Work, *, actor: Actor, kyc: KycInput) -> Customer:
    """Register a customer and screen it at once; anything short of cleared goes to the review queue."""
    require(actor, Permission.ONBOARD_CUSTOMER)
    k = validated(kyc, work.now.date())
    session, now = work.session, work.now
    c = Customer(
        legal_name=k.legal_name,
        local_name=k.local_name,
        country=k.country,
        address=k.address,
        incorporated_on=k.incorporated_on,
        email_domain=k.email_domain,
        website=k.website,
        parent=k.parent,
        owners=[o.to_dict() for o in k.owners],
        end_use=k.end_use,
        compliance_status=ComplianceStatus.REVIEW.value,
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
        data={"legal_name": c.legal_name, "country": c.country},
    )
    index = work.index()
    version = in_force(session)
    result = screen_and_record(
        work,
        index,
        c,
        trigger="onboarding",
        list_version_id=None if version is None else version.id,
        requested_gpus=k.requested_gpus,
    )
    status = ComplianceStatus(result.status)
    c.compliance_status = status.value
    if status is not ComplianceStatus.CLEARED:
        queue_review(work, c, result, kind="screening")
    return c


def get_customer(work: Work, *, actor: Actor, customer_id: int) -> Customer:
    actor.check_customer(customer_id)
    c = work.session.get(Customer, customer_id) if limits.fits_id(customer_id) else None
    if c is None:
        raise NotFound("no such customer")
    return c


def list_customers(work: Work, *, actor: Actor) -> list[Customer]:
    q = select(Customer).order_by(Customer.id)
    if actor.role is Role.CUSTOMER:
        q = q.where(Customer.id == actor.customer_id)
    return list(work.session.scalars(q))


@dataclass(frozen=True)
class ScreeningRecord:
    """A customer's latest screening. The evidence (name hits, ownership, red flags) is as the screening engine
    reported it; only operators and compliance officers see it."""

    customer_id: int
    compliance_status: ComplianceStatus  # the customer's status now (a review may have changed it since)
    at: datetime
    trigger: str
    status: ComplianceStatus  # what this screening said
    reasons: tuple[str, ...]
    list_version: str | None
    name_hits: Sequence[Mapping[str, Any]]
    ownership: Mapping[str, Any] | None
    red_flags: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class ScreeningStatus:
    """What a customer sees of its own screening: its status and when, never why."""

    customer_id: int
    compliance_status: ComplianceStatus
    at: datetime


def latest_screening(work: Work, *, actor: Actor, customer_id: int) -> ScreeningRecord | ScreeningStatus:
    c = get_customer(work, actor=actor, customer_id=customer_id)
    s = work.session.scalar(select(Screening).where(Screening.customer_id == customer_id).order_by(Screening.id.desc()))
    if s is None:
        raise NotFound("this customer has not been screened yet")
    status = ComplianceStatus(c.compliance_status)
    if actor.role is Role.CUSTOMER:
        return ScreeningStatus(customer_id, status, s.at)
    r = s.result
    return ScreeningRecord(
        customer_id=customer_id,
        compliance_status=status,
        at=s.at,
        trigger=s.trigger,
        status=ComplianceStatus(s.status),
        reasons=tuple(r.get("reasons", ())),
        list_version=r.get("list_version"),
        name_hits=list(r.get("name_hits", ())),
        ownership=r.get("ownership"),
        red_flags=list(r.get("red_flags", ())),
    )


DEMO_CUSTOMERS: tuple[KycInput, ...] = (
    KycInput(
        legal_name="Acme Robotics Inc.",
        country="US",
        address="1 Market St, San Francisco, CA",
        incorporated_on=date(2015, 3, 1),
        email_domain="acme-robotics.example",
        owners=(Owner("Acme Holdings LLC", 100),),
        end_use="training vision models for warehouse picking robots",
    ),
    KycInput(
        legal_name="iFlytek Co., Ltd.",
        local_name="科大讯飞股份有限公司",
        country="CN",
        address="666 Wangjiang West Road, Hefei",
        email_domain="iflytek.com",
        end_use="speech recognition research",
    ),
    KycInput(
        legal_name="Shenzhen Xunfei Cloud Computing Co., Ltd.",
        country="CN",
        parent="iFlytek Co., Ltd.",
        incorporated_on=date(2025, 6, 1),
        end_use="cloud AI services for enterprise customers",
    ),
)


def seed_demo_customers(work: Work) -> int:
    """Three demo customers: one cleared, a listed one, and an unlisted subsidiary of the listed one."""
    ids = [create_customer(work, actor=SYSTEM, kyc=k).id for k in DEMO_CUSTOMERS]
    return ids[0]


def first_cleared_customer(work: Work) -> int | None:
    return work.session.scalar(
        select(Customer.id).where(Customer.compliance_status == ComplianceStatus.CLEARED.value).order_by(Customer.id)
    )
