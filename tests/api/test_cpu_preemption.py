"""Preemption for CPU requests through the API (issue 13): an on-demand or reserved CPU request that does not fit
gives interruptible CPU leases notice, by the GPU path's rules (fewest victims, then least work lost; the notice
their quote promised; billing stops at preemption), and takes the cores they free, never a core twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gpulease.store.models import CpuAllocation
from tests.api.test_concurrency import _overlaps
from tests.api.test_cpu_leases import cpu_node, cpu_prices, iso
from tests.conftest import Clock, Facility


def _get(f: Facility, lease_id: int) -> dict[str, Any]:
    return dict(f.c.get(f"/api/v1/leases/{lease_id}", headers=f.k.op).json())


def _fill(f: Facility, clock: Clock, cust: int) -> list[dict[str, Any]]:
    """Four interruptible 16-core leases fill a 64-core node, started a minute apart (the last one is youngest)."""
    spots = []
    for _ in range(4):
        spots.append(f.lease(customer_id=cust, cpu_cores=16, plan="interruptible"))
        clock.advance(minutes=1)
    assert all(s["state"] == "active" for s in spots)
    assert sorted(c for s in spots for c in s["cores"][0]["cores"]) == list(range(64))
    return spots


def test_on_demand_cpu_request_preempts_the_youngest_interruptible_lease(facility: Facility, clock: Clock) -> None:
    cpu_node(facility, "cpu-a", model="EPYC-9554", cores=64, gib=512)
    cpu_prices(facility, "EPYC-9554", rate="0.06")
    cust = facility.customer()["id"]
    spots = _fill(facility, clock, cust)
    clock.advance(minutes=6)  # 10 minutes after the first
    t = clock()
    # an interruptible request never preempts: refused, as for GPUs
    r = facility.c.post(
        "/api/v1/leases", headers=facility.k.op, json={"customer_id": cust, "cpu_cores": 16, "plan": "interruptible"}
    )
    assert r.status_code == 409, r.text

    od = facility.lease(customer_id=cust, cpu_cores=16, plan="on_demand", end=iso(t + timedelta(hours=1)))
    victim = spots[-1]  # one lease is enough; of those, the youngest loses least work
    assert od["preempted"] == [victim["id"]] and od["state"] == "scheduled"
    # it starts when the victim's 120 s notice (its quote's) expires, and keeps the hour it asked for
    notice = victim["quote"]["preemption_notice_s"]
    assert notice == 120
    assert od["start"].startswith(iso(t + timedelta(seconds=notice))[:19])
    assert od["end"].startswith(iso(t + timedelta(seconds=notice, hours=1))[:19])
    assert od["cores"][0]["cores"] == victim["cores"][0]["cores"]  # on the cores it frees
    v = _get(facility, victim["id"])
    assert v["state"] == "active" and v["preempt_at"].startswith(iso(t + timedelta(seconds=notice))[:19])
    events = facility.c.get(f"/api/v1/leases/{victim['id']}/events", headers=facility.k.op).json()
    assert any(e["actor"] == "scheduler" and "cores taken back" in (e["reason"] or "") for e in events)
    for other in spots[:-1]:  # the others are untouched
        o = _get(facility, other["id"])
        assert o["state"] == "active" and o["preempt_at"] is None
    assert _overlaps(facility.rt, CpuAllocation) == []

    clock.advance(seconds=notice)
    facility.rt.tick()
    assert _get(facility, victim["id"])["state"] == "preempted"
    now_od = _get(facility, od["id"])
    assert now_od["state"] == "active" and now_od["cores"] == od["cores"]
    assert _overlaps(facility.rt, CpuAllocation) == []
    # billing of the victim stops at the preemption: it started 7 min before t, plus the notice
    inv = facility.c.get(
        f"/api/v1/customers/{cust}/invoices", params={"period": clock().strftime("%Y-%m")}, headers=facility.k.op
    ).json()
    [line] = [x for x in inv["lines"] if x["lease_id"] == victim["id"]]
    assert line["seconds"] == 7 * 60 + notice
    checked = facility.c.get("/api/v1/billing/verify", headers=facility.k.op)
    assert checked.status_code == 200 and checked.json() == {"ok": True, "problems": []}


def test_reserved_whole_node_preempts_every_interruptible_lease_at_its_start(facility: Facility, clock: Clock) -> None:
    cpu_node(facility, "cpu-a", model="EPYC-9554", cores=64, gib=512)
    cpu_prices(facility, "EPYC-9554")
    cust = facility.customer()["id"]
    spots = _fill(facility, clock, cust)
    start = clock() + timedelta(minutes=30)
    rsv = facility.lease(
        customer_id=cust, cpu_cores=64, plan="reserved", start=iso(start), end=iso(start + timedelta(hours=1))
    )
    assert rsv["state"] == "scheduled" and sorted(rsv["preempted"]) == sorted(s["id"] for s in spots)
    assert rsv["start"].startswith(iso(start)[:19])  # a reserved window does not move: the notice ends before it
    for s in spots:
        assert _get(facility, s["id"])["preempt_at"].startswith(iso(start)[:19])
    assert _overlaps(facility.rt, CpuAllocation) == []
    clock.advance(minutes=30)
    facility.rt.tick()
    assert all(_get(facility, s["id"])["state"] == "preempted" for s in spots)
    assert _get(facility, rsv["id"])["state"] == "active"
    assert _overlaps(facility.rt, CpuAllocation) == []


def test_a_cpu_request_that_preempting_cannot_help_is_refused_and_gives_no_notice(
    facility: Facility, clock: Clock
) -> None:
    cpu_node(facility, "cpu-a", model="EPYC-9554", cores=64, gib=512)
    cpu_prices(facility, "EPYC-9554")
    cust = facility.customer()["id"]
    t = clock()
    held = facility.lease(
        customer_id=cust, cpu_cores=48, plan="reserved", start=iso(t), end=iso(t + timedelta(hours=2))
    )
    spot = facility.lease(customer_id=cust, cpu_cores=16, plan="interruptible")
    assert held["state"] == spot["state"] == "active"
    r = facility.c.post(
        "/api/v1/leases",
        headers=facility.k.op,
        json={"customer_id": cust, "cpu_cores": 32, "end": iso(t + timedelta(hours=1))},
    )
    assert r.status_code == 409, r.text
    assert _get(facility, spot["id"])["preempt_at"] is None  # the refusal rolled nothing forward
