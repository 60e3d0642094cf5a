"""The dashboard in a real browser: Debian's chromium driven by Playwright against a real uvicorn server.

Skipped when chromium or the playwright package is missing. Screenshots of the overview and of a customer
page are left in /tmp for a person to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from gpulease.runtime import Runtime
from tests.web.conftest import Site

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")

SHOTS = {
    "overview": "/tmp/gpulease-overview.png",
    "customer": "/tmp/gpulease-customer.png",
    "reviews": "/tmp/gpulease-reviews.png",
    "nodes": "/tmp/gpulease-nodes.png",
    "system": "/tmp/gpulease-system.png",
    "prices": "/tmp/gpulease-prices.png",
    "new_customer": "/tmp/gpulease-new-customer.png",
}


@pytest.fixture
def server(live_server: str, site: Site) -> str:
    return live_server


@pytest.fixture
def page(server: str) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu", "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=server)
        pg = context.new_page()
        pg.set_default_timeout(10_000)
        yield pg
        context.close()
        browser.close()


def sign_in(page: Any, key: str) -> None:
    page.goto("/")
    assert "/login" in page.url
    page.fill("input[name=key]", key)
    page.click("button:has-text('Sign in')")
    page.wait_for_load_state()


def test_book_see_it_on_the_calendar_and_approve_a_review(page: Any, site: Site, runtime: Runtime) -> None:
    f = site.facility
    f.nodes(2, cluster="c2", prefix="fra1-b")
    with_owner = f.customer("Hefei Holdings Ltd.", "CN", owners=[{"name": "iFlytek Co., Ltd.", "percent": 100}])
    sub = f.customer(
        "Shenzhen Xunfei Cloud Computing Co., Ltd.",
        "CN",
        owners=[{"name": "Hefei Holdings Ltd.", "percent": 60}],
        incorporated_on="2025-06-01",
    )
    assert with_owner["compliance_status"] != "cleared" and sub["compliance_status"] != "cleared"
    # A few bookings on each plan so the picture has something to show.
    f.lease(
        customer_id=site.cleared.id,
        gpu_model="A100-80GB",
        gpu_count=8,
        plan="long_term",
        start="2026-11-02T09:00:00Z",
        end="2026-12-02T09:00:00Z",
    )
    f.lease(
        customer_id=site.cleared.id,
        gpu_model="A100-80GB",
        gpu_count=3,
        plan="on_demand",
        start="2026-11-02T13:00:00Z",
        end="2026-11-03T11:00:00Z",
    )
    f.lease(customer_id=site.cleared.id, gpu_model="A100-80GB", gpu_count=2, plan="interruptible")

    sign_in(page, site.operator)
    assert page.locator("h1").first.inner_text() == "Fleet overview"

    # Book through the form.
    page.click("nav >> text=Leases")
    page.select_option("select[name=customer_id]", str(site.cleared.id))
    page.fill("input[name=gpu_count]", "4")
    page.select_option("select[name=plan]", "reserved")
    page.fill("input[name=start]", "2026-11-02T18:00")
    page.fill("input[name=end]", "2026-11-03T06:00")
    page.click("button:has-text('Book')")
    page.wait_for_url("**/leases/*")
    lease_id = int(page.url.rsplit("/", 1)[1])
    assert "scheduled" in page.locator("h1").inner_text()

    # It is on the calendar, with its lease, customer and plan on hover.
    page.goto("/")
    bar = page.locator(f'svg.gantt rect[data-lease="{lease_id}"]')
    assert bar.count() >= 1
    assert f"Lease {lease_id} · Acme Robotics Inc. · reserved" in bar.first.locator("title").text_content()
    box = bar.first.bounding_box()
    assert box is not None and box["width"] > 50
    page.screenshot(path=SHOTS["overview"], full_page=True)

    # Approve a review as the compliance officer: the row changes in place, the page stays.
    page.click("button:has-text('Sign out')")
    sign_in(page, site.compliance)
    page.goto("/reviews")
    card = page.locator(f"article#review-{_first_review(page)}")
    page.evaluate("window.__stayed = true")
    card.locator("textarea[name=comment]").fill("Registry extract checked: not the listed entity.")
    if card.locator("fieldset.licence").count():  # a blocking-list hit: licence, confirmation, four eyes
        card.locator("input[name=licence_authority]").fill("BIS")
        card.locator("input[name=licence_number]").fill("D765432")
        card.locator("input[name=licence_expires_on]").fill("2027-06-30")
        card.locator("input[name=confirm]").check()
        page.once("dialog", lambda d: d.accept())
        card.locator("button:has-text('Approve')").click()
        card.locator(".review-head .badge.s-awaiting_second_approval").wait_for()
    else:
        card.locator("button:has-text('Approve')").click()
        card.locator(".review-head .badge.s-approved").wait_for()
    assert page.evaluate("window.__stayed") is True
    assert "Registry extract checked" in card.inner_text()
    page.screenshot(path=SHOTS["reviews"], full_page=True)

    page.goto(f"/customers/{sub['id']}")
    chain = page.locator(".chain").first
    assert "Hefei Holdings Ltd." in chain.inner_text() and "60%" in chain.inner_text()
    page.screenshot(path=SHOTS["customer"], full_page=True)


def test_run_the_facility_add_a_node_drain_it_and_make_a_key(page: Any, site: Site, runtime: Runtime) -> None:
    site.facility.nodes(1, model="H100-80GB", cluster="c9", site="iad1", prefix="iad1-h100")
    site.facility.lease(customer_id=site.cleared.id, gpu_model="A100-80GB", gpu_count=5)
    sign_in(page, site.operator)

    # Add a node through the form; it is listed under its cluster.
    page.click("nav >> text=Nodes")
    form = page.locator("#add-node-form")
    form.locator("input[name=site]").fill("fra1")
    form.locator("input[name=cluster]").fill("c2")
    form.locator("input[name=name]").fill("fra1-h200-n000")
    form.locator("select[name=gpu_model]").select_option("H200")
    form.locator("input[name=gpu_count]").fill("4")
    form.locator("button:has-text('Add node')").click()
    row = page.locator("tr", has_text="fra1-h200-n000")
    row.wait_for()
    assert "4× H200" in row.inner_text()

    # Drain it in place (htmx): the page stays, the badge changes.
    page.evaluate("window.__stayed = true")
    row.locator("button:has-text('Drain')").click()
    row.locator(".badge.s-draining").wait_for()
    assert page.evaluate("window.__stayed") is True
    page.screenshot(path=SHOTS["nodes"], full_page=True)

    page.goto("/prices")
    page.locator("details.edit").first.locator("summary").click()
    page.screenshot(path=SHOTS["prices"], full_page=True)
    page.goto("/customers/new")
    page.screenshot(path=SHOTS["new_customer"], full_page=True)

    # A key made on the system page is shown once.
    page.goto("/system")
    page.select_option("select[name=role]", "customer")
    page.select_option("select[name=customer_id]", str(site.cleared.id))
    page.fill("input[name=label]", "ci pipeline")
    page.click("button:has-text('Create key')")
    key = page.locator("#new-key").input_value()
    assert key.startswith("gl_") and runtime.authenticate(key) is not None
    page.screenshot(path=SHOTS["system"], full_page=True)


def _first_review(page: Any) -> str:
    ident = page.locator("article.review-open").first.get_attribute("id")
    assert ident
    return str(ident.removeprefix("review-"))
