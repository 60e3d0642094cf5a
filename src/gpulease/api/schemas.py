"""Pydantic schemas at the edge. Money travels as decimal strings, times as ISO 8601 with offset."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gpulease.domain.pricing import Quote
from gpulease.services.context import from_epoch
from gpulease.store.models import Customer, Lease, Node


class NodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: str = Field(min_length=1, max_length=100)
    cluster: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=100)
    gpu_model: str = Field(examples=["A100-80GB"])
    gpu_count: int = Field(ge=1, le=8)
    backend: Literal["local", "ray", "slurm"] = "local"


class NodeOut(BaseModel):
    id: int
    site: str
    cluster: str
    name: str
    gpu_model: str
    gpu_count: int
    state: str
    backend: str

    @classmethod
    def of(cls, n: Node) -> NodeOut:
        return cls(
            id=n.id,
            site=n.cluster.site.name,
            cluster=n.cluster.name,
            name=n.name,
            gpu_model=n.gpu_model,
            gpu_count=n.gpu_count,
            state=n.state,
            backend=n.cluster.backend,
        )


class NodeStateIn(BaseModel):
    state: Literal["available", "draining", "down"]


class GpuModelOut(BaseModel):
    name: str
    memory_gb: int
    bf16_dense_tflops: float
    interconnect: str


class PriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gpu_model: str
    plan: Literal["on_demand", "reserved", "long_term", "interruptible"]
    rate: Decimal = Field(description="per GPU-hour (per GPU-month for long_term)", examples=["1.25"])
    currency: str = "USD"
    cancel_free_hours: int = Field(default=24, ge=0)
    cancel_fee_fraction: Decimal = Field(default=Decimal("0.5"), ge=0, le=1)
    preemption_notice_s: int = Field(default=120, ge=0)


class PriceOut(BaseModel):
    gpu_model: str
    plan: str
    rate: str
    unit: str
    currency: str
    cancel_free_hours: int
    cancel_fee_fraction: str
    preemption_notice_s: int
    effective_from: datetime


class OwnerIn(BaseModel):
    name: str = Field(min_length=1, max_length=300)
    percent: float = Field(ge=0, le=100)


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    legal_name: str = Field(min_length=1, max_length=300)
    local_name: str | None = Field(default=None, max_length=300)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2", examples=["US"])
    address: str | None = None
    incorporated_on: date | None = None
    email_domain: str | None = None
    website: str | None = None
    parent: str | None = None
    owners: list[OwnerIn] = Field(default_factory=list)
    end_use: str | None = None
    requested_gpus: int | None = Field(default=None, ge=0, description="capacity the customer expects to use")


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
    end_use: str | None
    compliance_status: str
    created_at: datetime

    @classmethod
    def of(cls, c: Customer) -> CustomerOut:
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
            end_use=c.end_use,
            compliance_status=c.compliance_status,
            created_at=c.created_at,
        )


class LeaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="defaults to the caller's own customer"
    )
    gpu_model: str = Field(examples=["A100-80GB"])
    gpu_count: int = Field(ge=1, le=64)
    plan: Literal["on_demand", "reserved", "long_term", "interruptible"] = "on_demand"
    start: AwareDatetime | Literal["now", "asap"] = "now"
    end: AwareDatetime | None = None
    duration_s: int | None = Field(default=None, gt=0, description='with start "asap": how long')
    max_wait_s: int | None = Field(default=None, gt=0, description='with start "asap": longest wait in queue')


class QuoteOut(BaseModel):
    gpu_model: str
    gpu_count: int
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
        return cls(
            gpu_model=q.gpu_model,
            gpu_count=q.gpu_count,
            plan=q.plan.value,
            rate=f"{q.rate:f}",
            unit=q.unit.value,
            currency=q.currency,
            start=from_epoch(q.start),
            end=None if q.end is None else from_epoch(q.end),
            estimated_total=None if q.estimated_total is None else f"{q.estimated_total:f}",
            cancel_free_hours=q.cancel_free_hours,
            cancel_fee_fraction=f"{q.cancel_fee_fraction:f}",
            preemption_notice_s=q.preemption_notice_s,
        )


class GpuOut(BaseModel):
    node: str
    node_id: int
    index: int


class LeaseOut(BaseModel):
    id: int
    customer_id: int
    gpu_model: str
    gpu_count: int
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
    quote: QuoteOut
    preempted: list[int] = Field(default_factory=list, description="interruptible leases given notice for this one")

    @classmethod
    def of(cls, lease: Lease, preempted: list[int] | None = None) -> LeaseOut:
        live = [a for a in lease.allocations if not a.released] or (
            lease.allocations if lease.state in ("ended", "preempted") else []
        )
        return cls(
            id=lease.id,
            customer_id=lease.customer_id,
            gpu_model=lease.gpu_model,
            gpu_count=lease.gpu_count,
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
            gpus=[
                GpuOut(node=a.node.name, node_id=a.node_id, index=a.gpu_index)
                for a in sorted(live, key=lambda a: (a.node_id, a.gpu_index))
            ],
            quote=QuoteOut.of(Quote.from_dict(lease.quote)),
            preempted=preempted or [],
        )


class ExtendIn(BaseModel):
    end: AwareDatetime


class LeaseEventOut(BaseModel):
    at: datetime
    from_state: str | None
    to_state: str
    actor: str
    reason: str | None


class AvailabilityOut(BaseModel):
    gpu_model: str
    gpu_count: int
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
    gpu_model: str
    gpu_count: int
    plan: str
    start: datetime
    end: datetime
    seconds: int
    rate: str
    unit: str
    amount: str


class InvoiceOut(BaseModel):
    customer_id: int
    period: str
    currency: str
    total: str
    lines: list[InvoiceLineOut]
