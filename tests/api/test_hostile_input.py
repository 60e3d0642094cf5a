"""Hostile input never reaches a 500: a table of hand-made bad requests through the API and the dashboard.

Each case is sent to a running app over either store (the suite runs this file on SQLite and on PostgreSQL) and
must be answered with a 4xx: a problem+json with a sentence from the API, an error page or the form with its
problem from the dashboard. Where the answer is known exactly, its status is asserted too. The facility is made
once per module (a few nodes, prices, a customer, a lease, a review item) and shared: every case is refused, so
no case changes what the next one sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gpulease.api.app import create_app
from gpulease.runtime import Runtime
from gpulease.services import idempotency, keys
from gpulease.services.context import SYSTEM
from gpulease.settings import Settings
from gpulease.web.session import COOKIE, csrf_token
from tests.conftest import Clock, Facility, Keys, fresh_db_url

BIG = 99_999_999_999  # beyond a 32-bit id
HUGE = 2**64
MB10 = 10 * 1024 * 1024
UNSET: Any = object()


@dataclass
class World:
    api: TestClient
    dash: dict[str, TestClient]  # signed in to the dashboard, by role
    keys: Keys
    ids: dict[str, Any]
    clock: Clock
    rt: Runtime


@pytest.fixture(scope="module")
def world(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("hostile")
    clock = Clock()
    settings = Settings(
        data_dir=tmp / "data", database_url=fresh_db_url(template_db, tmp), stop_grace_s=1.0, rate_limit_per_s=0
    )
    rt = Runtime(settings, clock=clock)
    try:
        with rt.work() as w:
            ks = Keys(
                keys.create_key(w, actor=SYSTEM, role="operator"), keys.create_key(w, actor=SYSTEM, role="compliance")
            )
        with TestClient(create_app(rt, background=False)) as api:
            f = Facility(api, ks, rt)
            node = f.nodes(2)[0]
            f.prices()
            acme = f.customer()
            flagged = f.customer("iFlytek Co., Ltd.", "CN", owners=[])
            lease = f.lease(customer_id=acme["id"], gpu_model="A100-80GB", gpu_count=1)
            until = (clock() + timedelta(hours=2)).isoformat()
            lease_with_end = f.lease(customer_id=acme["id"], gpu_model="A100-80GB", gpu_count=1, end=until)
            review = api.get("/api/v1/reviews", headers=ks.co).json()[0]
            dash = {"operator": TestClient(api.app), "compliance": TestClient(api.app)}
            for role, c in dash.items():
                r = c.post("/login", data={"key": getattr(ks, role), "next": "/"}, follow_redirects=False)
                assert r.status_code == 303, r.text
            ids = {
                "lease": lease["id"],
                "lease_with_end": lease_with_end["id"],
                "customer": acme["id"],
                "flagged": flagged["id"],
                "node": node["id"],
                "review": review["id"],
            }
            yield World(api, dash, ks, ids, clock, rt)
            for c in dash.values():
                c.close()
    finally:
        rt.close()


@dataclass(frozen=True)
class Case:
    """One hostile request and the status it must get: `path` may name {lease}, {lease_with_end}, {customer},
    {node}, {review}."""

    id: str
    method: str
    path: str
    json: Any = UNSET
    content: bytes | None = None
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    form: dict[str, Any] | None = None
    expect: int = 422
    role: str = "operator"  # or "compliance"


def _customer(**over: Any) -> dict[str, Any]:
    return {"legal_name": "Harbor Analytics LLC", "country": "US", "address": "2 Pier Rd", **over}


def _lease(**over: Any) -> dict[str, Any]:
    return {"customer_id": 1, "gpu_model": "A100-80GB", "gpu_count": 1, "plan": "on_demand", **over}


def _node(**over: Any) -> dict[str, Any]:
    return {"site": "s1", "cluster": "c1", "name": "hostile-n0", "gpu_model": "A100-80GB", "gpu_count": 8, **over}


def _price(**over: Any) -> dict[str, Any]:
    return {"gpu_model": "A100-80GB", "plan": "on_demand", "rate": "1.25", **over}


FAR = "9999-12-31T23:59:59+00:00"
# fmt: off
API_CASES = [
    # -- customers: strings (NUL, control characters, over the column), types, numbers, dates
    Case("customer-nul-name", "POST", "/api/v1/customers", _customer(legal_name="Acme\x00Corp"), expect=422),
    Case("customer-bell-name", "POST", "/api/v1/customers", _customer(legal_name="Acme\x07Corp"), expect=422),
    Case("customer-newline-name", "POST", "/api/v1/customers", _customer(legal_name="Acme\nCorp"), expect=422),
    Case("customer-name-301", "POST", "/api/v1/customers", _customer(legal_name="A" * 301), expect=422),
    Case("customer-name-1mb", "POST", "/api/v1/customers", _customer(legal_name="A" * 500_000), expect=422),
    Case("customer-local-name-nul", "POST", "/api/v1/customers", _customer(local_name="\x00"), expect=422),
    Case("customer-address-nul", "POST", "/api/v1/customers", _customer(address="1 Main St\x00"), expect=422),
    Case("customer-address-100k", "POST", "/api/v1/customers", _customer(address="x" * 100_000), expect=422),
    Case("customer-end-use-escape", "POST", "/api/v1/customers", _customer(end_use="ok\x1b[31m"), expect=422),
    Case("customer-domain-201", "POST", "/api/v1/customers", _customer(email_domain="d" * 201), expect=422),
    Case("customer-website-nul", "POST", "/api/v1/customers", _customer(website="https://a\x00.b"), expect=422),
    Case("customer-parent-301", "POST", "/api/v1/customers", _customer(parent="P" * 301), expect=422),
    Case("customer-country-nul", "POST", "/api/v1/customers", _customer(country="U\x00"), expect=422),
    Case("customer-country-cjk", "POST", "/api/v1/customers", _customer(country="中国"), expect=422),
    Case("customer-lone-surrogate", "POST", "/api/v1/customers", content=b'{"legal_name":"A\\ud800","country":"US"}'),
    Case("customer-name-number", "POST", "/api/v1/customers", _customer(legal_name=12345), expect=422),
    Case("customer-name-null", "POST", "/api/v1/customers", _customer(legal_name=None), expect=422),
    Case("customer-body-array", "POST", "/api/v1/customers", [1, 2, 3], expect=422),
    Case("customer-body-not-json", "POST", "/api/v1/customers", content=b"{legal_name: Acme", expect=422),
    Case("customer-date-overflow", "POST", "/api/v1/customers", _customer(incorporated_on="99999-01-01"), expect=422),
    Case("customer-date-year-0", "POST", "/api/v1/customers", _customer(incorporated_on="0000-01-01"), expect=422),
    Case("customer-date-huge-number", "POST", "/api/v1/customers", _customer(incorporated_on=1e20), expect=422),
    Case("customer-owner-nan", "POST", "/api/v1/customers", content=b'{"legal_name":"A","country":"US",'
         b'"owners":[{"name":"B","percent":NaN}]}', expect=422),
    Case("customer-owner-huge", "POST", "/api/v1/customers", _customer(owners=[{"name": "B", "percent": 1e308}]),
         expect=422),
    Case("customer-owner-nul", "POST", "/api/v1/customers", _customer(owners=[{"name": "B\x00", "percent": 5}]),
         expect=422),
    Case("customer-owners-10k", "POST", "/api/v1/customers",
         _customer(owners=[{"name": f"O{i}", "percent": 0.001} for i in range(10_000)]), expect=422),
    Case("customer-requested-gpus-huge", "POST", "/api/v1/customers", _customer(requested_gpus=HUGE), expect=422),
    Case("customer-10mb-body", "POST", "/api/v1/customers", content=b'{"legal_name":"' + b"A" * MB10 + b'"}',
         expect=413),
    Case("customer-id-beyond-32-bit", "GET", f"/api/v1/customers/{BIG}", expect=422),
    Case("customer-id-zero", "GET", "/api/v1/customers/0", expect=422),
    Case("customer-id-negative", "GET", "/api/v1/customers/-1", expect=422),
    Case("customer-id-float", "GET", "/api/v1/customers/1.5", expect=422),
    # -- leases: ids, counts, windows that overflow a datetime or a column
    Case("lease-id-beyond-32-bit", "GET", f"/api/v1/leases/{BIG}", expect=422),
    Case("lease-id-huge", "GET", f"/api/v1/leases/{HUGE}", expect=422),
    Case("lease-end-id-beyond-32-bit", "POST", f"/api/v1/leases/{BIG}/end", expect=422),
    Case("lease-customer-beyond-32-bit", "POST", "/api/v1/leases", _lease(customer_id=BIG), expect=422),
    Case("lease-count-huge", "POST", "/api/v1/leases", _lease(gpu_count=HUGE), expect=422),
    Case("lease-count-zero", "POST", "/api/v1/leases", _lease(gpu_count=0), expect=422),
    Case("lease-count-string", "POST", "/api/v1/leases", _lease(gpu_count="eight"), expect=422),
    Case("lease-count-infinity", "POST", "/api/v1/leases", content=b'{"customer_id":1,"gpu_model":"A100-80GB",'
         b'"gpu_count":Infinity}', expect=422),
    Case("lease-model-nul", "POST", "/api/v1/leases", _lease(gpu_model="A100\x00"), expect=422),
    Case("lease-model-10k", "POST", "/api/v1/leases", _lease(gpu_model="A" * 10_000), expect=422),
    Case("lease-plan-nul", "POST", "/api/v1/leases", _lease(plan="on_demand\x00"), expect=422),
    Case("lease-start-far-future", "POST", "/api/v1/leases", _lease(start=FAR, duration_s=3600), expect=422),
    Case("lease-end-far-future", "POST", "/api/v1/leases", _lease(plan="reserved", end=FAR), expect=422),
    Case("lease-end-offset-overflow", "POST", "/api/v1/leases", _lease(end="9999-12-31T23:00:00-23:59"),
         expect=422),
    Case("lease-start-year-1", "POST", "/api/v1/leases", _lease(start="0001-01-01T00:00:00+00:00"), expect=422),
    Case("lease-duration-huge", "POST", "/api/v1/leases", _lease(start="asap", duration_s=2**62), expect=422),
    Case("lease-duration-beyond-int32", "POST", "/api/v1/leases", _lease(start="asap", duration_s=2**31),
         expect=422),
    Case("lease-wait-huge", "POST", "/api/v1/leases", _lease(start="asap", duration_s=60, max_wait_s=2**62),
         expect=422),
    Case("lease-naive-start", "POST", "/api/v1/leases", _lease(start="2026-12-01T09:00:00"), expect=422),
    Case("lease-extra-field", "POST", "/api/v1/leases", _lease(surprise=1), expect=422),
    Case("quote-end-far-future", "POST", "/api/v1/quotes", _lease(end=FAR), expect=422),
    Case("extend-far-future", "POST", "/api/v1/leases/{lease_with_end}/extend", {"end": FAR}, expect=422),
    Case("extend-not-a-date", "POST", "/api/v1/leases/{lease_with_end}/extend", {"end": "tomorrow"}, expect=422),
    Case("extend-beyond-horizon", "POST", "/api/v1/leases/{lease_with_end}/extend",
         {"end": "2199-01-01T00:00:00Z"}, expect=422),
    Case("list-leases-state-nul", "GET", "/api/v1/leases", params={"state": "active\x00"}, expect=422),
    Case("list-leases-customer-big", "GET", "/api/v1/leases", params={"customer_id": BIG}, expect=422),
    Case("availability-far", "GET", "/api/v1/availability",
         params={"gpu_model": "A100-80GB", "gpu_count": 1, "start": FAR}, expect=422),
    Case("availability-count-huge", "GET", "/api/v1/availability",
         params={"gpu_model": "A100-80GB", "gpu_count": HUGE}, expect=422),
    Case("availability-model-nul", "GET", "/api/v1/availability", params={"gpu_model": "\x00", "gpu_count": 1},
         expect=422),
    # -- runs: a NUL where the operating system cannot take one is refused before anything starts
    Case("run-command-nul", "POST", "/api/v1/leases/{lease}/runs", {"command": ["echo", "a\x00b"]}, expect=422),
    Case("run-env-value-nul", "POST", "/api/v1/leases/{lease}/runs", {"command": ["true"], "env": {"A": "\x00"}},
         expect=422),
    Case("run-env-key-equals", "POST", "/api/v1/leases/{lease}/runs", {"command": ["true"], "env": {"A=B": "1"}},
         expect=422),
    Case("run-env-key-empty", "POST", "/api/v1/leases/{lease}/runs", {"command": ["true"], "env": {"": "1"}},
         expect=422),
    Case("run-cwd-nul", "POST", "/api/v1/leases/{lease}/runs", {"command": ["true"], "cwd": "/tmp\x00"}, expect=422),
    Case("run-command-empty", "POST", "/api/v1/leases/{lease}/runs", {"command": []}, expect=422),
    Case("run-command-100k-args", "POST", "/api/v1/leases/{lease}/runs", {"command": ["x"] * 100_000}, expect=422),
    Case("run-id-nul", "GET", "/api/v1/leases/{lease}/runs/ab%00cd", expect=404),
    Case("run-id-long", "GET", "/api/v1/leases/{lease}/runs/" + "a" * 5000, expect=404),
    Case("run-logs-offset-huge", "GET", "/api/v1/leases/{lease}/runs/0123456789abcdef/logs",
         params={"offset": HUGE}, expect=422),
    # -- inventory and prices: names over the column, numbers over the column, money out of range
    Case("node-name-nul", "POST", "/api/v1/nodes", _node(name="n\x00"), expect=422),
    Case("node-name-100", "POST", "/api/v1/nodes", _node(name="n" * 100), expect=422),
    Case("node-site-tab", "POST", "/api/v1/nodes", _node(site="s\t1"), expect=422),
    Case("node-count-huge", "POST", "/api/v1/nodes", _node(gpu_count=HUGE), expect=422),
    Case("node-id-beyond-32-bit", "DELETE", f"/api/v1/nodes/{BIG}", expect=422),
    Case("node-state-nul", "PUT", "/api/v1/nodes/{node}/state", {"state": "down\x00"}, expect=422),
    Case("nodes-model-nul", "GET", "/api/v1/nodes", params={"gpu_model": "A100\x00"}, expect=422),
    Case("price-rate-overflow", "PUT", "/api/v1/prices", _price(rate="1e400"), expect=422),
    Case("price-rate-10-digits", "PUT", "/api/v1/prices", _price(rate="1234567890"), expect=422),
    Case("price-rate-7-places", "PUT", "/api/v1/prices", _price(rate="1.1234567"), expect=422),
    Case("price-rate-nan", "PUT", "/api/v1/prices", _price(rate="NaN"), expect=422),
    Case("price-rate-negative", "PUT", "/api/v1/prices", _price(rate="-1"), expect=422),
    Case("price-free-hours-beyond-int32", "PUT", "/api/v1/prices", _price(cancel_free_hours=2**31), expect=422),
    Case("price-notice-huge", "PUT", "/api/v1/prices", _price(plan="interruptible", preemption_notice_s=2**40),
         expect=422),
    Case("price-currency-nul", "PUT", "/api/v1/prices", _price(currency="US\x00"), expect=422),
    Case("price-currency-unicode", "PUT", "/api/v1/prices", _price(currency="ÄÖÜ"), expect=422),
    Case("calendar-start-far", "GET", "/api/v1/calendar", params={"start": FAR}, expect=422),
    Case("calendar-days-huge", "GET", "/api/v1/calendar", params={"days": HUGE}, expect=422),
    Case("calendar-model-nul", "GET", "/api/v1/calendar", params={"gpu_model": "\x00"}, expect=422),
    # -- compliance: screening, reviews, alerts
    Case("screen-name-nul", "POST", "/api/v1/screen", {"name": "Acme\x00"}, expect=422, role="compliance"),
    Case("screen-name-1mb", "POST", "/api/v1/screen", {"name": "A" * 500_000}, expect=422, role="compliance"),
    Case("screen-address-nul", "POST", "/api/v1/screen", {"name": "Acme", "address": "\x00"}, expect=422,
         role="compliance"),
    Case("screen-name-rtl-override", "POST", "/api/v1/screen", {"name": "\u202e\u0000"}, expect=422, role="compliance"),
    Case("decision-comment-nul", "POST", "/api/v1/reviews/{review}/decision",
         {"decision": "approve", "comment": "ok\x00"}, expect=422, role="compliance"),
    Case("decision-comment-5000", "POST", "/api/v1/reviews/{review}/decision",
         {"decision": "approve", "comment": "c" * 5000}, expect=422, role="compliance"),
    Case("decision-review-big", "POST", f"/api/v1/reviews/{BIG}/decision",
         {"decision": "approve", "comment": "ok"}, expect=422, role="compliance"),
    Case("reviews-status-nul", "GET", "/api/v1/reviews", params={"status": "open\x00"}, expect=422),
    Case("alert-ack-big", "POST", f"/api/v1/alerts/{BIG}/ack", expect=422),
    Case("invoice-period-nul", "GET", "/api/v1/customers/{customer}/invoices", params={"period": "2026-11\x00"},
         expect=422),
    Case("invoice-period-newline", "GET", "/api/v1/customers/{customer}/invoices", params={"period": "2026-11\n"},
         expect=422),
    Case("usage-period-month-13", "GET", "/api/v1/customers/{customer}/usage.csv", params={"period": "2026-13"},
         expect=422),
    Case("billing-verify-period-long", "GET", "/api/v1/billing/verify", params={"period": "2" * 10_000},
         expect=422),
    Case("idempotency-long-path", "POST", "/api/v1/leases/" + "1" * 600 + "/end",
         headers={"Idempotency-Key": "long-path-1"}, expect=422),
    Case("idempotency-long-unknown-path", "POST", "/api/v1/" + "x" * 600,
         headers={"Idempotency-Key": "long-path-2"}, expect=404),
    Case("idempotency-key-nul", "POST", "/api/v1/screen", {"name": "Acme"}, headers={"Idempotency-Key": "a\x00"},
         expect=422),
]
# fmt: on


def _fill(path: str, ids: dict[str, Any]) -> str:
    return path.format(**ids) if "{" in path else path


def _send(c: TestClient, case: Case, ids: dict[str, Any], headers: dict[str, str]) -> Any:
    kw: dict[str, Any] = {"params": case.params, "headers": {**headers, **case.headers}}
    if case.form is not None:
        kw["data"] = case.form
    elif case.content is not None:
        kw["content"] = case.content
        kw["headers"]["content-type"] = "application/json"
    elif case.json is not UNSET:
        body = json.dumps(case.json).replace('"customer_id": 1,', f'"customer_id": {ids["customer"]},')
        kw["content"] = body.encode()
        kw["headers"]["content-type"] = "application/json"
    return c.request(case.method, _fill(case.path, ids), follow_redirects=False, **kw)


@pytest.mark.parametrize("case", API_CASES, ids=[c.id for c in API_CASES])
def test_the_api_answers_hostile_input_with_a_problem(world: World, case: Case) -> None:
    r = _send(world.api, case, world.ids, world.keys.h(getattr(world.keys, case.role)))
    assert r.status_code == case.expect, f"{case.id}: {r.status_code} {r.text[:500]}"
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    problem = r.json()
    assert problem["status"] == r.status_code and problem["detail"], problem


def _form(**fields: Any) -> dict[str, Any]:
    return {k: str(v) for k, v in fields.items()}


def _booking(**over: Any) -> dict[str, Any]:
    fields = {"customer_id": "{customer}", "gpu_model": "A100-80GB", "gpu_count": 1, "plan": "on_demand"}
    return _form(**{**fields, "start": "", "end": "", **over})


def _kyc(**over: Any) -> dict[str, Any]:
    return _form(**{"legal_name": "Harbor Analytics LLC", "country": "US", **over})


# fmt: off
WEB_CASES = [
    Case("page-lease-beyond-32-bit", "GET", f"/leases/{BIG}", expect=404),
    Case("page-lease-negative", "GET", "/leases/-1", expect=404),
    Case("page-lease-huge", "GET", f"/leases/{HUGE}", expect=404),
    Case("page-lease-not-a-number", "GET", "/leases/abc", expect=404),
    Case("page-customer-beyond-32-bit", "GET", f"/customers/{BIG}", expect=404),
    Case("page-leases-customer-big", "GET", "/leases", params={"customer": BIG}, expect=422),
    Case("page-leases-customer-superscript", "GET", "/leases", params={"customer": "²"}, expect=200),  # no filter
    Case("page-leases-state-nul", "GET", "/leases", params={"state": "active\x00"}, expect=422),
    Case("page-invoices-customer-big", "GET", "/invoices", params={"customer": BIG}, expect=404),
    Case("page-invoices-customer-superscript", "GET", "/invoices", params={"customer": "²"}, expect=200),
    Case("page-invoices-period-nul", "GET", "/invoices", params={"period": "\x00"}, expect=422),
    Case("page-overview-start-far", "GET", "/", params={"start": "9999-12-31T23:00"}, expect=422),
    Case("page-overview-hours-huge", "GET", "/", params={"hours": HUGE}, expect=200),  # at most a month shown
    Case("page-overview-hours-float", "GET", "/", params={"hours": "1e3"}, expect=422),
    Case("page-overview-model-nul", "GET", "/", params={"model": "\x00"}, expect=422),
    Case("form-end-lease-beyond-32-bit", "POST", f"/leases/{BIG}/end", form={}, expect=404),
    Case("form-extend-far", "POST", "/leases/{lease_with_end}/extend", form=_form(end="9999-12-31T23:59"), expect=422),
    Case("form-book-count-huge", "POST", "/leases", form=_booking(gpu_count=HUGE), expect=422),
    Case("form-book-count-superscript", "POST", "/leases", form=_booking(gpu_count="²"), expect=422),
    Case("form-book-customer-big", "POST", "/leases", form=_booking(customer_id=BIG), expect=404),
    Case("form-book-start-far", "POST", "/leases", form=_booking(start="9999-12-31T23:00", end=""), expect=422),
    Case("form-book-model-nul", "POST", "/leases", form=_booking(gpu_model="A100\x00"), expect=422),
    Case("form-customer-name-nul", "POST", "/customers/new", form=_kyc(legal_name="Acme\x00"), expect=422),
    Case("form-customer-name-301", "POST", "/customers/new", form=_kyc(legal_name="A" * 301), expect=422),
    Case("form-customer-requested-huge", "POST", "/customers/new", form=_kyc(requested_gpus=HUGE), expect=422),
    Case("form-customer-owner-nan", "POST", "/customers/new",
         form={**_kyc(), "owner_name": "B", "owner_percent": "nan"}, expect=422),
    Case("form-customer-date-overflow", "POST", "/customers/new", form=_kyc(incorporated_on="99999-01-01"),
         expect=422),
    Case("form-node-count-superscript", "POST", "/nodes", form=_form(**_node(gpu_count="²")), expect=422),
    Case("form-node-name-nul", "POST", "/nodes", form=_form(**_node(name="n\x00")), expect=422),
    Case("form-node-state-big", "POST", f"/nodes/{BIG}/state", form=_form(state="down"), expect=404),
    Case("form-node-remove-big", "POST", f"/nodes/{BIG}/remove", form={}, expect=404),
    Case("form-price-hours-big", "POST", "/prices", form=_form(**_price(cancel_free_hours=BIG)), expect=422),
    Case("form-price-rate-overflow", "POST", "/prices", form=_form(**_price(rate="1e400")), expect=422),
    Case("form-review-big", "POST", f"/reviews/{BIG}/decision", form=_form(decision="approve", comment="ok"),
         expect=404, role="compliance"),
    Case("form-review-comment-nul", "POST", "/reviews/{review}/decision",
         form=_form(decision="approve", comment="ok\x00"), expect=422, role="compliance"),
    Case("form-alert-big", "POST", f"/alerts/{BIG}/ack", form={}, expect=404),
    Case("form-key-customer-big", "POST", "/system/keys", form=_form(role="customer", customer_id=BIG), expect=404),
    Case("form-key-label-nul", "POST", "/system/keys", form=_form(role="operator", label="x\x00"), expect=422),
    Case("form-key-label-long", "POST", "/system/keys", form=_form(role="operator", label="x" * 201), expect=422),
    Case("form-key-revoke-big", "POST", f"/system/keys/{BIG}/revoke", form={}, expect=404),
    Case("form-screen-name-nul", "POST", "/screen", form=_form(name="Acme\x00"), expect=422, role="compliance"),
    Case("form-10mb", "POST", "/screen", form=_form(name="A" * MB10), expect=413, role="compliance"),
]
# fmt: on


@pytest.mark.parametrize("case", WEB_CASES, ids=[c.id for c in WEB_CASES])
def test_the_dashboard_answers_hostile_input_with_a_page_that_says_why(world: World, case: Case) -> None:
    browser = world.dash[case.role]
    if case.form is not None:
        fields = {k: _fill(v, world.ids) for k, v in case.form.items()}
        csrf = csrf_token(browser.cookies[COOKIE])
        case = Case(case.id, case.method, case.path, form={"csrf": csrf, **fields}, expect=case.expect)
    r = _send(browser, case, world.ids, {})
    assert r.status_code == case.expect, f"{case.id}: {r.status_code} {r.text[:2000]}"
    assert r.headers["content-type"].startswith("text/html"), r.headers


def test_the_table_is_long_enough() -> None:
    assert len(API_CASES) + len(WEB_CASES) >= 60


def test_a_run_with_a_nul_is_refused_and_never_left_pending(world: World) -> None:
    lease = world.ids["lease"]
    for body in ({"command": ["echo", "a\x00b"]}, {"command": ["true"], "env": {"X": "a\x00"}}):
        r = world.api.post(f"/api/v1/leases/{lease}/runs", headers=world.keys.op, json=body)
        assert r.status_code == 422, r.text
    runs = world.api.get(f"/api/v1/leases/{lease}/runs", headers=world.keys.op).json()
    assert [r for r in runs if r["state"] == "pending"] == []


def test_the_clock_still_runs_after_the_table(world: World) -> None:
    world.clock.advance(hours=1)
    assert world.rt.tick().failed == {}


def test_an_error_in_the_edge_itself_is_still_a_problem_with_a_request_id(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the idempotency store is down")

    monkeypatch.setattr(idempotency, "known", broken)  # the key's first look-up
    r = world.api.post(
        "/api/v1/screen", headers={**world.keys.op, "Idempotency-Key": "edge-1"}, json={"name": "Acme Corp"}
    )
    assert r.status_code == 500 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["request_id"] == r.headers["x-request-id"]
    assert world.api.get("/healthz").status_code == 200
