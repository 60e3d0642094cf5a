"""Read models: the figures the dashboard and /metrics show, each defined once, and the pages' views that
gather several of them. Nothing here writes.

"GPUs leased now" is `leased_per_node`: GPUs whose allocation covers this instant, of leases in a state that
holds capacity (scheduled, active, suspended, ending). The overview, the inventory page and the
`gpulease_gpus_leased` gauge all count it that way; "cores leased now" (`cores_leased_per_node`, the
`gpulease_cpu_cores_leased` gauge) counts CPU leases' cores alike.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gpulease import audit
from gpulease.domain.inventory import NodeState
from gpulease.domain.leases import HOLDS_CAPACITY
from gpulease.services import billing, keys, leases, reviews, screening, telemetry
from gpulease.services.alerts import count_unacknowledged, list_alerts
from gpulease.services.context import Actor, Role
from gpulease.services.customers import ScreeningRecord, ScreeningStatus, get_customer, latest_screening
from gpulease.services.errors import NotFound
from gpulease.services.inventory import (
    Booking,
    CpuBooking,
    calendar_bookings,
    cpu_calendar_bookings,
    cpu_node_view,
    nodes_in_service,
)
from gpulease.services.permissions import Permission, require
from gpulease.services.telemetry import TelemetryStatus
from gpulease.services.work import Work
from gpulease.store.models import Alert, Allocation, CpuAllocation, Customer, Lease, ListVersion, Node, ReviewItem

# --------------------------------------------------------------------------------------------- the figures


def leased_per_node(session: Session, now: datetime) -> Counter[int]:
    """GPUs held by a lease at `now`, per node: the one definition of "GPUs leased now"."""
    rows = session.execute(
        select(Allocation.node_id, func.count())
        .join(Lease, Allocation.lease_id == Lease.id)
        .where(
            Allocation.released.is_(False),
            Allocation.starts_at <= now,
            (Allocation.ends_at.is_(None)) | (Allocation.ends_at > now),
            Lease.state.in_([s.value for s in HOLDS_CAPACITY]),
        )
        .group_by(Allocation.node_id)
    ).all()
    return Counter({node_id: n for node_id, n in rows})


def cores_leased_per_node(session: Session, now: datetime) -> Counter[int]:
    """Cores held by a CPU lease at `now`, per node: the one definition of "cores leased now"."""
    rows = session.execute(
        select(CpuAllocation.node_id, func.count())
        .join(Lease, CpuAllocation.lease_id == Lease.id)
        .where(
            CpuAllocation.released.is_(False),
            CpuAllocation.starts_at <= now,
            (CpuAllocation.ends_at.is_(None)) | (CpuAllocation.ends_at > now),
            Lease.state.in_([s.value for s in HOLDS_CAPACITY]),
        )
        .group_by(CpuAllocation.node_id)
    ).all()
    return Counter({node_id: n for node_id, n in rows})


def lease_counts(session: Session, customer_id: int | None = None) -> dict[str, int]:
    """Leases per state, of one customer or of everyone."""
    q = select(Lease.state, func.count()).group_by(Lease.state)
    if customer_id is not None:
        q = q.where(Lease.customer_id == customer_id)
    return {state: n for state, n in session.execute(q).all()}


@dataclass(frozen=True)
class ModelCapacity:
    gpu_model: str
    total: int
    leased: int  # held by a lease right now
    idle: int  # on available nodes, free now
    draining: int  # on draining nodes, free now (will take no new lease)
    down: int


def capacity_by_model(nodes: list[Node], leased: Counter[int]) -> list[ModelCapacity]:
    per_model: dict[str, Counter[str]] = {}
    for n in nodes:
        if n.gpu_model is None:  # a CPU node: no GPUs to count
            continue
        c = per_model.setdefault(n.gpu_model, Counter())
        used = min(leased[n.id], n.gpu_count)
        c["total"] += n.gpu_count
        c["leased"] += used
        free = n.gpu_count - used
        c[{NodeState.AVAILABLE: "idle", NodeState.DRAINING: "draining"}.get(NodeState(n.state), "down")] += free
    return [
        ModelCapacity(m, c["total"], c["leased"], c["idle"], c["draining"], c["down"])
        for m, c in sorted(per_model.items())
    ]


@dataclass(frozen=True)
class FleetFigures:
    """What /metrics exports about the fleet at scrape time."""

    leases: dict[tuple[str, str], int]  # (state, plan) -> leases
    gpus: dict[tuple[str, str], int]  # (gpu model, node state) -> GPUs in service
    leased: dict[str, int]  # gpu model -> GPUs leased now
    cores_leased: dict[str, int]  # cpu model -> cores held by CPU leases now
    customers: dict[str, int]  # compliance status -> customers
    open_reviews: int
    unacknowledged_alerts: int


def fleet_figures(work: Work) -> FleetFigures:
    """The fleet gauges. /metrics is scraped without a key, as Prometheus does: counts only, no names."""
    s = work.session
    nodes = nodes_in_service(s)
    gpus: Counter[tuple[str, str]] = Counter()
    for n in nodes:
        if n.gpu_model is not None:
            gpus[(n.gpu_model, n.state)] += n.gpu_count
    leased: Counter[str] = Counter()
    for c in capacity_by_model(nodes, leased_per_node(s, work.now)):
        leased[c.gpu_model] += c.leased
    cores: Counter[str] = Counter()
    model_of = {n.id: n.cpu_model for n in nodes if n.cpu_model}
    for node_id, held in cores_leased_per_node(s, work.now).items():
        if node_id in model_of:
            cores[model_of[node_id]] += held
    return FleetFigures(
        leases={
            (st, plan): n
            for st, plan, n in s.execute(
                select(Lease.state, Lease.plan, func.count()).group_by(Lease.state, Lease.plan)
            )
        },
        gpus=dict(gpus),
        leased=dict(leased),
        cores_leased=dict(cores),
        customers={
            st: n
            for st, n in s.execute(
                select(Customer.compliance_status, func.count()).group_by(Customer.compliance_status)
            )
        },
        open_reviews=int(
            s.scalar(select(func.count()).select_from(ReviewItem).where(ReviewItem.status == "open")) or 0
        ),
        unacknowledged_alerts=count_unacknowledged(s),
    )


# --------------------------------------------------------------------------------------------- page views


@dataclass(frozen=True)
class Masthead:
    """What every dashboard page shows of who is signed in."""

    customer_name: str | None
    open_alerts: int


def masthead(work: Work, *, actor: Actor) -> Masthead:
    name = None
    if actor.customer_id is not None:
        c = work.session.get(Customer, actor.customer_id)
        name = c.legal_name if c is not None else None
    alerts = count_unacknowledged(work.session) if actor.role is not Role.CUSTOMER else 0
    return Masthead(name, alerts)


@dataclass(frozen=True)
class Overview:
    nodes: list[Node]
    bookings: list[Booking]  # in the window shown
    cpu_bookings: list[CpuBooking]  # CPU leases' cores in the window shown
    capacity: list[ModelCapacity]
    lease_counts: dict[str, int]
    open_reviews: int
    alerts: list[Alert]
    models: list[str]

    @property
    def leased_now(self) -> int:
        return sum(c.leased for c in self.capacity)

    @property
    def total_gpus(self) -> int:
        return sum(c.total for c in self.capacity)


def overview(work: Work, *, actor: Actor, start: datetime, end: datetime, gpu_model: str | None = None) -> Overview:
    """The fleet at a glance: who holds which GPU in [start, end), capacity now, leases, reviews, alerts."""
    require(actor, Permission.VIEW_FLEET)
    s = work.session
    nodes = sorted(
        nodes_in_service(s, gpu_model),
        key=lambda n: (n.cluster.site.name, n.cluster.name, n.gpu_model or "", n.name),
    )
    return Overview(
        nodes=nodes,
        bookings=calendar_bookings(s, nodes, start, end),
        cpu_bookings=cpu_calendar_bookings(s, nodes, start, end),
        capacity=capacity_by_model(nodes, leased_per_node(s, work.now)),
        lease_counts=lease_counts(s),
        open_reviews=len(reviews.list_reviews(work, actor=actor, status="open")),
        alerts=list_alerts(work, actor=actor, limit=8),
        models=sorted({n.gpu_model for n in nodes_in_service(s) if n.gpu_model is not None}),
    )


@dataclass(frozen=True)
class NodeLine:
    id: int
    name: str
    gpu_model: str | None
    gpu_count: int
    state: str
    leased: int  # GPUs held by a lease right now
    added: datetime
    cpu_model: str | None = None
    leasable_cores: int = 0  # cores CPU leases may be given (a GPU node: those not kept for its GPUs)
    cores_leased: int = 0  # held by CPU leases right now


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


def node_groups(work: Work, *, actor: Actor) -> list[NodeGroup]:
    """Nodes grouped by site and cluster, each with the GPUs leased on it now."""
    require(actor, Permission.VIEW_INVENTORY)
    leased = leased_per_node(work.session, work.now)
    cores = cores_leased_per_node(work.session, work.now)
    groups: dict[tuple[str, str], NodeGroup] = {}
    for n in sorted(nodes_in_service(work.session), key=lambda n: (n.cluster.site.name, n.cluster.name, n.name)):
        key = (n.cluster.site.name, n.cluster.name)
        if key not in groups:
            groups[key] = NodeGroup(key[0], key[1], n.cluster.backend, [])
        used = min(leased[n.id], n.gpu_count)
        view = cpu_node_view(n)
        groups[key].nodes.append(
            NodeLine(
                n.id,
                n.name,
                n.gpu_model,
                n.gpu_count,
                n.state,
                used,
                n.created_at,
                n.cpu_model,
                0 if view is None else len(view.leasable_cores),
                cores[n.id],
            )
        )
    return list(groups.values())


@dataclass(frozen=True)
class CustomerLine:
    customer: Customer
    lease_counts: dict[str, int]


def customer_directory(work: Work, *, actor: Actor) -> list[CustomerLine]:
    """Every customer with its compliance status and its leases per state (the staff's customer list)."""
    require(actor, Permission.VIEW_CUSTOMER_FILES)
    people = work.session.scalars(select(Customer).order_by(Customer.id)).all()
    return [CustomerLine(c, lease_counts(work.session, c.id)) for c in people]


@dataclass(frozen=True)
class CustomerFile:
    customer: Customer
    screening: ScreeningRecord | None
    invoices: list[billing.Invoice]
    leases: list[Lease]
    reviews: list[ReviewItem]


def customer_file(work: Work, *, actor: Actor, customer_id: int) -> CustomerFile:
    """One customer for the staff: KYC, the latest screening with its evidence, invoices, leases, reviews."""
    require(actor, Permission.VIEW_CUSTOMER_FILES)
    c = get_customer(work, actor=actor, customer_id=customer_id)
    try:
        sc = latest_screening(work, actor=actor, customer_id=customer_id)
    except NotFound:
        sc = None
    assert not isinstance(sc, ScreeningStatus)  # staff see the evidence
    periods = billing.usage_periods(work, actor=actor, customer_id=customer_id)
    return CustomerFile(
        customer=c,
        screening=sc,
        invoices=[billing.invoice(work, actor=actor, customer_id=customer_id, period=p) for p in periods],
        leases=leases.list_leases(work, actor=actor, customer_id=customer_id),
        reviews=reviews.list_reviews(work, actor=actor, status="all", customer_id=customer_id),
    )


@dataclass(frozen=True)
class SystemStatus:
    versions: list[ListVersion]
    lists: list[screening.ListStatus]  # each list in force with its publication date and any staleness warning
    chain: audit.VerifyResult
    usage_problems: list[str]
    telemetry: TelemetryStatus
    keys: list[keys.KeyRow]
    customers: list[tuple[int, str]]


def system_status(work: Work, *, actor: Actor, log: audit.AuditLog) -> SystemStatus:
    """The system page: list versions, the audit chain and usage checks, GPU telemetry, API keys."""
    require(actor, Permission.VERIFY_RECORDS)
    people = work.session.scalars(select(Customer).order_by(Customer.id)).all()
    versions = screening.list_versions(work, actor=actor)
    current = next((v for v in versions if v.in_force), None)
    max_age = work.settings.lists_max_age_days
    return SystemStatus(
        versions=versions,
        lists=[] if current is None else screening.list_status(current, work.now.date(), max_age),
        chain=log.verify(work.session),
        usage_problems=billing.verify_usage(work, actor=actor),
        telemetry=telemetry.status(),
        keys=keys.list_keys(work, actor=actor),
        customers=[(c.id, c.legal_name) for c in people],
    )
