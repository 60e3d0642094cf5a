"""Notifications and webhooks through the API, delivered by the Runtime's worker to a receiver on 127.0.0.1:
signed JSON (checked with the snippet in docs/webhooks.md), retried with backoff from an outbox that survives a
restart, a delivery log, a test button, and a hold that never says why."""

from __future__ import annotations

import re
import socket
import types
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gpulease.domain.webhooks import verify
from gpulease.runtime import Runtime
from gpulease.services import notifications
from gpulease.settings import Settings
from tests.conftest import Clock, Facility, wait_for
from tests.webhook_receiver import Receiver

A100 = "A100-80GB"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


@pytest.fixture
def settings(db_url: str, tmp_path: Path, sandbox_dir: Path) -> Settings:
    # Deliveries to 127.0.0.1 (the test receiver); a retry a second after a failure; a worker that polls so
    # rarely that only the after-commit wake-up can deliver within a test's patience.
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        stop_grace_s=2.0,
        sandbox_dir=sandbox_dir,
        webhook_allow_private_targets=True,
        webhook_retry_base_s=1,
        webhook_max_attempts=4,
        webhook_poll_s=60,
    )


def _hook(f: Facility, headers: dict[str, str], url: str, events: list[str], expect: int = 201) -> dict[str, Any]:
    r = f.c.post("/api/v1/webhooks", headers=headers, json={"url": url, "events": events})
    assert r.status_code == expect, r.text
    return dict(r.json())


def _tenant(f: Facility) -> tuple[dict[str, Any], dict[str, str]]:
    f.nodes(2)
    f.prices()
    cust = f.customer()
    return cust, f.customer_key(cust["id"])


def _snippet() -> Any:
    """The verification function exactly as docs/webhooks.md shows it."""
    m = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert m, "no python snippet in docs/webhooks.md"
    ns: dict[str, Any] = {}
    exec(m.group(1), ns)  # the documented code, run as a reader would paste it
    return ns


def test_deliveries_are_signed_json_that_the_documented_snippet_verifies(
    facility: Facility, runtime: Runtime, clock: Clock, receiver: Receiver
) -> None:
    cust, me = _tenant(facility)
    hook = _hook(facility, me, receiver.url, ["lease.started", "lease.ended"])
    assert hook["secret"].startswith("whsec_") and hook["customer_id"] == cust["id"]
    assert "secret" not in facility.c.get(f"/api/v1/webhooks/{hook['id']}", headers=me).json()
    lease = facility.lease(me, gpu_model=A100, gpu_count=8)
    assert runtime.deliveries.run_once() == 1
    [got] = receiver.received
    body = got.json
    assert got.headers["x-gpulease-event"] == "lease.started" and got.headers["content-type"] == "application/json"
    assert body["type"] == "lease.started" and body["customer_id"] == cust["id"] and body["id"].startswith("evt_")
    assert body["data"]["lease_id"] == lease["id"] and body["data"]["gpu_count"] == 8
    now = int(clock().timestamp())
    header = got.headers["x-gpulease-signature"]
    assert verify(hook["secret"], header, got.body, now)
    assert not verify(hook["secret"], header, got.body + b" ", now)
    assert not verify("whsec_other", header, got.body, now)
    assert not verify(hook["secret"], header, got.body, now + 301)  # too old: a replay
    ns = _snippet()
    ns["time"] = types.SimpleNamespace(time=lambda: float(now))  # the receiver's clock, at the test's time
    assert ns["verify_gpulease_signature"](hook["secret"], header, got.body)
    assert not ns["verify_gpulease_signature"](hook["secret"], header, got.body.replace(b"8", b"9"))

    clock.advance(minutes=90, seconds=17)
    facility.c.post(f"/api/v1/leases/{lease['id']}/end", headers=me)
    runtime.deliveries.run_once()
    [ended] = receiver.of_type("lease.ended")
    assert ended.json["data"]["final_cost"] == "15.05" and ended.json["data"]["currency"] == "USD"
    assert receiver.of_type("lease.started")[0].json["id"] != ended.json["id"]
    log = facility.c.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=me).json()
    assert [(d["event"], d["state"], d["attempts"], d["last_status"]) for d in log] == [
        ("lease.ended", "delivered", 1, 200),
        ("lease.started", "delivered", 1, 200),
    ]


def test_a_failed_delivery_is_retried_with_backoff_then_given_up(
    facility: Facility, runtime: Runtime, clock: Clock, receiver: Receiver
) -> None:
    _, me = _tenant(facility)
    hook = _hook(facility, me, receiver.url, ["*"])
    receiver.answers = [500, 503]
    r = facility.c.post(f"/api/v1/webhooks/{hook['id']}/test", headers=me)
    assert r.status_code == 202
    log_url = f"/api/v1/webhooks/{hook['id']}/deliveries"
    assert runtime.deliveries.run_once() == 1
    [d] = facility.c.get(log_url, headers=me).json()
    assert (d["state"], d["attempts"], d["last_status"], d["event"]) == ("pending", 1, 500, "webhook.test")
    assert d["next_attempt_at"] == (clock() + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    assert runtime.deliveries.run_once() == 0  # not due yet
    clock.advance(seconds=1)
    assert runtime.deliveries.run_once() == 1  # 503: the next wait doubles
    [d] = facility.c.get(log_url, headers=me).json()
    assert d["attempts"] == 2 and d["next_attempt_at"].endswith(":03Z")
    clock.advance(seconds=2)
    runtime.deliveries.run_once()
    [d] = facility.c.get(log_url, headers=me).json()
    assert (d["state"], d["attempts"], [h["status"] for h in d["history"]]) == ("delivered", 3, [500, 503, 200])
    assert "HTTP 500" in d["history"][0]["error"]
    # the same body on every attempt, with the attempt's number in a header
    assert len({x.body for x in receiver.received}) == 1
    assert [x.headers["x-gpulease-delivery-attempt"] for x in receiver.received] == ["1", "2", "3"]

    receiver.answers = [500] * 10
    facility.c.post(f"/api/v1/webhooks/{hook['id']}/test", headers=me)
    for _ in range(6):
        runtime.deliveries.run_once()
        clock.advance(seconds=10)
    d = facility.c.get(log_url, headers=me).json()[0]
    assert (d["state"], d["attempts"], d["next_attempt_at"]) == ("failed", 4, None)  # webhook_max_attempts


def test_the_outbox_survives_a_restart_and_a_worker_that_died_mid_send(
    facility: Facility, runtime: Runtime, settings: Settings, clock: Clock, receiver: Receiver
) -> None:
    _, me = _tenant(facility)
    _hook(facility, me, receiver.url, ["lease.started"])
    facility.lease(me, gpu_model=A100, gpu_count=1)
    facility.lease(me, gpu_model=A100, gpu_count=1)
    claimed = runtime.perform(notifications.claim_due, limit=1)  # this worker claims one, then "dies"
    assert len(claimed) == 1 and receiver.received == []
    later = Runtime(settings, clock=clock)  # the next server process on the same store
    try:
        assert later.deliveries.run_once() == 1  # the unclaimed one; the claimed one waits for its claim to lapse
        clock.advance(seconds=121)
        assert later.deliveries.run_once() == 1
    finally:
        later.close()
    assert sorted(r.json["data"]["lease_id"] for r in receiver.received) == sorted(
        x["id"] for x in facility.c.get("/api/v1/leases", headers=me).json()
    )


def test_the_worker_thread_delivers_as_soon_as_the_event_commits(
    facility: Facility, runtime: Runtime, receiver: Receiver
) -> None:
    _, me = _tenant(facility)
    _hook(facility, me, receiver.url, ["lease.started"])
    runtime.deliveries.start()  # polls once a minute here: only the after-commit wake-up is this quick
    wait_for(lambda: runtime.deliveries._thread is not None, 5, "the worker to start")
    facility.lease(me, gpu_model=A100, gpu_count=1)
    wait_for(lambda: len(receiver.received) == 1, 10, "the delivery")


def test_a_hold_is_told_without_any_reason(facility: Facility, runtime: Runtime, receiver: Receiver) -> None:
    cust, me = _tenant(facility)
    _hook(facility, me, receiver.url, ["*"])
    lease = facility.lease(me, gpu_model=A100, gpu_count=1)
    # the customer changes its declared name to a listed party's: screened again at once, its leases held
    r = facility.c.patch(
        f"/api/v1/customers/{cust['id']}", headers=me, json={"legal_name": "iFlytek Co., Ltd.", "country": "CN"}
    )
    assert r.status_code == 200 and r.json()["compliance_status"] == "on_hold"  # on hold, never why
    assert facility.c.get(f"/api/v1/leases/{lease['id']}", headers=me).json()["state"] == "suspended"
    runtime.deliveries.run_once()
    [held] = receiver.of_type("lease.on_hold")
    assert held.json["data"] == {
        "lease_id": lease["id"],
        "state": "suspended",
        "message": "This lease is on hold. Please contact support.",
    }
    told = b" ".join(x.body for x in receiver.received).lower()
    for word in (b"iflytek", b"screen", b"review", b"denied", b"list", b"entity", b"sanction", b"hit"):
        assert word not in told, word


def test_lease_queue_and_preemption_events(
    facility: Facility, runtime: Runtime, clock: Clock, receiver: Receiver
) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    me = facility.customer_key(cust["id"])
    _hook(facility, me, receiver.url, ["*"])
    spot = facility.lease(me, gpu_model=A100, gpu_count=4, plan="interruptible")
    short = facility.lease(me, gpu_model=A100, gpu_count=4, end=(clock() + timedelta(minutes=10)).isoformat())
    facility.c.post(f"/api/v1/leases/{spot['id']}/preempt", headers=facility.k.op)
    runtime.tick()
    runtime.tick()  # told once, not every tick
    queued = facility.lease(me, gpu_model=A100, gpu_count=8, start="asap", duration_s=3600, max_wait_s=7200)
    hopeless = facility.lease(me, gpu_model=A100, gpu_count=8, start="asap", duration_s=3600, max_wait_s=60)
    assert queued["state"] == hopeless["state"] == "queued"
    clock.advance(minutes=11)  # the short lease ends, the spot lease is gone: the queue's head starts
    runtime.tick()
    runtime.tick()
    facility.c.post(f"/api/v1/leases/{queued['id']}/end", headers=me)
    runtime.deliveries.run_once()
    got = [(r.json["type"], r.json["data"].get("lease_id")) for r in receiver.received]
    assert ("lease.preemption_notice", spot["id"]) in got
    assert ("lease.ending_soon", short["id"]) in got and got.count(("lease.ending_soon", short["id"])) == 1
    assert ("lease.ended", spot["id"]) in got and ("lease.ended", short["id"]) in got
    assert ("queue.started", queued["id"]) in got and ("lease.started", queued["id"]) in got
    assert ("queue.expired", hopeless["id"]) in got
    [notice] = receiver.of_type("lease.preemption_notice")
    assert notice.json["data"]["deadline"] is not None
    # the customer reads the same notifications without a webhook too
    seen = [(n["type"], n["lease_id"]) for n in facility.c.get("/api/v1/notifications", headers=me).json()]
    assert set(seen) == set(got)


def test_webhook_urls_and_events_are_checked(facility: Facility, fresh_runtime: Any) -> None:
    _, me = _tenant(facility)
    for url, events, says in (
        ("ftp://example.com/x", ["*"], "https://"),
        ("https://user:pw@example.com/x", ["*"], "user name or password"),
        ("https:///x", ["*"], "host"),
        ("https://example.com/x", [], "at least one event"),
        ("https://example.com/x", ["lease.exploded"], "unknown event 'lease.exploded'"),
    ):
        r = facility.c.post("/api/v1/webhooks", headers=me, json={"url": url, "events": events})
        assert r.status_code == 422 and says in r.json()["detail"], (url, r.text)
    r = facility.c.post("/api/v1/webhooks", headers=facility.k.co, json={"url": "https://example.com", "events": ["*"]})
    assert r.status_code == 403
    events = facility.c.get("/api/v1/webhook-events", headers=me).json()
    assert "lease.on_hold" in events and "budget.threshold" in events and "webhook.test" not in events
    # by default, deliveries go to public addresses only
    with fresh_runtime() as (rt, _clock, f):
        f.nodes(1)
        f.prices()
        c = f.customer()
        key = f.customer_key(c["id"])
        for url in ("http://127.0.0.1:9/x", "http://10.1.2.3/x", "http://169.254.169.254/latest", "http://[::1]/x"):
            r = f.c.post("/api/v1/webhooks", headers=key, json={"url": url, "events": ["*"]})
            assert r.status_code == 422 and "private or local address" in r.json()["detail"], url
        # a name is checked where it is used: one that resolves to this machine is refused at delivery
        hook = _hook(f, key, f"http://{socket.gethostname()}:9/x", ["*"])
        f.c.post(f"/api/v1/webhooks/{hook['id']}/test", headers=key)
        rt.deliveries.run_once()
        [d] = f.c.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=key).json()
        assert d["state"] == "pending" and "private or local address" in d["last_error"]


def test_webhooks_belong_to_their_tenant_and_deleting_one_stops_its_deliveries(
    facility: Facility, runtime: Runtime, receiver: Receiver
) -> None:
    cust, me = _tenant(facility)
    other = facility.customer_key(facility.customer("Beta Robotics Inc.")["id"])
    hook = _hook(facility, me, receiver.url, ["lease.started"])
    for method, path in (
        ("GET", f"/api/v1/webhooks/{hook['id']}"),
        ("GET", f"/api/v1/webhooks/{hook['id']}/deliveries"),
        ("POST", f"/api/v1/webhooks/{hook['id']}/test"),
        ("DELETE", f"/api/v1/webhooks/{hook['id']}"),
    ):
        r = facility.c.request(method, path, headers=other)
        assert r.status_code == 404 and r.json()["detail"] == f"no webhook with id {hook['id']}", path
    assert facility.c.get("/api/v1/webhooks", headers=other).json() == []
    assert [h["id"] for h in facility.c.get("/api/v1/webhooks", headers=facility.k.op).json()] == [hook["id"]]
    # an operator adds one for a customer
    r = facility.c.post(
        "/api/v1/webhooks",
        headers=facility.k.op,
        json={"url": receiver.url, "events": ["*"], "customer_id": cust["id"]},
    )
    assert r.status_code == 201 and r.json()["customer_id"] == cust["id"]
    facility.lease(me, gpu_model=A100, gpu_count=1)  # queued for both
    assert facility.c.delete(f"/api/v1/webhooks/{hook['id']}", headers=me).status_code == 204
    assert runtime.deliveries.run_once() == 1  # the deleted one's delivery is dropped
    assert facility.c.get(f"/api/v1/webhooks/{hook['id']}", headers=me).status_code == 404


def test_a_webhook_added_or_deleted_after_events_were_told_changes_who_gets_the_next_ones(
    facility: Facility, runtime: Runtime, receiver: Receiver
) -> None:
    """The server keeps who listens in memory (notifications.WebhookDirectory): a lease event told while nobody
    listened must not leave it believing so once a webhook is added, nor keep delivering after a delete."""
    _cust, me = _tenant(facility)
    body: dict[str, Any] = {"gpu_model": A100, "gpu_count": 1, "plan": "on_demand", "duration_s": 3600}
    first = facility.lease(me, **body)  # told to nobody: the directory now knows this customer has no webhook
    hook = _hook(facility, me, receiver.url, ["lease.started", "lease.ended"])
    second = facility.lease(me, **body)
    facility.c.post(f"/api/v1/leases/{second['id']}/end", headers=me)
    runtime.deliveries.run_once()
    got = [(r.json["type"], r.json["data"]["lease_id"]) for r in receiver.received]
    assert sorted(got) == [("lease.ended", second["id"]), ("lease.started", second["id"])]  # in either order
    assert all(lid != first["id"] for _t, lid in got)
    assert facility.c.delete(f"/api/v1/webhooks/{hook['id']}", headers=me).status_code == 204
    third = facility.lease(me, **body)
    runtime.deliveries.run_once()
    assert [r.json["data"]["lease_id"] for r in receiver.received].count(third["id"]) == 0


def test_another_server_process_hears_of_a_new_webhook(
    facility: Facility, runtime: Runtime, settings: Settings, clock: Clock, receiver: Receiver
) -> None:
    """Two processes on one PostgreSQL: a webhook added through one gets the events the other tells."""
    if not runtime.store.is_postgres:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite runs one server process")
    from gpulease.services import leases
    from gpulease.services.context import SYSTEM

    cust, me = _tenant(facility)
    other = Runtime(settings, clock=clock)
    try:
        other.listen_for_calendar_changes()
        req = leases.LeaseRequest(gpu_model=A100, gpu_count=1, plan="on_demand", customer_id=cust["id"])
        other.perform(leases.create_lease, actor=SYSTEM, request=req)  # the other's directory: no webhook
        assert other.webhooks.of_known(cust["id"]) == []
        _hook(facility, me, receiver.url, ["lease.started"])  # through this process
        wait_for(lambda: other.webhooks.of_known(cust["id"]) is None, 5, "the other process to forget what it knew")
        booked = other.perform(leases.create_lease, actor=SYSTEM, request=req)
        runtime.deliveries.run_once()
        assert [(r.json["type"], r.json["data"]["lease_id"]) for r in receiver.received] == [
            ("lease.started", booked.lease.id)
        ]
    finally:
        other.close()
