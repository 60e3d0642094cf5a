"""API keys in a server's memory: looked up again together before they expire, so that a key in use never waits
for its look-up, and a key revoked elsewhere (another process, the CLI on SQLite) still stops working in time."""

from __future__ import annotations

from sqlalchemy import update

from gpulease.runtime import AUTH_CACHE_S, AUTH_REFRESH_S, Runtime
from gpulease.store.models import ApiKey
from tests.conftest import Clock, Facility


def _lookups(runtime: Runtime) -> list[str]:
    """Count the store look-ups of single keys (the requests' own), not the refresh's."""
    seen: list[str] = []
    real = runtime.store.reading

    def counting():  # type: ignore[no-untyped-def]
        seen.append("lookup")
        return real()

    runtime.store.reading = counting  # type: ignore[method-assign]
    return seen


def test_a_key_in_use_is_refreshed_before_it_expires(facility: Facility, runtime: Runtime, clock: Clock) -> None:
    key = facility.k.operator
    assert runtime.authenticate(key) is not None
    seen = _lookups(runtime)
    for _ in range(5):  # well past AUTH_CACHE_S in all, refreshed on the way as the server's loop does
        clock.advance(seconds=AUTH_REFRESH_S + 0.1)
        runtime.refresh_keys()
        assert runtime.known_key(key) is not None  # never expired between two requests
    assert len(seen) == 5  # one refresh query each time, no request's own look-up


def test_a_key_revoked_elsewhere_is_dropped_by_the_refresh(facility: Facility, runtime: Runtime, clock: Clock) -> None:
    key = facility.k.operator
    other = facility.k.compliance
    assert runtime.authenticate(key) is not None and runtime.authenticate(other) is not None
    # Revoked in the store directly, as another process would: this process is not told.
    with runtime.store.engine.begin() as conn:
        conn.execute(update(ApiKey).where(ApiKey.role == "operator").values(revoked_at=clock()))
    clock.advance(seconds=AUTH_REFRESH_S)
    runtime.refresh_keys()
    assert runtime.known_key(key) is None and runtime.authenticate(key) is None
    assert runtime.known_key(other) is not None  # the other key was found still valid and kept


def test_a_refresh_that_read_before_keys_changed_does_not_bring_them_back(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    key = facility.k.operator
    assert runtime.authenticate(key) is not None
    clock.advance(seconds=AUTH_REFRESH_S)
    real = runtime.store.reading

    def keys_change_meanwhile():  # type: ignore[no-untyped-def]
        runtime.forget_keys()  # a key changed in this process while the refresh was reading
        return real()

    runtime.store.reading = keys_change_meanwhile  # type: ignore[method-assign]
    runtime.refresh_keys()
    runtime.store.reading = real  # type: ignore[method-assign]
    assert runtime.known_key(key) is None  # looked up afresh by the next request


def test_without_a_refresh_a_key_expires_as_before(facility: Facility, runtime: Runtime, clock: Clock) -> None:
    key = facility.k.operator
    assert runtime.authenticate(key) is not None
    clock.advance(seconds=AUTH_CACHE_S)
    assert runtime.known_key(key) is None
