"""The rental flow through the API alone: capacity, quotes, leases, extend/end/cancel, preemption, invoices."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from tests.conftest import Clock, Facility


def iso(t: datetime) -> str:
    return t.isoformat()


def test_node_creation_makes_site_and_cluster(facility: Facility) -> None:
    [n] = facility.nodes(1, cluster="a100-a", site="fra1")
    assert n["site"] == "fra1" and n["cluster"] == "a100-a" and n["gpu_count"] == 8 and n["state"] == "available"
    r = facility.c.get(f"/api/v1/nodes/{n['id']}", headers=facility.k.op)
    assert r.json()["name"] == n["name"]


def test_on_demand_and_reserved_end_to_end_invoice_is_exact(facility: Facility, clock: Clock) -> None:
    facility.nodes(2)
    facility.prices()
    cust = facility.customer()
    assert cust["compliance_status"] == "cleared"
    t0 = clock()

    # quote without booking
    q = facility.c.post(
        "/api/v1/quotes",
        headers=facility.k.op,
        json={
            "customer_id": cust["id"],
            "gpu_model": "A100-80GB",
            "gpu_count": 8,
            "plan": "reserved",
            "start": iso(t0 + timedelta(days=1)),
            "end": iso(t0 + timedelta(days=1, hours=10)),
        },
    )
    assert q.status_code == 200 and q.json()["estimated_total"] == "80.00"

    od = facility.lease(customer_id=cust["id"], gpu_model="A100-80GB", gpu_count=8, plan="on_demand", start="now")
    assert od["state"] == "active" and len(od["gpus"]) == 8 and len({g["node"] for g in od["gpus"]}) == 1
    assert od["quote"]["rate"] == "1.25"

    rs = facility.lease(
        customer_id=cust["id"],
        gpu_model="A100-80GB",
        gpu_count=4,
        plan="reserved",
        start=iso(t0 + timedelta(hours=2)),
        end=iso(t0 + timedelta(hours=5)),
    )
    assert rs["state"] == "scheduled"
    # a later price change does not touch the booked leases
    facility.prices(on_demand="9.99", reserved="8.88")

    # extend the reserved window by an hour: the GPUs are free
    ext = facility.c.post(
        f"/api/v1/leases/{rs['id']}/extend", headers=facility.k.op, json={"end": iso(t0 + timedelta(hours=6))}
    )
    assert ext.status_code == 200, ext.text
    assert ext.json()["quote"]["rate"] == "1.00" and ext.json()["quote"]["estimated_total"] == "16.00"

    clock.advance(hours=1, minutes=30, seconds=17)  # on-demand runs 1:30:17
    ended = facility.c.post(f"/api/v1/leases/{od['id']}/end", headers=facility.k.op)
    assert ended.status_code == 200 and ended.json()["state"] == "ended"

    clock.advance(hours=1)
    facility.rt.tick()
    assert facility.c.get(f"/api/v1/leases/{rs['id']}", headers=facility.k.op).json()["state"] == "active"
    clock.advance(hours=4)
    facility.rt.tick()
    assert facility.c.get(f"/api/v1/leases/{rs['id']}", headers=facility.k.op).json()["state"] == "ended"

    inv = facility.c.get(
        f"/api/v1/customers/{cust['id']}/invoices", params={"period": "2026-11"}, headers=facility.k.op
    ).json()
    # on-demand: 8 GPUs x 5417 s x $1.25/3600 = 15.0472... -> 15.05 ; reserved: 4 x 4 h x $1.00 = 16.00
    amounts = sorted(Decimal(ln["amount"]) for ln in inv["lines"])
    assert amounts == [Decimal("15.05"), Decimal("16.00")]
    assert inv["total"] == "31.05" and inv["currency"] == "USD"
    csv_text = facility.c.get(f"/api/v1/customers/{cust['id']}/usage.csv", headers=facility.k.op).text
    assert csv_text.splitlines()[0].startswith("lease_id,period,kind") and len(csv_text.splitlines()) == 3
    assert_usage_reproducible(facility)


def test_interruptible_is_preempted_by_reserved_and_billed_to_preemption(facility: Facility, clock: Clock) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    t0 = clock()
    spot = facility.lease(customer_id=cust["id"], gpu_model="A100-80GB", gpu_count=8, plan="interruptible")
    assert spot["state"] == "active"
    clock.advance(minutes=10)
    start = t0 + timedelta(minutes=30)
    rsv = facility.lease(
        customer_id=cust["id"],
        gpu_model="A100-80GB",
        gpu_count=8,
        plan="reserved",
        start=iso(start),
        end=iso(start + timedelta(hours=1)),
    )
    assert rsv["state"] == "scheduled" and rsv["preempted"] == [spot["id"]]
    s = facility.c.get(f"/api/v1/leases/{spot['id']}", headers=facility.k.op).json()
    assert s["state"] == "active" and s["preempt_at"].startswith(iso(start)[:19])
    clock.advance(minutes=20)  # the reserved start
    facility.rt.tick()
    assert facility.c.get(f"/api/v1/leases/{spot['id']}", headers=facility.k.op).json()["state"] == "preempted"
    assert facility.c.get(f"/api/v1/leases/{rsv['id']}", headers=facility.k.op).json()["state"] == "active"
    inv = facility.c.get(
        f"/api/v1/customers/{cust['id']}/invoices", params={"period": "2026-11"}, headers=facility.k.op
    ).json()
    [line] = inv["lines"]
    assert line["lease_id"] == spot["id"] and line["seconds"] == 30 * 60
    assert line["amount"] == "2.00"  # 8 GPUs x 0.5 h x $0.50
    assert_usage_reproducible(facility)


def test_preemption_notice_pushes_an_immediate_start(facility: Facility, clock: Clock) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    spot = facility.lease(customer_id=cust["id"], gpu_model="A100-80GB", gpu_count=8, plan="interruptible")
    od = facility.lease(customer_id=cust["id"], gpu_model="A100-80GB", gpu_count=4, plan="on_demand", start="now")
    # the interruptible lease gets its 120 s notice; the on-demand lease starts when it expires
    assert od["state"] == "scheduled" and od["preempted"] == [spot["id"]]
    assert od["start"].startswith(iso(clock() + timedelta(seconds=120))[:19])


def test_cannot_place_says_why_and_when(facility: Facility, clock: Clock) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    t0 = clock()
    facility.lease(
        customer_id=cust["id"],
        gpu_model="A100-80GB",
        gpu_count=8,
        plan="reserved",
        start=iso(t0),
        end=iso(t0 + timedelta(hours=3)),
    )
    r = facility.c.post(
        "/api/v1/leases",
        headers=facility.k.op,
        json={
            "customer_id": cust["id"],
            "gpu_model": "A100-80GB",
            "gpu_count": 2,
            "plan": "reserved",
            "start": iso(t0 + timedelta(hours=1)),
            "end": iso(t0 + timedelta(hours=2)),
        },
    )
    assert r.status_code == 409
    p = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert p["type"].endswith("/no-capacity") and p["earliest_start"].startswith(iso(t0 + timedelta(hours=3))[:19])
    a = facility.c.get(
        "/api/v1/availability",
        headers=facility.k.op,
        params={
            "gpu_model": "A100-80GB",
            "gpu_count": 8,
            "start": iso(t0 + timedelta(hours=1)),
            "end": iso(t0 + timedelta(hours=2)),
        },
    ).json()
    assert a["available"] is False and a["earliest_start"].startswith(iso(t0 + timedelta(hours=3))[:19])
    assert a["quotes"]["on_demand"]["estimated_total"] == "10.00"
    too_big = facility.c.post(
        "/api/v1/leases",
        headers=facility.k.op,
        json={"customer_id": cust["id"], "gpu_model": "A100-80GB", "gpu_count": 16, "plan": "on_demand"},
    )
    assert too_big.status_code == 409 and "16" in too_big.json()["detail"]


def test_bad_requests_are_clear_problems(facility: Facility, clock: Clock) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    t0 = clock()
    base = {"customer_id": cust["id"], "gpu_model": "A100-80GB", "gpu_count": 1, "plan": "reserved"}
    cases = [
        ({**base, "gpu_model": "B300", "start": "now"}, 422, "unknown GPU model"),
        ({**base, "start": iso(t0 - timedelta(days=1)), "end": iso(t0)}, 422, "past"),
        ({**base, "start": iso(t0 + timedelta(hours=2)), "end": iso(t0 + timedelta(hours=1))}, 422, "after"),
        ({**base, "gpu_count": 65, "start": "now"}, 422, "gpu_count"),
        ({**base, "start": "now"}, 422, "needs an end"),
        ({**base, "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00"}, 422, "timezone"),
    ]
    for body, status, words in cases:
        r = facility.c.post("/api/v1/leases", headers=facility.k.op, json=body)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert words.lower() in r.json()["detail"].lower(), r.json()
    r = facility.c.get("/api/v1/leases/9999", headers=facility.k.op)
    assert r.status_code == 404 and r.json()["detail"] == "no lease with id 9999"


def test_auth_and_tenancy(facility: Facility) -> None:
    facility.nodes(1)
    facility.prices()
    a, b = facility.customer("Acme Robotics Inc."), facility.customer("Globex Analytics LLC")
    ka, kb = facility.customer_key(a["id"]), facility.customer_key(b["id"])
    assert facility.c.get("/api/v1/leases").status_code == 401
    assert facility.c.get("/api/v1/leases", headers={"Authorization": "Bearer nope"}).status_code == 401
    la = facility.lease(headers=ka, gpu_model="A100-80GB", gpu_count=1, plan="on_demand")
    assert la["customer_id"] == a["id"]
    assert facility.c.get(f"/api/v1/leases/{la['id']}", headers=kb).status_code == 404
    assert facility.c.get("/api/v1/leases", headers=kb).json() == []
    assert facility.c.post(f"/api/v1/leases/{la['id']}/end", headers=kb).status_code == 404
    # a customer cannot book for another tenant, nor add capacity
    assert (
        facility.c.post(
            "/api/v1/leases", headers=kb, json={"customer_id": a["id"], "gpu_model": "A100-80GB", "gpu_count": 1}
        ).status_code
        == 404
    )
    assert (
        facility.c.post(
            "/api/v1/nodes",
            headers=ka,
            json={"site": "x", "cluster": "y", "name": "z", "gpu_model": "A100-80GB", "gpu_count": 8},
        ).status_code
        == 403
    )
    inv = facility.c.get(f"/api/v1/customers/{a['id']}/invoices", params={"period": "2026-11"}, headers=kb)
    assert inv.status_code == 404


def test_draining_keeps_running_leases_and_takes_no_new_ones(facility: Facility) -> None:
    [n1, n2] = facility.nodes(2)
    facility.prices()
    cust = facility.customer()
    first = facility.lease(customer_id=cust["id"], gpu_model="A100-80GB", gpu_count=2, plan="on_demand")
    node = next(n for n in (n1, n2) if n["name"] == first["gpus"][0]["node"])
    other = n2 if node is n1 else n1
    r = facility.c.post(f"/api/v1/nodes/{node['id']}/drain", headers=facility.k.op)
    assert r.json()["state"] == "draining"
    assert facility.c.get(f"/api/v1/leases/{first['id']}", headers=facility.k.op).json()["state"] == "active"
    second = facility.lease(customer_id=cust["id"], gpu_model="A100-80GB", gpu_count=2, plan="on_demand")
    assert {g["node"] for g in second["gpus"]} == {other["name"]}
    assert facility.c.delete(f"/api/v1/nodes/{node['id']}", headers=facility.k.op).status_code == 409


def test_best_fit_keeps_whole_nodes_free(facility: Facility) -> None:
    facility.nodes(2)
    facility.prices()
    cust = facility.customer()
    a = facility.lease(customer_id=cust["id"], gpu_model="A100-80GB", gpu_count=3, plan="on_demand")
    b = facility.lease(customer_id=cust["id"], gpu_model="A100-80GB", gpu_count=2, plan="on_demand")
    assert a["gpus"][0]["node"] == b["gpus"][0]["node"]  # packed on the partly used node
    c = facility.lease(customer_id=cust["id"], gpu_model="A100-80GB", gpu_count=8, plan="on_demand")
    assert c["state"] == "active"


def test_large_lease_takes_whole_nodes_in_one_cluster(facility: Facility) -> None:
    facility.nodes(1, cluster="small")
    facility.nodes(2, cluster="big")
    facility.prices()
    cust = facility.customer()
    big = facility.lease(customer_id=cust["id"], gpu_model="A100-80GB", gpu_count=16, plan="on_demand")
    assert {g["node"].split("-")[0] for g in big["gpus"]} == {"big"} and len(big["gpus"]) == 16


def test_cancel_reserved_fee_and_free_window(facility: Facility, clock: Clock) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    t0 = clock()
    early = facility.lease(
        customer_id=cust["id"],
        gpu_model="A100-80GB",
        gpu_count=8,
        plan="reserved",
        start=iso(t0 + timedelta(days=3)),
        end=iso(t0 + timedelta(days=3, hours=2)),
    )
    late = facility.lease(
        customer_id=cust["id"],
        gpu_model="A100-80GB",
        gpu_count=8,
        plan="reserved",
        start=iso(t0 + timedelta(hours=5)),
        end=iso(t0 + timedelta(hours=7)),
    )
    free = facility.c.post(f"/api/v1/leases/{early['id']}/cancel", headers=facility.k.op).json()
    assert free["state"] == "cancelled" and free["state_reason"] == "cancelled by operator"
    paid = facility.c.post(f"/api/v1/leases/{late['id']}/cancel", headers=facility.k.op).json()
    # The fee is said where the cancellation is seen: the answer, the lease's events, the customer's notification.
    said = (
        "cancelled by operator; late-cancellation fee 8.00 USD (50% of the window, cancelled less than 24 h before "
        "its start)"
    )
    assert paid["state"] == "cancelled" and paid["state_reason"] == said and paid["final_cost"] == "8.00"
    events = facility.c.get(f"/api/v1/leases/{late['id']}/events", headers=facility.k.op).json()
    assert events[-1]["reason"] == said
    told = {
        n["lease_id"]: n["data"]
        for n in facility.c.get("/api/v1/notifications", headers=facility.customer_key(cust["id"])).json()
        if n["type"] == "lease.cancelled"
    }
    assert (told[early["id"]]["final_cost"], told[late["id"]]["final_cost"]) == ("0.00", "8.00")
    assert told[late["id"]]["currency"] == "USD" and "reason" not in told[late["id"]]
    inv = facility.c.get(
        f"/api/v1/customers/{cust['id']}/invoices", params={"period": "2026-11"}, headers=facility.k.op
    ).json()
    # only the late one pays: 50% of 8 GPUs x 2 h x $1.00
    assert [(ln["lease_id"], ln["kind"], ln["amount"]) for ln in inv["lines"]] == [
        (late["id"], "cancellation_fee", "8.00")
    ]
    again = facility.lease(
        customer_id=cust["id"],
        gpu_model="A100-80GB",
        gpu_count=8,
        plan="reserved",
        start=iso(t0 + timedelta(hours=5)),
        end=iso(t0 + timedelta(hours=7)),
    )
    assert again["state"] == "scheduled"


def test_extend_refused_when_gpus_are_taken(facility: Facility, clock: Clock) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    t0 = clock()
    a = facility.lease(
        customer_id=cust["id"],
        gpu_model="A100-80GB",
        gpu_count=8,
        plan="reserved",
        start=iso(t0),
        end=iso(t0 + timedelta(hours=1)),
    )
    facility.lease(
        customer_id=cust["id"],
        gpu_model="A100-80GB",
        gpu_count=8,
        plan="reserved",
        start=iso(t0 + timedelta(hours=1)),
        end=iso(t0 + timedelta(hours=2)),
    )
    r = facility.c.post(
        f"/api/v1/leases/{a['id']}/extend",
        headers=facility.k.op,
        json={"end": iso(t0 + timedelta(hours=1, minutes=30))},
    )
    assert r.status_code == 409 and "cannot be extended" in r.json()["detail"]


def test_lease_events_record_every_transition(facility: Facility, clock: Clock) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    lease = facility.lease(customer_id=cust["id"], gpu_model="A100-80GB", gpu_count=1, plan="on_demand")
    clock.advance(seconds=42)
    facility.c.post(f"/api/v1/leases/{lease['id']}/end", headers=facility.k.op)
    ev = facility.c.get(f"/api/v1/leases/{lease['id']}/events", headers=facility.k.op).json()
    assert [e["to_state"] for e in ev] == ["quoted", "pending_compliance", "scheduled", "active", "ending", "ended"]
    assert ev[-1]["at"] > ev[0]["at"]


def test_openapi_and_metrics(facility: Facility) -> None:
    spec = facility.c.get("/openapi.json").json()
    for path in (
        "/api/v1/leases",
        "/api/v1/nodes",
        "/api/v1/availability",
        "/api/v1/screen",
        "/api/v1/customers/{customer_id}/invoices",
        "/api/v1/leases/{lease_id}/runs",
    ):
        assert path in spec["paths"], path
    facility.nodes(1)
    m = facility.c.get("/metrics", headers=facility.k.op).text
    assert 'gpulease_gpus{gpu_model="A100-80GB",node_state="available"} 8.0' in m
    assert "gpulease_http_requests_total" in m


def test_every_response_carries_a_request_id_and_logs_it(facility: Facility, caplog) -> None:  # type: ignore[no-untyped-def]
    import json
    import logging

    from gpulease.observability import JsonFormatter

    with caplog.at_level(logging.INFO, logger="gpulease.access"):
        r = facility.c.get("/api/v1/gpu-models", headers={**facility.k.op, "X-Request-ID": "trace-123"})
    assert r.headers["X-Request-ID"] == "trace-123"
    [rec] = [r for r in caplog.records if r.name == "gpulease.access"]
    line = json.loads(JsonFormatter().format(rec))
    assert line["status"] == 200 and line["message"].startswith("GET /api/v1/gpu-models 200")
    assert line["request_id"] == "trace-123"
    assert facility.c.get("/healthz").headers["X-Request-ID"]


def assert_usage_reproducible(f: Facility) -> None:
    r = f.c.get("/api/v1/billing/verify", headers=f.k.op).json()
    assert r == {"ok": True, "problems": []}, r


def test_month_end_checkpoint_makes_each_invoice_final(facility: Facility, clock: Clock) -> None:
    from datetime import UTC, datetime

    facility.nodes(1)
    facility.prices()
    cid = facility.customer()["id"]
    clock.now = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
    lease = facility.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=8)
    clock.now = datetime(2026, 12, 1, 0, 0, 7, tzinfo=UTC)
    facility.rt.tick()  # the first tick of December bills November's 2 hours
    nov = facility.c.get(f"/api/v1/customers/{cid}/invoices", params={"period": "2026-11"}, headers=facility.k.op)
    assert nov.json()["total"] == "20.00"
    assert_usage_reproducible(facility)
    clock.now = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    facility.c.post(f"/api/v1/leases/{lease['id']}/end", headers=facility.k.op)
    dec = facility.c.get(f"/api/v1/customers/{cid}/invoices", params={"period": "2026-12"}, headers=facility.k.op)
    assert dec.json()["total"] == "30.00"
    nov2 = facility.c.get(f"/api/v1/customers/{cid}/invoices", params={"period": "2026-11"}, headers=facility.k.op)
    assert nov2.json() == nov.json()  # November did not change after it closed
    assert_usage_reproducible(facility)


def test_a_tampered_usage_record_is_found(facility: Facility, clock: Clock) -> None:
    from sqlalchemy import text

    facility.nodes(1)
    facility.prices()
    cid = facility.customer()["id"]
    lease = facility.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=8)
    clock.advance(hours=1)
    facility.c.post(f"/api/v1/leases/{lease['id']}/end", headers=facility.k.op)
    assert_usage_reproducible(facility)
    with facility.rt.store.transaction() as s:
        s.execute(text("UPDATE usage_records SET amount = 9.00"))
    r = facility.c.get("/api/v1/billing/verify", headers=facility.k.op).json()
    assert not r["ok"] and f"lease {lease['id']}" in r["problems"][0] and "10.00" in r["problems"][0]
