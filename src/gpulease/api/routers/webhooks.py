"""Webhooks and notifications: where a customer is told what happens to its leases and budget. Deliveries are
JSON, signed with HMAC-SHA256 in `X-Gpulease-Signature` (docs/webhooks.md), retried with backoff."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gpulease.api.deps import ActorDep, IdPath, RuntimeDep
from gpulease.api.routing import OneTripRoute
from gpulease.api.schemas import (
    DeliveryOut,
    NotificationOut,
    TestDeliveryOut,
    WebhookCreatedOut,
    WebhookIn,
    WebhookOut,
)
from gpulease.domain.webhooks import SUBSCRIBABLE
from gpulease.services import webhooks

router = APIRouter(tags=["notifications"], route_class=OneTripRoute)


@router.get("/webhook-events", response_model=list[str])
def event_types(actor: ActorDep) -> list[str]:
    """The events a webhook can subscribe to (or "*" for all)."""
    return list(SUBSCRIBABLE)


@router.post("/webhooks", status_code=201, response_model=WebhookCreatedOut)
def create_webhook(body: WebhookIn, rt: RuntimeDep, actor: ActorDep) -> WebhookCreatedOut:
    """Deliver `events` to `url` (http or https). The answer holds the signing secret, this once."""
    made = rt.perform(
        webhooks.create_webhook,
        actor=actor,
        url=body.url,
        events=body.events,
        description=body.description,
        customer_id=body.customer_id,
    )
    return WebhookCreatedOut.made(made)


@router.get("/webhooks", response_model=list[WebhookOut])
def list_webhooks(rt: RuntimeDep, actor: ActorDep, customer_id: IdPath | None = None) -> list[WebhookOut]:
    return [WebhookOut.of(h) for h in rt.perform(webhooks.list_webhooks, actor=actor, customer_id=customer_id)]


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut)
def get_webhook(webhook_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> WebhookOut:
    return WebhookOut.of(rt.perform(webhooks.get_webhook, actor=actor, webhook_id=webhook_id))


@router.delete("/webhooks/{webhook_id}", status_code=204, response_class=Response)
def delete_webhook(webhook_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> Response:
    rt.perform(webhooks.delete_webhook, actor=actor, webhook_id=webhook_id)
    return Response(status_code=204)


@router.post("/webhooks/{webhook_id}/test", status_code=202, response_model=TestDeliveryOut)
def test_webhook(webhook_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> TestDeliveryOut:
    """Queue a `webhook.test` delivery; its outcome shows in the delivery log."""
    return TestDeliveryOut(delivery_id=rt.perform(webhooks.send_test, actor=actor, webhook_id=webhook_id))


@router.get("/webhooks/{webhook_id}/deliveries", response_model=list[DeliveryOut])
def deliveries(webhook_id: IdPath, rt: RuntimeDep, actor: ActorDep, limit: int = 50) -> list[DeliveryOut]:
    """The delivery log, newest first: state, attempts, the last answer and every attempt's."""
    return [DeliveryOut.of(d) for d in rt.perform(webhooks.deliveries, actor=actor, webhook_id=webhook_id, limit=limit)]


@router.get("/notifications", response_model=list[NotificationOut])
def notifications(
    rt: RuntimeDep, actor: ActorDep, customer_id: IdPath | None = None, limit: int = 50
) -> list[NotificationOut]:
    """What the customer was told, newest first, webhooks or not."""
    rows = rt.perform(webhooks.list_notifications, actor=actor, customer_id=customer_id, limit=limit)
    return [NotificationOut.of(n) for n in rows]
