"""Inventory use cases: add, drain, restore and remove nodes; the nodes and who holds their GPUs when."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpulease import audit
from gpulease.domain.cpu import BadNodeShape, CpuNodeView, GpuShare, UnknownCpuModel, cpu_model, gpu_share
from gpulease.domain.inventory import MAX_GPUS_PER_NODE, Backend, NodeState, NodeView, UnknownGpuModel, gpu_model
from gpulease.domain.leases import HOLDS_CAPACITY
from gpulease.services import limits
from gpulease.services.context import Actor
from gpulease.services.errors import Conflict, InvalidRequest, NotFound
from gpulease.services.permissions import Permission, require
from gpulease.services.work import Work
from gpulease.store.models import (
    Allocation,
    Cluster,
    CpuAllocation,
    Customer,
    Lease,
    MemoryAllocation,
    Node,
    Site,
)


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
    work: Work,
    *,
    actor: Actor,
    site: str,
    cluster: str,
    name: str,
    gpu_model_name: str | None,
    gpu_count: int = 0,
    backend: str = "local",
    cpus: NodeCpus | None = None,
) -> Node:
    """A GPU node (a GPU model and count, optionally its CPUs), or a CPU node (CPUs only, no GPUs)."""
    require(actor, Permission.MANAGE_INVENTORY)
    session, now = work.session, work.now
    site = _place_name(site, "site", limits.PLACE_MAX)
    cluster = _place_name(cluster, "cluster", limits.PLACE_MAX)
    name = _place_name(name, "name", limits.NODE_NAME_MAX)
    model_name: str | None = None
    if gpu_model_name is not None or cpus is None:
        try:
            model_name = gpu_model(
                limits.required_text(gpu_model_name or "", what="gpu_model", max_len=limits.MODEL_NAME_MAX)
            ).name
        except UnknownGpuModel as e:
            raise InvalidRequest(str(e)) from None
        if not 1 <= gpu_count <= MAX_GPUS_PER_NODE:
            raise InvalidRequest(f"gpu_count must be between 1 and {MAX_GPUS_PER_NODE}, got {gpu_count}")
    elif gpu_count:
        raise InvalidRequest("a node with GPUs names their gpu_model; a CPU node has gpu_count 0")
    if backend not in {b.value for b in Backend}:
        raise InvalidRequest(f"backend must be one of {', '.join(b.value for b in Backend)}")
    if session.scalar(select(Node).where(Node.name == name)) is not None:
        raise Conflict(f"a node named {name!r} already exists")
    c = _cluster(session, _site(session, site), cluster, backend)
    node = Node(
        cluster_id=c.id, name=name, gpu_model=model_name, gpu_count=gpu_count, state=NodeState.AVAILABLE, created_at=now
    )
    data: dict[str, object] = {
        "name": name,
        "site": site,
        "cluster": cluster,
        "gpu_model": model_name,
        "gpu_count": gpu_count,
    }
    if cpus is not None:
        _set_cpus(node, cpus)
        data.update(
            cpu_model=node.cpu_model, sockets=node.sockets, cpu_cores=node.cpu_cores, memory_gib=node.memory_gib
        )
    session.add(node)
    session.flush()
    audit.append(session, at=now, actor=actor.name, action="node.added", subject=f"node:{node.id}", data=data)
    return node


@dataclass(frozen=True)
class NodeCpus:
    """A node's CPUs as an operator describes them; sockets None = cpu_cores / the model's cores per socket;
    the per-GPU share None = GPU_SHARES of the node's GPU model."""

    cpu_model: str
    cpu_cores: int
    memory_gib: int
    sockets: int | None = None
    reserve_cores_per_gpu: int | None = None
    reserve_memory_gib_per_gpu: int | None = None


def _set_cpus(node: Node, cpus: NodeCpus) -> None:
    """Check the CPUs' shape (a `BadNodeShape` sentence) and write them, with the GPU share resolved: the row then
    states which cores are kept for the GPUs, for the database's own check (migration 0015) as for the calendar."""
    try:
        model = cpu_model(limits.required_text(cpus.cpu_model, what="cpu_model", max_len=limits.MODEL_NAME_MAX))
    except UnknownCpuModel as e:
        raise InvalidRequest(str(e)) from None
    limits.whole(cpus.cpu_cores, what="cpu_cores", low=1, high=limits.CPU_CORES_MAX)
    limits.whole(cpus.memory_gib, what="memory_gib", low=1, high=limits.MEMORY_GIB_MAX)
    sockets = cpus.sockets
    if sockets is None:
        sockets, rest = divmod(cpus.cpu_cores, model.cores)
        if rest or sockets < 1:
            raise InvalidRequest(
                f"{cpus.cpu_cores} cores are not a whole number of {model.name} sockets ({model.cores} cores each); "
                "give sockets"
            )
    limits.whole(sockets, what="sockets", low=1, high=limits.SOCKETS_MAX)
    default = gpu_share(node.gpu_model) if node.gpu_model else GpuShare(0, 0)
    share = GpuShare(
        default.cores_per_gpu if cpus.reserve_cores_per_gpu is None else cpus.reserve_cores_per_gpu,
        default.memory_gib_per_gpu if cpus.reserve_memory_gib_per_gpu is None else cpus.reserve_memory_gib_per_gpu,
    )
    node.cpu_model, node.sockets, node.cpu_cores, node.memory_gib = model.name, sockets, cpus.cpu_cores, cpus.memory_gib
    node.reserve_cores_per_gpu, node.reserve_memory_gib_per_gpu = share.cores_per_gpu, share.memory_gib_per_gpu
    try:
        _cpu_view(node, cluster="", site="")
    except BadNodeShape as e:
        raise InvalidRequest(str(e)) from None


def _place_name(value: str, label: str, max_len: int) -> str:
    if not value.strip():
        raise InvalidRequest(f"{label} must not be empty")
    if len(value) > max_len:
        raise InvalidRequest(f"{label} must be at most {max_len} characters")
    return limits.required_text(value, what=label, max_len=max_len)


def _node(session: Session, node_id: int) -> Node:
    node = session.get(Node, node_id) if limits.fits_id(node_id) else None
    if node is None or node.removed_at is not None:
        raise NotFound(f"no node with id {node_id}")
    return node


def nodes_in_service(session: Session, gpu_model_name: str | None = None) -> list[Node]:
    q = select(Node).where(Node.removed_at.is_(None)).order_by(Node.id)
    gpu_model_name = limits.text(gpu_model_name, what="gpu_model", max_len=limits.FILTER_MAX)
    if gpu_model_name:
        q = q.where(Node.gpu_model == gpu_model_name)
    return list(session.scalars(q))


def get_node(work: Work, *, actor: Actor, node_id: int) -> Node:
    require(actor, Permission.VIEW_INVENTORY)
    return _node(work.session, node_id)


def list_nodes(work: Work, *, actor: Actor, gpu_model_name: str | None = None) -> list[Node]:
    require(actor, Permission.VIEW_INVENTORY)
    return nodes_in_service(work.session, gpu_model_name)


def models_in_service(work: Work) -> list[str]:
    """The GPU models the facility has nodes of (what there is to book), for everyone."""
    q = select(Node.gpu_model).where(Node.removed_at.is_(None), Node.gpu_model.is_not(None)).distinct()
    return sorted(m for m in work.session.scalars(q) if m)


def _live_allocations(session: Session, node_id: int, now: datetime) -> list[Allocation | CpuAllocation]:
    """The GPUs and the cores leases still hold on the node, now or later."""
    out: list[Allocation | CpuAllocation] = []
    for table in (Allocation, CpuAllocation):
        q = select(table).where(
            table.node_id == node_id,
            table.released.is_(False),
            (table.ends_at.is_(None)) | (table.ends_at > now),
        )
        out += session.scalars(q)
    return out


def remove_node(work: Work, *, actor: Actor, node_id: int) -> Node:
    require(actor, Permission.MANAGE_INVENTORY)
    session, now = work.session, work.now
    node = _node(session, node_id)
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


def _cpu_view(node: Node, *, cluster: str, site: str) -> CpuNodeView:
    return CpuNodeView(
        id=node.id,
        name=node.name,
        cluster=cluster,
        site=site,
        cpu_model=node.cpu_model or "",
        sockets=node.sockets,
        cores=node.cpu_cores,
        memory_gib=node.memory_gib,
        state=NodeState(node.state),
        gpu_count=node.gpu_count,
        share=GpuShare(node.reserve_cores_per_gpu or 0, node.reserve_memory_gib_per_gpu or 0),
    )


def cpu_node_view(node: Node) -> CpuNodeView | None:
    """The node's CPUs as CPU placement sees them; None where they are not described."""
    if node.cpu_cores <= 0 or not node.cpu_model:
        return None
    return _cpu_view(node, cluster=f"{node.cluster.site.name}/{node.cluster.name}", site=node.cluster.site.name)


def node_view(node: Node) -> NodeView:
    return NodeView(
        id=node.id,
        name=node.name,
        cluster=f"{node.cluster.site.name}/{node.cluster.name}",
        site=node.cluster.site.name,
        gpu_model=node.gpu_model or "",
        gpu_count=node.gpu_count,
        state=NodeState(node.state),
        cpus_described=node.cpu_cores > 0 and bool(node.cpu_model),  # as cpu_node_view decides
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


@dataclass(frozen=True)
class CpuBooking:
    """The cores (and GiB) one CPU lease holds on one node over [start, end); end None = open-ended."""

    node_id: int
    lease_id: int
    customer_id: int
    customer: str
    plan: str
    state: str
    start: datetime
    end: datetime | None
    cores: tuple[int, ...]
    memory_gib: int

    def covers(self, t: datetime) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


def cpu_calendar_bookings(session: Session, nodes: list[Node], t0: datetime, t1: datetime) -> list[CpuBooking]:
    """Every live CPU hold on these nodes overlapping [t0, t1), with its lease, customer and memory."""
    ids = [n.id for n in nodes if n.cpu_cores > 0]
    if not ids:
        return []
    rows = session.execute(
        select(
            CpuAllocation.node_id,
            CpuAllocation.core_index,
            CpuAllocation.starts_at,
            CpuAllocation.ends_at,
            Lease.id,
            Lease.customer_id,
            Lease.plan,
            Lease.state,
            Customer.legal_name,
        )
        .join(Lease, CpuAllocation.lease_id == Lease.id)
        .join(Customer, Lease.customer_id == Customer.id)
        .where(
            CpuAllocation.node_id.in_(ids),
            CpuAllocation.released.is_(False),
            CpuAllocation.starts_at < t1,
            (CpuAllocation.ends_at.is_(None)) | (CpuAllocation.ends_at > t0),
            Lease.state.in_([st.value for st in HOLDS_CAPACITY]),
        )
    ).all()
    held: dict[tuple[int, int, datetime, datetime | None], list[int]] = {}
    about: dict[int, tuple[int, str, str, str]] = {}
    for n, core, s, e, lid, cid, plan, state, cname in rows:
        held.setdefault((n, lid, s, e), []).append(core)
        about[lid] = (cid, cname, plan, state)
    memory = select(
        MemoryAllocation.node_id, MemoryAllocation.lease_id, MemoryAllocation.starts_at, MemoryAllocation.gib
    ).where(MemoryAllocation.lease_id.in_(list(about)), MemoryAllocation.released.is_(False))
    gib = {(n, lid, s): g for n, lid, s, g in session.execute(memory)} if about else {}
    out = []
    for (n, lid, s, e), cores in sorted(held.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        cid, cname, plan, state = about[lid]
        out.append(CpuBooking(n, lid, cid, cname, plan, state, s, e, tuple(sorted(cores)), gib.get((n, lid, s), 0)))
    return out


@dataclass(frozen=True)
class NodeCalendar:
    node: Node
    bookings: list[Booking]
    cpu_bookings: list[CpuBooking] = field(default_factory=list)  # where its CPUs are described


@dataclass(frozen=True)
class Calendar:
    start: datetime
    end: datetime
    nodes: list[NodeCalendar]


def calendar(
    work: Work,
    *,
    actor: Actor,
    gpu_model_name: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    days: int = 7,
) -> Calendar:
    """Who holds which GPU when: every node with its bookings overlapping [start, end)."""
    require(actor, Permission.VIEW_INVENTORY)
    if not 1 <= days <= limits.CALENDAR_DAYS_MAX:
        raise InvalidRequest(f"days must be between 1 and {limits.CALENDAR_DAYS_MAX}")
    t0 = work.now if start is None else limits.moment(start, what="start")
    t1 = t0 + timedelta(days=days) if end is None else limits.moment(end, what="end")
    nodes = nodes_in_service(work.session, gpu_model_name)
    by_node: dict[int, list[Booking]] = {}
    for b in calendar_bookings(work.session, nodes, t0, t1):
        by_node.setdefault(b.node_id, []).append(b)
    cpu_by_node: dict[int, list[CpuBooking]] = {}
    for c in cpu_calendar_bookings(work.session, nodes, t0, t1):
        cpu_by_node.setdefault(c.node_id, []).append(c)
    return Calendar(
        t0,
        t1,
        [
            NodeCalendar(n, sorted(by_node.get(n.id, []), key=lambda b: (b.gpu, b.start)), cpu_by_node.get(n.id, []))
            for n in nodes
        ],
    )
