"""The embedded default backend: runs execute on this machine, each in a bubblewrap sandbox, each held by a
supervisor process that outlives the server.

What a run sees and who it runs as: `sandbox.py`. How it is held, stopped and found again after a restart:
`supervisor.py`. This class keeps the bookkeeping: which leases are active here, which runs belong to them,
and which preemption notices have been given.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gpulease
from gpulease.backends import supervisor
from gpulease.backends.base import (
    BackendError,
    LeasedGpus,
    RunSpec,
    RunState,
    RunStatus,
    read_log_file,
    validate_spec,
)
from gpulease.backends.cpus import CpuPinningError, CpusetHierarchy, find_cpuset_hierarchy, host_cpus
from gpulease.backends.process_group import catches_signal, namespace_members
from gpulease.backends.sandbox import (
    SandboxPolicy,
    SandboxUnavailable,
    lease_folders,
    prepare_lease_folders,
    remove_lease_folders,
    run_environment,
    sandbox_arguments,
    write_notice,
)
from gpulease.backends.supervisor import RunRecord, describe_exit

if TYPE_CHECKING:
    from gpulease.settings import Settings

__all__ = ["LocalBackend", "describe_exit", "local_backend_options"]

NOTICE_SIGNAL = signal.SIGUSR1
_STOP_SLACK_S = 10.0  # beyond the grace: SIGKILL's wait and the supervisor's own bookkeeping


@dataclass(frozen=True)
class _Handle:
    run_id: str
    lease_id: int
    log_path: Path


class LocalBackend:
    """Runs each command in a sandbox of its own with exactly the leased GPUs visible.

    `node`: the name of this machine in the inventory; when set, runs for other nodes are refused.
    `runs_dir`: the server's runs folder; supervisors keep their state files in its `supervised/` folder.
    `sandbox`: how runs are confined (see SandboxPolicy); by default per-lease folders go beside `runs_dir`.
    `stop_grace_s`: the grace a supervisor gives a run it is asked to stop without one (SIGTERM to itself).
    """

    name = "local"

    def __init__(
        self,
        node: str | None = None,
        *,
        runs_dir: Path | None = None,
        sandbox: SandboxPolicy | None = None,
        stop_grace_s: float = 10.0,
    ) -> None:
        self._node = node
        self._runs_dir = (runs_dir or Path(".gpulease") / "runs").resolve()
        self._policy = sandbox or SandboxPolicy(root=self._runs_dir.parent / "sandboxes")
        self._stop_grace_s = stop_grace_s
        self._lock = threading.Lock()
        self._leases: dict[int, list[LeasedGpus]] = {}
        self._runs: dict[str, _Handle] = {}
        self._notices: dict[int, datetime] = {}
        self._closed = False
        self._cpuset: CpusetHierarchy | bool | None = False  # False: not looked for yet

    # -- leases -----------------------------------------------------------------------------------

    def lease_started(self, lease_id: int, gpus: list[LeasedGpus]) -> None:
        if len(gpus) != 1:
            raise BackendError(
                f"lease {lease_id} spans {len(gpus)} nodes; the local backend runs on one node only "
                "(use the ray backend for multi-node leases)"
            )
        self._check_node(gpus[0].node)
        with self._lock:
            self._leases[lease_id] = list(gpus)

    def lease_ended(self, lease_id: int, grace_s: float) -> None:
        """Stop every run of the lease, including runs started by an earlier server process, then delete
        the lease's home and /tmp."""
        with self._lock:
            # Forget the lease first so no run can start on it while its runs are being stopped.
            self._leases.pop(lease_id, None)
            self._notices.pop(lease_id, None)
        live = [r for r in self._records_of_lease(lease_id) if not r.finished]
        failed = self._stop_all(live, grace_s)
        if failed:
            raise BackendError(f"lease {lease_id}: runs still alive after SIGKILL: {', '.join(failed)}")
        remove_lease_folders(self._policy, lease_id)

    def notify_preemption(self, lease_id: int, deadline: datetime) -> None:
        """Write the deadline to the lease's notice file and send SIGUSR1 to the processes of its runs that
        handle SIGUSR1 (a process without a handler would be killed by it, so it only gets the file)."""
        with self._lock:
            self._notices[lease_id] = deadline
        folders = lease_folders(self._policy, lease_id)
        if not folders.base.is_dir():
            return  # no run yet: the first one finds the notice file when it starts
        if not write_notice(folders, deadline):
            return  # given already (a restarted server hears of every notice again)
        for record in self._records_of_lease(lease_id):
            if record.finished or record.pid_namespace is None:
                continue
            for pid in namespace_members(record.pid_namespace):
                if pid != record.init_pid and catches_signal(pid, NOTICE_SIGNAL):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, NOTICE_SIGNAL)

    # -- runs -------------------------------------------------------------------------------------

    def start(self, spec: RunSpec) -> None:
        validate_spec(spec)
        if spec.image is not None:
            raise BackendError(
                f"run {spec.run_id} asks for image {spec.image!r}: image runs need the ray or a "
                "container backend; the local backend runs commands directly on the host"
            )
        if len(spec.gpus) != 1:
            raise BackendError(f"run {spec.run_id}: the local backend runs on one node only")
        gpus = spec.gpus[0]
        self._check_node(gpus.node)
        try:
            bwrap = self._policy.bwrap_path()
        except SandboxUnavailable as exc:
            raise BackendError(str(exc)) from None
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if self._closed:
                raise BackendError("the local backend is closed")
            folder = self._folder(spec.lease_id)
            if spec.run_id in self._runs or supervisor.read_record(folder, spec.run_id) is not None:
                raise BackendError(f"run {spec.run_id} was already started")
            leased = self._leases.get(spec.lease_id)
            if leased is None:
                raise BackendError(f"run {spec.run_id}: lease {spec.lease_id} is not active")
            owned = next((g for g in leased if g.node == gpus.node), None)
            if owned is None or not set(gpus.indices) <= set(owned.indices):
                raise BackendError(
                    f"run {spec.run_id} asks for GPUs {gpus.indices} on {gpus.node!r}, "
                    f"which lease {spec.lease_id} does not own"
                )
            if not set(gpus.cores) <= set(owned.cores):
                raise BackendError(
                    f"run {spec.run_id} asks for cores {gpus.cpuset} on {gpus.node!r}, "
                    f"which lease {spec.lease_id} does not own"
                )
            if not gpus.cores and owned.cores:  # a run names no cores: it gets the lease's on this node
                gpus = replace(gpus, cores=owned.cores)
            try:
                cpus = host_cpus(gpus.cores) if gpus.cores else ()
            except CpuPinningError as exc:
                raise BackendError(f"run {spec.run_id}: {exc}") from None
            try:
                folders = prepare_lease_folders(self._policy, spec.lease_id, spec.customer_id)
            except SandboxUnavailable as exc:
                raise BackendError(str(exc)) from None
            deadline = spec.preemption_deadline or self._notices.get(spec.lease_id)
            if deadline is not None:
                write_notice(folders, deadline)
            identity = self._policy.identity(spec.customer_id)
            args = sandbox_arguments(self._policy, folders, gpus, spec.command, spec.cwd)
            request = {
                "run_id": spec.run_id,
                "lease_id": spec.lease_id,
                "customer_id": spec.customer_id,
                "uid": identity[0] if identity else None,
                "gid": identity[1] if identity else None,
                "bwrap": bwrap,
                "args": args,
                "env": run_environment(spec.env, gpus, spec.run_id, cpus=cpus),
                "cpus": list(cpus) or None,
                "cpuset": hierarchy.to_json() if cpus and (hierarchy := self._cpuset_hierarchy()) else None,
                "log_path": str(spec.log_path.resolve()),
                "max_processes": self._policy.max_processes,
                "grace_s": self._stop_grace_s,
            }
            # Started under the lock so lease_ended cannot miss a run that is being born.
            try:
                supervisor.launch(folder, request)
            except supervisor.SupervisorError as exc:
                raise BackendError(f"run {spec.run_id} could not start: {exc}") from None
            self._runs[spec.run_id] = _Handle(spec.run_id, spec.lease_id, spec.log_path.resolve())

    def status(self, run_id: str) -> RunStatus:
        return _status(self._record(run_id))

    def stop(self, run_id: str, grace_s: float) -> RunStatus:
        record = self._record(run_id)
        if not record.finished:
            self._stop_all([record], grace_s)
        return self.status(run_id)

    def read_logs(self, run_id: str, offset: int = 0) -> tuple[bytes, int]:
        return read_log_file(self._handle(run_id).log_path, offset)

    def reattach(self, run_id: str, lease_id: int, log_path: Path) -> RunStatus:
        """Take over a run an earlier server process started, from its supervisor's state file."""
        record = supervisor.read_record(self._folder(lease_id), run_id)
        if record is None:
            raise BackendError(f"run {run_id}: no supervisor record for lease {lease_id} in {self._runs_dir}")
        with self._lock:
            self._runs[run_id] = _Handle(run_id, lease_id, log_path.resolve())
        return self.status(run_id)

    def close(self) -> None:
        """Let go: the runs keep going under their supervisors, for the next server process to re-attach to.
        (Stopping what must stop is the lease's end, not the server's.)"""
        with self._lock:
            self._closed = True
            self._runs.clear()

    # -- internals --------------------------------------------------------------------------------

    def _cpuset_hierarchy(self) -> CpusetHierarchy | None:
        """Where runs get cpuset cgroups (looked for once, at the first pinned run); None: affinity only."""
        if self._cpuset is False:
            self._cpuset = find_cpuset_hierarchy(self._policy.cpuset_cgroup)
        return self._cpuset if isinstance(self._cpuset, CpusetHierarchy) else None

    def _check_node(self, node: str) -> None:
        if self._node is not None and node != self._node:
            raise BackendError(f"the local backend runs on node {self._node!r}, not {node!r}")

    def _handle(self, run_id: str) -> _Handle:
        with self._lock:
            handle = self._runs.get(run_id)
        if handle is None:
            raise BackendError(f"no run {run_id} in the local backend")
        return handle

    def _folder(self, lease_id: int) -> Path:
        return supervisor.supervision_folder(self._runs_dir, lease_id)

    def _record(self, run_id: str) -> RunRecord:
        folder = self._folder(self._handle(run_id).lease_id)
        record = supervisor.read_record(folder, run_id)
        if record is None:
            raise BackendError(f"run {run_id}: its supervisor's state file is gone from {folder}")
        if not record.finished and not record.supervisor_alive():
            record = supervisor.settle_lost(folder, record)
        return record

    def _records_of_lease(self, lease_id: int) -> list[RunRecord]:
        """Every run of the lease on this machine, whether this process started it or an earlier server
        process (or another one sharing this machine) did."""
        return list(supervisor.records(self._folder(lease_id)))

    def _stop_all(self, records: list[RunRecord], grace_s: float) -> list[str]:
        """Stop runs in parallel so a lease's grace is not multiplied by its number of runs; returns the
        runs that are still alive afterwards."""
        asked = [r for r in records if supervisor.request_stop(self._folder(r.lease_id), r, grace_s)]
        for record in records:
            if record not in asked:
                supervisor.settle_lost(self._folder(record.lease_id), record)
        alive = []
        for record in asked:
            final = supervisor.wait_finished(self._folder(record.lease_id), record.run_id, grace_s + _STOP_SLACK_S)
            if final is not None and not final.finished:
                alive.append(record.run_id)
        return alive


def local_backend_options(settings: Settings) -> dict[str, Any]:
    """LocalBackend's keyword arguments from the server's settings."""
    hidden = [settings.data_dir, settings.runs_dir, settings.sandboxes_dir, Path(gpulease.__file__).parent]
    if settings.db_url.startswith("sqlite:///"):
        hidden.append(Path(settings.db_url.removeprefix("sqlite:///")).parent)
    policy = SandboxPolicy(
        root=settings.sandboxes_dir.resolve(),
        uid_base=settings.sandbox_uid_base,
        network=settings.sandbox_network,
        device_dir=settings.sandbox_device_dir,
        ro_paths=tuple(p.resolve() for p in settings.sandbox_ro_paths),
        hidden=tuple(p.resolve() for p in hidden),
        max_processes=settings.sandbox_max_processes,
        cpuset_cgroup=settings.sandbox_cpuset_cgroup,
    )
    return {"runs_dir": settings.runs_dir, "sandbox": policy, "stop_grace_s": settings.stop_grace_s}


def _status(record: RunRecord) -> RunStatus:
    if not record.finished:
        state = RunState.RUNNING
    elif record.stop_requested:
        state = RunState.STOPPED
    elif record.exit_code == 0:
        state = RunState.SUCCEEDED
    else:
        state = RunState.FAILED
    return RunStatus(
        state, record.exit_code, record.started_at, record.ended_at, record.message, pid=record.supervisor_pid
    )
