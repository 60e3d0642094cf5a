"""The Ray backend against a real local Ray cluster with 8 logical GPUs; nothing is mocked."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gpulease.backends.base import BackendError, LeasedGpus, RunSpec, RunState
from gpulease.backends.process_group import process_alive
from gpulease.runtime import Runtime
from tests.conftest import Clock, Facility, free_port, wait_for

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'gpulease[ray]')")

from gpulease.backends.ray_backend import (  # noqa: E402
    RayBackend,
    driver_entrypoint,
    placement_group_name,
    placement_strategy,
)

pytestmark = pytest.mark.ray

NODE = "gpu-a-01"  # the head's gpulease.io/node label
RAY = Path(sys.executable).with_name("ray")
MakeSpec = Callable[..., RunSpec]


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    """A one-node Ray head with 8 logical GPUs, started and ended by pid (no `ray stop`, which
    would end every Ray on the machine)."""
    gcs, dashboard = free_port(), free_port()
    temp = tempfile.mkdtemp(prefix="gpulease-ray-")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen(
        [
            str(RAY),
            "start",
            "--head",
            "--block",
            "--num-gpus=8",
            "--num-cpus=4",
            f"--port={gcs}",
            "--include-dashboard=true",
            f"--dashboard-port={dashboard}",
            "--dashboard-host=127.0.0.1",
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--labels=gpulease.io/node={NODE}",
            f"--temp-dir={temp}",
            "--disable-usage-stats",
        ],
        stdout=open(Path(temp) / "head.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{dashboard}"
    try:
        from ray.job_submission import JobSubmissionClient

        def jobs_api_up() -> bool:
            assert head.poll() is None, (Path(temp) / "head.log").read_text()[-3000:]
            try:
                JobSubmissionClient(url).list_jobs()
            except Exception:
                return False
            return True

        wait_for(jobs_api_up, 90, "the Ray head's Jobs API")
        yield {"address": f"127.0.0.1:{gcs}", "dashboard_url": url}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        started = descendants(head.pid) | {head.pid}
        os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=3)  # `ray start --block` shuts down slowly; SIGKILL follows
        for pid in started:
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def backend(cluster: dict[str, str]) -> Iterator[RayBackend]:
    b = RayBackend(address=cluster["address"], dashboard_url=cluster["dashboard_url"], stop_grace_s=5)
    yield b
    b.close()


def pg_state(lease_id: int) -> str | None:
    from ray.util.placement_group import placement_group_table

    states = [v["state"] for v in placement_group_table().values() if v["name"] == placement_group_name(lease_id)]
    live = [s for s in states if s != "REMOVED"]
    return live[0] if live else (states[0] if states else None)


def wait_finished(backend: RayBackend, run_id: str, timeout_s: float = 60) -> None:
    wait_for(lambda: backend.status(run_id).state.finished, timeout_s, f"run {run_id} to finish")


def log_lines(backend: RayBackend, run_id: str) -> list[str]:
    return backend.read_logs(run_id)[0].decode().splitlines()


def test_run_sees_the_leased_gpus_and_its_exit_code(backend: RayBackend, make_spec: MakeSpec) -> None:
    gpus = [LeasedGpus(1, NODE, (5, 2))]
    backend.lease_started(1, gpus)
    assert pg_state(1) == "CREATED"
    command = ["sh", "-c", 'echo "cuda=$CUDA_VISIBLE_DEVICES nvidia=$NVIDIA_VISIBLE_DEVICES x=$X"; exit 3']
    backend.start(make_spec("ray-gpus", command, lease_id=1, node=NODE, indices=(5, 2), env={"X": "y"}))
    wait_finished(backend, "ray-gpus")
    status = backend.status("ray-gpus")
    assert (status.state, status.exit_code) == (RunState.FAILED, 3)
    assert "cuda=5,2 nvidia=5,2 x=y" in log_lines(backend, "ray-gpus")
    data, offset = backend.read_logs("ray-gpus")
    assert backend.read_logs("ray-gpus", offset) == (b"", offset)
    assert backend.read_logs("ray-gpus", 10)[0] == data[10:]
    backend.lease_ended(1, grace_s=1)
    wait_for(lambda: pg_state(1) == "REMOVED", 10, "the placement group to go")


STUBBORN = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    print("started", flush=True)
    time.sleep(600)
    """
)


def test_lease_end_stops_a_stubborn_run_within_grace_and_removes_the_placement_group(
    backend: RayBackend, make_spec: MakeSpec, tmp_path: Path
) -> None:
    gpus = [LeasedGpus(2, NODE, (0, 1, 3, 4))]
    backend.lease_started(2, gpus)
    assert pg_state(2) == "CREATED"
    pid_file = tmp_path / "pids"
    command = [sys.executable, "-c", STUBBORN, str(pid_file)]
    spec = make_spec("ray-stubborn", command, lease_id=2, node=NODE, indices=(0, 1, 3, 4))
    backend.start(spec)
    wait_for(pid_file.exists, 60, "the run to start")
    pids = [int(p) for p in pid_file.read_text().split()]
    assert all(process_alive(p) for p in pids)
    grace = 2.0
    t0 = time.monotonic()
    backend.lease_ended(2, grace_s=grace)
    elapsed = time.monotonic() - t0
    assert not any(process_alive(p) for p in pids), "a run outlived its lease"
    assert grace <= elapsed < grace + 8, elapsed
    assert backend.status("ray-stubborn").state is RunState.STOPPED
    assert "started" in log_lines(backend, "ray-stubborn")
    wait_for(lambda: pg_state(2) == "REMOVED", 10, "the placement group to go")
    with pytest.raises(BackendError, match="not active"):
        backend.start(make_spec("ray-late", ["true"], lease_id=2, node=NODE, indices=(0,)))


def test_one_bundle_per_node_and_the_driver_command_line() -> None:
    one = [LeasedGpus(9, "a", (0, 1))]
    two = [LeasedGpus(9, "a", (0, 1, 2, 3, 4, 5, 6, 7)), LeasedGpus(9, "b", (4, 5))]
    assert placement_strategy(one) == "STRICT_PACK"
    assert placement_strategy(two) == "STRICT_SPREAD"
    spec = RunSpec("r9", 9, ["torchrun", "--nproc-per-node=2", "train.py"], {}, "/w", two, Path("/l"))
    line = driver_entrypoint(spec, "python", "gpulease", 10.0)
    assert line == (
        "python -m gpulease.backends.ray_driver --placement-group gpulease-lease-9 --namespace gpulease "
        "--run-id r9 --lease-id 9 --stop-grace 10.0 --gpus 0,1,2,3,4,5,6,7 --gpus 4,5 --cwd /w "
        "-- torchrun --nproc-per-node=2 train.py"
    )


def test_leases_are_pinned_and_refused_clearly(backend: RayBackend, make_spec: MakeSpec) -> None:
    with pytest.raises(BackendError, match="no live Ray node is 'gpu-z-99'"):
        backend.lease_started(3, [LeasedGpus(3, "gpu-z-99", (0,))])
    with pytest.raises(BackendError, match="has 8 GPUs in Ray"):
        backend.lease_started(3, [LeasedGpus(3, NODE, (8,))])
    backend.lease_started(4, [LeasedGpus(4, NODE, (6,))])
    try:
        with pytest.raises(BackendError, match="does not own"):
            backend.start(make_spec("ray-steal", ["true"], lease_id=4, node=NODE, indices=(7,)))
    finally:
        backend.lease_ended(4, grace_s=1)
    assert pg_state(4) == "REMOVED"
    with pytest.raises(BackendError, match="no run never-submitted"):
        backend.status("never-submitted")


def test_a_lease_on_a_ray_cluster_through_the_api(
    cluster: dict[str, str],
    backend: RayBackend,
    facility: Facility,
    runtime: Runtime,
    clock: Clock,
) -> None:
    """The whole path: a node of a `ray` cluster, a lease, a run via the API, stopped at the lease's end."""
    from datetime import timedelta

    runtime.settings.ray_address = cluster["address"]
    runtime.settings.ray_dashboard_url = cluster["dashboard_url"]
    r = facility.c.post(
        "/api/v1/nodes",
        headers=facility.k.op,
        json={
            "site": "lab",
            "cluster": "ray-a",
            "name": NODE,
            "gpu_model": "A100-80GB",
            "gpu_count": 8,
            "backend": "ray",
        },
    )
    assert r.status_code == 201 and r.json()["backend"] == "ray"
    facility.prices()
    cust = facility.customer()
    key = facility.customer_key(cust["id"])
    facility.lease(headers=key, gpu_model="A100-80GB", gpu_count=3)
    lease = facility.lease(
        headers=key, gpu_model="A100-80GB", gpu_count=2, end=(clock() + timedelta(hours=1)).isoformat()
    )
    want = ",".join(str(g["index"]) for g in lease["gpus"])
    run = facility.c.post(
        f"/api/v1/leases/{lease['id']}/runs",
        headers=key,
        json={"command": ["sh", "-c", 'echo "cuda=$CUDA_VISIBLE_DEVICES"; exec sleep 600']},
    )
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    assert run.json()["backend"] == "ray"
    url = f"/api/v1/leases/{lease['id']}/runs/{run_id}"

    def logged() -> bool:
        return f"cuda={want}" in facility.c.get(url + "/logs", headers=key, params={"follow": "false"}).text

    wait_for(logged, 60, "the run's log line")
    assert pg_state(lease["id"]) == "CREATED"
    clock.advance(hours=1)
    t0 = time.monotonic()
    facility.rt.tick()  # the lease ends: its job is stopped and its placement group removed
    wait_for(lambda: facility.c.get(url, headers=key).json()["state"] == "stopped", 30, "the run to stop")
    assert time.monotonic() - t0 < runtime.settings.stop_grace_s + 20
    wait_for(lambda: pg_state(lease["id"]) == "REMOVED", 15, "the placement group to go")
    assert f"cuda={want}" in facility.c.get(url + "/logs", headers=key, params={"follow": "false"}).text


# -- CPU leases and a GPU lease's share of cores ------------------------------------------------------

CORE = max(os.sched_getaffinity(0))  # the last CPU this process may use: 1 on a 2-CPU machine
REPORT = (
    "import json, os\n"
    "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n"
    "print(json.dumps({'affinity': sorted(os.sched_getaffinity(0)), 'allowed': status['Cpus_allowed_list'],\n"
    "  'env': {k: os.environ.get(k) for k in ('GPULEASE_CPUS', 'GPULEASE_CORES', 'OMP_NUM_THREADS',\n"
    "  'CUDA_VISIBLE_DEVICES')}}))\n"
)


def bundles(lease_id: int) -> list[dict[str, float]]:
    from ray.util.placement_group import placement_group_table

    found = [v for v in placement_group_table().values() if v["name"] == placement_group_name(lease_id)]
    live = [v for v in found if v["state"] != "REMOVED"]
    return [dict(b) for _, b in sorted(live[0]["bundles"].items())]


def test_a_cpu_lease_is_a_bundle_of_its_cores_and_memory_and_its_run_is_pinned(
    backend: RayBackend, make_spec: MakeSpec
) -> None:
    part = LeasedGpus(6, NODE, (), cores=(CORE,), memory_gib=1)
    backend.lease_started(6, [part])
    try:
        assert bundles(6) == [{"CPU": 1.0, "memory": float(2**30)}]  # no GPU
        # The customer cannot claim GPUs or more CPUs through its environment.
        spec = make_spec("ray-cpu", [sys.executable, "-c", REPORT], lease_id=6, node=NODE, indices=(), cores=(CORE,),
                         env={"CUDA_VISIBLE_DEVICES": "0", "GPULEASE_CPUS": "0-63"})  # fmt: skip
        backend.start(spec)
        wait_finished(backend, "ray-cpu")
        assert backend.status("ray-cpu").state is RunState.SUCCEEDED, log_lines(backend, "ray-cpu")
        seen = json.loads(log_lines(backend, "ray-cpu")[-1])
        assert (seen["affinity"], seen["allowed"]) == ([CORE], str(CORE))
        assert seen["env"] == {
            "GPULEASE_CPUS": str(CORE), "GPULEASE_CORES": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
        }  # fmt: skip
        assert any(line.endswith(f"GPUs none (ray assigned ), cores {CORE}") for line in log_lines(backend, "ray-cpu"))
        with pytest.raises(BackendError, match=r"asks for cores .* which lease 6 does not own"):
            backend.start(make_spec("ray-steal-cores", ["true"], lease_id=6, node=NODE, indices=(), cores=(0, 1, 2)))
    finally:
        backend.lease_ended(6, grace_s=1)


def test_a_gpu_leases_bundle_holds_its_share_of_cores() -> None:
    b = RayBackend.__new__(RayBackend)  # the bundle is arithmetic: no cluster needed
    b._cpus_per_bundle = 1.0
    assert b.bundle(LeasedGpus(7, NODE, (0, 1), cores=(0, 1, 2, 3))) == {"CPU": 4.0, "GPU": 2}
    assert b.bundle(LeasedGpus(7, NODE, (0, 1))) == {"CPU": 1.0, "GPU": 2}  # cores unknown: as before
    spec = RunSpec("r7", 7, ["x"], {}, None, [LeasedGpus(7, "a", (0, 1), cores=(8, 9, 10, 11))], Path("/l"))
    assert driver_entrypoint(spec, "python", "gpulease", 10.0).endswith("--gpus 0,1 --cores 8-11 -- x")
