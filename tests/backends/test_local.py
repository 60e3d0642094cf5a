"""The local backend with real child processes: GPUs a run sees, exit codes, logs, and lease end."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gpulease.backends import get_backend
from gpulease.backends.base import BackendError, LeasedGpus, RunSpec, RunState
from gpulease.backends.local import LocalBackend
from gpulease.backends.process_group import group_members, process_alive
from tests.conftest import wait_for

PY = sys.executable
MakeSpec = Callable[..., RunSpec]


# A run that ignores SIGTERM and forks a grandchild that ignores it too, then reports both pids.
STUBBORN = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(600)
    """
)


@pytest.fixture
def backend() -> Iterator[LocalBackend]:
    b = LocalBackend()
    b.lease_started(1, [LeasedGpus(1, "node-a", (3, 1))])
    yield b
    b.close()


def pids_from(path: Path) -> list[int]:
    wait_for(path.exists, 10, f"pid file {path}")
    return [int(p) for p in path.read_text().split()]


def wait_finished(backend: LocalBackend, run_id: str, timeout_s: float = 10) -> None:
    wait_for(lambda: backend.status(run_id).state.finished, timeout_s, f"run {run_id} to finish")


def test_run_sees_exactly_the_leased_gpus_in_lease_order(backend: LocalBackend, make_spec: MakeSpec) -> None:
    # The customer tries to widen its GPUs through its own environment; the lease wins.
    spec = make_spec(
        "r-gpus",
        ["sh", "-c", 'echo "cuda=$CUDA_VISIBLE_DEVICES nvidia=$NVIDIA_VISIBLE_DEVICES mine=$MINE"'],
        env={"CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7", "MINE": "kept"},
    )
    backend.start(spec)
    wait_finished(backend, "r-gpus")
    data, _ = backend.read_logs("r-gpus")
    assert data == b"cuda=3,1 nvidia=3,1 mine=kept\n"


def test_environment_is_minimal(backend: LocalBackend, make_spec: MakeSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPULEASE_DATABASE_URL", "postgresql://secret@db/gpulease")
    backend.start(make_spec("r-env", ["sh", "-c", 'echo "db=${GPULEASE_DATABASE_URL:-unset}"']))
    wait_finished(backend, "r-env")
    assert backend.read_logs("r-env")[0] == b"db=unset\n"


def test_exit_codes_and_status_survive_natural_exit(backend: LocalBackend, make_spec: MakeSpec) -> None:
    backend.start(make_spec("ok", ["sh", "-c", "exit 0"]))
    backend.start(make_spec("bad", ["sh", "-c", "echo oops >&2; exit 3"]))
    wait_finished(backend, "ok")
    wait_finished(backend, "bad")
    time.sleep(0.2)  # the status is kept after the process is long gone
    ok, bad = backend.status("ok"), backend.status("bad")
    assert (ok.state, ok.exit_code) == (RunState.SUCCEEDED, 0)
    assert (bad.state, bad.exit_code) == (RunState.FAILED, 3)
    assert bad.started_at is not None and bad.ended_at is not None and bad.ended_at >= bad.started_at
    assert backend.read_logs("bad")[0] == b"oops\n"  # stderr goes to the same log


def test_logs_are_readable_incrementally(backend: LocalBackend, make_spec: MakeSpec, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    script = (
        "import os, time\nprint('first', flush=True)\n"
        f"while not os.path.exists({str(gate)!r}): time.sleep(0.02)\nprint('second')"
    )
    backend.start(make_spec("r-logs", [PY, "-c", script]))
    wait_for(lambda: backend.read_logs("r-logs")[0] == b"first\n", 10, "first line")
    chunk1, offset = backend.read_logs("r-logs")
    assert backend.read_logs("r-logs", offset) == (b"", offset)
    gate.touch()
    wait_finished(backend, "r-logs")
    chunk2, offset2 = backend.read_logs("r-logs", offset)
    assert chunk2 == b"second\n"
    assert offset2 == len(chunk1 + chunk2)


def test_lease_end_kills_runs_that_ignore_sigterm_and_their_grandchildren(
    backend: LocalBackend, make_spec: MakeSpec, tmp_path: Path
) -> None:
    backend.start(make_spec("stubborn", [PY, "-c", STUBBORN, str(tmp_path / "pids")]))
    pids = pids_from(tmp_path / "pids")
    assert all(process_alive(p) for p in pids)
    grace = 1.0
    t0 = time.monotonic()
    backend.lease_ended(1, grace_s=grace)
    elapsed = time.monotonic() - t0
    assert not any(process_alive(p) for p in pids), "a run outlived its lease"
    assert grace <= elapsed < grace + 1.5
    status = backend.status("stubborn")
    assert status.state is RunState.STOPPED
    assert status.exit_code == -9
    assert status.message == "killed by SIGKILL"


def test_nothing_of_a_lease_outlives_it_and_no_run_starts_after_it(backend: LocalBackend, make_spec: MakeSpec) -> None:
    for n in range(3):
        backend.start(make_spec(f"r{n}", ["sh", "-c", "sleep 600 & sleep 600 & wait"]))
    pgids = [backend._runs[f"r{n}"].pgid for n in range(3)]
    wait_for(lambda: all(len(group_members(g)) == 3 for g in pgids), 10, "runs to fork")
    t0 = time.monotonic()
    backend.lease_ended(1, grace_s=2.0)
    assert time.monotonic() - t0 < 2.0  # sh and sleep obey SIGTERM: no need to wait the grace out
    assert all(group_members(g) == [] for g in pgids)
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


def test_processes_left_behind_by_a_finished_run_are_stopped(make_spec: MakeSpec, tmp_path: Path) -> None:
    backend = LocalBackend(leftover_grace_s=0.5)
    backend.lease_started(1, [LeasedGpus(1, "node-a", (3, 1))])
    try:
        backend.start(make_spec("daemon", ["sh", "-c", f"sleep 600 & echo $! > {tmp_path / 'pid'}; exit 0"]))
        (daemon,) = pids_from(tmp_path / "pid")
        wait_finished(backend, "daemon")
        status = backend.status("daemon")
        assert (status.state, status.exit_code) == (RunState.SUCCEEDED, 0)
        assert status.message is not None and "left behind" in status.message
        assert not process_alive(daemon)
    finally:
        backend.close()


def test_refusals_are_clear(backend: LocalBackend, make_spec: MakeSpec) -> None:
    with pytest.raises(BackendError, match="image runs need the ray or a container backend"):
        backend.start(make_spec("img", ["true"], image="pytorch/pytorch:2.4"))
    with pytest.raises(BackendError, match="does not own"):
        backend.start(make_spec("steal", ["true"], indices=(0,)))
    with pytest.raises(BackendError, match="not active"):
        backend.start(make_spec("other", ["true"], lease_id=2))
    with pytest.raises(BackendError, match="one node only"):
        backend.lease_started(3, [LeasedGpus(3, "a", (0,)), LeasedGpus(3, "b", (0,))])
    with pytest.raises(BackendError, match="could not start"):
        backend.start(make_spec("missing", ["/nonexistent/program"]))
    with pytest.raises(BackendError, match="no run"):
        backend.status("never")


def test_close_stops_everything(make_spec: MakeSpec) -> None:
    backend = get_backend("local")
    backend.lease_started(1, [LeasedGpus(1, "node-a", (3, 1))])
    backend.start(make_spec("r", ["sleep", "600"]))
    pid = backend.status("r")  # running
    assert pid.state is RunState.RUNNING
    backend.close()
    assert backend.status("r").state is RunState.STOPPED
