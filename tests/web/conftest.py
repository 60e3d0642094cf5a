"""Dashboard fixtures: a small facility, customers in each compliance state, and signed-in browsers per role."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gpulease.runtime import Runtime
from gpulease.services import keys
from gpulease.services.context import SYSTEM
from gpulease.web.session import COOKIE, csrf_token
from tests.conftest import Facility

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@dataclass
class Tenant:
    id: int
    key: str


@dataclass
class Site:
    """What the dashboard tests work on: two A100 nodes, a cleared customer, one that needs review."""

    facility: Facility
    cleared: Tenant
    flagged: Tenant
    operator: str
    compliance: str


def key_for(rt: Runtime, customer_id: int) -> str:
    return rt.perform(keys.create_key, actor=SYSTEM, role="customer", customer_id=customer_id)


@pytest.fixture
def site(facility: Facility, runtime: Runtime) -> Site:
    facility.nodes(2, prefix="fra1-a100")
    facility.prices()
    acme = facility.customer()
    assert acme["compliance_status"] == "cleared", acme
    flagged = facility.customer("iFlytek Co., Ltd.", "CN", owners=[])
    assert flagged["compliance_status"] != "cleared", flagged
    return Site(
        facility,
        Tenant(acme["id"], key_for(runtime, acme["id"])),
        Tenant(flagged["id"], key_for(runtime, flagged["id"])),
        facility.k.operator,
        facility.k.compliance,
    )


def sign_in(c: TestClient, key: str) -> TestClient:
    r = c.post("/login", data={"key": key, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return c


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


@pytest.fixture
def browser(client: TestClient) -> Iterator[Callable[[str], TestClient]]:
    """A fresh cookie jar signed in with the given key (one per role in a test)."""
    opened: list[TestClient] = []

    def open_as(key: str) -> TestClient:
        c = TestClient(client.app)
        opened.append(c)
        return sign_in(c, key)

    yield open_as
    for c in opened:
        c.close()


def session_csrf(c: TestClient) -> str:
    """The CSRF token of the session `c` is signed in with."""
    return csrf_token(c.cookies[COOKIE])


def form(csrf: str, **fields: Any) -> dict[str, Any]:
    return {"csrf": csrf, **{k: str(v) for k, v in fields.items()}}
