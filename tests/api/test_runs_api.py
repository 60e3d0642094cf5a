"""Runs through the API on the local backend: exactly the leased GPUs, a sandbox that hides the server's data,
logs, stopped at lease end, preemption notice, and runs that survive a restart of the control plane."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from gpulease.backends import supervisor
from gpulease.backends.process_group import namespace_members, process_alive
from gpulease.backends.sandbox import DEFAULT_UID_BASE
from gpulease.services import lifecycle
from gpulease.services.work import Work
from gpulease.settings import Settings
from tests.conftest import Clock, Facility, needs_bwrap

pytestmark = needs_bwrap

SCRIPT = (
    'echo "CUDA=$CUDA_VISIBLE_DEVICES NVIDIA=$NVIDIA_VISIBLE_DEVICES"; trap "" TERM; while true; do sleep 0.2; done'
)


def _wait(pred, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _holders(settings: Settings, run_id: str) -> list[int]:
    """The run's supervisor and its sandbox's PID 1, as the host numbers them (the processes inside come and go;
    these two live exactly as long as the run)."""
    record = _wait(lambda: (r := supervisor.find_record(settings.runs_dir, run_id)) and r.init_pid and r)
    return [record.supervisor_pid, record.init_pid]


def _gone(settings: Settings, run_id: str) -> bool:
    """Nothing of the run is left: neither its holders nor any process in its sandbox."""
    record = supervisor.find_record(settings.runs_dir, run_id)
    assert record is not None and record.pid_namespace is not None
    holders = [record.supervisor_pid, record.init_pid]
    return not any(process_alive(p) for p in holders if p) and not namespace_members(record.pid_namespace)


def _log(client: TestClient, url: str, headers: dict[str, str]) -> str:
    return str(client.get(url + "/logs", headers=headers, params={"follow": "false"}).text)


def _wait_state(client: TestClient, url: str, headers: dict[str, str], timeout: float = 10.0) -> dict[str, Any]:
    return dict(
        _wait(
            lambda: (s := client.get(url, headers=headers).json())["state"] not in ("pending", "running") and s, timeout
        )
    )


def test_run_sees_only_its_gpus_and_stops_at_lease_end(facility: Facility, clock: Clock) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    key = facility.customer_key(cust["id"])
    facility.lease(headers=key, gpu_model="A100-80GB", gpu_count=3, plan="on_demand")  # takes 0,1,2
    lease = facility.lease(
        headers=key,
        gpu_model="A100-80GB",
        gpu_count=2,
        plan="on_demand",
        end=(clock() + timedelta(hours=1)).isoformat(),
    )
    indices = ",".join(str(g["index"]) for g in lease["gpus"])
    r = facility.c.post(
        f"/api/v1/leases/{lease['id']}/runs",
        headers=key,
        json={"command": ["sh", "-c", SCRIPT], "env": {"CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7"}},
    )
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["state"] == "running" and run["backend"] == "local"
    url = f"/api/v1/leases/{lease['id']}/runs/{run['id']}"
    text = _wait(lambda: "CUDA=" in (t := _log(facility.c, url, key)) and t)
    assert f"CUDA={indices} NVIDIA={indices}" in text  # the customer's own value cannot widen the lease
    assert all(process_alive(p) for p in _holders(facility.rt.settings, run["id"]))

    # another tenant cannot see or use the lease
    other = facility.customer_key(facility.customer("Globex Analytics LLC")["id"])
    assert facility.c.get(url, headers=other).status_code == 404
    assert (
        facility.c.post(f"/api/v1/leases/{lease['id']}/runs", headers=other, json={"command": ["true"]}).status_code
        == 404
    )

    # the lease's end comes: the tick ends it and the run (which ignores SIGTERM) is killed after the grace
    clock.advance(hours=1)
    t0 = time.monotonic()
    facility.rt.tick()
    _wait(lambda: _gone(facility.rt.settings, run["id"]), timeout=10)
    assert time.monotonic() - t0 <= facility.rt.settings.stop_grace_s + 3
    status = facility.c.get(url, headers=key).json()
    assert status["state"] == "stopped" and status["ended_at"]
    # the lease went through "ending" while its run was being stopped, and is "ended" once it is gone
    events = facility.c.get(f"/api/v1/leases/{lease['id']}/events", headers=key).json()
    assert [e["to_state"] for e in events][-2:] == ["ending", "ended"]
    # and no new work starts on an ended lease
    r = facility.c.post(f"/api/v1/leases/{lease['id']}/runs", headers=key, json={"command": ["true"]})
    assert r.status_code == 409 and "active" in r.json()["detail"]


def test_a_customer_run_cannot_read_the_database(facility: Facility) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    key = facility.customer_key(cust["id"])
    lease = facility.lease(headers=key, gpu_model="A100-80GB", gpu_count=1, plan="on_demand")
    st = facility.rt.settings
    db = Path(st.db_url.removeprefix("sqlite:///")) if st.db_url.startswith("sqlite") else st.data_dir / "gpulease.db"
    st.data_dir.mkdir(parents=True, exist_ok=True)
    (st.data_dir / "gpulease.db").touch()  # on PostgreSQL too: something to find, were the folder visible
    for path in {db, st.data_dir / "gpulease.db"}:
        r = facility.c.post(f"/api/v1/leases/{lease['id']}/runs", headers=key, json={"command": ["cat", str(path)]})
        url = f"/api/v1/leases/{lease['id']}/runs/{r.json()['id']}"
        done = _wait_state(facility.c, url, key)
        assert done["state"] == "failed" and done["exit_code"] != 0  # the contract: cat exits non-zero
        assert "No such file or directory" in _log(facility.c, url, key)
    r = facility.c.post(f"/api/v1/leases/{lease['id']}/runs", headers=key, json={"command": ["sh", "-c", "id -u; pwd"]})
    url = f"/api/v1/leases/{lease['id']}/runs/{r.json()['id']}"
    _wait_state(facility.c, url, key)
    uid, pwd = _log(facility.c, url, key).split()
    assert pwd == "/home/customer"
    assert uid == (str(DEFAULT_UID_BASE + cust["id"]) if os.geteuid() == 0 else str(os.getuid()))


def test_run_exit_code_and_streamed_logs(facility: Facility) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    lease = facility.lease(customer_id=cust["id"], gpu_model="A100-80GB", gpu_count=1, plan="on_demand")
    r = facility.c.post(
        f"/api/v1/leases/{lease['id']}/runs",
        headers=facility.k.op,
        json={"command": ["sh", "-c", "for i in 1 2 3; do echo line$i; done; exit 3"]},
    )
    run = r.json()
    url = f"/api/v1/leases/{lease['id']}/runs/{run['id']}"
    done = _wait_state(facility.c, url, facility.k.op)
    assert done["state"] == "failed" and done["exit_code"] == 3
    streamed = facility.c.get(url + "/logs", headers=facility.k.op).text  # follow=true ends with the run
    assert streamed.split() == ["line1", "line2", "line3"]
    tail = facility.c.get(url + "/logs", headers=facility.k.op, params={"offset": 6, "follow": "false"}).text
    assert tail.split() == ["line2", "line3"]


def test_a_run_on_a_lease_not_started_says_when_it_starts(facility: Facility, clock: Clock) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    start = (clock() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    lease = facility.lease(
        customer_id=cust["id"],
        gpu_model="A100-80GB",
        gpu_count=1,
        plan="reserved",
        start=start.isoformat(),
        end=(start + timedelta(hours=4)).isoformat(),
    )
    assert lease["state"] == "scheduled"
    r = facility.c.post(f"/api/v1/leases/{lease['id']}/runs", headers=facility.k.op, json={"command": ["true"]})
    assert r.status_code == 409, r.text
    said = r.json()["detail"]
    assert f"(it starts at {start.strftime('%Y-%m-%dT%H:%M:%SZ')})" in said and "active lease" in said, said


def test_ending_a_lease_stops_its_runs_at_once(facility: Facility) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    lease = facility.lease(customer_id=cust["id"], gpu_model="A100-80GB", gpu_count=1, plan="on_demand")
    run = facility.c.post(
        f"/api/v1/leases/{lease['id']}/runs", headers=facility.k.op, json={"command": ["sleep", "300"]}
    ).json()
    url = f"/api/v1/leases/{lease['id']}/runs/{run['id']}"
    _holders(facility.rt.settings, run["id"])
    facility.c.post(f"/api/v1/leases/{lease['id']}/end", headers=facility.k.op)
    _wait(lambda: _gone(facility.rt.settings, run["id"]), timeout=5)
    assert facility.c.get(url, headers=facility.k.op).json()["state"] == "stopped"
    assert os.path.exists(facility.rt.settings.runs_dir / f"{run['id']}.log")


def test_a_preemption_notice_reaches_the_run(facility: Facility) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    key = facility.customer_key(cust["id"])
    lease = facility.lease(headers=key, gpu_model="A100-80GB", gpu_count=1, plan="interruptible")
    script = "trap 'echo notice $(cat $GPULEASE_NOTICE_FILE)' USR1; echo ready; while true; do sleep 0.1; done"
    run = facility.c.post(f"/api/v1/leases/{lease['id']}/runs", headers=key, json={"command": ["sh", "-c", script]})
    url = f"/api/v1/leases/{lease['id']}/runs/{run.json()['id']}"
    _wait(lambda: "ready" in _log(facility.c, url, key))
    r = facility.c.post(f"/api/v1/leases/{lease['id']}/preempt", headers=facility.k.op)
    assert r.status_code == 200, r.text
    deadline = r.json()["preempt_at"].replace("Z", "+00:00")
    text = _wait(lambda: "notice" in (t := _log(facility.c, url, key)) and t)
    assert f"notice {deadline}" in text
    # a run started during the notice period finds the file at once
    late = facility.c.post(
        f"/api/v1/leases/{lease['id']}/runs", headers=key, json={"command": ["cat", "/run/gpulease/preemption-notice"]}
    )
    late_url = f"/api/v1/leases/{lease['id']}/runs/{late.json()['id']}"
    _wait_state(facility.c, late_url, key)
    assert _log(facility.c, late_url, key).strip() == deadline


def test_a_restarted_control_plane_reattaches_and_stops_only_what_ended(
    facility: Facility, settings: Settings, clock: Clock
) -> None:
    from gpulease.api.app import create_app
    from gpulease.runtime import Runtime

    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    key = facility.customer_key(cust["id"])
    keep = facility.lease(headers=key, gpu_model="A100-80GB", gpu_count=1, plan="on_demand")
    ends = facility.lease(
        headers=key,
        gpu_model="A100-80GB",
        gpu_count=1,
        plan="on_demand",
        end=(clock() + timedelta(hours=1)).isoformat(),
    )
    script = "echo started; while [ ! -e go ]; do sleep 0.05; done; echo finished; exit 7"
    runs = {}
    for lease in (keep, ends):
        r = facility.c.post(f"/api/v1/leases/{lease['id']}/runs", headers=key, json={"command": ["sh", "-c", script]})
        runs[lease["id"]] = r.json()["id"]
    for lease_id, run_id in runs.items():
        _wait(lambda lid=lease_id, rid=run_id: _log(facility.c, f"/api/v1/leases/{lid}/runs/{rid}", key) == "started\n")
    doomed = _holders(settings, runs[ends["id"]])
    # The first control plane goes away (its executor lets go of the runs, as a crash would) ...
    facility.rt.executor.close()
    # ... and while it is gone a tick ends one lease: the state committed, the runs not yet stopped.
    clock.advance(hours=1, seconds=1)
    with facility.rt.store.transaction() as s:  # the clock's work alone: no runs stopped after it
        lifecycle.tick(
            Work(session=s, store=facility.rt.store, now=clock(), settings=settings, screening=facility.rt.screening)
        )
    assert all(process_alive(p) for p in doomed)

    restarted = Runtime(settings, clock=clock)
    try:
        assert restarted.executor.recover() == [runs[ends["id"]]]  # only the run whose lease ended
        _wait(lambda: _gone(settings, runs[ends["id"]]), 5)  # its supervisor writes "stopped", then exits
        with TestClient(create_app(restarted, background=False)) as c:
            url = f"/api/v1/leases/{keep['id']}/runs/{runs[keep['id']]}"
            assert c.get(url, headers=key).json()["state"] == "running"
            assert _log(c, url, key) == "started\n"
            (settings.sandboxes_dir / f"lease-{keep['id']}" / "home" / "go").touch()
            done = _wait_state(c, url, key)
            assert (done["state"], done["exit_code"]) == ("failed", 7)
            assert _log(c, url, key) == "started\nfinished\n"
            gone = c.get(f"/api/v1/leases/{ends['id']}/runs/{runs[ends['id']]}", headers=key).json()
            assert gone["state"] == "stopped" and "ended while the control plane was down" in gone["message"]
    finally:
        restarted.close()
