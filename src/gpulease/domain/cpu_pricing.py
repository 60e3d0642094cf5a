"""Prices of CPU leases: per core-hour (per core-month on long_term) by CPU model and plan, plus an optional rate
per GiB of memory in the same unit.

One price book for GPUs and CPUs (`pricing.PriceBook`): a CPU price is a `PriceEntry` with `resource=cpu`, a CPU
lease's quote a `Quote` whose units are cores (`unit` core_hour | core_month) and which carries its memory and
the memory rate. The conventions are `pricing.py`'s: Decimal money, the plan's window rules (`check_window`), usage
cut at UTC month boundaries, each piece rounded once to the cent (so a window used in full costs exactly its
quote), a core-month being a calendar month prorated by the day to the second. A piece of s seconds costs

    (core_rate x cores + gib_rate x GiB) x s / 3,600               per core-hour
    (core_rate x cores + gib_rate x GiB) x s / seconds of its month  per core-month

A memory rate of 0 (the default) sells memory with the cores: the lease's GiB are then its cores' share anyway.
This module only names the CPU side of those shared types.
"""

from __future__ import annotations

from decimal import Decimal

from gpulease.domain.leases import Plan
from gpulease.domain.pricing import (
    PriceEntry,
    Quote,
    RatedSlice,
    Resource,
    cancellation_fee,
    make_quote,
    rate_usage,
)


def CpuPriceEntry(
    cpu_model: str,
    plan: Plan,
    core_rate: Decimal,
    gib_rate: Decimal = Decimal("0"),
    currency: str = "USD",
    cancel_free_hours: int = 24,
    cancel_fee_fraction: Decimal = Decimal("0.5"),
    preemption_notice_s: int = 120,
) -> PriceEntry:
    """A price-book entry for a CPU model: per core, plus per GiB."""
    return PriceEntry(
        cpu_model,
        plan,
        core_rate,
        currency,
        cancel_free_hours,
        cancel_fee_fraction,
        preemption_notice_s,
        Resource.CPU,
        gib_rate,
    )


def make_cpu_quote(entry: PriceEntry, cpu_cores: int, memory_gib: int, start: int, end: int | None) -> Quote:
    """Quote a CPU request against a price-book entry; checks the plan's window rules."""
    return make_quote(entry, cpu_cores, start, end, memory_gib)


def cpu_cancellation_fee(quote: Quote, now: int) -> Decimal:
    return cancellation_fee(quote, now)


def rate_cpu_usage(quote: Quote, start: int, end: int) -> list[RatedSlice]:
    """Rate [start, end) of the lease's cores and memory at its quote, one slice per month, each to the cent."""
    return rate_usage(quote, quote.gpu_count, start, end)
