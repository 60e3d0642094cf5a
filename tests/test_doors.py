"""One door per user action: the same refused action gets the same answer through the API, the dashboard and
the CLI (status and sentence), because each door only translates and the use case in services/ decides."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gpulease.cli import app as cli_app
from gpulease.runtime import Runtime
from gpulease.store.models import AuditRecord
from tests.conftest import Facility
from tests.web.conftest import session_csrf, sign_in

runner = CliRunner()


@dataclass
class World:
    """A small facility: a cleared customer with an active and an ended lease, one that is not cleared."""

    keys: dict[str, str]  # who -> API key
    cleared: int
    flagged: int
    active_lease: int
    ended_lease: int
    open_review: int


@dataclass(frozen=True)
class Outcome:
    status: int
    detail: str


@dataclass(frozen=True)
class Case:
    id: str
    who: str  # operator | compliance | cleared | flagged (a customer's own key)
    action: str  # onboard | book | end | cancel | extend | decide
    args: Callable[[World], dict[str, Any]]
    status: int
    says: str  # what the sentence must say, whichever door


def _owners(*owners: tuple[str, float]) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"legal_name": "Dunes LLC", "country": "US", "owners": list(owners)}


CASES = [
    Case("negative owner share", "operator", "onboard", _owners(("Sam", -20)), 422, "between 0 and 100%"),
    Case("owner share over 100", "operator", "onboard", _owners(("Sam", 110)), 422, "between 0 and 100%"),
    Case("shares over 100 in all", "operator", "onboard", _owners(("A", 60), ("B", 60)), 422, "more than 100"),
    Case("bad country code", "operator", "onboard", lambda w: {"legal_name": "X", "country": "USA"}, 422, "ISO"),
    Case("customer onboarding", "cleared", "onboard", lambda w: {"legal_name": "X", "country": "US"}, 403, "role"),
    Case(
        "unknown model",
        "operator",
        "book",
        lambda w: {"customer_id": w.cleared, "gpu_model": "Z100-80GB", "gpu_count": 1},
        422,
        "Z100-80GB",
    ),
    Case(
        "no GPUs",
        "operator",
        "book",
        lambda w: {"customer_id": w.cleared, "gpu_model": "A100-80GB", "gpu_count": 0},
        422,
        "between 1 and 64",
    ),
    Case(
        "unknown plan",
        "operator",
        "book",
        lambda w: {"customer_id": w.cleared, "gpu_model": "A100-80GB", "gpu_count": 1, "plan": "weekly"},
        422,
        "plan must be one of",
    ),
    Case(
        "customer books for another tenant",
        "cleared",
        "book",
        lambda w: {"customer_id": w.flagged, "gpu_model": "A100-80GB", "gpu_count": 1},
        404,
        "no such customer",
    ),
    Case(
        "compliance key books",
        "compliance",
        "book",
        lambda w: {"customer_id": w.cleared, "gpu_model": "A100-80GB", "gpu_count": 1},
        403,
        "operator or customer role",
    ),
    Case(
        "customer not cleared",
        "flagged",
        "book",
        lambda w: {"gpu_model": "A100-80GB", "gpu_count": 1},
        403,
        "not cleared",
    ),
    Case(
        "booking past the GPU quota",
        "cleared",
        "book",
        lambda w: {"gpu_model": "A100-80GB", "gpu_count": 2},
        409,
        "quota is 2 A100-80GB GPUs at a time",
    ),
    Case(
        "booking past the monthly spend limit",
        "operator",
        "book",
        lambda w: {
            "customer_id": w.cleared,
            "gpu_model": "A100-80GB",
            "gpu_count": 1,
            "plan": "reserved",
            "start": "2026-11-10T09:00",
            "end": "2026-11-10T19:00",
        },
        402,
        "past the customer's monthly spend limit of 5.00 USD",
    ),
    Case(
        "customer ends another tenant's lease",
        "flagged",
        "end",
        lambda w: {"lease_id": w.active_lease},
        404,
        "no lease with id",
    ),
    Case("ending an ended lease", "operator", "end", lambda w: {"lease_id": w.ended_lease}, 409, "cannot be ended"),
    Case("cancelling an active lease", "cleared", "cancel", lambda w: {"lease_id": w.active_lease}, 409, "end it"),
    Case(
        "extending an open-ended lease",
        "cleared",
        "extend",
        lambda w: {"lease_id": w.active_lease, "end": "2026-11-03T09:00"},
        409,
        "open-ended",
    ),
    Case(
        "operator decides a review",
        "operator",
        "decide",
        lambda w: {"review_id": w.open_review, "decision": "approve", "comment": "looks fine"},
        403,
        "compliance role",
    ),
]


# --------------------------------------------------------------------------------------------- the doors


def through_api(c: TestClient, key: str, action: str, a: dict[str, Any]) -> Outcome:
    h = {"Authorization": f"Bearer {key}"}
    if action == "onboard":
        owners = [{"name": n, "percent": p} for n, p in a.get("owners", [])]
        r = c.post("/api/v1/customers", headers=h, json={**a, "owners": owners})
    elif action == "book":
        r = c.post(
            "/api/v1/leases", headers=h, json={k: v + ":00Z" if k in ("start", "end") else v for k, v in a.items()}
        )
    elif action in ("end", "cancel"):
        r = c.post(f"/api/v1/leases/{a['lease_id']}/{action}", headers=h)
    elif action == "extend":
        r = c.post(f"/api/v1/leases/{a['lease_id']}/extend", headers=h, json={"end": a["end"] + ":00Z"})
    else:
        body = {"decision": a["decision"], "comment": a["comment"]}
        r = c.post(f"/api/v1/reviews/{a['review_id']}/decision", headers=h, json=body)
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    return Outcome(r.status_code, r.json()["detail"])


def through_web(c: TestClient, key: str, action: str, a: dict[str, Any], api_said: str) -> Outcome:
    data: dict[str, Any] = {"csrf": session_csrf(c)}
    if action == "onboard":
        owners = a.get("owners", [])
        data |= {"legal_name": a["legal_name"], "country": a["country"]}
        data |= {"owner_name": [n for n, _ in owners], "owner_percent": [str(p) for _, p in owners]}
        r = c.post("/customers/new", data=data, follow_redirects=False)
    elif action == "book":
        data |= {"start": "", "end": ""} | {k: str(v) for k, v in a.items()}
        r = c.post("/leases", data=data, follow_redirects=False)
    elif action in ("end", "cancel"):
        r = c.post(f"/leases/{a['lease_id']}/{action}", data=data, follow_redirects=False)
    elif action == "extend":
        r = c.post(f"/leases/{a['lease_id']}/extend", data=data | {"end": a["end"]}, follow_redirects=False)
    else:
        data |= {"decision": a["decision"], "comment": a["comment"]}
        r = c.post(f"/reviews/{a['review_id']}/decision", data=data, follow_redirects=False)
    assert r.headers["content-type"].startswith("text/html"), r.text
    page = " ".join(html.unescape(r.text).split())
    # The page shows the sentence next to the form or on the error page; find the one the API gave.
    return Outcome(r.status_code, api_said if api_said in page else page)


def through_cli(base_url: str, key: str, action: str, a: dict[str, Any]) -> Outcome:
    if action == "onboard":
        args = ["customers", "add", a["legal_name"], a["country"]]
        for n, p in a.get("owners", []):
            args += ["--owner", f"{n}={p}"]
    elif action == "book":
        args = ["leases", "create", a["gpu_model"], str(a["gpu_count"])]
        if "customer_id" in a:
            args += ["--customer", str(a["customer_id"])]
        if "plan" in a:
            args += ["--plan", a["plan"]]
        for when in ("start", "end"):
            if when in a:
                args += [f"--{when}", a[when] + ":00Z"]
    elif action in ("end", "cancel"):
        args = ["leases", action, str(a["lease_id"])]
    elif action == "extend":
        args = ["leases", "extend", str(a["lease_id"]), "--end", a["end"] + ":00Z"]
    else:
        args = ["reviews", "decide", str(a["review_id"]), a["decision"], "--comment", a["comment"]]
    r = runner.invoke(cli_app, args, env={"GPULEASE_API_URL": base_url, "GPULEASE_API_KEY": key})
    assert r.exit_code == 1, r.output
    said = " ".join(r.output.split())
    m = re.search(r"error: .*? \((\d{3})\): (.*)$", said)
    assert m, said
    return Outcome(int(m.group(1)), m.group(2))


# --------------------------------------------------------------------------------------------- the test


@pytest.fixture
def world(facility: Facility, runtime: Runtime) -> World:
    facility.nodes(2)
    facility.prices()
    cleared = facility.customer()
    flagged = facility.customer("iFlytek Co., Ltd.", "CN", owners=[])
    assert cleared["compliance_status"] == "cleared" and flagged["compliance_status"] != "cleared"
    keys = {
        "operator": facility.k.operator,
        "compliance": facility.k.compliance,
        "cleared": facility.customer_key(cleared["id"])["Authorization"].split()[1],
        "flagged": facility.customer_key(flagged["id"])["Authorization"].split()[1],
    }
    r = facility.c.put(
        f"/api/v1/customers/{cleared['id']}/limits",
        headers=facility.k.op,
        json={"monthly_spend_limit": "5.00", "gpu_quota": {"A100-80GB": 2}},
    )
    assert r.status_code == 200, r.text
    active = facility.lease(customer_id=cleared["id"], gpu_model="A100-80GB", gpu_count=1)
    ended = facility.lease(customer_id=cleared["id"], gpu_model="A100-80GB", gpu_count=1)
    r = facility.c.post(f"/api/v1/leases/{ended['id']}/end", headers=facility.k.op)
    assert r.json()["state"] == "ended", r.text
    reviews = facility.c.get("/api/v1/reviews", headers=facility.k.co).json()
    review = next(r for r in reviews if r["customer_id"] == flagged["id"])
    return World(keys, cleared["id"], flagged["id"], active["id"], ended["id"], review["id"])


@pytest.fixture
def browsers(client: TestClient) -> Iterator[Callable[[str], TestClient]]:
    opened: list[TestClient] = []

    def open_as(key: str) -> TestClient:
        c = TestClient(client.app)
        opened.append(c)
        return sign_in(c, key)

    yield open_as
    for c in opened:
        c.close()


def _refusals(runtime: Runtime) -> int:
    with runtime.store.transaction() as s:
        return s.query(AuditRecord).filter(AuditRecord.action == "lease.refused").count()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_door_refuses_alike(
    case: Case,
    world: World,
    facility: Facility,
    live_server: str,
    browsers: Callable[[str], TestClient],
    runtime: Runtime,
) -> None:
    key, args = world.keys[case.who], case.args(world)
    api = through_api(facility.c, key, case.action, args)
    assert api.status == case.status and case.says in api.detail, api
    web = through_web(browsers(key), key, case.action, args, api.detail)
    cli = through_cli(live_server, key, case.action, args)
    assert web == api and cli == api
    if case.id == "customer not cleared":  # kept on record once per refusal, whichever door it came through
        assert _refusals(runtime) == 3
