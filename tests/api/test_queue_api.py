"""The waiting queue through the API: a full cluster, a waiting 8-GPU head, backfill, preemption with notice,
and every GPU-second billed once."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from itertools import pairwise

from sqlalchemy import select

from gpulease.store.models import UsageRecord
from tests.conftest import Clock, Facility


def state(f: Facility, lease_id: int) -> str:
    return str(f.c.get(f"/api/v1/leases/{lease_id}", headers=f.k.op).json()["state"])


def test_queue_backfill_preemption_and_billing(facility: Facility, clock: Clock) -> None:
    f = facility
    f.nodes(2)
    f.prices()
    cust = f.customer()
    cid = cust["id"]
    t0 = clock()
    # Full cluster: node X has 6 GPUs of on-demand work for an hour; node Y is reserved for 3 hours.
    x = f.lease(
        customer_id=cid, gpu_model="A100-80GB", gpu_count=6, plan="on_demand", end=(t0 + timedelta(hours=1)).isoformat()
    )
    y = f.lease(
        customer_id=cid,
        gpu_model="A100-80GB",
        gpu_count=8,
        plan="reserved",
        start=t0.isoformat(),
        end=(t0 + timedelta(hours=3)).isoformat(),
    )
    assert x["gpus"][0]["node"] != y["gpus"][0]["node"]

    head = f.lease(
        customer_id=cid,
        gpu_model="A100-80GB",
        gpu_count=8,
        plan="on_demand",
        start="asap",
        duration_s=7200,
        max_wait_s=4 * 3600,
    )
    assert head["state"] == "queued"
    long_small = f.lease(
        customer_id=cid,
        gpu_model="A100-80GB",
        gpu_count=2,
        plan="on_demand",
        start="asap",
        duration_s=7200,
        max_wait_s=8 * 3600,
    )
    short_small = f.lease(
        customer_id=cid, gpu_model="A100-80GB", gpu_count=2, plan="on_demand", start="asap", duration_s=1800
    )
    # The short one fits in X's 2 free GPUs and ends before the head's start: backfilled now.
    assert short_small["state"] == "active"
    # The long one would hold X past the head's earliest start: it waits.
    assert long_small["state"] == "queued"

    clock.advance(minutes=30)
    f.rt.tick()
    assert state(f, short_small["id"]) == "ended"
    assert state(f, head["id"]) == "queued" and state(f, long_small["id"]) == "queued"

    clock.advance(minutes=30)  # X's on-demand lease ends: the head takes node X
    r = f.rt.tick()
    assert state(f, x["id"]) == "ended" and state(f, head["id"]) == "active" and head["id"] in r.started
    assert state(f, long_small["id"]) == "queued"  # nothing free until the head or Y ends

    # An interruptible lease cannot jump the queue; a waiting on-demand request preempts it with notice.
    clock.advance(hours=2)  # t0+3h: head ends (t0+3h) and Y's reservation ends
    f.rt.tick()
    assert state(f, head["id"]) == "ended" and state(f, y["id"]) == "ended"
    assert state(f, long_small["id"]) == "active"
    spot = f.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=8, plan="interruptible")
    spot2 = f.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=6, plan="interruptible")
    assert state(f, spot["id"]) == "active" and state(f, spot2["id"]) == "active"  # cluster full again
    clock.advance(minutes=10)
    big = f.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=8, plan="on_demand", start="asap", duration_s=600)
    assert big["preempted"] and big["state"] == "scheduled"
    notice_end = f.c.get(f"/api/v1/leases/{big['preempted'][0]}", headers=f.k.op).json()["preempt_at"]
    assert notice_end.startswith((clock() + timedelta(seconds=120)).isoformat()[:19])
    clock.advance(seconds=120)
    f.rt.tick()
    assert state(f, big["preempted"][0]) == "preempted" and state(f, big["id"]) == "active"
    clock.advance(hours=1)
    f.rt.tick()
    for lease in (big, spot, spot2, long_small):
        if state(f, lease["id"]) == "active":
            f.c.post(f"/api/v1/leases/{lease['id']}/end", headers=f.k.op)

    # Every GPU-second billed once: usage never overlaps within a lease, and matches each lease's active time.
    with f.rt.store.transaction() as s:
        recs = s.scalars(select(UsageRecord)).all()
        per_lease = defaultdict(list)
        for rec in recs:
            per_lease[rec.lease_id].append(rec)
    for lease_id, items in per_lease.items():
        items.sort(key=lambda r: r.starts_at)
        for a, b in pairwise(items):
            assert a.ends_at <= b.starts_at, lease_id
        ev = f.c.get(f"/api/v1/leases/{lease_id}", headers=f.k.op).json()
        if ev["plan"] in ("on_demand", "interruptible"):
            from datetime import datetime

            active = datetime.fromisoformat(ev["ended_at"]) - datetime.fromisoformat(ev["activated_at"])
            assert sum(r.seconds for r in items) == int(active.total_seconds()), lease_id
    assert per_lease[short_small["id"]][0].seconds == 1800
    verify = f.c.get("/api/v1/billing/verify", headers=f.k.op).json()
    assert verify == {"ok": True, "problems": []}, verify
    assert per_lease[big["preempted"][0]][0].seconds == 10 * 60 + 120  # billed up to the preemption


def test_queued_request_expires_after_max_wait(facility: Facility, clock: Clock) -> None:
    facility.nodes(1)
    facility.prices()
    cid = facility.customer()["id"]
    facility.lease(
        customer_id=cid,
        gpu_model="A100-80GB",
        gpu_count=8,
        plan="reserved",
        start=clock().isoformat(),
        end=(clock() + timedelta(hours=5)).isoformat(),
    )
    waiting = facility.lease(
        customer_id=cid,
        gpu_model="A100-80GB",
        gpu_count=4,
        plan="on_demand",
        start="asap",
        duration_s=600,
        max_wait_s=900,
    )
    assert waiting["state"] == "queued"
    clock.advance(seconds=901)
    r = facility.rt.tick()
    assert waiting["id"] in r.expired
    got = facility.c.get(f"/api/v1/leases/{waiting['id']}", headers=facility.k.op).json()
    assert got["state"] == "failed" and "maximum wait" in got["state_reason"]


def test_an_immediate_request_may_not_delay_the_head_of_the_queue(facility: Facility, clock: Clock) -> None:
    f = facility
    f.nodes(2)
    f.prices()
    cid = f.customer()["id"]
    t0 = clock()
    f.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=6, end=(t0 + timedelta(hours=1)).isoformat())
    f.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=8, end=(t0 + timedelta(hours=2)).isoformat())
    head = f.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=8, start="asap", duration_s=3600)
    assert head["state"] == "queued"  # it will start at t0+1h on the first node
    # 2 GPUs are free now on that node, but holding them for 3 h would push the head back: refused.
    r = f.c.post(
        "/api/v1/leases",
        headers=f.k.op,
        json={
            "customer_id": cid,
            "gpu_model": "A100-80GB",
            "gpu_count": 2,
            "plan": "on_demand",
            "end": (t0 + timedelta(hours=3)).isoformat(),
        },
    )
    assert r.status_code == 409, r.text
    # Half an hour ends before the head starts: allowed, like a backfill.
    short = f.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=2, end=(t0 + timedelta(minutes=30)).isoformat())
    assert short["state"] == "active"
    # A reserved window outranks an on-demand head and may take its place.
    rsv = f.lease(
        customer_id=cid,
        gpu_model="A100-80GB",
        gpu_count=8,
        plan="reserved",
        start=(t0 + timedelta(hours=1)).isoformat(),
        end=(t0 + timedelta(hours=2)).isoformat(),
    )
    assert rsv["state"] == "scheduled"


def test_a_request_to_start_as_soon_as_possible_that_can_never_fit_is_refused_at_once(facility: Facility) -> None:
    """More GPUs than the model's nodes can ever give it: refused with the reason, as a request for a fixed window
    is, not booked and failed by the queue."""
    f = facility
    f.nodes(2)
    f.prices()
    cid = f.customer()["id"]
    body = {"customer_id": cid, "gpu_model": "A100-80GB", "gpu_count": 24, "plan": "on_demand", "duration_s": 3600}
    r = f.c.post("/api/v1/leases", headers=f.k.op, json=body | {"start": "asap", "max_wait_s": 600})
    assert r.status_code == 409, r.text
    fixed = f.c.post("/api/v1/leases", headers=f.k.op, json=body)
    assert fixed.status_code == 409 and r.json()["detail"] == fixed.json()["detail"], (r.text, fixed.text)
    assert f.c.get("/api/v1/leases", headers=f.k.op).json() == []
