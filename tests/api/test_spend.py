"""Spend a customer can see, through the API: a lease's cost so far, elapsed and remaining time and final cost;
a month's billed, accrued and forecast spend; the invoice with running leases' accrued use beside it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from tests.conftest import Clock, Facility

A100 = "A100-80GB"


def _lease(f: Facility, lease_id: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = f.c.get(f"/api/v1/leases/{lease_id}", headers=headers or f.k.op)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_lease_shows_its_cost_so_far_elapsed_and_remaining_time_then_its_final_cost(
    facility: Facility, clock: Clock
) -> None:
    facility.nodes(2)
    facility.prices(on_demand="1.25", reserved="2.5")
    cust = facility.customer()
    me = facility.customer_key(cust["id"])
    od = facility.lease(me, gpu_model=A100, gpu_count=8)
    assert (od["cost_so_far"], od["elapsed_s"], od["remaining_s"], od["final_cost"]) == ("0.00", 0, None, None)
    assert od["quote"]["rate"] == "1.25"
    t0 = clock()
    rs = facility.lease(
        me,
        gpu_model=A100,
        gpu_count=4,
        plan="reserved",
        start=(t0 + timedelta(hours=1)).isoformat(),
        end=(t0 + timedelta(hours=3)).isoformat(),
    )
    assert rs["quote"]["rate"] == "2.50"  # rates keep their cents: "2.50", never "2.5"
    assert (rs["cost_so_far"], rs["remaining_s"]) == ("0.00", 7200)  # not started: its whole window lies ahead

    clock.advance(hours=1, minutes=30)
    facility.rt.tick()
    got = _lease(facility, od["id"], me)
    assert got["cost_so_far"] == "15.00"  # 8 GPUs x 1.25 x 1.5 h, accrued by the second
    assert (got["elapsed_s"], got["remaining_s"], got["final_cost"]) == (5400, None, None)
    got = _lease(facility, rs["id"], me)
    assert got["state"] == "active" and got["cost_so_far"] == "5.00"  # 4 x 2.50 x 0.5 h of its window
    assert got["remaining_s"] == 5400
    listed = {x["id"]: x for x in facility.c.get("/api/v1/leases", headers=me).json()}
    assert listed[od["id"]]["cost_so_far"] == "15.00" and listed[rs["id"]]["cost_so_far"] == "5.00"

    clock.advance(seconds=17)
    ended = facility.c.post(f"/api/v1/leases/{od['id']}/end", headers=me).json()
    assert ended["final_cost"] == ended["cost_so_far"] == "15.05"  # 1:30:17 of 8 GPUs
    assert ended["remaining_s"] == 0 and ended["elapsed_s"] == 5417
    clock.advance(hours=2)
    facility.rt.tick()
    done = _lease(facility, rs["id"], me)
    assert done["state"] == "ended" and done["final_cost"] == "20.00"  # the reserved window, whole
    inv = facility.c.get(f"/api/v1/customers/{cust['id']}/invoices", params={"period": "2026-11"}, headers=me).json()
    assert Decimal(inv["total"]) == Decimal("15.05") + Decimal("20.00")


def test_month_to_date_spend_counts_running_leases_as_accrued_and_forecasts_the_month(
    facility: Facility, clock: Clock
) -> None:
    facility.nodes(2)
    facility.prices()
    cust = facility.customer()
    me = facility.customer_key(cust["id"])
    od = facility.lease(me, gpu_model=A100, gpu_count=8)  # 10.00 an hour, open-ended
    t0 = clock()
    short = facility.lease(me, gpu_model=A100, gpu_count=1, plan="on_demand", end=(t0 + timedelta(hours=1)).isoformat())
    rs = facility.lease(  # 8 GPUs x 1.00 x 10 h on the 20th
        me,
        gpu_model=A100,
        gpu_count=8,
        plan="reserved",
        start=(t0 + timedelta(days=18)).isoformat(),
        end=(t0 + timedelta(days=18, hours=10)).isoformat(),
    )
    clock.advance(hours=2)
    facility.rt.tick()  # the 1-hour lease ended: 1.25 on record
    s = facility.c.get(f"/api/v1/customers/{cust['id']}/spend", params={"period": "2026-11"}, headers=me).json()
    assert (s["billed"], s["accrued"], s["month_to_date"]) == ("1.25", "20.00", "21.25")
    # to the month's end (Dec 1 00:00) from Nov 2 11:00 is 685 h: the open-ended lease runs on, the window is paid
    assert s["forecast"] == f"{Decimal('21.25') + 685 * Decimal('10.00') + Decimal('80.00'):.2f}"
    assert "open-ended lease is assumed to run to the month's end" in s["forecast_method"]
    assert s["limit"] is None and s["currency"] == "USD" and s["percent_of_limit"] is None
    lines = {x["lease_id"]: x for x in s["leases"]}
    assert lines[od["id"]]["running"] and lines[od["id"]]["accrued"] == "20.00"
    assert lines[short["id"]]["billed"] == "1.25" and not lines[short["id"]]["running"]
    assert rs["id"] not in lines  # nothing spent on it yet
    assert sum(Decimal(d["amount"]) for d in s["days"]) == Decimal("21.25")
    assert [d["date"] for d in s["days"]] == ["2026-11-01", "2026-11-02"]

    # the invoice is what is on record; running leases' use stands beside it, marked running
    inv = facility.c.get(f"/api/v1/customers/{cust['id']}/invoices", params={"period": "2026-11"}, headers=me).json()
    assert inv["total"] == "1.25" and inv["accrued_total"] == "20.00"
    [acc] = inv["accrued_lines"]
    assert acc["lease_id"] == od["id"] and acc["running"] and acc["seconds"] == 7200 and acc["rate"] == "1.25"
    assert "running: accrued, not final" in acc["description"]


def test_spend_across_a_month_end(facility: Facility, clock: Clock) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    clock.now = clock.now.replace(day=30, hour=22)
    facility.lease(customer_id=cust["id"], gpu_model=A100, gpu_count=8)
    clock.advance(hours=3)  # Dec 1 01:00: the month-end checkpoint puts November on record
    facility.rt.tick()
    nov = facility.c.get(f"/api/v1/customers/{cust['id']}/spend", params={"period": "2026-11"}, headers=facility.k.op)
    assert (nov.json()["billed"], nov.json()["accrued"], nov.json()["forecast"]) == ("20.00", "0.00", "20.00")
    dec = facility.c.get(f"/api/v1/customers/{cust['id']}/spend", headers=facility.k.op).json()
    assert dec["period"] == "2026-12" and (dec["billed"], dec["accrued"]) == ("0.00", "10.00")
    assert dec["forecast"] == f"{10 + 30 * 24 * 10 + 23 * 10}.00"  # 1 h so far, the rest of December ahead


def test_spend_answers_only_its_own_tenant_and_checks_the_period(facility: Facility) -> None:
    a = facility.customer()
    b = facility.customer("Beta Robotics Inc.")
    me = facility.customer_key(a["id"])
    r = facility.c.get(f"/api/v1/customers/{b['id']}/spend", headers=me)
    assert r.status_code == 404 and r.json()["detail"] == "no such customer"
    r = facility.c.get(f"/api/v1/customers/{a['id']}/spend", params={"period": "2026-13"}, headers=me)
    assert r.status_code == 422 and "YYYY-MM" in r.json()["detail"]
    r = facility.c.get(f"/api/v1/customers/{a['id']}/spend", headers=me)
    assert r.status_code == 200 and r.json()["forecast"] == "0.00"
