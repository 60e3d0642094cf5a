"""The local backend with real sandboxed processes: GPUs a run sees, exit codes, logs, lease end, and
supervisors that outlive the backend that started them."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gpulease.backends import get_backend, supervisor
from gpulease.backends.base import BackendError, LeasedGpus, RunSpec, RunState
from gpulease.backends.local import LocalBackend
from gpulease.backends.process_group import namespace_members, process_alive
from gpulease.backends.sandbox import SandboxPolicy
from tests.conftest import needs_bwrap, wait_for

pytestmark = needs_bwrap
MakeSpec = Callable[..., RunSpec]


@pytest.fixture
def runs_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "logs"
    yield path
    supervisor.stop_all(path)  # whatever a test left running


@pytest.fixture
def policy(sandbox_dir: Path) -> SandboxPolicy:
    return SandboxPolicy(root=sandbox_dir)


@pytest.fixture
def backend(runs_dir: Path, policy: SandboxPolicy) -> Iterator[LocalBackend]:
    b = LocalBackend(runs_dir=runs_dir, sandbox=policy)
    b.lease_started(1, [LeasedGpus(1, "node-a", (3, 1))])
    yield b
    b.close()


def sandbox_pids(runs_dir: Path, run_id: str, at_least: int = 1) -> list[int]:
    """The run's processes as this machine numbers them (its sandbox's PID 1 included)."""
    found: list[int] = []

    def enough() -> bool:
        record = supervisor.find_record(runs_dir, run_id)
        found[:] = namespace_members(record.pid_namespace) if record and record.pid_namespace else []
        return len(found) >= at_least

    wait_for(enough, 10, f"{at_least} processes in run {run_id}'s sandbox")
    return found


def wait_finished(backend: LocalBackend, run_id: str, timeout_s: float = 10) -> None:
    wait_for(lambda: backend.status(run_id).state.finished, timeout_s, f"run {run_id} to finish")


def test_run_sees_exactly_the_leased_gpus_in_lease_order(backend: LocalBackend, make_spec: MakeSpec) -> None:
    # The customer tries to widen its GPUs through its own environment; the lease wins.
    spec = make_spec(
        "r-gpus",
        ["sh", "-c", 'echo "cuda=$CUDA_VISIBLE_DEVICES nvidia=$NVIDIA_VISIBLE_DEVICES mine=$MINE"'],
        env={"CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7", "NVIDIA_VISIBLE_DEVICES": "all", "MINE": "kept"},
    )
    backend.start(spec)
    wait_finished(backend, "r-gpus")
    data, _ = backend.read_logs("r-gpus")
    assert data == b"cuda=3,1 nvidia=3,1 mine=kept\n"


def test_environment_is_gpuleases_and_the_customers_only(
    backend: LocalBackend, make_spec: MakeSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPULEASE_DATABASE_URL", "postgresql://secret@db/gpulease")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "server-secret")
    backend.start(make_spec("r-env", ["sh", "-c", "env | sort"], env={"MINE": "kept", "PATH": "/usr/bin:/bin"}))
    wait_finished(backend, "r-env")
    env = dict(line.split("=", 1) for line in backend.read_logs("r-env")[0].decode().splitlines())
    assert set(env) == {
        "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TMPDIR", "PYTHONUNBUFFERED", "PATH", "PWD", "MINE",
        "GPULEASE_LEASE_ID", "GPULEASE_RUN_ID", "GPULEASE_NOTICE_FILE",
        "CUDA_DEVICE_ORDER", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",
    }  # fmt: skip
    assert (env["HOME"], env["PWD"], env["PATH"], env["MINE"]) == ("/home/customer",) * 2 + ("/usr/bin:/bin", "kept")
    assert (env["GPULEASE_LEASE_ID"], env["GPULEASE_RUN_ID"]) == ("1", "r-env")


def test_exit_codes_and_status_survive_natural_exit(backend: LocalBackend, make_spec: MakeSpec) -> None:
    backend.start(make_spec("ok", ["sh", "-c", "exit 0"]))
    backend.start(make_spec("bad", ["sh", "-c", "echo oops >&2; exit 3"]))
    wait_finished(backend, "ok")
    wait_finished(backend, "bad")
    time.sleep(0.2)  # the status is kept after the process is long gone
    ok, bad = backend.status("ok"), backend.status("bad")
    assert (ok.state, ok.exit_code) == (RunState.SUCCEEDED, 0)
    assert (bad.state, bad.exit_code, bad.message) == (RunState.FAILED, 3, "exited with code 3")
    assert bad.started_at is not None and bad.ended_at is not None and bad.ended_at >= bad.started_at
    assert backend.read_logs("bad")[0] == b"oops\n"  # stderr goes to the same log


def test_logs_are_readable_incrementally(backend: LocalBackend, make_spec: MakeSpec, sandbox_dir: Path) -> None:
    script = "echo first; while [ ! -e gate ]; do sleep 0.02; done; echo second"
    backend.start(make_spec("r-logs", ["sh", "-c", script]))
    wait_for(lambda: backend.read_logs("r-logs")[0] == b"first\n", 10, "first line")
    chunk1, offset = backend.read_logs("r-logs")
    assert backend.read_logs("r-logs", offset) == (b"", offset)
    (sandbox_dir / "lease-1" / "home" / "gate").touch()  # the run's home, as the server sees it
    wait_finished(backend, "r-logs")
    chunk2, offset2 = backend.read_logs("r-logs", offset)
    assert chunk2 == b"second\n"
    assert offset2 == len(chunk1 + chunk2)


def test_lease_end_kills_runs_that_ignore_sigterm_and_their_escaped_children(
    backend: LocalBackend, make_spec: MakeSpec, runs_dir: Path, sandbox_dir: Path
) -> None:
    # The run ignores SIGTERM, and so does a grandchild that left the session (setsid): a process group
    # signal would miss it; the sandbox's PID namespace does not.
    stubborn = "trap '' TERM; setsid sh -c \"trap '' TERM; sleep 600\" & sleep 600 & wait"
    backend.start(make_spec("stubborn", ["sh", "-c", stubborn]))
    pids = sandbox_pids(runs_dir, "stubborn", at_least=5)  # PID 1, sh, setsid'd sh, its sleep, sleep
    assert all(process_alive(p) for p in pids)
    grace = 1.0
    t0 = time.monotonic()
    backend.lease_ended(1, grace_s=grace)
    elapsed = time.monotonic() - t0
    assert not any(process_alive(p) for p in pids), "a run outlived its lease"
    assert grace <= elapsed < grace + 1.5
    status = backend.status("stubborn")
    assert (status.state, status.exit_code, status.message) == (RunState.STOPPED, -9, "killed by SIGKILL")
    assert not (sandbox_dir / "lease-1").exists()  # the lease's home and /tmp went with it


def test_nothing_of_a_lease_outlives_it_and_no_run_starts_after_it(
    backend: LocalBackend, make_spec: MakeSpec, runs_dir: Path
) -> None:
    for n in range(3):
        backend.start(make_spec(f"r{n}", ["sh", "-c", "sleep 600 & sleep 600 & wait"]))
    pids = [p for n in range(3) for p in sandbox_pids(runs_dir, f"r{n}", at_least=4)]
    t0 = time.monotonic()
    backend.lease_ended(1, grace_s=2.0)
    assert time.monotonic() - t0 < 2.0  # sh and sleep obey SIGTERM: no need to wait the grace out
    assert not any(process_alive(p) for p in pids)
    assert {backend.status(f"r{n}").state for n in range(3)} == {RunState.STOPPED}
    with pytest.raises(BackendError, match="lease 1 is not active"):
        backend.start(make_spec("late", ["true"]))


def test_stop_one_run_leaves_the_others(backend: LocalBackend, make_spec: MakeSpec) -> None:
    backend.start(make_spec("a", ["sleep", "600"]))
    backend.start(make_spec("b", ["sleep", "600"]))
    status = backend.stop("a", grace_s=5)
    assert (status.state, status.exit_code, status.message) == (RunState.STOPPED, -15, "killed by SIGTERM")
    assert backend.status("b").state is RunState.RUNNING
    assert backend.stop("a", grace_s=5).state is RunState.STOPPED  # stopping twice is harmless


def test_processes_left_behind_by_a_finished_run_are_gone(
    backend: LocalBackend, make_spec: MakeSpec, runs_dir: Path, sandbox_dir: Path
) -> None:
    script = "setsid sleep 600 & sleep 600 & while [ ! -e go ]; do sleep 0.05; done"
    backend.start(make_spec("daemon", ["sh", "-c", script]))
    pids = sandbox_pids(runs_dir, "daemon", at_least=4)
    (sandbox_dir / "lease-1" / "home" / "go").touch()
    wait_finished(backend, "daemon")
    status = backend.status("daemon")
    assert (status.state, status.exit_code) == (RunState.SUCCEEDED, 0)
    wait_for(lambda: not any(process_alive(p) for p in pids), 5, "the daemons to be gone")


def test_refusals_are_clear(backend: LocalBackend, make_spec: MakeSpec) -> None:
    with pytest.raises(BackendError, match="image runs need the ray or a container backend"):
        backend.start(make_spec("img", ["true"], image="pytorch/pytorch:2.4"))
    with pytest.raises(BackendError, match="does not own"):
        backend.start(make_spec("steal", ["true"], indices=(0,)))
    with pytest.raises(BackendError, match="not active"):
        backend.start(make_spec("other", ["true"], lease_id=2))
    with pytest.raises(BackendError, match="one node only"):
        backend.lease_started(3, [LeasedGpus(3, "a", (0,)), LeasedGpus(3, "b", (0,))])
    with pytest.raises(BackendError, match="no run"):
        backend.status("never")


def test_a_command_that_cannot_start_fails_with_the_reason(backend: LocalBackend, make_spec: MakeSpec) -> None:
    backend.start(make_spec("missing", ["/nonexistent/program"]))
    wait_finished(backend, "missing")
    status = backend.status("missing")
    assert status.state is RunState.FAILED
    assert status.message == "could not start: execvp /nonexistent/program: No such file or directory"
    backend.start(make_spec("nowhere", ["true"], cwd="/no/such/folder"))
    wait_finished(backend, "nowhere")
    assert "could not start" in (backend.status("nowhere").message or "")


def test_a_missing_bubblewrap_is_a_clear_refusal(runs_dir: Path, sandbox_dir: Path, make_spec: MakeSpec) -> None:
    b = LocalBackend(runs_dir=runs_dir, sandbox=SandboxPolicy(root=sandbox_dir, bwrap="no-such-bwrap"))
    b.lease_started(1, [LeasedGpus(1, "node-a", (3, 1))])
    with pytest.raises(BackendError, match="apt-get install bubblewrap"):
        b.start(make_spec("r", ["true"]))


def test_runs_outlive_the_backend_and_a_new_one_reattaches(
    runs_dir: Path, policy: SandboxPolicy, make_spec: MakeSpec
) -> None:
    first = get_backend("local", runs_dir=runs_dir, sandbox=policy)
    first.lease_started(1, [LeasedGpus(1, "node-a", (3, 1))])
    spec = make_spec("r", ["sh", "-c", "echo before; while [ ! -e go ]; do sleep 0.05; done; echo after; exit 4"])
    first.start(spec)
    wait_for(lambda: first.read_logs("r")[0] == b"before\n", 10, "the run to start")
    record = supervisor.find_record(runs_dir, "r")
    assert record is not None
    # The supervisor is nobody's child here and in a session of its own: a dying server does not take it.
    with open(f"/proc/{record.supervisor_pid}/stat") as f:
        ppid, _, sid = (int(x) for x in f.read().rsplit(")", 1)[1].split()[1:4])
    assert ppid != os.getpid() and sid == record.supervisor_pid
    first.close()  # closing forgets the runs ...
    with pytest.raises(BackendError, match="no run"):
        first.status("r")
    second = LocalBackend(runs_dir=runs_dir, sandbox=policy)  # ... a new server process finds them again
    with pytest.raises(BackendError, match="no supervisor record for lease 2"):
        second.reattach("r", 2, spec.log_path)
    with pytest.raises(BackendError, match="no supervisor record"):
        second.reattach("never", 1, spec.log_path)
    assert second.reattach("r", 1, spec.log_path).state is RunState.RUNNING
    assert second.read_logs("r")[0] == b"before\n"
    (policy.root / "lease-1" / "home" / "go").touch()
    wait_finished(second, "r")
    status = second.status("r")
    assert (status.state, status.exit_code) == (RunState.FAILED, 4)
    assert second.read_logs("r")[0] == b"before\nafter\n"


def test_a_run_dies_with_its_supervisor_and_says_so(backend: LocalBackend, make_spec: MakeSpec, runs_dir: Path) -> None:
    backend.start(make_spec("orphan", ["sleep", "600"]))
    pids = sandbox_pids(runs_dir, "orphan", at_least=2)
    record = supervisor.find_record(runs_dir, "orphan")
    assert record is not None
    os.kill(record.supervisor_pid, signal.SIGKILL)
    wait_for(lambda: not any(process_alive(p) for p in pids), 5, "the sandbox to die with its supervisor")
    wait_for(lambda: backend.status("orphan").state.finished, 5, "the run to be recorded as ended")
    assert "supervisor stopped unexpectedly" in (backend.status("orphan").message or "")
