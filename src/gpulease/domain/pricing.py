"""Price book, quotes, and rating usage into money. Money is Decimal with a currency, never float."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from gpulease.domain.leases import LONG_TERM_MIN_SECONDS, Plan

CENT = Decimal("0.01")
HOUR = 3600


class PriceUnit(enum.StrEnum):
    GPU_HOUR = "gpu_hour"
    GPU_MONTH = "gpu_month"  # a calendar month (UTC); partial months prorated by the day, to the second
    CORE_HOUR = "core_hour"  # CPU leases: per physical core (issue 13)
    CORE_MONTH = "core_month"

    @property
    def hourly(self) -> bool:
        return self in (PriceUnit.GPU_HOUR, PriceUnit.CORE_HOUR)


class Resource(enum.StrEnum):
    """What a price, a quote or a lease sells: GPUs of a model, or cores (and memory) of a CPU model."""

    GPU = "gpu"
    CPU = "cpu"


class PricingError(ValueError):
    """A request the price book cannot quote (no price, bad window for the plan)."""


def canonical(value: Decimal) -> Decimal:
    """Drop the trailing zeros a database column adds (1.250000 -> 1.25), keeping at least cents (1 -> 1.00)."""
    n = value.normalize()
    exponent = n.as_tuple().exponent
    return n.quantize(CENT) if isinstance(exponent, int) and exponent > -2 else n


def money(value: Decimal | str | int) -> Decimal:
    """Round to the cent, half up (how invoices are stated)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class PriceEntry:
    """One row of the price book: the rate for a GPU model (per GPU) or a CPU model (per core) on a plan.

    One book for both: `gpu_model` is the model's name, whichever resource it is (the catalogues' names are
    distinct); `gib_rate` prices a CPU lease's memory in the same unit (0: memory is sold with the cores)."""

    gpu_model: str
    plan: Plan
    rate: Decimal
    currency: str = "USD"
    cancel_free_hours: int = 24  # reserved: free cancellation up to this long before start
    cancel_fee_fraction: Decimal = Decimal("0.5")  # ...then this share of the window's price
    preemption_notice_s: int = 120  # interruptible: warning before the GPUs are taken back
    resource: Resource = Resource.GPU
    gib_rate: Decimal = Decimal("0")

    @property
    def model(self) -> str:
        return self.gpu_model

    @property
    def unit(self) -> PriceUnit:
        if self.resource is Resource.CPU:
            return PriceUnit.CORE_MONTH if self.plan is Plan.LONG_TERM else PriceUnit.CORE_HOUR
        return PriceUnit.GPU_MONTH if self.plan is Plan.LONG_TERM else PriceUnit.GPU_HOUR


@dataclass(frozen=True, slots=True)
class Quote:
    """The price a lease was sold at. Stored on the lease: later price changes never touch it."""

    gpu_model: str
    gpu_count: int
    plan: Plan
    rate: Decimal
    unit: PriceUnit
    currency: str
    start: int  # epoch seconds
    end: int | None  # None: open-ended on-demand/interruptible
    estimated_total: Decimal | None
    cancel_free_hours: int
    cancel_fee_fraction: Decimal
    preemption_notice_s: int
    # CPU leases: `gpu_model` is the CPU model and `gpu_count` the cores (the units the rate is per); the memory
    # held and its rate. A GPU quote has 0 and 0.
    memory_gib: int = 0
    gib_rate: Decimal = Decimal("0")

    @property
    def resource(self) -> Resource:
        return Resource.CPU if self.unit in (PriceUnit.CORE_HOUR, PriceUnit.CORE_MONTH) else Resource.GPU

    @property
    def billed_for_whole_window(self) -> bool:
        return self.plan in (Plan.RESERVED, Plan.LONG_TERM)

    def to_dict(self) -> dict[str, object]:
        if self.resource is Resource.CPU:  # named as what it sells: a reader tells the two apart by the keys
            return {
                "cpu_model": self.gpu_model,
                "cpu_cores": self.gpu_count,
                "memory_gib": self.memory_gib,
                "gib_rate": str(self.gib_rate),
                **self._terms(),
            }
        return {"gpu_model": self.gpu_model, "gpu_count": self.gpu_count, **self._terms()}

    def _terms(self) -> dict[str, object]:
        return {
            "plan": str(self.plan),
            "rate": str(self.rate),
            "unit": str(self.unit),
            "currency": self.currency,
            "start": self.start,
            "end": self.end,
            "estimated_total": None if self.estimated_total is None else str(self.estimated_total),
            "cancel_free_hours": self.cancel_free_hours,
            "cancel_fee_fraction": str(self.cancel_fee_fraction),
            "preemption_notice_s": self.preemption_notice_s,
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Quote:
        est = d.get("estimated_total")
        end = d.get("end")
        cpu = "cpu_model" in d
        return cls(
            gpu_model=str(d["cpu_model" if cpu else "gpu_model"]),
            gpu_count=int(str(d["cpu_cores" if cpu else "gpu_count"])),
            plan=Plan(str(d["plan"])),
            rate=Decimal(str(d["rate"])),
            unit=PriceUnit(str(d["unit"])),
            currency=str(d["currency"]),
            start=int(str(d["start"])),
            end=None if end is None else int(str(end)),
            estimated_total=None if est is None else Decimal(str(est)),
            cancel_free_hours=int(str(d["cancel_free_hours"])),
            cancel_fee_fraction=Decimal(str(d["cancel_fee_fraction"])),
            preemption_notice_s=int(str(d["preemption_notice_s"])),
            memory_gib=int(str(d.get("memory_gib", 0))),
            gib_rate=Decimal(str(d.get("gib_rate", "0"))),
        )


def charge(rate: Decimal, unit: PriceUnit, gpu_count: int, seconds: int) -> Decimal:
    """Exact price of `seconds` of `gpu_count` GPUs at an hourly rate, rounded once to the cent.

    A GPU-month is a calendar month, so its price depends on which month: see `price_span`.
    """
    if not unit.hourly:
        raise ValueError("a GPU-month rate depends on the calendar month: price the span with price_span")
    if seconds < 0 or gpu_count < 0:
        raise ValueError("seconds and gpu_count must be non-negative")
    return money(rate * gpu_count * seconds / HOUR)


def price_span(
    rate: Decimal, unit: PriceUnit, gpu_count: int, start: int, end: int, gib_rate: Decimal = Decimal("0"), gib: int = 0
) -> Decimal:
    """Price of [start, end) as it is billed: cut at UTC month boundaries, each piece rounded to the cent.

    Per GPU-hour, a piece costs rate x GPUs x hours. Per GPU-month, a whole calendar month costs the rate
    (February as much as December) and a partial month its share of that month, prorated by the day to
    the second: rate x GPUs x seconds / (days in that month x 86,400).
    """
    return sum(
        (_slice_amount(rate, unit, gpu_count, s, gib_rate, gib) for s in split_by_month(start, end)), Decimal("0.00")
    )


def _slice_amount(
    rate: Decimal, unit: PriceUnit, gpu_count: int, s: UsageSlice, gib_rate: Decimal = Decimal("0"), gib: int = 0
) -> Decimal:
    """(rate x units + gib_rate x GiB) x the slice's share of the unit's period, rounded once to the cent."""
    if gpu_count < 0 or gib < 0:
        raise ValueError("gpu_count and GiB must be non-negative")
    per = HOUR if unit.hourly else s.month_seconds
    return money((rate * gpu_count + gib_rate * gib) * s.seconds / per)


def check_window(plan: Plan, start: int, end: int | None) -> None:
    """The plan's window rules, the same for every resource sold (GPUs, CPU cores)."""
    if end is not None and end <= start:
        raise PricingError("the lease must end after it starts")
    if plan in (Plan.RESERVED, Plan.LONG_TERM) and end is None:
        raise PricingError(f"a {plan} lease needs an end time")
    if plan is Plan.LONG_TERM and end is not None and end - start < LONG_TERM_MIN_SECONDS:
        raise PricingError("a long_term lease lasts at least 30 days")


def make_quote(entry: PriceEntry, gpu_count: int, start: int, end: int | None, memory_gib: int = 0) -> Quote:
    """Quote a request against a price-book entry; checks the plan's window rules. For a CPU model, `gpu_count`
    is the cores and `memory_gib` the memory held."""
    if entry.resource is Resource.CPU and (gpu_count < 1 or memory_gib < 0):
        raise PricingError("a CPU lease has at least one core and no negative memory")
    plan = entry.plan
    check_window(plan, start, end)
    # The same pieces and roundings the bill will have, so a window used in full costs exactly its quote.
    estimated = (
        None if end is None else price_span(entry.rate, entry.unit, gpu_count, start, end, entry.gib_rate, memory_gib)
    )
    return Quote(
        gpu_model=entry.gpu_model,
        gpu_count=gpu_count,
        plan=plan,
        rate=entry.rate,
        unit=entry.unit,
        currency=entry.currency,
        start=start,
        end=end,
        estimated_total=estimated,
        cancel_free_hours=entry.cancel_free_hours,
        cancel_fee_fraction=entry.cancel_fee_fraction,
        preemption_notice_s=entry.preemption_notice_s,
        memory_gib=memory_gib if entry.resource is Resource.CPU else 0,
        gib_rate=entry.gib_rate,
    )


def quote_entry(q: Quote) -> PriceEntry:
    """The price-book entry a quote was made from (a lease keeps its price when extended)."""
    return PriceEntry(
        gpu_model=q.gpu_model,
        plan=q.plan,
        rate=q.rate,
        currency=q.currency,
        cancel_free_hours=q.cancel_free_hours,
        cancel_fee_fraction=q.cancel_fee_fraction,
        preemption_notice_s=q.preemption_notice_s,
        resource=q.resource,
        gib_rate=q.gib_rate,
    )


def window_price(q: Quote, start: int, end: int) -> Decimal:
    """The price of [start, end) of the quote's units (and memory), as billed."""
    return price_span(q.rate, q.unit, q.gpu_count, start, end, q.gib_rate, q.memory_gib)


def cut_short(quote: Quote, end: int) -> Quote:
    """The quote of a window cut short at `end` by something that is not the customer's doing (its node failed):
    a plan sold by the window is owed up to `end` only, and a window cut at or before its start owes nothing, not
    even a late-cancellation fee."""
    end = max(end, quote.start)
    if quote.end is not None and end >= quote.end:
        return quote
    return replace(quote, end=end, estimated_total=window_price(quote, quote.start, end))


class CancellationTerms(Protocol):
    """What the late-cancellation rule reads of a quote, whatever it sells (GPUs, CPU cores)."""

    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int | None: ...
    @property
    def cancel_free_hours(self) -> int: ...
    @property
    def cancel_fee_fraction(self) -> Decimal: ...
    @property
    def billed_for_whole_window(self) -> bool: ...


def cancellation_fee_applies(quote: CancellationTerms) -> bool:
    """Whether cancelling late costs anything: only a window billed whole (reserved, long-term) with an end and a
    fee; pay-as-you-go leases (on-demand, interruptible) cancel for free at any time."""
    return quote.billed_for_whole_window and quote.end is not None and quote.cancel_fee_fraction > 0


def late_cancellation_fee(quote: CancellationTerms, now: int, whole_window_price: Callable[[], Decimal]) -> Decimal:
    """The fee for cancelling at `now`: zero inside the free period or for pay-as-you-go plans, else the quote's
    fraction of what the whole window costs (priced only when a fee is owed)."""
    if not cancellation_fee_applies(quote) or now <= quote.start - quote.cancel_free_hours * HOUR:
        return Decimal("0.00")
    return money(whole_window_price() * quote.cancel_fee_fraction)


def cancellation_fee(quote: Quote, now: int) -> Decimal:
    """Fee for cancelling before the lease starts: zero inside the free period or for pay-as-you-go plans."""
    end = quote.end
    if end is None:
        return Decimal("0.00")
    return late_cancellation_fee(quote, now, lambda: window_price(quote, quote.start, end))


@dataclass(frozen=True, slots=True)
class UsageSlice:
    """A piece of usage inside one calendar month (UTC), the unit an invoice line is built from."""

    period: str  # YYYY-MM
    start: int
    end: int

    @property
    def seconds(self) -> int:
        return self.end - self.start

    @property
    def month_seconds(self) -> int:
        """How long the calendar month this slice lies in is (28 to 31 days)."""
        return month_seconds(self.start)


def month_seconds(ts: int) -> int:
    """The length of the UTC calendar month containing `ts`, in seconds."""
    return next_month_start(ts) - month_start(ts)


def month_start(ts: int) -> int:
    d = datetime.fromtimestamp(ts, UTC)
    return int(datetime(d.year, d.month, 1, tzinfo=UTC).timestamp())


def next_month_start(ts: int) -> int:
    d = datetime.fromtimestamp(month_start(ts), UTC)
    y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return int(datetime(y, m, 1, tzinfo=UTC).timestamp())


def split_by_month(start: int, end: int) -> Iterator[UsageSlice]:
    """Cut [start, end) at UTC month boundaries so each slice lands on exactly one invoice."""
    t = start
    while t < end:
        boundary = min(next_month_start(t), end)
        yield UsageSlice(datetime.fromtimestamp(t, UTC).strftime("%Y-%m"), t, boundary)
        t = boundary


@dataclass(frozen=True, slots=True)
class RatedSlice:
    period: str
    start: int
    end: int
    seconds: int
    gpu_count: int
    amount: Decimal
    kind: str = "usage"  # usage | reservation | cancellation_fee


def rate_usage(quote: Quote, gpu_count: int, start: int, end: int) -> list[RatedSlice]:
    """Rate [start, end) of GPU time at the quote's price, split per month, each slice rounded to the cent.

    Slices are rounded individually (not the total) so every invoice line equals the sum the customer
    can recompute from that line alone; the sum over a lease differs from one rounding of the whole
    by at most half a cent per month boundary crossed.
    """
    kind = "reservation" if quote.billed_for_whole_window else "usage"
    return [
        RatedSlice(
            s.period,
            s.start,
            s.end,
            s.seconds,
            gpu_count,
            _slice_amount(quote.rate, quote.unit, gpu_count, s, quote.gib_rate, quote.memory_gib),
            kind,
        )
        for s in split_by_month(start, end)
    ]


@dataclass(slots=True)
class PriceBook:
    """All prices in force. Changing it affects new quotes only."""

    entries: dict[tuple[str, Plan], PriceEntry] = field(default_factory=dict)

    def set(self, entry: PriceEntry) -> None:
        self.entries[(entry.gpu_model, entry.plan)] = entry

    def entry(self, gpu_model: str, plan: Plan) -> PriceEntry:
        """The entry of a GPU or a CPU model on a plan (one book: the catalogues' names are distinct)."""
        try:
            return self.entries[(gpu_model, plan)]
        except KeyError:
            raise PricingError(f"no {plan} price for {gpu_model} in the price book") from None
