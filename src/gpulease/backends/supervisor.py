"""The supervisor: a small process that holds one sandboxed run and outlives the server that started it.

The server writes a launch file and runs `python -m gpulease.backends.supervisor LAUNCH_FILE`. That process
forks; the child starts a session of its own (no part of the server's process group or terminal, so neither
a crash nor a Ctrl-C of the server reaches it), starts bubblewrap with the run's output going to the run's
log, records what it started in the run's state file and tells its parent, which exits. From then on the
supervisor waits for the sandbox and, when it ends, writes the exit status. A server started later reads the
state file to find the run again; it stops a run by writing the grace into a stop file and sending the
supervisor SIGTERM. bubblewrap's --die-with-parent means a supervisor killed outright takes its run along.

Files of a run, in RUNS/supervised/lease-LEASE/ (RUN is the run id; the log itself is the server's to place):
  RUN.launch.json      the launch request, mode 0600; deleted once read (it holds the customer's environment)
  RUN.state.json       written by the supervisor only, replaced atomically
  RUN.stop             the grace a stop asked for
  RUN.supervisor.log   the supervisor's own errors (the run's output goes to the run's log)
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from gpulease.backends.cpus import (
    CpusetHierarchy,
    enter_cpuset,
    leave_cpuset,
    own_cgroup,
    remove_cpuset,
)
from gpulease.backends.process_group import namespace_members, process_alive, process_start_ticks

RUNNING, FINISHED = "running", "finished"
SUPERVISED = "supervised"
_KILL_WAIT_S = 5.0


class SupervisorError(Exception):
    """The supervisor could not start a run; the message says why."""


@dataclass
class RunRecord:
    """What the state file says about one run."""

    run_id: str
    lease_id: int
    customer_id: int | None
    uid: int
    state: str
    supervisor_pid: int
    supervisor_start_ticks: int | None
    started_at: float
    sandbox_pid: int | None = None  # bubblewrap, as this machine numbers it
    init_pid: int | None = None  # the sandbox's PID 1: when it dies the kernel kills every process inside
    pid_namespace: int | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    message: str | None = None
    stop_requested: bool = False
    cpus: list[int] | None = None  # the CPUs the run is pinned to (None: not pinned)
    cpuset_cgroup: str | None = None  # the run's cpuset cgroup, where one confines it

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    @property
    def finished(self) -> bool:
        return self.state == FINISHED

    def supervisor_alive(self) -> bool:
        """The supervisor that wrote this record still runs (same pid *and* start time: pids are reused)."""
        return process_alive(self.supervisor_pid) and (
            self.supervisor_start_ticks is None
            or process_start_ticks(self.supervisor_pid) == self.supervisor_start_ticks
        )


def supervision_folder(runs_dir: Path, lease_id: int) -> Path:
    """Where the files of a lease's runs live: one folder per lease, so a lease's runs are found by listing it."""
    return runs_dir / SUPERVISED / f"lease-{lease_id}"


def state_path(folder: Path, run_id: str) -> Path:
    return folder / f"{run_id}.state.json"


def stop_path(folder: Path, run_id: str) -> Path:
    return folder / f"{run_id}.stop"


def launch_path(folder: Path, run_id: str) -> Path:
    return folder / f"{run_id}.launch.json"


def read_record(folder: Path, run_id: str) -> RunRecord | None:
    try:
        return RunRecord.from_json(json.loads(state_path(folder, run_id).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def write_record(folder: Path, record: RunRecord) -> None:
    target = state_path(folder, record.run_id)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(record)))
    os.replace(tmp, target)


def records(folder: Path) -> Iterator[RunRecord]:
    """Every run with a state file in `folder` (a lease's supervision folder)."""
    if not folder.is_dir():
        return
    for path in folder.glob("*.state.json"):
        record = read_record(folder, path.name.removesuffix(".state.json"))
        if record is not None:
            yield record


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


# -- the server's side ------------------------------------------------------------------------------


def launch(folder: Path, request: dict[str, Any], timeout_s: float = 60.0) -> RunRecord:
    """Start a supervisor for `request` (see `_supervise` for its keys) whose files go to `folder`; returns once
    the run has started."""
    folder.mkdir(parents=True, exist_ok=True)
    path = launch_path(folder, request["run_id"])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(request, f)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gpulease.backends.supervisor", str(path)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
            close_fds=True,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SupervisorError(f"the run's supervisor did not start: {exc}") from exc
    finally:
        path.unlink(missing_ok=True)
    record = read_record(folder, request["run_id"])
    if done.returncode != 0 or record is None:
        reason = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
        raise SupervisorError(reason)
    return record


def request_stop(folder: Path, record: RunRecord, grace_s: float) -> bool:
    """Ask a run's supervisor to stop it; False when the supervisor is gone (and its run with it)."""
    stop_path(folder, record.run_id).write_text(json.dumps({"grace_s": grace_s}))
    if not record.supervisor_alive():
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(record.supervisor_pid, signal.SIGTERM)
    return True


def settle_lost(folder: Path, record: RunRecord) -> RunRecord:
    """Record the end of a run whose supervisor died without writing it (the sandbox died with it)."""
    if record.pid_namespace is not None:  # --die-with-parent should have done this already
        for pid in namespace_members(record.pid_namespace):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if record.cpuset_cgroup is not None:
        remove_cpuset(Path(record.cpuset_cgroup))
    record.state, record.ended_at = FINISHED, time.time()
    record.message = "its supervisor stopped unexpectedly and the sandbox went with it"
    write_record(folder, record)
    return record


def wait_finished(folder: Path, run_id: str, timeout_s: float, poll_s: float = 0.05) -> RunRecord | None:
    """The run's record once it says finished or its supervisor is gone; the last record after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        record = read_record(folder, run_id)
        if record is None or record.finished:
            return record
        if not record.supervisor_alive():
            return settle_lost(folder, record)
        if time.monotonic() >= deadline:
            return record
        time.sleep(poll_s)


def stop_all(runs_dir: Path, grace_s: float = 1.0) -> list[str]:
    """Stop every run still supervised under `runs_dir` (tests, or an operator decommissioning a machine)."""
    live = [(f, r) for f in runs_dir.glob(f"{SUPERVISED}/lease-*") for r in records(f) if not r.finished]
    for folder, record in live:
        request_stop(folder, record, grace_s)
    for folder, record in live:
        wait_finished(folder, record.run_id, grace_s + _KILL_WAIT_S + 5)
    return [r.run_id for _, r in live]


def find_record(runs_dir: Path, run_id: str) -> RunRecord | None:
    """A run's record when its lease is not at hand (tests, operators)."""
    for path in runs_dir.glob(f"{SUPERVISED}/lease-*/{run_id}.state.json"):
        return read_record(path.parent, run_id)
    return None


# -- the supervisor process ---------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """Entry point: `python -m gpulease.backends.supervisor LAUNCH_FILE`; exits once the run has started."""
    if len(argv) != 2:
        print("usage: python -m gpulease.backends.supervisor LAUNCH_FILE", file=sys.stderr)
        return 2
    path = Path(argv[1])
    ready_r, ready_w = os.pipe()
    if os.fork():  # the parent waits for word that the run started, then exits: its child is orphaned
        os.close(ready_w)
        with os.fdopen(ready_r, "rb") as ready:
            word = ready.read().decode(errors="replace")
        if word.startswith("ok"):
            return 0
        print(word or "the supervisor exited before starting the run", file=sys.stderr)
        return 1
    os.close(ready_r)
    os.setsid()
    os.chdir("/")
    os.umask(0o022)
    # Leave the server's pipes at once, or the server would wait for this process to end.
    devnull = os.open(os.devnull, os.O_RDWR)
    own_log = os.open(path.parent / f"{path.name.removesuffix('.launch.json')}.supervisor.log",
                      os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # fmt: skip
    os.dup2(devnull, 0)
    os.dup2(own_log, 1)
    os.dup2(own_log, 2)
    try:
        return _supervise(path, ready_w)
    except BaseException:
        traceback.print_exc()
        with contextlib.suppress(OSError):
            os.write(ready_w, b"the supervisor failed: " + traceback.format_exc(limit=1).encode())
        return 1


def _supervise(path: Path, ready: int) -> int:
    """Start the sandbox, report, wait for it, record how it ended.

    The launch file holds: run_id, lease_id, customer_id, uid and gid (null: keep ours), bwrap (its path),
    args (bubblewrap's options, then "--" and the command), env, log_path,
    max_processes, grace_s (the default stop grace), cpus (the CPUs to pin the run to, or null) and
    cpuset (a CpusetHierarchy's JSON where the run gets a cpuset cgroup of its own, or null).
    """
    request = json.loads(path.read_text())
    path.unlink(missing_ok=True)
    folder = path.parent
    stop_path(folder, request["run_id"]).unlink(missing_ok=True)

    wake_r, wake_w = os.pipe()
    for fd in (wake_r, wake_w):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wake_w)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        # A Python handler (not SIG_IGN) so the run does not inherit an ignored signal across exec.
        signal.signal(sig, lambda *_: None)

    split = request["args"].index("--")
    options, command = request["args"][:split], request["args"][split:]
    # Options through a file descriptor, not argv: the sandbox's PID 1 is a bubblewrap process whose
    # command line the run can read, and the options name the server's folders.
    args_fd = os.memfd_create("bwrap-args")
    os.write(args_fd, b"".join(a.encode() + b"\0" for a in options))
    os.lseek(args_fd, 0, os.SEEK_SET)
    status_r, status_w = os.pipe()

    uid, gid = request.get("uid"), request.get("gid")
    switch: dict[str, Any] = {}
    if uid is not None and gid is not None:
        switch = {"user": uid, "group": gid, "extra_groups": []}
        # Counted per uid: a fork bomb in one run stops at the customer's own limit.
        resource.setrlimit(resource.RLIMIT_NPROC, (request["max_processes"], request["max_processes"]))
    cpus: list[int] | None = request.get("cpus") or None
    cgroup: Path | None = None
    restore: Callable[[], None] = _nothing
    if cpus is not None:
        try:
            cgroup, restore = _pin(request["run_id"], cpus, request.get("cpuset"))
        except OSError as exc:
            os.write(ready, f"could not pin the run to CPUs {cpus}: {exc}".encode())
            return 1
    with open(request["log_path"], "ab", buffering=0) as log:
        try:
            sandbox = subprocess.Popen(
                [request["bwrap"], "--json-status-fd", str(status_w), "--args", str(args_fd), *command],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=request["env"],
                pass_fds=(args_fd, status_w),
                start_new_session=True,
                **switch,
            )
        except OSError as exc:
            restore()
            if cgroup is not None:
                remove_cpuset(cgroup)
            os.write(ready, f"could not start bubblewrap: {exc}".encode())
            return 1
    restore()  # the supervisor itself goes back where it was; bubblewrap keeps the pinning
    os.close(args_fd)
    os.close(status_w)
    record = RunRecord(
        run_id=request["run_id"],
        lease_id=request["lease_id"],
        customer_id=request.get("customer_id"),
        uid=uid if uid is not None else os.getuid(),
        state=RUNNING,
        supervisor_pid=os.getpid(),
        supervisor_start_ticks=process_start_ticks(os.getpid()),
        started_at=time.time(),
        sandbox_pid=sandbox.pid,
        cpus=cpus,
        cpuset_cgroup=str(cgroup) if cgroup is not None else None,
    )
    # Kept open until the end: bubblewrap writes the exit status there last, and dies of SIGPIPE if closed.
    status = os.fdopen(status_r, "rb")
    first = status.readline()  # bubblewrap writes it once the sandbox exists; nothing if setup failed
    if first.strip():
        info = json.loads(first)
        record.init_pid, record.pid_namespace = info.get("child-pid"), info.get("pid-namespace")
    write_record(folder, record)
    os.write(ready, b"ok")
    os.close(ready)

    pidfd = os.pidfd_open(sandbox.pid)
    while sandbox.poll() is None:
        readable, _, _ = select.select([pidfd, wake_r], [], [])
        if wake_r in readable:
            woke = os.read(wake_r, 512)
            if signal.SIGTERM in woke and not record.stop_requested:
                record.stop_requested = True
                _stop(sandbox, pidfd, record, _stop_grace(folder, record.run_id, request["grace_s"]))
    os.close(pidfd)
    code = sandbox.wait()
    status.close()
    record.state, record.ended_at = FINISHED, time.time()
    if record.stop_requested and code in (128 + signal.SIGTERM, 128 + signal.SIGKILL):
        code = 128 - code  # bubblewrap reports a signal like a shell (128+N); these are the ones we sent
    record.exit_code = code
    record.message = _ending(code, record, Path(request["log_path"]))
    if cgroup is not None:
        remove_cpuset(cgroup)
    write_record(folder, record)
    return 0


def _nothing() -> None:
    return None


def _pin(run_id: str, cpus: list[int], cpuset: dict[str, Any] | None) -> tuple[Path | None, Callable[[], None]]:
    """Pin this process to `cpus` (in a cpuset cgroup of the run's own where `cpuset` names a hierarchy), so
    that bubblewrap, started next, inherits it. Returns the cgroup and a function that puts this process back."""
    before = os.sched_getaffinity(0)
    cgroup: Path | None = None
    home: Path | None = None
    hierarchy = CpusetHierarchy.from_json(cpuset) if cpuset else None
    if hierarchy is not None:
        try:
            home = own_cgroup(hierarchy)
            cgroup = enter_cpuset(hierarchy, f"{run_id}.{os.getpid()}", cpus)
        except OSError as exc:  # the run is still pinned, by affinity alone: say so in the supervisor's log
            print(f"run {run_id}: no cpuset cgroup ({exc}); pinned by CPU affinity only", file=sys.stderr)
            cgroup = None
    try:
        os.sched_setaffinity(0, cpus)
    except OSError:
        if cgroup is not None and hierarchy is not None and home is not None:
            leave_cpuset(hierarchy, home)
            remove_cpuset(cgroup)
        raise

    def restore() -> None:
        if cgroup is not None and hierarchy is not None and home is not None:
            with contextlib.suppress(OSError):
                leave_cpuset(hierarchy, home)
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, before)

    return cgroup, restore


def _stop_grace(folder: Path, run_id: str, default: float) -> float:
    try:
        return float(json.loads(stop_path(folder, run_id).read_text())["grace_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return default


def _stop(sandbox: subprocess.Popen[bytes], pidfd: int, record: RunRecord, grace_s: float) -> None:
    """SIGTERM to every process in the sandbox; after `grace_s`, SIGKILL to its PID 1, which takes the rest."""
    ns = record.pid_namespace
    if ns is not None:
        for pid in namespace_members(ns):
            if pid != record.init_pid:  # bubblewrap's PID 1 would ignore it anyway
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
    if select.select([pidfd], [], [], max(grace_s, 0.0))[0]:
        return
    if record.init_pid is not None and ns is not None and record.init_pid in namespace_members(ns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.init_pid, signal.SIGKILL)
    if select.select([pidfd], [], [], _KILL_WAIT_S)[0]:
        return
    with contextlib.suppress(ProcessLookupError):
        sandbox.kill()


def _ending(code: int, record: RunRecord, log_path: Path) -> str:
    """How the run ended, in words; bubblewrap's own complaint when the command never started."""
    if code == 1 or record.pid_namespace is None:
        last = _last_line(log_path)
        if last.startswith("bwrap: "):
            what = "the sandbox could not be set up" if record.pid_namespace is None else "could not start"
            return f"{what}: {last.removeprefix('bwrap: ')}"
    message = describe_exit(code)
    left = _namespace_left(record.pid_namespace) if record.pid_namespace is not None else []
    if left:
        message += f"; {len(left)} process(es) of the sandbox survived SIGKILL (stuck in the kernel?)"
    return message


def _namespace_left(namespace: int) -> list[int]:
    """Processes still in the sandbox once it ended; the kernel kills them as its PID 1 exits, give it time."""
    deadline = time.monotonic() + _KILL_WAIT_S
    while (left := namespace_members(namespace)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def _last_line(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


if __name__ == "__main__":
    sys.exit(main(sys.argv))
