"""A customer's home page in a real browser (Debian's chromium, Playwright, a real uvicorn server): the spend
tiles, the chart drawn and visible, the running leases; a screenshot in /tmp/gpulease-home.png."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Clock
from tests.web.conftest import Site

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")
SHOT = "/tmp/gpulease-home.png"


@pytest.fixture
def page(live_server: str, site: Site) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu", "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=live_server)
        pg = context.new_page()
        pg.set_default_timeout(10_000)
        yield pg
        context.close()
        browser.close()


def test_a_customer_sees_its_spend_and_chart(page: Any, site: Site, clock: Clock) -> None:
    f = site.facility
    f.c.put(
        f"/api/v1/customers/{site.cleared.id}/limits",
        headers=f.k.op,
        json={"monthly_spend_limit": "2000.00", "gpu_quota": {"A100-80GB": 16}},
    )
    me = {"Authorization": f"Bearer {site.cleared.key}"}
    f.lease(me, gpu_model="A100-80GB", gpu_count=8)
    start = clock() + timedelta(days=3)
    f.lease(
        me,
        gpu_model="A100-80GB",
        gpu_count=4,
        plan="reserved",
        start=start.isoformat(),
        end=(start + timedelta(hours=20)).isoformat(),
    )
    clock.advance(hours=30)
    f.rt.tick()
    page.goto("/")
    page.fill("input[name=key]", site.cleared.key)
    page.click("button:has-text('Sign in')")
    page.wait_for_load_state()
    assert page.url.endswith("/")
    assert "300.00 USD" in page.inner_text("#spend")  # 30 h of 8 GPUs at 1.25
    chart = page.locator("svg.spend-chart")
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    assert page.locator("svg.spend-chart polyline.spent").count() == 1
    assert "open-ended" in page.inner_text("#running")
    page.screenshot(path=SHOT, full_page=True)
