"""Local runs pinned to their lease's cores: a CPU lease (cores, no GPUs) and a GPU lease's share of cores, with
real sandboxed processes reading their own affinity. This machine may have only 2 CPUs: the tests pin to one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gpulease.backends import supervisor
from gpulease.backends.base import BackendError, LeasedGpus, RunSpec, RunState, validate_spec
from gpulease.backends.cpus import (
    CpuPinningError,
    find_cpuset_hierarchy,
    host_cpus,
    parse_cpu_list,
)
from gpulease.backends.local import LocalBackend
from gpulease.backends.sandbox import SandboxPolicy
from tests.conftest import needs_bwrap, wait_for

MakeSpec = Callable[..., RunSpec]
CORE = max(os.sched_getaffinity(0))  # the last CPU this process may use: 1 on a 2-CPU machine
OTHER = min(os.sched_getaffinity(0))
needs_two_cpus = pytest.mark.skipif(CORE == OTHER, reason="pinning is seen only on a machine with 2 CPUs or more")
CGROUP = find_cpuset_hierarchy("auto")
needs_cpuset = pytest.mark.skipif(CGROUP is None, reason="this process may not make cpuset cgroups (not root?)")

# What a run reports about itself: its affinity, the kernel's word for it, and what its environment says.
REPORT = (
    "import json, os\n"
    "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n"
    "print(json.dumps({'affinity': sorted(os.sched_getaffinity(0)), 'allowed': status['Cpus_allowed_list'],\n"
    "  'env': {k: os.environ.get(k) for k in ('GPULEASE_CPUS', 'GPULEASE_CORES', 'OMP_NUM_THREADS',\n"
    "  'CUDA_VISIBLE_DEVICES', 'NVIDIA_VISIBLE_DEVICES')}, 'nvidia': sorted(d for d in os.listdir('/dev')\n"
    "  if d.startswith('nvidia'))}))\n"
)
# A run that widens its own affinity to every CPU of the machine, then reports what it got.
WIDEN = (
    "import os\n"
    "try:\n"
    "    os.sched_setaffinity(0, range(os.cpu_count()))\n"
    "    print('widened', sorted(os.sched_getaffinity(0)))\n"
    "except OSError as exc:\n"
    "    print('refused', exc.errno)\n"
)


@pytest.fixture
def runs_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "logs"
    yield path
    supervisor.stop_all(path)


@pytest.fixture
def fake_dev() -> Iterator[Path]:
    """Fake /dev/nvidia* nodes (character devices like /dev/null), never the host's /dev."""
    fake = Path(tempfile.mkdtemp(prefix="gpulease-fake-dev-"))
    fake.chmod(0o755)
    try:
        for name in ["nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"]:
            os.mknod(fake / name, 0o666 | 0o020000, os.makedev(1, 3))
    except PermissionError:
        shutil.rmtree(fake)
        pytest.skip("creating device nodes needs CAP_MKNOD")
    yield fake
    shutil.rmtree(fake)


def cpu_spec(make_spec: MakeSpec, run_id: str, script: str, lease_id: int = 5, **kw: object) -> RunSpec:
    """A run of a CPU lease on core CORE (`cores=` another)."""
    return make_spec(run_id, ["python3", "-c", script], lease_id=lease_id, indices=(), **{"cores": (CORE,), **kw})


def finished_log(backend: LocalBackend, run_id: str) -> str:
    wait_for(lambda: backend.status(run_id).state.finished, 20, f"run {run_id} to finish")
    assert backend.status(run_id).state is RunState.SUCCEEDED, backend.read_logs(run_id)[0]
    return backend.read_logs(run_id)[0].decode()


def make_backend(
    runs_dir: Path, sandbox_dir: Path, cpuset: str = "auto", device_dir: Path | None = None
) -> LocalBackend:
    policy = SandboxPolicy(root=sandbox_dir, cpuset_cgroup=cpuset, device_dir=device_dir or Path("/nonexistent"))
    return LocalBackend(runs_dir=runs_dir, sandbox=policy)


# -- which CPUs a core is -------------------------------------------------------------------------


def test_cpu_lists_and_hardware_threads(tmp_path: Path) -> None:
    assert parse_cpu_list("0-3,8,10-11\n") == (0, 1, 2, 3, 8, 10, 11)
    assert parse_cpu_list("") == ()
    # A 2-core machine with 2 threads a core, numbered core by core first (0,1), then their siblings (2,3).
    (tmp_path / "online").write_text("0-3\n")
    for cpu, siblings in {0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3"}.items():
        (tmp_path / f"cpu{cpu}" / "topology").mkdir(parents=True)
        (tmp_path / f"cpu{cpu}" / "topology" / "thread_siblings_list").write_text(siblings + "\n")
    assert host_cpus((1,), sys_cpu=tmp_path) == (1, 3)  # a core brings its hardware threads
    assert host_cpus((0, 1), sys_cpu=tmp_path) == (0, 1, 2, 3)
    with pytest.raises(CpuPinningError, match=r"cores \[4, 7\] are not online CPUs of this machine \(online: 0-3\)"):
        host_cpus((0, 4, 7), sys_cpu=tmp_path)


def test_a_cpu_only_lease_is_a_valid_run(make_spec: MakeSpec) -> None:
    validate_spec(cpu_spec(make_spec, "v", "pass"))


# -- real runs ------------------------------------------------------------------------------------


@needs_bwrap
@needs_two_cpus
def test_a_cpu_leases_run_sees_exactly_its_cores_and_no_gpu(
    runs_dir: Path, sandbox_dir: Path, make_spec: MakeSpec, fake_dev: Path
) -> None:
    backend = make_backend(runs_dir, sandbox_dir, device_dir=fake_dev)
    backend.lease_started(5, [LeasedGpus(5, "node-a", (), cores=(CORE,))])
    # The customer tries to claim GPUs and more CPUs through its environment; OMP_NUM_THREADS is its to lower.
    env = {"CUDA_VISIBLE_DEVICES": "0", "GPULEASE_CPUS": "0-63", "GPULEASE_CORES": "64"}
    backend.start(cpu_spec(make_spec, "r-cpu", REPORT, env=env))
    seen = json.loads(finished_log(backend, "r-cpu"))
    assert seen["affinity"] == [CORE]
    assert seen["allowed"] == str(CORE)
    assert seen["env"] == {
        "GPULEASE_CPUS": str(CORE), "GPULEASE_CORES": "1", "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "", "NVIDIA_VISIBLE_DEVICES": "",
    }  # fmt: skip
    assert seen["nvidia"] == []  # not even nvidiactl or nvidia-uvm
    backend.start(cpu_spec(make_spec, "r-omp", "import os; print(os.environ['OMP_NUM_THREADS'])", env={
        "OMP_NUM_THREADS": "4"}))  # fmt: skip
    assert finished_log(backend, "r-omp") == "4\n"
    backend.lease_ended(5, grace_s=1)


@needs_bwrap
@needs_two_cpus
def test_children_inherit_the_pinning(runs_dir: Path, sandbox_dir: Path, make_spec: MakeSpec) -> None:
    backend = make_backend(runs_dir, sandbox_dir)
    backend.lease_started(5, [LeasedGpus(5, "node-a", (), cores=(CORE,))])
    script = "import subprocess; subprocess.run(['sh', '-c', 'sh -c \"grep Cpus_allowed_list /proc/self/status\"'])"
    backend.start(cpu_spec(make_spec, "r-kids", script))
    assert finished_log(backend, "r-kids") == f"Cpus_allowed_list:\t{CORE}\n"
    backend.lease_ended(5, grace_s=1)


@needs_bwrap
@needs_two_cpus
@needs_cpuset
def test_a_run_cannot_widen_its_cores_where_a_cpuset_cgroup_holds_it(
    runs_dir: Path, sandbox_dir: Path, make_spec: MakeSpec
) -> None:
    backend = make_backend(runs_dir, sandbox_dir)
    backend.lease_started(5, [LeasedGpus(5, "node-a", (), cores=(CORE,))])
    script = "import subprocess; subprocess.run(['python3', '-c', WIDEN])".replace("WIDEN", repr(WIDEN))
    backend.start(cpu_spec(make_spec, "r-widen", WIDEN + script))
    # The kernel intersects the asked affinity with the run's cpuset: "success", and still the one core.
    assert finished_log(backend, "r-widen") == f"widened [{CORE}]\nwidened [{CORE}]\n"
    record = supervisor.find_record(runs_dir, "r-widen")
    assert record is not None and record.cpus == [CORE] and record.cpuset_cgroup is not None
    assert not Path(record.cpuset_cgroup).exists()  # the run's cgroup went with the run


@needs_bwrap
@needs_two_cpus
def test_without_a_cgroup_a_run_can_widen_its_affinity_the_documented_limit(
    runs_dir: Path, sandbox_dir: Path, make_spec: MakeSpec
) -> None:
    backend = make_backend(runs_dir, sandbox_dir, cpuset="off")
    backend.lease_started(5, [LeasedGpus(5, "node-a", (), cores=(CORE,))])
    backend.start(cpu_spec(make_spec, "r-widen", REPORT + WIDEN))
    first, widened = finished_log(backend, "r-widen").splitlines()
    assert json.loads(first)["affinity"] == [CORE]  # pinned at the start ...
    assert widened == f"widened {sorted(os.sched_getaffinity(0))}"  # ... but affinity alone is a hint
    record = supervisor.find_record(runs_dir, "r-widen")
    assert record is not None and record.cpus == [CORE] and record.cpuset_cgroup is None


@needs_bwrap
@needs_two_cpus
def test_a_gpu_lease_is_pinned_to_its_share_of_cores(runs_dir: Path, sandbox_dir: Path, make_spec: MakeSpec) -> None:
    backend = make_backend(runs_dir, sandbox_dir)
    backend.lease_started(1, [LeasedGpus(1, "node-a", (3, 1), cores=(OTHER,))])
    backend.start(make_spec("r-gpu", ["python3", "-c", REPORT]))  # names GPUs only: gets the lease's cores
    seen = json.loads(finished_log(backend, "r-gpu"))
    assert (seen["affinity"], seen["allowed"]) == ([OTHER], str(OTHER))
    assert seen["env"] == {
        "GPULEASE_CPUS": str(OTHER), "GPULEASE_CORES": "1", "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "3,1", "NVIDIA_VISIBLE_DEVICES": "3,1",
    }  # fmt: skip
    backend.lease_ended(1, grace_s=1)


@needs_bwrap
@needs_two_cpus
def test_re_attaching_after_a_restart_keeps_the_pinning(runs_dir: Path, sandbox_dir: Path, make_spec: MakeSpec) -> None:
    first = make_backend(runs_dir, sandbox_dir)
    first.lease_started(5, [LeasedGpus(5, "node-a", (), cores=(CORE,))])
    script = (
        "import os, time\nprint(sorted(os.sched_getaffinity(0)), flush=True)\n"
        "while not os.path.exists('go'): time.sleep(0.05)\nprint(sorted(os.sched_getaffinity(0)))\n"
    )
    spec = cpu_spec(make_spec, "r-again", script)
    first.start(spec)
    wait_for(lambda: first.read_logs("r-again")[0] == f"[{CORE}]\n".encode(), 10, "the run to start")
    first.close()
    second = make_backend(runs_dir, sandbox_dir)  # a new server process
    assert second.reattach("r-again", 5, spec.log_path).state is RunState.RUNNING
    (sandbox_dir / "lease-5" / "home" / "go").touch()
    assert finished_log(second, "r-again") == f"[{CORE}]\n[{CORE}]\n"
    record = supervisor.find_record(runs_dir, "r-again")
    assert record is not None and record.cpus == [CORE]
    if record.cpuset_cgroup is not None:
        assert not Path(record.cpuset_cgroup).exists()


@needs_bwrap
def test_cores_the_lease_does_not_own_or_this_machine_lacks_are_refused(
    runs_dir: Path, sandbox_dir: Path, make_spec: MakeSpec
) -> None:
    backend = make_backend(runs_dir, sandbox_dir)
    backend.lease_started(5, [LeasedGpus(5, "node-a", (), cores=(CORE,))])
    with pytest.raises(BackendError, match=r"asks for cores .* which lease 5 does not own"):
        backend.start(cpu_spec(make_spec, "steal", "pass", cores=(CORE, CORE + 1)))
    backend.lease_started(6, [LeasedGpus(6, "node-a", (), cores=(4096,))])
    with pytest.raises(BackendError, match=r"cores \[4096\] are not online CPUs of this machine"):
        backend.start(cpu_spec(make_spec, "nowhere", "pass", lease_id=6, cores=(4096,)))


@needs_bwrap
@needs_two_cpus
@needs_cpuset
def test_a_runs_cpuset_goes_when_its_supervisor_dies(runs_dir: Path, sandbox_dir: Path, make_spec: MakeSpec) -> None:
    backend = make_backend(runs_dir, sandbox_dir)
    backend.lease_started(5, [LeasedGpus(5, "node-a", (), cores=(CORE,))])
    backend.start(cpu_spec(make_spec, "r-orphan", "import time; time.sleep(600)"))
    record = supervisor.find_record(runs_dir, "r-orphan")
    assert record is not None and record.cpuset_cgroup is not None
    cgroup = Path(record.cpuset_cgroup)
    assert cgroup.is_dir() and (cgroup / "cpuset.cpus").read_text().strip() == str(CORE)
    os.kill(record.supervisor_pid, signal.SIGKILL)  # its sandbox dies with it (--die-with-parent)
    wait_for(lambda: backend.status("r-orphan").state.finished, 10, "the run to be recorded as ended")
    assert not cgroup.exists()  # the server removed what the supervisor could not
