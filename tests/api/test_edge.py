"""The HTTP edge: idempotency keys, unhandled errors as problem+json, rate limits, /metrics behind a key."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, update

from gpulease.api.app import create_app
from gpulease.runtime import Runtime
from gpulease.settings import Settings
from gpulease.store.models import IdempotencyRecord, Lease
from tests.conftest import Clock, Facility


def _book(facility: Facility, customer_id: int, **extra: Any) -> dict[str, Any]:
    return {"customer_id": customer_id, "gpu_model": "A100-80GB", "gpu_count": 1, "plan": "on_demand", **extra}


def _leases(runtime: Runtime) -> int:
    with runtime.store.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(Lease)) or 0)


@pytest.fixture
def booked(facility: Facility) -> dict[str, Any]:
    facility.nodes(2)
    facility.prices()
    return facility.customer()


def test_the_same_key_and_body_twice_books_once_and_replays_the_first_answer(
    facility: Facility, booked: dict[str, Any], runtime: Runtime
) -> None:
    h = {**facility.k.op, "Idempotency-Key": "book-1"}
    first = facility.c.post("/api/v1/leases", headers=h, json=_book(facility, booked["id"]))
    second = facility.c.post("/api/v1/leases", headers=h, json=_book(facility, booked["id"]))
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"] and first.json()["state"] == second.json()["state"]
    assert second.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert _leases(runtime) == 1
    # JSON is compared by value: the same request with its fields in another order is the same request.
    body = _book(facility, booked["id"])
    reordered = dict(reversed(list(body.items())))
    assert facility.c.post("/api/v1/leases", headers=h, json=reordered).json()["id"] == first.json()["id"]


def test_the_same_key_with_another_body_is_refused(facility: Facility, booked: dict[str, Any]) -> None:
    h = {**facility.k.op, "Idempotency-Key": "book-2"}
    assert facility.c.post("/api/v1/leases", headers=h, json=_book(facility, booked["id"])).status_code == 201
    r = facility.c.post("/api/v1/leases", headers=h, json=_book(facility, booked["id"], gpu_count=2))
    assert r.status_code == 422 and r.json()["type"].endswith("idempotency-key-reused")


def test_keys_belong_to_their_caller_and_expire_after_a_day(
    facility: Facility, booked: dict[str, Any], runtime: Runtime, clock: Clock
) -> None:
    body = _book(facility, booked["id"])
    a = facility.c.post("/api/v1/leases", headers={**facility.k.op, "Idempotency-Key": "k"}, json=body).json()
    customer = {**facility.customer_key(booked["id"]), "Idempotency-Key": "k"}
    b = facility.c.post("/api/v1/leases", headers=customer, json=body).json()
    assert a["id"] != b["id"]  # another caller's key space
    clock.advance(hours=24, seconds=1)
    c = facility.c.post("/api/v1/leases", headers={**facility.k.op, "Idempotency-Key": "k"}, json=body)
    assert c.status_code == 201 and c.json()["id"] not in (a["id"], b["id"])


def test_a_refusal_is_replayed_too_but_a_bad_key_is_not_accepted(facility: Facility, booked: dict[str, Any]) -> None:
    h = {**facility.k.op, "Idempotency-Key": "too-big"}
    r1 = facility.c.post("/api/v1/leases", headers=h, json=_book(facility, booked["id"], gpu_count=64))
    r2 = facility.c.post("/api/v1/leases", headers=h, json=_book(facility, booked["id"], gpu_count=64))
    assert r1.status_code == r2.status_code == 409 and r1.json()["detail"] == r2.json()["detail"]
    bad = {**facility.k.op, "Idempotency-Key": "x" * 300}
    assert facility.c.post("/api/v1/leases", headers=bad, json=_book(facility, booked["id"])).status_code == 422


def test_concurrent_duplicates_make_one_lease(live_server: str, facility: Facility, booked: dict[str, Any]) -> None:
    body = _book(facility, booked["id"])
    h = {**facility.k.op, "Idempotency-Key": f"race-{uuid.uuid4()}"}
    answers: list[httpx.Response] = []

    def send() -> None:
        answers.append(httpx.post(f"{live_server}/api/v1/leases", headers=h, json=body, timeout=30))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in answers if r.status_code == 201]
    assert ok and {r.json()["id"] for r in ok} == {ok[0].json()["id"]}
    assert all(r.status_code in (201, 409) for r in answers), [r.text for r in answers]
    assert _leases(facility.rt) == 1


def test_each_key_is_bound_to_the_lease_its_own_request_made(
    live_server: str, facility: Facility, booked: dict[str, Any], runtime: Runtime
) -> None:
    """Many keyed bookings at once: each key's row names the lease that request was answered with, so a retry
    after a crash would recover that lease and no other."""
    body = _book(facility, booked["id"])
    answers: dict[str, int] = {}

    def send(key: str) -> None:
        h = {**facility.k.op, "Idempotency-Key": key}
        r = httpx.post(f"{live_server}/api/v1/leases", headers=h, json=body, timeout=30)
        assert r.status_code == 201, r.text
        answers[key] = r.json()["id"]

    threads = [threading.Thread(target=send, args=(f"own-{i}",)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 12
    deadline = time.monotonic() + 10
    while True:  # each answer is kept just after it is sent
        with runtime.store.transaction() as s:
            rows = s.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key.like("own-%"))).all()
        if all(r.response_status == 201 for r in rows) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert {r.key: r.created_refs for r in rows} == {k: [["leases", i]] for k, i in answers.items()}
    assert all(r.bound_at is not None and r.response_status == 201 for r in rows)
    assert {r.key: json.loads(r.response_body or "{}").get("id") for r in rows} == answers


def test_a_new_key_costs_a_read_before_its_request_and_is_claimed_by_its_change(
    facility: Facility, booked: dict[str, Any], runtime: Runtime
) -> None:
    h = {**facility.k.op, "Idempotency-Key": "cheap-1"}
    facility.c.post("/api/v1/leases", headers=h | {"Idempotency-Key": "warm"}, json=_book(facility, booked["id"]))
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "idempotency_keys" in statement or statement.startswith("SAVEPOINT"):
            seen.append(statement.split()[0])

    event.listen(runtime.store.engine, "before_cursor_execute", note)
    try:
        r = facility.c.post("/api/v1/leases", headers=h, json=_book(facility, booked["id"]))
    finally:
        event.remove(runtime.store.engine, "before_cursor_execute", note)
    assert r.status_code == 201
    # The look-up (a read), the key inserted in the booking's own transaction, its answer kept: no transaction
    # that claims the key before the request runs, no savepoint.
    assert seen == ["SELECT", "INSERT", "UPDATE"]


@pytest.fixture
def unseen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every key looks new to the look-up before its request: as when another request inserts the same key just
    after this one looked."""
    from gpulease.services import idempotency

    monkeypatch.setattr(idempotency, "known", lambda *_a, **_k: False)


def test_a_change_whose_key_was_taken_meanwhile_is_rolled_back_and_answered_as_a_duplicate(
    facility: Facility, booked: dict[str, Any], runtime: Runtime, unseen: None
) -> None:
    h = {**facility.k.op, "Idempotency-Key": "taken-1"}
    first = facility.c.post("/api/v1/leases", headers=h, json=_book(facility, booked["id"]))
    second = facility.c.post("/api/v1/leases", headers=h, json=_book(facility, booked["id"]))
    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"] and second.headers["idempotent-replayed"] == "true"
    assert _leases(runtime) == 1  # the second booking was placed, then rolled back with its key
    # Its GPUs went back to the calendar: every GPU but the first booking's can still be booked.
    for _ in range(15):
        assert (
            facility.c.post("/api/v1/leases", headers=facility.k.op, json=_book(facility, booked["id"])).status_code
            == 201
        )
    assert (
        facility.c.post("/api/v1/leases", headers=facility.k.op, json=_book(facility, booked["id"])).status_code == 409
    )
    other = facility.c.post("/api/v1/leases", headers=h, json=_book(facility, booked["id"], gpu_count=2))
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")


def test_an_answer_that_changed_nothing_is_not_sent_when_its_key_was_taken_meanwhile(
    facility: Facility, booked: dict[str, Any], unseen: None
) -> None:
    h = {**facility.k.op, "Idempotency-Key": "taken-2"}
    first = facility.c.post("/api/v1/leases", headers=h, json=_book(facility, booked["id"], gpu_count=64))
    second = facility.c.post("/api/v1/leases", headers=h, json=_book(facility, booked["id"], gpu_count=64))
    assert first.status_code == second.status_code == 409
    assert second.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers


def test_a_retry_after_a_crash_between_commit_and_answer_gets_the_lease_not_a_second_one(
    facility: Facility, booked: dict[str, Any], runtime: Runtime, clock: Clock
) -> None:
    h = {**facility.k.op, "Idempotency-Key": "crash-1"}
    first = facility.c.post("/api/v1/leases", headers=h, json=_book(facility, booked["id"])).json()
    with runtime.store.transaction() as s:  # what a process killed right after the commit leaves behind
        row = s.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == "crash-1"))
        assert row is not None and row.bound_at is not None and row.created_refs == [["leases", first["id"]]]
        s.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == row.id)
            .values(completed_at=None, response_status=None, response_body=None, owner="elsewhere:1:1")
        )
    clock.advance(minutes=2)  # its lock has gone stale
    retry = facility.c.post("/api/v1/leases", headers=h, json=_book(facility, booked["id"]))
    assert retry.status_code == 201 and retry.json()["id"] == first["id"]
    assert _leases(runtime) == 1


def test_a_request_that_fails_before_changing_anything_can_be_retried(facility: Facility, runtime: Runtime) -> None:
    facility.nodes(1)
    facility.prices()
    c = facility.customer()
    h = {**facility.k.op, "Idempotency-Key": "early-fail"}

    def boom() -> None:
        raise RuntimeError("simulated failure before any change")

    facility.c.app.add_api_route("/api/v1/boom", boom, methods=["POST"])  # type: ignore[attr-defined]
    r = facility.c.post("/api/v1/boom", headers=h, json={})
    assert r.status_code == 500
    with runtime.store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
    assert facility.c.post("/api/v1/leases", headers=h, json=_book(facility, c["id"])).status_code == 201


def test_a_database_out_of_reach_is_a_503_to_retry_not_a_500(facility: Facility, runtime: Runtime) -> None:
    """A lost or refused database connection (a restart, a failover) is no bug of the request or of the code: 503
    with Retry-After, counted; the key is not bound to it, so the retry is made as if first sent. Errors of the
    database that are not about reaching it (a lock timeout) stay a 500."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    calls = []

    def down() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused"))

    def locked() -> None:
        raise OperationalError("SELECT 1", {}, psycopg.errors.LockNotAvailable("lock timeout"))

    facility.c.app.add_api_route("/api/v1/down", down, methods=["POST"])  # type: ignore[attr-defined]
    facility.c.app.add_api_route("/api/v1/locked", locked, methods=["GET"])  # type: ignore[attr-defined]
    h = {**facility.k.op, "Idempotency-Key": "db-down"}
    r = facility.c.post("/api/v1/down", headers=h, json={})
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.headers["content-type"] == "application/problem+json" and r.json()["type"].endswith("store-unavailable")
    assert "connection refused" not in r.text  # no internals
    assert facility.c.post("/api/v1/down", headers=h, json={}).status_code == 200 and len(calls) == 2
    assert facility.c.get("/api/v1/locked", headers=facility.k.op).status_code == 500
    metrics = facility.c.get("/metrics", headers=facility.k.op).text
    assert 'gpulease_http_unhandled_errors_total{error="OperationalError"} 2.0' in metrics
    from gpulease.services.errors import store_unavailable

    cut = OperationalError("SELECT 1", {}, psycopg.errors.AdminShutdown("terminating"), connection_invalidated=True)
    assert store_unavailable(cut) and not store_unavailable(RuntimeError("connection refused"))


# --------------------------------------------------------------------------------------------- errors


@pytest.fixture
def failing_server(runtime: Runtime) -> Iterator[str]:
    """A real server with one route that fails, to see what a client gets from an unhandled error."""

    import uvicorn

    from tests.conftest import free_port

    app = create_app(runtime, background=False)

    def broken() -> None:
        raise KeyError("a bug")

    app.add_api_route("/api/v1/broken", broken, methods=["GET"])
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield base
    srv.should_exit = True
    thread.join(timeout=10)


def test_an_unhandled_error_is_a_problem_with_a_request_id_counted_and_the_connection_survives(
    failing_server: str, api_keys: Any
) -> None:
    with httpx.Client(base_url=failing_server, headers=api_keys.op) as client:
        r = client.get("/api/v1/broken")
        assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["request_id"] == r.headers["x-request-id"] and "a bug" not in r.text  # no internals leak
        assert client.get("/healthz").status_code == 200  # same keep-alive connection, still usable
        metrics = client.get("/metrics").text
        assert 'gpulease_http_unhandled_errors_total{error="KeyError"} 1.0' in metrics
        assert 'route="/api/v1/broken",status="500"' in metrics


# --------------------------------------------------------------------------------------------- limits, metrics


def test_a_key_over_its_rate_gets_429_with_retry_after(db_url: str, tmp_path: Path, clock: Clock) -> None:
    settings = Settings(data_dir=tmp_path / "d", database_url=db_url, rate_limit_per_s=1, rate_limit_burst=3)
    rt = Runtime(settings, clock=clock)
    try:
        with TestClient(create_app(rt, background=False)) as c:
            codes = [c.get("/api/v1/nodes", headers={"Authorization": "Bearer nope"}).status_code for _ in range(5)]
            assert codes[:3] == [401, 401, 401] and codes[3] == 429
            r = c.get("/api/v1/nodes", headers={"Authorization": "Bearer nope"})
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
            other = c.get("/api/v1/nodes", headers={"Authorization": "Bearer another"})
            assert other.status_code == 401  # each key has its own bucket
    finally:
        rt.close()


def test_metrics_need_a_staff_key(facility: Facility, booked: dict[str, Any]) -> None:
    assert facility.c.get("/metrics").status_code == 401
    assert facility.c.get("/metrics", headers=facility.customer_key(booked["id"])).status_code == 403
    r = facility.c.get("/metrics", headers=facility.k.co)
    assert r.status_code == 200 and "gpulease_leases" in r.text


def test_metrics_show_how_busy_the_sqlite_writer_is(
    facility: Facility, runtime: Runtime, booked: dict[str, Any]
) -> None:
    """SQLite has one writer: its lock's use tells an operator whether the store, not the CPU, is the bound."""
    text = facility.c.get("/metrics", headers=facility.k.op).text
    series = {
        line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line.startswith("gpulease_sqlite_")
    }
    if runtime.store.is_postgres:
        assert series == {}
        return
    assert series["gpulease_sqlite_write_transactions_total"] >= 2  # the customer, its screening, the nodes...
    assert series["gpulease_sqlite_write_lock_held_seconds_total"] > 0
    assert series["gpulease_sqlite_write_lock_wait_seconds_total"] >= 0


def test_api_answers_carry_security_headers(facility: Facility) -> None:
    r = facility.c.get("/healthz")
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_a_lease_ended_in_its_first_second_holds_nothing_for_a_request_that_read_the_clock_earlier(
    facility: Facility, booked: dict[str, Any], clock: Clock
) -> None:
    """SQLite race of issue 7: a booking that read `now` before waiting for the write lock must not see [t, t)."""
    lease = facility.lease(customer_id=booked["id"], gpu_model="A100-80GB", gpu_count=8)
    assert facility.c.post(f"/api/v1/leases/{lease['id']}/end", headers=facility.k.op).status_code == 200
    clock.advance(seconds=-1)  # the next request's clock reading predates that booking
    r = facility.c.post("/api/v1/leases", headers=facility.k.op, json=_book(facility, booked["id"], gpu_count=8))
    assert r.status_code == 201, r.text
