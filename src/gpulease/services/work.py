"""One unit of work: what a use case works with, and what must follow once its transaction commits.

The Runtime opens the transaction, hands the use case a `Work` (its session, the time it happens at, the
settings, the screening index) and, after the commit, carries out the effects the use case asked for. A use
case never reaches for process-wide state: everything it may depend on arrives here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from sqlalchemy.orm import Session

from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.model import ListEntry
from gpulease.domain.placement import CapacityCalendar, GpuRef
from gpulease.settings import Settings
from gpulease.store.db import Store


@dataclass(frozen=True)
class StopRuns:
    """The runs on these leases' GPUs must stop now (the lease ended, was cancelled, preempted or held)."""

    lease_ids: tuple[int, ...]
    runs_on_record: bool = True  # False: the use case found none not finished (no need to look again)


@dataclass(frozen=True)
class NotifyPreemption:
    """The runs of this lease are told (notice file, signal) that its GPUs are taken back at `deadline`."""

    lease_id: int
    deadline: datetime


@dataclass(frozen=True)
class LeasesChanged:
    """These leases were booked or their window changed: backends that mirror leases (Slurm reservations and
    allocations) are brought in line now rather than at the next tick."""

    lease_ids: tuple[int, ...]


@dataclass(frozen=True)
class DeliverWebhooks:
    """Deliveries were queued in the outbox: wake the delivery worker rather than wait for its next poll."""


@dataclass(frozen=True)
class LeaseDisplaced:
    """A node failure moved this lease to other GPUs (`outcome` "moved") or ended it ("ended"; "ended" also for
    a lease cancelled before its start). Its runs on the lost node are stopped; the customer is told (the lease's
    events say it; a webhook to notify hooks in here)."""

    lease_id: int
    customer_id: int
    node_id: int
    node: str
    outcome: Literal["moved", "ended"]
    at: datetime
    reason: str


# What may follow a commit. New kinds are added here and carried out by the Runtime.
Effect = StopRuns | NotifyPreemption | LeasesChanged | DeliverWebhooks | LeaseDisplaced


@dataclass(frozen=True)
class AuditEntry:
    """An audit record to keep even though the action it describes was refused (its transaction rolled back)."""

    actor: str
    action: str
    subject: str
    data: dict[str, Any]


class IndexSource(Protocol):
    """Where screening indexes come from (the Runtime's ScreeningRegistry): the one of the lists in force, or
    one built for a list version being loaded."""

    def index(self, session: Session | None = None) -> ScreeningIndex: ...

    def build(self, content_hash: str, entries: Sequence[ListEntry]) -> ScreeningIndex: ...


class CalendarSource(Protocol):
    """Where placing use cases get a model's capacity calendar (the Runtime's calendars in memory,
    services/calendars.py): current as of the transaction, and whatever they try on it is undone at its end."""

    def for_placement(self, work: Work, model: str, *, holding: int | None = None) -> CapacityCalendar: ...

    def view(self, work: Work, model: str) -> CapacityCalendar: ...

    def placed(
        self, work: Work, model: str, lease_id: int, gpus: list[GpuRef], start: int, end: int | None
    ) -> None: ...


class WebhookSource(Protocol):
    """Where lease events learn who listens (the Runtime's services/notifications.WebhookDirectory)."""

    def of(self, session: Session, customer_id: int) -> list[tuple[int, list[str]]]: ...


@dataclass
class Work:
    session: Session
    store: Store
    now: datetime
    settings: Settings
    screening: IndexSource
    effects: list[Effect] = field(default_factory=list)
    calendars: CalendarSource | None = None  # None: every calendar is loaded from the store
    # Usage on record per lease as this unit of work knows it (services/billing.billed_totals): a lease booked
    # in it starts at 0, records it adds are counted in, so a booking or an end reads the sum once at most.
    billed: dict[int, Decimal] = field(default_factory=dict)
    webhooks: WebhookSource | None = None  # None: every lease event reads its customer's webhooks

    def after_commit(self, effect: Effect) -> None:
        """Ask for `effect` once this unit of work has committed (never if it rolls back)."""
        self.effects.append(effect)

    def stop_runs(self, *lease_ids: int, runs_on_record: bool = True) -> None:
        if lease_ids:
            self.after_commit(StopRuns(tuple(lease_ids), runs_on_record))

    def index(self) -> ScreeningIndex:
        return self.screening.index(self.session)

    def lock(self, name: str) -> None:
        """Serialise a critical section with every other unit of work taking the same lock (PostgreSQL)."""
        self.store.lock(self.session, name)
