"""The bounds of services/limits.py fit the store: whatever the use cases accept fits its column on both stores,
and an input at every maximum is accepted and read back as it was sent."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, Numeric, String

from gpulease.domain.inventory import CATALOGUE
from gpulease.services import limits
from gpulease.store import models as m
from tests.conftest import Facility


def _width(model: Any, column: str) -> int:
    kind = model.__table__.c[column].type
    assert isinstance(kind, String) and kind.length is not None, (model, column)
    return int(kind.length)


def test_every_text_bound_fits_its_column() -> None:
    widths = {
        (m.Customer, "legal_name"): limits.NAME_MAX,
        (m.Customer, "local_name"): limits.NAME_MAX,
        (m.Customer, "parent"): limits.NAME_MAX,
        (m.Customer, "website"): limits.NAME_MAX,
        (m.Customer, "email_domain"): limits.DOMAIN_MAX,
        (m.Site, "name"): limits.PLACE_MAX,
        (m.Cluster, "name"): limits.PLACE_MAX,
        # A removed node's name gets "~removed-<id>" appended, and still fits.
        (m.Node, "name"): limits.NODE_NAME_MAX + len(f"~removed-{limits.MAX_ID}"),
        (m.Node, "gpu_model"): max(len(name) for name in CATALOGUE),
        (m.ApiKey, "label"): limits.LABEL_MAX,
        (m.ReviewItem, "decided_by"): 100,  # actor names: "key:" + an 8-hex prefix, or "cli"
    }
    for (model, column), longest in widths.items():
        assert longest <= _width(model, column), f"{model.__tablename__}.{column}"
    assert _width(m.Lease, "gpu_model") >= limits.MODEL_NAME_MAX


def test_every_number_bound_fits_its_column() -> None:
    int32 = 2**31 - 1
    assert int32 == limits.MAX_ID
    for model, column, largest in (
        (m.PriceRow, "cancel_free_hours", limits.CANCEL_FREE_HOURS_MAX),
        (m.PriceRow, "preemption_notice_s", limits.NOTICE_MAX_S),
        (m.Lease, "duration_s", limits.LEASE_MAX_S),
    ):
        assert isinstance(model.__table__.c[column].type, Integer) and largest <= int32, column
    rate, fee = m.PriceRow.__table__.c["rate"].type, m.PriceRow.__table__.c["cancel_fee_fraction"].type
    assert isinstance(rate, Numeric) and isinstance(fee, Numeric)
    assert (rate.precision, rate.scale) == (18, 6)  # RATE: 9 digits before the point, 6 after
    assert (fee.precision, fee.scale) == (6, 4)  # FRACTION: at most 1, 4 places


def test_inputs_at_every_maximum_are_stored_and_read_back(facility: Facility) -> None:
    f = facility
    address = ("Line one\n" * 200)[: limits.ADDRESS_MAX]
    big: dict[str, Any] = {
        "legal_name": "L" * limits.NAME_MAX,
        "local_name": "名" * limits.NAME_MAX,
        "country": "us",
        "address": address,
        "email_domain": "d" * limits.DOMAIN_MAX,
        "website": "w" * limits.NAME_MAX,
        "parent": "P" * limits.NAME_MAX,
        "end_use": "e" * limits.END_USE_MAX,
        "owners": [{"name": "O" * limits.NAME_MAX, "percent": 100 / limits.OWNERS_MAX}] * limits.OWNERS_MAX,
        "requested_gpus": limits.REQUESTED_GPUS_MAX,
    }
    r = f.c.post("/api/v1/customers", headers=f.k.op, json=big)
    assert r.status_code == 201, r.text[:500]
    got = r.json()
    assert got["legal_name"] == big["legal_name"] and got["end_use"] == big["end_use"] and got["country"] == "US"
    assert got["address"] == address.strip() and len(got["owners"]) == limits.OWNERS_MAX

    site = "S" * limits.PLACE_MAX
    node = f.c.post(
        "/api/v1/nodes",
        headers=f.k.op,
        json={
            "site": site,
            "cluster": site,
            "name": "N" * limits.NODE_NAME_MAX,
            "gpu_model": "a100-80gb",
            "gpu_count": 8,
        },
    )
    assert node.status_code == 201, node.text
    assert f.c.delete(f"/api/v1/nodes/{node.json()['id']}", headers=f.k.op).status_code == 204

    price = {
        "gpu_model": "H100-80GB",
        "plan": "reserved",
        "rate": "999999999.999999",
        "cancel_fee_fraction": "0.9999",
        "cancel_free_hours": limits.CANCEL_FREE_HOURS_MAX,
        "preemption_notice_s": limits.NOTICE_MAX_S,
    }
    r = f.c.put("/api/v1/prices", headers=f.k.op, json=price)
    assert r.status_code == 200, r.text
    listed = [p for p in f.c.get("/api/v1/prices", headers=f.k.op).json() if p["gpu_model"] == "H100-80GB"]
    assert listed[0]["rate"] == "999999999.999999" and listed[0]["cancel_fee_fraction"] == "0.9999"

    r = f.c.post("/api/v1/screen", headers=f.k.co, json={"name": "Z" * limits.SCREEN_NAME_MAX})
    assert r.status_code == 200, r.text
