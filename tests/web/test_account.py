"""The dashboard's spend, limits, keys, webhooks and profile pages, as a signed-in customer or operator sees them."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gpulease.runtime import Runtime
from gpulease.services.spend import CustomerSpend, DayPoint
from gpulease.settings import Settings
from gpulease.web import spend_chart
from tests.conftest import T0, Clock
from tests.web.conftest import Site, form, session_csrf
from tests.webhook_receiver import Receiver

Browser = Callable[[str], TestClient]
A100 = "A100-80GB"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def settings(db_url: str, tmp_path: Path, sandbox_dir: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        stop_grace_s=2.0,
        sandbox_dir=sandbox_dir,
        webhook_allow_private_targets=True,
    )


def text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def chart_of(page: str) -> ET.Element:
    m = re.search(r'<svg xmlns="http://www.w3.org/2000/svg" class="spend-chart".*?</svg>', page, re.S)
    assert m, "no spend chart on the page"
    return ET.fromstring(m.group(0))


def test_a_customers_home_shows_spend_a_chart_running_leases_and_news(
    browser: Browser, site: Site, clock: Clock
) -> None:
    f = site.facility
    f.c.put(
        f"/api/v1/customers/{site.cleared.id}/limits",
        headers=f.k.op,
        json={"monthly_spend_limit": "100.00", "gpu_quota": {A100: 12}},
    )
    me = {"Authorization": f"Bearer {site.cleared.key}"}
    lease = f.lease(me, gpu_model=A100, gpu_count=8)
    clock.advance(hours=6)  # 60.00 accrued: 60 % of the limit
    f.rt.tick()
    cu = browser(site.cleared.key)
    page = cu.get("/")
    assert page.status_code == 200
    t = text(page.text)
    assert (
        "Spent in 2026-11 60.00 USD" in t and "0.00 USD billed · 60.00 USD accrued by running leases (not final)" in t
    )
    assert "Monthly spend limit 60 % of 100.00 USD used" in t and "Forecast to the month's end 6,870.00 USD" in t
    assert f"#{lease['id']}" in t and "60.00 USD" in t and "open-ended" in t
    assert "A100-80GB: 8 of 12 in use or booked" in t
    assert "budget.threshold" in t and "50 % of the monthly limit" in t
    svg = chart_of(page.text)
    [spent] = [e for e in svg.iter(f"{SVG}polyline") if e.attrib.get("class") == "spent"]
    assert len(spent.attrib["points"].split()) == 3  # the 1st of the month, its end, and now on the 2nd
    assert "60.00 USD spent so far" in "".join(spent.itertext())
    forecast = next(e for e in svg.iter(f"{SVG}polyline") if "forecast" in e.attrib.get("class", ""))
    assert "over" in forecast.attrib["class"]  # running on to the month's end would pass the limit
    assert any("limit" in e.attrib.get("class", "") for e in svg.iter(f"{SVG}line"))

    # the lease's page and the list show what it has cost so far
    lp = text(cu.get(f"/leases/{lease['id']}").text)
    assert "Cost so far 60.00 USD (60.00 USD accrued since the last record: not final)" in lp
    assert "Ran 6 h 00 min" in lp and "Remaining open-ended" in lp
    assert "open-ended 60.00 …" in text(cu.get("/leases").text)  # "…": still running, accrues
    # the invoice keeps what is on record apart from what running leases have accrued
    inv = text(cu.get("/invoices?period=2026-11").text)
    assert "Total 0.00 USD" in inv and "Running leases: accrued, not on the invoice yet" in inv
    assert "Accrued so far (running) 60.00 USD" in inv
    cu.post(f"/leases/{lease['id']}/end", data=form(session_csrf(cu)))
    lp = text(cu.get(f"/leases/{lease['id']}").text)
    assert "Final cost 60.00 USD" in lp

    # a lease that stops in two hours: the forecast rises until then and levels off, not a slope to the 30th
    f.lease(me, gpu_model=A100, gpu_count=2, duration_s=7200)
    forecast = next(
        e for e in chart_of(cu.get("/").text).iter(f"{SVG}polyline") if "forecast" in e.attrib.get("class", "")
    )
    (x0, y0), (x1, y1), (x2, y2) = [tuple(map(float, p.split(","))) for p in forecast.attrib["points"].split()]
    assert x0 < x1 < x2 and y1 < y0 and y2 == y1  # (SVG's y grows downwards)
    assert x1 - x0 < (x2 - x1) / 100  # two hours, against the rest of the month


def test_the_spend_chart_draws_what_was_spent_the_forecast_and_the_limit() -> None:
    s = CustomerSpend(
        customer_id=1,
        period="2026-11",
        currency="USD",
        billed=Decimal("30.00"),
        accrued=Decimal("5.00"),
        forecast=Decimal("50.00"),
        limit=Decimal("80.00"),
        as_of=T0 + timedelta(days=2, hours=3),  # Nov 4, 12:00
        leases=[],
        days=[DayPoint(T0.date().replace(day=d), Decimal(a)) for d, a in ((1, "0"), (2, "10"), (3, "20"), (4, "5"))],
    )
    svg = ET.fromstring(str(spend_chart.render(s, 30)))
    [spent] = [e for e in svg.iter(f"{SVG}polyline") if e.attrib.get("class") == "spent"]
    pts = [tuple(map(float, p.split(","))) for p in spent.attrib["points"].split()]
    assert len(pts) == 5 and pts[0][1] > pts[-1][1]  # from zero up (SVG's y grows downwards)
    assert [round(x) for x, _ in pts] == sorted(round(x) for x, _ in pts)
    forecast = next(e for e in svg.iter(f"{SVG}polyline") if "forecast" in e.attrib.get("class", ""))
    assert "over" not in forecast.attrib["class"]  # 50 of 80
    assert "limit 80.00 USD" in "".join(svg.itertext())
    assert svg.attrib["aria-label"] == "Spend in 2026-11: 35.00 USD so far, 50.00 USD forecast"
    assert ticks(svg) == ["0", "20", "40", "60", "80"]  # up to the limit, the highest amount drawn
    empty = CustomerSpend(1, "2026-12", "USD", *(Decimal(0),) * 3, None, T0, [], [])
    assert "nothing spent in this month" in str(spend_chart.render(empty, 31))


def ticks(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text") if t.attrib.get("class") == "tick"]


def test_the_spend_charts_scale_reads_at_a_glance_at_any_amount() -> None:
    """Round steps, distinct labels, the top tick at or above what is drawn: a two-cent month once read "0, 0, 1"."""
    for spent, forecast, limit, want in (
        ("0.02", "0.02", None, ["0.00", "0.25", "0.50", "0.75", "1.00"]),
        ("3.10", "9.40", None, ["0.0", "2.5", "5.0", "7.5", "10.0"]),
        ("400.00", "1001.00", None, ["0", "500", "1,000", "1,500"]),
        ("12000.00", "18000.00", "25000.00", ["0", "10,000", "20,000", "30,000"]),
    ):
        cap = None if limit is None else Decimal(limit)
        s = CustomerSpend(
            1, "2026-11", "USD", Decimal(spent), Decimal(0), Decimal(forecast), cap,
            T0 + timedelta(days=3), [], [DayPoint(T0.date(), Decimal(spent))],
        )  # fmt: skip
        assert ticks(ET.fromstring(str(spend_chart.render(s, 30)))) == want, (spent, forecast, limit)


def test_a_customer_makes_rotates_and_revokes_keys_in_the_dashboard(browser: Browser, site: Site, clock: Clock) -> None:
    cu = browser(site.cleared.key)
    page = cu.get("/keys")
    assert page.status_code == 200 and "(this session)" in page.text
    r = cu.post("/keys", data=form(session_csrf(cu), label="laptop"))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    secret = re.search(r'id="new-key" readonly value="(gl_[^"]+)"', r.text)
    assert secret and "shown this once" in r.text
    api = site.facility.c
    assert api.get("/api/v1/leases", headers={"Authorization": f"Bearer {secret.group(1)}"}).status_code == 200
    assert secret.group(1) not in cu.get("/keys").text  # never again
    key_id = next(k["id"] for k in api.get("/api/v1/keys", headers=site.facility.k.op).json() if k["label"] == "laptop")
    r = cu.post(f"/keys/{key_id}/rotate", data=form(session_csrf(cu), grace_s="3600"))
    new = re.search(r'id="new-key" readonly value="(gl_[^"]+)"', r.text)
    assert new and new.group(1) != secret.group(1) and "stops 2026-11-02 10:00 UTC" in r.text
    r = cu.post(f"/keys/{key_id}/revoke", data=form(session_csrf(cu)), follow_redirects=False)
    assert r.status_code == 303
    assert api.get("/api/v1/leases", headers={"Authorization": f"Bearer {secret.group(1)}"}).status_code == 401
    # another tenant's key is not there to revoke
    other = site.facility.customer_key(site.flagged.id)
    theirs = api.post("/api/v1/keys", headers=other, json={}).json()["id"]
    r = cu.post(f"/keys/{theirs}/revoke", data=form(session_csrf(cu)))
    assert r.status_code == 404 and "no key with id" in r.text
    assert browser(site.operator).get("/keys").status_code == 404  # staff manage keys on /system


def test_webhooks_in_the_dashboard_with_a_test_button_and_a_delivery_log(
    browser: Browser, site: Site, runtime: Runtime, receiver: Receiver
) -> None:
    cu = browser(site.cleared.key)
    r = cu.post("/webhooks", data={"csrf": session_csrf(cu), "url": "ftp://x", "events": ["*"]})
    assert r.status_code == 422 and "https://" in text(r.text) and 'value="ftp://x"' in r.text
    r = cu.post(
        "/webhooks", data={"csrf": session_csrf(cu), "url": receiver.url, "events": ["lease.started", "lease.ended"]}
    )
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    secret = re.search(r'id="new-secret" readonly value="(whsec_[^"]+)"', r.text)
    assert secret
    hook_id = int(re.findall(r'href="/webhooks/(\d+)"', r.text)[0])
    r = cu.post(f"/webhooks/{hook_id}/test", data=form(session_csrf(cu)))
    assert r.status_code == 200 and "queued" in text(r.text) and 'hx-trigger="every 3s"' in r.text
    runtime.deliveries.run_once()
    log = text(cu.get(f"/webhooks/{hook_id}").text)
    assert "webhook.test" in log and "delivered" in log and "HTTP 200" in log
    assert receiver.received[0].headers["x-gpulease-signature"].startswith("t=")
    r = cu.post(f"/webhooks/{hook_id}/delete", data=form(session_csrf(cu)), follow_redirects=False)
    assert r.status_code == 303 and "No webhooks yet." in cu.get("/webhooks").text


def test_a_customer_updates_its_address_and_contacts(browser: Browser, site: Site, runtime: Runtime) -> None:
    cu = browser(site.cleared.key)
    assert "Address and contacts" in cu.get("/profile").text
    data = {
        "csrf": session_csrf(cu),
        "address": "9 Harbor Way, Oakland, CA",
        "contact_name": ["Ada Ops", ""],
        "contact_email": ["not-an-email", ""],
        "contact_phone": ["", ""],
        "contact_role": ["technical", ""],
    }
    r = cu.post("/profile", data=data)
    assert r.status_code == 422 and "is not an email address" in text(r.text) and "9 Harbor Way" in r.text
    data["contact_email"] = ["ops@acme-robotics.example", ""]
    r = cu.post("/profile", data=data)
    assert r.status_code == 200 and "Saved." in r.text and "ops@acme-robotics.example" in r.text
    screening = site.facility.c.get(f"/api/v1/customers/{site.cleared.id}/screening", headers=site.facility.k.co)
    assert screening.json()["trigger"] == "profile change"


def test_operators_set_limits_on_the_customers_page(browser: Browser, site: Site) -> None:
    op = browser(site.operator)
    page = op.get(f"/customers/{site.cleared.id}")
    assert 'id="limits-form"' in page.text and "Spend in 2026-11" in page.text
    data = {"csrf": session_csrf(op), "monthly_spend_limit": "abc", "quota_model": [A100], "quota_gpus": ["8"]}
    r = op.post(f"/customers/{site.cleared.id}/limits", data=data)
    assert r.status_code == 422 and "amount such as 1000.00" in text(r.text)
    data["monthly_spend_limit"] = "1500"
    r = op.post(f"/customers/{site.cleared.id}/limits", data=data, follow_redirects=False)
    assert r.status_code == 303
    t = text(op.get(f"/customers/{site.cleared.id}").text)
    assert "Monthly limit 1,500.00 USD" in t and "GPU quota A100-80GB: 8" in t
    co = browser(site.compliance)
    assert 'id="limits-form"' not in co.get(f"/customers/{site.cleared.id}").text
    r = co.post(f"/customers/{site.cleared.id}/limits", data={**data, "csrf": session_csrf(co)})
    assert r.status_code == 403
