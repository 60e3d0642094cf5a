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
    month_seconds,
    next_month_start,
    price_span,
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
    # 2 GPUs x $600 x (2 h of November's 30 days + all of December + 13 d 22 h of January's 31 days)
    assert q.estimated_total == Decimal("3.33") + Decimal("1200.00") + Decimal("538.71")


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


def test_a_long_term_lease_cut_short_owes_its_calendar_months() -> None:
    """A node failure cutting a long-term lease short prices the months it had as they are billed."""
    start = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())
    end = int(datetime(2027, 3, 1, tzinfo=UTC).timestamp())
    cut = int(datetime(2027, 1, 16, 12, tzinfo=UTC).timestamp())  # December whole, half of January
    lt = make_quote(PriceEntry("A100-80GB", Plan.LONG_TERM, Decimal(600)), 1, start, end)
    short = cut_short(lt, cut)
    assert short.end == cut and short.estimated_total == Decimal("600.00") + Decimal("300.00")


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


LONG = PriceEntry("A100-80GB", Plan.LONG_TERM, Decimal("600"))


def _utc(y: int, m: int, d: int = 1, h: int = 0) -> int:
    return int(datetime(y, m, d, h, tzinfo=UTC).timestamp())


def test_long_term_bills_calendar_months_not_thirty_days() -> None:
    """December is one month at the monthly rate, not 31/30 of it; February is one month too."""
    for y, m in ((2026, 12), (2027, 2), (2028, 2), (2026, 11)):
        start = _utc(y, m)
        [piece] = rate_usage(make_quote(LONG, 1, start, start + 40 * 86400), 1, start, next_month_start(start))
        assert piece.amount == Decimal("600.00"), (y, m)
    # a partial month is prorated by the day: 10 days of December are 10/31 of the rate, of November 10/30
    assert price_span(LONG.rate, LONG.unit, 1, _utc(2026, 12, 5), _utc(2026, 12, 15)) == Decimal("193.55")
    assert price_span(LONG.rate, LONG.unit, 1, _utc(2026, 11, 5), _utc(2026, 11, 15)) == Decimal("200.00")


def test_a_long_term_quote_is_what_the_window_bills() -> None:
    q = make_quote(LONG, 4, _utc(2026, 11, 20, 9), _utc(2027, 1, 20, 9))
    billed = sum(r.amount for r in rate_usage(q, 4, q.start, q.end or 0))
    assert q.estimated_total == billed
    assert [r.period for r in rate_usage(q, 4, q.start, q.end or 0)] == ["2026-11", "2026-12", "2027-01"]


def test_an_hourly_charge_refuses_a_calendar_unit() -> None:
    with pytest.raises(ValueError, match="calendar month"):
        charge(Decimal(600), LONG.unit, 1, 86400)


@given(
    first=st.integers(0, 12 * 30),  # months after January 2024
    months=st.integers(1, 26),
    gpus=st.integers(1, 64),
    rate=st.decimals("1.00", "9999.99", places=2),
)
def test_whole_calendar_months_cost_exactly_the_rate_each(first: int, months: int, gpus: int, rate: Decimal) -> None:
    y, m = divmod(first, 12)
    start = _utc(2024 + y, m + 1)
    end = start
    for _ in range(months):
        end = next_month_start(end)
    assert price_span(rate, LONG.unit, gpus, start, end) == rate * gpus * months


@given(
    start=st.integers(_utc(2024, 1), _utc(2030, 1)),
    length=st.integers(1, 400 * 86400),
    gpus=st.integers(1, 64),
    rate=st.decimals("1.00", "9999.99", places=2),
    cut=st.floats(0, 1),
)
def test_a_long_term_span_is_prorated_per_month_and_splits_without_loss(
    start: int, length: int, gpus: int, rate: Decimal, cut: float
) -> None:
    end = start + length
    pieces = list(split_by_month(start, end))
    # each month's piece is its share of that month: seconds / (days in the month x 86,400)
    exact = sum((rate * gpus * p.seconds / month_seconds(p.start) for p in pieces), Decimal(0))
    total = price_span(rate, LONG.unit, gpus, start, end)
    assert abs(total - exact) <= Decimal("0.005") * len(pieces)
    # ending the lease anywhere and billing the rest later never gains or loses more than the roundings
    mid = start + int(length * cut)
    parts = price_span(rate, LONG.unit, gpus, start, mid) + price_span(rate, LONG.unit, gpus, mid, end)
    assert abs(parts - total) <= Decimal("0.01")
    # a longer lease never costs less
    assert price_span(rate, LONG.unit, gpus, start, end + 86400) >= total


@given(day=st.integers(1, 28), days=st.integers(1, 27), y=st.integers(2024, 2030), m=st.integers(1, 12))
def test_whole_days_of_a_partial_month_cost_their_share_of_it(day: int, days: int, y: int, m: int) -> None:
    start = _utc(y, m, day)
    end = min(start + days * 86400, next_month_start(start))
    in_month = (end - start) // 86400
    days_in_month = month_seconds(start) // 86400
    assert price_span(LONG.rate, LONG.unit, 2, start, end) == (LONG.rate * 2 * in_month / days_in_month).quantize(
        Decimal("0.01"), rounding="ROUND_HALF_UP"
    )


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
