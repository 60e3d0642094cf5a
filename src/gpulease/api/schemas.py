"""Pydantic schemas at the edge: they give requests and responses their shape and types. The business rules
(which values are acceptable) are the use cases' (services/), so every door refuses the same input alike.
Money travels as decimal strings, times as ISO 8601 with offset.

The bounds of every input (lengths, characters, ranges: services/limits.py) are stated in the OpenAPI document
with `doc(...)`, so clients and schema-driven testers know them; the use cases enforce them, with one sentence
for every door. schemathesis checks that the two agree in both directions (tests/api/test_schema_fuzz.py)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag

from gpulease.domain.cpu import cpuset
from gpulease.domain.customers import ComplianceStatus, ShownStatus, shown_status
from gpulease.domain.inventory import Backend, NodeState, NodeView
from gpulease.domain.leases import Plan
from gpulease.domain.pricing import Quote, Resource, canonical
from gpulease.services import limits
from gpulease.services.budgets import Limits
from gpulease.services.context import Actor, Role, from_epoch
from gpulease.services.customers import Contact, ProfileChange, ScreeningRecord, ScreeningStatus
from gpulease.services.inventory import Calendar, NodeCpus, cpu_node_view
from gpulease.services.keys import IssuedKey, KeyRow
from gpulease.services.kyc import KycInput, Officer, Owner
from gpulease.services.leases import LeaseRequest
from gpulease.services.leases import holdings as lease_holdings
from gpulease.services.node_failure import NodeFailure
from gpulease.services.prices import PriceListing
from gpulease.services.records import Alert, Customer, Lease, ListVersion, Node, ReviewDecision, ReviewItem
from gpulease.services.reviews import LicenceInput
from gpulease.services.screening import ListStatus, ScreeningResult
from gpulease.services.spend import CustomerSpend, InvoiceSoFar, LeaseSpend
from gpulease.services.webhooks import DeliveryView, NewWebhook, NotificationView, WebhookView


def amount(d: Decimal) -> str:
    """Money as a string with its cents: "2.50", never "2.5"."""
    return f"{d.quantize(Decimal('0.01')):f}"


def rate(d: Decimal) -> str:
    """A rate with at least its cents ("2.50") and every finer digit it has ("0.0042")."""
    return f"{canonical(d):f}"


def _json_number(v: Any) -> Any:
    """A number field takes a JSON number: not a string of digits, not true or false (pydantic's lax mode would)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError("must be a number")
    return v


def _json_string(v: Any) -> Any:
    """A date or a time is written as a string (pydantic's lax mode would read a number as a Unix time)."""
    if not isinstance(v, str):
        raise ValueError("must be written as an ISO 8601 string")
    return v


# The JSON types the OpenAPI document names, and no other: a request a schema-driven client sends is read exactly
# as the document says.
Int = Annotated[int, BeforeValidator(_json_number)]
Number = Annotated[float, BeforeValidator(_json_number)]
IsoDate = Annotated[date, BeforeValidator(_json_string)]
Moment = Annotated[AwareDatetime, BeforeValidator(_json_string)]


def doc(**schema: Any) -> Any:
    """Bounds for the OpenAPI document only: the use case checks them, with its own sentence."""
    return Field(json_schema_extra=schema)


def _text(max_len: int, pattern: str = limits.LINE) -> Any:
    return doc(maxLength=max_len, pattern=pattern)


def _enum(values: Any) -> Any:
    return doc(enum=[str(v) for v in values])


Name = Annotated[str, _text(limits.NAME_MAX, limits.REQUIRED_LINE)]
OptionalName = Annotated[str, _text(limits.NAME_MAX)] | None
PlaceName = Annotated[str, _text(limits.PLACE_MAX, limits.REQUIRED_LINE)]
GpuModelName = Annotated[str, doc(pattern=limits.GPU_MODEL)]
CpuModelName = Annotated[str, doc(pattern=limits.CPU_MODEL)]
CpuCores = Annotated[Int, doc(minimum=1, maximum=limits.CPU_CORES_MAX)]
MemoryGib = Annotated[Int, doc(minimum=1, maximum=limits.MEMORY_GIB_MAX)]
Sockets = Annotated[Int, doc(minimum=1, maximum=limits.SOCKETS_MAX)]
PlanName = Annotated[str, _enum(Plan)]
Country = Annotated[str, doc(pattern=limits.COUNTRY)]


class _NodePlaceIn(BaseModel):
    """Where a node is and what runs its work."""

    model_config = ConfigDict(extra="forbid")
    site: PlaceName = Field(examples=["fra1"])
    cluster: PlaceName = Field(examples=["a100-a"])
    name: Annotated[str, _text(limits.NODE_NAME_MAX, limits.REQUIRED_LINE)] = Field(examples=["fra1-a100-00"])
    backend: Annotated[str, _enum(Backend)] = Field(default="local", description="local | ray | slurm")


class NodeIn(_NodePlaceIn):
    gpu_model: GpuModelName = Field(examples=["A100-80GB"], description="a model of the catalogue, any case")
    gpu_count: Annotated[Int, doc(minimum=1, maximum=8)] = Field(description="1 to 8", examples=[8])
    # Its CPUs, if described (all three, or none): then CPU leases may use the cores not kept for its GPUs.
    cpu_model: CpuModelName | None = Field(default=None, description="the CPU catalogue's model, any case")
    cpu_cores: CpuCores | None = Field(default=None, description="physical cores, all sockets together")
    memory_gib: MemoryGib | None = None
    sockets: Sockets | None = Field(default=None, description="default: cpu_cores / the model's cores per socket")
    reserve_cores_per_gpu: Annotated[Int, doc(minimum=0, maximum=limits.CPU_CORES_MAX)] | None = Field(
        default=None, description="cores kept for each GPU's leases; default: per GPU model"
    )
    reserve_memory_gib_per_gpu: Annotated[Int, doc(minimum=0, maximum=limits.MEMORY_GIB_MAX)] | None = Field(
        default=None, description="GiB kept for each GPU's leases; default: per GPU model"
    )

    def cpus(self) -> NodeCpus | None:
        if self.cpu_model is None and self.cpu_cores is None and self.memory_gib is None:
            return None
        return NodeCpus(
            self.cpu_model or "",
            self.cpu_cores or 0,
            self.memory_gib or 0,
            self.sockets,
            self.reserve_cores_per_gpu,
            self.reserve_memory_gib_per_gpu,
        )


class CpuNodeIn(_NodePlaceIn):
    """A CPU node: cores and memory, no GPUs."""

    cpu_model: CpuModelName = Field(examples=["EPYC-9654"], description="the CPU catalogue's model, any case")
    cpu_cores: CpuCores = Field(examples=[192], description="physical cores, all sockets together")
    memory_gib: MemoryGib = Field(examples=[1536])
    sockets: Sockets | None = Field(default=None, description="default: cpu_cores / the model's cores per socket")

    def cpus(self) -> NodeCpus:
        return NodeCpus(self.cpu_model, self.cpu_cores, self.memory_gib, self.sockets)


class NodeOut(BaseModel):
    id: int
    site: str
    cluster: str
    name: str
    gpu_model: str | None = Field(description="null for a CPU node")
    gpu_count: int
    state: str
    backend: str
    cpu_model: str | None = Field(default=None, description="null where the node's CPUs are not described")
    sockets: int | None = None
    cpu_cores: int = 0
    memory_gib: int = 0
    reserve_cores_per_gpu: int | None = None
    reserve_memory_gib_per_gpu: int | None = None
    leasable_cores: int = Field(default=0, description="cores CPU leases may be given (not kept for its GPUs)")
    leasable_memory_gib: int = 0

    @classmethod
    def of(cls, n: Node) -> NodeOut:
        view = cpu_node_view(n)
        return cls(
            id=n.id,
            site=n.cluster.site.name,
            cluster=n.cluster.name,
            name=n.name,
            gpu_model=n.gpu_model,
            gpu_count=n.gpu_count,
            state=n.state,
            backend=n.cluster.backend,
            cpu_model=n.cpu_model,
            sockets=n.sockets if view is not None else None,
            cpu_cores=n.cpu_cores,
            memory_gib=n.memory_gib,
            reserve_cores_per_gpu=n.reserve_cores_per_gpu if n.gpu_count else None,
            reserve_memory_gib_per_gpu=n.reserve_memory_gib_per_gpu if n.gpu_count else None,
            leasable_cores=0 if view is None else len(view.leasable_cores),
            leasable_memory_gib=0 if view is None else view.leasable_memory_gib,
        )


class NodeStateOut(NodeOut):
    moved: list[int] = Field(default_factory=list, description="marking it down: leases moved to other GPUs")
    ended: list[int] = Field(default_factory=list, description="marking it down: leases ended (or cancelled)")

    @classmethod
    def of_change(cls, n: Node, failure: NodeFailure | None) -> NodeStateOut:
        moved, ended = ([], []) if failure is None else (failure.moved, failure.ended)
        return cls(**NodeOut.of(n).model_dump(), moved=moved, ended=ended)


class NodeStateIn(BaseModel):
    state: Annotated[str, _enum(NodeState)] = Field(description="available | draining | down")
    reason: Annotated[str, _text(limits.COMMENT_MAX, limits.TEXT)] | None = Field(
        default=None, description="why (marking a node down: kept in the alert, the audit log and lease events)"
    )


class GpuModelOut(BaseModel):
    name: str
    memory_gb: int
    bf16_dense_tflops: float
    interconnect: str


class _PriceTermsIn(BaseModel):
    """A price's terms besides its model and rate."""

    model_config = ConfigDict(extra="forbid")
    plan: PlanName = Field(description="on_demand | reserved | long_term | interruptible")
    currency: Annotated[str, doc(pattern=limits.CURRENCY)] = "USD"
    cancel_free_hours: Annotated[Int, doc(minimum=0, maximum=limits.CANCEL_FREE_HOURS_MAX)] = 24
    cancel_fee_fraction: Annotated[str, doc(pattern=limits.FRACTION)] = Field(
        default="0.5", description="0 to 1, a decimal string"
    )
    preemption_notice_s: Annotated[Int, doc(minimum=0, maximum=limits.NOTICE_MAX_S)] = 120


class PriceIn(_PriceTermsIn):
    gpu_model: GpuModelName = Field(examples=["A100-80GB"])
    rate: Annotated[str, doc(pattern=limits.RATE)] = Field(
        description="per GPU-hour (per GPU-month for long_term), a decimal string", examples=["1.25"]
    )


class CpuPriceIn(_PriceTermsIn):
    """The price of a CPU model's cores on a plan (and optionally of its memory)."""

    cpu_model: CpuModelName = Field(examples=["EPYC-9654"])
    rate: Annotated[str, doc(pattern=limits.RATE)] = Field(
        description="per core-hour (per core-month for long_term), a decimal string", examples=["0.045"]
    )
    gib_rate: Annotated[str, doc(pattern=limits.RATE)] | None = Field(
        default=None, description="per GiB of memory in the same unit; default 0 (memory comes with the cores)"
    )


class PriceOut(BaseModel):
    gpu_model: str | None = Field(description="null for a CPU model's price")
    cpu_model: str | None = Field(default=None, description="a CPU model's price: per core")
    plan: str
    rate: str
    gib_rate: str | None = Field(default=None, description="a CPU model's price: per GiB of memory")
    unit: str
    currency: str
    cancel_free_hours: int
    cancel_fee_fraction: str
    preemption_notice_s: int
    effective_from: datetime

    @classmethod
    def of(cls, p: PriceListing) -> PriceOut:
        e = p.entry
        cpu = e.resource is Resource.CPU
        return cls(
            gpu_model=None if cpu else e.gpu_model,
            cpu_model=e.gpu_model if cpu else None,
            gib_rate=rate(e.gib_rate) if cpu else None,
            plan=e.plan.value,
            rate=rate(e.rate),
            unit=e.unit.value,
            currency=e.currency,
            cancel_free_hours=e.cancel_free_hours,
            cancel_fee_fraction=f"{e.cancel_fee_fraction.normalize():f}",
            preemption_notice_s=e.preemption_notice_s,
            effective_from=p.effective_from,
        )


class OwnerIn(BaseModel):
    name: Name
    percent: Annotated[Number, doc(minimum=0, maximum=100)] = Field(description="share held, 0 to 100")
    date_of_birth: IsoDate | None = Field(default=None, description="an individual owner: tells it from namesakes")
    nationality: Country | None = Field(default=None, description="an individual owner: ISO 3166-1 alpha-2")


class OfficerIn(BaseModel):
    name: Name
    title: Annotated[str, _text(100)] | None = None
    date_of_birth: IsoDate | None = None
    nationality: Country | None = Field(default=None, description="ISO 3166-1 alpha-2")


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    legal_name: Name
    local_name: OptionalName = None
    country: Country = Field(description="ISO 3166-1 alpha-2", examples=["US"])
    address: Annotated[str, _text(limits.ADDRESS_MAX, limits.TEXT)] | None = None
    incorporated_on: IsoDate | None = Field(default=None, description="not in the future")
    email_domain: Annotated[str, _text(limits.DOMAIN_MAX)] | None = None
    website: OptionalName = None
    parent: OptionalName = None
    owners: Annotated[list[OwnerIn], doc(maxItems=limits.OWNERS_MAX)] = Field(
        default_factory=list, description="their shares add up to at most 100"
    )
    end_use: Annotated[str, _text(limits.END_USE_MAX, limits.TEXT)] | None = None
    requested_gpus: Annotated[Int, doc(minimum=0, maximum=limits.REQUESTED_GPUS_MAX)] | None = Field(
        default=None, description="capacity the customer expects to use"
    )
    officers: Annotated[list[OfficerIn], doc(maxItems=limits.OWNERS_MAX)] = Field(
        default_factory=list, description="directors and officers (individuals), screened like owners"
    )

    def kyc(self) -> KycInput:
        return KycInput(
            legal_name=self.legal_name,
            country=self.country,
            local_name=self.local_name,
            address=self.address,
            incorporated_on=self.incorporated_on,
            email_domain=self.email_domain,
            website=self.website,
            parent=self.parent,
            owners=tuple(Owner(o.name, o.percent, o.date_of_birth, o.nationality) for o in self.owners),
            end_use=self.end_use,
            requested_gpus=self.requested_gpus or 0,
            officers=tuple(Officer(f.name, f.title, f.date_of_birth, f.nationality) for f in self.officers),
        )


class CustomerOut(BaseModel):
    id: int
    legal_name: str
    local_name: str | None
    country: str
    address: str | None
    incorporated_on: date | None
    email_domain: str | None
    website: str | None
    parent: str | None
    owners: list[dict[str, Any]]
    officers: list[dict[str, Any]] = Field(default_factory=list)
    end_use: str | None
    requested_gpus: int = Field(default=0, description="GPUs it declared it expects to use (a red-flag input)")
    contacts: list[dict[str, Any]] = Field(default_factory=list, description="not screened")
    compliance_status: ShownStatus = Field(description="a customer sees its own account in review or denied as on_hold")
    created_at: datetime

    @classmethod
    def of(cls, c: Customer, actor: Actor | None = None) -> CustomerOut:
        return cls(
            id=c.id,
            legal_name=c.legal_name,
            local_name=c.local_name,
            country=c.country,
            address=c.address,
            incorporated_on=c.incorporated_on,
            email_domain=c.email_domain,
            website=c.website,
            parent=c.parent,
            owners=list(c.owners),
            officers=list(c.officers or []),
            end_use=c.end_use,
            requested_gpus=c.requested_gpus or 0,
            contacts=list(c.contacts),
            compliance_status=shown_status(
                c.compliance_status, to_customer=actor is not None and actor.role is Role.CUSTOMER
            ),
            created_at=c.created_at,
        )


class ComplianceFileOut(BaseModel):
    """A customer's compliance file (services/compliance_file.py): what an export-control auditor asks for."""

    customer_id: int
    generated_at: str
    compliance_status: str
    kyc: dict[str, Any]
    screenings: list[dict[str, Any]] = Field(description="every screening, with the list version it used")
    reviews: list[dict[str, Any]] = Field(description="reviews with each decision: approvers, licences, evidence")
    red_flags: list[dict[str, Any]] = Field(description="of the latest screening")
    ownership: dict[str, Any] | None = Field(description="of the latest screening")
    threshold_reports: list[dict[str, Any]] = Field(description="compute thresholds crossed or projected")
    audit: list[dict[str, Any]] = Field(description="audit entries about the customer, its leases and reviews")


class _BookingIn(BaseModel):
    """What every lease request says besides what it rents: who, the plan and the window."""

    model_config = ConfigDict(extra="forbid")
    customer_id: Int | None = Field(
        default=None, ge=1, le=limits.MAX_ID, description="defaults to the caller's own customer"
    )
    plan: PlanName = Field(default="on_demand", description="on_demand | reserved | long_term | interruptible")
    start: Moment | Literal["now", "asap"] = Field(
        default="now", description=f"not in the past; the window ends at most {limits.HORIZON.days} days ahead"
    )
    end: Moment | None = None
    duration_s: Annotated[Int, doc(minimum=1, maximum=limits.LEASE_MAX_S)] | None = Field(
        default=None, description='with start "asap": how long, in seconds'
    )
    max_wait_s: Annotated[Int, doc(minimum=1, maximum=limits.MAX_WAIT_MAX_S)] | None = Field(
        default=None, description='with start "asap": longest wait in the queue'
    )


class LeaseIn(_BookingIn):
    gpu_model: GpuModelName = Field(examples=["A100-80GB"], description="a model of the catalogue, any case")
    gpu_count: Annotated[Int, doc(minimum=1, maximum=64)] = Field(description="1 to 64", examples=[8])

    def request(self) -> LeaseRequest:
        return LeaseRequest(
            self.gpu_model,
            self.gpu_count,
            self.plan,
            self.start,
            self.end,
            self.customer_id,
            self.duration_s,
            self.max_wait_s,
        )


class CpuLeaseIn(_BookingIn):
    """A CPU lease: cores (and memory) of one node, instead of GPUs."""

    cpu_cores: CpuCores = Field(examples=[16], description=f"1 to {limits.CPU_CORES_MAX}, on one node")
    memory_gib: MemoryGib | None = Field(default=None, description="default: the cores' share of the node's memory")
    cpu_model: CpuModelName | None = Field(default=None, description="default: any model (priced as placed)")

    def request(self) -> LeaseRequest:
        return LeaseRequest(
            "",
            0,
            self.plan,
            self.start,
            self.end,
            self.customer_id,
            self.duration_s,
            self.max_wait_s,
            cpu_cores=self.cpu_cores,
            memory_gib=self.memory_gib,
            cpu_model=self.cpu_model,
        )


def _resource(body: Any) -> str:
    """Which kind of booking a body is: CPU cores when it names cpu_cores, GPUs otherwise. A bad GPU booking is then
    told what is wrong with it alone, not also what a CPU booking would have needed ("CpuLeaseIn.cpu_cores: Field
    required")."""
    named = body.keys() if isinstance(body, dict) else vars(body) if isinstance(body, BaseModel) else ()
    return "cpu" if "cpu_cores" in named else "gpu"


BookingIn = Annotated[Annotated[LeaseIn, Tag("gpu")] | Annotated[CpuLeaseIn, Tag("cpu")], Discriminator(_resource)]


class QuoteOut(BaseModel):
    gpu_model: str | None = Field(description="null for a CPU lease")
    gpu_count: int
    cpu_model: str | None = Field(default=None, description="a CPU lease: the model its cores are priced as")
    cpu_cores: int | None = None
    memory_gib: int | None = None
    gib_rate: str | None = Field(default=None, description="a CPU lease: per GiB of memory, in the rate's unit")
    plan: str
    rate: str
    unit: str
    currency: str
    start: datetime
    end: datetime | None
    estimated_total: str | None
    cancel_free_hours: int
    cancel_fee_fraction: str
    preemption_notice_s: int

    @classmethod
    def of(cls, q: Quote) -> QuoteOut:
        cpu = q.resource is Resource.CPU
        return cls(
            gpu_model=None if cpu else q.gpu_model,
            gpu_count=0 if cpu else q.gpu_count,
            cpu_model=q.gpu_model if cpu else None,
            cpu_cores=q.gpu_count if cpu else None,
            memory_gib=q.memory_gib if cpu else None,
            gib_rate=rate(q.gib_rate) if cpu else None,
            plan=q.plan.value,
            rate=rate(q.rate),
            unit=q.unit.value,
            currency=q.currency,
            start=from_epoch(q.start),
            end=None if q.end is None else from_epoch(q.end),
            estimated_total=None if q.estimated_total is None else amount(q.estimated_total),
            cancel_free_hours=q.cancel_free_hours,
            cancel_fee_fraction=f"{q.cancel_fee_fraction:f}",
            preemption_notice_s=q.preemption_notice_s,
        )


class GpuOut(BaseModel):
    node: str
    node_id: int
    index: int


class CoresOut(BaseModel):
    node: str
    node_id: int
    cores: list[int]
    cpuset: str = Field(description="the cores in the Linux list format (taskset -c, cpuset.cpus): 0-7,16")


class LeaseOut(BaseModel):
    id: int
    customer_id: int
    resource: str = Field(default="gpu", description="gpu | cpu")
    gpu_model: str | None = Field(description="null for a CPU lease")
    gpu_count: int
    cpu_model: str | None = None
    cpu_cores: int | None = None
    memory_gib: int | None = None
    plan: str
    state: str
    state_reason: str | None
    start: datetime
    end: datetime | None
    created_at: datetime
    activated_at: datetime | None
    ended_at: datetime | None
    preempt_at: datetime | None
    queued_until: datetime | None
    gpus: list[GpuOut]
    cores: list[CoresOut] = Field(
        default_factory=list,
        description="the cores it holds: a CPU lease's own; a GPU lease's GPUs' share on nodes with CPUs described",
    )
    quote: QuoteOut
    cost_so_far: str = Field(description="usage on record plus what a running lease has used since (accrued)")
    final_cost: str | None = Field(description="once the lease is closed: its usage on record, which is final")
    elapsed_s: int = Field(description="seconds it has run")
    remaining_s: int | None = Field(description="seconds to its end (or preemption); null when open-ended")
    preempted: list[int] = Field(default_factory=list, description="interruptible leases given notice for this one")

    @staticmethod
    def holdings(lease: Lease, nodes: Mapping[int, NodeView] | None = None) -> tuple[list[GpuOut], list[CoresOut]]:
        """The GPUs and cores the answer shows: read from the lease's allocations and their nodes (a booking's
        `nodes` as placed, `leases.holdings`), so while its session is open; `of` needs nothing else but the
        lease's own columns."""
        held = lease_holdings(lease, nodes)
        return (
            [GpuOut(node=name, node_id=node_id, index=index) for name, node_id, index in held.gpus],
            [CoresOut(node=h.node, node_id=h.node_id, cores=list(h.cores), cpuset=h.cpuset) for h in held.cores],
        )

    @classmethod
    def of(
        cls,
        lease: Lease,
        spend: LeaseSpend,
        preempted: list[int] | None = None,
        holdings: tuple[list[GpuOut], list[CoresOut]] | None = None,
    ) -> LeaseOut:
        """The answer for `lease`; with its `holdings` read already, from the lease's own columns alone (after its
        session has closed)."""
        gpus, cores = LeaseOut.holdings(lease) if holdings is None else holdings
        return cls(
            id=lease.id,
            customer_id=lease.customer_id,
            resource=lease.resource,
            gpu_model=lease.gpu_model,
            gpu_count=lease.gpu_count,
            cpu_model=lease.cpu_model,
            cpu_cores=lease.cpu_cores,
            memory_gib=lease.memory_gib,
            plan=lease.plan,
            state=lease.state,
            state_reason=lease.state_reason,
            start=lease.starts_at,
            end=lease.ends_at,
            created_at=lease.created_at,
            activated_at=lease.activated_at,
            ended_at=lease.ended_at,
            preempt_at=lease.preempt_at,
            queued_until=lease.queued_until,
            gpus=gpus,
            cores=cores,
            quote=QuoteOut.of(Quote.from_dict(lease.quote)),
            cost_so_far=amount(spend.cost_so_far),
            final_cost=None if spend.final_cost is None else amount(spend.final_cost),
            elapsed_s=spend.elapsed_s,
            remaining_s=spend.remaining_s,
            preempted=preempted or [],
        )


class ExtendIn(BaseModel):
    end: Moment


class LeaseEventOut(BaseModel):
    at: datetime
    from_state: str | None
    to_state: str
    actor: str
    reason: str | None


class GpuUsagePointOut(BaseModel):
    at: datetime = Field(description="the start of the bucket")
    utilization_pct: float = Field(description="mean utilisation of the lease's GPUs over the bucket")
    memory_used_mib: int = Field(description="the most memory in use on any one of its GPUs")


class GpuUsageOut(BaseModel):
    """NVML readings of the lease's GPUs (every `telemetry_interval_s` while it is active, on hosts with NVML)."""

    lease_id: int
    since: datetime
    until: datetime
    readings: int = Field(description="readings in the window (one per GPU per sampling)")
    mean_utilization_pct: float | None = Field(description="null without readings")
    peak_memory_mib: int | None
    nvml_available: bool = Field(description="whether this server host can read its GPUs (NVML)")
    reason: str | None = Field(description="why not, when it cannot")
    points: list[GpuUsagePointOut]


class AvailabilityOut(BaseModel):
    gpu_model: str | None = Field(description="null when asked for CPU cores")
    gpu_count: int
    cpu_model: str | None = Field(default=None, description="CPU cores: the model asked for, or where it would land")
    cpu_cores: int | None = None
    memory_gib: int | None = None
    start: datetime
    end: datetime | None
    available: bool
    earliest_start: datetime | None
    reason: str | None
    quotes: dict[str, QuoteOut]


class InvoiceLineOut(BaseModel):
    lease_id: int
    kind: str
    description: str
    gpu_model: str | None
    gpu_count: int
    plan: str
    start: datetime
    end: datetime
    seconds: int
    rate: str
    unit: str
    amount: str
    resource: str = Field(default="gpu", description="gpu | cpu")
    cpu_model: str | None = None
    cpu_cores: int | None = None
    memory_gib: int | None = None
    gib_rate: str | None = None
    core_hours: str | None = Field(default=None, description="a CPU lease's line: cores x hours")


class AccruedLineOut(BaseModel):
    """A running lease's use in the month not on the invoice yet: accrued, not final."""

    lease_id: int
    description: str
    gpu_model: str | None
    gpu_count: int
    plan: str
    start: datetime
    end: datetime = Field(description="now: the lease is still running")
    seconds: int
    rate: str
    unit: str
    amount: str
    running: bool = True


class InvoiceOut(BaseModel):
    customer_id: int
    period: str
    currency: str
    total: str = Field(description="the invoice: usage on record")
    lines: list[InvoiceLineOut]
    accrued_total: str = Field(description="what running leases have used this month, not on the invoice yet")
    accrued_lines: list[AccruedLineOut] = Field(description="one per running lease, marked running")

    @classmethod
    def of(cls, s: InvoiceSoFar) -> InvoiceOut:
        inv = s.invoice
        return cls(
            customer_id=inv.customer_id,
            period=inv.period,
            currency=inv.currency,
            total=amount(inv.total),
            lines=[
                InvoiceLineOut(
                    lease_id=ln.lease_id,
                    kind=ln.kind,
                    description=ln.description,
                    gpu_model=ln.gpu_model,
                    gpu_count=ln.gpu_count,
                    plan=ln.plan,
                    start=ln.start,
                    end=ln.end,
                    seconds=ln.seconds,
                    rate=rate(ln.rate),
                    unit=ln.unit,
                    amount=amount(ln.amount),
                    resource=ln.resource,
                    cpu_model=ln.cpu_model,
                    cpu_cores=ln.cpu_cores,
                    memory_gib=ln.memory_gib,
                    gib_rate=None if ln.gib_rate is None else rate(ln.gib_rate),
                    core_hours=None
                    if ln.cpu_cores is None
                    else f"{(Decimal(ln.cpu_cores * ln.seconds) / 3600).quantize(Decimal('0.0001')):f}",
                )
                for ln in inv.lines
            ],
            accrued_total=amount(s.accrued_total),
            accrued_lines=[
                AccruedLineOut(
                    lease_id=a.lease_id,
                    description=a.description,
                    gpu_model=a.gpu_model,
                    gpu_count=a.gpu_count,
                    plan=a.plan,
                    start=a.start,
                    end=a.end,
                    seconds=a.seconds,
                    rate=rate(a.rate),
                    unit=a.unit,
                    amount=amount(a.amount),
                )
                for a in s.accrued
            ],
        )


class UsageCheckOut(BaseModel):
    ok: bool
    problems: list[str]


class ScreeningStatusOut(BaseModel):
    """What a customer sees of its own screening."""

    customer_id: int
    compliance_status: ShownStatus
    at: datetime

    @classmethod
    def of(cls, s: ScreeningStatus) -> ScreeningStatusOut:
        return cls(customer_id=s.customer_id, compliance_status=s.compliance_status, at=s.at)


class CustomerScreeningOut(ScreeningStatusOut):
    """The latest screening with its evidence (operators and compliance officers)."""

    trigger: str
    decision: ComplianceStatus
    status: ComplianceStatus
    reasons: list[str]
    list_version: str | None
    name_hits: list[dict[str, Any]]
    ownership: dict[str, Any] | None
    red_flags: list[dict[str, Any]]

    @classmethod
    def of_record(cls, r: ScreeningRecord) -> CustomerScreeningOut:
        return cls(
            customer_id=r.customer_id,
            compliance_status=r.compliance_status,
            at=r.at,
            trigger=r.trigger,
            decision=r.status,
            status=r.status,
            reasons=list(r.reasons),
            list_version=r.list_version,
            name_hits=[dict(h) for h in r.name_hits],
            ownership=None if r.ownership is None else dict(r.ownership),
            red_flags=[dict(f) for f in r.red_flags],
        )


class ScreenIn(BaseModel):
    name: Annotated[str, _text(limits.SCREEN_NAME_MAX, limits.REQUIRED_LINE)] = Field(examples=["iFlytek Co., Ltd."])
    country: Country | None = Field(default=None, examples=["CN"])
    address: Annotated[str, _text(limits.SCREEN_ADDRESS_MAX, limits.TEXT)] | None = None
    date_of_birth: IsoDate | None = Field(default=None, description="for a person: agreeing identifiers raise a match")
    nationality: Country | None = Field(default=None, description="for a person: ISO 3166-1 alpha-2")


class ScoreFeature(BaseModel):
    name: str
    points: float
    detail: str


class EnrichmentSource(BaseModel):
    kind: str  # an alias's kind (legal_name, short_name, ...), or subsidiary
    script: str | None
    source_url: str | None
    note: str | None
    relation: str | None = None  # a known subsidiary's: wholly_owned, majority_owned, controlled, successor
    share: str | None = None  # ... and the parent's share where the source states it ("100%")


class ListedAddress(BaseModel):
    street: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    country: str | None


class ListedIdentifier(BaseModel):
    kind: str
    value: str
    country: str | None


class ScreenHit(BaseModel):
    """A hit explained for a compliance officer: what matched, what the listing means, which rule decided."""

    entry_id: str
    list: str
    list_name: str
    name: str
    matched_name: str
    matched_kind: str  # primary name, alias, enrichment alias, known subsidiary
    enrichment: EnrichmentSource | None
    score: float
    features: builtins.list[ScoreFeature]  # `list` is a field name in this class
    reasons: builtins.list[str]
    outcome: ComplianceStatus
    rule: str
    blocking: bool
    restriction: str
    entry_type: str
    programs: builtins.list[str]
    federal_register: str | None
    listing_date: str | None
    license_requirement: str | None
    license_policy: str | None
    addresses: builtins.list[ListedAddress]
    countries: builtins.list[str]
    dates_of_birth: builtins.list[str]
    nationalities: builtins.list[str]
    identifiers: builtins.list[ListedIdentifier]
    remarks: str | None
    source_url: str | None
    country_agrees: bool | None
    affiliate: bool


class ScreenOut(BaseModel):
    decision: ComplianceStatus
    reasons: list[str]
    list_version: str | None
    hits: list[ScreenHit]

    @classmethod
    def of(cls, r: ScreeningResult) -> ScreenOut:
        return cls.model_validate(r.to_dict())


class ReviewOut(BaseModel):
    id: int
    kind: str
    customer_id: int
    status: str
    summary: str
    details: dict[str, Any]
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None
    open: bool = Field(description="still to be decided (open or awaiting_second_approval)")
    licence_needed_for: list[str] = Field(
        default_factory=list, description="blocking-list entries an approval clears: a licence and two officers"
    )
    decisions: list[dict[str, Any]] = Field(
        default_factory=list, description="each officer's decision with its licence and evidence fingerprint"
    )

    @classmethod
    def of(
        cls, r: ReviewItem, decisions: Sequence[ReviewDecision] = (), licence_needed_for: Sequence[str] = ()
    ) -> ReviewOut:
        return cls(
            open=r.status in ("open", "awaiting_second_approval"),
            licence_needed_for=list(licence_needed_for),
            decisions=[
                {
                    "at": d.at.isoformat(),
                    "by": d.actor,
                    "decision": d.decision,
                    "comment": d.comment,
                    "licence": d.licence,
                    "evidence_fingerprint": d.fingerprint,
                    "final": d.final,
                }
                for d in decisions
            ],
            id=r.id,
            kind=r.kind,
            customer_id=r.customer_id,
            status=r.status,
            summary=r.summary,
            details=r.details,
            created_at=r.created_at,
            decided_by=r.decided_by,
            decided_at=r.decided_at,
            comment=r.comment,
        )


class LicenceIn(BaseModel):
    """The licence or exception a clearance of a blocking-list hit relies on."""

    authority: Annotated[str, _text(100, limits.REQUIRED_TEXT)] = Field(description="e.g. BIS, OFAC")
    number: Annotated[str, _text(100, limits.REQUIRED_TEXT)]
    expires_on: date
    scope: Annotated[str, _text(500, limits.TEXT)] | None = Field(default=None, description="what it covers")

    def input(self) -> LicenceInput:
        return LicenceInput(self.authority, self.number, self.expires_on, self.scope)


class DecisionIn(BaseModel):
    decision: Annotated[str, doc(enum=["approve", "deny"])] = Field(description="approve | deny")
    comment: Annotated[str, _text(limits.COMMENT_MAX, limits.REQUIRED_TEXT)] = Field(
        description="why: kept in the audit log"
    )
    licence: LicenceIn | None = Field(
        default=None, description="required to approve a strong hit on a blocking list (SDN, EL, DPL, UN)"
    )


class AlertOut(BaseModel):
    id: int
    at: datetime
    kind: str
    message: str
    data: dict[str, Any]
    acknowledged: bool

    @classmethod
    def of(cls, a: Alert) -> AlertOut:
        return cls(id=a.id, at=a.at, kind=a.kind, message=a.message, data=a.data, acknowledged=a.acknowledged)


class ListStatusOut(BaseModel):
    """One list of a version: its entries, the file it came from, when it was published, and a warning when
    it is older than the configured age or of unknown date."""

    list: str
    entries: int
    source: str
    file: str
    published: str | None
    published_basis: str | None
    age_days: int | None
    stale: bool
    warning: str | None
    missing_entry_rows: int


class ListVersionOut(BaseModel):
    id: int
    in_force: bool
    loaded_at: datetime
    counts: dict[str, int]
    sources: list[dict[str, Any]]
    content_hash: str
    lists: list[ListStatusOut]

    @classmethod
    def of(cls, v: ListVersion, lists: Sequence[ListStatus]) -> ListVersionOut:
        return cls(
            id=v.id,
            in_force=v.in_force,
            loaded_at=v.loaded_at,
            counts=dict(v.counts),
            sources=list(v.sources),
            content_hash=v.content_hash,
            lists=[ListStatusOut.model_validate(r.to_dict()) for r in lists],
        )


class AuditCheckOut(BaseModel):
    ok: bool
    records: int
    broken_seq: int | None
    problem: str | None
    pending: int = Field(description="records committed but not yet sealed into the chain")
    checkpoints: int = Field(description="signed checkpoints checked against the chain")
    signatures_checked: bool


class CheckpointOut(BaseModel):
    """A signed statement of the audit chain's size and head hash (a C2SP signed note in `note`)."""

    size: int
    head: str
    time: datetime
    key_id: str
    signature: str
    note: str
    public_key: str


class TelemetryOut(BaseModel):
    nvml_available: bool
    reason: str | None
    note: str | None


class BookingOut(BaseModel):
    gpu: int
    lease_id: int
    customer_id: int
    plan: str
    state: str
    start: datetime
    end: datetime | None


class CpuBookingOut(BaseModel):
    lease_id: int
    customer_id: int
    plan: str
    state: str
    start: datetime
    end: datetime | None
    cores: list[int]
    cpuset: str
    memory_gib: int


class NodeCalendarOut(NodeOut):
    bookings: list[BookingOut]
    cpu_bookings: list[CpuBookingOut] = Field(
        default_factory=list, description="CPU leases' cores and memory on the node (where its CPUs are described)"
    )


class CalendarOut(BaseModel):
    start: datetime
    end: datetime
    nodes: list[NodeCalendarOut]

    @classmethod
    def of(cls, cal: Calendar) -> CalendarOut:
        return cls(
            start=cal.start,
            end=cal.end,
            nodes=[
                NodeCalendarOut(
                    **NodeOut.of(n.node).model_dump(),
                    bookings=[
                        BookingOut(
                            gpu=b.gpu,
                            lease_id=b.lease_id,
                            customer_id=b.customer_id,
                            plan=b.plan,
                            state=b.state,
                            start=b.start,
                            end=b.end,
                        )
                        for b in n.bookings
                    ],
                    cpu_bookings=[
                        CpuBookingOut(
                            lease_id=c.lease_id,
                            customer_id=c.customer_id,
                            plan=c.plan,
                            state=c.state,
                            start=c.start,
                            end=c.end,
                            cores=list(c.cores),
                            cpuset=cpuset(c.cores),
                            memory_gib=c.memory_gib,
                        )
                        for c in n.cpu_bookings
                    ],
                )
                for n in cal.nodes
            ],
        )


# --------------------------------------------------------------------------------------------- spend and limits


class SpendLeaseOut(BaseModel):
    lease_id: int
    gpu_model: str | None
    gpu_count: int
    plan: str
    state: str
    billed: str
    accrued: str
    running: bool = Field(description="still running: its accrued part grows by the second")


class SpendDayOut(BaseModel):
    date: date
    amount: str


class SpendOut(BaseModel):
    customer_id: int
    period: str
    currency: str
    billed: str = Field(description="usage on record this month (the invoice)")
    accrued: str = Field(description="what running leases have used this month, not on record yet")
    month_to_date: str = Field(description="billed + accrued")
    forecast: str = Field(description="month_to_date + what leases booked now cost until the month ends")
    forecast_method: str
    limit: str | None = Field(description="the monthly spend limit; null: none")
    percent_of_limit: str | None
    as_of: datetime
    leases: list[SpendLeaseOut]
    days: list[SpendDayOut] = Field(description="spent each day of the month so far (billed and accrued)")

    @classmethod
    def of(cls, s: CustomerSpend) -> SpendOut:
        return cls(
            customer_id=s.customer_id,
            period=s.period,
            currency=s.currency,
            billed=amount(s.billed),
            accrued=amount(s.accrued),
            month_to_date=amount(s.month_to_date),
            forecast=amount(s.forecast),
            forecast_method=s.forecast_method,
            limit=None if s.limit is None else amount(s.limit),
            percent_of_limit=None if s.percent_of_limit is None else f"{s.percent_of_limit:f}",
            as_of=s.as_of,
            leases=[
                SpendLeaseOut(
                    lease_id=x.lease_id,
                    gpu_model=x.gpu_model,
                    gpu_count=x.gpu_count,
                    plan=x.plan,
                    state=x.state,
                    billed=amount(x.billed),
                    accrued=amount(x.accrued),
                    running=x.running,
                )
                for x in s.leases
            ],
            days=[SpendDayOut(date=d.day, amount=amount(d.amount)) for d in s.days],
        )


class LimitsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    monthly_spend_limit: Annotated[str, doc(pattern=limits.RATE)] | None = Field(
        description="per calendar month, in the price book's currency; null: no limit", examples=["5000.00"]
    )
    gpu_quota: dict[str, int] = Field(
        default_factory=dict, description="GPU model -> most GPUs held at once", examples=[{"A100-80GB": 16}]
    )


class LimitsOut(BaseModel):
    customer_id: int
    monthly_spend_limit: str | None
    gpu_quota: dict[str, int]

    @classmethod
    def of(cls, x: Limits) -> LimitsOut:
        limit = None if x.monthly_spend_limit is None else amount(x.monthly_spend_limit)
        return cls(customer_id=x.customer_id, monthly_spend_limit=limit, gpu_quota=x.gpu_quota)


# --------------------------------------------------------------------------------------------- self-service


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, _text(limits.CONTACT_NAME_MAX, limits.REQUIRED_LINE)]
    email: Annotated[str, doc(maxLength=limits.EMAIL_MAX, pattern=limits.EMAIL)]
    phone: Annotated[str, _text(limits.PHONE_MAX)] | None = None
    role: Annotated[str, _text(limits.CONTACT_ROLE_MAX)] | None = Field(default=None, examples=["billing"])


class CustomerPatch(BaseModel):
    """Fields to change; those left out stay. A change to anything but contacts screens the customer again."""

    model_config = ConfigDict(extra="forbid")
    legal_name: Name | None = None
    local_name: OptionalName = None
    country: Country | None = None
    address: Annotated[str, _text(limits.ADDRESS_MAX, limits.TEXT)] | None = None
    email_domain: Annotated[str, _text(limits.DOMAIN_MAX)] | None = None
    website: OptionalName = None
    parent: OptionalName = None
    end_use: Annotated[str, _text(limits.END_USE_MAX, limits.TEXT)] | None = None
    owners: Annotated[list[OwnerIn], doc(maxItems=limits.OWNERS_MAX)] | None = None
    contacts: Annotated[list[ContactIn], doc(maxItems=limits.CONTACTS_MAX)] | None = None
    requested_gpus: Annotated[Int, doc(minimum=0, maximum=limits.REQUESTED_GPUS_MAX)] | None = Field(
        default=None, description="capacity the customer expects to use"
    )

    def change(self) -> ProfileChange:
        return ProfileChange(
            legal_name=self.legal_name,
            local_name=self.local_name,
            country=self.country,
            address=self.address,
            email_domain=self.email_domain,
            website=self.website,
            parent=self.parent,
            end_use=self.end_use,
            owners=None
            if self.owners is None
            else tuple(Owner(o.name, o.percent, o.date_of_birth, o.nationality) for o in self.owners),
            contacts=None
            if self.contacts is None
            else tuple(Contact(c.name, c.email, c.phone, c.role) for c in self.contacts),
            requested_gpus=self.requested_gpus,
        )


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Annotated[str, _enum(("operator", "compliance", "customer"))] | None = Field(
        default=None, description="operators: operator | compliance | customer; customers: customer (the default)"
    )
    customer_id: Annotated[Int, doc(minimum=1, maximum=limits.ID_MAX)] | None = Field(
        default=None, description="customer keys (operators)"
    )
    label: Annotated[str, _text(limits.LABEL_MAX)] | None = Field(
        default=None, description="a name to recognise the key by"
    )


class KeyRotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grace_s: Annotated[Int, doc(minimum=0, maximum=limits.KEY_GRACE_MAX_S)] = Field(
        default=0, description="the old secret keeps working this long (at most 7 days)"
    )


class KeyPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: Annotated[str, _text(limits.LABEL_MAX)] | None


class KeyOut(BaseModel):
    id: int
    prefix: str
    role: str
    customer_id: int | None
    customer: str | None
    label: str | None
    created_at: datetime
    revoked_at: datetime | None = Field(description="when it stopped (or, rotated with grace, stops) working")

    @classmethod
    def of(cls, k: KeyRow) -> KeyOut:
        return cls(
            id=k.id,
            prefix=k.prefix,
            role=k.role,
            customer_id=k.customer_id,
            customer=k.customer,
            label=k.label,
            created_at=k.created_at,
            revoked_at=k.revoked_at,
        )


class KeyCreatedOut(KeyOut):
    key: str | None = Field(description="the secret: shown in this answer only (null when replayed)")

    @classmethod
    def issued(cls, k: IssuedKey) -> KeyCreatedOut:
        return cls(**KeyOut.of(k.key).model_dump(), key=k.secret)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Annotated[str, doc(maxLength=limits.URL_MAX, pattern=limits.HTTP_URL)] = Field(
        examples=["https://example.com/hooks/gpulease"]
    )
    events: Annotated[list[Annotated[str, _text(limits.FILTER_MAX)]], doc(minItems=1, maxItems=50)] = Field(
        examples=[["lease.started", "lease.ended", "budget.threshold"]], description='event types, or ["*"] for all'
    )
    description: Annotated[str, _text(limits.WEBHOOK_DESCRIPTION_MAX)] | None = None
    customer_id: Annotated[Int, doc(minimum=1, maximum=limits.ID_MAX)] | None = Field(
        default=None, description="operators: whose webhook"
    )


class WebhookOut(BaseModel):
    id: int
    customer_id: int
    url: str
    events: list[str]
    description: str | None
    created_at: datetime

    @classmethod
    def of(cls, h: WebhookView) -> WebhookOut:
        return cls(
            id=h.id,
            customer_id=h.customer_id,
            url=h.url,
            events=h.events,
            description=h.description,
            created_at=h.created_at,
        )


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="signs every delivery (X-Gpulease-Signature); shown in this answer only")

    @classmethod
    def made(cls, n: NewWebhook) -> WebhookCreatedOut:
        return cls(**WebhookOut.of(n.webhook).model_dump(), secret=n.secret)


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    event: str
    event_id: str
    state: str = Field(description="pending | delivered | failed | cancelled")
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    history: list[dict[str, Any]]

    @classmethod
    def of(cls, d: DeliveryView) -> DeliveryOut:
        return cls(**{f: getattr(d, f) for f in cls.model_fields})


class TestDeliveryOut(BaseModel):
    delivery_id: int


class NotificationOut(BaseModel):
    id: str
    type: str
    at: datetime
    lease_id: int | None
    data: dict[str, Any]

    @classmethod
    def of(cls, n: NotificationView) -> NotificationOut:
        return cls(id=n.id, type=n.type, at=n.at, lease_id=n.lease_id, data=n.data)
