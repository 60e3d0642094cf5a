"""No tipping off, no cross-tenant data (issue 10, item 3): a customer on compliance hold sees only that it is
on hold and should contact support. Every GET route of the API a customer may call and every dashboard page it
can open are walked with a held customer; none may carry a screening word, a list name or version, a review
note, or another tenant's identifiers (its key prefix, its name)."""

from __future__ import annotations

import html
import re
from typing import Any

from fastapi.testclient import TestClient

from gpulease.api.access import ROUTES, roles_of
from gpulease.runtime import Runtime
from gpulease.services.context import Role
from tests.api.test_holds import HIT_NAME, hold
from tests.conftest import Clock, Facility

A100 = "A100-80GB"
# Whole words, case-insensitive: "list" would otherwise match "playlist" and "screen" "screenshot".
FORBIDDEN = re.compile(r"\bscreen(ing|ed)?\b|\blist(s|ed)?\b|\bdenied\b|\bSDN\b|entity list|EL-test", re.I)
PAGES = ("/", "/leases", "/invoices", "/keys", "/webhooks", "/profile", "/prices")


def visible_text(page: str) -> str:
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def customer_get_routes() -> list[str]:
    routes = ROUTES.items()
    return sorted(path for (method, path), access in routes if method == "GET" and Role.CUSTOMER in roles_of(access))


def test_a_held_customer_sees_only_that_it_is_on_hold(
    facility: Facility, runtime: Runtime, clock: Clock, client: TestClient
) -> None:
    facility.nodes(1)
    facility.prices()
    held = facility.customer(HIT_NAME, country="SG")
    other = facility.customer("Zanzibar Quantum Analytics Inc.")
    me = facility.customer_key(held["id"])
    them = facility.customer_key(other["id"])
    their_prefix = them["Authorization"].split("_")[1]
    hook = facility.c.post("/api/v1/webhooks", headers=me, json={"url": "https://example.com/h", "events": ["*"]})
    assert hook.status_code == 201, hook.text
    spot = facility.lease(me, gpu_model=A100, gpu_count=8, plan="interruptible")
    # another tenant takes the GPUs back: the held customer's lease gets notice, naming nobody
    facility.lease(them, gpu_model=A100, gpu_count=8, plan="on_demand")
    clock.advance(minutes=1)
    hold(runtime)
    assert facility.c.get(f"/api/v1/leases/{spot['id']}", headers=facility.k.op).json()["state"] == "suspended"

    ids = {"customer_id": held["id"], "lease_id": spot["id"], "webhook_id": hook.json()["id"], "run_id": "0"}
    leaks: list[str] = []

    def check(what: str, text: str) -> None:
        for bad in (FORBIDDEN.search(text), re.search(re.escape(their_prefix), text)):
            if bad is not None:
                leaks.append(f"{what}: …{text[max(0, bad.start() - 60) : bad.end() + 60]}…")

    for path in customer_get_routes():
        url = re.sub(r"\{([a-z_]+)\}", lambda m: str(ids[m.group(1)]), path)
        r = facility.c.get(url, headers=me)
        if r.status_code == 404 and "run_id" in path:
            continue
        check(f"GET {url} ({r.status_code})", r.text)
        if "Zanzibar" in r.text:
            leaks.append(f"GET {url}: another tenant's name")
    status = facility.c.get(f"/api/v1/customers/{held['id']}", headers=me).json()["compliance_status"]
    assert status == "on_hold"
    lease_view: dict[str, Any] = facility.c.get(f"/api/v1/leases/{spot['id']}", headers=me).json()
    assert lease_view["state_reason"] == "This lease is on hold. Please contact support."
    # a refused booking says the same and no more
    r = facility.c.post("/api/v1/leases", headers=me, json={"gpu_model": A100, "gpu_count": 1})
    assert r.status_code == 403
    check("POST /api/v1/leases (refused)", r.text)

    browser = TestClient(client.app)
    r = browser.post("/login", data={"key": me["Authorization"].split()[1], "next": "/"}, follow_redirects=False)
    assert r.status_code == 303
    for page in (*PAGES, f"/leases/{spot['id']}", f"/webhooks/{ids['webhook_id']}"):
        r = browser.get(page)
        assert r.status_code == 200, (page, r.status_code)
        check(f"page {page}", visible_text(r.text))
        if "Zanzibar" in r.text:
            leaks.append(f"page {page}: another tenant's name")
    assert leaks == [], "\n".join(leaks)
