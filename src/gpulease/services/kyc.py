"""What a customer declares when it is onboarded (KYC), validated once for every door.

The API, the dashboard and the CLI each parse their own input into a `KycInput`; `validated` applies the
business rules (a legal name, an ISO country code, owner shares between 0 and 100% adding up to at most 100%,
…) so every door refuses the same input with the same sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpulease.compliance.redflags import KycProfile
from gpulease.services.errors import InvalidRequest
from gpulease.store.models import Customer

NAME_MAX = 300  # the store's column widths
DOMAIN_MAX = 200


@dataclass(frozen=True)
class Owner:
    name: str
    percent: float  # share held, 0..100

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "percent": self.percent}


@dataclass(frozen=True)
class KycInput:
    legal_name: str
    country: str  # ISO 3166-1 alpha-2
    local_name: str | None = None
    address: str | None = None
    incorporated_on: date | None = None
    email_domain: str | None = None
    website: str | None = None
    parent: str | None = None
    owners: tuple[Owner, ...] = ()
    end_use: str | None = None
    requested_gpus: int = 0  # capacity the customer expects to use (a red-flag input)


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def validated(kyc: KycInput, today: date) -> KycInput:
    """The input with names trimmed and the country upper-cased, or InvalidRequest saying what is wrong."""
    legal_name = (kyc.legal_name or "").strip()
    if not legal_name:
        raise InvalidRequest("the legal name is required")
    country = (kyc.country or "").strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise InvalidRequest("country must be an ISO 3166-1 alpha-2 code such as US or CN")
    names = {"legal name": legal_name, "local name": kyc.local_name, "parent": kyc.parent, "website": kyc.website}
    for what, value in names.items():
        if value is not None and len(value.strip()) > NAME_MAX:
            raise InvalidRequest(f"the {what} is longer than {NAME_MAX} characters")
    if kyc.email_domain is not None and len(kyc.email_domain.strip()) > DOMAIN_MAX:
        raise InvalidRequest(f"the email domain is longer than {DOMAIN_MAX} characters")
    if kyc.incorporated_on is not None and kyc.incorporated_on > today:
        raise InvalidRequest("incorporated_on is in the future")
    if kyc.requested_gpus < 0:
        raise InvalidRequest("requested_gpus must not be negative")
    owners = []
    for o in kyc.owners:
        name = o.name.strip()
        if not name:
            raise InvalidRequest(f"an owner with {o.percent:g}% has no name")
        if len(name) > NAME_MAX:
            raise InvalidRequest(f"an owner's name is longer than {NAME_MAX} characters")
        if not 0 <= o.percent <= 100:
            raise InvalidRequest(f"{name}'s share must be between 0 and 100%, got {o.percent:g}")
        owners.append(Owner(name, float(o.percent)))
    if sum(o.percent for o in owners) > 100.0001:
        raise InvalidRequest("the owners' percentages add up to more than 100")
    return replace(
        kyc,
        legal_name=legal_name,
        country=country,
        local_name=_text(kyc.local_name),
        address=_text(kyc.address),
        email_domain=_text(kyc.email_domain),
        website=_text(kyc.website),
        parent=_text(kyc.parent),
        end_use=_text(kyc.end_use),
        owners=tuple(owners),
    )


def profile_of(c: Customer, requested_gpus: int = 0) -> KycProfile:
    """A stored customer as the screening engine reads it."""
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


Declarations = dict[int, tuple[str, KycProfile]]


def declarations(session: Session) -> Declarations:
    """Every customer's declared name and ownership, so ownership chains can run through them."""
    return {c.id: (c.legal_name, profile_of(c)) for c in session.scalars(select(Customer))}


def others(declared: Declarations, exclude: int) -> dict[str, KycProfile]:
    return {name: profile for cid, (name, profile) in declared.items() if cid != exclude}
