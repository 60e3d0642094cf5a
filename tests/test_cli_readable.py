"""What a person reads from the CLI: times in ISO 8601 UTC (never epoch seconds), an ended lease's real end,
`leases list` at 80 columns, capacity refusals that state the earliest start once, `availability` of a model the
facility lacks naming the ones it has, list counts without Python reprs, money with its cents."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gpulease.cli import _seconds, app
from gpulease.settings import get_settings
from tests.conftest import Clock, Facility, needs_bwrap

runner = CliRunner()
EPOCH = re.compile(r"\b1[6-9]\d{8}\b")  # epoch seconds of 2020..2033


@pytest.fixture
def cli(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, live_server: str, facility: Facility
) -> Iterator[Facility]:
    monkeypatch.setenv("GPULEASE_DATABASE_URL", db_url)
    monkeypatch.setenv("GPULEASE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GPULEASE_API_URL", live_server)
    monkeypatch.setenv("GPULEASE_API_KEY", facility.k.operator)
    monkeypatch.setenv("COLUMNS", "80")
    get_settings.cache_clear()
    facility.nodes(1)
    facility.prices()
    facility.prices("H100-80GB")
    yield facility
    get_settings.cache_clear()


def _ok(r: Result) -> str:
    assert r.exit_code == 0 and r.exception is None, r.output
    return r.output


def test_leases_list_reads_at_80_columns_and_shows_an_ended_lease_s_real_end(cli: Facility, clock: Clock) -> None:
    cid = cli.customer()["id"]
    ended = cli.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=2, plan="on_demand", start="now")
    booked = cli.lease(
        customer_id=cid,
        gpu_model="A100-80GB",
        gpu_count=4,
        plan="interruptible",
        start="2026-12-01T09:00:00Z",
        end="2026-12-02T09:00:00Z",
    )
    cli.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=1, plan="on_demand", start="now")
    clock.advance(minutes=90)
    _ok(runner.invoke(app, ["leases", "end", str(ended["id"])]))
    out = _ok(runner.invoke(app, ["leases", "list"]))
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80, out
    row = {int(line.split()[0]): line for line in lines if line.strip()[:1].isdigit()}
    assert set(row) == {ended["id"], booked["id"], ended["id"] + 2}, out
    assert "2026-12-01 09:00Z" in row[booked["id"]] and "2026-12-02 09:00Z" in row[booked["id"]], out
    assert "interruptible" in row[booked["id"]], out
    assert "ended" in row[ended["id"]] and "open-ended" not in row[ended["id"]], out  # its real end
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\dZ\s*$", row[ended["id"]]), out
    assert "open-ended" in row[ended["id"] + 2], out  # still running, no end booked

    shown = _ok(runner.invoke(app, ["leases", "show", str(ended["id"])]))
    assert "(ended)" in shown and "open-ended" not in shown, shown
    assert "remaining none: ended" in shown and re.search(r"cost so far \d+\.\d\d USD \(final\)", shown), shown
    assert not EPOCH.search(out + shown)
    _ok(runner.invoke(app, ["leases", "cancel", str(booked["id"])]))
    shown = _ok(runner.invoke(app, ["leases", "show", str(booked["id"])]))
    assert "remaining none: cancelled" in shown, shown  # not "ended": it never started


def test_capacity_refusals_state_iso_times_and_the_earliest_start_once(cli: Facility) -> None:
    cid = cli.customer()["id"]
    cli.lease(
        customer_id=cid,
        gpu_model="A100-80GB",
        gpu_count=8,
        plan="reserved",
        start="2026-12-01T09:00:00Z",
        end="2026-12-03T09:00:00Z",
    )
    r = runner.invoke(
        app,
        [
            "leases", "create", "A100-80GB", "4", "--plan", "reserved", "--customer", str(cid),
            "--start", "2026-12-02T09:00:00Z", "--end", "2026-12-02T12:00:00Z",
        ],
    )  # fmt: skip
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    said = " ".join(r.output.split())
    assert not EPOCH.search(said), said
    assert "2026-12-02T09:00:00Z" in said and said.count("earliest start") == 1, said
    assert "2026-12-03T09:00:00Z" in said, said  # the earliest start that fits, once

    r = runner.invoke(app, ["availability", "A100-80GB", "8", "--start", "2026-12-02T09:00:00Z"])
    said = " ".join(_ok(r).split())
    assert not EPOCH.search(said) and "None" not in said and said.count("earliest start") == 1, said


def test_availability_of_a_model_the_facility_lacks_names_the_models_it_has(cli: Facility) -> None:
    cli.nodes(1, prefix="iad1-h100", model="H100-80GB")
    said = " ".join(_ok(runner.invoke(app, ["availability", "H200", "8"])).split())
    assert "None" not in said and "none" not in said, said
    assert "models in the facility: A100-80GB, H100-80GB" in said, said


def test_prices_and_quotes_show_money_with_cents(cli: Facility) -> None:
    cli.nodes(1, prefix="iad1-h100", model="H100-80GB")
    cli.c.put("/api/v1/prices", headers=cli.k.op, json={"gpu_model": "H100-80GB", "plan": "on_demand", "rate": "2.5"})
    out = _ok(runner.invoke(app, ["availability", "H100-80GB", "1", "--end", "2026-11-03T10:00:00Z"]))
    assert "2.50" in out and not re.search(r"\b2\.5\b(?!0)", out), out
    for total in re.findall(r"\b\d+\.\d+\b", out):
        assert len(total.split(".")[1]) >= 2, (total, out)


@needs_bwrap
def test_the_quickstart_s_run_runs_and_logs_as_a_customer(cli: Facility, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = cli.customer()["id"]
    monkeypatch.setenv("GPULEASE_API_KEY", cli.customer_key(cid)["Authorization"].split()[1])
    _ok(runner.invoke(app, ["leases", "create", "A100-80GB", "2", "--plan", "on_demand"]))
    r = runner.invoke(app, ["run", "1", "--detach", "--", "sh", "-c", "echo step 1; echo 'step 2'"])
    assert r.exit_code == 0, r.output
    run_id = r.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f]{16}", run_id), r.output
    r = runner.invoke(app, ["logs", "1", run_id, "--follow"])
    assert r.exit_code == 0 and "step 1\nstep 2\n" in r.stdout, r.output
    assert _ok(runner.invoke(app, ["logs", "1", run_id])).startswith("step 1\nstep 2")
    listed = _ok(runner.invoke(app, ["runs", "1"]))
    assert max(len(line) for line in listed.splitlines()) <= 80, listed
    assert run_id in listed and "succeeded" in listed and "sh -c 'echo step 1; echo" in listed, listed
    r = runner.invoke(app, ["logs", "1", "nope"])
    assert r.exit_code == 1 and "16 hex digits" in r.output, r.output


def test_a_lease_s_length_is_written_as_people_write_it(cli: Facility) -> None:
    cid = str(cli.customer()["id"])
    made = _ok(
        runner.invoke(app, ["leases", "create", "A100-80GB", "1", "--customer", cid, "--duration", "1h30m", "--json"])
    )
    lease = json.loads(made)
    length = datetime.fromisoformat(lease["end"]) - datetime.fromisoformat(lease["start"])
    assert length.total_seconds() == 5400
    for spelled, seconds in (("2d", 172800), ("45m", 2700), ("90s", 90), ("3600", 3600), ("1D 2H", 93600)):
        assert _seconds(spelled) == seconds
    bad = runner.invoke(app, ["leases", "create", "A100-80GB", "1", "--customer", cid, "--duration", "1.5h"])
    assert bad.exit_code == 1 and "cannot read the duration '1.5h'" in bad.output
    both = runner.invoke(
        app, ["leases", "create", "A100-80GB", "1", "--customer", cid, "--duration", "2h", "--duration-s", "60"]
    )
    assert both.exit_code == 1 and "not both" in both.output


def test_nodes_and_prices_read_at_80_columns_without_cut_cells(cli: Facility) -> None:
    """A node's name, GPUs and state, and every price column, whole at 80 columns (they were cut to "fra1-a10…")."""
    nodes = _ok(runner.invoke(app, ["nodes", "list"]))
    prices = _ok(runner.invoke(app, ["prices", "list"]))
    for out in (nodes, prices):
        assert max(len(line) for line in out.splitlines()) <= 80 and "…" not in out, out
    [node] = cli.c.get("/api/v1/nodes", headers=cli.k.op).json()
    assert re.search(rf"{node['name']}\s+8×A100-80GB\s+available", nodes), nodes
    assert re.search(r"A100-80GB\s+interruptible\s+\d+\.\d\d", prices), prices
    down = _ok(runner.invoke(app, ["nodes", "down", str(node["id"]), "--reason", "PSU failure"]))
    assert re.search(rf"{node['name']}\s+8×A100-80GB\s+down", down), down


def test_a_lease_s_events_say_what_happened_and_why(cli: Facility, clock: Clock) -> None:
    cid = cli.customer()["id"]
    lease = cli.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=2, end="2026-11-02T12:00:00Z")
    _ok(runner.invoke(app, ["leases", "extend", str(lease["id"]), "--end", "2026-11-02T14:00:00Z"]))
    clock.advance(minutes=30)
    _ok(runner.invoke(app, ["leases", "end", str(lease["id"])]))
    out = _ok(runner.invoke(app, ["leases", "events", str(lease["id"])]))
    assert max(len(line) for line in out.splitlines()) <= 80, out
    states = [line.split()[2] for line in out.splitlines() if re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert states[:4] == ["quoted", "pending_compliance", "scheduled", "active"] and "ended" in states, out
    assert "extended from" in out and "ended by operator" in out and not EPOCH.search(out), out
    as_json = json.loads(_ok(runner.invoke(app, ["leases", "events", str(lease["id"]), "--json"])))
    assert [e["to_state"] for e in as_json] == states
    told = " ".join(_ok(runner.invoke(app, ["notifications", "--customer", str(cid)])).split())
    assert re.search(r"lease\.started \d+ 2×A100-80GB on-demand started, until 2026-11-02 12:00Z", told), told
    assert re.search(r"lease\.ended \d+ 2×A100-80GB ended 2026-11-02 09:30Z; final cost 1\.25 USD", told), told
    assert "data" not in told and "{" not in told, told
    # A reserved window cancelled late: the fee, in the answer's reason and in what the customer is told.
    cli.prices()
    late = cli.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=2, plan="reserved",
                     start="2026-11-02T15:00:00Z", end="2026-11-02T17:00:00Z")  # fmt: skip
    out = " ".join(_ok(runner.invoke(app, ["leases", "events", str(late["id"])])).split())
    assert "late-cancellation fee" not in out
    # Before it starts, `leases show` says when, for how long, what it will cost and until when it cancels free.
    shown = " ".join(_ok(runner.invoke(app, ["leases", "show", str(late["id"])])).split())
    assert (
        "not started · starts 2026-11-02 15:00:00Z · booked for 2h00m00s · "
        f"estimated {late['quote']['estimated_total']} USD · "
        "free to cancel until 2026-11-01 15:00:00Z, then 50% of the window"
    ) in shown, shown
    assert "ran 0h00m00s" not in shown
    _ok(runner.invoke(app, ["leases", "cancel", str(late["id"])]))
    out = " ".join(_ok(runner.invoke(app, ["leases", "events", str(late["id"])])).split())
    assert "cancelled by operator; late-cancellation fee 2.00 USD" in out, out
    told = " ".join(_ok(runner.invoke(app, ["notifications", "--customer", str(cid)])).split())
    assert re.search(r"lease\.cancelled \d+ 2×A100-80GB reserved cancelled; late-cancellation fee 2\.00 USD", told)


@needs_bwrap
def test_runs_list_one_line_per_run_even_for_a_long_program(cli: Facility, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = cli.customer()["id"]
    monkeypatch.setenv("GPULEASE_API_KEY", cli.customer_key(cid)["Authorization"].split()[1])
    _ok(runner.invoke(app, ["leases", "create", "A100-80GB", "1"]))
    program = "import os\nfor k in sorted(os.environ):\n    print(k, os.environ[k])\n" * 3
    r = runner.invoke(app, ["run", "1", "--detach", "--", "python3", "-c", program])
    assert r.exit_code == 0, r.output
    listed = _ok(runner.invoke(app, ["runs", "1"]))
    rows = [line for line in listed.splitlines() if re.match(r"[0-9a-f]{16} ", line)]
    assert len(rows) == 1 and rows[0].rstrip().endswith("…") and "python3 -c 'import os for" in rows[0], listed
    assert max(len(line) for line in listed.splitlines()) <= 80, listed
    whole = json.loads(_ok(runner.invoke(app, ["runs", "1", "--json"])))
    assert whole[0]["command"] == ["python3", "-c", program]


def test_the_review_queue_reads_at_80_columns(cli: Facility, monkeypatch: pytest.MonkeyPatch) -> None:
    flagged = cli.customer("iFlytek Co., Ltd.", "CN", owners=[])
    monkeypatch.setenv("GPULEASE_API_KEY", cli.k.compliance)
    out = _ok(runner.invoke(app, ["reviews", "list"]))
    assert max(len(line) for line in out.splitlines()) <= 80 and "…" not in out, out
    assert re.search(rf"^\d+\s+screening\s+{flagged['id']}\s+open\s+2026-11-02 09:00Z\s+iFlytek", out, re.M), out
    assert not EPOCH.search(out) and "T09:00" not in out, out


def test_a_lease_waiting_in_the_queue_says_so_rather_than_a_start(cli: Facility, clock: Clock) -> None:
    cid = cli.customer()["id"]
    cli.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=8, plan="on_demand", start="now")  # the one node
    waiting = cli.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=8, plan="on_demand", start="asap",
                        duration_s=7200, max_wait_s=3 * 3600)  # fmt: skip
    assert waiting["state"] == "queued", waiting
    shown = " ".join(_ok(runner.invoke(app, ["leases", "show", str(waiting["id"])])).split())
    until = waiting["queued_until"].replace("T", " ").replace("+00:00", "Z")
    assert f"not started · waiting in the queue for GPUs until {until} · booked for 2h00m00s" in shown, shown
    assert "starts" not in shown.split("not started")[1], shown


def test_a_lease_held_for_a_compliance_review_says_so_rather_than_a_start(cli: Facility, clock: Clock) -> None:
    young = (clock() - timedelta(days=85)).date().isoformat()
    cid = cli.customer("Brightpath Compute Labs Inc.", incorporated_on=young)["id"]
    held = cli.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=64, plan="reserved",
                     start="2026-11-20T09:00:00Z", end="2026-11-20T13:00:00Z")  # fmt: skip
    assert held["state"] == "pending_compliance", held
    shown = " ".join(_ok(runner.invoke(app, ["leases", "show", str(held["id"])])).split())
    expected = "not started · waiting for a compliance review · asked from 2026-11-20 09:00:00Z · booked for 4h00m00s"
    assert expected in shown, shown
