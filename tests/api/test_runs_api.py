"""Runs through the API on the local backend: exactly the leased GPUs, logs, stopped at lease end."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from tests.conftest import Clock, Facility

SCRIPT = (
    'echo "CUDA=$CUDA_VISIBLE_DEVICES NVIDIA=$NVIDIA_VISIBLE_DEVICES"; echo pid=$$; trap "" TERM; '
    "while true; do sleep 0.2; done"
)


def _wait(pred, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _logged_pid(facility: Facility, url: str, headers: dict[str, str]) -> tuple[int, str]:
    """Wait for the run (whose script echoes `pid=$$`) to log its pid; returns it and the log so far."""
    text = _wait(
        lambda: (
            (t := facility.c.get(url + "/logs", headers=headers, params={"follow": "false"}).text) and "pid=" in t and t
        )
    )
    return int(text.split("pid=")[1].split()[0]), text


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


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
    pid, text = _logged_pid(facility, f"/api/v1/leases/{lease['id']}/runs/{run['id']}", key)
    assert f"CUDA={indices} NVIDIA={indices}" in text  # the customer's own value cannot widen the lease
    assert _alive(pid)

    # another tenant cannot see or use the lease
    other = facility.customer_key(facility.customer("Globex Analytics LLC")["id"])
    assert facility.c.get(f"/api/v1/leases/{lease['id']}/runs/{run['id']}", headers=other).status_code == 404
    assert (
        facility.c.post(f"/api/v1/leases/{lease['id']}/runs", headers=other, json={"command": ["true"]}).status_code
        == 404
    )

    # the lease's end comes: the tick ends it and the run (which ignores SIGTERM) is killed after the grace
    clock.advance(hours=1)
    t0 = time.monotonic()
    facility.rt.tick()
    _wait(lambda: not _alive(pid), timeout=10)
    assert time.monotonic() - t0 <= facility.rt.settings.stop_grace_s + 3
    status = facility.c.get(f"/api/v1/leases/{lease['id']}/runs/{run['id']}", headers=key).json()
    assert status["state"] == "stopped" and status["ended_at"]
    # the lease went through "ending" while its run was being stopped, and is "ended" once it is gone
    events = facility.c.get(f"/api/v1/leases/{lease['id']}/events", headers=key).json()
    assert [e["to_state"] for e in events][-2:] == ["ending", "ended"]
    # and no new work starts on an ended lease
    r = facility.c.post(f"/api/v1/leases/{lease['id']}/runs", headers=key, json={"command": ["true"]})
    assert r.status_code == 409 and "active" in r.json()["detail"]


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
    done = _wait(lambda: (s := facility.c.get(url, headers=facility.k.op).json())["state"] != "running" and s)
    assert done["state"] == "failed" and done["exit_code"] == 3
    streamed = facility.c.get(url + "/logs", headers=facility.k.op).text  # follow=true ends with the run
    assert streamed.split() == ["line1", "line2", "line3"]
    tail = facility.c.get(url + "/logs", headers=facility.k.op, params={"offset": 6, "follow": "false"}).text
    assert tail.split() == ["line2", "line3"]


def test_ending_a_lease_stops_its_runs_at_once(facility: Facility) -> None:
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    lease = facility.lease(customer_id=cust["id"], gpu_model="A100-80GB", gpu_count=1, plan="on_demand")
    run = facility.c.post(
        f"/api/v1/leases/{lease['id']}/runs",
        headers=facility.k.op,
        json={"command": ["sh", "-c", "echo pid=$$; exec sleep 300"]},
    ).json()
    url = f"/api/v1/leases/{lease['id']}/runs/{run['id']}"
    pid, _ = _logged_pid(facility, url, facility.k.op)
    facility.c.post(f"/api/v1/leases/{lease['id']}/end", headers=facility.k.op)
    _wait(lambda: not _alive(pid), timeout=5)
    assert facility.c.get(url, headers=facility.k.op).json()["state"] == "stopped"
    assert os.path.exists(facility.rt.settings.runs_dir / f"{run['id']}.log")


def test_a_restarted_server_stops_runs_it_no_longer_supervises(facility: Facility, settings) -> None:  # type: ignore[no-untyped-def]
    from gpulease.runtime import Runtime

    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    lease = facility.lease(customer_id=cust["id"], gpu_model="A100-80GB", gpu_count=1, plan="on_demand")
    run = facility.c.post(
        f"/api/v1/leases/{lease['id']}/runs",
        headers=facility.k.op,
        json={"command": ["sh", "-c", "echo pid=$$; trap '' TERM; while true; do sleep 0.2; done"]},
    ).json()
    url = f"/api/v1/leases/{lease['id']}/runs/{run['id']}"
    pid, _ = _logged_pid(facility, url, facility.k.op)
    # A second control plane over the same store (the first one "crashed": its supervisor is gone).
    restarted = Runtime(settings, clock=facility.rt.clock)
    try:
        assert restarted.executor.recover() == [run["id"]]
    finally:
        restarted.close()
    assert not _alive(pid)
    got = facility.c.get(url, headers=facility.k.op).json()
    assert got["state"] == "failed" and "restarted" in got["message"]
