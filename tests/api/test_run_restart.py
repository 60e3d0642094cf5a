"""Runs survive a server killed with SIGKILL: a new `gpulease serve` on the same data folder re-attaches to
them (status, logs, exit code, stop at lease end), and stops only the runs whose lease ended meanwhile."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gpulease.backends import supervisor
from gpulease.backends.process_group import namespace_members, process_alive
from gpulease.runtime import Runtime
from gpulease.services import keys
from gpulease.services.context import SYSTEM
from gpulease.settings import Settings
from tests.conftest import ServeProcess, needs_bwrap, seed_over_http, wait_for

pytestmark = needs_bwrap


@pytest.fixture
def env(db_url: str, tmp_path: Path, sandbox_dir: Path) -> Iterator[dict[str, str]]:
    data = tmp_path / "data"
    values = {
        **os.environ,
        "GPULEASE_DATA_DIR": str(data),
        "GPULEASE_DATABASE_URL": db_url if "://" in db_url else f"sqlite:///{db_url}",
        "GPULEASE_SANDBOX_DIR": str(sandbox_dir),
        "GPULEASE_STOP_GRACE_S": "1",
    }
    yield values
    supervisor.stop_all(data / "runs")


def holders(runs_dir: Path, run_id: str) -> list[int]:
    """The run's supervisor and its sandbox's PID 1 (the run's other processes come and go)."""
    record = supervisor.find_record(runs_dir, run_id)
    assert record is not None and record.init_pid is not None
    return [record.supervisor_pid, record.init_pid]


def sandbox_empty(runs_dir: Path, run_id: str) -> bool:
    record = supervisor.find_record(runs_dir, run_id)
    return record is not None and record.pid_namespace is not None and not namespace_members(record.pid_namespace)


def test_runs_survive_a_killed_server_and_only_ended_leases_stop(env: dict[str, str], tmp_path: Path) -> None:
    admin = Runtime(
        Settings(database_url=env["GPULEASE_DATABASE_URL"], data_dir=tmp_path / "admin"), supervises_runs=False
    )
    op = {"Authorization": "Bearer " + admin.perform(keys.create_key, actor=SYSTEM, role="operator")}
    runs_dir = Path(env["GPULEASE_DATA_DIR"]) / "runs"
    # The first server's clock never ticks, so the short lease cannot end while it lives.
    first = ServeProcess({**env, "GPULEASE_TICK_SECONDS": "3600"}, tmp_path / "serve-1.log").wait_ready()
    try:
        c = httpx.Client(base_url=first.url, timeout=30)
        rates = {"on_demand": "1.25", "reserved": "1.00", "long_term": "600", "interruptible": "0.5"}
        customer = seed_over_http(c, op, nodes=["c1-n000"], rates=rates)
        key = admin.perform(keys.create_key, actor=SYSTEM, role="customer", customer_id=customer["id"])
        cust = {"Authorization": f"Bearer {key}"}

        def book(**extra: Any) -> dict[str, Any]:
            r = c.post("/api/v1/leases", headers=cust, json={"gpu_model": "A100-80GB", "gpu_count": 1, **extra})
            assert r.status_code == 201, r.text
            return dict(r.json())

        keep = book(plan="on_demand")
        short_end = datetime.now(UTC) + timedelta(seconds=4)
        ends = book(plan="on_demand", end=short_end.isoformat())
        gated = "echo started; while [ ! -e go ]; do sleep 0.05; done; echo finished; exit 7"
        stubborn = "trap '' TERM; echo started; while true; do sleep 0.1; done"
        runs = {}
        for name, lease, script in (("gated", keep, gated), ("stubborn", ends, stubborn), ("idle", keep, "sleep 600")):
            r = c.post(f"/api/v1/leases/{lease['id']}/runs", headers=cust, json={"command": ["sh", "-c", script]})
            assert r.status_code == 201, r.text
            runs[name] = f"/api/v1/leases/{lease['id']}/runs/{r.json()['id']}"

        def started(name: str) -> bool:
            return "started" in c.get(runs[name] + "/logs", headers=cust, params={"follow": "false"}).text

        for name in ("gated", "stubborn"):
            wait_for(lambda n=name: started(n), 10, f"{name} to start")  # type: ignore[misc]
        run_id = {name: url.rsplit("/", 1)[1] for name, url in runs.items()}
        pids = {name: holders(runs_dir, rid) for name, rid in run_id.items()}
        c.close()
    finally:
        first.stop(signal.SIGKILL)

    assert first.proc.returncode == -signal.SIGKILL
    assert all(process_alive(p) for ps in pids.values() for p in ps), "a run died with the server"
    wait_for(lambda: datetime.now(UTC) > short_end + timedelta(seconds=0.5), 10, "the short lease's end")

    second = ServeProcess({**env, "GPULEASE_TICK_SECONDS": "0.5"}, tmp_path / "serve-2.log").wait_ready()
    try:
        c = httpx.Client(base_url=second.url, timeout=30)
        # The run whose lease ended while no server ran is stopped (it ignores SIGTERM: SIGKILL after the grace).
        wait_for(lambda: c.get(runs["stubborn"], headers=cust).json()["state"] == "stopped", 20, "the ended run")
        # The supervisor writes "stopped" and then exits: give it a moment.
        wait_for(lambda: not any(process_alive(p) for p in pids["stubborn"]), 5, "the stubborn run's processes to go")
        assert sandbox_empty(runs_dir, run_id["stubborn"])
        # The others were re-attached: still running, same processes, their logs readable.
        assert c.get(runs["gated"], headers=cust).json()["state"] == "running"
        assert all(process_alive(p) for p in pids["gated"] + pids["idle"])
        assert c.get(runs["gated"] + "/logs", headers=cust, params={"follow": "false"}).text == "started\n"
        # ... and its exit code comes through the new server.
        (Path(env["GPULEASE_SANDBOX_DIR"]) / f"lease-{keep['id']}" / "home" / "go").touch()
        wait_for(lambda: c.get(runs["gated"], headers=cust).json()["state"] == "failed", 10, "the gated run to end")
        done = c.get(runs["gated"], headers=cust).json()
        assert done["exit_code"] == 7
        assert c.get(runs["gated"] + "/logs", headers=cust).text == "started\nfinished\n"
        # Ending the lease through the new server stops the run the old one started.
        assert c.post(f"/api/v1/leases/{keep['id']}/end", headers=cust).status_code == 200
        wait_for(lambda: c.get(runs["idle"], headers=cust).json()["state"] == "stopped", 10, "the idle run to stop")
        # The supervisor writes "stopped" and then exits: give it a moment.
        wait_for(lambda: not any(process_alive(p) for p in pids["idle"]), 5, "the idle run's processes to go")
        assert sandbox_empty(runs_dir, run_id["idle"])
        c.close()
    finally:
        second.stop()
        admin.close()
