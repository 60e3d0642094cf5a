"""Spend arithmetic, quotas and webhook signatures, as pure functions: property tests against brute force."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpulease.domain.pricing import PriceUnit, next_month_start
from gpulease.domain.spend import (
    ZERO,
    Holding,
    LeaseCost,
    MonthSpend,
    forecast_path,
    month_spend,
    over_limit,
    peak_gpus,
    period_bounds,
    thresholds_reached,
)
from gpulease.domain.webhooks import InvalidWebhook, checked_events, checked_url, retry_delay, sign, verify

NOV = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
DEC = next_month_start(NOV)
HOUR = 3600


def lease(
    *, starts: int, stops: int | None, running: bool, gpus: int = 1, rate: str = "1.00", unbilled: int | None = None
) -> LeaseCost:
    return LeaseCost(
        lease_id=1,
        rate=Decimal(rate),
        unit=PriceUnit.GPU_HOUR,
        gpu_count=gpus,
        unbilled_from=(starts if unbilled is None else unbilled) if running else None,
        starts=starts,
        stops=stops,
        running=running,
    )


holdings = st.lists(
    st.builds(
        lambda s, length, g: Holding(s, None if length is None else s + length, g),
        st.integers(0, 100),
        st.none() | st.integers(1, 60),
        st.integers(1, 8),
    ),
    max_size=8,
)


@given(holdings, st.integers(0, 100), st.none() | st.integers(1, 60))
def test_peak_gpus_is_the_most_held_at_any_instant(hs: list[Holding], start: int, length: int | None) -> None:
    end = None if length is None else start + length
    instants = range(start, 200 if end is None else end)
    brute = max((sum(h.gpus for h in hs if h.start <= t and (h.end is None or t < h.end)) for t in instants), default=0)
    assert peak_gpus(hs, start, end) == brute


def test_back_to_back_windows_do_not_add_up() -> None:
    assert peak_gpus([Holding(0, 10, 8), Holding(10, 20, 8)], 0, 20) == 8
    assert peak_gpus([Holding(0, None, 2), Holding(5, 6, 3)], 0, None) == 5


def test_a_month_of_one_running_and_one_booked_lease() -> None:
    now = NOV + 36 * HOUR  # Nov 2, 12:00
    running = lease(starts=NOV + 24 * HOUR, stops=None, running=True, gpus=8, rate="1.25")  # 10.00 an hour
    booked = lease(starts=NOV + 10 * 24 * HOUR, stops=NOV + 10 * 24 * HOUR + 5 * HOUR, running=False, gpus=2)
    m = month_spend(Decimal("3.00"), [running, booked], now, "2026-11")
    assert m.accrued == Decimal("120.00")  # 12 h so far
    assert m.committed == Decimal("10.00")  # the booked window; the open-ended lease commits nothing
    hours_left = (DEC - now) // HOUR
    assert m.forecast == Decimal("3.00") + Decimal("120.00") + Decimal("10.00") + hours_left * Decimal("10.00")
    past = month_spend(Decimal("50.00"), [running], DEC + HOUR, "2026-11")
    assert (past.accrued, past.committed) == (Decimal("10.00") * ((DEC - NOV - 24 * HOUR) // HOUR), ZERO)


# (start hour, hours long or None: open-ended, running if started, GPUs)
LEASE_SHAPES = st.tuples(st.integers(0, 24 * 40), st.none() | st.integers(1, 24 * 20), st.booleans(), st.integers(1, 8))


def costs_of(shapes: list[tuple[int, int | None, bool, int]], now: int) -> list[LeaseCost]:
    """Leases of those shapes in November as of `now`: one that has not started yet is not running."""
    costs = []
    for start_h, length_h, running, gpus in shapes:
        starts = NOV + start_h * HOUR
        stops = None if length_h is None else starts + length_h * HOUR
        costs.append(lease(starts=starts, stops=stops, running=running and starts <= now, gpus=gpus))
    return costs


@given(billed=st.integers(0, 10_000), now_h=st.integers(0, 24 * 30), leases=st.lists(LEASE_SHAPES, max_size=5))
def test_a_forecast_is_never_below_what_is_spent_and_committed(
    billed: int, now_h: int, leases: list[tuple[int, int | None, bool, int]]
) -> None:
    now = NOV + now_h * HOUR
    m = month_spend(Decimal(billed), costs_of(leases, now), now, "2026-11")
    assert m.to_date == Decimal(billed) + m.accrued
    assert m.forecast >= m.to_date + m.committed >= m.to_date >= 0


def test_the_forecast_path_levels_off_where_leases_stop() -> None:
    now = NOV + 36 * HOUR
    short = lease(starts=NOV + 24 * HOUR, stops=now + HOUR, running=True, gpus=8, rate="1.25")  # 10.00 an hour
    later = lease(starts=now + 48 * HOUR, stops=now + 50 * HOUR, running=False, gpus=1)  # 2 h at 1.00
    path = forecast_path(Decimal("130.00"), [short, later], now, "2026-11")
    assert path == [
        (now, Decimal("130.00")),
        (now + HOUR, Decimal("140.00")),  # the running lease stops in an hour: a rise, then level
        (now + 48 * HOUR, Decimal("140.00")),
        (now + 50 * HOUR, Decimal("142.00")),
        (DEC, Decimal("142.00")),
    ]
    assert forecast_path(Decimal(0), [short], DEC, "2026-11") == []  # the month is over: nothing ahead


@given(
    billed=st.integers(0, 10_000),
    now_h=st.integers(0, 24 * 30 - 1),  # the last hour of November: at DEC the month is over
    leases=st.lists(LEASE_SHAPES, max_size=80),
)
def test_the_forecast_path_climbs_to_the_forecast(
    billed: int, now_h: int, leases: list[tuple[int, int | None, bool, int]]
) -> None:
    """It starts at what is spent, never goes down, ends at month_spend's forecast, and stays short."""
    now = NOV + now_h * HOUR
    costs = costs_of(leases, now)
    m = month_spend(Decimal(billed), costs, now, "2026-11")
    path = forecast_path(m.to_date, costs, now, "2026-11")
    assert path[0] == (now, m.to_date) and path[-1] == (DEC, m.forecast)
    assert all(a <= b for (_, a), (_, b) in itertools.pairwise(path))
    assert [t for t, _ in path] == sorted({t for t, _ in path}) and len(path) <= 60


@given(
    limit=st.integers(0, 500),
    spent=st.integers(0, 500),
    hours=st.none() | st.integers(1, 24 * 45),
)
def test_over_limit_admits_exactly_what_fits(limit: int, spent: int, hours: int | None) -> None:
    now = NOV + 24 * HOUR
    new = lease(starts=now, stops=None if hours is None else now + hours * HOUR, running=False, rate="0.50")
    months = {"2026-11": MonthSpend(Decimal(spent), ZERO, ZERO, Decimal(spent))}
    over = over_limit(Decimal(limit), months, new, now)
    if hours is None:
        assert (over is not None) == (spent >= limit)
        return
    in_nov = new.price(now, min(new.stops or 0, DEC))
    in_dec = new.price(max(now, DEC), min(new.stops or 0, next_month_start(DEC)))
    fits = spent + in_nov <= limit and in_dec <= limit
    assert (over is None) == fits
    if over is not None:
        assert over.projected > over.limit == Decimal(limit)


def test_thresholds() -> None:
    assert thresholds_reached(Decimal("49.99"), Decimal(100)) == []
    assert thresholds_reached(Decimal("80"), Decimal(100)) == [50, 80]
    assert thresholds_reached(Decimal("130"), Decimal(100)) == [50, 80, 100]
    assert thresholds_reached(ZERO, ZERO) == [50, 80, 100]  # a limit of nothing is reached at once
    assert period_bounds("2026-11") == (NOV, DEC)


@given(secret=st.text(min_size=1, max_size=40), body=st.binary(max_size=200), t=st.integers(0, 2**32))
def test_a_signature_verifies_only_its_own_body_secret_and_time(secret: str, body: bytes, t: int) -> None:
    header = sign(secret, t, body)
    assert verify(secret, header, body, t) and verify(secret, header, body, t + 300)
    assert not verify(secret, header, body, t + 301)
    assert not verify(secret + "x", header, body, t)
    assert not verify(secret, header, body + b"x", t)
    assert not verify(secret, header.replace("t=", "t=1"), body, t)


def test_urls_events_and_backoff() -> None:
    assert checked_url(" https://example.com/hook ", allow_private=False) == "https://example.com/hook"
    assert checked_url("http://127.0.0.1:8080/x", allow_private=True).startswith("http://127.0.0.1")
    for bad in ("http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "http://192.168.1.1/", "http://localhost/"):
        with pytest.raises(InvalidWebhook):
            checked_url(bad, allow_private=False)
    with pytest.raises(InvalidWebhook, match="not a valid URL"):
        checked_url("https://example.com:99999/", allow_private=False)
    assert checked_events(["lease.ended", "lease.started", "lease.ended"]) == ["lease.ended", "lease.started"]
    assert checked_events(["lease.ended", "*"]) == ["*"]
    assert [retry_delay(n, base_s=30, cap_s=3600) for n in range(1, 10)] == [
        30, 60, 120, 240, 480, 960, 1920, 3600, 3600
    ]  # fmt: skip
