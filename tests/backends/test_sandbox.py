"""What a sandboxed local run cannot do: read the server's data, see or signal other tenants or the server,
write outside its folders, see GPUs its lease does not own; and the preemption notice it does get."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gpulease.backends import supervisor
from gpulease.backends.base import LeasedGpus, RunSpec, RunState
from gpulease.backends.local import LocalBackend, local_backend_options
from gpulease.backends.process_group import namespace_members, process_alive
from gpulease.backends.sandbox import DEFAULT_UID_BASE
from gpulease.settings import Settings
from tests.conftest import needs_bwrap, wait_for

pytestmark = needs_bwrap
MakeSpec = Callable[..., RunSpec]
AS_ROOT = os.geteuid() == 0


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A server data folder with a database holding a secret, as `gpulease serve` would have it (in a folder
    others may search, so that binding its parent works as the customer's uid)."""
    srv = Path(tempfile.mkdtemp(prefix="gpulease-srv-"))
    srv.chmod(0o755)
    data = srv / ".gpulease"
    (data / "runs").mkdir(parents=True)
    (data / "gpulease.db").write_text("key hashes, KYC data, audit log\n")
    yield data
    shutil.rmtree(srv, ignore_errors=True)


@pytest.fixture
def settings(data_dir: Path, sandbox_dir: Path) -> Settings:
    # The operator binds the folder holding the data folder read-only, by mistake: it must stay hidden.
    return Settings(
        data_dir=data_dir, sandbox_dir=sandbox_dir, sandbox_ro_paths=(data_dir.parent,), sandbox_max_processes=64
    )


@pytest.fixture
def backend(settings: Settings) -> Iterator[LocalBackend]:
    b = LocalBackend(**local_backend_options(settings))  # built the way the server builds it
    b.lease_started(1, [LeasedGpus(1, "node-a", (3, 1))])
    b.lease_started(2, [LeasedGpus(2, "node-a", (0,))])
    yield b
    b.close()
    supervisor.stop_all(settings.runs_dir)


def run(backend: LocalBackend, make_spec: MakeSpec, run_id: str, script: str, **kw: object) -> tuple[RunState, str]:
    """Run `script` with sh in the sandbox until it ends; its final state and log."""
    backend.start(make_spec(run_id, ["sh", "-c", script], **kw))
    wait_for(lambda: backend.status(run_id).state.finished, 20, f"run {run_id} to finish")
    return backend.status(run_id).state, backend.read_logs(run_id)[0].decode()


def sandbox_pids(settings: Settings, run_id: str, at_least: int) -> list[int]:
    found: list[int] = []

    def enough() -> bool:
        record = supervisor.find_record(settings.runs_dir, run_id)
        found[:] = namespace_members(record.pid_namespace) if record and record.pid_namespace else []
        return len(found) >= at_least

    wait_for(enough, 10, f"run {run_id}'s processes")
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Uid:")).split()[1])


def test_a_run_cannot_read_the_database_or_the_data_folder(
    backend: LocalBackend, make_spec: MakeSpec, data_dir: Path, settings: Settings
) -> None:
    db = data_dir / "gpulease.db"
    state, log = run(backend, make_spec, "peek", f"cat {db}")
    assert state is RunState.FAILED  # the contract: cat of the database exits non-zero
    assert log == f"cat: {db}: No such file or directory\n"  # cat ran, and found nothing
    # the folder above is visible (the operator asked for it), the data folder in it is an empty cover
    state, log = run(backend, make_spec, "look", f"ls -A {data_dir.parent}; echo ---; ls -A {data_dir}; echo ---; ls /")
    above, inside, root = log.split("---\n")
    assert above.split() == [".gpulease"] and inside == ""
    assert sorted(root.split()) == ["bin", "dev", "etc", "home", "lib", "lib64", "proc", "run", "sbin", "tmp", "usr"]
    # nor the code of the server, nor its settings in the environment
    import gpulease

    state, log = run(backend, make_spec, "code", f"ls -A {Path(gpulease.__file__).parent} 2>/dev/null | wc -l; env")
    assert log.split()[0] == "0" and "GPULEASE_DATA_DIR" not in log and "DATABASE" not in log


@pytest.mark.skipif(not AS_ROOT, reason="a per-customer uid needs a server running as root")
def test_each_customer_runs_under_its_own_uid(backend: LocalBackend, make_spec: MakeSpec, settings: Settings) -> None:
    _state, log = run(backend, make_spec, "who", "id -u; id -G; id -un", customer_id=7)
    assert log.split() == [str(DEFAULT_UID_BASE + 7)] * 2 + ["customer"]
    backend.start(make_spec("other", ["sleep", "600"], lease_id=2, indices=(0,), customer_id=8))
    pids = sandbox_pids(settings, "other", at_least=2)
    assert {uid_of(p) for p in pids} == {DEFAULT_UID_BASE + 8}


def test_a_run_cannot_see_or_signal_other_tenants_or_the_server(
    backend: LocalBackend, make_spec: MakeSpec, settings: Settings
) -> None:
    backend.start(make_spec("victim", ["sleep", "600"], lease_id=2, indices=(0,), customer_id=8))
    victim = sandbox_pids(settings, "victim", at_least=2)
    server = os.getpid()
    attack = (
        "ls /proc | grep -E '^[0-9]+$' | tr '\\n' ' '; echo; "
        + "".join(f"kill -9 {p} 2>/dev/null && echo killed {p}; " for p in [*victim, server])
        + "kill -9 -1 2>/dev/null; echo survived-own-kill-all"
    )
    _state, log = run(backend, make_spec, "attacker", attack, customer_id=7)
    visible = {int(p) for p in log.splitlines()[0].split()}
    assert max(visible) < 10 and not visible & {*victim, server}, f"the run sees others' processes: {visible}"
    assert "killed" not in log
    assert all(process_alive(p) for p in victim) and process_alive(server)
    assert backend.status("victim").state is RunState.RUNNING


def test_a_run_writes_only_its_home_and_tmp(backend: LocalBackend, make_spec: MakeSpec, sandbox_dir: Path) -> None:
    targets = ["/usr/x", "/etc/x", "/x", "/run/gpulease/x", "/etc/passwd", "/dev/x", "/proc/x", "/home/x"]
    script = "".join(f"(echo hi > {t}) 2>/dev/null && echo wrote {t}; " for t in targets)
    script += "echo mine > $HOME/out && echo mine > /tmp/out && echo shm > /dev/shm/out && echo wrote-own"
    state, log = run(backend, make_spec, "writer", script)
    assert state is RunState.SUCCEEDED
    assert log.split() == ["wrote-own"]
    home, tmp = sandbox_dir / "lease-1" / "home", sandbox_dir / "lease-1" / "tmp"
    assert (home / "out").read_text() == (tmp / "out").read_text() == "mine\n"
    if AS_ROOT:
        assert {os.stat(p).st_uid for p in (home, tmp, home / "out")} == {DEFAULT_UID_BASE + 7}
        assert oct(home.stat().st_mode & 0o777) == "0o700"


def test_home_and_tmp_are_per_lease(backend: LocalBackend, make_spec: MakeSpec) -> None:
    run(backend, make_spec, "w", "echo one > /tmp/shared; echo one > $HOME/shared")
    _state, log = run(backend, make_spec, "same-lease", "cat /tmp/shared $HOME/shared")
    assert log == "one\none\n"
    _state, log = run(backend, make_spec, "other-lease", "ls -A /tmp $HOME", lease_id=2, indices=(0,))
    assert "shared" not in log


def test_a_run_sees_only_its_leased_gpu_devices(make_spec: MakeSpec, settings: Settings, sandbox_dir: Path) -> None:
    fake = Path(tempfile.mkdtemp(prefix="gpulease-fake-dev-"))  # never the host's /dev
    try:
        fake.chmod(0o755)
        try:
            for name in [f"nvidia{i}" for i in range(8)] + ["nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"]:
                os.mknod(fake / name, 0o666 | 0o020000, os.makedev(1, 3))  # character devices like /dev/null
        except PermissionError:
            pytest.skip("creating device nodes needs CAP_MKNOD")
        b = LocalBackend(**local_backend_options(settings.model_copy(update={"sandbox_device_dir": fake})))
        b.lease_started(1, [LeasedGpus(1, "node-a", (3, 1))])
        try:
            _state, log = run(b, make_spec, "devs", "ls /dev | grep nvidia; test -c /dev/nvidia3 && echo char")
        finally:
            b.close()
            supervisor.stop_all(settings.runs_dir)
        assert log.split() == ["nvidia-uvm", "nvidia-uvm-tools", "nvidia1", "nvidia3", "nvidiactl", "char"]
    finally:
        shutil.rmtree(fake)


def test_no_network_and_no_nested_namespaces_by_default(backend: LocalBackend, make_spec: MakeSpec) -> None:
    script = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; unshare -U true 2>/dev/null || echo no-userns"
    _state, log = run(backend, make_spec, "net", script)
    assert log.split() == ["lo", "no-userns"]


@pytest.mark.skipif(not AS_ROOT, reason="the process limit is set on the customer's own uid (root servers)")
def test_a_fork_bomb_stops_at_the_customers_process_limit(backend: LocalBackend, make_spec: MakeSpec) -> None:
    state, log = run(backend, make_spec, "bomb", "i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done")
    assert state is RunState.FAILED and "fork" in log.lower()


def test_preemption_notice_reaches_the_run(backend: LocalBackend, make_spec: MakeSpec, settings: Settings) -> None:
    # One process handles SIGUSR1 and reads the notice; a child without a handler must not be killed by it.
    script = (
        "trap 'echo notice $(cat $GPULEASE_NOTICE_FILE)' USR1; "
        "sleep 600 & echo ready; while [ ! -e $HOME/stop ]; do sleep 0.05; done; echo bye"
    )
    backend.start(make_spec("notified", ["sh", "-c", script]))
    wait_for(lambda: b"ready" in backend.read_logs("notified")[0], 10, "the run to start")
    sleepers: list[int] = []

    def sleeper_started() -> bool:  # forked before "ready", but it may not have exec'd sleep yet
        sleepers[:] = [p for p in sandbox_pids(settings, "notified", at_least=3) if cmdline(p) == "sleep 600"]
        return bool(sleepers)

    wait_for(sleeper_started, 10, "the run's child to start")
    sleeper = sleepers[0]
    deadline = datetime(2026, 11, 2, 10, 30, tzinfo=UTC)
    backend.notify_preemption(1, deadline)
    wait_for(lambda: b"notice" in backend.read_logs("notified")[0], 10, "the run to hear the notice")
    assert b"notice 2026-11-02T10:30:00+00:00\n" in backend.read_logs("notified")[0]
    assert process_alive(sleeper), "SIGUSR1 killed a process that has no handler for it"
    backend.notify_preemption(1, deadline)  # heard again (a restarted server): not signalled twice
    # A run started after the notice finds the file at once.
    _state, log = run(backend, make_spec, "late", "cat $GPULEASE_NOTICE_FILE")
    assert log == "2026-11-02T10:30:00+00:00\n"
    (settings.sandboxes_dir / "lease-1" / "home" / "stop").touch()
    wait_for(lambda: backend.status("notified").state.finished, 10, "the run to end")
    assert backend.read_logs("notified")[0].count(b"notice") == 1
