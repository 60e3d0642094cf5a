"""A node that fails takes its leases with it, by plan: on-demand and reserved leases move to free GPUs of the
same model (same lease id, new GPUs from the failure on), interruptible ones end; what cannot move ends, billed up
to the failure and no further; the operator is alerted, the customer sees why on the lease, the runs on the lost
node are stopped. Through the API (and the dashboard and the CLI), with the server's own tick.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from gpulease.cli import app
from gpulease.runtime import Runtime
from gpulease.services import node_failure
from gpulease.services.work import LeaseDisplaced
from gpulease.settings import get_settings
from gpulease.store.models import Allocation
from gpulease.web.session import COOKIE, csrf_token
from tests.conftest import Clock, Facility, needs_bwrap


def _lease(f: Facility, lease_id: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = f.c.get(f"/api/v1/leases/{lease_id}", headers=headers or f.k.op)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _nodes_of(lease: dict[str, Any]) -> set[int]:
    return {g["node_id"] for g in lease["gpus"]}


def _down(f: Facility, node_id: int, reason: str = "PSU failure") -> dict[str, Any]:
    r = f.c.put(f"/api/v1/nodes/{node_id}/state", headers=f.k.op, json={"state": "down", "reason": reason})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _usage_seconds(f: Facility, customer_id: int, lease_id: int, period: str = "2026-11") -> int:
    inv = f.c.get(f"/api/v1/customers/{customer_id}/invoices", headers=f.k.op, params={"period": period}).json()
    return sum(line["seconds"] for line in inv["lines"] if line["lease_id"] == lease_id)


def _alerts(f: Facility) -> list[dict[str, Any]]:
    return [a for a in f.c.get("/api/v1/alerts", headers=f.k.op).json() if a["kind"] == "node_down"]


def test_leases_move_or_end_by_plan_and_billing_stops_at_the_failure(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    f = facility
    first, second = f.nodes(2)
    f.prices()
    c = f.customer()
    customer = f.customer_key(c["id"])
    hour = timedelta(hours=1)
    # Best fit packs all three onto the first node, the second stays empty.
    on_demand = f.lease(customer_id=c["id"], gpu_model="A100-80GB", gpu_count=4)
    reserved = f.lease(
        customer_id=c["id"], gpu_model="A100-80GB", gpu_count=2, plan="reserved", end=(clock() + 5 * hour).isoformat()
    )
    spot = f.lease(customer_id=c["id"], gpu_model="A100-80GB", gpu_count=2, plan="interruptible")
    assert {first["id"]} == _nodes_of(on_demand) == _nodes_of(reserved) == _nodes_of(spot)

    clock.advance(minutes=30)
    failed_at = clock()
    change = _down(f, first["id"])
    assert change["state"] == "down"
    assert change["moved"] == [on_demand["id"], reserved["id"]] and change["ended"] == [spot["id"]]

    # Moved: same lease, still active, on the other node's GPUs from the failure on; the customer sees why.
    for lease in (on_demand, reserved):
        now = _lease(f, lease["id"], customer)
        assert now["state"] == "active" and now["id"] == lease["id"] and _nodes_of(now) == {second["id"]}
        assert len(now["gpus"]) == lease["gpu_count"] and now["end"] == lease["end"]
        events = f.c.get(f"/api/v1/leases/{lease['id']}/events", headers=customer).json()
        assert any("failed (PSU failure)" in (e["reason"] or "") and "moved" in e["reason"] for e in events)
    # Ended: interruptible, at the failure, billed up to it and not a second more.
    ended = _lease(f, spot["id"], customer)
    assert ended["state"] in ("ending", "ended") and ended["ended_at"] == failed_at.isoformat().replace("+00:00", "Z")
    events = f.c.get(f"/api/v1/leases/{spot['id']}/events", headers=customer).json()
    assert any(e["to_state"] == "ending" and "node c1-n000 failed (PSU failure)" in e["reason"] for e in events)
    assert _usage_seconds(f, c["id"], spot["id"]) == 1800

    # The operator's alert says what happened to whom.
    [alert] = _alerts(f)
    assert alert["data"]["moved"] == [on_demand["id"], reserved["id"]] and alert["data"]["ended"] == [spot["id"]]
    assert "c1-n000" in alert["message"] and "PSU failure" in alert["message"]
    assert f"leases moved: {on_demand['id']}, {reserved['id']}; ended: {spot['id']}" in alert["message"]

    # Time runs on: the clock is not disturbed, the moved leases go on billing as before, the ended one does not.
    clock.advance(hours=2)
    assert runtime.tick().failed == {}
    assert _lease(f, spot["id"])["state"] == "ended"
    r = f.c.post(f"/api/v1/leases/{on_demand['id']}/end", headers=customer)
    assert r.status_code == 200, r.text
    assert _usage_seconds(f, c["id"], on_demand["id"]) == int(2.5 * 3600)
    assert _usage_seconds(f, c["id"], spot["id"]) == 1800
    clock.advance(hours=3)
    assert runtime.tick().failed == {}
    assert _usage_seconds(f, c["id"], reserved["id"]) == 5 * 3600  # the reserved window, whole, as sold
    check = f.c.get("/api/v1/billing/verify", headers=f.k.op).json()
    assert check == {"ok": True, "problems": []}
    # Nothing is booked on the failed node any more, and no new lease goes there.
    booked = f.lease(customer_id=c["id"], gpu_model="A100-80GB", gpu_count=8)
    assert _nodes_of(booked) == {second["id"]}


def test_what_cannot_move_ends_at_the_failure_and_a_reserved_window_is_billed_only_up_to_it(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    f = facility
    [node] = f.nodes(1)
    f.prices()
    c = f.customer()
    hour = timedelta(hours=1)
    reserved = f.lease(
        customer_id=c["id"], gpu_model="A100-80GB", gpu_count=8, plan="reserved", end=(clock() + 10 * hour).isoformat()
    )
    future = f.lease(  # not started yet: cancelled, without a late-cancellation fee
        customer_id=c["id"],
        gpu_model="A100-80GB",
        gpu_count=8,
        plan="reserved",
        start=(clock() + 12 * hour).isoformat(),
        end=(clock() + 14 * hour).isoformat(),
    )
    clock.advance(hours=1)
    change = _down(f, node["id"], "kernel panic")
    assert change["moved"] == [] and change["ended"] == [reserved["id"], future["id"]]
    assert _lease(f, reserved["id"])["state"] in ("ending", "ended")
    assert _lease(f, future["id"])["state"] == "cancelled"
    clock.advance(hours=20)
    assert runtime.tick().failed == {}
    assert _usage_seconds(f, c["id"], reserved["id"]) == 3600  # one hour of a ten-hour window: the failure's
    inv = f.c.get(f"/api/v1/customers/{c['id']}/invoices", headers=f.k.op, params={"period": "2026-11"}).json()
    assert [ln for ln in inv["lines"] if ln["lease_id"] == future["id"]] == []  # no fee
    assert Decimal(inv["total"]) == Decimal("8.00")  # 8 GPUs x 1 h x 1.00
    assert f.c.get("/api/v1/billing/verify", headers=f.k.op).json()["ok"] is True


def test_a_moved_lease_extended_keeps_its_old_gpus_closed_at_the_failure(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    """An extension gives a new end to what the lease holds now, never to the GPUs it held before a move: they
    were the failed node's (a counterexample of the clock's property test: the lease went back onto the node)."""
    f = facility
    first, second = f.nodes(2)
    f.prices()
    c = f.customer()
    lease = f.lease(
        customer_id=c["id"], gpu_model="A100-80GB", gpu_count=1, end=(clock() + timedelta(hours=1)).isoformat()
    )
    failed = first["id"] if _nodes_of(lease) == {first["id"]} else second["id"]
    clock.advance(seconds=1)
    assert _down(f, failed)["moved"] == [lease["id"]]
    r = f.c.post(
        f"/api/v1/leases/{lease['id']}/extend", headers=f.k.op, json={"end": (clock() + timedelta(hours=3)).isoformat()}
    )
    assert r.status_code == 200, r.text
    with runtime.store.transaction() as s:
        rows = s.scalars(select(Allocation).where(Allocation.lease_id == lease["id"], Allocation.released.is_(False)))
        spans = {a.node_id: (a.starts_at, a.ends_at) for a in rows}
    assert spans[failed][1] == clock()  # closed at the failure, as before the extension
    assert spans[({first["id"], second["id"]} - {failed}).pop()][1] == clock() + timedelta(hours=3)
    # Back in service, the failed node's GPU is free for someone else over the extended window.
    r = f.c.put(f"/api/v1/nodes/{failed}/state", headers=f.k.op, json={"state": "available"})
    assert r.status_code == 200, r.text
    other = f.lease(customer_id=c["id"], gpu_model="A100-80GB", gpu_count=8)
    assert _nodes_of(other) == {failed}
    # Ended early, before the extension's end: only what it holds now is cut.
    clock.advance(minutes=30)
    r = f.c.post(f"/api/v1/leases/{lease['id']}/end", headers=f.k.op)
    assert r.status_code == 200, r.text
    assert runtime.tick().failed == {}
    assert _usage_seconds(f, c["id"], lease["id"]) == 1801
    assert f.c.get("/api/v1/billing/verify", headers=f.k.op).json()["ok"] is True


def test_a_future_lease_moves_for_its_whole_window(facility: Facility, clock: Clock) -> None:
    f = facility
    first, second = f.nodes(2)
    f.prices()
    c = f.customer()
    hour = timedelta(hours=1)
    later = f.lease(
        customer_id=c["id"],
        gpu_model="A100-80GB",
        gpu_count=8,
        plan="reserved",
        start=(clock() + 24 * hour).isoformat(),
        end=(clock() + 30 * hour).isoformat(),
    )
    down = first["id"] if _nodes_of(later) == {first["id"]} else second["id"]
    assert _down(f, down)["moved"] == [later["id"]]
    moved = _lease(f, later["id"])
    assert moved["state"] == "scheduled" and _nodes_of(moved) == {first["id"], second["id"]} - {down}
    assert (moved["start"], moved["end"]) == (later["start"], later["end"])


def test_a_backend_reporting_a_node_lost_does_the_same_once(facility: Facility, runtime: Runtime) -> None:
    f = facility
    first, _ = f.nodes(2)
    f.prices()
    c = f.customer()
    lease = f.lease(customer_id=c["id"], gpu_model="A100-80GB", gpu_count=2)
    with runtime.work() as w:
        lost = node_failure.node_lost(w, node_id=first["id"], reason="slurm: node not responding")
        effects = list(w.effects)
    assert lost.moved == [lease["id"]] and lost.ended == []
    assert [e for e in effects if isinstance(e, LeaseDisplaced)] == [
        LeaseDisplaced(lease["id"], c["id"], first["id"], "c1-n000", "moved", lost.at, "slurm: node not responding")
    ]
    again = runtime.perform(node_failure.node_lost, node_id=first["id"], reason="slurm: node not responding")
    assert again.moved == again.ended == [] and len(_alerts(f)) == 1  # nothing left on it: no second alert
    assert f.c.get(f"/api/v1/nodes/{first['id']}", headers=f.k.op).json()["state"] == "down"
    # Back in service: it takes leases again.
    r = f.c.put(f"/api/v1/nodes/{first['id']}/state", headers=f.k.op, json={"state": "available"})
    assert r.status_code == 200 and r.json()["state"] == "available"


def test_marking_down_is_an_operators_action(facility: Facility) -> None:
    f = facility
    [node] = f.nodes(1)
    c = f.customer()
    r = f.c.put(f"/api/v1/nodes/{node['id']}/state", headers=f.customer_key(c["id"]), json={"state": "down"})
    assert r.status_code == 403
    r = f.c.put(f"/api/v1/nodes/{node['id']}/state", headers=f.k.op, json={"state": "broken"})
    assert r.status_code == 422 and "available, draining, down" in r.json()["detail"]


@needs_bwrap
def test_runs_on_the_lost_node_are_stopped_and_the_moved_lease_runs_on_its_new_gpus(
    facility: Facility, runtime: Runtime
) -> None:
    f = facility
    first, second = f.nodes(2)
    f.prices()
    c = f.customer()
    key = f.customer_key(c["id"])
    lease = f.lease(headers=key, gpu_model="A100-80GB", gpu_count=2)
    url = f"/api/v1/leases/{lease['id']}/runs"
    r = f.c.post(url, headers=key, json={"command": ["sh", "-c", "while true; do sleep 0.2; done"]})
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    _down(f, first["id"] if _nodes_of(lease) == {first["id"]} else second["id"])
    deadline = time.monotonic() + 15
    while (run := f.c.get(f"{url}/{run_id}", headers=key).json())["state"] == "running":
        assert time.monotonic() < deadline, run
        time.sleep(0.1)
    assert run["state"] == "stopped" and "failed (PSU failure)" in run["message"], run
    moved = _lease(f, lease["id"], key)
    assert moved["state"] == "active"
    want = ",".join(str(g["index"]) for g in moved["gpus"])
    r = f.c.post(url, headers=key, json={"command": ["sh", "-c", "echo gpus=$CUDA_VISIBLE_DEVICES"]})
    assert r.status_code == 201, r.text
    second_run = r.json()["id"]
    deadline = time.monotonic() + 15
    logs = f"{url}/{second_run}/logs"
    while f"gpus={want}" not in (log := f.c.get(logs, headers=key, params={"follow": "false"}).text):
        assert time.monotonic() < deadline, log
        time.sleep(0.1)


@pytest.fixture
def cli_env(db_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, live_server: str) -> Any:
    monkeypatch.setenv("GPULEASE_DATABASE_URL", db_url)
    monkeypatch.setenv("GPULEASE_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("GPULEASE_API_URL", live_server)
    get_settings.cache_clear()
    yield live_server
    get_settings.cache_clear()


def test_the_cli_and_the_dashboard_mark_a_node_down(
    cli_env: str, facility: Facility, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = facility
    first, second = f.nodes(2)
    f.prices()
    c = f.customer()
    lease = f.lease(customer_id=c["id"], gpu_model="A100-80GB", gpu_count=1)
    on = first["id"] if _nodes_of(lease) == {first["id"]} else second["id"]
    monkeypatch.setenv("GPULEASE_API_KEY", f.k.operator)
    r = CliRunner().invoke(app, ["nodes", "down", str(on), "--reason", "fan failure", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["moved"] == [lease["id"]]
    r = CliRunner().invoke(app, ["nodes", "state", str(on), "sideways"])
    assert r.exit_code == 1 and "available, draining, down" in r.output

    # The dashboard's "Mark down" button: the lease moves back to the node that is up again.
    r = f.c.put(f"/api/v1/nodes/{on}/state", headers=f.k.op, json={"state": "available"})
    assert r.status_code == 200
    other = ({first["id"], second["id"]} - {on}).pop()
    browser = f.c
    r = browser.post("/login", data={"key": f.k.operator, "next": "/nodes"}, follow_redirects=False)
    token = csrf_token(browser.cookies[COOKIE])
    r = browser.post(f"/nodes/{other}/state", data={"csrf": token, "state": "down"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert _nodes_of(_lease(f, lease["id"])) == {on}
    assert "down" in browser.get("/nodes").text
