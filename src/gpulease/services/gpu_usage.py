"""How a lease has used its GPUs: the NVML readings the clock records (services/telemetry.py), for the customer.

A window of the lease's running time (the last `hours`, up to its end) in at most `points` buckets: per bucket the
mean utilisation over the lease's GPUs and the highest memory in use on any one of them, with the window's mean and
peak. Where NVML is absent nothing is recorded: the figures are None and `telemetry.status()` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from gpulease.services.context import Actor
from gpulease.services.errors import InvalidRequest
from gpulease.services.leases import get_lease
from gpulease.services.work import Work
from gpulease.store.models import GpuSampleRow

HOURS_MAX = 24 * 31
POINTS_MAX = 500


@dataclass(frozen=True)
class UsagePoint:
    at: datetime  # the bucket's start
    utilization_pct: float  # mean over the lease's GPUs and the bucket's readings
    memory_used_mib: int  # the most any one GPU had in use


@dataclass(frozen=True)
class GpuUsage:
    lease_id: int
    since: datetime
    until: datetime
    readings: int
    mean_utilization_pct: float | None
    peak_memory_mib: int | None
    points: list[UsagePoint]


def lease_gpu_usage(work: Work, *, actor: Actor, lease_id: int, hours: int = 24, points: int = 96) -> GpuUsage:
    """The lease's GPU readings over the last `hours` of its running time, in at most `points` buckets."""
    if not 1 <= hours <= HOURS_MAX:
        raise InvalidRequest(f"hours is from 1 to {HOURS_MAX}")
    if not 1 <= points <= POINTS_MAX:
        raise InvalidRequest(f"points is from 1 to {POINTS_MAX}")
    lease = get_lease(work, actor=actor, lease_id=lease_id)
    until = min(work.now, lease.ended_at or work.now)
    began = lease.activated_at or lease.starts_at
    since = max(began, until - timedelta(hours=hours))
    if until <= since:
        return GpuUsage(lease.id, since, max(until, since), 0, None, None, [])
    rows = work.session.execute(
        select(GpuSampleRow.at, GpuSampleRow.utilization_pct, GpuSampleRow.memory_used_mib)
        .where(GpuSampleRow.lease_id == lease.id, GpuSampleRow.at >= since, GpuSampleRow.at <= until)
        .order_by(GpuSampleRow.at)
    ).all()
    if not rows:
        return GpuUsage(lease.id, since, until, 0, None, None, [])
    width = max((until - since).total_seconds() / points, 1.0)
    buckets: dict[int, tuple[float, int, int]] = {}  # index -> (sum of utilisation, readings, peak memory)
    for at, util, mem in rows:
        i = min(int((at - since).total_seconds() // width), points - 1)
        total, n, peak = buckets.get(i, (0.0, 0, 0))
        buckets[i] = (total + util, n + 1, max(peak, mem))
    out = [
        UsagePoint(since + timedelta(seconds=i * width), round(total / n, 1), peak)
        for i, (total, n, peak) in sorted(buckets.items())
    ]
    mean = round(sum(r[1] for r in rows) / len(rows), 1)
    return GpuUsage(lease.id, since, until, len(rows), mean, max(r[2] for r in rows), out)
