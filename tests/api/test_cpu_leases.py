"""CPU leases through the API (issue 13): CPU nodes, CPU prices, booking cores, refusals with the earliest start,
extend/end/cancel, per-core-hour invoices, a GPU lease's share of its node, and no core booked twice, on both
stores (on PostgreSQL the database itself refuses)."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from gpulease.runtime import Runtime
from gpulease.services import leases
from gpulease.services.context import SYSTEM
from gpulease.services.execution import leased_gpus
from gpulease.store.models import CpuAllocation, MemoryAllocation
from tests.api.test_concurrency import _overlaps, race
from tests.conftest import Clock, Facility, needs_bwrap


def iso(t: datetime) -> str:
    return t.isoformat()


def cpu_node(
    f: Facility, name: str = "cpu-n000", model: str = "epyc-9654", cores: int = 192, gib: int = 1536, **extra: Any
) -> dict[str, Any]:
    body = {"site": "s1", "cluster": "cpu", "name": name, "cpu_model": model, "cpu_cores": cores, "memory_gib": gib}
    r = f.c.post("/api/v1/nodes", headers=f.k.op, json={**body, **extra})
    assert r.status_code == 201, r.text
    return dict(r.json())


def cpu_prices(f: Facility, model: str = "EPYC-9654", rate: str = "0.045", gib_rate: str | None = None) -> None:
    for plan, r in {"on_demand": rate, "reserved": rate, "interruptible": rate, "long_term": "30"}.items():
        body = {"cpu_model": model, "plan": plan, "rate": r, **({"gib_rate": gib_rate} if gib_rate else {})}
        resp = f.c.put("/api/v1/prices", headers=f.k.op, json=body)
        assert resp.status_code == 200, resp.text


def dgx(f: Facility) -> dict[str, Any]:
    """An H100 node whose CPUs are described: 2 x 56 cores, 2 TiB; each GPU keeps 12 cores and 192 GiB."""
    r = f.c.post(
        "/api/v1/nodes",
        headers=f.k.op,
        json={
            "site": "s1",
            "cluster": "gpu",
            "name": "dgx-0",
            "gpu_model": "H100-80GB",
            "gpu_count": 8,
            "cpu_model": "Xeon-8480+",
            "cpu_cores": 112,
            "memory_gib": 2048,
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_cpu_node_price_and_lease_show_cores(facility: Facility, clock: Clock) -> None:
    n = cpu_node(facility)
    assert n["gpu_model"] is None and n["gpu_count"] == 0 and n["cpu_model"] == "EPYC-9654"
    assert n["sockets"] == 2 and n["leasable_cores"] == 192 and n["leasable_memory_gib"] == 1536
    cpu_prices(facility, gib_rate="0.005")
    prices = facility.c.get("/api/v1/prices", headers=facility.k.op).json()
    od = next(p for p in prices if p["cpu_model"] == "EPYC-9654" and p["plan"] == "on_demand")
    assert od["unit"] == "core_hour" and od["rate"] == "0.045" and od["gib_rate"] == "0.005" and od["gpu_model"] is None
    cust = facility.customer()
    lease = facility.lease(customer_id=cust["id"], cpu_cores=16, memory_gib=128)
    assert lease["state"] == "active" and lease["resource"] == "cpu" and lease["gpus"] == []
    assert lease["cpu_cores"] == 16 and lease["memory_gib"] == 128 and lease["cpu_model"] == "EPYC-9654"
    [held] = lease["cores"]
    assert held["node_id"] == n["id"] and len(held["cores"]) == 16 and held["cpuset"] == "0-15"
    assert lease["quote"]["unit"] == "core_hour" and lease["quote"]["cpu_cores"] == 16
    # GET shows the same cores; a second lease gets other cores (best fit: the same socket, next to the first)
    again = facility.c.get(f"/api/v1/leases/{lease['id']}", headers=facility.k.op).json()
    assert again["cores"] == lease["cores"]
    other = facility.lease(customer_id=cust["id"], cpu_cores=8)
    assert set(other["cores"][0]["cores"]).isdisjoint(held["cores"]) and other["memory_gib"] == 8 * 1536 // 192


def test_refusal_carries_earliest_start_and_extend_end_cancel(facility: Facility, clock: Clock) -> None:
    cpu_node(facility)
    cpu_prices(facility)
    cust = facility.customer()
    t0 = clock()
    whole = facility.lease(
        customer_id=cust["id"], cpu_cores=192, plan="reserved", start=iso(t0), end=iso(t0 + timedelta(hours=3))
    )
    assert whole["state"] == "active"
    r = facility.c.post(
        "/api/v1/leases",
        headers=facility.k.op,
        json={"customer_id": cust["id"], "cpu_cores": 4, "end": iso(t0 + timedelta(hours=1))},
    )
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["earliest_start"].startswith(iso(t0 + timedelta(hours=3))[:19])
    a = facility.c.get("/api/v1/availability", headers=facility.k.op, params={"cpu_cores": 4}).json()
    assert a["available"] is False and a["earliest_start"].startswith(iso(t0 + timedelta(hours=3))[:19])
    assert a["cpu_model"] == "EPYC-9654" and a["quotes"]["on_demand"]["unit"] == "core_hour"

    # extend: free after it, so it can; a booking after the new end blocks extending past it
    ext = facility.c.post(
        f"/api/v1/leases/{whole['id']}/extend", headers=facility.k.op, json={"end": iso(t0 + timedelta(hours=4))}
    )
    assert ext.status_code == 200 and ext.json()["end"].startswith(iso(t0 + timedelta(hours=4))[:19])
    later = facility.lease(
        customer_id=cust["id"],
        cpu_cores=1,
        plan="reserved",
        start=iso(t0 + timedelta(hours=5)),
        end=iso(t0 + timedelta(hours=6)),
    )
    blocked = facility.c.post(
        f"/api/v1/leases/{whole['id']}/extend", headers=facility.k.op, json={"end": iso(t0 + timedelta(hours=7))}
    )
    assert blocked.status_code == 409
    cancelled = facility.c.post(f"/api/v1/leases/{later['id']}/cancel", headers=facility.k.op).json()
    assert cancelled["state"] == "cancelled" and cancelled["cores"] == []
    # ending frees its cores: a request refused before now fits
    clock.advance(hours=1)
    ended = facility.c.post(f"/api/v1/leases/{whole['id']}/end", headers=facility.k.op).json()
    assert ended["state"] in ("ended", "ending")
    now = facility.lease(customer_id=cust["id"], cpu_cores=192)
    assert now["state"] == "active"


def test_invoice_bills_core_hours(facility: Facility, clock: Clock) -> None:
    cpu_node(facility)
    cpu_prices(facility, gib_rate="0.005")
    cust = facility.customer()
    lease = facility.lease(customer_id=cust["id"], cpu_cores=16, memory_gib=128)
    clock.advance(hours=10)
    ended = facility.c.post(f"/api/v1/leases/{lease['id']}/end", headers=facility.k.op).json()
    assert ended["state"] == "ended" and ended["state_reason"] == "cores and memory handed back: no run left on them"
    inv = facility.c.get(
        f"/api/v1/customers/{cust['id']}/invoices", params={"period": clock().strftime("%Y-%m")}, headers=facility.k.op
    ).json()
    # without a period: this month's, by the server's clock
    assert facility.c.get(f"/api/v1/customers/{cust['id']}/invoices", headers=facility.k.op).json() == inv
    empty = facility.c.get(f"/api/v1/customers/{cust['id']}/invoices", params={"period": ""}, headers=facility.k.op)
    assert empty.status_code == 422  # a period given must be one
    [line] = inv["lines"]
    assert line["resource"] == "cpu" and line["cpu_model"] == "EPYC-9654" and line["cpu_cores"] == 16
    assert line["unit"] == "core_hour" and line["core_hours"] == "160.0000" and line["memory_gib"] == 128
    # (16 x 0.045 + 128 x 0.005) x 10 h = 13.60
    assert Decimal(line["amount"]) == Decimal("13.60") == Decimal(inv["total"])
    assert "16 cores (+ 128 GiB)" in line["description"] and "core-hour" in line["description"]
    # the usage on record is what the quote and the event log say it must be
    checked = facility.c.get("/api/v1/billing/verify", headers=facility.k.op)
    assert checked.status_code == 200 and checked.json() == {"ok": True, "problems": []}


def test_gpu_lease_keeps_its_share_and_cpu_leases_use_gpu_nodes_only_if_allowed(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    node = dgx(facility)
    assert node["leasable_cores"] == 112 - 8 * 12 and node["leasable_memory_gib"] == 2048 - 8 * 192
    facility.prices("H100-80GB")
    cpu_prices(facility, "Xeon-8480+")
    cust = facility.customer()
    g = facility.lease(customer_id=cust["id"], gpu_model="H100-80GB", gpu_count=2)
    [share] = g["cores"]
    assert len(share["cores"]) == 24  # 12 per GPU, on the GPUs' socket
    refused = facility.c.post("/api/v1/leases", headers=facility.k.op, json={"customer_id": cust["id"], "cpu_cores": 4})
    assert refused.status_code == 409  # GPU nodes are not for CPU leases unless the operator allows it
    runtime.settings.cpu_leases_on_gpu_nodes = True
    c = facility.lease(customer_id=cust["id"], cpu_cores=16)  # every leasable core: none of the GPUs' shares
    assert c["cpu_model"] == "Xeon-8480+"
    assert set(c["cores"][0]["cores"]).isdisjoint(share["cores"])
    reserved = {x for i in range(8) for x in range(i // 4 * 56 + i % 4 * 12, i // 4 * 56 + i % 4 * 12 + 12)}
    assert set(c["cores"][0]["cores"]).isdisjoint(reserved)
    assert (
        facility.c.post(
            "/api/v1/leases", headers=facility.k.op, json={"customer_id": cust["id"], "cpu_cores": 1}
        ).status_code
        == 409
    )
    more = facility.lease(customer_id=cust["id"], gpu_model="H100-80GB", gpu_count=6)  # the GPU leases still fit
    assert sum(len(h["cores"]) for h in more["cores"]) == 72
    # what the backends are handed: a GPU lease's GPUs with their share, a CPU lease's cores and no GPUs
    with runtime.work() as w:
        [gpu_side] = leased_gpus(leases.get_lease(w, actor=SYSTEM, lease_id=g["id"]))
        [cpu_side] = leased_gpus(leases.get_lease(w, actor=SYSTEM, lease_id=c["id"]))
    assert len(gpu_side.indices) == 2 and gpu_side.cores == tuple(share["cores"])
    assert cpu_side.indices == () and cpu_side.cores == tuple(c["cores"][0]["cores"]) and cpu_side.node == "dgx-0"


def test_concurrent_cpu_bookings_never_overlap_a_core(facility: Facility, runtime: Runtime, clock: Clock) -> None:
    cpu_node(facility, "cpu-a", model="EPYC-9554", cores=64, gib=512)
    cpu_node(facility, "cpu-b", model="EPYC-9554", cores=64, gib=512)
    cpu_prices(facility, "EPYC-9554")
    cust = facility.customer()
    t0 = clock()
    n = 24

    def request(i: int) -> leases.LeaseRequest:
        start = t0 + timedelta(minutes=10 * (i % 3))
        return leases.LeaseRequest(
            "", 0, "reserved", start, start + timedelta(hours=1), cust["id"], cpu_cores=8 + 4 * (i % 4)
        )

    results = race(runtime, [request(i) for i in range(n)])
    assert len(results) == n and 0 < results.count("booked") < n
    assert _overlaps(runtime, CpuAllocation) == []


def test_postgres_refuses_a_double_booked_core_or_gib_itself(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    if not runtime.store.is_postgres:
        pytest.skip("the exclusion constraint and the guard are PostgreSQL's; SQLite serialises writers instead")
    n = cpu_node(facility, cores=192, gib=1536)
    g = dgx(facility)
    cpu_prices(facility)
    cust = facility.customer()
    lease = facility.lease(customer_id=cust["id"], cpu_cores=4, memory_gib=1500)
    core = lease["cores"][0]["cores"][0]
    later = clock() + timedelta(days=1)

    def insert(row: object) -> None:
        with runtime.store.transaction() as s:
            s.add(row)
            s.flush()

    with pytest.raises(DBAPIError, match="no_double_booked_core"):
        insert(CpuAllocation(lease_id=lease["id"], node_id=n["id"], core_index=core, starts_at=later, ends_at=None))
    with pytest.raises(DBAPIError, match="more than it leases"):  # 1500 + 100 GiB > 1536 GiB
        insert(MemoryAllocation(lease_id=lease["id"], node_id=n["id"], gib=100, starts_at=later, ends_at=None))
    with pytest.raises(DBAPIError, match="kept for its GPUs"):  # core 0 is GPU 0's
        insert(CpuAllocation(lease_id=lease["id"], node_id=g["id"], core_index=0, starts_at=later, ends_at=None))
    # a free core of a GPU node, and memory that fits, are accepted
    insert(CpuAllocation(lease_id=lease["id"], node_id=g["id"], core_index=50, starts_at=later, ends_at=None))
    insert(MemoryAllocation(lease_id=lease["id"], node_id=n["id"], gib=36, starts_at=later, ends_at=None))


@needs_bwrap
def test_a_cpu_lease_runs_work_without_gpus(facility: Facility) -> None:
    """A CPU lease's run starts (no GPUs) and sees none. The local backend pins it to the lease's cores, which
    must be online here: the node is this machine, as many cores as it has."""
    cpu_node(facility, cores=os.cpu_count() or 1, gib=4, sockets=1)
    cpu_prices(facility)
    cust = facility.customer()
    lease = facility.lease(customer_id=cust["id"], cpu_cores=1)
    assert lease["cores"][0]["cores"] == [0]
    r = facility.c.post(
        f"/api/v1/leases/{lease['id']}/runs",
        headers=facility.k.op,
        json={"command": ["sh", "-c", 'echo "gpus=[$CUDA_VISIBLE_DEVICES]"']},
    )
    assert r.status_code in (200, 201), r.text
    url = f"/api/v1/leases/{lease['id']}/runs/{r.json()['id']}"
    deadline = time.monotonic() + 20
    while (state := facility.c.get(url, headers=facility.k.op).json())["state"] in ("pending", "running"):
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    assert state["state"] == "succeeded", state
    log = facility.c.get(url + "/logs", headers=facility.k.op, params={"follow": "false"}).text
    assert log.strip() == "gpus=[]"


def test_a_failed_node_moves_its_cpu_leases_or_ends_them(facility: Facility, clock: Clock) -> None:
    a = cpu_node(facility, "cpu-a", model="EPYC-9554", cores=64, gib=512)
    cpu_node(facility, "cpu-b", model="EPYC-9554", cores=64, gib=512)
    cpu_prices(facility, "EPYC-9554")
    cust = facility.customer()
    first = facility.lease(customer_id=cust["id"], cpu_cores=48)
    second = facility.lease(customer_id=cust["id"], cpu_cores=48)  # does not fit beside the first: the other node
    on_a = first if first["cores"][0]["node_id"] == a["id"] else second
    other = second if on_a is first else first
    clock.advance(minutes=30)
    r = facility.c.put(f"/api/v1/nodes/{a['id']}/state", headers=facility.k.op, json={"state": "down"})
    assert r.status_code == 200 and r.json()["ended"] == [on_a["id"]]  # 16 cores free elsewhere: not 48
    ended = facility.c.get(f"/api/v1/leases/{on_a['id']}", headers=facility.k.op).json()
    assert ended["state"] in ("ended", "ending") and ended["ended_at"] is not None  # billed up to the failure
    facility.c.post(f"/api/v1/leases/{other['id']}/end", headers=facility.k.op)
    c = cpu_node(facility, "cpu-c", model="EPYC-9554", cores=64, gib=512)
    moving = facility.lease(customer_id=cust["id"], cpu_cores=32)
    r = facility.c.put(
        f"/api/v1/nodes/{moving['cores'][0]['node_id']}/state", headers=facility.k.op, json={"state": "down"}
    )
    assert r.json()["moved"] == [moving["id"]]
    moved = facility.c.get(f"/api/v1/leases/{moving['id']}", headers=facility.k.op).json()
    assert moved["state"] == "active" and moved["cores"][0]["node_id"] != moving["cores"][0]["node_id"]
    assert moved["cores"][0]["node_id"] in (c["id"], other["cores"][0]["node_id"])


def test_a_moved_cpu_lease_extended_keeps_its_old_cores_closed_at_the_failure(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    """As for GPUs (test_node_failure): an extension gives a new end only to the cores and memory held now."""
    cpu_node(facility, "cpu-a", model="EPYC-9554", cores=64, gib=512)
    cpu_node(facility, "cpu-b", model="EPYC-9554", cores=64, gib=512)
    cpu_prices(facility, "EPYC-9554")
    cust = facility.customer()
    lease = facility.lease(customer_id=cust["id"], cpu_cores=16, end=iso(clock() + timedelta(hours=2)))
    failed = lease["cores"][0]["node_id"]
    clock.advance(minutes=10)
    failed_at = clock()
    r = facility.c.put(f"/api/v1/nodes/{failed}/state", headers=facility.k.op, json={"state": "down"})
    assert r.json()["moved"] == [lease["id"]]
    r = facility.c.post(
        f"/api/v1/leases/{lease['id']}/extend", headers=facility.k.op, json={"end": iso(clock() + timedelta(hours=5))}
    )
    assert r.status_code == 200, r.text
    with runtime.store.transaction() as s:
        cores = s.query(CpuAllocation).filter_by(lease_id=lease["id"], released=False).all()
        memory = s.query(MemoryAllocation).filter_by(lease_id=lease["id"], released=False).all()
        for rows in (cores, memory):
            ends = {(a.node_id == failed, a.ends_at) for a in rows}
            assert ends == {(True, failed_at), (False, clock() + timedelta(hours=5))}, ends


def test_a_bad_booking_is_told_what_is_wrong_with_its_own_kind(facility: Facility) -> None:
    """A GPU booking with a bad end hears about its end, not what a CPU booking would have needed; a CPU booking
    hears about its cores. Both kinds are still one request body in the OpenAPI document."""
    facility.nodes(1)
    facility.prices()
    cases = [
        ({"gpu_model": "A100-80GB", "gpu_count": 4, "end": "tomorrow"}, "end", "cpu_cores"),
        ({"cpu_cores": "many"}, "cpu_cores", "gpu_model"),
        ({"gpu_model": "A100-80GB"}, "gpu_count", "cpu_cores"),
    ]
    for path in ("/api/v1/leases", "/api/v1/quotes"):
        for body, field, other in cases:
            r = facility.c.post(path, headers=facility.k.op, json=body)
            assert r.status_code == 422, r.text
            fields = [e["field"] for e in r.json()["errors"]]
            assert fields == [field], (path, body, r.json())
            assert other not in r.json()["detail"] and "LeaseIn" not in r.json()["detail"]
    for body in ([], "x", 3):
        r = facility.c.post("/api/v1/leases", headers=facility.k.op, json=body)
        assert r.status_code == 422 and r.json()["detail"].startswith("request: Input should be a valid dict"), r.text
    schema = facility.c.get("/openapi.json").json()["paths"]["/api/v1/leases"]["post"]["requestBody"]
    refs = {s["$ref"].rsplit("/", 1)[-1] for s in schema["content"]["application/json"]["schema"]["oneOf"]}
    assert refs == {"LeaseIn", "CpuLeaseIn"}
