"""Who may start runs: the RUN_WORK row of the permission table (operators, and customers on their own
leases); a compliance key reads leases but starts nothing on them."""

from __future__ import annotations

from tests.conftest import Facility


def test_a_compliance_key_cannot_start_a_run(facility: Facility) -> None:
    facility.nodes(1)
    facility.prices()
    cid = facility.customer()["id"]
    lease = facility.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=1, plan="on_demand", start="now")
    r = facility.c.post(f"/api/v1/leases/{lease['id']}/runs", headers=facility.k.co, json={"command": ["id"]})
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "operator or customer role" in r.json()["detail"]
    assert facility.c.get(f"/api/v1/leases/{lease['id']}/runs", headers=facility.k.co).json() == []
