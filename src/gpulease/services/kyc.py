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
from gpulease.services import limits
from gpulease.services.errors import InvalidRequest
from gpulease.services.limits import DOMAIN_MAX, NAME_MAX
from gpulease.store.models import Customer


@dataclass(frozen=True)
class Owner:
    name: str
    percent: float  # share held, 0..100
    date_of_birth: date | None = None  # an individual: tells the owner from a listed namesake
    nationality: str | None = None  # an individual: ISO 3166-1 alpha-2

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "percent": self.percent}
        if self.date_of_birth is not None:
            out["date_of_birth"] = self.date_of_birth.isoformat()
        if self.nationality:
            out["nationality"] = self.nationality
        return out


@dataclass(frozen=True)
class Officer:
    """A director or officer (an individual), screened like an owner."""

    name: str
    title: str | None = None
    date_of_birth: date | None = None
    nationality: str | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name}
        for k, v in (("title", self.title), ("nationality", self.nationality)):
            if v:
                out[k] = v
        if self.date_of_birth is not None:
            out["date_of_birth"] = self.date_of_birth.isoformat()
        return out


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
    officers: tuple[Officer, ...] = ()


def validated(kyc: KycInput, today: date) -> KycInput:
    """The input with names trimmed and the country upper-cased, or InvalidRequest saying what is wrong."""
    legal_name = limits.required_text(kyc.legal_name, what="the legal name", max_len=NAME_MAX)
    country = limits.text(kyc.country, what="country", max_len=8, pattern=limits.COUNTRY, required=True)
    assert country is not None
    names = {"local name": kyc.local_name, "parent": kyc.parent, "website": kyc.website}
    local_name, parent, website = (limits.text(v, what=f"the {k}", max_len=NAME_MAX) for k, v in names.items())
    email_domain = limits.text(kyc.email_domain, what="the email domain", max_len=DOMAIN_MAX)
    address = limits.text(kyc.address, what="the address", max_len=limits.ADDRESS_MAX, pattern=limits.TEXT)
    end_use = limits.text(kyc.end_use, what="the end use", max_len=limits.END_USE_MAX, pattern=limits.TEXT)
    if kyc.incorporated_on is not None and kyc.incorporated_on > today:
        raise InvalidRequest("incorporated_on is in the future")
    limits.whole(kyc.requested_gpus, what="requested_gpus", low=0, high=limits.REQUESTED_GPUS_MAX)
    if len(kyc.owners) > limits.OWNERS_MAX:
        raise InvalidRequest(f"at most {limits.OWNERS_MAX} owners can be declared")
    owners = []
    for o in kyc.owners:
        if not (o.name or "").strip():
            raise InvalidRequest(f"an owner with {o.percent:g}% has no name")
        name = limits.required_text(o.name, what="an owner's name", max_len=NAME_MAX)
        if not 0 <= o.percent <= 100:  # NaN too
            raise InvalidRequest(f"{name}'s share must be between 0 and 100%, got {o.percent:g}")
        dob, nationality = _identifiers(o.date_of_birth, o.nationality, name, today)
        owners.append(Owner(name, float(o.percent), dob, nationality))
    if sum(o.percent for o in owners) > 100.0001:
        raise InvalidRequest("the owners' percentages add up to more than 100")
    if len(kyc.officers) > limits.OWNERS_MAX:
        raise InvalidRequest(f"at most {limits.OWNERS_MAX} officers can be declared")
    officers = []
    for f in kyc.officers:
        name = limits.required_text(f.name, what="an officer's name", max_len=NAME_MAX)
        title = limits.text(f.title, what="an officer's title", max_len=100)
        dob, nationality = _identifiers(f.date_of_birth, f.nationality, name, today)
        officers.append(Officer(name, title, dob, nationality))
    return replace(
        kyc,
        legal_name=legal_name,
        country=country.upper(),
        local_name=local_name,
        address=address,
        email_domain=email_domain,
        website=website,
        parent=parent,
        end_use=end_use,
        owners=tuple(owners),
        officers=tuple(officers),
    )


def _identifiers(dob: date | None, nationality: str | None, name: str, today: date) -> tuple[date | None, str | None]:
    if dob is not None and dob > today:
        raise InvalidRequest(f"{name}'s date of birth is in the future")
    code = limits.text(nationality, what=f"{name}'s nationality", max_len=8, pattern=limits.COUNTRY)
    return dob, None if code is None else code.upper()


def profile_of(c: Customer) -> KycProfile:
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
        requested_gpus=c.requested_gpus or 0,
        officers=tuple(str(f["name"]) for f in (c.officers or [])),
        identifiers=tuple(
            (str(p["name"]), p.get("date_of_birth"), p.get("nationality"))
            for p in [*c.owners, *(c.officers or [])]
            if p.get("date_of_birth") or p.get("nationality")
        ),
    )


Declarations = dict[int, tuple[str, KycProfile]]


def declarations(session: Session) -> Declarations:
    """Every customer's declared name and ownership, so ownership chains can run through them."""
    return {c.id: (c.legal_name, profile_of(c)) for c in session.scalars(select(Customer))}


def others(declared: Declarations, exclude: int) -> dict[str, KycProfile]:
    return {name: profile for cid, (name, profile) in declared.items() if cid != exclude}
