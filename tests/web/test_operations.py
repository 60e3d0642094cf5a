"""The operator's and compliance officer's pages: inventory, price book, new customer, alerts, system and keys."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from gpulease.runtime import Runtime
from gpulease.store.models import Alert, Allocation, AuditRecord, Node
from gpulease.web.session import csrf_token
from tests.web.conftest import Site, csrf_of, form, session_csrf

Browser = Callable[[str], TestClient]
HX = "HX-Request"


def node_id(runtime: Runtime, name: str) -> int:
    with runtime.store.transaction() as s:
        nid = s.scalar(select(Node.id).where(Node.name == name))
    assert nid is not None, name
    return int(nid)


# ------------------------------------------------------------------------------------------- who sees what


def test_each_role_gets_the_new_pages_it_may_use(client: TestClient, browser: Browser, site: Site) -> None:
    op = browser(site.operator).get("/").text
    for href in ("/nodes", "/prices", "/alerts", "/system"):
        assert f'href="{href}"' in op
    cu = browser(site.cleared.key)
    nav = cu.get("/leases").text
    assert 'href="/prices"' in nav and 'href="/nodes"' not in nav and 'href="/system"' not in nav
    assert 'href="/alerts"' not in nav
    for path in ("/nodes", "/alerts", "/system", "/customers/new"):
        assert cu.get(path).status_code == 403, path
    assert cu.get("/prices").status_code == 200
    for path in ("/nodes", "/prices", "/alerts", "/system", "/customers/new"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/login?next={path}"
    co = browser(site.compliance)
    for path in ("/nodes", "/prices", "/alerts", "/system"):
        assert co.get(path).status_code == 200, path
    assert co.get("/customers/new").status_code == 403  # registering customers is the operator's (README, Roles)


def test_every_new_form_refuses_a_post_without_the_token(browser: Browser, site: Site, runtime: Runtime) -> None:
    op = browser(site.operator)
    nid = node_id(runtime, "fra1-a100-n000")
    posts = {
        "/nodes": {"site": "s1", "cluster": "c1", "name": "x", "gpu_model": "A100-80GB", "gpu_count": "8"},
        f"/nodes/{nid}/state": {"state": "draining"},
        f"/nodes/{nid}/remove": {},
        "/prices": {"gpu_model": "A100-80GB", "plan": "on_demand", "rate": "9"},
        "/customers/new": {"legal_name": "Acme", "country": "US"},
        "/alerts/1/ack": {},
        "/system/keys": {"role": "operator"},
        "/system/keys/1/revoke": {},
    }
    for path, body in posts.items():
        r = op.post(path, data=body)
        assert r.status_code == 403 and "Form refused" in r.text, path
        r = op.post(path, data={**body, "csrf": csrf_token(site.compliance)})  # another session's token
        assert r.status_code == 403, path
    page = op.get("/nodes").text
    assert "badge s-draining" not in page and "fra1-a100-n000" in page  # nothing changed


# ------------------------------------------------------------------------------------------- inventory


def test_nodes_are_grouped_by_cluster_with_what_is_leased_now(browser: Browser, site: Site) -> None:
    site.facility.nodes(1, model="H100-80GB", cluster="c9", site="iad1", prefix="iad1-h100")
    site.facility.lease(customer_id=site.cleared.id, gpu_model="A100-80GB", gpu_count=3)
    page = browser(site.operator).get("/nodes").text
    groups = re.findall(r"<h2>(\S+) / (\S+) <span", page)
    assert groups == [("iad1", "c9"), ("s1", "c1")]
    assert "3/16 GPUs leased now" in page and "0/8 GPUs leased now" in page
    assert "<small>3/8</small>" in page and "8× H100-80GB" in page and "badge s-available" in page


def test_add_a_node_through_the_form_and_see_a_duplicate_refused(browser: Browser, site: Site) -> None:
    op = browser(site.operator)
    page = op.get("/nodes").text
    assert 'name="gpu_model"' in page and "<option>H100-80GB</option>" in page  # the whole catalogue
    body = {"site": "fra1", "cluster": "c2", "name": "fra1-h100-n000", "gpu_model": "H100-80GB", "gpu_count": 4}
    r = op.post("/nodes", data=form(csrf_of(page), **body, backend="ray"), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/nodes"
    page = op.get("/nodes").text
    assert 'fra1 / c2 <span class="muted">· ray' in page and "4× H100-80GB" in page

    r = op.post("/nodes", data=form(csrf_of(page), **body))
    assert r.status_code == 409 and 'id="node-error"' in r.text and "already exists" in r.text
    assert 'value="fra1-h100-n000"' in r.text  # the form keeps what was typed
    r = op.post("/nodes", data=form(csrf_of(page), **{**body, "name": "n-new", "gpu_count": "lots"}))
    assert r.status_code == 422 and "whole number" in r.text
    r = op.post("/nodes", data=form(csrf_of(page), **{**body, "name": "n-new", "gpu_count": 99}))
    assert r.status_code == 422 and "between 1 and 8" in r.text


def test_drain_mark_down_and_make_available_in_place(browser: Browser, site: Site, runtime: Runtime) -> None:
    op = browser(site.operator)
    nid = node_id(runtime, "fra1-a100-n001")
    hx = {HX: "true", "X-CSRF-Token": session_csrf(op)}
    r = op.post(f"/nodes/{nid}/state", data={"state": "draining"}, headers=hx)
    assert r.status_code == 200 and 'id="inventory"' in r.text
    row = re.search(rf'<tr id="node-{nid}">.*?</tr>', r.text, re.S)
    assert row and "badge s-draining" in row.group(0) and ">Drain<" not in row.group(0)
    assert ">Make available<" in row.group(0)
    r = op.post(f"/nodes/{nid}/state", data={"state": "down"}, headers=hx)
    assert "badge s-down" in r.text
    r = op.post(f"/nodes/{nid}/state", data={"state": "melted"}, headers=hx)
    assert r.status_code == 422 and "one of available, draining, down" in r.text
    r = op.post(f"/nodes/{nid}/state", data=form(session_csrf(op), state="available"), follow_redirects=False)
    assert r.status_code == 303
    assert op.post("/nodes/424242/state", data={"state": "down"}, headers=hx).status_code == 404

    co = browser(site.compliance)
    page = co.get("/nodes").text
    assert "read-only" in page and "Add node" not in page and ">Drain<" not in page
    r = co.post(f"/nodes/{nid}/state", data={"state": "down"}, headers={"X-CSRF-Token": session_csrf(co)})
    assert r.status_code == 403


def test_removing_a_node_that_holds_a_lease_says_which(browser: Browser, site: Site, runtime: Runtime) -> None:
    lease = site.facility.lease(customer_id=site.cleared.id, gpu_model="A100-80GB", gpu_count=8)
    with runtime.store.transaction() as s:
        busy = s.scalar(select(Allocation.node_id).where(Allocation.lease_id == lease["id"]))
    assert busy is not None
    free = next(n for n in (node_id(runtime, "fra1-a100-n000"), node_id(runtime, "fra1-a100-n001")) if n != busy)
    op = browser(site.operator)
    hx = {HX: "true", "X-CSRF-Token": session_csrf(op)}
    r = op.post(f"/nodes/{busy}/remove", headers=hx)
    assert r.status_code == 409 and f"still holds leases [{lease['id']}]" in r.text
    assert re.search(rf'<tr id="node-{busy}">.*?</tr>\s*<tr class="row-error">', r.text, re.S)  # under its row
    r = op.post(f"/nodes/{free}/remove", headers=hx)
    assert r.status_code == 200 and f'id="node-{free}"' not in r.text and f'id="node-{busy}"' in r.text


# ------------------------------------------------------------------------------------------- price book


def test_the_price_book_for_each_role(browser: Browser, site: Site) -> None:
    cu = browser(site.cleared.key).get("/prices").text
    assert "new leases only" in cu and "1.25</b> USD" in cu and "600.00</b> USD" in cu
    assert "per GPU-month" in cu and "per GPU-hour" in cu
    assert "free until 24 h before start, then 50% of the window" in cu and "120 s" in cu
    assert 'action="/prices"' not in cu
    assert 'action="/prices"' not in browser(site.compliance).get("/prices").text
    co = browser(site.compliance)
    r = co.post("/prices", data=form(session_csrf(co), gpu_model="A100-80GB", plan="on_demand", rate="2"))
    assert r.status_code == 403


def test_set_and_edit_prices_with_problems_shown_inline(browser: Browser, site: Site) -> None:
    op = browser(site.operator)
    page = op.get("/prices").text
    new = {"row": "new", "gpu_model": "H100-80GB", "plan": "reserved", "rate": "2.10", "cancel_free_hours": 48}
    r = op.post("/prices", data=form(csrf_of(page), **new), follow_redirects=False)
    assert r.status_code == 303
    page = op.get("/prices").text
    row = re.search(r'<tr id="price-H100-80GB-reserved">.*?</tr>', page, re.S)
    assert row and "2.10</b> USD" in row.group(0) and "free until 48 h" in row.group(0)

    r = op.post("/prices", data=form(csrf_of(page), **{**new, "rate": "abc"}))
    assert r.status_code == 422 and 'id="price-error"' in r.text and "must be decimal numbers" in r.text
    assert 'value="abc"' in r.text
    r = op.post("/prices", data=form(csrf_of(page), **{**new, "cancel_fee_fraction": "1.5"}))
    assert r.status_code == 422 and "between 0 and 1" in r.text

    # Edit a row through htmx: a bad rate is shown in that row, with the row's editor left open.
    hx = {HX: "true", "X-CSRF-Token": csrf_of(page)}
    edit = {"row": "A100-80GB/on_demand", "gpu_model": "A100-80GB", "plan": "on_demand", "currency": "USD"}
    r = op.post("/prices", data={**edit, "rate": "-1"}, headers=hx)
    assert r.status_code == 422 and "non-negative" in r.text
    row = re.search(r'<tr id="price-A100-80GB-on_demand">.*?</tr>', r.text, re.S)
    assert row and 'id="price-error"' in row.group(0) and '<details class="edit" open>' in row.group(0)
    r = op.post("/prices", data={**edit, "rate": "1.75"}, headers=hx)
    assert r.status_code == 200 and 'id="price-book"' in r.text
    row = re.search(r'<tr id="price-A100-80GB-on_demand">.*?</tr>', r.text, re.S)
    assert row and "1.75</b> USD" in row.group(0)


# ------------------------------------------------------------------------------------------- new customer


def _new_customer(c: TestClient, expect: int = 303, **fields: object) -> str:
    page = c.get("/customers/new").text
    assert page.count('name="owner_name"') >= 4
    r = c.post("/customers/new", data=form(csrf_of(page), **fields), follow_redirects=False)
    assert r.status_code == expect, r.text
    return str(r.headers["location"]) if expect == 303 else r.text


def test_a_new_customer_is_screened_at_once(browser: Browser, site: Site) -> None:
    co = browser(site.compliance)
    where = _new_customer(
        browser(site.operator), legal_name="iFlytek Co., Ltd.", country="CN", end_use="speech recognition"
    )
    page = co.get(where).text
    assert re.search(r"<h1>iFlytek Co., Ltd. <span class=\"badge s-denied\">", page), page
    assert "Latest screening" in page and 'class="list-tag"' in page

    op = browser(site.operator)
    page = op.get("/customers/new").text
    owners = [("Greenfield Partners LP", "40"), ("Maria Lopez", "25"), ("Jon Park", "20"), ("Ivy Chen", "15")]
    body = form(
        csrf_of(page),
        legal_name="Prairie Vision Analytics Inc.",
        country="us",
        address="200 Main St, Des Moines, IA",
        incorporated_on="2012-04-01",
        email_domain="prairievision.example",
        website="https://prairievision.example",
        end_use="training vision models that map crop health from drone imagery for farms",
        requested_gpus=16,
    )
    data = {**body, "owner_name": [n for n, _ in owners], "owner_percent": [p for _, p in owners]}
    r = op.post("/customers/new", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = op.get(r.headers["location"]).text
    assert re.search(r"<h1>Prairie Vision Analytics Inc. <span class=\"badge s-cleared\">", page)
    assert "Ivy Chen (15%)" in page and "Greenfield Partners LP (40%)" in page and ">US<" in page


def test_new_customer_problems_are_shown_on_the_form(browser: Browser, site: Site) -> None:
    op = browser(site.operator)
    text = _new_customer(op, 422, legal_name="", country="US")
    assert "legal name is required" in text
    text = _new_customer(op, 422, legal_name="Dunes LLC", country="USA", address="1 Beach Rd")
    assert "ISO 3166-1" in text and 'value="1 Beach Rd"' in text
    text = _new_customer(op, 422, legal_name="Dunes LLC", country="US", owner_name="Sam", owner_percent="half")
    assert "give Sam&#39;s share as a percentage" in text and 'value="half"' in text
    text = _new_customer(op, 422, legal_name="Dunes LLC", country="US", incorporated_on="2099-01-01")
    assert "in the future" in text
    assert "Dunes LLC" not in op.get("/customers").text


# ------------------------------------------------------------------------------------------- alerts


def _alerts(runtime: Runtime, n: int) -> list[int]:
    with runtime.store.transaction() as s:
        rows = [
            Alert(at=runtime.clock(), kind="customer_newly_hit", message=f"alert number {i}", data={"customer_id": 1})
            for i in range(n)
        ]
        s.add_all(rows)
        s.flush()
        return [a.id for a in rows]


def test_acknowledge_alerts_and_the_nav_count_follows(browser: Browser, site: Site, runtime: Runtime) -> None:
    first, second = _alerts(runtime, 2)
    co = browser(site.compliance)
    page = co.get("/alerts").text
    assert re.search(r'id="alerts-badge"[^>]*>2<', page) and "alert number 0" in page and "alert number 1" in page
    assert re.search(r'id="alerts-badge"[^>]*>2<', co.get("/leases").text)  # on every page

    hx = {HX: "true", "X-CSRF-Token": csrf_of(page)}
    r = co.post(f"/alerts/{first}/ack", data={"show": "open"}, headers=hx)
    assert r.status_code == 200 and f'id="alert-{first}"' not in r.text and f'id="alert-{second}"' in r.text
    assert re.search(r'id="alerts-badge"[^>]*>1<', r.text)
    r = co.post(f"/alerts/{second}/ack", data=form(csrf_of(page)), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/alerts"
    page = co.get("/alerts").text
    assert "Nothing to acknowledge" in page and 'class="count zero"' in page
    assert page.count("badge s-acknowledged") == 0
    assert co.get("/alerts?show=all").text.count("badge s-acknowledged") == 2
    assert co.post("/alerts/424242/ack", headers=hx).status_code == 404


# ------------------------------------------------------------------------------------------- system


def test_system_shows_lists_checks_and_telemetry(browser: Browser, site: Site, runtime: Runtime) -> None:
    runtime.audit_log.seal_pass(wait=True, checkpoint=True)  # as the server's sealer does within a second
    co = browser(site.compliance)
    page = co.get("/system").text
    assert 'badge s-cleared">in force' in page and 'class="list-tag"' in page and "bundled:" in page
    assert re.search(r'id="audit-check">.*?intact.*?\d+ records.*?1 signed checkpoint agree', page, re.S)
    assert re.search(r'id="usage-check">.*?agree', page, re.S)
    assert 'id="telemetry"' in page and "GPU telemetry" in page
    assert 'action="/system/keys"' not in page and "Only an operator" in page
    assert re.search(r"<code>gl_[0-9a-f]{8}_…</code>", page)
    r = co.post("/system/keys", data=form(csrf_of(page), role="operator"))
    assert r.status_code == 403

    with runtime.store.transaction() as s:  # someone edits history: the check says where
        s.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(actor="mallory"))
    page = co.get("/system").text
    assert re.search(r'id="audit-check">.*?broken.*?at record 2: record 2 was altered', page, re.S)


def test_a_key_made_on_the_system_page_works_once_shown(browser: Browser, site: Site) -> None:
    op = browser(site.operator)
    page = op.get("/system").text
    r = op.post("/system/keys", data=form(csrf_of(page), role="customer", customer_id=site.cleared.id, label="ci"))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    m = re.search(r'id="new-key" readonly value="(gl_[0-9a-f]{8}_[^"]+)"', r.text)
    assert m, r.text
    key = m.group(1)
    api = op.get("/api/v1/leases", headers={"Authorization": f"Bearer {key}"})
    assert api.status_code == 200, api.text
    again = op.get("/system").text
    assert key not in again  # shown once
    prefix = key.split("_")[1]
    row = re.search(rf"<tr>\s*<td>(\d+)</td>\s*<td><code>gl_{prefix}_…</code>.*?</tr>", again, re.S)
    assert row and "Acme Robotics Inc." in row.group(0) and ">ci<" in row.group(0)

    r = op.post("/system/keys", data=form(csrf_of(again), role="customer"))
    assert r.status_code == 422 and 'id="key-error"' in r.text and "choose the customer" in r.text
    r = op.post("/system/keys", data=form(csrf_of(again), role="operator", customer_id=site.cleared.id))
    assert r.status_code == 422 and "not tied to a customer" in r.text

    hx = {HX: "true", "X-CSRF-Token": csrf_of(again)}
    r = op.post(f"/system/keys/{row.group(1)}/revoke", headers=hx)
    assert r.status_code == 200 and 'id="keys"' in r.text
    assert op.get("/api/v1/leases", headers={"Authorization": f"Bearer {key}"}).status_code == 401
