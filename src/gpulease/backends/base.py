"""The one interface every execution backend implements, and the values it speaks in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from gpulease.domain.cpu import cpuset


class BackendError(Exception):
    """A backend cannot do what was asked; the message is a sentence an operator understands."""


@dataclass(frozen=True)
class LeasedGpus:
    """What a lease owns on one node: its GPUs and the CPU cores its runs are pinned to.

    A lease spanning several nodes has one of these per node. A GPU lease's `cores` are its GPUs' share of the
    node's cores (empty where the node's CPUs are not described); a CPU lease has cores and no GPU indices.
    """

    lease_id: int
    node: str
    indices: tuple[int, ...]
    cores: tuple[int, ...] = ()  # physical core ids, as in the node's cpuset numbering
    memory_gib: int | None = None  # a CPU lease's memory on the node (None: not leased separately)

    def __post_init__(self) -> None:
        if not self.indices and not self.cores:
            raise ValueError(f"lease {self.lease_id} on node {self.node!r}: no GPU indices and no cores")
        if self.memory_gib is not None and self.memory_gib < 1:
            raise ValueError(f"lease {self.lease_id} on node {self.node!r}: bad memory {self.memory_gib} GiB")
        for what, ids in (("GPU indices", self.indices), ("cores", self.cores)):
            if len(set(ids)) != len(ids) or (ids and min(ids) < 0):
                raise ValueError(f"lease {self.lease_id} on node {self.node!r}: bad {what} {ids}")

    @property
    def visible_devices(self) -> str:
        """The value for CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES, indices in lease order."""
        return ",".join(str(i) for i in self.indices)

    @property
    def cpuset(self) -> str:
        """The cores in Linux list format (`0-3,8`), '' when the lease has no cores pinned on this node."""
        return cpuset(self.cores)


@dataclass(frozen=True)
class RunSpec:
    """One command a customer runs on the GPUs (or, for a CPU lease, the cores) of an active lease."""

    run_id: str
    lease_id: int
    command: list[str]
    env: dict[str, str]
    cwd: str | None
    gpus: list[LeasedGpus]
    log_path: Path
    image: str | None = None
    customer_id: int | None = None  # whose lease: the local backend runs each customer under its own uid
    preemption_deadline: datetime | None = None  # set when the lease has been given notice already


class RunState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def finished(self) -> bool:
        return self in (RunState.SUCCEEDED, RunState.FAILED, RunState.STOPPED)


@dataclass
class RunStatus:
    state: RunState
    exit_code: int | None
    started_at: float | None  # epoch seconds
    ended_at: float | None
    message: str | None
    pid: int | None = None  # local backend: the run's supervisor


@runtime_checkable
class ExecutionBackend(Protocol):
    """Runs commands on leased GPUs and guarantees nothing outlives its lease."""

    name: str

    def lease_started(self, lease_id: int, gpus: list[LeasedGpus]) -> None:
        """Reserve the lease's GPUs in the backend (Ray: create the lease's placement group)."""
        ...

    def lease_ended(self, lease_id: int, grace_s: float) -> None:
        """Stop every run of the lease (SIGTERM, SIGKILL after `grace_s`), then free its resources."""
        ...

    def start(self, spec: RunSpec) -> None:
        """Start a run; raises BackendError when the backend cannot run it."""
        ...

    def status(self, run_id: str) -> RunStatus: ...

    def stop(self, run_id: str, grace_s: float) -> RunStatus:
        """Stop one run (SIGTERM, SIGKILL after `grace_s`) and return its final status."""
        ...

    def read_logs(self, run_id: str, offset: int = 0) -> tuple[bytes, int]:
        """Log bytes from `offset` on, and the offset to ask for next time."""
        ...

    def reattach(self, run_id: str, lease_id: int, log_path: Path) -> RunStatus:
        """Find a run an earlier control-plane process started (after a restart); BackendError if it is lost."""
        ...

    def notify_preemption(self, lease_id: int, deadline: datetime) -> None:
        """Tell the lease's runs that its GPUs are taken back at `deadline` (no-op where a backend cannot).

        The local backend writes the deadline to the file named by GPULEASE_NOTICE_FILE and sends SIGUSR1
        to the runs' processes that handle it; the lease end itself still comes as SIGTERM, then SIGKILL.
        """
        return None

    def close(self) -> None:
        """Let go of the backend; runs keep going where the backend can supervise them without us."""
        ...


def validate_spec(spec: RunSpec) -> None:
    """Checks every backend makes before starting anything."""
    if not spec.command:
        raise BackendError(f"run {spec.run_id}: empty command")
    strings = [*spec.command, *spec.env, *spec.env.values(), spec.cwd or ""]
    if any("\x00" in s for s in strings):
        raise BackendError(f"run {spec.run_id}: a NUL character in its command, environment or folder")
    if not spec.gpus:
        raise BackendError(f"run {spec.run_id}: a run needs the GPUs or cores of an active lease")
    for part in spec.gpus:
        if part.lease_id != spec.lease_id:
            raise BackendError(
                f"run {spec.run_id}: GPUs of lease {part.lease_id} given for a run of lease {spec.lease_id}"
            )
    nodes = [part.node for part in spec.gpus]
    if len(set(nodes)) != len(nodes):
        raise BackendError(f"run {spec.run_id}: node listed twice in {nodes}")


def read_log_file(path: Path, offset: int, limit: int = -1) -> tuple[bytes, int]:
    """Bytes of a run's log file from `offset` (at most `limit`, all by default) and the next offset."""
    try:
        with open(path, "rb") as log:
            if offset >= os.fstat(log.fileno()).st_size:
                return b"", offset  # nothing new (and no seek past what the filesystem allows)
            log.seek(offset)
            data = log.read(limit)
    except FileNotFoundError:
        return b"", offset
    return data, offset + len(data)
