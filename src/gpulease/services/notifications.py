"""Telling customers what happened to their leases and budgets: a notification per fact, written in the
transaction of the change it reports, and one outbox row per webhook that wants it.

Nothing is sent here. The Runtime's delivery worker (`gpulease/outbox.py`) claims due deliveries
(`claim_due`), sends them signed, and records each attempt (`record_attempt`): delivered, tried again later
with exponential backoff, or given up after `webhook_max_attempts`. Since the outbox is in the database, a
restart loses nothing: the next worker picks up what is still pending.

A lease on hold is reported as exactly that: no reason, no list, no screening word ever goes into a
notification (`on_lease_event` builds every lease notification from the lease's plain facts only).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, and_, exists, select
from sqlalchemy.orm import Session

from gpulease.domain.leases import LeaseState
from gpulease.domain.pricing import Quote
from gpulease.domain.webhooks import EventType, retry_delay, wants
from gpulease.services import billing
from gpulease.services.work import DeliverWebhooks, Work
from gpulease.store import staged
from gpulease.store.models import Lease, Notification, Webhook, WebhookDelivery

NOTIFICATIONS = cast(Table, Notification.__table__)

ON_HOLD_MESSAGE = "This lease is on hold. Please contact support."
CLAIM_FOR = timedelta(seconds=120)  # a claimed delivery is another worker's again after this (its sender died)
HISTORY_KEPT = 20


def notify(
    work: Work,
    *,
    customer_id: int,
    event: EventType,
    data: dict[str, Any],
    lease_id: int | None = None,
    only_webhook: int | None = None,
) -> Notification:
    """Record `event` for the customer and queue a delivery to each of its webhooks that wants it.

    `only_webhook`: deliver to that webhook alone (a test delivery), whatever it subscribed to.
    """
    return _record(work, customer_id, event, data, lease_id, _wanting(work, customer_id, event, only_webhook))


def _wanting(work: Work, customer_id: int, event: EventType, only_webhook: int | None) -> list[int]:
    """Ids of the customer's webhooks that get `event` (from the Runtime's directory when it has one)."""
    if only_webhook is None and work.webhooks is not None and not _hooks_pending(work):
        listening = work.webhooks.of(work.session, customer_id)
        return [hook_id for hook_id, events in listening if wants(events, event.value)]
    q = select(Webhook).where(Webhook.customer_id == customer_id, Webhook.deleted_at.is_(None))
    if only_webhook is not None:
        q = q.where(Webhook.id == only_webhook)
    return [h.id for h in work.session.scalars(q) if only_webhook is not None or wants(list(h.events), event.value)]


def _hooks_pending(work: Work) -> bool:
    """Webhooks changed in this very transaction: the directory cannot know them yet."""
    s = work.session
    return any(isinstance(o, Webhook) for o in (*s.new, *s.dirty)) or bool(s.info.get("webhooks_changed"))


class WebhookDirectory:
    """Every live webhook's id and events by customer, read once and kept by the Runtime, so that a lease event
    costs no query to learn that nobody listens. Cleared when a transaction of this process changes a webhook
    and, on PostgreSQL, when another process says it did (services/calendars.py carries the word)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_customer: dict[int, list[tuple[int, list[str]]]] | None = None
        self._generation = 0

    def clear(self) -> None:
        with self._lock:
            self._by_customer = None
            self._generation += 1

    def of_known(self, customer_id: int) -> list[tuple[int, list[str]]] | None:
        """What is in memory for the customer; None when nothing is (read at the next event)."""
        with self._lock:
            return None if self._by_customer is None else self._by_customer.get(customer_id, [])

    def of(self, session: Session, customer_id: int) -> list[tuple[int, list[str]]]:
        with self._lock:
            known, generation = self._by_customer, self._generation
        if known is None:
            known = {}
            rows = session.execute(
                select(Webhook.id, Webhook.customer_id, Webhook.events)
                .where(Webhook.deleted_at.is_(None))
                .order_by(Webhook.id)
            )
            for hook_id, cid, events in rows:
                known.setdefault(int(cid), []).append((int(hook_id), list(events)))
            with self._lock:
                if self._generation == generation:  # not cleared while reading: what was read is current
                    self._by_customer = known
        return known.get(customer_id, [])


def _record(
    work: Work, customer_id: int, event: EventType, data: dict[str, Any], lease_id: int | None, hooks: list[int]
) -> Notification:
    n = Notification(customer_id=customer_id, lease_id=lease_id, type=event.value, at=work.now, data=data)
    work.session.add(n)
    work.session.flush()
    for hook_id in hooks:
        work.session.add(
            WebhookDelivery(
                webhook_id=hook_id,
                notification_id=n.id,
                state="pending",
                attempts=0,
                created_at=work.now,
                next_attempt_at=work.now,
                history=[],
            )
        )
    if hooks:
        work.after_commit(DeliverWebhooks())  # wake the worker; it would find them at its next poll anyway
    return n


def _notify_lease(work: Work, lease: Lease, event: EventType, data: dict[str, Any]) -> None:
    """`notify` for a lease event: when no webhook wants it, the notification is staged (store/staged.py), written
    in bulk with the transaction's other rows, since no delivery needs its id."""
    hooks = _wanting(work, lease.customer_id, event, None)
    if hooks:
        _record(work, lease.customer_id, event, data, lease.id, hooks)
        return
    row = {"customer_id": lease.customer_id, "lease_id": lease.id, "type": event.value, "at": work.now, "data": data}
    staged.stage(work.session, NOTIFICATIONS, row)


# --------------------------------------------------------------------------------------------- lease facts


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def lease_facts(lease: Lease) -> dict[str, Any]:
    """What every lease notification says: the lease's plain facts, never a reason."""
    return {
        "lease_id": lease.id,
        "state": lease.state,
        "gpu_model": lease.gpu_model,
        "gpu_count": lease.gpu_count,
        "plan": lease.plan,
        "start": _iso(lease.starts_at),
        "end": _iso(lease.ends_at),
    }


def final_cost(work: Work, lease_id: int) -> Decimal:
    return billing.billed_totals(work, [lease_id])[lease_id]


def on_lease_event(work: Work, lease: Lease, *, action: str, from_state: str | None, to_state: str) -> None:
    """Turn a lease event (services/transitions.record_event) into the notification a customer gets, if any."""
    event: EventType | None = None
    data = lease_facts(lease)
    if action == "lease.preemption_notice":
        event = EventType.PREEMPTION_NOTICE
        data["deadline"] = _iso(lease.preempt_at)
    elif action == "lease.transition" and from_state != to_state:
        event = _transition_event(lease, from_state, LeaseState(to_state))
        if event is EventType.LEASE_ON_HOLD:
            data = {"lease_id": lease.id, "state": lease.state, "message": ON_HOLD_MESSAGE}
        elif event is EventType.LEASE_ENDED:
            q = Quote.from_dict(lease.quote)
            data |= {"ended_at": _iso(lease.ended_at), "final_cost": f"{final_cost(work, lease.id):f}"}
            data["currency"] = q.currency
        elif event is EventType.LEASE_CANCELLED:  # what cancelling cost: a late-cancellation fee, or 0.00
            data |= {"final_cost": f"{final_cost(work, lease.id):f}", "currency": Quote.from_dict(lease.quote).currency}
    if event is not None:
        _notify_lease(work, lease, event, data)


def _transition_event(lease: Lease, from_state: str | None, to: LeaseState) -> EventType | None:
    came_from = None if from_state is None else LeaseState(from_state)
    if to is LeaseState.SUSPENDED:
        return EventType.LEASE_ON_HOLD
    if came_from is LeaseState.SUSPENDED and to in (LeaseState.ACTIVE, LeaseState.SCHEDULED, LeaseState.QUEUED):
        return EventType.LEASE_HOLD_RELEASED
    if to is LeaseState.ACTIVE:
        return EventType.LEASE_STARTED
    if to is LeaseState.SCHEDULED and came_from is LeaseState.QUEUED:
        return EventType.QUEUE_STARTED
    if to is LeaseState.FAILED and (came_from is LeaseState.QUEUED or not lease.allocations):
        return EventType.QUEUE_EXPIRED
    if to in (LeaseState.ENDING, LeaseState.PREEMPTED, LeaseState.FAILED):
        return EventType.LEASE_ENDED
    if to is LeaseState.ENDED and came_from is not LeaseState.ENDING:
        return EventType.LEASE_ENDED
    if to is LeaseState.CANCELLED:
        return EventType.LEASE_CANCELLED
    return None


def node_failure(work: Work, lease: Lease, *, outcome: str) -> None:
    """The hook for node failures: tell the customer its lease was moved to other GPUs or ended because a node
    failed (`outcome`: "moved" or "ended"). Call it in the transaction that moves or ends the lease."""
    data = lease_facts(lease) | {"outcome": outcome}
    notify(work, customer_id=lease.customer_id, event=EventType.LEASE_NODE_FAILURE, data=data, lease_id=lease.id)


def tell_leases_ending_soon(work: Work) -> list[int]:
    """Leases whose end is within `lease_ending_soon_s`, told once (the clock calls this every tick)."""
    soon = work.now + timedelta(seconds=work.settings.lease_ending_soon_s)
    told = exists().where(
        and_(Notification.lease_id == Lease.id, Notification.type == EventType.LEASE_ENDING_SOON.value)
    )
    due = work.session.scalars(
        select(Lease)
        .where(
            Lease.state.in_([LeaseState.ACTIVE.value, LeaseState.SUSPENDED.value]),
            Lease.ends_at.is_not(None),
            Lease.ends_at > work.now,
            Lease.ends_at <= soon,
            ~told,
        )
        .order_by(Lease.id)
    ).all()
    for lease in due:
        lease_ending_soon(work, lease, cause="window_ends")
    return [lease.id for lease in due]


def lease_ending_soon(work: Work, lease: Lease, *, cause: str) -> None:
    data = lease_facts(lease) | {"ends_at": _iso(lease.ends_at), "cause": cause}
    notify(work, customer_id=lease.customer_id, event=EventType.LEASE_ENDING_SOON, data=data, lease_id=lease.id)


# --------------------------------------------------------------------------------------------- the outbox


@dataclass(frozen=True)
class Job:
    """One delivery to send: where, signed with what, and the exact body."""

    delivery_id: int
    webhook_id: int
    url: str
    secret: str
    event: str
    attempt: int  # this attempt's number, from 1
    body: bytes


def body_of(n: Notification) -> bytes:
    """The JSON a delivery of `n` carries; the same bytes on every attempt (the signature covers them)."""
    payload = {"id": f"evt_{n.id}", "type": n.type, "created_at": n.at.isoformat(), "customer_id": n.customer_id}
    payload["data"] = n.data
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def claim_due(work: Work, *, limit: int = 20) -> list[Job]:
    """Deliveries due now, claimed for `CLAIM_FOR` so that no other worker sends them meanwhile."""
    now = work.now
    q = (
        select(WebhookDelivery, Webhook, Notification)
        .join(Webhook, WebhookDelivery.webhook_id == Webhook.id)
        .join(Notification, WebhookDelivery.notification_id == Notification.id)
        .where(
            WebhookDelivery.state == "pending",
            WebhookDelivery.next_attempt_at <= now,
            (WebhookDelivery.locked_until.is_(None)) | (WebhookDelivery.locked_until < now),
            Webhook.deleted_at.is_(None),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    if work.store.is_postgres:
        q = q.with_for_update(skip_locked=True, of=WebhookDelivery)  # SQLite serialises writers already
    jobs = []
    for d, hook, n in work.session.execute(q).all():
        d.locked_until = now + CLAIM_FOR
        jobs.append(Job(d.id, hook.id, hook.url, hook.secret, n.type, d.attempts + 1, body_of(n)))
    return jobs


def record_attempt(work: Work, *, delivery_id: int, status: int | None, error: str | None, duration_ms: int) -> None:
    """Keep what one attempt got: delivered on a 2xx; otherwise try again later, or give up after the last."""
    d = work.session.get(WebhookDelivery, delivery_id)
    if d is None or d.state != "pending":
        return
    st = work.settings
    d.attempts += 1
    d.last_status, d.last_error, d.locked_until = status, error, None
    ok = status is not None and 200 <= status < 300
    d.history = [
        *d.history[-(HISTORY_KEPT - 1) :],
        {"at": work.now.isoformat(), "status": status, "error": error, "ms": duration_ms},
    ]
    if ok:
        d.state, d.delivered_at, d.next_attempt_at = "delivered", work.now, None
    elif d.attempts >= st.webhook_max_attempts:
        d.state, d.next_attempt_at = "failed", None
    else:
        wait = retry_delay(d.attempts, base_s=st.webhook_retry_base_s, cap_s=st.webhook_retry_cap_s)
        d.next_attempt_at = work.now + timedelta(seconds=wait)
