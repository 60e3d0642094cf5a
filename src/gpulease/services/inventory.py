"""Capacity use cases: add, drain, restore and remove nodes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpulease import audit
from gpulease.domain.inventory import MAX_GPUS_PER_NODE, Backend, NodeState, NodeView, UnknownGpuModel, gpu_model
from gpulease.domain.leases import HOLDS_CAPACITY
from gpulease.services.context import Actor, Role
from gpulease.services.errors import Conflict, InvalidRequest, NotFound
from gpulease.store.models import Allocation, Cluster, Customer, Lease, Node, Site


def _site(session: Session, name: str) -> Site:
    site = session.scalar(select(Site).where(Site.name == name))
    if site is None:
        site = Site(name=name)
        session.add(site)
        session.flush()
    return site


def _cluster(session: Session, site: Site, name: str, backend: str) -> Cluster:
    cluster = session.scalar(select(Cluster).where(Cluster.site_id == site.id, Cluster.name == name))
    if cluster is None:
        cluster = Cluster(site_id=site.id, name=name, backend=backend)
        session.add(cluster)
        session.flush()
    return cluster


def add_node(
    session: Session,
    actor: Actor,
    *,
    site: str,
    cluster: str,
    name: str,
    gpu_model_name: str,
    gpu_count: int,
    now: datetime,
    backend: str = "local",
) -> Node:
    actor.require(Role.OPERATOR)
    try:
        model = gpu_model(gpu_model_name)
    except UnknownGpuModel as e:
        raise InvalidRequest(str(e)) from None
    if not 1 <= gpu_count <= MAX_GPUS_PER_NODE:
        raise InvalidRequest(f"gpu_count must be between 1 and {MAX_GPUS_PER_NODE}, got {gpu_count}")
    if backend not in {b.value for b in Backend}:
        raise InvalidRequest(f"backend must be one of {', '.join(b.value for b in Backend)}")
    for label, value in (("site", site), ("cluster", cluster), ("name", name)):
        if not value.strip():
            raise InvalidRequest(f"{label} must not be empty")
    if session.scalar(select(Node).where(Node.name == name)) is not None:
        raise Conflict(f"a node named {name!r} already exists")
    c = _cluster(session, _site(session, site), cluster, backend)
    node = Node(
        cluster_id=c.id, name=name, gpu_model=model.name, gpu_count=gpu_count, state=NodeState.AVAILABLE, created_at=now
    )
    session.add(node)
    session.flush()
    audit.append(
        session,
        at=now,
        actor=actor.name,
        action="node.added",
        subject=f"node:{node.id}",
        data={"name": name, "site": site, "cluster": cluster, "gpu_model": model.name, "gpu_count": gpu_count},
    )
    return node


def get_node(session: Session, node_id: int) -> Node:
    node = session.get(Node, node_id)
    if node is None or node.removed_at is not None:
        raise NotFound(f"no node with id {node_id}")
    return node


def list_nodes(session: Session, gpu_model_name: str | None = None) -> list[Node]:
    q = select(Node).where(Node.removed_at.is_(None)).order_by(Node.id)
    if gpu_model_name:
        q = q.where(Node.gpu_model == gpu_model_name)
    return list(session.scalars(q))


def set_node_state(session: Session, actor: Actor, node_id: int, state: NodeState, now: datetime) -> Node:
    """Drain (no new leases; running ones run to their end), mark down, or make available again."""
    actor.require(Role.OPERATOR)
    node = get_node(session, node_id)
    before = node.state
    node.state = state
    audit.append(
        session,
        at=now,
        actor=actor.name,
        action="node.state",
        subject=f"node:{node.id}",
        data={"from": before, "to": state},
    )
    return node


def _live_allocations(session: Session, node_id: int, now: datetime) -> list[Allocation]:
    q = (
        select(Allocation)
        .join(Lease)
        .where(
            Allocation.node_id == node_id,
            Allocation.released.is_(False),
            (Allocation.ends_at.is_(None)) | (Allocation.ends_at > now),
        )
    )
    return list(session.scalars(q))


def remove_node(session: Session, actor: Actor, node_id: int, now: datetime) -> Node:
    actor.require(Role.OPERATOR)
    node = get_node(session, node_id)
    live = _live_allocations(session, node_id, now)
    if live:
        leases = sorted({a.lease_id for a in live})
        raise Conflict(
            f"node {node.name} still holds leases {leases}; drain it and wait for them to end", leases=leases
        )
    node.removed_at = now
    node.state = NodeState.DOWN
    node.name = f"{node.name}~removed-{node.id}"  # frees the name for a replacement node
    audit.append(session, at=now, actor=actor.name, action="node.removed", subject=f"node:{node.id}", data={})
    return node


def node_view(node: Node) -> NodeView:
    return NodeView(
        id=node.id,
        name=node.name,
        cluster=f"{node.cluster.site.name}/{node.cluster.name}",
        site=node.cluster.site.name,
        gpu_model=node.gpu_model,
        gpu_count=node.gpu_count,
        state=NodeState(node.state),
    )


@dataclass(frozen=True)
class Booking:
    """One GPU held by one lease over [start, end); end None = open-ended."""

    node_id: int
    gpu: int
    lease_id: int
    customer_id: int
    customer: str
    plan: str
    state: str
    start: datetime
    end: datetime | None

    def covers(self, t: datetime) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


def calendar_bookings(session: Session, nodes: list[Node], t0: datetime, t1: datetime) -> list[Booking]:
    """Every live allocation on these nodes overlapping [t0, t1), with its lease and customer."""
    if not nodes:
        return []
    rows = session.execute(
        select(
            Allocation.node_id,
            Allocation.gpu_index,
            Allocation.starts_at,
            Allocation.ends_at,
            Lease.id,
            Lease.customer_id,
            Lease.plan,
            Lease.state,
            Customer.legal_name,
        )
        .join(Lease, Allocation.lease_id == Lease.id)
        .join(Customer, Lease.customer_id == Customer.id)
        .where(
            Allocation.node_id.in_([n.id for n in nodes]),
            Allocation.released.is_(False),
            Allocation.starts_at < t1,
            (Allocation.ends_at.is_(None)) | (Allocation.ends_at > t0),
            Lease.state.in_([st.value for st in HOLDS_CAPACITY]),
        )
    ).all()
    return [
        Booking(node_id=n, gpu=g, lease_id=lid, customer_id=cid, customer=cname, plan=plan, state=state, start=s, end=e)
        for n, g, s, e, lid, cid, plan, state, cname in rows
    ]
