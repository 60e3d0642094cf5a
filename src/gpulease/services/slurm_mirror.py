"""Leases on Slurm clusters, told to Slurm; what Slurm recorded, compared with what gpulease billed.

gpulease decides and places leases; a cluster whose `backend` is `slurm` only carries them out. After
every tick and lease change the executor calls `sync`: every booked, active or suspended lease with
GPUs on such a cluster is handed to the Slurm backend, which makes Slurm's reservations and allocations
match (backends/slurm.py). Every `slurm_accounting_interval_s`, `reconcile_accounting` compares the
GPU-seconds gpulease billed for recently ended leases with the GPU-seconds Slurm's accounting recorded
for them, and looks for GPU jobs that belong to no lease; each disagreement is an operator alert.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, selectinload

from gpulease.backends import BackendError, ExecutionBackend, LeasedGpus
from gpulease.backends.slurm import LeaseWindow, SlurmBackend, SlurmCommands
from gpulease.domain.leases import LeaseState
from gpulease.services.cpu_capacity import held_cores
from gpulease.services.node_failure import BackendNode
from gpulease.settings import Settings
from gpulease.store.db import Store
from gpulease.store.models import Alert, Allocation, Cluster, CpuAllocation, Lease, Node, UsageRecord


class _Host(Protocol):
    """What the mirror needs of the process running it: the store, the settings, the clock."""

    store: Store
    settings: Settings

    def clock(self) -> datetime: ...


class Executor(Protocol):
    """The executor the mirror works for (services/execution.py), seen only through what it uses."""

    @property
    def rt(self) -> _Host: ...

    def backend(self, kind: str) -> ExecutionBackend: ...


log = logging.getLogger("gpulease.slurm")

MIRRORED_STATES = (LeaseState.SCHEDULED.value, LeaseState.ACTIVE.value, LeaseState.SUSPENDED.value)
ENDED_STATES = (LeaseState.ENDED.value, LeaseState.PREEMPTED.value, LeaseState.FAILED.value)
# Slurm's accounting daemon receives a job's end a moment after the job ends: leases are compared
# only once they have been over this long.
ACCOUNTING_SETTLE_S = 30
ACCOUNTING_LOOKBACK = timedelta(days=2)


def backend_options(settings: Settings) -> dict[str, Any]:
    """SlurmBackend's options from GPULEASE_SLURM_* settings."""
    return {
        "commands": SlurmCommands(bin_dir=settings.slurm_bin_dir, conf=settings.slurm_conf),
        "name_prefix": settings.slurm_name_prefix,
        "partition": settings.slurm_partition,
        "account_template": settings.slurm_account_template,
        "accounts": settings.slurm_accounts,
        "users": settings.slurm_users,
        "manage_accounts": settings.slurm_manage_accounts,
        "gpu_type_template": settings.slurm_gpu_type_template,
        "stop_grace_s": settings.stop_grace_s,
    }


def uses_slurm(session: Session) -> bool:
    return bool(session.scalar(select(exists().where(Cluster.backend == "slurm"))))


def _slurm_leases(session: Session, states: tuple[str, ...], live_gpus_only: bool) -> list[Lease]:
    on_slurm = (
        select(Allocation.lease_id)
        .join(Node, Allocation.node_id == Node.id)
        .join(Cluster, Node.cluster_id == Cluster.id)
        .where(Cluster.backend == "slurm")
    )
    cpu_on_slurm = (  # CPU leases: their cores on Slurm nodes
        select(CpuAllocation.lease_id)
        .join(Node, CpuAllocation.node_id == Node.id)
        .join(Cluster, Node.cluster_id == Cluster.id)
        .where(Cluster.backend == "slurm")
    )
    if live_gpus_only:
        on_slurm = on_slurm.where(Allocation.released.is_(False))
        cpu_on_slurm = cpu_on_slurm.where(CpuAllocation.released.is_(False))
    query = (
        select(Lease)
        .where(Lease.state.in_(states), Lease.id.in_(on_slurm) | Lease.id.in_(cpu_on_slurm))
        .options(selectinload(Lease.allocations).selectinload(Allocation.node))
        .order_by(Lease.id)
    )
    return list(session.scalars(query))


def lease_windows(session: Session) -> list[LeaseWindow]:
    """Every lease Slurm must hold something for now or later: booked, active or suspended, on Slurm nodes."""
    windows = []
    for lease in _slurm_leases(session, MIRRORED_STATES, live_gpus_only=True):
        by_node: dict[str, list[int]] = defaultdict(list)
        live = [a for a in lease.allocations if not a.released]
        for a in live:
            by_node[a.node.name].append(a.gpu_index)
        # The cores its runs are pinned to: a CPU lease's own, a GPU lease's GPUs' share (`held_cores`).
        cores = {h.node: h.cores for h in held_cores(lease, live)}
        gpus = tuple(
            LeasedGpus(lease.id, node, tuple(sorted(by_node.get(node, ()))), cores.get(node, ()))
            for node in sorted(set(by_node) | set(cores))
        )
        windows.append(LeaseWindow(lease.id, lease.customer_id, lease.state, lease.starts_at, lease.ends_at, gpus))
    return windows


# After Slurm failed to answer, API requests (which reconcile too) do not wait on it again for a while.
_UNREACHABLE_BACKOFF_S = 15.0
_unreachable_until: WeakKeyDictionary[Executor, float] = WeakKeyDictionary()
_NO_SLURM_RECHECK_S = 5.0
_no_slurm_until: WeakKeyDictionary[Executor, float] = WeakKeyDictionary()


def idle(executor: Executor) -> bool:
    """Whether `sync` would return at once: no Slurm cluster in the inventory, looked up a moment ago, or a
    controller that did not answer a moment ago."""
    now = time.monotonic()
    return _unreachable_until.get(executor, 0.0) > now or _no_slurm_until.get(executor, 0.0) > now


def sync(executor: Executor) -> None:
    """Tell Slurm about every lease on a Slurm cluster; every so often, compare its accounting with ours."""
    rt = executor.rt
    if _unreachable_until.get(executor, 0.0) > time.monotonic():
        return
    if _no_slurm_until.get(executor, 0.0) > time.monotonic():
        return  # no Slurm cluster in the inventory (looked up at most every few seconds: this runs per booking)
    with rt.store.transaction() as s:
        if not uses_slurm(s):
            _no_slurm_until[executor] = time.monotonic() + _NO_SLURM_RECHECK_S
            return
        windows = lease_windows(s)
    try:
        backend = executor.backend("slurm")
        assert isinstance(backend, SlurmBackend)
        refused = backend.sync_leases(windows, grace_s=rt.settings.stop_grace_s)
    except BackendError as exc:
        log.warning("cannot bring Slurm in line with the leases: %s", exc)
        _unreachable_until[executor] = time.monotonic() + _UNREACHABLE_BACKOFF_S
        return
    if refused:
        _alert_refusals(executor, refused)
    interval = rt.settings.slurm_accounting_interval_s
    last = backend.accounting_checked_at
    if interval >= 0 and (last is None or time.monotonic() - last >= interval):
        backend.accounting_checked_at = time.monotonic()
        try:
            reconcile_accounting(executor, backend)
        except BackendError as exc:
            log.warning("cannot read Slurm's accounting: %s", exc)


def node_health(executor: Executor) -> dict[str, BackendNode] | None:
    """What Slurm says of its nodes (`sinfo`), for the clock to follow; None without a Slurm cluster in the
    inventory, or when Slurm does not answer (a controller that cannot be reached says nothing about its nodes)."""
    with executor.rt.store.transaction() as s:
        if not uses_slurm(s):
            return None
    try:
        backend = executor.backend("slurm")
        assert isinstance(backend, SlurmBackend)
        nodes = backend.node_states()
    except BackendError as exc:
        log.warning("cannot read Slurm's node states: %s", exc)
        return None
    return {name: BackendNode(n.available, n.state, n.reason) for name, n in nodes.items()}


def _alert_refusals(executor: Executor, refused: dict[int, str]) -> None:
    with executor.rt.store.transaction() as s:
        for lease_id, reason in refused.items():
            _alert_once(
                s,
                executor.rt.clock(),
                "slurm_refused_lease",
                f"Slurm refused to hold lease {lease_id}: {reason}",
                {"lease_id": lease_id, "reason": reason},
                key="lease_id",
            )


def _alert_once(session: Session, now: datetime, kind: str, message: str, data: dict[str, Any], key: str) -> bool:
    """Raise an alert unless one of this kind about the same `data[key]` is already open."""
    for old in session.scalars(select(Alert).where(Alert.kind == kind, Alert.acknowledged.is_(False))):
        if old.data.get(key) == data[key]:
            return False
    session.add(Alert(at=now, kind=kind, message=message, data=data))
    log.warning("%s", message)
    return True


def _union_seconds(spans: list[tuple[datetime, datetime]]) -> int:
    total, edge = 0.0, None
    for start, end in sorted(spans):
        if edge is not None and start < edge:
            start = edge
        if end > start:
            total += (end - start).total_seconds()
            edge = end if edge is None else max(edge, end)
    return round(total)


def reconcile_accounting(executor: Executor, backend: SlurmBackend) -> list[str]:
    """Compare Slurm's accounting with gpulease's usage; raise an alert for each disagreement.

    - a lease that ended: GPU-seconds gpulease billed vs. GPU-seconds Slurm recorded for its
      reservation (time held x the lease's GPUs) or allocation (elapsed x allocated GPUs), beyond
      `slurm_accounting_tolerance_s` per GPU;
    - a run that Slurm recorded as ending after its lease (plus the grace period and the tolerance);
    - a job that used GPUs in Slurm but belongs to no lease (GPUs used outside gpulease's books).
    Returns the messages of the alerts raised.
    """
    rt = executor.rt
    now = rt.clock()
    settings = rt.settings
    tolerance = settings.slurm_accounting_tolerance_s
    since = now - ACCOUNTING_LOOKBACK
    jobs = backend.accounting(since)
    reservations = backend.reservation_records(since)
    raised: list[str] = []
    with rt.store.transaction() as s:
        ended = [
            lease
            for lease in _slurm_leases(s, ENDED_STATES, live_gpus_only=False)
            if lease.activated_at is not None
            and lease.ended_at is not None
            and since <= lease.ended_at <= now - timedelta(seconds=ACCOUNTING_SETTLE_S)
        ]
        billed: dict[int, int] = defaultdict(int)
        for rec in s.scalars(select(UsageRecord).where(UsageRecord.lease_id.in_([lease.id for lease in ended]))):
            billed[rec.lease_id] += rec.seconds * rec.gpu_count
        by_lease = {lease.id: lease for lease in ended}
        for lease in ended:
            name = backend.lease_name(lease.id)
            spans = [(r.start, r.end) for r in reservations if r.name == name and r.start and r.end]
            if spans:
                recorded, how = _union_seconds(spans) * lease.gpu_count, "reservation"
            else:
                allocations = [j for j in jobs if j.name == name]
                recorded, how = sum(j.gpu_seconds for j in allocations), "allocation"
            if abs(recorded - billed[lease.id]) > tolerance * lease.gpu_count:
                message = (
                    f"lease {lease.id}: gpulease billed {billed[lease.id]} GPU-seconds, Slurm recorded "
                    f"{recorded} for its {how} {name}"
                )
                data = {"lease_id": lease.id, "billed_gpu_s": billed[lease.id], "slurm_gpu_s": recorded, "how": how}
                if _alert_once(s, now, "slurm_usage_mismatch", message, data, key="lease_id"):
                    raised.append(message)
        for job in jobs:
            lease_id = backend.lease_of_record(job)
            if job.gpus and lease_id is None:
                message = (
                    f"Slurm job {job.job_id} ({job.name!r}, account {job.account}, user {job.user}) used "
                    f"{job.gpus} GPU(s) on {job.nodes} outside any gpulease lease"
                )
                data = {"job_id": job.job_id, "account": job.account, "nodes": job.nodes, "gpus": job.gpus}
                if _alert_once(s, now, "slurm_unleased_gpu_use", message, data, key="job_id"):
                    raised.append(message)
            owner = by_lease.get(lease_id) if lease_id is not None else None
            if owner is not None and owner.ended_at is not None and job.end is not None:
                late = (job.end - owner.ended_at).total_seconds() - settings.stop_grace_s
                if late > tolerance:
                    message = (
                        f"Slurm job {job.job_id} of lease {owner.id} ran {late:.0f}s past the lease's end "
                        "and its grace period"
                    )
                    data = {"job_id": job.job_id, "lease_id": owner.id, "late_s": round(late)}
                    if _alert_once(s, now, "slurm_run_outlived_lease", message, data, key="job_id"):
                        raised.append(message)
    return raised
