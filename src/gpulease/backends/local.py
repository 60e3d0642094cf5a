"""The embedded default backend: runs are child processes of the control plane on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from gpulease.backends.base import (
    BackendError,
    LeasedGpus,
    RunSpec,
    RunState,
    RunStatus,
    read_log_file,
    validate_spec,
)
from gpulease.backends.process_group import group_members, terminate_group

# What a run inherits from the control plane: enough to find programs and speak UTF-8, nothing secret.
_INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "HOME", "USER", "LOGNAME")
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def run_environment(spec_env: dict[str, str], gpus: LeasedGpus) -> dict[str, str]:
    """The environment of a run: a minimal base, the customer's variables, then the lease's GPUs.

    The GPU variables are written last so a customer cannot widen what the lease owns.
    CUDA_DEVICE_ORDER=PCI_BUS_ID makes CUDA number devices as NVML and nvidia-smi do; CUDA's
    default (fastest first) could map index 0 to a GPU the lease does not own.
    """
    env = {k: os.environ[k] for k in _INHERITED_ENV if k in os.environ}
    env.setdefault("PATH", _DEFAULT_PATH)
    env["PYTHONUNBUFFERED"] = "1"  # so a Python run's log streams line by line
    env.update(spec_env)
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    env["CUDA_VISIBLE_DEVICES"] = gpus.visible_devices
    env["NVIDIA_VISIBLE_DEVICES"] = gpus.visible_devices
    env["GPULEASE_LEASE_ID"] = str(gpus.lease_id)
    return env


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


@dataclass
class _Run:
    spec: RunSpec
    process: subprocess.Popen[bytes]
    started_at: float
    ended_at: float | None = None
    exit_code: int | None = None
    stop_requested: bool = False
    message: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def pgid(self) -> int:
        return self.process.pid  # start_new_session makes the child the leader of its own group

    def status(self) -> RunStatus:
        if self.exit_code is None:
            state = RunState.RUNNING
        elif self.stop_requested:
            state = RunState.STOPPED
        elif self.exit_code == 0:
            state = RunState.SUCCEEDED
        else:
            state = RunState.FAILED
        return RunStatus(state, self.exit_code, self.started_at, self.ended_at, self.message, pid=self.pgid)


class LocalBackend:
    """Runs each command in its own process group with exactly the leased GPUs visible.

    `node`: the name of this machine in the inventory; when set, runs for other nodes are refused.
    `leftover_grace_s`: when a run's main process exits on its own, processes it left behind in its
    group get SIGTERM and, after this long, SIGKILL, so nothing keeps using the GPUs unseen.
    """

    name = "local"

    def __init__(self, node: str | None = None, leftover_grace_s: float = 5.0) -> None:
        self._node = node
        self._leftover_grace_s = leftover_grace_s
        self._lock = threading.Lock()
        self._leases: dict[int, list[LeasedGpus]] = {}
        self._runs: dict[str, _Run] = {}
        self._closed = False

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
        with self._lock:
            # Forget the lease first so no run can start on it while its runs are being stopped.
            self._leases.pop(lease_id, None)
            runs = [r for r in self._runs.values() if r.spec.lease_id == lease_id]
        self._stop_all(runs, grace_s)

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
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if self._closed:
                raise BackendError("the local backend is closed")
            if spec.run_id in self._runs:
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
            # Started under the lock so lease_ended cannot miss a run that is being born.
            with open(spec.log_path, "ab", buffering=0) as log:
                try:
                    process = subprocess.Popen(
                        spec.command,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=spec.cwd,
                        env=run_environment(spec.env, gpus),
                        start_new_session=True,
                        close_fds=True,
                    )
                except OSError as exc:
                    raise BackendError(f"run {spec.run_id} could not start: {exc}") from exc
            run = _Run(spec=spec, process=process, started_at=time.time())
            self._runs[spec.run_id] = run
        threading.Thread(target=self._reap, args=(run,), name=f"reaper-{spec.run_id}", daemon=True).start()

    def status(self, run_id: str) -> RunStatus:
        return self._run(run_id).status()

    def stop(self, run_id: str, grace_s: float) -> RunStatus:
        run = self._run(run_id)
        self._stop_all([run], grace_s)
        return run.status()

    def read_logs(self, run_id: str, offset: int = 0) -> tuple[bytes, int]:
        return read_log_file(self._run(run_id).spec.log_path, offset)

    def close(self) -> None:
        """Stop every run: once the control plane stops watching, nothing may keep running."""
        with self._lock:
            self._closed = True
            runs = list(self._runs.values())
        self._stop_all(runs, grace_s=5.0)

    # -- internals --------------------------------------------------------------------------------

    def _check_node(self, node: str) -> None:
        if self._node is not None and node != self._node:
            raise BackendError(f"the local backend runs on node {self._node!r}, not {node!r}")

    def _run(self, run_id: str) -> _Run:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise BackendError(f"no run {run_id} in the local backend")
        return run

    def _reap(self, run: _Run) -> None:
        code = run.process.wait()
        ended_at = time.time()
        leftovers = group_members(run.pgid)
        if leftovers and not run.stop_requested:
            try:
                terminate_group(run.pgid, self._leftover_grace_s)
            except RuntimeError as exc:
                run.message = str(exc)
        with self._lock:
            run.ended_at = ended_at
            run.exit_code = code
            if run.message is None:
                run.message = describe_exit(code)
                if leftovers and not run.stop_requested:
                    run.message += f"; stopped {len(leftovers)} process(es) it left behind"
        run.done.set()

    def _stop_all(self, runs: list[_Run], grace_s: float) -> None:
        """Stop runs in parallel so a lease's grace period is not multiplied by its number of runs."""
        live = [r for r in runs if not r.done.is_set()]
        for run in live:
            run.stop_requested = True
        errors: list[str] = []

        def stop_one(run: _Run) -> None:
            try:
                terminate_group(run.pgid, grace_s)
            except RuntimeError as exc:
                errors.append(f"run {run.spec.run_id}: {exc}")

        threads = [threading.Thread(target=stop_one, args=(r,), daemon=True) for r in live]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for run in live:
            run.done.wait(timeout=5.0)
        if errors:
            raise BackendError("; ".join(errors))
