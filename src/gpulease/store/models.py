"""SQLAlchemy 2 models: the only place that knows the schema. Migrations in store/migrations."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from gpulease.store.types import UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Site(Base):
    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class Cluster(Base):
    __tablename__ = "clusters"
    __table_args__ = (UniqueConstraint("site_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    name: Mapped[str] = mapped_column(String(100))
    backend: Mapped[str] = mapped_column(String(20), default="local")
    site: Mapped[Site] = relationship()


class Node(Base):
    __tablename__ = "nodes"
    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id"))
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # A CPU node has no GPUs: gpu_model NULL, gpu_count 0 (issue 13).
    gpu_model: Mapped[str | None] = mapped_column(String(40), index=True)
    gpu_count: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), default="available")
    created_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]
    cluster: Mapped[Cluster] = relationship()
    # Its CPUs (domain/cpu.py's CpuNodeView): none described = cpu_cores 0. The per-GPU share kept for GPU leases
    # is NULL = GPU_SHARES of its GPU model.
    cpu_model: Mapped[str | None] = mapped_column(String(40))
    sockets: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    cpu_cores: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    memory_gib: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    reserve_cores_per_gpu: Mapped[int | None] = mapped_column(Integer)
    reserve_memory_gib_per_gpu: Mapped[int | None] = mapped_column(Integer)


class PriceRow(Base):
    """Price-book history: a change closes the old row and opens a new one; quotes are copied to leases."""

    __tablename__ = "prices"
    id: Mapped[int] = mapped_column(primary_key=True)
    # Exactly one of the two is set (a CHECK): a GPU model per GPU-hour or a CPU model per core-hour.
    gpu_model: Mapped[str | None] = mapped_column(String(40))
    cpu_model: Mapped[str | None] = mapped_column(String(40))
    gib_rate: Mapped[Decimal] = mapped_column(Numeric(18, 6), default=Decimal("0"), server_default=text("0"))
    plan: Mapped[str] = mapped_column(String(20))
    rate: Mapped[Decimal] = mapped_column(Numeric(18, 6))
    currency: Mapped[str] = mapped_column(String(3))
    cancel_free_hours: Mapped[int] = mapped_column(Integer, default=24)
    cancel_fee_fraction: Mapped[Decimal] = mapped_column(Numeric(6, 4), default=Decimal("0.5"))
    preemption_notice_s: Mapped[int] = mapped_column(Integer, default=120)
    effective_from: Mapped[datetime]
    superseded_at: Mapped[datetime | None]


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    legal_name: Mapped[str] = mapped_column(String(300))
    local_name: Mapped[str | None] = mapped_column(String(300))
    country: Mapped[str] = mapped_column(String(2))
    address: Mapped[str | None] = mapped_column(Text)
    incorporated_on: Mapped[date | None] = mapped_column(Date)
    email_domain: Mapped[str | None] = mapped_column(String(200))
    website: Mapped[str | None] = mapped_column(String(300))
    parent: Mapped[str | None] = mapped_column(String(300))
    owners: Mapped[list[Any]] = mapped_column(default=list)
    end_use: Mapped[str | None] = mapped_column(Text)
    # GPUs it declared it expects to use: read by the new-company red flag at every screening, not only the first.
    requested_gpus: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    compliance_status: Mapped[str] = mapped_column(String(20), default="review")
    cumulative_flop: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime]
    officers: Mapped[list[Any]] = mapped_column(default=list)  # [{"name", "title", "date_of_birth", "nationality"}]
    contacts: Mapped[list[Any]] = mapped_column(default=list)  # [{"name", "email", "phone", "role"}]: not screened
    # Set by operators: a monthly spend limit (in the price book's currency; NULL = none) and a quota of
    # concurrent GPUs per model ({"A100-80GB": 16}; a model absent = no quota).
    monthly_spend_limit: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    gpu_quota: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]  # when it stops working: now on revocation, later after a rotation's grace


class Lease(Base):
    __tablename__ = "leases"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    gpu_model: Mapped[str | None] = mapped_column(String(40))  # NULL for a CPU lease (gpu_count 0)
    gpu_count: Mapped[int] = mapped_column(Integer)
    plan: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(30), index=True)
    # What it rents: gpu, or cpu (cores and memory of one node; cpu_model NULL = any model, until placed).
    resource: Mapped[str] = mapped_column(String(8), default="gpu", server_default=text("'gpu'"))
    cpu_model: Mapped[str | None] = mapped_column(String(40))
    cpu_cores: Mapped[int | None] = mapped_column(Integer)
    memory_gib: Mapped[int | None] = mapped_column(Integer)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    quote: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    activated_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    preempt_at: Mapped[datetime | None]
    queued_until: Mapped[datetime | None]
    duration_s: Mapped[int | None] = mapped_column(Integer)  # for queued requests: the length asked for
    billed_until: Mapped[datetime | None]  # usage is recorded up to here (month-end checkpoints)
    state_reason: Mapped[str | None] = mapped_column(Text)
    allocations: Mapped[list[Allocation]] = relationship(back_populates="lease", order_by="Allocation.id")
    cpu_allocations: Mapped[list[CpuAllocation]] = relationship(back_populates="lease", order_by="CpuAllocation.id")
    memory_allocations: Mapped[list[MemoryAllocation]] = relationship(
        back_populates="lease", order_by="MemoryAllocation.id"
    )
    # Bumped by every transaction that changes the lease's allocations (row-locked: in commit order), so that
    # the calendars in memory apply two changes of one lease in the order they committed.
    calendar_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


class Allocation(Base):
    """One GPU held by a lease over [starts_at, ends_at); ends_at NULL = open-ended.

    On PostgreSQL an exclusion constraint (migration 0001) makes two live allocations of the same GPU over
    overlapping time impossible, whatever the application does.
    """

    __tablename__ = "allocations"
    __table_args__ = (Index("ix_alloc_gpu", "node_id", "gpu_index"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    gpu_index: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    released: Mapped[bool] = mapped_column(Boolean, default=False)
    lease: Mapped[Lease] = relationship(back_populates="allocations")
    node: Mapped[Node] = relationship()


class CpuAllocation(Base):
    """One core held by a CPU lease over [starts_at, ends_at); the same shape (and, on PostgreSQL, the same
    exclusion constraint, `no_double_booked_core`) as `allocations`."""

    __tablename__ = "cpu_allocations"
    __table_args__ = (Index("ix_cpu_alloc_core", "node_id", "core_index"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    core_index: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    released: Mapped[bool] = mapped_column(Boolean, default=False)
    lease: Mapped[Lease] = relationship(back_populates="cpu_allocations")
    node: Mapped[Node] = relationship()


class MemoryAllocation(Base):
    """The GiB of memory a CPU lease holds on its node over [starts_at, ends_at) (one row per placement)."""

    __tablename__ = "memory_allocations"
    __table_args__ = (Index("ix_memory_alloc_node", "node_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    gib: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    released: Mapped[bool] = mapped_column(Boolean, default=False)
    lease: Mapped[Lease] = relationship(back_populates="memory_allocations")


class LeaseEvent(Base):
    __tablename__ = "lease_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id"), index=True)
    at: Mapped[datetime]
    from_state: Mapped[str | None] = mapped_column(String(30))
    to_state: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)


class UsageRecord(Base):
    """Rated usage, written in the transaction of the lease event that causes it (unique: never twice)."""

    __tablename__ = "usage_records"
    __table_args__ = (UniqueConstraint("lease_id", "kind", "starts_at", name="uq_usage_once"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    period: Mapped[str] = mapped_column(String(7), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    seconds: Mapped[int] = mapped_column(Integer)
    gpu_model: Mapped[str | None] = mapped_column(String(40))  # NULL for a CPU lease's usage
    gpu_count: Mapped[int] = mapped_column(Integer)
    plan: Mapped[str] = mapped_column(String(20))
    rate: Mapped[Decimal] = mapped_column(Numeric(18, 6))
    unit: Mapped[str] = mapped_column(String(20))  # gpu_hour | gpu_month | core_hour | core_month
    resource: Mapped[str] = mapped_column(String(8), default="gpu", server_default=text("'gpu'"))
    cpu_model: Mapped[str | None] = mapped_column(String(40))
    cpu_cores: Mapped[int | None] = mapped_column(Integer)
    memory_gib: Mapped[int | None] = mapped_column(Integer)
    gib_rate: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    gpu_util_pct: Mapped[float | None] = mapped_column(Float)  # mean NVML utilisation; NULL where none sampled
    gpu_mem_used_mib_max: Mapped[int | None] = mapped_column(Integer)  # peak NVML memory use; NULL likewise
    created_at: Mapped[datetime]


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    command: Mapped[list[Any]]
    env: Mapped[dict[str, Any]]
    cwd: Mapped[str | None] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(Text)
    backend: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    log_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    # Local runs: the process group and its start time, so a restarted server can find and stop it.
    pid: Mapped[int | None] = mapped_column(Integer)
    pid_start_ticks: Mapped[int | None] = mapped_column(BigInteger)


class ListVersion(Base):
    __tablename__ = "list_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    loaded_at: Mapped[datetime]
    sources: Mapped[list[Any]]  # what was loaded to make this version
    content_hash: Mapped[str] = mapped_column(String(64))
    counts: Mapped[dict[str, Any]]
    in_force: Mapped[bool] = mapped_column(Boolean, default=False)


class ListEntryRow(Base):
    __tablename__ = "list_entries"
    __table_args__ = (UniqueConstraint("version_id", "entry_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("list_versions.id"), index=True)
    entry_id: Mapped[str] = mapped_column(String(120))
    list_code: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]]


class Screening(Base):
    __tablename__ = "screenings"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    at: Mapped[datetime]
    list_version_id: Mapped[int | None] = mapped_column(ForeignKey("list_versions.id"))
    status: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(40))
    result: Mapped[dict[str, Any]]


class ReviewItem(Base):
    __tablename__ = "review_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    status: Mapped[str] = mapped_column(String(40), default="open", index=True)  # open, awaiting_second_approval, …
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None]
    comment: Mapped[str | None] = mapped_column(Text)


class ReviewDecision(Base):
    """One compliance officer's decision on a review, with the evidence it saw (fingerprinted) and, for a hit on
    a blocking list, the licence or exception it relies on. `final`: the decision that settled the review."""

    __tablename__ = "review_decisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("review_items.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    decision: Mapped[str] = mapped_column(String(20))  # approve | deny
    comment: Mapped[str] = mapped_column(Text)
    licence: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # authority, number, expires_on, scope
    licence_expires_on: Mapped[date | None] = mapped_column(Date)
    evidence: Mapped[dict[str, Any]]  # hits, red flags, ownership findings as the decision saw them
    fingerprint: Mapped[str] = mapped_column(String(64))
    cleared_entries: Mapped[list[Any]] = mapped_column(default=list)  # list entry ids the approval covers
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    expired: Mapped[bool] = mapped_column(Boolean, default=False)  # its licence expired: review re-opened


class Alert(Base):
    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]]
    acknowledged: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditRecord(Base):
    """One audited fact. Sequenced on insert (`id`), chained later by the sealer (`seq`, `prev_hash`, `hash`).

    hash = sha256(prev_hash + canonical JSON of seq, at, actor, action, subject, data); `seq` is the position in
    the chain, which is the order the sealer saw the records committed in, not necessarily `id` order.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        # The sealer's work list: committed records that have no place in the chain yet.
        Index("ix_audit_log_unsealed", "id", postgresql_where=text("seq IS NULL"), sqlite_where=text("seq IS NULL")),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(120))
    data: Mapped[dict[str, Any]]
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64), unique=True)


class AuditCheckpoint(Base):
    """A signed statement of the chain's head: (size, head hash, time), Ed25519 over its note text."""

    __tablename__ = "audit_checkpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    head: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(8))
    signature: Mapped[str] = mapped_column(String(100))


class GpuSampleRow(Base):
    """One NVML reading of one leased GPU. Only real readings: where NVML is absent there are none."""

    __tablename__ = "gpu_samples"
    __table_args__ = (Index("ix_gpu_samples_lease_at", "lease_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id"))
    at: Mapped[datetime]
    node: Mapped[str] = mapped_column(String(100))
    gpu_index: Mapped[int] = mapped_column(Integer)
    utilization_pct: Mapped[float] = mapped_column(Float)
    memory_used_mib: Mapped[int] = mapped_column(Integer)


class IdempotencyRecord(Base):
    """The first response to a request sent with an `Idempotency-Key`, replayed for 24 h (Stripe's semantics).

    Scoped by the caller (`principal`, a hash of its credential), so two clients never share a key space. A new
    key's row is inserted by the transaction of the change its request commits (bound), or with the answer of a
    request that changed nothing; a key used before is claimed before its request runs (`completed_at` empty).
    The response is kept once sent. A crash cannot separate a change from its key's record.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("principal", "key", name="uq_idempotency_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    principal: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of method, path, query and body
    created_at: Mapped[datetime] = mapped_column(index=True)
    locked_at: Mapped[datetime]  # when the request that owns the key last started running
    owner: Mapped[str] = mapped_column(String(100))  # host:pid:start of the process running it
    # Set in the transaction of the first change the request commits, with the resources it created: if the
    # process dies before the response is stored, a retry answers from these instead of doing it again.
    bound_at: Mapped[datetime | None]
    created_refs: Mapped[list[Any]] = mapped_column(default=list)
    completed_at: Mapped[datetime | None]
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_type: Mapped[str | None] = mapped_column(String(100))
    response_body: Mapped[str | None] = mapped_column(Text)


class WebSession(Base):
    """A dashboard sign-in: the browser holds a random id, we keep its hash, the key it stands for and its end."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Notification(Base):
    """Something a customer is told about (a lease started, a budget threshold, …), written in the transaction
    of the change it reports. Its deliveries to the customer's webhooks are the outbox."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_lease_type", "lease_id", "type"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    lease_id: Mapped[int | None] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime]
    data: Mapped[dict[str, Any]]


class Webhook(Base):
    """A customer's endpoint and the events it wants; `secret` signs each delivery (HMAC-SHA256)."""

    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[Any]]
    description: Mapped[str | None] = mapped_column(String(200))
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """One notification to one webhook: the outbox row the delivery worker sends, retries and logs.

    `next_attempt_at` is when it is due (NULL once delivered or given up); `locked_until` keeps two workers
    from sending it at once; `history` is the log of attempts the customer sees.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id"), index=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    history: Mapped[list[Any]] = mapped_column(default=list)


class SpendThreshold(Base):
    """A share of its monthly spend limit a customer reached in a month: alerted once, never again that month."""

    __tablename__ = "spend_thresholds"
    __table_args__ = (UniqueConstraint("customer_id", "period", "percent", name="uq_spend_threshold_once"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    period: Mapped[str] = mapped_column(String(7))
    percent: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]


class CalendarVersion(Base):
    """How many times a GPU model's capacity calendar was changed by taking capacity or changing its nodes.

    A server keeps each model's calendar in memory; the transaction that places a lease bumps this row (which
    also serialises placements of the model) and compares it with the version its calendar is at: equal
    means nothing it has not seen was committed in between, otherwise it reloads the calendar first.
    """

    __tablename__ = "calendar_versions"
    gpu_model: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
