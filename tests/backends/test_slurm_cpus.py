"""CPU leases and a GPU lease's share of cores on a real local Slurm (.ci/slurm-up.sh: task/affinity, CR_Core_Memory).

The backend is driven directly (sync_leases, lease_started, start), as the server's clock and executor do; the
store's side of CPU leases is tested with the services. Slurm picks the core ids of an allocation, so the tests
check the count Slurm holds and that the run is bound to the CPUs Slurm gave it, not gpulease's core ids.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gpulease.backends.base import BackendError, LeasedGpus, RunSpec, RunState
from gpulease.backends.slurm import LeaseWindow, SlurmBackend, SlurmCommands
from tests.backends.test_slurm import SLURM_CONF, live_job, needs_slurm, node_words
from tests.conftest import wait_for

pytestmark = [pytest.mark.slurm, needs_slurm]

REPORT = (
    "import json, os\n"
    "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n"
    "print(json.dumps({'affinity': sorted(os.sched_getaffinity(0)), 'allowed': status['Cpus_allowed_list'],\n"
    "  'env': {k: os.environ.get(k) for k in ('GPULEASE_CPUS', 'GPULEASE_CORES', 'OMP_NUM_THREADS',\n"
    "  'CUDA_VISIBLE_DEVICES', 'SLURM_CPUS_PER_TASK')}}))\n"
)


@pytest.fixture
def backend() -> Iterator[SlurmBackend]:
    b = SlurmBackend(
        commands=SlurmCommands(conf=SLURM_CONF),
        name_prefix=f"glt{uuid.uuid4().hex[:8]}",  # apart from every other test's leases
        allocation_timeout_s=20,
        stop_grace_s=1,
    )
    yield b
    b.sync_leases([], grace_s=0)
    b.close()


@pytest.fixture
def node() -> str:
    return sorted(node_words())[-1]


def window(lease_id: int, part: LeasedGpus) -> LeaseWindow:
    now = datetime.now(UTC).replace(microsecond=0)
    return LeaseWindow(lease_id, 1, "active", now, now + timedelta(minutes=30), (part,))


def run(
    backend: SlurmBackend, tmp_path: Path, run_id: str, part: LeasedGpus, env: dict[str, str] | None = None
) -> dict[str, Any]:
    spec = RunSpec(
        run_id=run_id,
        lease_id=part.lease_id,
        command=["python3", "-c", REPORT],
        env=env or {},
        cwd=None,
        gpus=[part],
        log_path=tmp_path / f"{run_id}.log",
    )
    backend.start(spec)
    wait_for(lambda: backend.status(run_id).state.finished, 60, f"run {run_id} to finish")
    log = backend.read_logs(run_id)[0].decode()
    assert backend.status(run_id).state is RunState.SUCCEEDED, log
    seen: dict[str, Any] = json.loads(log.strip().splitlines()[-1])
    return seen


def tres(job: dict[str, str]) -> dict[str, str]:
    """What Slurm holds for the job (`TRES=cpu=1,mem=2G,node=1`)."""
    found = re.search(r"\bTRES=(\S+)", job["_text"])
    assert found is not None, job["_text"]
    return dict(tuple(item.split("=", 1)) for item in found.group(1).split(","))


def test_a_cpu_lease_is_an_allocation_of_its_cores_and_memory_and_its_run_is_bound_to_them(
    backend: SlurmBackend, node: str, tmp_path: Path
) -> None:
    part = LeasedGpus(1, node, (), cores=(6,), memory_gib=2)  # a CPU lease on a GPU node: one core, 2 GiB
    assert backend.sync_leases([window(1, part)]) == {}
    job = live_job(backend.lease_name(1))
    assert job is not None and job["JobState"] == "RUNNING" and job["NodeList"] == node
    held = tres(job)
    assert (held["cpu"], held["mem"]) == ("1", "2G")
    assert not any(k.startswith("gres/gpu") for k in held), "a CPU lease holds no GPU"
    backend.lease_started(1, [part])
    seen = run(backend, tmp_path, "cpu-1", part, env={"CUDA_VISIBLE_DEVICES": "0", "GPULEASE_CPUS": "0-63"})
    assert len(seen["affinity"]) == 1  # bound by Slurm's task/affinity to the one core it allocated
    assert seen["env"]["GPULEASE_CPUS"] == seen["allowed"] == ",".join(map(str, seen["affinity"]))
    assert seen["env"] | {"GPULEASE_CPUS": None} == {
        "GPULEASE_CPUS": None, "GPULEASE_CORES": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
        "SLURM_CPUS_PER_TASK": "1",
    }  # fmt: skip


def test_a_partial_gpu_lease_holds_its_share_of_cores(backend: SlurmBackend, node: str, tmp_path: Path) -> None:
    part = LeasedGpus(2, node, (2, 5), cores=(8, 9, 10, 11))
    assert backend.sync_leases([window(2, part)]) == {}
    job = live_job(backend.lease_name(2))
    assert job is not None and tres(job)["cpu"] == "4"
    assert tres(job)["gres/gpu"] == "2"
    backend.lease_started(2, [part])
    seen = run(backend, tmp_path, "gpu-2", LeasedGpus(2, node, (2, 5)))  # names GPUs only: gets the lease's cores
    assert seen["env"]["GPULEASE_CPUS"] == seen["allowed"]
    assert (seen["env"]["GPULEASE_CORES"], seen["env"]["OMP_NUM_THREADS"]) == ("4", "4")
    assert (seen["env"]["CUDA_VISIBLE_DEVICES"], seen["env"]["SLURM_CPUS_PER_TASK"]) == ("2,5", "4")


def test_cores_the_lease_does_not_own_are_refused(backend: SlurmBackend, node: str, tmp_path: Path) -> None:
    part = LeasedGpus(3, node, (), cores=(1,))
    assert backend.sync_leases([window(3, part)]) == {}
    backend.lease_started(3, [part])
    with pytest.raises(BackendError, match=r"asks for cores 1-2 .* which lease 3 does not own"):
        backend.start(
            RunSpec("steal", 3, ["true"], {}, None, [LeasedGpus(3, node, (), cores=(1, 2))], tmp_path / "s.log")
        )
