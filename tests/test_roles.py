"""Roles as documented (issue 10, item 4): every API route is classified in `gpulease.api.access.ROUTES`, the
README's roles table is that table, and every route called with every role answers 403 exactly where the
table says the role may not (401 without a key, except the public ones)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from gpulease.api.access import ROUTES, Open, markdown_table, roles_of
from gpulease.services.context import Role
from tests.conftest import Facility

README = Path(__file__).resolve().parents[1] / "README.md"


def api_routes(app: object) -> set[tuple[str, str]]:
    """(method, path) of every API route the app serves: the routers under /api/v1, /metrics and /healthz."""
    out: set[tuple[str, str]] = set()
    for r in app.routes:  # type: ignore[attr-defined]
        contexts = r.effective_route_contexts() if hasattr(r, "effective_route_contexts") else [r]
        for c in contexts:
            path = str(getattr(c, "path", ""))
            is_api = path.startswith("/api/") or path in ("/metrics", "/healthz")
            if (isinstance(c, APIRoute) or hasattr(c, "methods")) and is_api:
                out |= {(m, path) for m in (c.methods or ()) if m != "HEAD"}
    return out


def test_every_route_is_classified_and_the_readme_table_is_the_routes_table(facility: Facility) -> None:
    served = api_routes(facility.c.app)
    assert served - set(ROUTES) == set(), "routes with no entry in gpulease.api.access.ROUTES"
    assert set(ROUTES) - served == set(), "entries in ROUTES for routes the app no longer serves"
    text = README.read_text()
    m = re.search(r"<!-- roles:begin -->\n(.*?)<!-- roles:end -->", text, re.S)
    assert m is not None and m.group(1) == markdown_table(), "README roles table: run python -m gpulease.api.access"


@pytest.mark.parametrize("role", [None, *Role])
def test_every_route_with_every_role_answers_as_the_table_says(facility: Facility, role: Role | None) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()  # id 1: the customer key's own tenant
    headers = {
        None: {},
        Role.OPERATOR: facility.k.op,
        Role.COMPLIANCE: facility.k.co,
        Role.CUSTOMER: facility.customer_key(cust["id"]),
    }[role]
    wrong = []
    for method, path in sorted(ROUTES):
        url = re.sub(r"\{[a-z_]+\}", "1", path.replace("{key_id}", "999999"))  # never revoke the key we walk with
        body: dict[str, object] | None = {} if method in ("POST", "PUT", "PATCH") else None
        r = facility.c.request(method, url, headers=headers, json=body)
        access = ROUTES[(method, path)]
        if role is None:
            ok = r.status_code != 401 if access is Open.PUBLIC else r.status_code == 401
        elif role in roles_of(access):
            ok = r.status_code not in (401, 403) and r.status_code < 500
        else:
            ok = r.status_code == 403
        if not ok:
            wrong.append(f"{method} {path}: {r.status_code} {r.text[:120]}")
    assert wrong == [], "\n".join(wrong)


def test_the_openapi_document_names_the_key_exactly_where_the_table_asks_for_one(facility: Facility) -> None:
    """`security` (and its 401) is documented from the access table, not from a dependency: every operation that
    needs a key names the bearer scheme, and a public one names none."""
    doc = facility.c.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "API key: `Authorization: Bearer gl_…`",
    }
    documented = {(m.upper(), p): op for p, ops in doc["paths"].items() for m, op in ops.items()}
    assert documented, "no operations documented"
    for (method, path), op in documented.items():
        public = ROUTES[(method, path)] is Open.PUBLIC
        assert ("security" in op) is not public, (method, path)
        assert ("401" in op["responses"]) is not public, (method, path)
        if not public:
            assert op["security"] == [{"HTTPBearer": []}], (method, path)
    assert any(a is Open.PUBLIC for (m, p), a in ROUTES.items() if (m, p) in documented), "no public route to check"
