"""The dashboard, server side: sign-in per role, what each role sees, CSRF, the actions, the calendar picture."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from gpulease.runtime import Runtime
from gpulease.services import customers, keys
from gpulease.services.context import SYSTEM
from gpulease.services.customer_screening import rescreen_all
from gpulease.services.kyc import KycInput, Owner
from gpulease.web.session import COOKIE, csrf_token
from tests.conftest import Clock
from tests.web.conftest import Site, csrf_of, form, session_csrf

Browser = Callable[[str], TestClient]


def book(c: TestClient, expect: int = 303, **fields: object) -> str:
    """Book through the form: the new lease's address, or the page with the problem when `expect` is not 303."""
    page = c.get("/leases")
    body = {"gpu_model": "A100-80GB", "gpu_count": 2, "plan": "on_demand", "start": "", "end": "", **fields}
    r = c.post("/leases", data=form(csrf_of(page.text), **body), follow_redirects=False)
    assert r.status_code == expect, r.text
    return str(r.headers["location"]) if expect == 303 else r.text


def lease_id(location: str) -> int:
    m = re.fullmatch(r"/leases/(\d+)", location)
    assert m, location
    return int(m.group(1))


# ------------------------------------------------------------------------------------------- sign-in


def test_pages_need_sign_in_and_send_you_back_after_it(client: TestClient, site: Site) -> None:
    r = client.get("/leases", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/leases"
    r = client.post("/login", data={"key": site.operator, "next": "/leases"}, follow_redirects=False)
    assert r.headers["location"] == "/leases"
    cookie = r.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert client.get("/leases").status_code == 200


def test_a_wrong_key_is_refused_and_an_off_site_next_is_ignored(client: TestClient, site: Site) -> None:
    r = client.post("/login", data={"key": "gl_nope", "next": "/"})
    assert r.status_code == 401 and "not valid" in r.text
    r = client.post("/login", data={"key": site.operator, "next": "//evil.example/"}, follow_redirects=False)
    assert r.headers["location"] == "/"


def test_each_role_sees_its_own_pages(browser: Browser, site: Site) -> None:
    op = browser(site.operator)
    page = op.get("/")
    assert page.status_code == 200 and "Fleet overview" in page.text and "<svg" in page.text
    assert "GPUs leased now" in page.text and "fra1-a100-n000" in page.text

    co = browser(site.compliance)
    assert "Review queue" in co.get("/reviews").text
    assert 'href="/customers"' in co.get("/").text

    cu = browser(site.cleared.key)
    home = cu.get("/")  # a customer's home is its spend, its running leases and its news
    assert home.url.path == "/" and "Acme Robotics Inc." in home.text and "Spent in 2026-11" in home.text
    assert 'href="/customers"' not in home.text and "Book GPUs" in home.text
    assert cu.get("/customers").status_code == 403
    assert cu.get("/reviews").status_code == 403
    assert cu.get("/screen").status_code == 403


def test_sign_out_revokes_the_session_on_the_server(browser: Browser, site: Site, client: TestClient) -> None:
    c = browser(site.operator)
    session_id = c.cookies.get(COOKIE)
    assert session_id and site.operator not in session_id  # the cookie is a random id, never the API key
    r = c.post("/logout", data={"csrf": csrf_token(session_id)}, follow_redirects=False)
    assert r.status_code == 303
    assert c.get("/leases", follow_redirects=False).status_code == 303
    # A copy of the old cookie (stolen before sign-out) is worth nothing now.
    thief = TestClient(client.app, cookies={COOKIE: session_id})
    assert thief.get("/leases", follow_redirects=False).status_code == 303


def test_a_session_expires_and_dies_with_its_key(browser: Browser, site: Site, runtime: Runtime, clock: Clock) -> None:
    c = browser(site.operator)
    assert c.get("/leases", follow_redirects=False).status_code == 200
    clock.advance(hours=runtime.settings.session_hours, seconds=1)
    assert c.get("/leases", follow_redirects=False).status_code == 303

    cu = browser(site.cleared.key)
    assert cu.get("/leases", follow_redirects=False).status_code == 200
    from gpulease.services import keys as key_svc
    from gpulease.store.models import ApiKey

    with runtime.store.transaction() as s:
        key_id = s.query(ApiKey).filter(ApiKey.customer_id == site.cleared.id).one().id
    runtime.perform(key_svc.revoke_key, actor=SYSTEM, key_id=key_id)
    assert cu.get("/leases", follow_redirects=False).status_code == 303


def test_pages_carry_security_headers(browser: Browser, site: Site, client: TestClient) -> None:
    page = browser(site.operator).get("/")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-eval" not in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert client.get("/login").headers["referrer-policy"] == "no-referrer"


# ------------------------------------------------------------------------------------------- tenants and CSRF


def test_a_customer_cannot_see_another_tenants_lease(browser: Browser, site: Site) -> None:
    op = browser(site.operator)
    other = lease_id(book(op, customer_id=site.cleared.id))
    flagged = browser(site.flagged.key)
    r = flagged.get(f"/leases/{other}")
    assert r.status_code == 404 and "Not found" in r.text and "<html" in r.text
    assert "Acme" not in r.text
    assert flagged.get("/leases/999999").status_code == 404  # the same answer as a lease that does not exist
    assert f'href="/leases/{other}"' not in flagged.get("/leases").text
    r = flagged.post(f"/leases/{other}/end", data={"csrf": session_csrf(flagged)})
    assert r.status_code == 404
    own = browser(site.cleared.key)
    assert own.get(f"/leases/{other}").status_code == 200


def test_posts_need_the_csrf_token(browser: Browser, site: Site) -> None:
    op = browser(site.operator)
    body = {"customer_id": site.cleared.id, "gpu_model": "A100-80GB", "gpu_count": "1", "plan": "on_demand"}
    r = op.post("/leases", data=body)
    assert r.status_code == 403 and "Form refused" in r.text
    r = op.post("/leases", data={**body, "csrf": csrf_token(site.compliance)})  # another session's token
    assert r.status_code == 403
    r = op.post("/leases", data=body, headers={"X-CSRF-Token": session_csrf(op)}, follow_redirects=False)
    assert r.status_code == 303  # the header htmx sends is as good as the field
    r = op.post("/leases", data={**body, "csrf": csrf_of(op.get("/leases").text)}, follow_redirects=False)
    assert r.status_code == 303


# ------------------------------------------------------------------------------------------- leases


def test_book_a_lease_and_see_it_on_the_calendar(browser: Browser, site: Site) -> None:
    op = browser(site.operator)
    where = book(
        op, customer_id=site.cleared.id, plan="reserved", gpu_count=4, start="2026-11-02T12:00", end="2026-11-02T20:00"
    )
    lid = lease_id(str(where))
    page = op.get(where)
    assert f"Lease #{lid}" in page.text and "scheduled" in page.text and "4× A100-80GB" in page.text
    assert "Cancel lease" in page.text and "Extend" in page.text and "End now" not in page.text

    svg = op.get("/").text
    bars = re.findall(rf'<rect class="g-bar[^"]*" data-lease="{lid}" data-plan="reserved"[^>]*>', svg)
    assert len(bars) == 1, "four GPUs side by side on one node make one bar"
    assert re.search(rf"<title>Lease {lid} · Acme Robotics Inc. · reserved", svg)
    assert 'height="31"' in bars[0]  # four rows of 8 px, less the gap
    assert op.get("/?hours=12&start=2026-11-03T09:00").text.count(f'data-lease="{lid}"') == 0


def test_booking_problems_are_shown_on_the_form(browser: Browser, site: Site) -> None:
    op = browser(site.operator)
    book(op, customer_id=site.cleared.id, gpu_count=16, start="2026-11-02T10:00", end="2026-11-02T18:00")
    text = book(
        op, expect=409, customer_id=site.cleared.id, gpu_count=8, start="2026-11-02T12:00", end="2026-11-02T14:00"
    )
    assert "Cannot be placed" in text and "2026-11-02T18:00:00Z" in text
    assert text.lower().count("earliest start") == 1  # stated once, in ISO 8601 UTC
    assert 'value="2026-11-02T12:00"' in text  # the form keeps what was typed

    cu = browser(site.flagged.key)
    text = book(cu, expect=403)
    assert "not cleared" in text and "Book GPUs" in text
    assert "Check the form" not in text
    text = book(op, expect=422, customer_id=site.cleared.id, start="tomorrow")
    assert "start must be a date and time" in text


def test_extend_and_end_through_htmx(browser: Browser, site: Site, clock: Clock) -> None:
    cu = browser(site.cleared.key)
    lid = lease_id(book(cu, end="2026-11-02T13:00"))
    page = cu.get(f"/leases/{lid}")
    assert "active" in page.text and "End now" in page.text
    hx = {"HX-Request": "true", "X-CSRF-Token": csrf_of(page.text)}
    r = cu.post(f"/leases/{lid}/extend", data={"end": "2026-11-02T11:00"}, headers=hx)
    assert r.status_code == 422 and "must be after the current end" in r.text and 'id="lease"' in r.text
    r = cu.post(f"/leases/{lid}/extend", data={"end": "2026-11-02T15:00"}, headers=hx)
    assert r.status_code == 200 and "extended from" in r.text and "2026-11-02 15:00 UTC" in r.text
    clock.advance(hours=1)
    r = cu.post(f"/leases/{lid}/end", headers=hx)
    assert r.status_code == 200 and "badge s-ended" in r.text
    assert "cannot be changed" in r.text
    r = cu.post(f"/leases/{lid}/end", headers=hx)
    assert r.status_code == 409 and "cannot be ended" in r.text

    inv = cu.get("/invoices?period=2026-11")
    assert f"Lease {lid}: 2x A100-80GB on_demand, 1.0000 h" in inv.text and "2.50 USD" in inv.text


def test_lease_list_filters_by_state(browser: Browser, site: Site) -> None:
    op = browser(site.operator)
    a = lease_id(book(op, customer_id=site.cleared.id))
    b = lease_id(book(op, customer_id=site.cleared.id, start="2026-11-03T09:00", end="2026-11-03T10:00"))
    active = op.get("/leases?state=active").text
    assert f'href="/leases/{a}"' in active and f'href="/leases/{b}"' not in active
    scheduled = op.get("/leases?state=scheduled").text
    assert f'href="/leases/{b}"' in scheduled and f'href="/leases/{a}"' not in scheduled


# ------------------------------------------------------------------------------------------- compliance


def test_customer_page_shows_the_screening_evidence(browser: Browser, site: Site, runtime: Runtime) -> None:
    sub = site.facility.customer(
        "Shenzhen Xunfei Cloud Computing Co., Ltd.",
        "CN",
        owners=[{"name": "Hefei Holdings Ltd.", "percent": 60}],
        parent=None,
    )
    # The parent is a customer too, so the chain runs through it.
    parent = runtime.perform(
        customers.create_customer,
        actor=SYSTEM,
        kyc=KycInput(legal_name="Hefei Holdings Ltd.", country="CN", owners=(Owner("iFlytek Co., Ltd.", 100),)),
    )
    assert parent.id
    runtime.tick()
    co = browser(site.compliance)
    page = co.get(f"/customers/{site.flagged.id}")
    assert page.status_code == 200 and "iFlytek" in page.text and 'class="list-tag"' in page.text
    assert "Name hits" in page.text and "Red flags" in page.text
    assert co.get("/customers").text.count("badge s-") >= 2
    # Re-screen the subsidiary now that its parent is known: the ownership chain is drawn party by party.
    with runtime.work() as w:
        rescreen_all(w, w.index(), trigger="test", list_version_id=None)
    page = co.get(f"/customers/{sub['id']}").text
    chain = re.search(r'<div class="chain".*?</div>', page, re.S)
    assert chain, page
    parties = re.findall(r'<span class="party[^"]*">([^<]+)', chain.group(0))
    assert [p.strip() for p in parties] == [
        "Shenzhen Xunfei Cloud Computing Co., Ltd.",
        "Hefei Holdings Ltd.",
        "iFlytek Co., Ltd.",
    ]
    assert re.findall(r'<span class="arrow">([^<]+)</span>', chain.group(0)) == ["60%", "100%"]


def test_approving_a_review_clears_the_customer_in_place(browser: Browser, site: Site) -> None:
    co = browser(site.compliance)
    page = co.get("/reviews").text
    rid = int(re.search(r'id="review-(\d+)"', page).group(1))  # type: ignore[union-attr]
    hx = {"HX-Request": "true", "X-CSRF-Token": csrf_of(page)}

    r = co.post(f"/reviews/{rid}/decision", data={"decision": "approve", "comment": "  "}, headers=hx)
    assert r.status_code == 422 and "comment is required" in r.text
    assert r.text.lstrip().startswith("<article") and f'id="review-{rid}"' in r.text  # just the row
    op = browser(site.operator)
    assert (
        op.post(
            f"/reviews/{rid}/decision",
            data={"decision": "approve", "comment": "ok"},
            headers={"X-CSRF-Token": session_csrf(op)},
        ).status_code
        == 403
    )

    # an exact Entity List hit: the form shows what is cleared, asks for the licence and a confirmation
    assert "needs a licence and a second compliance officer" in page and 'name="licence_number"' in page
    licence = {
        "licence_authority": "BIS",
        "licence_number": "D765432",
        "licence_expires_on": "2027-06-30",
        "licence_scope": "A100 rental for speech models",
    }
    why = "Different company: checked registry extract"
    r = co.post(f"/reviews/{rid}/decision", data={"decision": "approve", "comment": why, **licence}, headers=hx)
    assert r.status_code == 422 and "confirm what you clear" in r.text
    body = {"decision": "approve", "comment": why, "confirm": "yes", **licence}
    r = co.post(f"/reviews/{rid}/decision", data=body, headers=hx)
    assert r.status_code == 200 and "badge s-awaiting_second_approval" in r.text and "First approval by" in r.text
    second = browser(site.facility.rt.perform(keys.create_key, actor=SYSTEM, role="compliance"))
    page2 = second.get("/reviews").text
    hx2 = {"HX-Request": "true", "X-CSRF-Token": csrf_of(page2)}
    body = {"decision": "approve", "comment": why, "confirm": "yes"}
    r = second.post(f"/reviews/{rid}/decision", data=body, headers=hx2)
    assert r.status_code == 200 and "<html" not in r.text
    assert "badge s-approved" in r.text and "checked registry extract" in r.text
    assert 'customer is</span> <span class="badge s-cleared"' in r.text
    assert "badge s-cleared" in op.get(f"/customers/{site.flagged.id}").text
    assert f'id="review-{rid}"' not in co.get("/reviews").text
    assert f'id="review-{rid}"' in co.get("/reviews?status=approved").text
    cu = browser(site.flagged.key)
    assert book(cu).startswith("/leases/")  # cleared now: it may book


def test_a_decision_without_javascript_goes_back_to_the_queue(browser: Browser, site: Site) -> None:
    co = browser(site.compliance)
    page = co.get("/reviews").text
    rid = int(re.search(r'id="review-(\d+)"', page).group(1))  # type: ignore[union-attr]
    r = co.post(
        f"/reviews/{rid}/decision",
        data=form(csrf_of(page), decision="deny", comment="listed entity"),
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/reviews"
    assert "badge s-denied" in co.get(f"/customers/{site.flagged.id}").text


def test_screen_a_name(browser: Browser, site: Site) -> None:
    op = browser(site.compliance)  # screening is the compliance role's
    page = op.get("/screen")
    r = op.post("/screen", data=form(csrf_of(page.text), name="科大讯飞", country="cn"))
    assert r.status_code == 200 and 'id="screen-result"' in r.text
    assert "iFlytek" in r.text and 'class="score' in r.text and "(CN)" in r.text
    r = op.post("/screen", data=form(csrf_of(page.text), name="Plain Bakery of Ohio"))
    assert "No hits on the lists in force" in r.text


# ------------------------------------------------------------------------------------------- invoices, errors


def test_invoices_for_operator_and_customer(browser: Browser, site: Site) -> None:
    op = browser(site.operator)
    r = op.get(f"/invoices?customer={site.cleared.id}&period=2026-11")
    assert r.status_code == 200 and "No usage in 2026-11" in r.text and "0.00 USD" in r.text
    cu = browser(site.flagged.key)
    r = cu.get(f"/invoices?customer={site.cleared.id}&period=2026-11")  # the parameter is ignored for customers
    assert r.status_code == 200 and "Acme" not in r.text
    assert op.get("/invoices?period=2026-13").status_code == 422


def test_errors_are_pages_here_and_problems_in_the_api(browser: Browser, site: Site) -> None:
    op = browser(site.operator)
    r = op.get("/no/such/page")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"] and "There is no such page" in r.text
    r = op.get("/api/v1/leases/424242", headers={"Authorization": f"Bearer {site.operator}"})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert op.get("/static/htmx.min.js").status_code == 200
    assert op.get("/static/dashboard.css").status_code == 200


def test_the_calendar_axis_marks_each_day(browser: Browser, site: Site) -> None:
    svg = browser(site.operator).get("/?hours=48").text
    ticks = re.findall(r'<text class="g-tick"[^>]*>([^<]+)</text>', svg)
    assert ticks[0] == "12:00" and "Tue 03 Nov" in ticks and "Wed 04 Nov" in ticks
    assert '<line class="g-now"' in svg
