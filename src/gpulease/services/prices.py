"""Price-book use cases. A change opens a new row and closes the old one; leases keep their quote."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from gpulease import audit
from gpulease.domain.cpu import UnknownCpuModel, cpu_model
from gpulease.domain.inventory import UnknownGpuModel, gpu_model
from gpulease.domain.leases import Plan
from gpulease.domain.pricing import PriceBook, PriceEntry, PriceUnit, Resource, canonical
from gpulease.services import limits
from gpulease.services.context import Actor
from gpulease.services.errors import InvalidRequest
from gpulease.services.permissions import Permission, require
from gpulease.services.work import Work
from gpulease.store.models import PriceRow
from gpulease.store.prepared import Prepared


@dataclass(frozen=True)
class PriceListing:
    """A price in force: the price-book entry and since when it applies."""

    entry: PriceEntry
    effective_from: datetime

    @property
    def unit(self) -> PriceUnit:
        return self.entry.unit


def _listing(r: PriceRow) -> PriceListing:
    entry = _entry(
        r.gpu_model,
        r.cpu_model,
        r.plan,
        r.rate,
        r.currency,
        r.cancel_free_hours,
        r.cancel_fee_fraction,
        r.preemption_notice_s,
        r.gib_rate,
    )
    return PriceListing(entry, r.effective_from)


def _entry(
    gpu: str | None,
    cpu: str | None,
    plan: str,
    rate: Decimal,
    currency: str,
    cancel_free_hours: int,
    cancel_fee_fraction: Decimal,
    preemption_notice_s: int,
    gib_rate: Decimal | None,
) -> PriceEntry:
    return PriceEntry(
        gpu_model=gpu or cpu or "",
        plan=Plan(plan),
        rate=canonical(Decimal(rate)),
        currency=currency,
        cancel_free_hours=cancel_free_hours,
        cancel_fee_fraction=canonical(Decimal(cancel_fee_fraction)),
        preemption_notice_s=preemption_notice_s,
        resource=Resource.GPU if gpu is not None else Resource.CPU,
        gib_rate=canonical(Decimal(gib_rate or 0)) if cpu is not None else Decimal("0"),
    )


def _amount(value: str | Decimal, pattern: str, out_of_range: str, what: str) -> Decimal:
    """A decimal written out in digits that fits its column (numeric(18, 6) for rates, (6, 4) for the fee)."""
    raw = value if isinstance(value, str) else f"{value:f}"
    if re.fullmatch(pattern, raw):
        return Decimal(raw)
    try:
        d = Decimal(raw.strip())
    except InvalidOperation:
        raise InvalidRequest('rate and cancel_fee_fraction must be decimal numbers, e.g. "1.25"') from None
    if not d.is_finite() or d < 0 or (what == "cancel_fee_fraction" and d > 1):
        raise InvalidRequest(out_of_range)
    raise InvalidRequest(f"{what} must be {limits.MEANING[pattern]}")


def set_price(
    work: Work,
    *,
    actor: Actor,
    gpu_model_name: str | None,
    plan: str,
    rate: str | Decimal,
    currency: str = "USD",
    cancel_free_hours: int = 24,
    cancel_fee_fraction: str | Decimal = "0.5",
    preemption_notice_s: int = 120,
    cpu_model_name: str | None = None,
    gib_rate: str | Decimal | None = None,
) -> PriceListing:
    """Set the price of a GPU model (per GPU-hour, GPU-month on long_term) or of a CPU model (`cpu_model_name`:
    per core-hour, core-month on long_term, plus `gib_rate` per GiB in the same unit) on a plan."""
    require(actor, Permission.SET_PRICES)
    if (gpu_model_name is None) == (cpu_model_name is None):
        raise InvalidRequest("give either gpu_model or cpu_model")
    if gib_rate is not None and cpu_model_name is None:
        raise InvalidRequest("gib_rate prices a CPU lease's memory: give it with cpu_model")
    try:
        if cpu_model_name is not None:
            model = cpu_model(
                limits.required_text(cpu_model_name, what="cpu_model", max_len=limits.MODEL_NAME_MAX)
            ).name
        else:
            model = gpu_model(
                limits.required_text(gpu_model_name or "", what="gpu_model", max_len=limits.MODEL_NAME_MAX)
            ).name
        plan_v = Plan(plan)
    except (UnknownGpuModel, UnknownCpuModel) as e:
        raise InvalidRequest(str(e)) from None
    except ValueError:
        raise InvalidRequest(f"plan must be one of {', '.join(p.value for p in Plan)}") from None
    cpu = cpu_model_name is not None
    rate_d = _amount(rate, limits.RATE, "rate must be a non-negative decimal amount", "rate")
    gib_d = (
        Decimal("0")
        if gib_rate is None
        else _amount(gib_rate, limits.RATE, "gib_rate must be a non-negative decimal amount", "gib_rate")
    )
    fee = _amount(
        cancel_fee_fraction, limits.FRACTION, "cancel_fee_fraction must be between 0 and 1", "cancel_fee_fraction"
    )
    currency_code = limits.text(currency, what="currency", max_len=9, pattern=limits.CURRENCY, required=True)
    assert currency_code is not None
    currency = currency_code.upper()
    if cancel_free_hours < 0 or preemption_notice_s < 0:
        raise InvalidRequest("cancel_free_hours and preemption_notice_s must not be negative")
    limits.whole(cancel_free_hours, what="cancel_free_hours", low=0, high=limits.CANCEL_FREE_HOURS_MAX)
    limits.whole(preemption_notice_s, what="preemption_notice_s", low=0, high=limits.NOTICE_MAX_S)
    session, now = work.session, work.now
    column = PriceRow.cpu_model if cpu else PriceRow.gpu_model
    for old in session.scalars(
        select(PriceRow).where(column == model, PriceRow.plan == plan_v, PriceRow.superseded_at.is_(None))
    ):
        old.superseded_at = now
    row = PriceRow(
        gpu_model=None if cpu else model,
        cpu_model=model if cpu else None,
        gib_rate=gib_d,
        plan=plan_v.value,
        rate=rate_d,
        currency=currency,
        cancel_free_hours=cancel_free_hours,
        cancel_fee_fraction=fee,
        preemption_notice_s=preemption_notice_s,
        effective_from=now,
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        at=now,
        actor=actor.name,
        action="price.set",
        subject=f"price:{model}:{plan_v}",
        data={"rate": str(rate_d), "currency": row.currency, **({"gib_rate": str(gib_d)} if cpu else {})},
    )
    return _listing(row)


_CURRENT = (
    select(PriceRow)
    .where(PriceRow.superseded_at.is_(None))
    .order_by(PriceRow.cpu_model.is_not(None), PriceRow.gpu_model, PriceRow.cpu_model, PriceRow.plan)
)  # built once: every booking prices itself with it


def _rows(session: Session) -> list[PriceRow]:
    return list(session.scalars(_CURRENT))


def current_prices(work: Work) -> list[PriceListing]:
    """The price book in force, for everyone (prices are public to anyone who may book)."""
    return [_listing(r) for r in _rows(work.session)]


# Built once, the columns a booking's price needs as plain values (store/prepared.py), not the mapped row: a booking
# reads its own price, not the whole book.
_ONE = Prepared(
    select(
        PriceRow.gpu_model,
        PriceRow.cpu_model,
        PriceRow.plan,
        PriceRow.rate,
        PriceRow.currency,
        PriceRow.cancel_free_hours,
        PriceRow.cancel_fee_fraction,
        PriceRow.preemption_notice_s,
        PriceRow.gib_rate,
    )
    .where(
        or_(PriceRow.gpu_model == bindparam("gpu"), PriceRow.cpu_model == bindparam("cpu")),
        PriceRow.plan == bindparam("plan"),
        PriceRow.superseded_at.is_(None),
    )
    .limit(1),
    autoflush=True,
)


def price_entry(session: Session, model: str, plan: Plan) -> PriceEntry:
    """The price in force of one GPU or CPU model on one plan; PricingError as the book says it when none."""
    rows = _ONE.rows(session, {"gpu": model, "cpu": model, "plan": plan.value})
    if not rows:
        return price_book(session).entry(model, plan)  # raises, with the book's own message
    return _entry(*rows[0])


def price_book(session: Session) -> PriceBook:
    book = PriceBook()
    for r in _rows(session):
        book.set(_listing(r).entry)
    return book
