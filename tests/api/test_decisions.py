"""Decisions with evidence (issue 10, item 1), through the API on both stores: clearing an exact Entity List
hit needs a licence and two different compliance officers; decisions are kept against their evidence, so a list
load with the same evidence changes nothing and changed evidence re-opens review; a licence's expiry re-opens it
on the clock; a party cleared under a licence is cleared wherever it appears in an ownership chain."""

from __future__ import annotations

from typing import Any

from gpulease.runtime import Runtime
from gpulease.services.customer_screening import rescreen_all
from tests.api.test_holds import LICENCE, review_of, second_compliance
from tests.conftest import Clock, Facility

A100 = "A100-80GB"
IFLYTEK_NAME = "iFlytek Co., Ltd."
IFLYTEK: dict[str, Any] = {"country": "CN", "local_name": "科大讯飞股份有限公司", "owners": []}


def _decide(f: Facility, review_id: int, headers: dict[str, str], **body: Any) -> Any:
    return f.c.post(f"/api/v1/reviews/{review_id}/decision", headers=headers, json=body)


def _status(f: Facility, customer_id: int) -> str:
    return str(f.c.get(f"/api/v1/customers/{customer_id}", headers=f.k.op).json()["compliance_status"])


def test_an_entity_list_hit_is_cleared_only_with_a_licence_and_two_officers(
    facility: Facility, runtime: Runtime
) -> None:
    facility.nodes(1)
    facility.prices()
    c = facility.customer(IFLYTEK_NAME, **IFLYTEK)
    assert c["compliance_status"] == "denied"
    item = review_of(facility, c["id"])
    assert item["licence_needed_for"], item  # the exact hit on a blocking list
    why = "BIS licence for speech-model training on A100s"

    r = _decide(facility, item["id"], facility.k.co, decision="approve", comment=why)
    assert r.status_code == 422 and "licence" in r.json()["detail"]
    r = _decide(facility, item["id"], facility.k.co, decision="approve", comment=why, licence=LICENCE)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "awaiting_second_approval" and body["open"] is True
    assert _status(facility, c["id"]) == "denied"  # nothing is cleared by one person
    assert facility.lease(customer_id=c["id"], gpu_model=A100, gpu_count=8, expect=403)
    r = _decide(facility, item["id"], facility.k.co, decision="approve", comment=why, licence=LICENCE)
    assert r.status_code == 409 and "different compliance officer" in r.json()["detail"]
    assert _decide(facility, item["id"], facility.k.op, decision="approve", comment=why).status_code == 403

    r = _decide(facility, item["id"], second_compliance(facility), decision="approve", comment="checked the licence")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "approved" and body["open"] is False
    assert [d["final"] for d in body["decisions"]] == [False, True]
    assert body["decisions"][1]["licence"]["number"] == LICENCE["number"]
    assert len({d["evidence_fingerprint"] for d in body["decisions"]}) == 1
    assert _status(facility, c["id"]) == "cleared"
    facility.lease(customer_id=c["id"], gpu_model=A100, gpu_count=8)

    # the same evidence at the next list load: the decision stands
    with runtime.work() as w:
        out = rescreen_all(w, w.index(), trigger="list version 2", list_version_id=None)
    assert c["id"] not in out.newly_hit and _status(facility, c["id"]) == "cleared"

    # its wholly owned subsidiary is no longer denied for the parent's listing: the parent's decision applies in
    # the chain, with the licence named; what is its own (a parent in a country of concern) still goes to review
    sub = facility.customer(
        "Shenzhen Xunfei Cloud Computing Co., Ltd.",
        country="CN",
        parent=IFLYTEK_NAME,
        owners=[{"name": IFLYTEK_NAME, "percent": 100}],
    )
    assert sub["compliance_status"] == "review"
    sc = facility.c.get(f"/api/v1/customers/{sub['id']}/screening", headers=facility.k.co).json()
    assert any(LICENCE["number"] in reason for reason in sc["reasons"]), sc["reasons"]
    assert review_of(facility, sub["id"])["licence_needed_for"] == []  # nothing blocking left to clear

    # a customer that is itself the listed party (a new account, same name) gets nothing from that licence
    again = facility.customer("iFlytek Co., Ltd", country="CN", owners=[])
    assert again["compliance_status"] == "denied"


def test_changed_evidence_reopens_review_and_an_expired_licence_too(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    facility.nodes(1)
    facility.prices()
    c = facility.customer(IFLYTEK_NAME, **IFLYTEK)
    item = review_of(facility, c["id"])
    licence = {**LICENCE, "expires_on": "2026-12-31"}
    r = _decide(facility, item["id"], facility.k.co, decision="approve", comment="ok", licence=licence)
    assert r.status_code == 202
    r = _decide(facility, item["id"], second_compliance(facility), decision="approve", comment="ok")
    assert r.status_code == 200
    lease = facility.lease(customer_id=c["id"], gpu_model=A100, gpu_count=2)

    # the licence expires: the clock puts the customer back in review and holds its leases
    clock.advance(days=60)
    result = runtime.tick()
    assert result.failed == {} and result.reopened == [c["id"]]
    assert _status(facility, c["id"]) == "review"
    assert facility.c.get(f"/api/v1/leases/{lease['id']}", headers=facility.k.op).json()["state"] == "suspended"
    reopened = review_of(facility, c["id"])
    assert reopened["kind"] == "licence_expired" and reopened["licence_needed_for"]
    assert runtime.tick().reopened == []  # once


def test_a_decision_stands_only_for_the_evidence_it_saw(facility: Facility, runtime: Runtime) -> None:
    # a review for undisclosed ownership, approved; then the customer declares a listed owner: review again
    c = facility.customer("Northwind Data Labs LLC", owners=[{"name": "Jane Roe", "percent": 40}], end_use="AI")
    assert c["compliance_status"] == "review"
    item = review_of(facility, c["id"])
    assert item["licence_needed_for"] == []  # no blocking-list hit: one officer decides
    r = _decide(facility, item["id"], facility.k.co, decision="approve", comment="owners verified by call")
    assert r.status_code == 200 and r.json()["status"] == "approved"
    with runtime.work() as w:
        assert rescreen_all(w, w.index(), trigger="list version 2", list_version_id=None).newly_hit == []
    me = facility.customer_key(c["id"])
    owners = [{"name": "Jane Roe", "percent": 40}, {"name": "SenseTime Group Limited", "percent": 30}]
    r = facility.c.patch(f"/api/v1/customers/{c['id']}", headers=me, json={"owners": owners})
    assert r.status_code == 200 and r.json()["compliance_status"] == "on_hold"
    assert _status(facility, c["id"]) == "review"
