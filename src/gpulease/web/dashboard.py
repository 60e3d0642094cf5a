"""Read-only figures behind the dashboard that no use case returns as such: bookings in a window, counts.

The queries are the ones the API's /calendar route makes; nothing here writes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gpulease.domain.inventory import NodeState
from gpulease.services.inventory import Booking, calendar_bookings
from gpulease.store.models import Alert, ApiKey, Customer, Lease, Node, UsageRecord


def lease_counts(session: Session, customer_id: int | None = None) -> dict[str, int]:
    q = select(Lease.state, func.count()).group_by(Lease.state)
    if customer_id is not None:
        q = q.where(Lease.customer_id == customer_id)
    return {state: n for state, n in session.execute(q).all()}


def usage_periods(session: Session, customer_id: int) -> list[str]:
    """The months in which this customer has usage on record, newest first."""
    q = select(UsageRecord.period).where(UsageRecord.customer_id == customer_id).distinct()
    return sorted(session.scalars(q), reverse=True)


@dataclass(frozen=True)
class ModelCapacity:
    gpu_model: str
    total: int
    leased: int  # held by a lease right now
    idle: int  # on available nodes, free now
    draining: int  # on draining nodes, free now (will take no new lease)
    down: int


def capacity_by_model(nodes: list[Node], now_bookings: list[Booking], now: datetime) -> list[ModelCapacity]:
    in_use = Counter(b.node_id for b in now_bookings if b.covers(now))
    per_model: dict[str, Counter[str]] = {}
    for n in nodes:
        c = per_model.setdefault(n.gpu_model, Counter())
        used = min(in_use[n.id], n.gpu_count)
        c["total"] += n.gpu_count
        c["leased"] += used
        free = n.gpu_count - used
        c[{NodeState.AVAILABLE: "idle", NodeState.DRAINING: "draining"}.get(NodeState(n.state), "down")] += free
    return [
        ModelCapacity(m, c["total"], c["leased"], c["idle"], c["draining"], c["down"])
        for m, c in sorted(per_model.items())
    ]


def open_alerts(session: Session) -> int:
    """How many alerts nobody has acknowledged yet (the badge in the navigation)."""
    return int(session.scalar(select(func.count()).select_from(Alert).where(Alert.acknowledged.is_(False))) or 0)


@dataclass(frozen=True)
class KeyRow:
    """An API key as the dashboard lists it: never its secret, nor its hash."""

    id: int
    prefix: str
    role: str
    customer_id: int | None
    customer: str | None
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


def api_keys(session: Session) -> list[KeyRow]:
    rows = session.execute(
        select(
            ApiKey.id,
            ApiKey.prefix,
            ApiKey.role,
            ApiKey.customer_id,
            Customer.legal_name,
            ApiKey.label,
            ApiKey.created_at,
            ApiKey.revoked_at,
        )
        .outerjoin(Customer, ApiKey.customer_id == Customer.id)
        .order_by(ApiKey.id.desc())
    ).all()
    return [KeyRow(*r) for r in rows]


@dataclass(frozen=True)
class NodeLine:
    id: int
    name: str
    gpu_model: str
    gpu_count: int
    state: str
    leased: int  # GPUs held by a lease right now
    added: datetime


@dataclass(frozen=True)
class NodeGroup:
    """The nodes of one cluster, as the inventory page lists them."""

    site: str
    cluster: str
    backend: str
    nodes: list[NodeLine]

    @property
    def gpus(self) -> int:
        return sum(n.gpu_count for n in self.nodes)

    @property
    def leased(self) -> int:
        return sum(n.leased for n in self.nodes)


def node_groups(session: Session, nodes: list[Node], now: datetime) -> list[NodeGroup]:
    """Nodes grouped by site and cluster, each with the GPUs leased on it now."""
    in_use = Counter(
        b.node_id for b in calendar_bookings(session, nodes, now, now + timedelta(seconds=1)) if b.covers(now)
    )
    groups: dict[tuple[str, str], NodeGroup] = {}
    for n in sorted(nodes, key=lambda n: (n.cluster.site.name, n.cluster.name, n.name)):
        key = (n.cluster.site.name, n.cluster.name)
        if key not in groups:
            groups[key] = NodeGroup(key[0], key[1], n.cluster.backend, [])
        used = min(in_use[n.id], n.gpu_count)
        groups[key].nodes.append(NodeLine(n.id, n.name, n.gpu_model, n.gpu_count, n.state, used, n.created_at))
    return list(groups.values())
