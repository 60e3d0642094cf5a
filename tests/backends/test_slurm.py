"""The Slurm backend against a real local Slurm (slurmctld, slurmdbd, 4 slurmd x 8 fake GPUs); nothing mocked.

`.ci/run` starts that cluster with `.ci/slurm-up.sh` and sets GPULEASE_TEST_SLURM_CONF; without it these
tests are skipped. Everything goes through the API and the server's own tick, like tests/backends/test_ray.py.
The clock starts at the real time, because Slurm keeps real time: reservations are made for real windows.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gpulease.backends.base import LeasedGpus
from gpulease.backends.process_group import process_alive
from gpulease.backends.slurm import LeaseWindow, SlurmBackend, SlurmCommands, SlurmNode
from gpulease.runtime import Runtime
from gpulease.settings import Settings
from tests.conftest import Clock, Facility, wait_for

SLURM_CONF = os.environ.get("GPULEASE_TEST_SLURM_CONF")
CLUSTER = "slurm-a"


def _slurm_up() -> str | None:
    """Why the Slurm tests cannot run, or None when they can."""
    if not SLURM_CONF:
        return "Slurm is not up: run .ci/slurm-up.sh and set GPULEASE_TEST_SLURM_CONF (.ci/run does both)"
    env = {**os.environ, "SLURM_CONF": SLURM_CONF}
    try:
        out = subprocess.run(["scontrol", "ping"], env=env, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Slurm is not up ({SLURM_CONF}): {exc}"
    if "is UP" in out.stdout:
        return None
    return f"Slurm is not up ({SLURM_CONF}): {out.stdout.strip()} {out.stderr.strip()}"


needs_slurm = pytest.mark.skipif(_slurm_up() is not None, reason=str(_slurm_up()))


def slurm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A Slurm command against the test cluster, as an operator would type it."""
    assert SLURM_CONF
    return subprocess.run(
        list(args), env={**os.environ, "SLURM_CONF": SLURM_CONF, "TZ": "UTC"}, capture_output=True, text=True,
        timeout=60, check=check,
    )  # fmt: skip


def reservation(name: str) -> dict[str, str] | None:
    out = slurm("scontrol", "show", "reservation", "-o", name, check=False).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out)) if "ReservationName=" in out else None


def live_job(name: str) -> dict[str, str] | None:
    """A job still holding resources, with `scontrol show job -d`'s fields (GRES per index)."""
    out = slurm("squeue", "-h", "-a", "-n", name, "-o", "%i|%T").stdout.split()
    live = [line.split("|")[0] for line in out if line.split("|")[1] not in ("COMPLETED", "CANCELLED", "COMPLETING")]
    if not live:
        return None
    text = slurm("scontrol", "show", "job", "-d", live[0]).stdout
    fields = dict(re.findall(r"(\w+)=(\S*)", text))
    fields["_text"] = text
    return fields


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        stop_grace_s=2.0,
        slurm_conf=SLURM_CONF,
        # Every test names its reservations and jobs apart from every other test's (lease ids repeat).
        slurm_name_prefix=f"glt{uuid.uuid4().hex[:8]}",
        slurm_accounting_interval_s=-1,  # off unless a test compares accounting
    )


def node_words() -> dict[str, str]:
    return dict(line.split("|", 1) for line in slurm("sinfo", "-h", "-N", "-o", "%N|%T").stdout.split())


@pytest.fixture
def nodes() -> list[str]:
    """The cluster's nodes, every one idle and answering (a test that failed half-way may have left one down)."""
    for name, state in node_words().items():
        if state not in ("idle", "mixed", "allocated"):
            slurm("scontrol", "update", f"NodeName={name}", "State=RESUME", check=False)
    wait_for(lambda: all(s in ("idle", "mixed", "allocated") for s in node_words().values()), 60, "idle nodes")
    return sorted(node_words())


@pytest.fixture
def fleet(facility: Facility, nodes: list[str]) -> Iterator[Facility]:
    """The Slurm nodes in gpulease's inventory, on a cluster whose backend is `slurm`; priced."""
    for name in nodes:
        r = facility.c.post(
            "/api/v1/nodes",
            headers=facility.k.op,
            json={"site": "lab", "cluster": CLUSTER, "name": name, "gpu_model": "A100-80GB", "gpu_count": 8,
                  "backend": "slurm"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        assert r.json()["backend"] == "slurm"
    facility.prices()
    yield facility
    backend = facility.rt.executor._backends.get("slurm")
    if isinstance(backend, SlurmBackend):  # whatever a failed test left in Slurm goes with it
        backend.sync_leases([], grace_s=0)


def backend_of(runtime: Runtime) -> SlurmBackend:
    backend = runtime.executor.backend("slurm")
    assert isinstance(backend, SlurmBackend)
    return backend


def submit(f: Facility, key: dict[str, str], lease_id: int, command: list[str]) -> str:
    r = f.c.post(f"/api/v1/leases/{lease_id}/runs", headers=key, json={"command": command})
    assert r.status_code == 201, r.text
    assert r.json()["backend"] == "slurm"
    return str(r.json()["id"])


def run_state(f: Facility, key: dict[str, str], lease_id: int, run_id: str) -> dict[str, Any]:
    r = f.c.get(f"/api/v1/leases/{lease_id}/runs/{run_id}", headers=key)
    assert r.status_code == 200, r.text
    return dict(r.json())


def logs(f: Facility, key: dict[str, str], lease_id: int, run_id: str) -> str:
    url = f"/api/v1/leases/{lease_id}/runs/{run_id}/logs"
    return str(f.c.get(url, headers=key, params={"follow": "false"}).text)


def by_node(lease: dict[str, Any]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for g in lease["gpus"]:
        out.setdefault(g["node"], []).append(g["index"])
    return {n: sorted(ix) for n, ix in out.items()}


def gres_indices(job: dict[str, str]) -> list[int]:
    """The GPU indices Slurm allocated to a job, from `scontrol show job -d` (`gpu:idx3:1(IDX:3)`)."""
    return sorted(int(i) for i in re.findall(r"\(IDX:(\d+)\)", job["_text"]))


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


# -- without Slurm: the pieces that need no cluster ----------------------------------------------------


def test_node_states_read_slurms_words() -> None:
    assert SlurmNode("n", "idle", None, ()).available
    assert SlurmNode("n", "mixed", None, ()).available
    assert SlurmNode("n", "allocated", None, ()).available
    for state in ("down", "down*", "idle*", "drained", "draining", "idle+drain", "mixed+drain", "fail", "maint"):
        assert not SlurmNode("n", state, "r", ()).available, state


def test_gpu_types_and_tres_parsing() -> None:
    from gpulease.backends.slurm import _gpu_types, gres_count

    assert _gpu_types("gpu:idx0:1,gpu:idx1:1(S:0)") == ("idx0", "idx1")
    assert _gpu_types("gpu:8") == (None,) * 8
    assert _gpu_types("gpu:a100:4(S:0-1),nic:2") == ("a100",) * 4
    assert _gpu_types("(null)") == ()
    assert gres_count("billing=1,cpu=1,gres/gpu=2,node=1") == 2
    assert gres_count("cpu=16") == 0


def test_gpus_slurm_only_counts_are_pinned_inside_the_step() -> None:
    from gpulease.backends.slurm import visible_devices_script

    script = visible_devices_script([LeasedGpus(1, "gpu-a", (2, 5)), LeasedGpus(1, "gpu b", (0,))])
    for node, want in (("gpu-a", "2,5"), ("gpu b", "0")):
        out = subprocess.run(
            ["/bin/sh", "-c", script, "x", "sh", "-c", 'echo "$CUDA_VISIBLE_DEVICES $NVIDIA_VISIBLE_DEVICES"'],
            env={"SLURMD_NODENAME": node, "PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "0,1"},
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert out.stdout.split() == [want, want]
    other = subprocess.run(["/bin/sh", "-c", script, "x", "true"], env={"SLURMD_NODENAME": "gpu-z"}, check=False)
    assert other.returncode == 97


def test_only_booked_active_or_suspended_leases_are_mirrored() -> None:
    now = datetime.now(UTC)
    LeaseWindow(1, 1, "scheduled", now, None, (LeasedGpus(1, "n", (0,)),))
    with pytest.raises(ValueError, match="not 'ended'"):
        LeaseWindow(1, 1, "ended", now, None, (LeasedGpus(1, "n", (0,)),))


def test_no_controller_is_a_clear_error(tmp_path: Path) -> None:
    from gpulease.backends import BackendError

    with pytest.raises(BackendError, match=r"is not on PATH|cannot reach the Slurm controller"):
        SlurmBackend(commands=SlurmCommands(bin_dir=str(tmp_path)))


# -- against the cluster ------------------------------------------------------------------------------


@pytest.mark.slurm
@needs_slurm
def test_part_of_a_node_is_an_allocation_of_exactly_the_leased_gpus(fleet: Facility, clock: Clock) -> None:
    f = fleet
    cust = f.customer()
    key = f.customer_key(cust["id"])
    end = (clock() + timedelta(hours=1)).isoformat()
    f.lease(headers=key, gpu_model="A100-80GB", gpu_count=3, end=end)
    lease = f.lease(headers=key, gpu_model="A100-80GB", gpu_count=2, end=end)
    ((node, indices),) = by_node(lease).items()
    assert indices != [0, 1], "the second lease should not start at index 0: nothing would be shown"
    backend = backend_of(f.rt)
    job = live_job(backend.lease_name(lease["id"]))
    assert job is not None, "no allocation in Slurm for the lease"
    assert job["JobState"] == "RUNNING" and job["NodeList"] == node
    assert job["Account"] == f"gpulease-c{cust['id']}"
    assert gres_indices(job) == indices  # Slurm itself holds exactly the leased GPUs

    run_id = submit(f, key, lease["id"], ["sh", "-c", 'echo "cuda=$CUDA_VISIBLE_DEVICES on=$SLURMD_NODENAME"; exit 3'])
    wait_for(lambda: run_state(f, key, lease["id"], run_id)["state"] == "failed", 60, "the run to finish")
    assert run_state(f, key, lease["id"], run_id)["exit_code"] == 3
    assert f"cuda={','.join(map(str, indices))} on={node}" in logs(f, key, lease["id"], run_id)

    ok = submit(f, key, lease["id"], ["sh", "-c", "echo fine"])
    wait_for(lambda: run_state(f, key, lease["id"], ok)["state"] == "succeeded", 60, "the second run")
    assert run_state(f, key, lease["id"], ok)["exit_code"] == 0


@pytest.mark.slurm
@needs_slurm
def test_gpus_slurm_only_counts_still_reach_the_run_as_leased(fleet: Facility, clock: Clock, runtime: Runtime) -> None:
    """A cluster whose GPUs are not typed per index: Slurm is asked for a count, gpulease pins the indices."""
    runtime.settings.slurm_gpu_type_template = ""
    f = fleet
    key = f.customer_key(f.customer()["id"])
    end = (clock() + timedelta(hours=1)).isoformat()
    f.lease(headers=key, gpu_model="A100-80GB", gpu_count=5, end=end)
    lease = f.lease(headers=key, gpu_model="A100-80GB", gpu_count=2, end=end)
    ((_, indices),) = by_node(lease).items()
    job = live_job(backend_of(f.rt).lease_name(lease["id"]))
    assert job is not None and "gres/gpu=2" in job["_text"]
    run_id = submit(f, key, lease["id"], ["sh", "-c", 'echo "cuda=$CUDA_VISIBLE_DEVICES nv=$NVIDIA_VISIBLE_DEVICES"'])
    wait_for(lambda: run_state(f, key, lease["id"], run_id)["state"] == "succeeded", 60, "the run to finish")
    want = ",".join(map(str, indices))
    assert f"cuda={want} nv={want}" in logs(f, key, lease["id"], run_id)


@pytest.mark.slurm
@needs_slurm
def test_whole_nodes_are_a_reservation_only_the_tenant_can_use(fleet: Facility, clock: Clock) -> None:
    f = fleet
    acme, other = f.customer(), f.customer("Globex Logistics LLC")
    key, other_key = f.customer_key(acme["id"]), f.customer_key(other["id"])
    lease = f.lease(headers=key, gpu_model="A100-80GB", gpu_count=8, end=(clock() + timedelta(hours=1)).isoformat())
    ((node, indices),) = by_node(lease).items()
    assert indices == list(range(8))
    backend = backend_of(f.rt)
    name = backend.lease_name(lease["id"])
    res = reservation(name)
    assert res is not None, "no Slurm reservation for a whole-node lease"
    assert (res["Nodes"], res["Accounts"], res["State"]) == (node, f"gpulease-c{acme['id']}", "ACTIVE")

    run_id = submit(f, key, lease["id"], ["sh", "-c", 'echo "cuda=$CUDA_VISIBLE_DEVICES on=$SLURMD_NODENAME"'])
    wait_for(lambda: run_state(f, key, lease["id"], run_id)["state"] == "succeeded", 60, "the run to finish")
    assert f"cuda=0,1,2,3,4,5,6,7 on={node}" in logs(f, key, lease["id"], run_id)

    # Another tenant: gpulease does not show it the lease, and Slurm does not let its account in.
    r = f.c.post(f"/api/v1/leases/{lease['id']}/runs", headers=other_key, json={"command": ["true"]})
    assert r.status_code == 404
    backend._ensure_account(other["id"])  # the other tenant exists in Slurm too, with its own account
    denied = slurm("srun", f"--reservation={name}", f"--account=gpulease-c{other['id']}", "-w", node,
                   "--immediate=5", "true", check=False)  # fmt: skip
    assert denied.returncode != 0 and "Access denied to requested reservation" in denied.stderr
    # Nor can anyone reach the node around the reservation while it lasts.
    around = slurm("srun", "-w", node, "--immediate=3", "true", check=False)
    assert around.returncode != 0
    # The tenant itself may submit into its reservation directly (e.g. from a login node).
    direct = slurm("srun", f"--reservation={name}", f"--account=gpulease-c{acme['id']}", "-w", node,
                   "--immediate=10", "true", check=False)  # fmt: skip
    assert direct.returncode == 0, direct.stderr


@pytest.mark.slurm
@needs_slurm
@pytest.mark.parametrize("gpus", [2, 8], ids=["allocation", "reservation"])
def test_lease_end_stops_a_stubborn_run_within_grace_and_gives_slurm_back(
    fleet: Facility, clock: Clock, runtime: Runtime, tmp_path: Path, gpus: int
) -> None:
    f = fleet
    key = f.customer_key(f.customer()["id"])
    lease = f.lease(headers=key, gpu_model="A100-80GB", gpu_count=gpus, end=(clock() + timedelta(hours=1)).isoformat())
    backend = backend_of(f.rt)
    name = backend.lease_name(lease["id"])
    pid_file = tmp_path / "pids"
    run_id = submit(f, key, lease["id"], [sys.executable, "-c", STUBBORN, str(pid_file)])
    wait_for(pid_file.exists, 60, "the run to start")
    pids = [int(p) for p in pid_file.read_text().split()]
    assert all(process_alive(p) for p in pids)
    clock.advance(hours=1)
    t0 = time.monotonic()
    f.rt.tick()  # the lease ends: its run is stopped, its reservation or allocation handed back
    elapsed = time.monotonic() - t0
    grace = runtime.settings.stop_grace_s
    assert not any(process_alive(p) for p in pids), "a run outlived its lease"
    assert grace <= elapsed < grace + 15, elapsed
    assert run_state(f, key, lease["id"], run_id)["state"] == "stopped"
    assert "started" in logs(f, key, lease["id"], run_id)
    assert live_job(name) is None and reservation(name) is None
    assert f.c.get(f"/api/v1/leases/{lease['id']}", headers=key).json()["state"] == "ended"
    r = f.c.post(f"/api/v1/leases/{lease['id']}/runs", headers=key, json={"command": ["true"]})
    assert r.status_code == 409


@pytest.mark.slurm
@needs_slurm
def test_a_future_lease_reserves_its_nodes_ahead_and_an_extension_moves_the_end(fleet: Facility, clock: Clock) -> None:
    f = fleet
    key = f.customer_key(f.customer()["id"])
    start = clock() + timedelta(hours=2)
    lease = f.lease(headers=key, gpu_model="A100-80GB", gpu_count=16, plan="reserved", start=start.isoformat(),
                    end=(start + timedelta(hours=1)).isoformat())  # fmt: skip
    assert lease["state"] == "scheduled"
    name = backend_of(f.rt).lease_name(lease["id"])
    res = reservation(name)
    assert res is not None, "a booked lease of whole nodes is reserved in Slurm at once"
    assert res["StartTime"] == start.strftime("%Y-%m-%dT%H:%M:%S")
    assert res["EndTime"] == (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert int(res["NodeCnt"]) == 2 and res["State"] == "INACTIVE"

    new_end = start + timedelta(hours=3)
    r = f.c.post(f"/api/v1/leases/{lease['id']}/extend", headers=key, json={"end": new_end.isoformat()})
    assert r.status_code == 200, r.text
    f.rt.tick()
    res = reservation(name)
    assert res is not None and res["EndTime"] == new_end.strftime("%Y-%m-%dT%H:%M:%S")

    r = f.c.post(f"/api/v1/leases/{lease['id']}/cancel", headers=key)
    assert r.status_code == 200, r.text
    assert reservation(name) is None


@pytest.mark.slurm
@needs_slurm
def test_extending_an_active_partial_lease_moves_its_allocations_time_limit(fleet: Facility, clock: Clock) -> None:
    f = fleet
    key = f.customer_key(f.customer()["id"])
    lease = f.lease(headers=key, gpu_model="A100-80GB", gpu_count=1, end=(clock() + timedelta(hours=1)).isoformat())
    name = backend_of(f.rt).lease_name(lease["id"])
    job = live_job(name)
    assert job is not None and job["TimeLimit"] == "01:01:00"  # the lease, and a minute as Slurm's backstop
    r = f.c.post(f"/api/v1/leases/{lease['id']}/extend", headers=key,
                 json={"end": (clock() + timedelta(hours=3)).isoformat()})  # fmt: skip
    assert r.status_code == 200, r.text
    f.rt.tick()
    job = live_job(name)
    assert job is not None and job["TimeLimit"] == "03:01:00"


@pytest.mark.slurm
@needs_slurm
def test_a_drained_or_down_node_is_reported(fleet: Facility, nodes: list[str]) -> None:
    backend = backend_of(fleet.rt)
    assert all(n.available for n in backend.node_states().values())
    victim = nodes[-1]
    try:
        slurm("scontrol", "update", f"NodeName={victim}", "State=DRAIN", "Reason=fan failure")
        states = backend.node_states()
        assert not states[victim].available and states[victim].reason == "fan failure"
        assert states[victim].state == "drained" and states[victim].gpus == 8
        assert all(states[n].available for n in nodes if n != victim)
        slurm("scontrol", "update", f"NodeName={victim}", "State=RESUME")
        wait_for(lambda: backend.node_states()[victim].available, 60, "the node to be back")
        # This Slurm returns a DOWN node to service when its slurmd answers a ping (ReturnToService=2,
        # .ci/slurm-up.sh): a ping answered between the update and the read undoes it, so it is set again.
        for _ in range(3):
            slurm("scontrol", "update", f"NodeName={victim}", "State=DOWN", "Reason=power supply")
            down = backend.node_states()[victim]
            if down.state.startswith("down"):
                break
        assert down.state.startswith("down") and down.reason == "power supply" and not down.available
    finally:
        slurm("scontrol", "update", f"NodeName={victim}", "State=RESUME", check=False)
    # Back from down, Slurm marks the node not responding ("idle*") until its slurmd answers a ping.
    wait_for(lambda: backend.node_states()[victim].available, 60, "the node to come back")


@pytest.mark.slurm
@needs_slurm
def test_slurms_accounting_is_compared_with_billing(fleet: Facility, clock: Clock, runtime: Runtime) -> None:
    """Usage that agrees raises nothing; usage that does not, and GPUs used outside any lease, raise alerts."""
    f = fleet
    cust = f.customer()
    key = f.customer_key(cust["id"])

    def real_now() -> datetime:
        clock.now = datetime.now(UTC).replace(microsecond=0)
        return clock.now

    honest = f.lease(headers=key, gpu_model="A100-80GB", gpu_count=2, end=(real_now() + timedelta(hours=1)).isoformat())
    time.sleep(3)
    real_now()
    assert f.c.post(f"/api/v1/leases/{honest['id']}/end", headers=key).status_code == 200
    # A lease whose bill (an hour) is not what Slurm saw (a second): gpulease's clock ran ahead.
    skewed = f.lease(headers=key, gpu_model="A100-80GB", gpu_count=2, end=(real_now() + timedelta(hours=2)).isoformat())
    assert live_job(backend_of(f.rt).lease_name(skewed["id"])) is not None
    clock.advance(hours=1)
    assert f.c.post(f"/api/v1/leases/{skewed['id']}/end", headers=key).status_code == 200
    # GPUs used in Slurm outside gpulease altogether.
    node = sorted(by_node(honest))[0]
    stray_name = f"stray-{uuid.uuid4().hex[:8]}"
    stray = slurm("srun", "--account=root", "-w", node, "--gres=gpu:1", f"--job-name={stray_name}", "true")
    assert stray.returncode == 0
    backend = backend_of(f.rt)
    names = {backend.lease_name(honest["id"]), backend.lease_name(skewed["id"]), stray_name}

    def recorded() -> bool:  # slurmdbd learns of a job's end a moment after it
        since = datetime.now(UTC) - timedelta(hours=1)
        return names <= {r.name for r in backend.accounting(since) if r.end is not None}

    wait_for(recorded, 30, "Slurm's accounting to record the jobs")
    clock.advance(seconds=60)  # past the settling time gpulease gives the accounting daemon
    runtime.settings.slurm_accounting_interval_s = 0
    f.rt.tick()
    alerts = f.c.get("/api/v1/alerts", headers=f.k.op).json()
    mismatches = [a for a in alerts if a["kind"] == "slurm_usage_mismatch"]
    assert [a["data"]["lease_id"] for a in mismatches] == [skewed["id"]], mismatches
    assert mismatches[0]["data"]["billed_gpu_s"] == 3600 * 2
    assert mismatches[0]["data"]["slurm_gpu_s"] < 60 * 2
    stray_alerts = [a for a in alerts if a["kind"] == "slurm_unleased_gpu_use" and stray_name in a["message"]]
    assert len(stray_alerts) == 1, alerts
    f.rt.tick()  # compared again: the same disagreement is not raised twice
    again = f.c.get("/api/v1/alerts", headers=f.k.op).json()
    assert len(again) == len(alerts)


@pytest.mark.slurm
@needs_slurm
def test_a_compliance_hold_locks_the_tenant_out_of_its_reservation_until_cleared(
    fleet: Facility, clock: Clock, runtime: Runtime, tmp_path: Path
) -> None:
    from gpulease.services import screening
    from gpulease.services.context import SYSTEM
    from tests.api.test_compliance_api import _csl_file
    from tests.api.test_holds import clear

    f = fleet
    cust = f.customer("Orchid Frontier Computing Pte. Ltd.", country="SG")
    runtime.settings.slurm_users = {cust["id"]: ["nobody"]}  # the tenant's own Slurm user
    key = f.customer_key(cust["id"])
    lease = f.lease(headers=key, gpu_model="A100-80GB", gpu_count=8, end=(clock() + timedelta(hours=1)).isoformat())
    backend = backend_of(f.rt)
    name = backend.lease_name(lease["id"])
    account = f"gpulease-c{cust['id']}"
    res = reservation(name)
    assert res is not None and (res["Accounts"], res["Users"]) == (account, f"{backend.service_user},nobody")

    def tenant_submits() -> subprocess.CompletedProcess[str]:  # as the tenant's user, from a login node
        return slurm("sbatch", "--uid=nobody", f"--account={account}", f"--reservation={name}", "-w", res["Nodes"],
                     "-o", "/dev/null", "--wrap", "sleep 600", check=False)  # fmt: skip

    assert tenant_submits().returncode == 0

    runtime.perform(  # a list update names the customer: its leases are held
        screening.load_lists,
        actor=SYSTEM,
        paths=[str(_csl_file(tmp_path, "Orchid Frontier Computing"))],
        allow_shrink=True,  # one record in place of the bundled CSL sample
    )
    f.rt.tick()
    assert f.c.get(f"/api/v1/leases/{lease['id']}", headers=key).json()["state"] == "suspended"
    held = reservation(name)
    assert held is not None, "the GPUs stay held during a compliance hold"
    assert (held["Accounts"], held["Users"]) == ("(null)", backend.service_user)
    assert live_job(name) is None and not slurm("squeue", "-h", "-R", name).stdout.strip()  # its job was stopped
    denied = tenant_submits()
    assert denied.returncode != 0 and "Access denied" in denied.stderr

    clear(f, cust["id"])  # a licence and two compliance officers: the hit is on a blocking list
    assert f.c.get(f"/api/v1/leases/{lease['id']}", headers=key).json()["state"] == "active"
    back = reservation(name)
    assert back is not None and (back["Accounts"], back["Users"]) == (account, f"{backend.service_user},nobody")
    assert tenant_submits().returncode == 0


@pytest.mark.slurm
@needs_slurm
def test_a_restarted_control_plane_adopts_what_slurm_holds_and_clears_what_no_lease_needs(
    fleet: Facility, clock: Clock, runtime: Runtime
) -> None:
    from gpulease.services.slurm_mirror import backend_options, lease_windows

    f = fleet
    key = f.customer_key(f.customer()["id"])
    end = (clock() + timedelta(hours=1)).isoformat()
    whole = f.lease(headers=key, gpu_model="A100-80GB", gpu_count=8, end=end)
    part = f.lease(headers=key, gpu_model="A100-80GB", gpu_count=2, end=end)
    first = backend_of(f.rt)
    res_name, alloc_name = first.lease_name(whole["id"]), first.lease_name(part["id"])
    alloc = live_job(alloc_name)
    assert reservation(res_name) is not None and alloc is not None

    restarted = SlurmBackend(**backend_options(runtime.settings))  # what a new server process builds
    with runtime.store.transaction() as s:
        windows = lease_windows(s)
    assert restarted.sync_leases(windows) == {}
    again = live_job(alloc_name)
    assert again is not None and again["JobId"] == alloc["JobId"], "the allocation was made twice"
    assert slurm("squeue", "-h", "-n", alloc_name, "-o", "%i").stdout.split() == [alloc["JobId"]]

    restarted.sync_leases([], grace_s=1)  # the leases ended while it was down
    assert reservation(res_name) is None and live_job(alloc_name) is None


@pytest.mark.slurm
@needs_slurm
def test_a_node_slurm_drains_is_a_node_failure_until_slurm_says_it_is_back(
    fleet: Facility, nodes: list[str], clock: Clock, runtime: Runtime
) -> None:
    """The clock reads Slurm's node states: a drained node is down in gpulease (its leases moved or ended by plan,
    an alert), and available again once Slurm resumes it; a node an operator took down stays down."""
    runtime.settings.slurm_node_poll_s = 0  # every tick
    f = fleet
    key = f.customer_key(f.customer()["id"])
    end = (clock() + timedelta(hours=1)).isoformat()
    kept = f.lease(headers=key, gpu_model="A100-80GB", gpu_count=4, end=end)
    spot = f.lease(headers=key, gpu_model="A100-80GB", gpu_count=2, plan="interruptible", end=end)
    ((victim, _),) = by_node(kept).items()
    assert list(by_node(spot)) == [victim], "both leases should be packed on one node"
    ids = {n["name"]: n["id"] for n in f.c.get("/api/v1/nodes", headers=f.k.op).json()}
    operator_down = next(n for n in nodes if n != victim)
    r = f.c.put(f"/api/v1/nodes/{ids[operator_down]}/state", headers=f.k.op, json={"state": "down", "reason": "fw"})
    assert r.status_code == 200, r.text
    runtime.tick()
    assert f.c.get(f"/api/v1/nodes/{ids[victim]}", headers=f.k.op).json()["state"] == "available"
    try:
        slurm("scontrol", "update", f"NodeName={victim}", "State=DRAIN", "Reason=test")
        runtime.tick()
        assert f.c.get(f"/api/v1/nodes/{ids[victim]}", headers=f.k.op).json()["state"] == "down"
        moved = f.c.get(f"/api/v1/leases/{kept['id']}", headers=key).json()
        assert moved["state"] == "active" and victim not in by_node(moved), moved
        assert f.c.get(f"/api/v1/leases/{spot['id']}", headers=key).json()["state"] in ("ending", "ended")
        events = f.c.get(f"/api/v1/leases/{kept['id']}/events", headers=key).json()
        assert any("slurm reports it" in (e["reason"] or "") and "test" in (e["reason"] or "") for e in events)
        alerts = f.c.get("/api/v1/alerts", headers=f.k.op).json()
        down = [a for a in alerts if a["kind"] == "node_down" and a["data"]["node"] == victim]
        assert len(down) == 1 and down[0]["data"]["moved"] == [kept["id"]] and down[0]["data"]["ended"] == [spot["id"]]
        # Slurm follows: the moved lease's allocation is on its new node.
        new_node = next(iter(by_node(moved)))

        def held_on_new_node() -> bool:
            runtime.tick()
            job = live_job(backend_of(runtime).lease_name(kept["id"]))
            return job is not None and job["NodeList"] == new_node

        wait_for(held_on_new_node, 60, "Slurm to hold the moved lease on its new node")
        runtime.tick()  # still drained: nothing more happens
        alerts = f.c.get("/api/v1/alerts", headers=f.k.op).json()
        assert len([a for a in alerts if a["kind"] == "node_down" and a["data"]["node"] == victim]) == 1
    finally:
        slurm("scontrol", "update", f"NodeName={victim}", "State=RESUME", check=False)
    wait_for(lambda: backend_of(runtime).node_states()[victim].available, 60, "Slurm to resume the node")
    runtime.tick()
    assert f.c.get(f"/api/v1/nodes/{ids[victim]}", headers=f.k.op).json()["state"] == "available"
    assert any(a["kind"] == "node_up" for a in f.c.get("/api/v1/alerts", headers=f.k.op).json())
    # The node the operator took down stays down although Slurm runs work there.
    assert backend_of(runtime).node_states()[operator_down].available
    assert f.c.get(f"/api/v1/nodes/{ids[operator_down]}", headers=f.k.op).json()["state"] == "down"


@pytest.mark.slurm
@needs_slurm
@pytest.mark.parametrize("gpus", [2, 8], ids=["allocation", "reservation"])
def test_another_server_process_runs_in_what_the_clocks_holder_made(
    fleet: Facility, clock: Clock, settings: Settings, gpus: int
) -> None:
    """Several server processes: only the clock's holder tells Slurm about leases; a run submitted through another
    process finds the lease's reservation or allocation by reading Slurm back, and runs on exactly its GPUs."""
    from fastapi.testclient import TestClient

    from gpulease.api.app import create_app

    f = fleet
    key = f.customer_key(f.customer()["id"])
    lease = f.lease(headers=key, gpu_model="A100-80GB", gpu_count=gpus, end=(clock() + timedelta(hours=1)).isoformat())
    ((node, indices),) = by_node(lease).items()
    assert live_job(backend_of(f.rt).lease_name(lease["id"])) or reservation(backend_of(f.rt).lease_name(lease["id"]))
    other = Runtime(settings.model_copy(update={"data_dir": settings.data_dir.parent / "other"}), clock=clock)
    try:
        with TestClient(create_app(other, background=False)) as api:
            r = api.post(f"/api/v1/leases/{lease['id']}/runs", headers=key, json={"command": [
                "sh", "-c", 'echo "cuda=$CUDA_VISIBLE_DEVICES on=$SLURMD_NODENAME"']})  # fmt: skip
            assert r.status_code == 201, r.text
            run_id = r.json()["id"]
            url = f"/api/v1/leases/{lease['id']}/runs/{run_id}"
            wait_for(lambda: api.get(url, headers=key).json()["state"] == "succeeded", 60, "the run to finish")
            out = api.get(url + "/logs", headers=key, params={"follow": "false"}).text
            assert f"cuda={','.join(map(str, indices))} on={node}" in out
    finally:
        other.close()
