"""The command line for spend, limits, self-service keys, profile changes and webhooks, against a real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from gpulease.cli import app
from gpulease.runtime import Runtime
from gpulease.settings import Settings
from tests.conftest import Clock, Facility
from tests.webhook_receiver import Receiver

runner = CliRunner()
A100 = "A100-80GB"


@pytest.fixture
def settings(db_url: str, tmp_path: Path, sandbox_dir: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        stop_grace_s=2.0,
        sandbox_dir=sandbox_dir,
        webhook_allow_private_targets=True,  # the receiver is on 127.0.0.1
    )


def cli(base: str, key: dict[str, str], *args: str) -> Result:
    env = {"GPULEASE_API_URL": base, "GPULEASE_API_KEY": key["Authorization"].split()[1]}
    return runner.invoke(app, list(args), env=env)


def _json(r: Result) -> Any:
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_spend_limits_and_a_lease_cost_from_the_command_line(
    facility: Facility, live_server: str, clock: Clock, tmp_path: Path
) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    me = facility.customer_key(cust["id"])
    op = facility.k.op
    r = cli(live_server, op, "customers", "set-limits", str(cust["id"]), "--spend-limit", "500", "--quota", f"{A100}=4")
    assert r.exit_code == 0, r.output
    limits = _json(cli(live_server, me, "customers", "limits", str(cust["id"]), "--json"))
    assert limits == {"customer_id": cust["id"], "monthly_spend_limit": "500.00", "gpu_quota": {A100: 4}}
    r = cli(live_server, op, "customers", "set-limits", str(cust["id"]), "--quota", f"{A100}=3")
    assert (
        _json(cli(live_server, me, "customers", "limits", str(cust["id"]), "--json"))["monthly_spend_limit"] == "500.00"
    )
    r = cli(live_server, me, "customers", "set-limits", str(cust["id"]), "--no-spend-limit")
    assert r.exit_code == 1 and "Forbidden (403)" in r.output

    lease = _json(cli(live_server, me, "leases", "create", A100, "2", "--json"))
    r = cli(live_server, me, "leases", "create", A100, "2")
    assert r.exit_code == 1 and "GPU quota exceeded (409)" in r.output and "quota is 3" in " ".join(r.output.split())
    clock.advance(hours=1)
    facility.rt.tick()
    r = cli(live_server, me, "leases", "show", str(lease["id"]))
    assert r.exit_code == 0 and "cost so far 2.50 USD · ran 1h00m00s · remaining open-ended" in r.output
    node = lease["gpus"][0]["node"]
    first = lease["gpus"][0]["index"]
    # where it runs, read as a node and its GPUs (not Slurm's node[0-1], which reads as a range of hosts)
    assert f"{node} GPUs {first}-{first + 1}" in r.output, r.output
    r = cli(live_server, me, "spend")
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "accrued (running, not final) │ 2.50 USD" in text and "500.00 USD (0.5% used)" in text
    # The lease's row whole, headers not cut (Rich cuts a cell to fit the terminal: 80 columns here).
    assert f" {lease['id']} 2×{A100} on-demand active 0.00 2.50 running " in f" {text} "
    data = _json(cli(live_server, me, "spend", "--json"))
    assert data["accrued"] == "2.50" and data["leases"][0]["running"]
    r = cli(live_server, op, "invoices", "show", str(cust["id"]), "--period", "2026-11")
    assert r.exit_code == 0 and "accrued so far 2.50 USD (not final)" in r.output
    mine = cli(live_server, me, "invoices", "show", "--period", "2026-11")  # a customer key: its own invoice
    assert mine.exit_code == 0 and mine.output == r.output
    facility.customer("Beta Robotics Inc.")
    r = cli(live_server, op, "spend")
    assert r.exit_code == 1 and "give the customer id" in r.output
    r = cli(live_server, op, "invoices", "show")
    assert r.exit_code == 1 and "give the customer id" in r.output
    # Usage as CSV: a customer key's own without an id, any customer's with it; an operator key must say whose.
    cli(live_server, me, "leases", "end", str(lease["id"]))
    mine_csv, theirs_csv = tmp_path / "mine.csv", tmp_path / "theirs.csv"
    r = cli(live_server, me, "invoices", "usage", str(mine_csv))
    assert r.exit_code == 0 and "1 usage record of customer" in r.output, r.output
    assert mine_csv.read_text().splitlines()[1].startswith(f"{lease['id']},2026-11,usage,")
    r = cli(live_server, op, "invoices", "usage", str(cust["id"]), str(theirs_csv), "--period", "2026-11")
    assert r.exit_code == 0 and theirs_csv.read_text() == mine_csv.read_text()
    r = cli(live_server, op, "invoices", "usage", str(tmp_path / "whose.csv"))
    assert r.exit_code == 1 and "give the customer id" in r.output and not (tmp_path / "whose.csv").exists()
    r = cli(live_server, op, "invoices", "usage", "acme", str(theirs_csv))
    assert r.exit_code == 1 and "the customer is a number" in r.output


def test_self_service_keys_and_profile_from_the_command_line(facility: Facility, live_server: str) -> None:
    cust = facility.customer()
    me = facility.customer_key(cust["id"])
    r = cli(live_server, me, "keys", "new", "--label", "ci")
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip()
    assert secret.startswith("gl_") and "\n" not in secret
    mine = _json(cli(live_server, me, "keys", "list", "--json"))
    new = next(k for k in mine if k["label"] == "ci")
    r = cli(live_server, {"Authorization": f"Bearer {secret}"}, "keys", "rotate", str(new["id"]), "--grace", "60")
    assert r.exit_code == 0 and r.stdout.strip().startswith("gl_") and r.stdout.strip() != secret
    r = cli(live_server, me, "keys", "rename", str(new["id"]), "old ci")
    assert r.exit_code == 0 and "old ci" in r.output
    r = cli(live_server, me, "keys", "revoke", str(new["id"]))
    assert r.exit_code == 0
    assert facility.c.get("/api/v1/leases", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    everyone = _json(cli(live_server, facility.k.op, "keys", "list", "--json"))
    assert {"operator", "compliance", "customer"} <= {k["role"] for k in everyone}
    rotated = next(k for k in _json(cli(live_server, me, "keys", "list", "--json")) if k["label"] == "ci")
    r = cli(live_server, facility.k.op, "keys", "revoke", str(rotated["id"]))  # an operator revokes any key
    assert r.exit_code == 0, r.output

    r = cli(
        live_server,
        me,
        "customers",
        "update",
        str(cust["id"]),
        "--address",
        "9 Harbor Way, Oakland, CA",
        "--contact",
        "Ada Ops <ops@acme-robotics.example> technical",
        "--json",
    )
    body = _json(r)
    assert body["address"] == "9 Harbor Way, Oakland, CA" and body["compliance_status"] == "cleared"
    assert body["contacts"] == [
        {"name": "Ada Ops", "email": "ops@acme-robotics.example", "phone": None, "role": "technical"}
    ]
    r = cli(live_server, me, "customers", "update", str(cust["id"]), "--contact", "Ada")
    assert r.exit_code == 1 and "Name <email>" in r.output


def test_webhooks_from_the_command_line(
    facility: Facility, runtime: Runtime, live_server: str, receiver: Receiver
) -> None:
    cust = facility.customer()
    me = facility.customer_key(cust["id"])
    r = cli(live_server, me, "webhooks", "add", receiver.url, "--event", "lease.started", "--event", "lease.ended")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().startswith("whsec_")
    [hook] = _json(cli(live_server, me, "webhooks", "list", "--json"))
    assert hook["events"] == ["lease.ended", "lease.started"]
    r = cli(live_server, me, "webhooks", "test", str(hook["id"]))
    assert r.exit_code == 0 and "queued" in r.output
    runtime.deliveries.run_once()
    [d] = _json(cli(live_server, me, "webhooks", "deliveries", str(hook["id"]), "--json"))
    assert (d["event"], d["state"], d["last_status"]) == ("webhook.test", "delivered", 200)
    r = cli(live_server, me, "webhooks", "add", "ftp://example.com/x")
    assert r.exit_code == 1 and "Invalid request (422)" in r.output
    r = cli(live_server, me, "notifications", "--json")
    assert [n["type"] for n in _json(r)] == ["webhook.test"]
    assert cli(live_server, me, "webhooks", "rm", str(hook["id"])).exit_code == 0
    assert _json(cli(live_server, me, "webhooks", "list", "--json")) == []


def test_a_compliance_officer_reads_a_review_before_deciding(facility: Facility, live_server: str) -> None:
    c = facility.customer(
        "Shenzhen Xunfei Cloud Computing Co., Ltd.",
        country="CN",
        owners=[{"name": "iFlytek Co., Ltd.", "percent": 100}],
    )
    [item] = [i for i in facility.c.get("/api/v1/reviews", headers=facility.k.co).json() if i["customer_id"] == c["id"]]
    r = cli(live_server, facility.k.co, "reviews", "show", str(item["id"]))
    text = " ".join(r.output.split())
    assert r.exit_code == 0, r.output
    assert "licence needed EL-supplement-001" in text
    assert "owner iFlytek Co., Ltd.: denied" in text and "EL EL-supplement-001 IFLYTEK, score 100" in text
    assert "owned 100% by iFlytek Co., Ltd. [EL EL-supplement-001]" in text
    assert _json(cli(live_server, facility.k.co, "reviews", "show", str(item["id"]), "--json"))["id"] == item["id"]
    r = cli(live_server, facility.k.co, "reviews", "show", "999999")
    assert r.exit_code == 1 and "Not found (404)" in r.output


def test_customers_screening_reads_as_text_and_as_json(facility: Facility, live_server: str) -> None:
    c = facility.customer("iFlytek Co., Ltd.", country="CN", owners=[])
    r = cli(live_server, facility.k.co, "customers", "screening", str(c["id"]))
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and f"customer {c['id']}: denied" in text, r.output
    assert "legal name iFlytek Co., Ltd.: denied" in text and "EL EL-supplement-001 IFLYTEK, score 100" in text
    raw = _json(cli(live_server, facility.k.co, "customers", "screening", str(c["id"]), "--json"))
    assert raw["compliance_status"] == "denied" and raw["name_hits"]
    own = facility.customer_key(c["id"])
    mine = _json(cli(live_server, own, "customers", "screening", str(c["id"])))
    assert set(mine) == {"customer_id", "compliance_status", "at"}  # its own status, never the evidence
