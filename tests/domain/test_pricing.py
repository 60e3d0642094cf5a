"""Quotes and rating: exact Decimal money, month splits that never lose or double a second."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpulease.domain.leases import (
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    LeaseState,
    Plan,
    check_transition,
)
from gpulease.domain.pricing import (
    PriceEntry,
    PricingError,
    cancellation_fee,
    canonical,
    charge,
    cut_short,
    make_quote,
    rate_usage,
    split_by_month,
)

A100 = PriceEntry("A100-80GB", Plan.ON_DEMAND, Decimal("1.25"))
T = int(datetime(2026, 11, 30, 22, 0, tzinfo=UTC).timestamp())


def test_ten_dollars_per_node_hour() -> None:
    assert charge(Decimal("1.25"), A100.unit, 8, 3600) == Decimal("10.00")
    assert charge(Decimal("1.25"), A100.unit, 8, 1) == Decimal("0.00")  # 0.00277… rounds half up to 0.00
    assert charge(Decimal("1.25"), A100.unit, 8, 2) == Decimal("0.01")


def test_quote_rules() -> None:
    with pytest.raises(PricingError, match="needs an end"):
        make_quote(PriceEntry("A100-80GB", Plan.RESERVED, Decimal(1)), 1, T, None)
    with pytest.raises(PricingError, match="at least 30 days"):
        make_quote(PriceEntry("A100-80GB", Plan.LONG_TERM, Decimal(600)), 1, T, T + 86400)
    with pytest.raises(PricingError, match="end after"):
        make_quote(A100, 1, T, T)
    q = make_quote(PriceEntry("A100-80GB", Plan.LONG_TERM, Decimal(600)), 2, T, T + 45 * 86400)
    assert q.estimated_total == Decimal("1800.00")  # 2 GPUs x 1.5 months x $600


def test_cancellation_fee_only_inside_the_notice_period() -> None:
    rsv = make_quote(PriceEntry("A100-80GB", Plan.RESERVED, Decimal(1)), 8, T, T + 7200)
    assert cancellation_fee(rsv, T - 25 * 3600) == Decimal("0.00")
    assert cancellation_fee(rsv, T - 23 * 3600) == Decimal("8.00")
    assert cancellation_fee(make_quote(A100, 8, T, None), T) == Decimal("0.00")


def test_a_window_cut_short_owes_what_it_had_and_no_fee() -> None:
    rsv = make_quote(PriceEntry("A100-80GB", Plan.RESERVED, Decimal(1)), 8, T, T + 7200)
    half = cut_short(rsv, T + 3600)
    assert half.end == T + 3600 and half.estimated_total == Decimal("8.00") and half.start == rsv.start
    nothing = cut_short(rsv, T - 3600)  # cut before it started: nothing owed, no late-cancellation fee either
    assert nothing.end == T and nothing.estimated_total == Decimal("0.00")
    assert cancellation_fee(rsv, T - 3600) == Decimal("8.00") and cancellation_fee(nothing, T - 3600) == 0
    assert cut_short(rsv, T + 9000) == rsv  # a cut after the end changes nothing


def test_canonical_keeps_cents() -> None:
    assert str(canonical(Decimal("1.250000"))) == "1.25"
    assert str(canonical(Decimal("600.000000"))) == "600.00"
    assert str(canonical(Decimal("0.123400"))) == "0.1234"


@given(
    start=st.integers(T - 400 * 86400, T + 400 * 86400),
    length=st.integers(1, 200 * 86400),
    gpus=st.integers(1, 64),
    rate=st.decimals("0.01", "99.99", places=2),
)
def test_month_split_bills_every_second_exactly_once(start: int, length: int, gpus: int, rate: Decimal) -> None:
    slices = list(split_by_month(start, start + length))
    assert slices[0].start == start and slices[-1].end == start + length
    assert all(a.end == b.start for a, b in pairwise(slices))
    assert sum(s.seconds for s in slices) == length
    q = make_quote(PriceEntry("A100-80GB", Plan.ON_DEMAND, rate), gpus, start, None)
    rated = rate_usage(q, gpus, start, start + length)
    whole = charge(rate, q.unit, gpus, length)
    # each month is rounded to the cent once: the total differs from one rounding by ≤ ½ cent per slice
    assert abs(sum(r.amount for r in rated) - whole) <= Decimal("0.005") * len(rated)
    assert all(r.amount == r.amount.quantize(Decimal("0.01")) for r in rated)


def test_state_machine() -> None:
    check_transition(LeaseState.SCHEDULED, LeaseState.ACTIVE)
    with pytest.raises(IllegalTransition, match="cannot become active"):
        check_transition(LeaseState.ENDED, LeaseState.ACTIVE)
    assert {
        LeaseState.ENDED,
        LeaseState.CANCELLED,
        LeaseState.PREEMPTED,
        LeaseState.REJECTED,
        LeaseState.FAILED,
    } == TERMINAL
    # every non-terminal state can reach a terminal one
    for s in TRANSITIONS:
        seen, todo = {s}, [s]
        while todo:
            for n in TRANSITIONS[todo.pop()]:
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        assert seen & TERMINAL, s
