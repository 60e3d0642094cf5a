"""Red flags where they happen and compute thresholds ahead of time (issue 10, items 5 and 6), through the API.

- new_company_large_request is evaluated at booking on the request plus the GPUs the customer already holds:
  the booking is kept in `pending_compliance` (no GPUs) with a review; approved, it joins the queue and starts.
- transshipment_risk: a free-trade-zone address or a freight forwarder goes to review.
- listed owners below 50% together: review; 50% and over: denied.
- a booking whose projected compute crosses a threshold waits for review (block) or is booked and reported
  (allow); the report shows the arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta

from gpulease.runtime import Runtime
from tests.api.test_holds import review_of
from tests.conftest import Clock, Facility

A100 = "A100-80GB"
H100 = "H100-80GB"


def test_a_young_company_booking_many_gpus_goes_to_review_at_booking(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    facility.nodes(10)
    facility.prices()
    young = (clock() - timedelta(days=85)).date().isoformat()
    c = facility.customer("Brightpath Compute Labs Inc.", incorporated_on=young)  # declares no requested_gpus
    assert c["compliance_status"] == "cleared"
    me = facility.customer_key(c["id"])
    first = facility.lease(me, gpu_model=A100, gpu_count=32)
    assert first["state"] == "active"  # 32 < 64: fine
    second = facility.lease(me, gpu_model=A100, gpu_count=32)  # 32 more: 64 held in all
    assert second["state"] == "pending_compliance" and second["gpus"] == []
    assert second["state_reason"] == "This booking is being reviewed. Please contact support."
    item = review_of(facility, c["id"])
    assert item["kind"] == "booking" and item["details"]["lease_id"] == second["id"]
    [flag] = item["details"]["red_flags"]
    assert flag["rule"] == "new_company_large_request" and "on top of the 32 it holds (64)" in flag["evidence"]
    r = facility.c.post(
        f"/api/v1/reviews/{item['id']}/decision",
        headers=facility.k.co,
        json={"decision": "approve", "comment": "funded start-up, contract on file"},
    )
    assert r.status_code == 200, r.text
    assert facility.c.get(f"/api/v1/leases/{second['id']}", headers=me).json()["state"] == "active"


def test_transshipment_and_minority_listed_ownership_rules(facility: Facility) -> None:
    fz = facility.customer(
        "Oceanic Freight Forwarding FZE", country="AE", address="Plot S10, Jebel Ali Free Zone, Dubai"
    )
    assert fz["compliance_status"] == "review"
    sc = facility.c.get(f"/api/v1/customers/{fz['id']}/screening", headers=facility.k.co).json()
    assert {f["rule"] for f in sc["red_flags"]} == {"transshipment_risk"}

    # two listed owners at 24% each: the 50% rule's own threshold says review, not denial
    minority = facility.customer(
        "Tern Analytics Pte. Ltd.",
        country="SG",
        owners=[
            {"name": "iFlytek Co., Ltd.", "percent": 24},
            {"name": "Beijing SenseTime Technology Development Co., Ltd.", "percent": 24},
            {"name": "Lee Wei Ming", "percent": 52},
        ],
    )
    assert minority["compliance_status"] == "review"
    majority = facility.customer(
        "Heron Analytics Pte. Ltd.",
        country="SG",
        owners=[
            {"name": "iFlytek Co., Ltd.", "percent": 26},
            {"name": "Beijing SenseTime Technology Development Co., Ltd.", "percent": 25},
            {"name": "Lee Wei Ming", "percent": 49},
        ],
    )
    assert majority["compliance_status"] == "denied"
    assert review_of(facility, minority["id"])["licence_needed_for"] == []  # one officer may clear a review


def test_a_booking_that_would_cross_a_compute_threshold_is_reviewed_before_it_starts(
    facility: Facility, clock: Clock
) -> None:
    facility.nodes(2)
    facility.prices()
    c = facility.customer()
    me = facility.customer_key(c["id"])
    # 16 A100 for 30 days: 16 × 3.12e14 × 2,592,000 s ≈ 1.29e22 operations: under 1e24
    small = facility.lease(me, gpu_model=A100, gpu_count=16, end=(clock() + timedelta(days=30)).isoformat())
    assert small["state"] == "active"
    facility.c.post(f"/api/v1/leases/{small['id']}/end", headers=me)


def test_compute_threshold_block_and_allow(
    fresh_runtime: Callable[[], AbstractContextManager[tuple[Runtime, Clock, Facility]]],
) -> None:
    for action in ("block", "allow"):
        with fresh_runtime() as (rt, clock, f):
            rt.settings = rt.settings.model_copy(
                update={"compute_thresholds": (1e21,), "compute_threshold_action": action}
            )
            f.nodes(1)
            f.prices()
            c = f.customer()
            me = f.customer_key(c["id"])
            lease = f.lease(me, gpu_model=A100, gpu_count=8, end=(clock() + timedelta(days=10)).isoformat())
            item = review_of(f, c["id"])
            compute = item["details"]["compute"]
            assert compute["thresholds_crossed"] == [1e21]
            assert compute["projected_operations"] == 8 * compute["flops_per_gpu"] * 864000
            assert "8 GPUs × " in compute["arithmetic"] and "864,000 s" in compute["arithmetic"]
            if action == "block":
                assert lease["state"] == "pending_compliance" and item["kind"] == "booking"
            else:
                assert lease["state"] == "active" and item["kind"] == "compute_projection"


def test_the_gpus_a_customer_declared_are_kept_and_read_at_every_screening(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    """The declaration is part of the KYC record: a re-screening (a list load, a profile change) reads it again,
    so the new-company flag raised at onboarding does not vanish from the next screening; a later declaration of
    more GPUs is screened like any other change."""
    from gpulease.services.customer_screening import rescreen_all

    young = (clock() - timedelta(days=40)).date().isoformat()
    c = facility.customer("Brightpath Compute Labs Inc.", incorporated_on=young, requested_gpus=256)
    assert c["compliance_status"] == "review" and c["requested_gpus"] == 256

    def flags(customer_id: int) -> set[str]:
        sc = facility.c.get(f"/api/v1/customers/{customer_id}/screening", headers=facility.k.co).json()
        return {f["rule"] for f in sc["red_flags"]}

    assert flags(c["id"]) == {"new_company_large_request"}
    with runtime.work() as w:  # a list load: the production re-screening path
        rescreen_all(w, w.index(), trigger="list version 2", list_version_id=None)
    assert flags(c["id"]) == {"new_company_large_request"}
    r = facility.c.patch(f"/api/v1/customers/{c['id']}", headers=facility.k.op, json={"address": "2 Market St"})
    assert r.status_code == 200 and r.json()["requested_gpus"] == 256
    assert flags(c["id"]) == {"new_company_large_request"}

    other = facility.customer("Kestrel Render Works Inc.", incorporated_on=young, requested_gpus=8)
    assert other["compliance_status"] == "cleared" and not flags(other["id"])
    r = facility.c.patch(f"/api/v1/customers/{other['id']}", headers=facility.k.op, json={"requested_gpus": 128})
    assert r.status_code == 200, r.text
    assert r.json()["compliance_status"] == "review" and flags(other["id"]) == {"new_company_large_request"}
    file = facility.c.get(f"/api/v1/customers/{other['id']}/compliance-file", headers=facility.k.co).json()
    assert file["kyc"]["requested_gpus"] == 128
