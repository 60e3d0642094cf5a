"""Customer use cases: onboarding with KYC and screening, reading customers and their latest screening."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from gpulease import audit
from gpulease.domain.customers import ComplianceStatus, ShownStatus, shown_status
from gpulease.services import limits
from gpulease.services.context import SYSTEM, Actor, Role
from gpulease.services.customer_screening import queue_review, rescreen_customer, screen_and_record
from gpulease.services.errors import InvalidRequest, NotFound
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
        officers=[f.to_dict() for f in k.officers],
        end_use=k.end_use,
        requested_gpus=k.requested_gpus,
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


@dataclass(frozen=True)
class Contact:
    """Someone to reach at the customer (billing, technical, …). Contacts are not screened."""

    name: str
    email: str
    phone: str | None = None
    role: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "email": self.email, "phone": self.phone, "role": self.role}


@dataclass(frozen=True)
class ProfileChange:
    """What a customer (or staff) changes in its profile; None leaves a field as it is, "" clears it."""

    legal_name: str | None = None
    local_name: str | None = None
    country: str | None = None
    address: str | None = None
    email_domain: str | None = None
    website: str | None = None
    parent: str | None = None
    end_use: str | None = None
    owners: tuple[Owner, ...] | None = None
    contacts: tuple[Contact, ...] | None = None
    requested_gpus: int | None = None


# What screening reads: a change to any of these screens the customer again.
SCREENED = (
    "legal_name",
    "local_name",
    "country",
    "address",
    "email_domain",
    "website",
    "parent",
    "end_use",
    "owners",
    "requested_gpus",
)
EMAIL = re.compile(limits.EMAIL)
MAX_CONTACTS = limits.CONTACTS_MAX


def _contacts(contacts: tuple[Contact, ...]) -> list[dict[str, str | None]]:
    if len(contacts) > MAX_CONTACTS:
        raise InvalidRequest(f"at most {MAX_CONTACTS} contacts")
    out = []
    for c in contacts:
        name = limits.text(c.name, what="a contact's name", max_len=limits.CONTACT_NAME_MAX)
        if name is None:
            raise InvalidRequest(f"a contact needs a name (at most {limits.CONTACT_NAME_MAX} characters)")
        email = c.email.strip()
        if not EMAIL.match(email) or len(email) > limits.EMAIL_MAX:
            raise InvalidRequest(f"{email!r} is not an email address")
        phone = limits.text(c.phone, what="a contact's phone", max_len=limits.PHONE_MAX)
        role = limits.text(c.role, what="a contact's role", max_len=limits.CONTACT_ROLE_MAX)
        out.append(Contact(name, email, phone, role).to_dict())
    return out


def update_customer(work: Work, *, actor: Actor, customer_id: int, change: ProfileChange) -> Customer:
    """Change contacts, address or declarations. A change to anything screening reads (names, address, country,
    owners, …) screens the customer again at once, the way a list load does: worse news puts it in review and
    its leases on hold."""
    require(actor, Permission.UPDATE_PROFILE)
    c = get_customer(work, actor=actor, customer_id=customer_id)
    current = KycInput(
        legal_name=c.legal_name,
        country=c.country,
        local_name=c.local_name,
        address=c.address,
        incorporated_on=c.incorporated_on,
        email_domain=c.email_domain,
        website=c.website,
        parent=c.parent,
        owners=tuple(
            Owner(
                o["name"],
                float(o["percent"]),
                date.fromisoformat(o["date_of_birth"]) if o.get("date_of_birth") else None,
                o.get("nationality"),
            )
            for o in c.owners
        ),
        end_use=c.end_use,
        requested_gpus=c.requested_gpus or 0,
    )
    given = {f.name: getattr(change, f.name) for f in fields(change) if f.name != "contacts"}
    k = validated(replace(current, **{n: v for n, v in given.items() if v is not None}), work.now.date())
    changed = [n for n in SCREENED if getattr(k, n) != getattr(current, n)]
    for name in changed:
        value = getattr(k, name)
        setattr(c, name, [o.to_dict() for o in value] if name == "owners" else value)
    contacts_changed = change.contacts is not None and _contacts(change.contacts) != list(c.contacts)
    if change.contacts is not None:
        c.contacts = _contacts(change.contacts)
    if not changed and not contacts_changed:
        return c
    audit.append(
        work.session,
        at=work.now,
        actor=actor.name,
        action="customer.updated",
        subject=f"customer:{c.id}",
        data={"fields": changed + (["contacts"] if contacts_changed else []), "rescreened": bool(changed)},
    )
    if changed:
        version = in_force(work.session)
        rescreen_customer(work, c, trigger="profile change", list_version_id=None if version is None else version.id)
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
    compliance_status: ShownStatus  # on_hold, never review or denied
    at: datetime


def latest_screening(work: Work, *, actor: Actor, customer_id: int) -> ScreeningRecord | ScreeningStatus:
    c = get_customer(work, actor=actor, customer_id=customer_id)
    s = work.session.scalar(select(Screening).where(Screening.customer_id == customer_id).order_by(Screening.id.desc()))
    if s is None:
        raise NotFound("this customer has not been screened yet")
    status = ComplianceStatus(c.compliance_status)
    if actor.role is Role.CUSTOMER:
        return ScreeningStatus(customer_id, shown_status(status, to_customer=True), s.at)
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
