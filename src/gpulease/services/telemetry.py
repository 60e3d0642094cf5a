"""GPU telemetry for leases: NVML readings of the leased GPUs on this host, summarised into usage records.

Only real readings are stored. Where NVML is absent (no driver, no GPU) nothing is sampled, usage
records carry NULL utilisation, and `status()` says why.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, selectinload

from gpulease.backends.telemetry import nvml_available, sample_gpus
from gpulease.domain.leases import LeaseState
from gpulease.store.models import Allocation, Cluster, GpuSampleRow, Lease, Node
from gpulease.store.prepared import Prepared


@dataclass(frozen=True)
class TelemetryStatus:
    nvml_available: bool
    reason: str | None  # why not, when it is not
    note: str | None


def status() -> TelemetryStatus:
    """Whether GPU telemetry (NVML) is available on this host, and if not, why."""
    ok, reason = nvml_available()
    return TelemetryStatus(
        nvml_available=ok,
        reason=None if ok else reason,
        note=None if ok else "no GPU telemetry is recorded on this host; usage records carry none",
    )


def sample_active_leases(session: Session, now: datetime) -> int:
    """Record one reading per leased GPU of every active lease on this host's local-backend nodes."""
    ok, _ = nvml_available()
    if not ok:
        return 0
    leases = session.scalars(
        select(Lease)
        .where(Lease.state == LeaseState.ACTIVE.value)
        .options(selectinload(Lease.allocations).selectinload(Allocation.node).selectinload(Node.cluster))
    ).all()
    wanted: dict[int, list[tuple[int, str]]] = defaultdict(list)  # gpu index -> [(lease, node)]
    for lease in leases:
        for a in lease.allocations:
            if not a.released and isinstance(a.node.cluster, Cluster) and a.node.cluster.backend == "local":
                wanted[a.gpu_index].append((lease.id, a.node.name))
    if not wanted:
        return 0
    samples = sample_gpus(sorted(wanted)) or []
    n = 0
    for smp in samples:
        for lease_id, node in wanted.get(smp.index, []):
            session.add(
                GpuSampleRow(
                    lease_id=lease_id,
                    at=now,
                    node=node,
                    gpu_index=smp.index,
                    utilization_pct=float(smp.utilization_pct),
                    memory_used_mib=smp.memory_used_mib,
                )
            )
            n += 1
    return n


# Every end of a GPU lease reads it: compiled once and run on the cursor (store/prepared.py).
_SUMMARY = Prepared(
    select(func.avg(GpuSampleRow.utilization_pct), func.max(GpuSampleRow.memory_used_mib)).where(
        GpuSampleRow.lease_id == bindparam("lease_id"),
        GpuSampleRow.at >= bindparam("start"),
        GpuSampleRow.at < bindparam("end"),
    ),
    autoflush=True,
)


def summary(session: Session, lease_id: int, start: datetime, end: datetime) -> tuple[float | None, int | None]:
    """Mean utilisation and peak memory of the lease's GPUs over [start, end); (None, None) with no readings."""
    ((mean, peak),) = _SUMMARY.rows(session, {"lease_id": lease_id, "start": start, "end": end})
    return (None if mean is None else round(float(mean), 2), None if peak is None else int(peak))
