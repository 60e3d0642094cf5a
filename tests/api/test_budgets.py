"""Budgets and quotas through the API: operators set them, customers see them; a booking past the GPU quota
answers 409 and one past the monthly spend limit 402, also when many race; the clock alerts at 50/80/100 % and
ends running on-demand and interruptible leases with notice once the limit is reached."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from gpulease.runtime import Runtime
from gpulease.services import budgets
from gpulease.store.models import Alert, LeaseEvent
from tests.conftest import Clock, Facility, needs_bwrap, wait_for

A100 = "A100-80GB"


def _limits(f: Facility, customer_id: int, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
    body.setdefault("monthly_spend_limit", None)
    r: httpx.Response = f.c.put(f"/api/v1/customers/{customer_id}/limits", headers=headers or f.k.op, json=body)
    return r


def test_operators_set_limits_and_customers_see_them(facility: Facility) -> None:
    cust = facility.customer()
    me = facility.customer_key(cust["id"])
    r = _limits(facility, cust["id"], monthly_spend_limit="2500.5", gpu_quota={"a100-80gb": 16})
    assert r.status_code == 200, r.text
    assert r.json() == {"customer_id": cust["id"], "monthly_spend_limit": "2500.50", "gpu_quota": {A100: 16}}
    assert facility.c.get(f"/api/v1/customers/{cust['id']}/limits", headers=me).json()["gpu_quota"] == {A100: 16}
    spend = facility.c.get(f"/api/v1/customers/{cust['id']}/spend", headers=me).json()
    assert spend["limit"] == "2500.50" and spend["percent_of_limit"] == "0.0"
    for who in (me, facility.k.co):
        r = _limits(facility, cust["id"], who, monthly_spend_limit="1")
        assert r.status_code == 403 and "operator role" in r.json()["detail"]
    for bad, says in (({"gpu_quota": {"Z100": 1}}, "Z100"), ({"monthly_spend_limit": "-1"}, "from 0")):
        r = _limits(facility, cust["id"], **bad)
        assert r.status_code == 422 and says in r.json()["detail"], r.text
    r = _limits(facility, cust["id"], monthly_spend_limit="0.001")
    assert r.status_code == 422 and "two decimals" in r.json()["detail"]


def test_a_booking_over_the_gpu_quota_is_refused_with_409_naming_it(facility: Facility, clock: Clock) -> None:
    facility.nodes(3)
    facility.prices()
    cust = facility.customer()
    me = facility.customer_key(cust["id"])
    assert _limits(facility, cust["id"], gpu_quota={A100: 8}).status_code == 200
    first = facility.lease(me, gpu_model=A100, gpu_count=6)
    r = facility.c.post("/api/v1/leases", headers=me, json={"gpu_model": A100, "gpu_count": 3})
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    p = r.json()
    assert p["type"].endswith("/gpu-quota") and p["limit"] == "gpu_quota" and p["quota"] == 8 and p["held"] == 6
    assert "quota is 8 A100-80GB GPUs at a time" in p["detail"]
    # the quota counts GPUs held at once: a window after the running lease ends fits
    facility.c.post(f"/api/v1/leases/{first['id']}/end", headers=me)
    t = clock() + timedelta(days=1)
    facility.lease(
        me, gpu_model=A100, gpu_count=8, plan="reserved", start=t.isoformat(), end=(t + timedelta(hours=2)).isoformat()
    )
    t2 = t + timedelta(hours=2)
    facility.lease(
        me,
        gpu_model=A100,
        gpu_count=8,
        plan="reserved",
        start=t2.isoformat(),
        end=(t2 + timedelta(hours=2)).isoformat(),
    )
    r = facility.c.post(
        "/api/v1/leases",
        headers=me,
        json={
            "gpu_model": A100,
            "gpu_count": 1,
            "plan": "reserved",
            "start": (t + timedelta(hours=1)).isoformat(),
            "end": (t + timedelta(hours=3)).isoformat(),
        },
    )
    assert r.status_code == 409 and r.json()["held"] == 8
    # a quota of 0 keeps the customer off a model
    facility.prices("H100-80GB")
    _limits(facility, cust["id"], gpu_quota={A100: 8, "H100-80GB": 0})
    r = facility.c.post("/api/v1/leases", headers=me, json={"gpu_model": "H100-80GB", "gpu_count": 1})
    assert r.status_code == 409 and "quota is 0 H100-80GB" in r.json()["detail"]


def test_a_booking_past_the_monthly_spend_limit_is_refused_with_402_naming_it(facility: Facility, clock: Clock) -> None:
    facility.nodes(2)
    facility.prices()
    cust = facility.customer()
    me = facility.customer_key(cust["id"])
    _limits(facility, cust["id"], monthly_spend_limit="100")
    t = clock() + timedelta(days=2)

    def reserve(hours: int, at: Any = t) -> httpx.Response:
        end = at + timedelta(hours=hours)
        body = {"gpu_model": A100, "gpu_count": 8, "plan": "reserved", "start": at.isoformat(), "end": end.isoformat()}
        r: httpx.Response = facility.c.post("/api/v1/leases", headers=me, json=body)
        return r

    assert reserve(10).status_code == 201  # 80.00 of 100.00 committed
    r = reserve(3, t + timedelta(hours=10))  # 24.00 more: 104.00
    assert r.status_code == 402 and r.headers["content-type"] == "application/problem+json"
    p = r.json()
    assert p["type"].endswith("/spend-limit") and p["limit"] == "monthly_spend_limit"
    assert (p["period"], p["projected"], p["monthly_spend_limit"]) == ("2026-11", "104.00", "100.00")
    assert "past the customer's monthly spend limit of 100.00 USD" in p["detail"]
    assert reserve(2, t + timedelta(hours=10)).status_code == 201  # 96.00: fits
    # a window in December counts against December's limit
    assert reserve(12, clock() + timedelta(days=30)).status_code == 201
    # an open-ended lease commits nothing ahead: admitted while the month is under its limit
    od = facility.lease(me, gpu_model=A100, gpu_count=1)
    # an extension is a booking of the time it adds
    rs = facility.c.get("/api/v1/leases", headers=me).json()[0]
    r = facility.c.post(
        f"/api/v1/leases/{rs['id']}/extend", headers=me, json={"end": (t + timedelta(hours=11)).isoformat()}
    )
    assert r.status_code == 402 and r.json()["limit"] == "monthly_spend_limit"
    facility.c.post(f"/api/v1/leases/{od['id']}/end", headers=me)


@pytest.mark.parametrize("limit", ["quota", "spend"])
def test_many_parallel_bookings_never_pass_a_limit_together(
    facility: Facility, runtime: Runtime, live_server: str, limit: str
) -> None:
    """30 bookings at once, each within the limit alone, together far past it: the limit holds."""
    facility.nodes(4)  # 32 GPUs: capacity is not what stops them
    facility.prices()
    cust = facility.customer()
    me = facility.customer_key(cust["id"])
    if limit == "quota":
        _limits(facility, cust["id"], gpu_quota={A100: 8})
        body: dict[str, Any] = {"gpu_model": A100, "gpu_count": 1}
        allowed, refused_status = 8, 409
    else:
        _limits(facility, cust["id"], monthly_spend_limit="50.00")
        t = runtime.clock() + timedelta(days=1)
        body = {"gpu_model": A100, "gpu_count": 1, "plan": "reserved", "start": t.isoformat()}
        body["end"] = (t + timedelta(hours=10)).isoformat()  # 10.00 each
        allowed, refused_status = 5, 402
    n = 30
    barrier = threading.Barrier(n)
    statuses: list[int] = []
    lock = threading.Lock()

    def book() -> None:
        with httpx.Client(base_url=live_server, headers=me, timeout=120) as c:
            barrier.wait()
            r = c.post("/api/v1/leases", json=body)
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=book) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=180)
    assert sorted(set(statuses)) == [201, refused_status], statuses
    assert statuses.count(201) == allowed
    mine = facility.c.get("/api/v1/leases", headers=me).json()
    assert len(mine) == allowed


def _alerts(runtime: Runtime) -> list[int]:
    with runtime.store.transaction() as s:
        return [a.data["percent"] for a in s.query(Alert).filter(Alert.kind == "spend_threshold").order_by(Alert.id)]


def test_the_clock_alerts_at_50_80_100_percent_and_ends_running_pay_as_you_go_leases_with_notice(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    facility.nodes(2)
    facility.prices()
    cust = facility.customer()
    me = facility.customer_key(cust["id"])
    _limits(facility, cust["id"], monthly_spend_limit="25.00")
    od = facility.lease(me, gpu_model=A100, gpu_count=8)  # 10.00 an hour
    rs = facility.lease(
        me, gpu_model=A100, gpu_count=1, plan="reserved", end=(clock() + timedelta(hours=8)).isoformat()
    )
    # 8.00 committed for the reserved window; the open-ended lease accrues
    clock.advance(minutes=30)
    runtime.tick()
    assert _alerts(runtime) == []
    clock.advance(minutes=45)  # 12.50 + 1.25 = 13.75: 55 %
    runtime.tick()
    runtime.tick()
    assert _alerts(runtime) == [50]
    clock.advance(minutes=30)  # 17.50 + 1.75 = 19.25: 77 %
    runtime.tick()
    assert _alerts(runtime) == [50]
    clock.advance(minutes=10)  # 19.17 + 1.92 = 21.08: 84 %
    runtime.tick()
    assert _alerts(runtime) == [50, 80]
    clock.advance(minutes=22)  # 22.83 + 2.28 = 25.12: the limit
    runtime.tick()
    assert _alerts(runtime) == [50, 80, 100]
    got = facility.c.get(f"/api/v1/leases/{od['id']}", headers=me).json()
    deadline = clock() + timedelta(seconds=runtime.settings.spend_limit_notice_s)
    assert got["state"] == "active" and got["remaining_s"] == 300
    assert got["end"] == deadline.isoformat().replace("+00:00", "Z")
    with runtime.store.transaction() as s:
        [ev] = (
            s.query(LeaseEvent).filter(LeaseEvent.lease_id == od["id"], LeaseEvent.reason.like("%spend limit%")).all()
        )
    assert "ends at" in (ev.reason or "")
    # the customer was told: thresholds and the end to come
    told = [
        (n["type"], n["data"].get("percent") or n["data"].get("cause"))
        for n in facility.c.get("/api/v1/notifications", headers=me).json()
    ]
    assert ("budget.threshold", 100) in told and ("lease.ending_soon", "spend_limit") in told
    # a new open-ended lease is refused now
    r = facility.c.post("/api/v1/leases", headers=me, json={"gpu_model": A100, "gpu_count": 1})
    assert r.status_code == 402
    runtime.tick()  # nothing new: the notice is given once
    assert _alerts(runtime) == [50, 80, 100]
    clock.advance(seconds=301)
    runtime.tick()
    assert facility.c.get(f"/api/v1/leases/{od['id']}", headers=me).json()["state"] == "ended"
    assert facility.c.get(f"/api/v1/leases/{rs['id']}", headers=me).json()["state"] == "active"  # paid as booked
    ops = facility.c.get("/api/v1/alerts", headers=facility.k.op).json()
    assert any("100% of its monthly limit of 25.00" in a["message"] for a in ops)
    # a lease ended at the limit is billed as its event log says
    check = facility.c.get("/api/v1/billing/verify", headers=facility.k.op).json()
    assert check == {"ok": True, "problems": []}


@needs_bwrap
def test_at_the_limit_a_running_jobs_processes_get_the_notice(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    me = facility.customer_key(cust["id"])
    _limits(facility, cust["id"], monthly_spend_limit="1.00")
    lease = facility.lease(me, gpu_model=A100, gpu_count=1)  # 1.25 an hour
    script = "trap 'echo notice $(cat $GPULEASE_NOTICE_FILE)' USR1; echo ready; while true; do sleep 0.1; done"
    run = facility.c.post(f"/api/v1/leases/{lease['id']}/runs", headers=me, json={"command": ["sh", "-c", script]})
    logs = f"/api/v1/leases/{lease['id']}/runs/{run.json()['id']}/logs"

    def log() -> str:
        return str(facility.c.get(logs, headers=me, params={"follow": "false"}).text)

    wait_for(lambda: "ready" in log(), 10, "the run to start")
    clock.advance(minutes=50)  # 1.04: the limit
    runtime.tick()
    deadline = clock() + timedelta(seconds=runtime.settings.spend_limit_notice_s)
    wait_for(lambda: "notice" in log(), 10, "the run to hear the notice")
    assert f"notice {deadline.isoformat()}" in log()


def test_the_budget_watch_costs_the_same_few_queries_however_many_customers_have_a_limit(
    facility: Facility, runtime: Runtime
) -> None:
    facility.nodes(4)
    facility.prices()

    def statements() -> int:
        seen: list[str] = []

        def count(*args: Any) -> None:
            seen.append(args[2])

        event.listen(runtime.store.engine, "before_cursor_execute", count)
        try:
            runtime.perform(budgets.watch)
        finally:
            event.remove(runtime.store.engine, "before_cursor_execute", count)
        return len([s for s in seen if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "BEGIN"))])

    def add_customers(n: int) -> None:
        for _ in range(n):
            c = facility.customer()
            _limits(facility, c["id"], monthly_spend_limit="1000")
            facility.lease(customer_id=c["id"], gpu_model=A100, gpu_count=1)

    add_customers(2)
    few = statements()
    add_customers(10)
    assert statements() == few <= 5
