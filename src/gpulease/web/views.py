"""The dashboard: server-rendered pages over the use cases, htmx for the actions, one stylesheet.

Sign-in is by API key (the same keys as the API), kept in an HttpOnly, SameSite=Strict cookie; every POST
also carries a token derived from that key. Each page shows what the key's role may see: a customer sees
its own tenant only, and gets the same "not found" for another tenant's lease as for a missing one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from gpulease.domain.inventory import CATALOGUE
from gpulease.domain.leases import IllegalTransition, LeaseState, Plan
from gpulease.domain.pricing import Quote
from gpulease.runtime import Runtime
from gpulease.services import billing, customers, inventory, leases, screening, sessions
from gpulease.services.context import Actor, Role
from gpulease.services.errors import InvalidRequest, NotCleared, ServiceError
from gpulease.store.models import Customer, ReviewItem
from gpulease.web import dashboard, gantt
from gpulease.web.session import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    CsrfRejected,
    LoginRequired,
    check_csrf,
    csrf_token,
    safe_next,
    signed_in,
)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
STAFF = (Role.OPERATOR, Role.COMPLIANCE)
API_PATHS = ("/api/", "/metrics", "/healthz", "/docs", "/redoc", "/openapi.json")


# --------------------------------------------------------------------------------------------- formatting


def _dt(t: datetime | None, missing: str = "—") -> str:
    if t is None:
        return missing
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _money(v: Decimal | str | None, currency: str = "") -> str:
    if v is None:
        return "—"
    d = Decimal(v).quantize(Decimal("0.01"))
    return f"{d:,.2f} {currency}".strip()


def _hours(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds / 3600:,.2f} h"


def _num(x: float | Decimal) -> str:
    """60.0 -> "60", 33.333 -> "33.3": percentages as people write them."""
    return f"{round(float(x), 1):g}"


templates.env.filters.update(dt=_dt, money=_money, hours=_hours, num=_num)
templates.env.globals.update(
    plan_colours=gantt.PLAN_COLOURS, plan_labels=gantt.PLAN_LABELS, csrf_field=CSRF_FIELD, csrf_header=CSRF_HEADER
)


def _parse_time(value: str, what: str) -> datetime | None:
    """A form's date-time (from <input type=datetime-local>, read as UTC) or None when left empty."""
    value = value.strip()
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{what} must be a date and time such as 2026-11-02T09:00 (UTC)") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _local_input(t: datetime | None) -> str:
    return "" if t is None else t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


templates.env.filters.update(local_input=_local_input)


# --------------------------------------------------------------------------------------------- the visit


@dataclass
class Visit:
    """One signed-in request: the runtime, who is asking, and how to answer with a page."""

    request: Request
    rt: Runtime
    actor: Actor
    key: str
    customer_name: str | None
    open_alerts: int = 0

    @property
    def staff(self) -> bool:
        return self.actor.role in STAFF

    @property
    def htmx(self) -> bool:
        return self.request.headers.get("HX-Request") == "true"

    def require(self, *roles: Role) -> None:
        self.actor.require(*roles)

    def page(self, template: str, /, status_code: int = 200, **ctx: Any) -> HTMLResponse:
        return templates.TemplateResponse(self.request, template, {**self.context(), **ctx}, status_code=status_code)

    def context(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "role": str(self.actor.role),
            "csrf": csrf_token(self.key),
            "customer_name": self.customer_name,
            "open_alerts": self.open_alerts,
            "now": self.rt.clock(),
            "path": self.request.url.path,
        }


def _visit(request: Request) -> Visit:
    actor, key = signed_in(request)
    rt: Runtime = request.app.state.runtime
    name, alerts = None, 0
    with rt.store.transaction() as s:
        if actor.customer_id is not None:
            c = s.get(Customer, actor.customer_id)
            name = c.legal_name if c is not None else None
        if actor.role in STAFF:
            alerts = dashboard.open_alerts(s)
    return Visit(request, rt, actor, key, name, alerts)


def visit(request: Request) -> Visit:
    return _visit(request)


async def posted(request: Request) -> Visit:
    """A signed-in POST: the SameSite cookie plus the per-session token, or it is refused."""
    v = await run_in_threadpool(_visit, request)
    await check_csrf(request, v.key)
    return v


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


# --------------------------------------------------------------------------------------------- sign-in


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    with contextlib.suppress(LoginRequired):
        _visit(request)
        return _see_other(safe_next(next))
    return templates.TemplateResponse(request, "login.html", {"next": safe_next(next), "error": None})


@router.post("/login")
def login(request: Request, key: str = Form(""), next: str = Form("/")) -> Response:
    rt: Runtime = request.app.state.runtime
    started = None
    if key.strip() and len(key) <= 200:
        with rt.store.transaction() as s:
            started = sessions.sign_in(
                s, key=key.strip(), now=rt.clock(), lifetime=timedelta(hours=rt.settings.session_hours)
            )
    if started is None:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"next": safe_next(next), "error": "That key is not valid (unknown or revoked)."},
            status_code=401,
        )
    token, actor = started
    target = safe_next(next)
    if target == "/" and actor.role is Role.CUSTOMER:
        target = "/leases"
    resp = _see_other(target)
    resp.set_cookie(
        COOKIE,
        token,
        max_age=int(rt.settings.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return resp


@router.api_route("/logout", methods=["GET", "POST"])
def logout(request: Request) -> Response:
    token = request.cookies.get(COOKIE)
    if token and len(token) <= 100:
        rt: Runtime = request.app.state.runtime
        with rt.store.transaction() as s:
            sessions.sign_out(s, token=token, now=rt.clock())
    resp = _see_other("/login")
    resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return resp


# --------------------------------------------------------------------------------------------- overview


@router.get("/")
def overview(v: Visit = Depends(visit), hours: int = 48, start: str = "", model: str = "") -> Response:
    if not v.staff:
        return _see_other("/leases")
    now = v.rt.clock()
    hours = max(1, min(hours, 24 * 31))
    t0 = (_parse_time(start, "start") or now).replace(second=0)
    t1 = t0 + timedelta(hours=hours)
    with v.rt.store.transaction() as s:
        nodes = sorted(
            inventory.list_nodes(s, model or None),
            key=lambda n: (n.cluster.site.name, n.cluster.name, n.gpu_model, n.name),
        )
        rows = [
            gantt.GanttNode(
                n.id, n.name, f"{n.cluster.site.name}/{n.cluster.name} · {n.gpu_model}", n.gpu_count, n.state
            )
            for n in nodes
        ]
        books = inventory.calendar_bookings(s, nodes, t0, t1)
        now_books = inventory.calendar_bookings(s, nodes, now, now + timedelta(seconds=1))
        capacity = dashboard.capacity_by_model(nodes, now_books, now)
        counts = dashboard.lease_counts(s)
        open_reviews = len(customers.list_reviews(s, v.actor, "open"))
        alerts = [(a.at, a.kind, a.message) for a in customers.list_alerts(s, v.actor)[:8]]
        all_models = sorted({n.gpu_model for n in inventory.list_nodes(s)})
    use = gantt.utilisation(rows, books, t0, t1, now)
    return v.page(
        "overview.html",
        nav="overview",
        capacity=capacity,
        counts=counts,
        states=[st.value for st in LeaseState],
        open_reviews=open_reviews,
        alerts=alerts,
        svg=gantt.render(rows, books, t0, t1, now),
        use=use,
        t0=t0,
        t1=t1,
        hours=hours,
        model=model,
        models=all_models,
        leased_now=sum(c.leased for c in capacity),
        total_gpus=sum(c.total for c in capacity),
        earlier=_local_input(t0 - timedelta(hours=hours)),
        later=_local_input(t0 + timedelta(hours=hours)),
    )


# --------------------------------------------------------------------------------------------- leases


def _leases_page(
    v: Visit,
    *,
    state: str = "",
    customer: str = "",
    form: dict[str, str] | None = None,
    error: ServiceError | None = None,
) -> HTMLResponse:
    customer_id = int(customer) if customer.isdigit() else None
    with v.rt.store.transaction() as s:
        rows = leases.list_leases(s, v.actor, customer_id, state or None)
        names = {c.id: c.legal_name for c in customers.list_customers(s, v.actor)}
        choices = [(c.id, c.legal_name, c.compliance_status) for c in customers.list_customers(s, v.actor)]
        models = sorted({n.gpu_model for n in inventory.list_nodes(s)}) or sorted(CATALOGUE)
    now = v.rt.clock()
    defaults = {
        "gpu_model": models[0] if models else "",
        "gpu_count": "1",
        "plan": "on_demand",
        "start": _local_input(now + timedelta(hours=1)),
        "end": _local_input(now + timedelta(hours=9)),
        "customer_id": str(customer_id or v.actor.customer_id or ""),
    }
    return v.page(
        "leases.html",
        status_code=error.status if error else 200,
        nav="leases",
        leases=rows,
        names=names,
        state=state,
        customer=customer,
        states=[st.value for st in LeaseState],
        customers=choices,
        models=models,
        plans=[p.value for p in Plan],
        form={**defaults, **(form or {})},
        error=error,
        can_book=v.actor.role in (Role.OPERATOR, Role.CUSTOMER),
    )


@router.get("/leases")
def lease_list(v: Visit = Depends(visit), state: str = "", customer: str = "") -> Response:
    return _leases_page(v, state=state, customer=customer)


@router.post("/leases")
def book_lease(
    v: Visit = Depends(posted),
    customer_id: str = Form(""),
    gpu_model: str = Form(""),
    gpu_count: str = Form("1"),
    plan: str = Form("on_demand"),
    start: str = Form(""),
    end: str = Form(""),
) -> Response:
    form = {
        "customer_id": customer_id,
        "gpu_model": gpu_model,
        "gpu_count": gpu_count,
        "plan": plan,
        "start": start,
        "end": end,
    }
    cid = int(customer_id) if customer_id.strip().isdigit() else None
    try:
        if not gpu_count.strip().isdigit():
            raise InvalidRequest("the number of GPUs must be a whole number")
        start_t = _parse_time(start, "start")
        req = leases.LeaseRequest(
            gpu_model=gpu_model,
            gpu_count=int(gpu_count),
            plan=plan,
            start=start_t or "now",
            end=_parse_time(end, "end"),
            customer_id=cid if v.actor.role is not Role.CUSTOMER else None,
        )
        try:
            with v.rt.store.transaction() as s:
                lease_id = leases.create_lease(s, v.rt.store, v.actor, req, v.rt.clock()).lease.id
        except NotCleared:
            v.rt.record_refusal(v.actor, cid or v.actor.customer_id, "lease refused: customer not cleared")
            raise
    except ServiceError as e:
        return _leases_page(v, form=form, error=e)
    v.rt.after_lease_change()
    return _see_other(f"/leases/{lease_id}")


def _actions(lease: Any) -> dict[str, bool]:
    st = LeaseState(lease.state)
    started = lease.activated_at is not None
    return {
        "end": st in (LeaseState.ACTIVE, LeaseState.ENDING) or (st is LeaseState.SUSPENDED and started),
        "cancel": st in (LeaseState.SCHEDULED, LeaseState.QUEUED, LeaseState.QUOTED, LeaseState.PENDING_COMPLIANCE)
        or (st is LeaseState.SUSPENDED and not started),
        "extend": st in (LeaseState.SCHEDULED, LeaseState.ACTIVE)
        and lease.ends_at is not None
        and lease.preempt_at is None,
    }


def _lease_page(v: Visit, lease_id: int, error: str | None = None, status: int = 200) -> HTMLResponse:
    with v.rt.store.transaction() as s:
        lease = leases.get_lease(s, v.actor, lease_id)
        events = leases.lease_events(s, v.actor, lease_id)
        customer = customers.get_customer(s, v.actor, lease.customer_id)
        by_node: dict[str, list[Any]] = {}
        for a in sorted(lease.allocations, key=lambda a: (a.node.name, a.gpu_index)):
            by_node.setdefault(a.node.name, []).append(a)
        quote = Quote.from_dict(lease.quote)
        actions = _actions(lease)
        suggested_end = _local_input((lease.ends_at or v.rt.clock()) + timedelta(hours=4))
        page_data = {"lease": lease, "events": events, "customer": customer, "by_node": by_node, "quote": quote}
    runs = v.rt.executor.runs_of(v.actor, lease_id)  # its own transaction: never nest them (SQLite would wait)
    return v.page(
        "lease.html",
        status_code=status,
        nav="leases",
        runs=runs,
        actions=actions,
        error=error,
        suggested_end=suggested_end,
        **page_data,
    )


@router.get("/leases/{lease_id}")
def lease_detail(lease_id: int, v: Visit = Depends(visit)) -> Response:
    return _lease_page(v, lease_id)


def _change(v: Visit, lease_id: int, action: str, new_end: str = "") -> Response:
    try:
        with v.rt.store.transaction() as s:
            now = v.rt.clock()
            if action == "end":
                leases.end(s, v.actor, lease_id, now)
            elif action == "cancel":
                leases.cancel(s, v.actor, lease_id, now)
            else:
                end = _parse_time(new_end, "the new end")
                if end is None:
                    raise InvalidRequest("give the new end of the lease")
                leases.extend(s, v.rt.store, v.actor, lease_id, end, now)
    except ServiceError as e:
        if e.status == 404:
            raise
        return _lease_page(v, lease_id, error=e.detail, status=e.status)
    except IllegalTransition as e:
        return _lease_page(v, lease_id, error=str(e), status=409)
    v.rt.after_lease_change()
    return _see_other(f"/leases/{lease_id}")


@router.post("/leases/{lease_id}/end")
def end_lease(lease_id: int, v: Visit = Depends(posted)) -> Response:
    return _change(v, lease_id, "end")


@router.post("/leases/{lease_id}/cancel")
def cancel_lease(lease_id: int, v: Visit = Depends(posted)) -> Response:
    return _change(v, lease_id, "cancel")


@router.post("/leases/{lease_id}/extend")
def extend_lease(lease_id: int, v: Visit = Depends(posted), end: str = Form("")) -> Response:
    return _change(v, lease_id, "extend", end)


# --------------------------------------------------------------------------------------------- customers


@router.get("/customers")
def customer_list(v: Visit = Depends(visit)) -> Response:
    v.require(*STAFF)
    with v.rt.store.transaction() as s:
        rows = customers.list_customers(s, v.actor)
        counts = {c.id: dashboard.lease_counts(s, c.id) for c in rows}
    return v.page("customers.html", nav="customers", customers=rows, counts=counts)


KYC_FIELDS = (
    "legal_name",
    "local_name",
    "country",
    "address",
    "incorporated_on",
    "email_domain",
    "website",
    "parent",
    "end_use",
    "requested_gpus",
)
OWNER_ROWS = 4


def _new_customer_page(
    v: Visit, form: dict[str, str] | None = None, owners: list[tuple[str, str]] | None = None, error: Any = None
) -> HTMLResponse:
    rows = list(owners or [])
    rows += [("", "")] * (OWNER_ROWS - len(rows) if len(rows) < OWNER_ROWS else 1)  # always room for one more
    return v.page(
        "customer_new.html",
        status_code=error.status if error else 200,
        nav="customers",
        form={f: "" for f in KYC_FIELDS} | (form or {}),
        owners=rows,
        error=error,
    )


def _kyc(form: dict[str, str], owners: list[tuple[str, str]]) -> dict[str, Any]:
    """The form as the data `create_customer` takes (what the API's CustomerIn gives it), or InvalidRequest."""
    if not form["legal_name"]:
        raise InvalidRequest("the legal name is required")
    data: dict[str, Any] = {f: form[f] or None for f in KYC_FIELDS}
    data["legal_name"], data["country"] = form["legal_name"], form["country"]
    if form["incorporated_on"]:
        try:
            data["incorporated_on"] = date.fromisoformat(form["incorporated_on"])
        except ValueError:
            raise InvalidRequest("the date of incorporation must be a date such as 2015-03-01") from None
    if form["requested_gpus"]:
        if not form["requested_gpus"].isdigit():
            raise InvalidRequest("requested GPUs must be a whole number")
        data["requested_gpus"] = int(form["requested_gpus"])
    data["owners"] = []
    for name, percent in owners:
        if not name and not percent:
            continue
        if not name:
            raise InvalidRequest(f"an owner with {percent}% has no name")
        try:
            share = float(percent)
        except ValueError:
            raise InvalidRequest(f"give {name}'s share as a percentage between 0 and 100") from None
        if not 0 <= share <= 100:
            raise InvalidRequest(f"{name}'s share must be between 0 and 100%, got {percent}")
        data["owners"].append({"name": name, "percent": share})
    return data


@router.get("/customers/new")
def new_customer_form(v: Visit = Depends(visit)) -> Response:
    v.require(*STAFF)
    return _new_customer_page(v)


@router.post("/customers/new")
def create_customer(
    v: Visit = Depends(posted),
    legal_name: str = Form(""),
    local_name: str = Form(""),
    country: str = Form(""),
    address: str = Form(""),
    incorporated_on: str = Form(""),
    email_domain: str = Form(""),
    website: str = Form(""),
    parent: str = Form(""),
    end_use: str = Form(""),
    requested_gpus: str = Form(""),
    owner_name: list[str] = Form([]),
    owner_percent: list[str] = Form([]),
) -> Response:
    v.require(*STAFF)
    given = (legal_name, local_name, country, address, incorporated_on, email_domain, website, parent, end_use)
    form = dict(zip(KYC_FIELDS, (x.strip() for x in (*given, requested_gpus)), strict=True))
    owners = [(n.strip(), p.strip()) for n, p in zip(owner_name, owner_percent, strict=False)]
    owners = [o for o in owners if any(o)]
    try:
        data = _kyc(form, owners)
        index = v.rt.screening.index()  # built outside the transaction: it may open its own
        with v.rt.store.transaction() as s:
            customer_id = customers.create_customer(s, v.actor, index, data, v.rt.clock()).id
    except ServiceError as e:
        if e.status == 403:
            raise
        return _new_customer_page(v, form, owners, e)
    return _see_other(f"/customers/{customer_id}")


@router.get("/customers/{customer_id}")
def customer_detail(customer_id: int, v: Visit = Depends(visit)) -> Response:
    v.require(*STAFF)
    with v.rt.store.transaction() as s:
        c = customers.get_customer(s, v.actor, customer_id)
        try:
            sc = customers.latest_screening(s, v.actor, customer_id)
            latest: dict[str, Any] | None = {"at": sc.at, "trigger": sc.trigger, "status": sc.status, **sc.result}
        except ServiceError:
            latest = None
        invoices = [billing.invoice(s, v.actor, customer_id, p) for p in dashboard.usage_periods(s, customer_id)]
        rows = leases.list_leases(s, v.actor, customer_id)
        reviews = [r for r in customers.list_reviews(s, v.actor, "all") if r.customer_id == customer_id]
    return v.page(
        "customer.html", nav="customers", c=c, screening=latest, invoices=invoices, leases=rows, reviews=reviews
    )


# --------------------------------------------------------------------------------------------- reviews


def _review_context(s: Any, v: Visit, items: list[ReviewItem]) -> dict[str, Any]:
    ids = {r.customer_id for r in items}
    people = {c.id: c for c in customers.list_customers(s, v.actor) if c.id in ids}
    return {"people": people, "can_decide": v.actor.role is Role.COMPLIANCE}


@router.get("/reviews")
def review_queue(v: Visit = Depends(visit), status: str = "open") -> Response:
    v.require(*STAFF)
    if status not in ("open", "approved", "denied", "all"):
        status = "open"
    with v.rt.store.transaction() as s:
        items = customers.list_reviews(s, v.actor, status)
        return v.page("reviews.html", nav="reviews", items=items, status=status, **_review_context(s, v, items))


@router.post("/reviews/{review_id}/decision")
def decide_review(
    review_id: int, v: Visit = Depends(posted), decision: str = Form(""), comment: str = Form("")
) -> Response:
    error: ServiceError | None = None
    try:
        with v.rt.store.transaction() as s:
            customers.decide_review(s, v.actor, review_id, decision, comment, v.rt.clock())
    except ServiceError as e:
        if e.status in (403, 404):
            raise
        error = e
    else:
        v.rt.after_lease_change()
        if not v.htmx:
            return _see_other("/reviews")
    with v.rt.store.transaction() as s:
        item = s.get(ReviewItem, review_id)
        assert item is not None
        ctx = _review_context(s, v, [item])
        if v.htmx:
            return v.page(
                "_review.html", status_code=error.status if error else 200, r=item, error=error, comment=comment, **ctx
            )
        items = customers.list_reviews(s, v.actor, "open")
        ctx = _review_context(s, v, [*items, item])
        return v.page(
            "reviews.html",
            status_code=error.status if error else 200,
            nav="reviews",
            items=items,
            status="open",
            error=error,
            error_review=review_id,
            comment=comment,
            **ctx,
        )


# --------------------------------------------------------------------------------------------- screening


@router.get("/screen")
def screen_form(v: Visit = Depends(visit)) -> Response:
    v.require(*STAFF)
    return v.page("screen.html", nav="screen", name="", country="", result=None)


@router.post("/screen")
def screen_name(v: Visit = Depends(posted), name: str = Form(""), country: str = Form("")) -> Response:
    v.require(*STAFF)
    from gpulease import audit

    name, country = name.strip(), country.strip().upper()
    if not name:
        return v.page(
            "screen.html",
            status_code=422,
            nav="screen",
            name=name,
            country=country,
            result=None,
            error="Give a name to screen.",
        )
    result = screening.screen_name(v.rt.screening.index(), name, country or None)
    with v.rt.store.transaction() as s:  # who screened what is part of the compliance record, as in the API
        audit.append(
            s,
            at=v.rt.clock(),
            actor=v.actor.name,
            action="screen",
            subject="name",
            data={
                "name": name,
                "country": country or None,
                "decision": result["decision"],
                "top": result["hits"][0]["entry_id"] if result["hits"] else None,
            },
        )
    return v.page("screen.html", nav="screen", name=name, country=country, result=result)


# --------------------------------------------------------------------------------------------- invoices


@router.get("/invoices")
def invoices(v: Visit = Depends(visit), customer: str = "", period: str = "") -> Response:
    period = period or v.rt.clock().strftime("%Y-%m")
    with v.rt.store.transaction() as s:
        choices = customers.list_customers(s, v.actor)
        if v.actor.role is Role.CUSTOMER:
            cid: int | None = v.actor.customer_id
        else:
            cid = int(customer) if customer.isdigit() else (choices[0].id if choices else None)
        inv = None if cid is None else billing.invoice(s, v.actor, cid, period)
        periods = [] if cid is None else dashboard.usage_periods(s, cid)
    return v.page(
        "invoices.html", nav="invoices", customers=choices, customer_id=cid, period=period, invoice=inv, periods=periods
    )


# --------------------------------------------------------------------------------------------- errors


def _is_page(request: Request) -> bool:
    return not request.url.path.startswith(API_PATHS)


TITLES = {
    400: "Bad request",
    401: "Sign in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "Conflict",
    422: "Check the form",
}


def error_page(request: Request, status: int, detail: str, title: str | None = None) -> HTMLResponse:
    ctx: dict[str, Any] = {
        "status": status,
        "title": title or TITLES.get(status, "Something went wrong"),
        "detail": detail,
    }
    with contextlib.suppress(LoginRequired):
        ctx.update(_visit(request).context())
    if request.headers.get("HX-Request") == "true":
        return templates.TemplateResponse(request, "_error.html", ctx, status_code=status)
    return templates.TemplateResponse(request, "error.html", ctx, status_code=status)


def _to_login(request: Request) -> Response:
    path = request.url.path
    target = "/login" if path in ("/", "/login") else "/login?next=" + quote(path, safe="/")
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": target})
    return _see_other(target)


def install(app: FastAPI) -> None:
    """Mount the dashboard on the app: pages, /static, and HTML error pages outside the API's paths."""
    from gpulease.web import operations  # it builds on this module's Visit

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(router)
    app.include_router(operations.router)
    api_handlers = dict(app.exception_handlers)

    async def login_required(request: Request, exc: Exception) -> Response:
        return _to_login(request)

    async def csrf_rejected(request: Request, exc: Exception) -> Response:
        return await run_in_threadpool(
            error_page,
            request,
            403,
            "This form was not sent from a page of this dashboard (its security token "
            "is missing or out of date). Reload the page and try again.",
            "Form refused",
        )

    def fallback(exc_type: Any, detail_of: Any, status_of: Any) -> Any:
        api = api_handlers.get(exc_type)

        async def handler(request: Request, exc: Exception) -> Response:
            if _is_page(request) or api is None:
                return await run_in_threadpool(error_page, request, status_of(exc), detail_of(exc))
            result: Response = await api(request, exc)
            return result

        return handler

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(CsrfRejected, csrf_rejected)
    app.add_exception_handler(ServiceError, fallback(ServiceError, lambda e: e.detail, lambda e: e.status))
    app.add_exception_handler(IllegalTransition, fallback(IllegalTransition, str, lambda e: 409))
    app.add_exception_handler(
        StarletteHTTPException,
        fallback(
            StarletteHTTPException,
            lambda e: "There is no such page." if e.status_code == 404 else str(e.detail),
            lambda e: e.status_code,
        ),
    )
    app.add_exception_handler(
        RequestValidationError,
        fallback(
            RequestValidationError, lambda e: "; ".join(str(x.get("msg", "invalid")) for x in e.errors()), lambda e: 422
        ),
    )


__all__ = ["install"]
