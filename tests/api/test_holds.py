"""A lease under a compliance hold (issue 10, item 2): it can be ended or cancelled by its customer and the
operator, it is billed nothing while held and billing resumes if it is cleared; a denial closes the customer's
leases (runs stopped, GPUs freed, billing closed), each as an event; a held customer's queued requests do not
hold back anyone else's. Everything through the API and the server's own tick."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.model import ListEntry
from gpulease.runtime import Runtime
from gpulease.services import keys
from gpulease.services.context import SYSTEM
from gpulease.services.customer_screening import rescreen_all
from tests.conftest import Clock, Facility

A100 = "A100-80GB"
HIT_NAME = "Orchid Frontier Computing Pte. Ltd."
LICENCE = {"authority": "BIS", "number": "D1234567", "expires_on": "2027-12-31", "scope": "GPU rental, A100"}


def hold(runtime: Runtime, name: str = HIT_NAME) -> None:
    """A list load that newly hits `name`: the production re-screening path, over a one-entry list."""
    entry = ListEntry(id="EL-test-1", list="EL", list_name="Entity List", type="Entity", name=name, countries=("SG",))
    with runtime.work() as w:
        rescreen_all(
            w, ScreeningIndex.build([entry], version="test"), trigger="list version test", list_version_id=None
        )


def review_of(f: Facility, customer_id: int) -> dict[str, Any]:
    items = f.c.get("/api/v1/reviews", headers=f.k.co, params={"customer_id": customer_id}).json()
    assert items, f"no open review for customer {customer_id}"
    return dict(items[-1])


def second_compliance(f: Facility) -> dict[str, str]:
    return f.k.h(f.rt.perform(keys.create_key, actor=SYSTEM, role="compliance"))


def clear(f: Facility, customer_id: int) -> None:
    """Approve the customer's open review: with a licence and a second officer where a blocking list is hit."""
    item = review_of(f, customer_id)
    body = {"decision": "approve", "comment": "licence on file, end use verified", "licence": LICENCE}
    r = f.c.post(f"/api/v1/reviews/{item['id']}/decision", headers=f.k.co, json=body)
    if r.status_code == 202:
        r = f.c.post(f"/api/v1/reviews/{item['id']}/decision", headers=second_compliance(f), json=body)
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text


def deny(f: Facility, customer_id: int) -> None:
    item = review_of(f, customer_id)
    r = f.c.post(
        f"/api/v1/reviews/{item['id']}/decision",
        headers=f.k.co,
        json={"decision": "deny", "comment": "listed entity, no licence"},
    )
    assert r.status_code == 200 and r.json()["status"] == "denied", r.text


def lease(f: Facility, lease_id: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = f.c.get(f"/api/v1/leases/{lease_id}", headers=headers or f.k.op)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_held_lease_is_billed_nothing_while_held_and_billing_resumes_when_cleared(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    facility.nodes(1)
    facility.prices(on_demand="1.25", reserved="2.50")
    c = facility.customer(HIT_NAME, country="SG")
    me = facility.customer_key(c["id"])
    od = facility.lease(me, gpu_model=A100, gpu_count=2)
    clock.advance(hours=1)
    hold(runtime)
    assert lease(facility, od["id"], me)["state"] == "suspended"
    assert lease(facility, od["id"], me)["cost_so_far"] == "2.50"  # 2 GPUs x 1.25 x 1 h, billed at the hold
    clock.advance(days=40)  # across a month end: the checkpoint bills nothing for a held lease
    assert runtime.tick().failed == {}
    assert lease(facility, od["id"], me)["cost_so_far"] == "2.50"
    clear(facility, c["id"])
    assert lease(facility, od["id"], me)["state"] == "active"
    clock.advance(minutes=30)
    ended = facility.c.post(f"/api/v1/leases/{od['id']}/end", headers=me).json()
    assert ended["final_cost"] == "3.75"  # 1 h before the hold + 30 min after it; the 40 days held are not billed
    usage = Decimal(0)
    for period in ("2026-11", "2026-12"):
        inv = facility.c.get(f"/api/v1/customers/{c['id']}/invoices", params={"period": period}, headers=me).json()
        usage += Decimal(inv["total"])
    assert usage == Decimal("3.75")


def test_a_suspended_lease_ends_with_200_for_customer_and_operator_and_cancels_without_a_fee(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    facility.nodes(1)
    facility.prices()
    c = facility.customer(HIT_NAME, country="SG")
    me = facility.customer_key(c["id"])
    a = facility.lease(me, gpu_model=A100, gpu_count=2)
    b = facility.lease(me, gpu_model=A100, gpu_count=2)
    soon = facility.lease(
        me,
        gpu_model=A100,
        gpu_count=2,
        plan="reserved",
        start=(clock() + timedelta(hours=2)).isoformat(),  # inside the free-cancellation window: a fee if not held
        end=(clock() + timedelta(hours=5)).isoformat(),
    )
    clock.advance(minutes=10)
    hold(runtime)
    for lid, who in ((a["id"], me), (b["id"], facility.k.op)):
        r = facility.c.post(f"/api/v1/leases/{lid}/end", headers=who)
        assert r.status_code == 200, r.text
        assert r.json()["state"] in ("ending", "ended")
    r = facility.c.post(f"/api/v1/leases/{soon['id']}/cancel", headers=me)
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
    assert r.json()["final_cost"] == "0.00"
    assert runtime.tick().failed == {}


def test_a_denial_closes_every_lease_frees_the_gpus_and_stops_billing(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    facility.nodes(2)
    facility.prices(on_demand="1.25")
    c = facility.customer(HIT_NAME, country="SG")
    me = facility.customer_key(c["id"])
    running = facility.lease(me, gpu_model=A100, gpu_count=8)
    later = facility.lease(
        me,
        gpu_model=A100,
        gpu_count=8,
        plan="reserved",
        start=(clock() + timedelta(days=2)).isoformat(),
        end=(clock() + timedelta(days=3)).isoformat(),
    )
    clock.advance(hours=2)
    hold(runtime)
    clock.advance(hours=5)
    deny(facility, c["id"])
    runtime.tick()
    closed = lease(facility, running["id"], me)
    assert closed["state"] == "ended"
    assert closed["final_cost"] == "20.00"  # 8 x 1.25 x 2 h: the 5 h held are not billed
    assert lease(facility, later["id"], me)["state"] == "cancelled"
    events = facility.c.get(f"/api/v1/leases/{running['id']}/events", headers=me).json()
    assert [e["to_state"] for e in events][-3:] == ["suspended", "ending", "ended"]
    # the GPUs are free for someone else at once
    other = facility.customer("Acme Robotics Inc.")
    assert facility.lease(customer_id=other["id"], gpu_model=A100, gpu_count=16)["state"] == "active"


def test_queued_requests_of_a_held_customer_do_not_block_others(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    facility.nodes(1)
    facility.prices()
    busy = facility.customer("Acme Robotics Inc.")
    held = facility.customer(HIT_NAME, country="SG")
    waiting = facility.customer("Northwind Logistics Inc.")
    first = facility.lease(customer_id=busy["id"], gpu_model=A100, gpu_count=8)
    blocked = facility.lease(customer_id=held["id"], gpu_model=A100, gpu_count=8, start="asap", duration_s=3600)
    behind = facility.lease(customer_id=waiting["id"], gpu_model=A100, gpu_count=4, start="asap", duration_s=3600)
    assert blocked["state"] == behind["state"] == "queued"
    hold(runtime)
    assert lease(facility, blocked["id"])["state"] == "suspended"
    facility.c.post(f"/api/v1/leases/{first['id']}/end", headers=facility.k.op)
    clock.advance(seconds=30)
    result = runtime.tick()
    assert result.failed == {} and behind["id"] in result.started
    assert lease(facility, blocked["id"])["state"] == "suspended"
