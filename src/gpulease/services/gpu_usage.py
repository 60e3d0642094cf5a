"""How a lease has used its GPUs: the NVML readings the clock records (services/telemetry.py), for the customer.

A window of the lease's running time (the last `hours`, up to its end) in at most `points` buckets: per bucket the
mean utilisation over the lease's GPUs and the highest memory in use on any one of them, with the window's mean and
peak. Where NVML is absent nothing is recorded: the figures are None and `telemetry.status()` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Integer, cast, func, literal, select

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
    # Bucketed by the database: a month of readings of 8 GPUs every 15 s is 1.4M rows, never read into Python.
    width = max((until - since).total_seconds() / points, 1.0)
    at, start = GpuSampleRow.at, literal(since, GpuSampleRow.at.type)
    if work.session.get_bind().dialect.name == "postgresql":
        bucket: ColumnElement[int] = cast(func.floor(func.extract("epoch", at - start) / width), Integer)
    else:  # SQLite: days as a real number, so 60 s comes out as 59.99999…; CAST truncates (as floor from 0 up)
        bucket = cast((func.julianday(at) - func.julianday(start)) * 86400.0 / width + 1e-6, Integer)
    window = (GpuSampleRow.lease_id == lease.id, at >= since, at <= until)
    b = bucket.label("b")
    rows = work.session.execute(
        select(b, func.sum(GpuSampleRow.utilization_pct), func.count(), func.max(GpuSampleRow.memory_used_mib))
        .where(*window)
        .group_by(b)
        .order_by(b)
    ).all()
    if not rows:
        return GpuUsage(lease.id, since, until, 0, None, None, [])
    merged: dict[int, tuple[float, int, int]] = {}  # the last instant (at == until) joins the last bucket
    for i, total, n, peak in rows:
        j = min(max(int(i), 0), points - 1)
        t0, n0, p0 = merged.get(j, (0.0, 0, 0))
        merged[j] = (t0 + float(total), n0 + int(n), max(p0, int(peak)))
    out = [
        UsagePoint(since + timedelta(seconds=i * width), round(total / n, 1), peak)
        for i, (total, n, peak) in sorted(merged.items())
    ]
    readings = sum(n for _, n, _ in merged.values())
    mean = round(sum(t for t, _, _ in merged.values()) / readings, 1)
    return GpuUsage(lease.id, since, until, readings, mean, max(p for _, _, p in merged.values()), out)
