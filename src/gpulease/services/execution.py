"""Runs on leased GPUs: submit, watch, stream logs, and stop everything a lease no longer covers.

The store says what should be running; `reconcile` makes the backends agree with it. It runs after every
tick and after every lease change, so a run never outlives its lease by more than a tick plus the grace.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpulease import audit
from gpulease.backends import BackendError, ExecutionBackend, LeasedGpus, RunSpec, RunState, get_backend
from gpulease.backends.base import read_log_file
from gpulease.backends.local import local_backend_options
from gpulease.backends.process_group import process_start_ticks, terminate_group
from gpulease.domain.leases import LeaseState
from gpulease.services import limits, slurm_mirror
from gpulease.services.context import Actor, Role
from gpulease.services.cpu_capacity import held_cores
from gpulease.services.errors import Conflict, InvalidRequest, NotFound
from gpulease.services.leases import get_lease, held_allocations
from gpulease.services.permissions import Permission, require
from gpulease.services.transitions import close_ending
from gpulease.services.work import Work
from gpulease.settings import Settings
from gpulease.store.db import Store
from gpulease.store.models import Lease, Run

log = logging.getLogger("gpulease.execution")

RUNNABLE = (LeaseState.ACTIVE.value,)
FINISHED = {RunState.SUCCEEDED.value, RunState.FAILED.value, RunState.STOPPED.value}


def leased_gpus(lease: Lease) -> list[LeasedGpus]:
    """Per node, the GPUs the lease holds and the cores its runs are pinned to: a CPU lease's own cores (no GPUs),
    or a GPU lease's GPUs' share of a node whose CPUs are described (`cpu_capacity.held_cores`)."""
    by_node: dict[str, list[int]] = defaultdict(list)
    held = held_allocations(lease)
    for a in held:
        by_node[a.node.name].append(a.gpu_index)
    cores = {h.node: h.cores for h in held_cores(lease, held)}
    return [
        LeasedGpus(lease.id, node, tuple(sorted(by_node.get(node, ()))), cores.get(node, ()))
        for node in sorted(set(by_node) | set(cores))
    ]


def backend_kind(lease: Lease) -> str:
    if lease.resource == "cpu":
        kinds = {a.node.cluster.backend for a in lease.cpu_allocations}
    else:
        kinds = {a.node.cluster.backend for a in held_allocations(lease) or lease.allocations}
    return kinds.pop() if len(kinds) == 1 else "local"


def run_request(
    command: list[str], env: dict[str, str], cwd: str | None, image: str | None
) -> tuple[list[str], dict[str, str], str | None, str | None]:
    """A run's command, environment, folder and image within bounds, or InvalidRequest before anything starts.

    They go to the operating system as they are: anything but NUL (which no argv or environment string can
    carry), so a run can never be stored and then fail to start.
    """
    if not command or not all(isinstance(c, str) and c for c in command):
        raise InvalidRequest("command must be a non-empty list of non-empty strings")
    if len(command) > limits.COMMAND_ARGS_MAX:
        raise InvalidRequest(f"a command has at most {limits.COMMAND_ARGS_MAX} arguments")
    for i, part in enumerate(command):
        limits.os_string(part, what=f"command[{i}]", max_len=limits.ARG_MAX)
    if len(env) > limits.ENV_VARS_MAX:
        raise InvalidRequest(f"at most {limits.ENV_VARS_MAX} environment variables")
    for name, value in env.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidRequest("env maps names to string values")
        if re.fullmatch(limits.ENV_NAME, name) is None or len(name) > limits.ENV_NAME_MAX:
            raise InvalidRequest(f"env: {limits.MEANING[limits.ENV_NAME]}, at most {limits.ENV_NAME_MAX} characters")
        limits.os_string(name, what="an environment variable's name", max_len=limits.ENV_NAME_MAX)
        limits.os_string(value, what=f"env[{name[:40]!r}]", max_len=limits.ARG_MAX)
    if cwd is not None:
        limits.os_string(cwd, what="cwd", max_len=limits.CWD_MAX)
    image = limits.text(image, what="image", max_len=limits.IMAGE_MAX)
    return command, env, cwd, image


class ExecutionHost(Protocol):
    """What the executor needs of the process that runs it (the Runtime): the store, the settings, the clock,
    and units of work for the lease changes it makes."""

    store: Store
    settings: Settings

    def clock(self) -> datetime: ...

    def work(self) -> AbstractContextManager[Work]: ...


class Executor:
    def __init__(self, runtime: ExecutionHost) -> None:
        self.rt = runtime
        self._backends: dict[str, ExecutionBackend] = {}
        self._started: set[int] = set()  # leases whose GPUs the backends know about
        self._lock = threading.RLock()

    def backend(self, kind: str) -> ExecutionBackend:
        with self._lock:
            if kind not in self._backends:
                options: dict[str, Any] = {}
                if kind == "ray":
                    st = self.rt.settings
                    if not st.ray_address:
                        raise BackendError("this cluster uses the ray backend but GPULEASE_RAY_ADDRESS is not set")
                    options.update(
                        address=st.ray_address, dashboard_url=st.ray_dashboard_url, stop_grace_s=st.stop_grace_s
                    )
                elif kind == "local":
                    options.update(local_backend_options(self.rt.settings))
                elif kind == "slurm":
                    options.update(slurm_mirror.backend_options(self.rt.settings))
                self._backends[kind] = get_backend(kind, **options)
            return self._backends[kind]

    # -- runs ---------------------------------------------------------------------------------------

    def submit(
        self,
        actor: Actor,
        *,
        lease_id: int,
        command: list[str],
        env: dict[str, str],
        cwd: str | None = None,
        image: str | None = None,
    ) -> Run:
        require(actor, Permission.RUN_WORK)
        command, env, cwd, image = run_request(command, env, cwd, image)
        run_id = uuid.uuid4().hex[:16]
        log_path = (self.rt.settings.runs_dir / f"{run_id}.log").resolve()
        with self.rt.work() as w:
            s = w.session
            lease = get_lease(w, actor=actor, lease_id=lease_id)
            if actor.role is Role.CUSTOMER and lease.customer_id != actor.customer_id:
                raise NotFound(f"no lease with id {lease_id}")
            if lease.state not in RUNNABLE:
                when = ""
                if lease.state == LeaseState.SCHEDULED.value:
                    when = f" (it starts at {lease.starts_at.isoformat().replace('+00:00', 'Z')})"
                raise Conflict(f"lease {lease_id} is {lease.state}{when}; work runs only inside an active lease")
            now = self.rt.clock()
            kind = backend_kind(lease)
            gpus = leased_gpus(lease)
            customer_id, deadline = lease.customer_id, lease.preempt_at
            run = Run(
                id=run_id,
                lease_id=lease.id,
                customer_id=lease.customer_id,
                command=command,
                env=env,
                cwd=cwd,
                image=image,
                backend=kind,
                state=RunState.PENDING.value,
                log_path=str(log_path),
                created_at=now,
            )
            s.add(run)
            audit.append(
                s,
                at=now,
                actor=actor.name,
                action="run.submitted",
                subject=f"run:{run_id}",
                data={"lease_id": lease.id, "command": command, "backend": kind},
            )
        try:
            backend = self.backend(kind)
            self._ensure_lease(backend, lease_id, gpus)
            backend.start(
                RunSpec(
                    run_id=run_id,
                    lease_id=lease_id,
                    command=command,
                    env=env,
                    cwd=cwd,
                    gpus=gpus,
                    log_path=log_path,
                    image=image,
                    customer_id=customer_id,
                    preemption_deadline=deadline,
                )
            )
        except BackendError as e:
            self._finish(run_id, RunState.FAILED.value, None, str(e))
            raise InvalidRequest(str(e)) from None
        except Exception as e:  # a bug: the run must still not stay pending for ever
            self._finish(run_id, RunState.FAILED.value, None, f"the run could not be started: {type(e).__name__}")
            raise
        pid = backend.status(run_id).pid
        with self.rt.store.transaction() as s:
            row = s.get(Run, run_id)
            assert row is not None
            if row.state == RunState.PENDING.value:
                row.state, row.started_at = RunState.RUNNING.value, self.rt.clock()
            if pid is not None:
                row.pid, row.pid_start_ticks = pid, process_start_ticks(pid)
            return row

    def _ensure_lease(self, backend: ExecutionBackend, lease_id: int, gpus: list[LeasedGpus]) -> None:
        with self._lock:
            if lease_id not in self._started:
                backend.lease_started(lease_id, gpus)
                self._started.add(lease_id)

    def _finish(self, run_id: str, state: str, exit_code: int | None, message: str | None) -> None:
        with self.rt.store.transaction() as s:
            row = s.get(Run, run_id)
            if row is None or row.state in FINISHED:
                return
            now = self.rt.clock()
            row.state, row.exit_code, row.message, row.ended_at = state, exit_code, message, now
            audit.append(
                s,
                at=now,
                actor="executor",
                action="run.finished",
                subject=f"run:{run_id}",
                data={"state": state, "exit_code": exit_code, "message": message},
            )

    def get(self, actor: Actor, *, lease_id: int, run_id: str) -> Run:
        if re.fullmatch(limits.RUN_ID_PATTERN, run_id) is None:
            raise NotFound(f"no run {run_id[:40]!r} on lease {lease_id}")
        self.refresh(run_id)
        with self.rt.work() as w:
            get_lease(w, actor=actor, lease_id=lease_id)
            run = w.session.get(Run, run_id)
            if run is None or run.lease_id != lease_id:
                raise NotFound(f"no run {run_id} on lease {lease_id}")
            return run

    def runs_of(self, actor: Actor, *, lease_id: int) -> list[Run]:
        with self.rt.work() as w:
            get_lease(w, actor=actor, lease_id=lease_id)
            return list(w.session.scalars(select(Run).where(Run.lease_id == lease_id).order_by(Run.created_at)))

    def refresh(self, run_id: str) -> None:
        """Copy a backend's view of a run into the store once the run has finished."""
        with self.rt.store.transaction() as s:
            run = s.get(Run, run_id)
            if run is None or run.state in FINISHED:
                return
            kind = run.backend
        try:
            st = self.backend(kind).status(run_id)
        except BackendError:
            return
        if st.state.finished:
            self._finish(run_id, st.state.value, st.exit_code, st.message)

    def read_logs(self, actor: Actor, *, lease_id: int, run_id: str, offset: int) -> tuple[bytes, int, bool]:
        limits.whole(offset, what="offset", low=0, high=limits.LOG_OFFSET_MAX)
        run = self.get(actor, lease_id=lease_id, run_id=run_id)
        finished = run.state in FINISHED
        try:
            data, new = self.backend(run.backend).read_logs(run_id, offset)
        except BackendError:
            data, new = read_log_file(Path(run.log_path), offset, limit=1 << 20)  # e.g. after a restart of the server
        return data, new, finished

    # -- reconciliation -------------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """After a restart: re-attach to the local runs their supervisors kept going, stop those whose lease
        is no longer active, and give up on runs no supervisor holds. Returns the runs it stopped."""
        with self.rt.store.transaction() as s:
            orphans = s.execute(
                select(Run.id, Run.lease_id, Run.log_path, Run.pid, Run.pid_start_ticks, Lease.state, Lease.preempt_at)
                .join(Lease, Run.lease_id == Lease.id)
                .where(Run.state.notin_(FINISHED), Run.backend == "local")
            ).all()
            active = {row.lease_id for row in orphans if row.state in RUNNABLE}
            gpus = {lid: leased_gpus(lease) for lid in active if (lease := s.get(Lease, lid)) is not None}
        local = self.backend("local")
        stopped: list[str] = []
        ended: dict[int, list[str]] = defaultdict(list)
        for run_id, lease_id, log_path, pid, ticks, state, preempt_at in orphans:
            try:
                status = local.reattach(run_id, lease_id, Path(log_path))
            except BackendError:
                # No supervisor record: a run started before supervisors existed, held by a dead server.
                if pid is not None and ticks is not None and process_start_ticks(pid) == ticks:
                    terminate_group(pid, self.rt.settings.stop_grace_s)
                self._finish(
                    run_id,
                    RunState.FAILED.value,
                    None,
                    "the control plane restarted and stopped this run, which it no longer supervised",
                )
                stopped.append(run_id)
                continue
            if status.state.finished:
                self._finish(run_id, status.state.value, status.exit_code, status.message)
            elif state not in RUNNABLE:
                ended[lease_id].append(run_id)
            else:
                try:
                    self._ensure_lease(local, lease_id, gpus[lease_id])
                    if preempt_at is not None:
                        local.notify_preemption(lease_id, preempt_at)
                except BackendError as e:
                    log.warning("run %s re-attached, but its lease %s: %s", run_id, lease_id, e)
        for lease_id, run_ids in ended.items():
            try:
                local.lease_ended(lease_id, self.rt.settings.stop_grace_s)
            except BackendError as e:
                log.error("lease %s ended while the control plane was down; stopping its runs: %s", lease_id, e)
            for run_id in run_ids:
                st = local.status(run_id)
                message = "its lease ended while the control plane was down"
                self._finish(run_id, RunState.STOPPED.value, st.exit_code, f"{message}; {st.message}")
                stopped.append(run_id)
        return stopped

    def notify_preemption(self, lease_id: int, deadline: datetime) -> None:
        """Tell the runs of a lease given notice (after the notice committed) when their GPUs are taken back."""
        with self._lock:
            backends = list(self._backends.values())
        for backend in backends:
            try:
                backend.notify_preemption(lease_id, deadline)
            except Exception:  # the notice is recorded; a backend that fails must not fail the request
                log.exception("preemption notice for lease %s did not reach backend %s", lease_id, backend.name)

    def stop_lease_runs(self, lease_id: int, message: str) -> None:
        """Stop the runs of a lease whose GPUs are gone (its node failed) and forget where it ran, so that its next
        run starts on the GPUs it holds now (a lease moved to other GPUs stays active)."""
        grace = self.rt.settings.stop_grace_s
        with self.rt.store.transaction() as s:
            rows = s.execute(
                select(Run.id, Run.backend).where(Run.lease_id == lease_id, Run.state.notin_(FINISHED))
            ).all()
        with self._lock:
            known = lease_id in self._started
            self._started.discard(lease_id)
            kinds = {kind for _, kind in rows} | (set(self._backends) if known else set())
        for kind in kinds:
            try:
                self.backend(kind).lease_ended(lease_id, grace)
            except BackendError as e:
                log.warning("stopping the runs of lease %s on %s: %s", lease_id, kind, e)
        for run_id, kind in rows:
            try:
                code = self.backend(kind).status(run_id).exit_code
            except BackendError:
                code = None
            self._finish(run_id, RunState.STOPPED.value, code, message)

    def knows_any(self, lease_ids: Iterable[int]) -> bool:
        """Whether a backend was told of any of these leases' GPUs (a run started on them in this process)."""
        ids = set(lease_ids)
        with self._lock:
            return bool(ids & self._started)

    def stop_leases(self, lease_ids: Iterable[int], *, look: bool = True, mirror: bool = True) -> None:
        """Leases ended, were cancelled or held: stop their runs now (reconcile). One without a run, here or in
        another server process, is left to the clock's tick to close (ending -> ended): no pass over every run
        on every request. `look=False`: the use case found no run on record (no need to look again)."""
        ids = set(lease_ids)
        started = self.knows_any(ids)
        if not started and look:
            with self.rt.store.transaction() as s:
                started = (
                    s.scalar(select(Run.id).where(Run.lease_id.in_(ids), Run.state.notin_(FINISHED)).limit(1))
                    is not None
                )
        if started:
            self.reconcile(mirror=mirror)
        elif mirror:
            self.mirror_leases()  # Slurm reservations follow (rate-limited look-up when there is no Slurm)

    def reconcile(self, *, mirror: bool = True) -> None:
        """Stop every run whose lease is no longer active; record runs that finished; then, with `mirror`, bring
        the backends that mirror leases (Slurm) in line (only the process that runs the clock does that when
        several serve one database, so Slurm is told each decision once)."""
        grace = self.rt.settings.stop_grace_s
        with self.rt.store.transaction() as s:
            rows = s.execute(
                select(Run.id, Run.lease_id, Run.backend, Lease.state)
                .join(Lease, Run.lease_id == Lease.id)
                .where(Run.state.notin_(FINISHED))
            ).all()
            ended = {lid for lid in self._started if _lease_state(s, lid) not in RUNNABLE}
        stop_leases: dict[int, str] = {}
        for run_id, lease_id, kind, state in rows:
            if state not in RUNNABLE:
                stop_leases[lease_id] = kind
            else:
                self.refresh(run_id)
        for lease_id in ended:
            stop_leases.setdefault(lease_id, "")
        for lease_id, kind in stop_leases.items():
            for k in [kind] if kind else list(self._backends):
                try:
                    self.backend(k).lease_ended(lease_id, grace)
                except BackendError:
                    continue
            with self._lock:
                self._started.discard(lease_id)
            for run_id, lid, kind2, _ in rows:
                if lid == lease_id:
                    try:
                        st = self.backend(kind2).status(run_id)
                        code, msg = st.exit_code, st.message or "stopped at lease end"
                    except BackendError:
                        code, msg = None, "stopped at lease end"
                    self._finish(run_id, RunState.STOPPED.value, code, msg)
        with self.rt.work() as w:
            still_running = set(
                w.session.scalars(
                    select(Run.lease_id).where(
                        Run.state.notin_(FINISHED),
                        Run.lease_id.in_(select(Lease.id).where(Lease.state == LeaseState.ENDING.value)),
                    )
                )
            )
            if not still_running:
                close_ending(w, actor="executor")
        if mirror:
            self.mirror_leases()

    def mirror_leases(self) -> None:
        """Bring backends that mirror leases (Slurm clusters) in line with the store."""
        slurm_mirror.sync(self)

    def close(self) -> None:
        with self._lock:
            for b in self._backends.values():
                b.close()
            self._backends.clear()


def _lease_state(s: Session, lease_id: int) -> str:
    lease = s.get(Lease, lease_id)
    return lease.state if lease is not None else LeaseState.ENDED.value
