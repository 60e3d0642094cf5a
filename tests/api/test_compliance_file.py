"""A customer's compliance file (issue 10, item 8 of the issue; item 7 of the task): the JSON export through the
API (compliance role only), the same file as a dashboard page, and the CLI command."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gpulease.runtime import Runtime
from tests.api.test_decisions import IFLYTEK, IFLYTEK_NAME
from tests.api.test_holds import LICENCE, review_of, second_compliance
from tests.conftest import Facility


def test_the_compliance_file_has_what_an_auditor_asks_for(
    facility: Facility, runtime: Runtime, client: TestClient
) -> None:
    facility.nodes(1)
    facility.prices()
    c = facility.customer(IFLYTEK_NAME, **IFLYTEK)
    item = review_of(facility, c["id"])
    body = {"decision": "approve", "comment": "licensed end use", "licence": LICENCE}
    r = facility.c.post(f"/api/v1/reviews/{item['id']}/decision", headers=facility.k.co, json=body)
    assert r.status_code == 202
    second = second_compliance(facility)
    r = facility.c.post(f"/api/v1/reviews/{item['id']}/decision", headers=second, json=body)
    assert r.status_code == 200
    facility.lease(customer_id=c["id"], gpu_model="A100-80GB", gpu_count=2)

    url = f"/api/v1/customers/{c['id']}/compliance-file"
    assert facility.c.get(url, headers=facility.k.op).status_code == 403
    assert facility.c.get(url, headers=facility.customer_key(c["id"])).status_code == 403
    r = facility.c.get(url, headers=facility.k.co)
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["kyc"]["legal_name"] == IFLYTEK_NAME and f["compliance_status"] == "cleared"
    [sc] = f["screenings"]
    assert sc["trigger"] == "onboarding" and sc["list_version"] and sc["list_version_hash"]
    [rev] = [x for x in f["reviews"] if x["id"] == item["id"]]
    assert [d["final"] for d in rev["decisions"]] == [False, True]
    assert len({d["by"] for d in rev["decisions"]}) == 2  # two different officers
    assert rev["decisions"][0]["licence"]["number"] == LICENCE["number"]
    actions = [a["action"] for a in f["audit"]]
    for expected in ("customer.created", "customer.screened", "review.first_approval", "review.decided"):
        assert expected in actions, (expected, actions)
    assert any(a["subject"].startswith("lease:") for a in f["audit"])  # its leases' entries too

    page = TestClient(client.app)
    page.post("/login", data={"key": facility.k.compliance, "next": "/"}, follow_redirects=False)
    html = page.get(f"/customers/{c['id']}/compliance-file")
    assert html.status_code == 200
    for text in ("Compliance file", "KYC record", LICENCE["number"], "review.decided", "first approval"):
        assert text in html.text, text


def test_the_cli_prints_the_compliance_file(facility: Facility, live_server: str) -> None:
    from gpulease.cli import app

    c = facility.customer()
    env = {"GPULEASE_API_URL": live_server, "GPULEASE_API_KEY": facility.k.compliance}
    out = CliRunner().invoke(app, ["customers", "compliance-file", str(c["id"])], env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["customer_id"] == c["id"]
