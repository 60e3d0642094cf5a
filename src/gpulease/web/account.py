"""A customer's own corner of the dashboard: its home page (spend this month, a spend chart, running leases,
quotas, what it was told), its API keys, its webhooks and their delivery logs, its profile; and the limits
form operators use on a customer's page.

Each view calls its use cases in one unit of work and renders what they return; a refusal shows the use
case's own sentence next to the form it came from.
"""

from __future__ import annotations

import calendar
from typing import Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse, Response

from gpulease.domain.leases import LeaseState
from gpulease.domain.webhooks import ALL, SUBSCRIBABLE
from gpulease.services import budgets, customers, inventory, keys, leases, spend, webhooks
from gpulease.services.context import Role
from gpulease.services.customers import Contact, ProfileChange
from gpulease.services.errors import NotFound, ServiceError
from gpulease.services.permissions import Permission
from gpulease.web import spend_chart
from gpulease.web.pages import Visit, posted, see_other, visit, whole

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

RUNNING = (LeaseState.SCHEDULED, LeaseState.ACTIVE, LeaseState.SUSPENDED, LeaseState.QUEUED)
GRACES = {"0": "at once", "3600": "in 1 hour", "86400": "in 1 day"}
CONTACT_ROWS = 3


def _own_customer(v: Visit) -> int:
    if v.actor.role is not Role.CUSTOMER or v.actor.customer_id is None:
        raise NotFound("There is no such page.")  # staff see customers under /customers
    return v.actor.customer_id


def _no_store(resp: HTMLResponse) -> HTMLResponse:
    resp.headers["Cache-Control"] = "no-store"  # a secret is on this page once; keep it out of caches
    return resp


# --------------------------------------------------------------------------------------------- home


def home(v: Visit) -> HTMLResponse:
    """A customer's home page: this month's spend and forecast, the chart, running leases, quotas, news."""
    cid = _own_customer(v)
    with v.rt.work() as w:
        s = spend.customer_spend(w, actor=v.actor, customer_id=cid)
        running = [x for x in leases.list_leases(w, actor=v.actor) if LeaseState(x.state) in RUNNING]
        costs = spend.of_leases(w, running)
        quota = budgets.get_limits(w, actor=v.actor, customer_id=cid).gpu_quota
        told = webhooks.list_notifications(w, actor=v.actor, limit=10)
        held = {m: sum(x.gpu_count for x in running if x.gpu_model == m and x.state != "queued") for m in quota}
    y, m = (int(p) for p in s.period.split("-"))
    return v.page(
        "home.html",
        nav="home",
        s=s,
        chart=spend_chart.render(s, calendar.monthrange(y, m)[1]),
        running=running,
        costs=costs,
        quota=quota,
        held=held,
        told=told,
    )


# --------------------------------------------------------------------------------------------- keys


def _keys_page(v: Visit, *, new: keys.IssuedKey | None = None, error: ServiceError | None = None) -> HTMLResponse:
    _own_customer(v)
    rows = v.rt.perform(keys.list_keys, actor=v.actor)
    resp = v.page(
        "keys.html",
        status_code=error.status if error else 200,
        nav="keys",
        keys=rows,
        new=new,
        error=error,
        graces=GRACES,
        own_prefix=v.actor.name.removeprefix("key:"),
    )
    return _no_store(resp) if new else resp


@router.get("/keys")
def key_list(v: Visit = Depends(visit)) -> Response:
    return _keys_page(v)


@router.post("/keys")
def make_key(v: Visit = Depends(posted), label: str = Form("")) -> Response:
    try:
        issued = v.rt.perform(keys.issue_key, actor=v.actor, label=label)
    except ServiceError as e:
        if e.status in (403, 404):
            raise
        return _keys_page(v, error=e)
    return _keys_page(v, new=issued)


@router.post("/keys/{key_id}/rotate")
def rotate_key(key_id: int, v: Visit = Depends(posted), grace_s: str = Form("0")) -> Response:
    try:
        grace = whole(grace_s, "the grace period")
        issued = v.rt.perform(keys.rotate_key, actor=v.actor, key_id=key_id, grace_s=grace)
    except ServiceError as e:
        if e.status in (403, 404):
            raise
        return _keys_page(v, error=e)
    return _keys_page(v, new=issued)


@router.post("/keys/{key_id}/revoke")
def revoke_key(key_id: int, v: Visit = Depends(posted)) -> Response:
    v.rt.perform(keys.revoke_key, actor=v.actor, key_id=key_id)
    return see_other("/keys")


@router.post("/keys/{key_id}/rename")
def rename_key(key_id: int, v: Visit = Depends(posted), label: str = Form("")) -> Response:
    try:
        v.rt.perform(keys.rename_key, actor=v.actor, key_id=key_id, label=label)
    except ServiceError as e:
        if e.status in (403, 404):
            raise
        return _keys_page(v, error=e)
    return see_other("/keys")


# --------------------------------------------------------------------------------------------- webhooks


def _webhooks_page(
    v: Visit,
    *,
    made: webhooks.NewWebhook | None = None,
    error: ServiceError | None = None,
    form: dict[str, Any] | None = None,
) -> HTMLResponse:
    _own_customer(v)
    hooks = v.rt.perform(webhooks.list_webhooks, actor=v.actor)
    resp = v.page(
        "webhooks.html",
        status_code=error.status if error else 200,
        nav="webhooks",
        hooks=hooks,
        made=made,
        error=error,
        events=SUBSCRIBABLE,
        form=form or {"url": "", "description": "", "events": [ALL]},
    )
    return _no_store(resp) if made else resp


@router.get("/webhooks")
def webhook_list(v: Visit = Depends(visit)) -> Response:
    return _webhooks_page(v)


@router.post("/webhooks")
def add_webhook(
    v: Visit = Depends(posted), url: str = Form(""), description: str = Form(""), events: list[str] = Form([])
) -> Response:
    form = {"url": url, "description": description, "events": events}
    try:
        made = v.rt.perform(
            webhooks.create_webhook, actor=v.actor, url=url, events=events, description=description or None
        )
    except ServiceError as e:
        if e.status in (403, 404):
            raise
        return _webhooks_page(v, error=e, form=form)
    return _webhooks_page(v, made=made)


def _webhook_page(v: Visit, webhook_id: int, *, queued: int | None = None) -> HTMLResponse:
    _own_customer(v)
    with v.rt.work() as w:
        hook = webhooks.get_webhook(w, actor=v.actor, webhook_id=webhook_id)
        log = webhooks.deliveries(w, actor=v.actor, webhook_id=webhook_id)
    return v.page(
        "webhook.html",
        nav="webhooks",
        hook=hook,
        log=log,
        queued=queued,
        waiting=any(d.state == "pending" for d in log),
    )


@router.get("/webhooks/{webhook_id}")
def webhook_detail(webhook_id: int, v: Visit = Depends(visit)) -> Response:
    return _webhook_page(v, webhook_id)


@router.post("/webhooks/{webhook_id}/test")
def test_webhook(webhook_id: int, v: Visit = Depends(posted)) -> Response:
    delivery = v.rt.perform(webhooks.send_test, actor=v.actor, webhook_id=webhook_id)
    return _webhook_page(v, webhook_id, queued=delivery)


@router.post("/webhooks/{webhook_id}/delete")
def delete_webhook(webhook_id: int, v: Visit = Depends(posted)) -> Response:
    v.rt.perform(webhooks.delete_webhook, actor=v.actor, webhook_id=webhook_id)
    return see_other("/webhooks")


# --------------------------------------------------------------------------------------------- profile


def _profile_page(
    v: Visit, *, form: dict[str, Any] | None = None, error: ServiceError | None = None, saved: bool = False
) -> HTMLResponse:
    cid = _own_customer(v)
    with v.rt.work() as w:
        c = customers.get_customer(w, actor=v.actor, customer_id=cid)
        current = {
            "address": c.address or "",
            "contacts": [(x["name"], x["email"], x.get("phone") or "", x.get("role") or "") for x in c.contacts],
        }
        page = {"c": c}
        if form is None:
            form = current
        rows = list(form["contacts"])
        rows += [("", "", "", "")] * max(1, CONTACT_ROWS - len(rows))
        return v.page(
            "profile.html",
            status_code=error.status if error else 200,
            nav="profile",
            form={**form, "contacts": rows},
            error=error,
            saved=saved,
            **page,
        )


@router.get("/profile")
def profile(v: Visit = Depends(visit)) -> Response:
    return _profile_page(v)


@router.post("/profile")
def update_profile(
    v: Visit = Depends(posted),
    address: str = Form(""),
    contact_name: list[str] = Form([]),
    contact_email: list[str] = Form([]),
    contact_phone: list[str] = Form([]),
    contact_role: list[str] = Form([]),
) -> Response:
    cid = _own_customer(v)
    rows = [
        (n.strip(), e.strip(), p.strip(), r.strip())
        for n, e, p, r in zip(contact_name, contact_email, contact_phone, contact_role, strict=False)
    ]
    rows = [x for x in rows if any(x)]
    form = {"address": address, "contacts": rows}
    change = ProfileChange(
        address=address.strip(),
        contacts=tuple(Contact(n, e, p or None, r or None) for n, e, p, r in rows),
    )
    try:
        v.rt.perform(customers.update_customer, actor=v.actor, customer_id=cid, change=change)
    except ServiceError as e:
        if e.status in (403, 404):
            raise
        return _profile_page(v, form=form, error=e)
    return _profile_page(v, saved=True)


# --------------------------------------------------------------------------------------------- staff


def staff_spend_context(v: Visit, customer_id: int) -> dict[str, Any]:
    """What a customer's page shows staff of its spend and limits (the limits form is the operators')."""
    with v.rt.work() as w:
        s = spend.customer_spend(w, actor=v.actor, customer_id=customer_id)
        lim = budgets.get_limits(w, actor=v.actor, customer_id=customer_id)
        models = inventory.models_in_service(w)
    y, m = (int(p) for p in s.period.split("-"))
    return {
        "s": s,
        "chart": spend_chart.render(s, calendar.monthrange(y, m)[1]),
        "limits": lim,
        "quota_models": sorted(set(models) | set(lim.gpu_quota)),
        "can_set_limits": v.may(Permission.SET_LIMITS),
    }


def parse_quota(models: list[str], counts: list[str]) -> dict[str, int]:
    """The limits form's quota rows; an empty count is no quota for that model."""
    return {m: whole(n, f"the {m} quota") for m, n in zip(models, counts, strict=False) if n.strip()}


__all__ = ["home", "parse_quota", "router", "staff_spend_context"]
