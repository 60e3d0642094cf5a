"""Running the facility from the dashboard: inventory, the price book, alerts, and the system's health and keys.

The same pattern as the lease pages: a view reads or calls one use case in one unit of work, a refused action
shows the use case's own sentence next to the thing it was about, and htmx swaps the changed part in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse, Response

from gpulease.domain.inventory import CATALOGUE, MAX_GPUS_PER_NODE, Backend
from gpulease.domain.leases import Plan
from gpulease.services import alerts, inventory, keys, node_failure, prices, reports
from gpulease.services.context import Role
from gpulease.services.errors import InvalidRequest, ServiceError
from gpulease.services.permissions import Permission
from gpulease.services.prices import PriceListing
from gpulease.web.pages import Visit, posted, see_other, visit, whole

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


def _refused(e: ServiceError) -> bool:
    """Not allowed or not there: the error page, not a message on the form."""
    return e.status in (403, 404)


# --------------------------------------------------------------------------------------------- inventory

NODE_ACTIONS = {"available": "Make available", "draining": "Drain", "down": "Mark down"}


def _nodes_page(
    v: Visit, form: dict[str, str] | None = None, error: ServiceError | None = None, error_node: int | None = None
) -> HTMLResponse:
    groups = v.rt.perform(reports.node_groups, actor=v.actor)
    defaults = {"site": "", "cluster": "", "name": "", "gpu_model": "", "gpu_count": "8", "backend": "local"}
    if groups:
        defaults.update(site=groups[-1].site, cluster=groups[-1].cluster)
    return v.page(
        "nodes.html",
        status_code=error.status if error else 200,
        nav="nodes",
        groups=groups,
        form={**defaults, **(form or {})},
        models=sorted(CATALOGUE),
        backends=[b.value for b in Backend],
        max_gpus=MAX_GPUS_PER_NODE,
        actions=NODE_ACTIONS,
        error=error,
        error_node=error_node,
        can_edit=v.may(Permission.MANAGE_INVENTORY),
    )


@router.get("/nodes")
def node_list(v: Visit = Depends(visit)) -> Response:
    return _nodes_page(v)


@router.post("/nodes")
def add_node(
    v: Visit = Depends(posted),
    site: str = Form(""),
    cluster: str = Form(""),
    name: str = Form(""),
    gpu_model: str = Form(""),
    gpu_count: str = Form(""),
    backend: str = Form("local"),
) -> Response:
    form = {"site": site, "cluster": cluster, "name": name, "gpu_model": gpu_model, "gpu_count": gpu_count}
    form["backend"] = backend
    try:
        count = whole(gpu_count, "the number of GPUs")
        v.rt.perform(
            inventory.add_node,
            actor=v.actor,
            site=site,
            cluster=cluster,
            name=name,
            gpu_model_name=gpu_model,
            gpu_count=count,
            backend=backend,
        )
    except ServiceError as e:
        if _refused(e):
            raise
        return _nodes_page(v, form, e)
    return see_other("/nodes")


@router.post("/nodes/{node_id}/state")
def set_node_state(node_id: int, v: Visit = Depends(posted), state: str = Form("")) -> Response:
    try:
        v.rt.perform(node_failure.set_node_state, actor=v.actor, node_id=node_id, state=state)
    except ServiceError as e:
        if _refused(e):
            raise
        return _nodes_page(v, error=e, error_node=node_id)
    return see_other("/nodes")


@router.post("/nodes/{node_id}/remove")
def remove_node(node_id: int, v: Visit = Depends(posted)) -> Response:
    try:
        v.rt.perform(inventory.remove_node, actor=v.actor, node_id=node_id)
    except ServiceError as e:
        if _refused(e):
            raise
        return _nodes_page(v, error=e, error_node=node_id)
    return see_other("/nodes")


# --------------------------------------------------------------------------------------------- price book


@dataclass(frozen=True)
class PriceLine:
    """A price as the price-book page shows it."""

    gpu_model: str
    plan: str
    rate: str
    currency: str
    unit: str
    cancel_free_hours: int
    cancel_fee_fraction: str
    preemption_notice_s: int
    effective_from: datetime

    @classmethod
    def of(cls, p: PriceListing) -> PriceLine:
        e = p.entry
        return cls(
            e.gpu_model,
            e.plan.value,
            _rate(e.rate),
            e.currency,
            "GPU-month" if e.plan == Plan.LONG_TERM else "GPU-hour",
            e.cancel_free_hours,
            _plain(e.cancel_fee_fraction),
            e.preemption_notice_s,
            p.effective_from,
        )

    @property
    def key(self) -> str:
        return f"{self.gpu_model}/{self.plan}"

    @property
    def cancellation(self) -> str:
        if self.plan not in (Plan.RESERVED, Plan.LONG_TERM):
            return "none: billed for what is used"
        fee = _plain(Decimal(self.cancel_fee_fraction) * 100)
        return f"free until {self.cancel_free_hours} h before start, then {fee}% of the window"

    @property
    def preemption(self) -> str:
        return f"{self.preemption_notice_s} s" if self.plan == Plan.INTERRUPTIBLE else "—"


def _plain(d: Decimal) -> str:
    return f"{d.normalize():f}"


def _rate(d: Decimal) -> str:
    """Amounts as money is written (2.10, 600.00), finer rates in full (0.0042)."""
    d = d.normalize()
    exponent = d.as_tuple().exponent
    return f"{d.quantize(Decimal('0.01')):f}" if isinstance(exponent, int) and exponent > -2 else f"{d:f}"


def _prices_page(
    v: Visit, form: dict[str, str] | None = None, error: ServiceError | None = None, error_row: str | None = None
) -> HTMLResponse:
    lines = [PriceLine.of(p) for p in v.rt.perform(prices.current_prices)]
    defaults = {
        "gpu_model": "",
        "plan": "on_demand",
        "rate": "",
        "currency": "USD",
        "cancel_free_hours": "24",
        "cancel_fee_fraction": "0.5",
        "preemption_notice_s": "120",
    }
    return v.page(
        "prices.html",
        status_code=error.status if error else 200,
        nav="prices",
        lines=lines,
        models=sorted(CATALOGUE),
        plans=[p.value for p in Plan],
        form={**defaults, **(form or {})} if error_row == "new" else defaults,
        edit=form if error_row != "new" else None,
        error=error,
        error_row=error_row,
        can_edit=v.may(Permission.SET_PRICES),
    )


@router.get("/prices")
def price_list(v: Visit = Depends(visit)) -> Response:
    return _prices_page(v)


@router.post("/prices")
def set_price(
    v: Visit = Depends(posted),
    row: str = Form("new"),
    gpu_model: str = Form(""),
    plan: str = Form(""),
    rate: str = Form(""),
    currency: str = Form("USD"),
    cancel_free_hours: str = Form("24"),
    cancel_fee_fraction: str = Form("0.5"),
    preemption_notice_s: str = Form("120"),
) -> Response:
    form = {
        "gpu_model": gpu_model,
        "plan": plan,
        "rate": rate,
        "currency": currency,
        "cancel_free_hours": cancel_free_hours,
        "cancel_fee_fraction": cancel_fee_fraction,
        "preemption_notice_s": preemption_notice_s,
    }
    try:
        if not rate.strip():
            raise InvalidRequest("give the rate, e.g. 2.49")
        v.rt.perform(
            prices.set_price,
            actor=v.actor,
            gpu_model_name=gpu_model,
            plan=plan,
            rate=rate.strip(),
            currency=currency,
            cancel_free_hours=whole(cancel_free_hours, "the free cancellation hours"),
            cancel_fee_fraction=cancel_fee_fraction.strip(),
            preemption_notice_s=whole(preemption_notice_s, "the preemption notice (seconds)"),
        )
    except ServiceError as e:
        if _refused(e):
            raise
        return _prices_page(v, form, e, row if row != "new" else "new")
    return see_other("/prices")


# --------------------------------------------------------------------------------------------- alerts


def _alerts_page(v: Visit, show: str, error: ServiceError | None = None) -> HTMLResponse:
    with v.rt.work() as w:
        items = alerts.list_alerts(w, actor=v.actor, unacknowledged_only=show == "open")
        v.masthead = reports.masthead(w, actor=v.actor)  # the badge in the nav follows an acknowledgement at once
        return v.page(
            "alerts.html", status_code=error.status if error else 200, nav="alerts", items=items, show=show, error=error
        )


@router.get("/alerts")
def alert_list(v: Visit = Depends(visit), show: str = "open") -> Response:
    return _alerts_page(v, show if show in ("open", "all") else "open")


@router.post("/alerts/{alert_id}/ack")
def acknowledge_alert(alert_id: int, v: Visit = Depends(posted), show: str = Form("open")) -> Response:
    v.rt.perform(alerts.acknowledge_alert, actor=v.actor, alert_id=alert_id)
    return see_other("/alerts?show=all" if show == "all" else "/alerts")


# --------------------------------------------------------------------------------------------- system


def _system_page(
    v: Visit, *, new_key: str | None = None, form: dict[str, str] | None = None, error: ServiceError | None = None
) -> HTMLResponse:
    with v.rt.work() as w:
        st = reports.system_status(w, actor=v.actor, log=v.rt.audit_log)
        versions = [
            {
                "id": lv.id,
                "in_force": lv.in_force,
                "loaded_at": lv.loaded_at,
                "counts": dict(lv.counts),
                "sources": list(lv.sources),
                "hash": lv.content_hash[:12],
            }
            for lv in st.versions
        ]
    resp = v.page(
        "system.html",
        status_code=error.status if error else 200,
        nav="system",
        versions=versions,
        lists=st.lists,
        max_age_days=v.rt.settings.lists_max_age_days,
        chain=st.chain,
        usage=st.usage_problems,
        gpu=st.telemetry,
        keys=st.keys,
        customers=st.customers,
        roles=[r.value for r in Role],
        new_key=new_key,
        form={"role": "customer", "customer_id": "", "label": "", **(form or {})},
        error=error,
        can_manage_keys=v.may(Permission.MANAGE_KEYS),
    )
    if new_key:
        resp.headers["Cache-Control"] = "no-store"  # the secret is on this page once; keep it out of caches
    return resp


@router.get("/system")
def system(v: Visit = Depends(visit)) -> Response:
    return _system_page(v)


@router.post("/system/keys")
def create_key(
    v: Visit = Depends(posted), role: str = Form(""), customer_id: str = Form(""), label: str = Form("")
) -> Response:
    form = {"role": role, "customer_id": customer_id, "label": label}
    try:
        cid = whole(customer_id, "the customer") if customer_id.strip() else None
        key = v.rt.perform(keys.create_key, actor=v.actor, role=role, customer_id=cid, label=label)
    except ServiceError as e:
        if e.status == 403:
            raise
        return _system_page(v, form=form, error=e)
    return _system_page(v, new_key=key)


@router.post("/system/keys/{key_id}/revoke")
def revoke_key(key_id: int, v: Visit = Depends(posted)) -> Response:
    v.rt.perform(keys.revoke_key, actor=v.actor, key_id=key_id)
    return see_other("/system#keys")
