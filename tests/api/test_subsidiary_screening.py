"""A listed party's known subsidiary through the API, on the store `gpulease serve` seeds (seed_bundled_lists): the
screen and the customer onboarding put it in review as a possible affiliate of the parent, naming both."""

from __future__ import annotations

import pytest

from gpulease.runtime import Runtime
from gpulease.services.screening import ScreeningRegistry
from tests.conftest import Facility


def test_screen_reviews_a_subsidiary_as_an_affiliate_of_its_listed_parent(
    facility: Facility, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ScreeningRegistry, "_cache", {})  # the index built from the seeded store, not a cached one
    r = facility.c.post(
        "/api/v1/screen",
        headers=facility.k.co,
        json={"name": "China Harbour Engineering Company Ltd.", "country": "CN"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] == "review", body
    top = body["hits"][0]
    assert top["name"] == "CHINA COMMUNICATIONS CONSTRUCTION COMPANY LIMITED" and top["affiliate"] is True
    assert top["matched_name"] == "China Harbour Engineering Company Ltd." and top["outcome"] == "review"
    assert top["enrichment"]["kind"] == "subsidiary" and top["enrichment"]["source_url"].startswith("https://")
    assert top["enrichment"]["relation"] == "wholly_owned" and top["enrichment"]["share"] == "100%"
    assert any("wholly owned subsidiary" in reason and "50% rule" in reason for reason in top["reasons"])


def test_onboarding_a_subsidiary_puts_the_customer_in_review_not_denied(facility: Facility) -> None:
    customer = facility.customer("三六零安全科技股份有限公司", country="CN", address="北京市朝阳区")
    assert customer["compliance_status"] == "review"
    screening = facility.c.get(f"/api/v1/customers/{customer['id']}/screening", headers=facility.k.co).json()
    text = str(screening)
    assert "Qihoo 360 Technology" in text and "successor" in text
