"""The CPU waiting queue holds its head's start against backfill (EASY backfill, as the GPU queue; issue 13)."""

from __future__ import annotations

from datetime import timedelta

from gpulease.store.models import CpuAllocation
from tests.api.test_concurrency import _overlaps
from tests.api.test_cpu_leases import cpu_node, cpu_prices, iso
from tests.conftest import Clock, Facility


def test_the_head_of_the_cpu_queue_is_not_delayed_by_later_requests(facility: Facility, clock: Clock) -> None:
    cpu_node(facility, "cpu-a", model="EPYC-9554", cores=64, gib=512)
    cpu_prices(facility, "EPYC-9554")
    cust = facility.customer()["id"]
    t = clock()
    busy = facility.lease(
        customer_id=cust, cpu_cores=40, plan="reserved", start=iso(t), end=iso(t + timedelta(hours=1))
    )
    head = facility.lease(
        customer_id=cust, cpu_cores=48, plan="on_demand", start="asap", duration_s=7200, max_wait_s=7200
    )
    assert busy["state"] == "active" and head["state"] == "queued"  # 24 free now; 48 free once `busy` ends

    # 24 cores for 3 h fit now, but would leave 40 < 48 at the head's start: refused, at any plan not above it
    # (a reserved one ranks above an on-demand head, as on the GPU queue)
    for plan in ("on_demand", "interruptible"):
        r = facility.c.post(
            "/api/v1/leases",
            headers=facility.k.op,
            json={"customer_id": cust, "cpu_cores": 24, "plan": plan, "end": iso(t + timedelta(hours=3))},
        )
        assert r.status_code == 409, (plan, r.text)
    # a later asap request of that shape waits behind the head too, rather than start now
    late = facility.lease(
        customer_id=cust, cpu_cores=24, plan="on_demand", start="asap", duration_s=3 * 3600, max_wait_s=7200
    )
    assert late["state"] == "queued"
    # one that ends before the head can start backfills now
    short = facility.lease(customer_id=cust, cpu_cores=24, plan="on_demand", end=iso(t + timedelta(minutes=50)))
    assert short["state"] == "active"
    short_q = facility.lease(
        customer_id=cust, cpu_cores=16, plan="on_demand", start="asap", duration_s=1800, max_wait_s=7200
    )
    assert short_q["state"] == "queued"  # the short one took the free cores; this one waits its turn

    clock.advance(hours=1)
    facility.rt.tick()
    h = facility.c.get(f"/api/v1/leases/{head['id']}", headers=facility.k.op).json()
    assert h["state"] == "active" and h["start"].startswith(iso(t + timedelta(hours=1))[:19])
    assert len(h["cores"][0]["cores"]) == 48
    states = {
        x: facility.c.get(f"/api/v1/leases/{x}", headers=facility.k.op).json()["state"]
        for x in (late["id"], short_q["id"])
    }
    assert states == {late["id"]: "queued", short_q["id"]: "active"}  # 16 left: the 16-core one backfills
    assert _overlaps(facility.rt, CpuAllocation) == []
