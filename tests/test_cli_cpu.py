"""CPU leases from the CLI (issue 13), against a live server (at 80 columns): add a CPU node, price its cores, ask
availability, book cores, list and show the lease with its cpuset, and see the core-hours on the invoice."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gpulease.cli import app
from tests.conftest import Clock, Facility
from tests.test_cli_readable import _ok, cli  # noqa: F401 - the fixture: a live server, the CLI pointed at it

runner = CliRunner()


@pytest.mark.usefixtures("cli")
def test_book_list_show_and_invoice_a_cpu_lease(facility: Facility, clock: Clock) -> None:
    out = _ok(
        runner.invoke(
            app,
            [
                "nodes",
                "add",
                "s1",
                "cpu",
                "cpu-0",
                "--cpu-model",
                "EPYC-9654",
                "--cpu-cores",
                "192",
                "--memory-gib",
                "1536",
            ],
        )
    )
    assert "192/192c EPYC-9654" in " ".join(out.split()) or "192/192c" in out, out
    _ok(runner.invoke(app, ["prices", "set", "epyc-9654", "on_demand", "0.045", "--gib-rate", "0.005"]))
    prices = json.loads(_ok(runner.invoke(app, ["prices", "list", "--json"])))
    assert {"cpu_model": "EPYC-9654", "unit": "core_hour", "rate": "0.045", "gib_rate": "0.005"}.items() <= next(
        p for p in prices if p["cpu_model"]
    ).items()
    cid = facility.customer()["id"]
    avail = _ok(runner.invoke(app, ["availability", "--cpu-cores", "16"]))
    assert "16 EPYC-9654 cores" in avail and "available" in avail and "core_hour" in avail
    booked = _ok(
        runner.invoke(app, ["leases", "create", "--cpu-cores", "16", "--memory-gib", "128", "--customer", str(cid)])
    )
    assert "16c EPYC-9654" in booked and "active" in booked
    listed = _ok(runner.invoke(app, ["leases", "list"]))
    assert "16c EPYC-9654" in listed
    shown = _ok(runner.invoke(app, ["leases", "show", "1"]))
    assert "cpu-0 cores 0-15" in shown and "core-hour" in shown and "128 GiB" in shown
    # both shapes at once, or neither, is a sentence, not a traceback
    both = runner.invoke(app, ["leases", "create", "A100-80GB", "1", "--cpu-cores", "4"])
    assert both.exit_code != 0 and "not both" in both.output
    clock.advance(hours=10)
    _ok(runner.invoke(app, ["leases", "end", "1"]))
    inv = _ok(runner.invoke(app, ["invoices", "show", str(cid), "--period", clock().strftime("%Y-%m")]))
    assert _ok(runner.invoke(app, ["invoices", "show", str(cid)])) == inv  # this month's by default
    assert "16 cores (+ 128 GiB)" in " ".join(inv.split()) and "13.60" in inv
