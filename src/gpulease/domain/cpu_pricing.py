"""Prices of CPU leases: per core-hour (per core-month on long_term) by CPU model and plan, plus an optional rate
per GiB of memory in the same unit.

The conventions are `pricing.py`'s: Decimal money, the plan's window rules (`check_window`), usage cut at UTC month
boundaries, each piece rounded once to the cent (so a window used in full costs exactly its quote), a core-month
being a calendar month prorated by the day to the second. A piece of s seconds costs

    (core_rate x cores + gib_rate x GiB) x s / 3,600               per core-hour
    (core_rate x cores + gib_rate x GiB) x s / seconds of its month  per core-month

A memory rate of 0 (the default) sells memory with the cores: the lease's GiB are then its cores' share anyway.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

from gpulease.domain.leases import Plan
from gpulease.domain.pricing import (
    HOUR,
    PricingError,
    UsageSlice,
    check_window,
    late_cancellation_fee,
    money,
    split_by_month,
)


class CpuPriceUnit(enum.StrEnum):
    CORE_HOUR = "core_hour"
    CORE_MONTH = "core_month"


@dataclass(frozen=True, slots=True)
class CpuPriceEntry:
    """One row of the CPU price book: the rates for a CPU model on a plan."""

    cpu_model: str
    plan: Plan
    core_rate: Decimal
    gib_rate: Decimal = Decimal("0")
    currency: str = "USD"
    cancel_free_hours: int = 24
    cancel_fee_fraction: Decimal = Decimal("0.5")
    preemption_notice_s: int = 120

    @property
    def unit(self) -> CpuPriceUnit:
        return CpuPriceUnit.CORE_MONTH if self.plan is Plan.LONG_TERM else CpuPriceUnit.CORE_HOUR


@dataclass(frozen=True, slots=True)
class CpuQuote:
    """The price a CPU lease was sold at; stored on the lease like `pricing.Quote`."""

    cpu_model: str
    cpu_cores: int
    memory_gib: int
    plan: Plan
    core_rate: Decimal
    gib_rate: Decimal
    unit: CpuPriceUnit
    currency: str
    start: int
    end: int | None
    estimated_total: Decimal | None
    cancel_free_hours: int
    cancel_fee_fraction: Decimal
    preemption_notice_s: int

    @property
    def billed_for_whole_window(self) -> bool:
        return self.plan in (Plan.RESERVED, Plan.LONG_TERM)

    def to_dict(self) -> dict[str, object]:
        return {
            "cpu_model": self.cpu_model,
            "cpu_cores": self.cpu_cores,
            "memory_gib": self.memory_gib,
            "plan": str(self.plan),
            "core_rate": str(self.core_rate),
            "gib_rate": str(self.gib_rate),
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
    def from_dict(cls, d: dict[str, object]) -> CpuQuote:
        est, end = d.get("estimated_total"), d.get("end")
        return cls(
            cpu_model=str(d["cpu_model"]),
            cpu_cores=int(str(d["cpu_cores"])),
            memory_gib=int(str(d["memory_gib"])),
            plan=Plan(str(d["plan"])),
            core_rate=Decimal(str(d["core_rate"])),
            gib_rate=Decimal(str(d["gib_rate"])),
            unit=CpuPriceUnit(str(d["unit"])),
            currency=str(d["currency"]),
            start=int(str(d["start"])),
            end=None if end is None else int(str(end)),
            estimated_total=None if est is None else Decimal(str(est)),
            cancel_free_hours=int(str(d["cancel_free_hours"])),
            cancel_fee_fraction=Decimal(str(d["cancel_fee_fraction"])),
            preemption_notice_s=int(str(d["preemption_notice_s"])),
        )


def _slice_amount(core_rate: Decimal, gib_rate: Decimal, unit: CpuPriceUnit, cores: int, gib: int,
                  s: UsageSlice) -> Decimal:
    if cores < 0 or gib < 0:
        raise ValueError("cores and GiB must be non-negative")
    per = HOUR if unit is CpuPriceUnit.CORE_HOUR else s.month_seconds
    return money((core_rate * cores + gib_rate * gib) * s.seconds / per)


def cpu_price_span(core_rate: Decimal, gib_rate: Decimal, unit: CpuPriceUnit, cores: int, gib: int,
                   start: int, end: int) -> Decimal:
    """Price of [start, end) as billed: cut at UTC month boundaries, each piece rounded to the cent."""
    return sum(
        (_slice_amount(core_rate, gib_rate, unit, cores, gib, s) for s in split_by_month(start, end)),
        Decimal("0.00"),
    )


def make_cpu_quote(entry: CpuPriceEntry, cpu_cores: int, memory_gib: int, start: int, end: int | None) -> CpuQuote:
    """Quote a CPU request against a price-book entry; checks the plan's window rules."""
    if cpu_cores < 1 or memory_gib < 0:
        raise PricingError("a CPU lease has at least one core and no negative memory")
    check_window(entry.plan, start, end)
    estimated = None if end is None else cpu_price_span(
        entry.core_rate, entry.gib_rate, entry.unit, cpu_cores, memory_gib, start, end
    )
    return CpuQuote(
        entry.cpu_model, cpu_cores, memory_gib, entry.plan, entry.core_rate, entry.gib_rate, entry.unit,
        entry.currency, start, end, estimated, entry.cancel_free_hours, entry.cancel_fee_fraction,
        entry.preemption_notice_s,
    )


def cpu_cancellation_fee(quote: CpuQuote, now: int) -> Decimal:
    """As `pricing.cancellation_fee`, by the same rule (`pricing.late_cancellation_fee`)."""
    end = quote.end
    if end is None:
        return Decimal("0.00")
    return late_cancellation_fee(
        quote,
        now,
        lambda: cpu_price_span(
            quote.core_rate, quote.gib_rate, quote.unit, quote.cpu_cores, quote.memory_gib, quote.start, end
        ),
    )


@dataclass(frozen=True, slots=True)
class CpuRatedSlice:
    period: str
    start: int
    end: int
    seconds: int
    cpu_cores: int
    memory_gib: int
    amount: Decimal
    kind: str = "usage"  # usage | reservation


def rate_cpu_usage(quote: CpuQuote, start: int, end: int) -> list[CpuRatedSlice]:
    """Rate [start, end) of the lease's cores and memory at its quote, one slice per month, each to the cent."""
    kind = "reservation" if quote.billed_for_whole_window else "usage"
    return [
        CpuRatedSlice(
            s.period, s.start, s.end, s.seconds, quote.cpu_cores, quote.memory_gib,
            _slice_amount(quote.core_rate, quote.gib_rate, quote.unit, quote.cpu_cores, quote.memory_gib, s), kind,
        )
        for s in split_by_month(start, end)
    ]


@dataclass(slots=True)
class CpuPriceBook:
    entries: dict[tuple[str, Plan], CpuPriceEntry] = field(default_factory=dict)

    def set(self, entry: CpuPriceEntry) -> None:
        self.entries[(entry.cpu_model, entry.plan)] = entry

    def entry(self, cpu_model: str, plan: Plan) -> CpuPriceEntry:
        try:
            return self.entries[(cpu_model, plan)]
        except KeyError:
            raise PricingError(f"no {plan} price for {cpu_model} in the price book") from None
