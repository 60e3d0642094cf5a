"""Webhook use cases: a customer adds endpoints for the events it wants, lists and deletes them, sends a test
delivery and reads the delivery log. The signing secret is shown once, when the webhook is made.

What is delivered, and how, is services/notifications.py (the outbox) and gpulease/outbox.py (the worker).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from gpulease import audit
from gpulease.domain.webhooks import EventType, InvalidWebhook, checked_events, checked_url
from gpulease.services import limits
from gpulease.services.context import Actor, Role
from gpulease.services.errors import InvalidRequest, NotFound
from gpulease.services.notifications import notify
from gpulease.services.permissions import Permission, require
from gpulease.services.work import Work
from gpulease.store.models import Customer, Notification, Webhook, WebhookDelivery

MAX_WEBHOOKS = 20  # per customer


@dataclass(frozen=True)
class WebhookView:
    id: int
    customer_id: int
    url: str
    events: list[str]
    description: str | None
    created_at: datetime


@dataclass(frozen=True)
class NewWebhook:
    webhook: WebhookView
    secret: str  # shown this once


def _view(h: Webhook) -> WebhookView:
    return WebhookView(h.id, h.customer_id, h.url, list(h.events), h.description, h.created_at)


def _customer_id(work: Work, actor: Actor, customer_id: int | None) -> int:
    if actor.role is Role.CUSTOMER:
        if customer_id is not None and customer_id != actor.customer_id:
            raise NotFound("no such customer")
        assert actor.customer_id is not None
        return actor.customer_id
    if customer_id is None:
        raise InvalidRequest("customer_id is required: which customer's webhook is this")
    if not limits.fits_id(customer_id) or work.session.get(Customer, customer_id) is None:
        raise NotFound("no such customer")
    return customer_id


def create_webhook(
    work: Work,
    *,
    actor: Actor,
    url: str,
    events: list[str],
    description: str | None = None,
    customer_id: int | None = None,
) -> NewWebhook:
    """Add an endpoint for `events` (`*`: all); deliveries are signed with the secret returned here."""
    require(actor, Permission.MANAGE_WEBHOOKS)
    cid = _customer_id(work, actor, customer_id)
    try:
        url = checked_url(url, allow_private=work.settings.webhook_allow_private_targets)
        events = checked_events(events)
    except InvalidWebhook as e:
        raise InvalidRequest(str(e)) from None
    description = (description or "").strip() or None
    description = limits.text(description, what="the description", max_len=limits.WEBHOOK_DESCRIPTION_MAX)
    count = len(_hooks(work, cid))
    if count >= MAX_WEBHOOKS:
        raise InvalidRequest(f"a customer has at most {MAX_WEBHOOKS} webhooks; delete one first")
    secret = "whsec_" + secrets.token_urlsafe(32)
    hook = Webhook(customer_id=cid, url=url, events=events, description=description, secret=secret, created_at=work.now)
    work.session.add(hook)
    work.session.flush()
    audit.append(
        work.session,
        at=work.now,
        actor=actor.name,
        action="webhook.created",
        subject=f"webhook:{hook.id}",
        data={"customer_id": cid, "url": url, "events": events},
    )
    return NewWebhook(_view(hook), secret)


def _hooks(work: Work, customer_id: int | None) -> list[Webhook]:
    q = select(Webhook).where(Webhook.deleted_at.is_(None)).order_by(Webhook.id)
    if customer_id is not None:
        q = q.where(Webhook.customer_id == customer_id)
    return list(work.session.scalars(q))


def list_webhooks(work: Work, *, actor: Actor, customer_id: int | None = None) -> list[WebhookView]:
    """A customer's webhooks (staff: one customer's, or everyone's)."""
    if actor.role is Role.CUSTOMER:
        customer_id = _customer_id(work, actor, customer_id)
    return [_view(h) for h in _hooks(work, customer_id)]


def _hook(work: Work, actor: Actor, webhook_id: int) -> Webhook:
    h = work.session.get(Webhook, webhook_id) if limits.fits_id(webhook_id) else None
    if h is None or h.deleted_at is not None or not actor.can_see_customer(h.customer_id):
        raise NotFound(f"no webhook with id {webhook_id}")
    return h


def get_webhook(work: Work, *, actor: Actor, webhook_id: int) -> WebhookView:
    return _view(_hook(work, actor, webhook_id))


def delete_webhook(work: Work, *, actor: Actor, webhook_id: int) -> None:
    """Stop delivering to it; what was still waiting to be sent is dropped (its log stays)."""
    require(actor, Permission.MANAGE_WEBHOOKS)
    h = _hook(work, actor, webhook_id)
    h.deleted_at = work.now
    work.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == h.id, WebhookDelivery.state == "pending")
        .values(state="cancelled", next_attempt_at=None)
    )
    audit.append(work.session, at=work.now, actor=actor.name, action="webhook.deleted", subject=f"webhook:{h.id}")


def send_test(work: Work, *, actor: Actor, webhook_id: int) -> int:
    """Queue a `webhook.test` delivery to this webhook alone; returns the delivery's id."""
    require(actor, Permission.MANAGE_WEBHOOKS)
    h = _hook(work, actor, webhook_id)
    n = notify(
        work,
        customer_id=h.customer_id,
        event=EventType.TEST,
        data={"webhook_id": h.id, "message": "a test delivery from gpulease"},
        only_webhook=h.id,
    )
    d = work.session.scalar(select(WebhookDelivery).where(WebhookDelivery.notification_id == n.id))
    assert d is not None
    return d.id


@dataclass(frozen=True)
class DeliveryView:
    """One entry of the delivery log a customer sees."""

    id: int
    webhook_id: int
    event: str
    event_id: str
    state: str  # pending | delivered | failed | cancelled
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    history: list[dict[str, Any]]


def deliveries(work: Work, *, actor: Actor, webhook_id: int, limit: int = 50) -> list[DeliveryView]:
    """The webhook's deliveries, newest first, with every attempt's answer."""
    h = _hook(work, actor, webhook_id)
    rows = work.session.execute(
        select(WebhookDelivery, Notification.type)
        .join(Notification, WebhookDelivery.notification_id == Notification.id)
        .where(WebhookDelivery.webhook_id == h.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(max(1, min(limit, 500)))
    ).all()
    return [
        DeliveryView(
            id=d.id,
            webhook_id=d.webhook_id,
            event=event,
            event_id=f"evt_{d.notification_id}",
            state=d.state,
            attempts=d.attempts,
            created_at=d.created_at,
            next_attempt_at=d.next_attempt_at,
            delivered_at=d.delivered_at,
            last_status=d.last_status,
            last_error=d.last_error,
            history=list(d.history),
        )
        for d, event in rows
    ]


@dataclass(frozen=True)
class NotificationView:
    id: str
    type: str
    at: datetime
    lease_id: int | None
    data: dict[str, Any]


def list_notifications(
    work: Work, *, actor: Actor, customer_id: int | None = None, limit: int = 50
) -> list[NotificationView]:
    """What a customer was told, newest first (with or without webhooks)."""
    cid = _customer_id(work, actor, customer_id)
    rows = work.session.scalars(
        select(Notification)
        .where(Notification.customer_id == cid)
        .order_by(Notification.id.desc())
        .limit(max(1, min(limit, 500)))
    )
    return [NotificationView(f"evt_{n.id}", n.type, n.at, n.lease_id, dict(n.data)) for n in rows]
