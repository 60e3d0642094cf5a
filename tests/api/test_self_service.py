"""Self-service through the API: customers make, name, rotate and revoke their own keys (the secret shown once),
operators list and revoke any; customers update contacts and address, and a change to what screening reads
screens them again."""

from __future__ import annotations

from typing import Any

from gpulease.runtime import Runtime
from gpulease.store.models import IdempotencyRecord, Screening
from tests.conftest import Clock, Facility


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _works(f: Facility, secret: str) -> bool:
    r = f.c.get("/api/v1/leases", headers=_bearer(secret))
    assert r.status_code in (200, 401), r.text
    return bool(r.status_code == 200)


def test_a_customer_makes_names_rotates_and_revokes_its_own_keys(facility: Facility, clock: Clock) -> None:
    cust = facility.customer()
    me = facility.customer_key(cust["id"])
    r = facility.c.post("/api/v1/keys", headers=me, json={"label": "training cluster"})
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["key"].startswith("gl_") and new["role"] == "customer" and new["customer_id"] == cust["id"]
    assert new["label"] == "training cluster" and _works(facility, new["key"])
    listed = facility.c.get("/api/v1/keys", headers=me).json()
    assert {k["id"] for k in listed} >= {new["id"]} and all("key" not in k for k in listed)
    assert all(k["customer_id"] == cust["id"] for k in listed)
    r = facility.c.patch(f"/api/v1/keys/{new['id']}", headers=me, json={"label": "nightly jobs"})
    assert r.status_code == 200 and r.json()["label"] == "nightly jobs"

    # rotate with a grace period: both work until it ends, then only the new one
    r = facility.c.post(f"/api/v1/keys/{new['id']}/rotate", headers=me, json={"grace_s": 600})
    assert r.status_code == 201
    rotated = r.json()
    assert rotated["id"] != new["id"] and rotated["label"] == "nightly jobs" and rotated["key"] != new["key"]
    assert _works(facility, new["key"]) and _works(facility, rotated["key"])
    clock.advance(seconds=601)
    assert not _works(facility, new["key"]) and _works(facility, rotated["key"])
    r = facility.c.post(f"/api/v1/keys/{new['id']}/rotate", headers=me, json={})
    assert r.status_code == 409 and "revoked" in r.json()["detail"]
    # rotate without grace: the old one stops at once
    again = facility.c.post(f"/api/v1/keys/{rotated['id']}/rotate", headers=me, json={}).json()
    assert not _works(facility, rotated["key"]) and _works(facility, again["key"])
    # revoke
    r = facility.c.delete(f"/api/v1/keys/{again['id']}", headers=me)
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert not _works(facility, again["key"])


def test_a_customer_cannot_touch_other_keys_nor_mint_other_roles(facility: Facility) -> None:
    a = facility.customer()
    b = facility.customer("Beta Robotics Inc.")
    me, them = facility.customer_key(a["id"]), facility.customer_key(b["id"])
    theirs = facility.c.post("/api/v1/keys", headers=them, json={}).json()
    for method, path, body in (
        ("DELETE", f"/api/v1/keys/{theirs['id']}", None),
        ("POST", f"/api/v1/keys/{theirs['id']}/rotate", {}),
        ("PATCH", f"/api/v1/keys/{theirs['id']}", {"label": "mine now"}),
    ):
        r = facility.c.request(method, path, headers=me, json=body)
        assert r.status_code == 404 and r.json()["detail"] == f"no key with id {theirs['id']}", path
    assert theirs["id"] not in {k["id"] for k in facility.c.get("/api/v1/keys", headers=me).json()}
    r = facility.c.post("/api/v1/keys", headers=me, json={"role": "operator"})
    assert r.status_code == 403 and "only create customer keys" in r.json()["detail"]
    r = facility.c.post("/api/v1/keys", headers=me, json={"customer_id": b["id"]})
    assert r.status_code == 404
    # the operator key used by these tests is not the customer's to revoke either
    ops = facility.c.get("/api/v1/keys", headers=facility.k.op).json()
    op_key = next(k for k in ops if k["role"] == "operator")
    assert facility.c.delete(f"/api/v1/keys/{op_key['id']}", headers=me).status_code == 404


def test_operators_list_and_revoke_any_key_and_mint_any_role(facility: Facility) -> None:
    cust = facility.customer()
    me = facility.customer_key(cust["id"])
    mine = facility.c.post("/api/v1/keys", headers=me, json={"label": "laptop"}).json()
    everyone = facility.c.get("/api/v1/keys", headers=facility.k.op).json()
    assert {"operator", "compliance", "customer"} <= {k["role"] for k in everyone}
    one = facility.c.get("/api/v1/keys", headers=facility.k.co, params={"customer_id": cust["id"]}).json()
    assert mine["id"] in {k["id"] for k in one} and all(k["customer_id"] == cust["id"] for k in one)
    r = facility.c.delete(f"/api/v1/keys/{mine['id']}", headers=facility.k.co)
    assert r.status_code == 403  # compliance sees keys; only operators revoke them
    assert facility.c.delete(f"/api/v1/keys/{mine['id']}", headers=facility.k.op).status_code == 200
    assert not _works(facility, mine["key"])
    r = facility.c.post("/api/v1/keys", headers=facility.k.op, json={"role": "compliance", "label": "auditor"})
    assert r.status_code == 201 and r.json()["role"] == "compliance"
    r = facility.c.post("/api/v1/keys", headers=facility.k.op, json={"role": "customer"})
    assert r.status_code == 422 and "choose the customer" in r.json()["detail"]


def test_a_replayed_key_creation_does_not_show_or_keep_the_secret(facility: Facility, runtime: Runtime) -> None:
    cust = facility.customer()
    me = facility.customer_key(cust["id"]) | {"Idempotency-Key": "make-a-key-1"}
    first = facility.c.post("/api/v1/keys", headers=me, json={"label": "ci"})
    again = facility.c.post("/api/v1/keys", headers=me, json={"label": "ci"})
    assert first.status_code == again.status_code == 201
    assert "x-gpulease-shown-once" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and again.json()["key"] is None
    with runtime.store.transaction() as s:
        stored = [r.response_body or "" for r in s.query(IdempotencyRecord)]
    assert stored and not any(first.json()["key"] in body for body in stored)


def _screenings(runtime: Runtime, customer_id: int) -> list[str]:
    with runtime.store.transaction() as s:
        return [x.trigger for x in s.query(Screening).filter(Screening.customer_id == customer_id)]


def test_a_customer_updates_contacts_without_and_its_address_with_a_new_screening(
    facility: Facility, runtime: Runtime
) -> None:
    cust = facility.customer()
    me = facility.customer_key(cust["id"])
    contacts: list[dict[str, Any]] = [{"name": "Ada Ops", "email": "ops@acme-robotics.example", "role": "technical"}]
    r = facility.c.patch(f"/api/v1/customers/{cust['id']}", headers=me, json={"contacts": contacts})
    assert r.status_code == 200 and r.json()["contacts"][0]["email"] == "ops@acme-robotics.example"
    assert _screenings(runtime, cust["id"]) == ["onboarding"]
    r = facility.c.patch(f"/api/v1/customers/{cust['id']}", headers=me, json={"address": "9 Harbor Way, Oakland, CA"})
    assert r.status_code == 200
    body = r.json()
    assert body["address"] == "9 Harbor Way, Oakland, CA" and body["compliance_status"] == "cleared"
    assert _screenings(runtime, cust["id"]) == ["onboarding", "profile change"]
    r = facility.c.patch(
        f"/api/v1/customers/{cust['id']}", headers=me, json={"contacts": [{"name": "X", "email": "x"}]}
    )
    assert r.status_code == 422 and "not an email address" in r.json()["detail"]
    r = facility.c.patch(f"/api/v1/customers/{cust['id']}", headers=me, json={"country": "USA"})
    assert r.status_code == 422 and "ISO 3166-1" in r.json()["detail"]
    other = facility.customer("Beta Robotics Inc.")
    r = facility.c.patch(f"/api/v1/customers/{other['id']}", headers=me, json={"address": "here"})
    assert r.status_code == 404


def test_a_changed_owner_that_is_listed_puts_the_customer_in_review_and_its_leases_on_hold(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    me = facility.customer_key(cust["id"])
    lease = facility.lease(me, gpu_model="A100-80GB", gpu_count=1)
    owners = [{"name": "iFlytek Co., Ltd.", "percent": 60}]
    r = facility.c.patch(f"/api/v1/customers/{cust['id']}", headers=me, json={"owners": owners})
    assert r.status_code == 200 and r.json()["compliance_status"] == "on_hold"  # on hold, never why
    assert facility.c.get(f"/api/v1/leases/{lease['id']}", headers=me).json()["state"] == "suspended"
    alerts = facility.c.get("/api/v1/alerts", headers=facility.k.op).json()
    assert any(a["kind"] == "customer_newly_hit" and "profile change" in a["message"] for a in alerts)
    reviews = facility.c.get("/api/v1/reviews", headers=facility.k.co).json()
    assert any(x["customer_id"] == cust["id"] and x["kind"] == "rescreen" for x in reviews)
    clock.advance(minutes=1)
    r = facility.c.post("/api/v1/leases", headers=me, json={"gpu_model": "A100-80GB", "gpu_count": 1})
    assert r.status_code == 403  # not cleared: no new lease until a person decides
