"""The dashboard's pages for leases, customers, reviews, screening and invoices, and signing in.

Sign-in is by API key (the same keys as the API), kept in an HttpOnly, SameSite=Strict cookie; every POST
also carries a token derived from that key. Each page shows what the key's role may see: a customer sees
its own tenant only, and gets the same "not found" for another tenant's lease as for a missing one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from gpulease.domain.cpu import CPU_CATALOGUE
from gpulease.domain.inventory import CATALOGUE
from gpulease.domain.leases import IllegalTransition, LeaseState, Plan
from gpulease.domain.pricing import Quote, cancellation_fee_applies
from gpulease.runtime import Runtime
from gpulease.services import (
    billing,
    budgets,
    compliance_file,
    customers,
    gpu_usage,
    inventory,
    leases,
    limits,
    reports,
    reviews,
    screening,
    sessions,
    spend,
)
from gpulease.services.context import Role
from gpulease.services.cpu_capacity import held_cores
from gpulease.services.errors import InvalidRequest, ServiceError
from gpulease.services.execution import RUNNABLE
from gpulease.services.kyc import KycInput, Owner
from gpulease.services.permissions import Permission, require
from gpulease.services.records import Lease, ReviewItem
from gpulease.services.work import Work
from gpulease.web import account, gantt, gpu_chart
from gpulease.web.pages import (
    Visit,
    local_input,
    parse_time,
    posted,
    see_other,
    signed_in_visit,
    templates,
    visit,
)
from gpulease.web.session import COOKIE, LoginRequired, safe_next

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


def _refused(e: ServiceError) -> bool:
    """Not allowed or not there: the error page, not a message on the form."""
    return e.status in (403, 404)


# --------------------------------------------------------------------------------------------- sign-in


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    with contextlib.suppress(LoginRequired):
        signed_in_visit(request)
        return see_other(safe_next(next))
    return templates.TemplateResponse(request, "login.html", {"next": safe_next(next), "error": None})


@router.post("/login")
def login(request: Request, key: str = Form(""), next: str = Form("/")) -> Response:
    rt: Runtime = request.app.state.runtime
    started = rt.perform(sessions.sign_in, key=key.strip()) if key.strip() and len(key) <= 200 else None
    if started is None:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"next": safe_next(next), "error": "That key is not valid (unknown or revoked)."},
            status_code=401,
        )
    token, _actor = started
    target = safe_next(next)
    resp = see_other(target)
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
        rt.perform(sessions.sign_out, token=token)
    resp = see_other("/login")
    resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return resp


# --------------------------------------------------------------------------------------------- overview


@router.get("/")
def overview(v: Visit = Depends(visit), hours: int = 48, start: str = "", model: str = "") -> Response:
    if not v.staff:
        return account.home(v)  # a customer's home: its spend, running leases and news
    now = v.rt.clock()
    hours = max(1, min(hours, limits.OVERVIEW_HOURS_MAX))
    t0 = (parse_time(start, "start") or now).replace(second=0)  # within limits.EARLIEST..LATEST
    t1 = t0 + timedelta(hours=hours)
    with v.rt.work() as w:
        o = reports.overview(w, actor=v.actor, start=t0, end=t1, gpu_model=model or None)
        rows = [
            gantt.GanttNode(
                n.id, n.name, f"{n.cluster.site.name}/{n.cluster.name} · {n.gpu_model}", n.gpu_count, n.state
            )
            for n in o.nodes
            if n.gpu_count > 0  # a CPU node has no GPU rows: it is drawn in the CPU calendar
        ]
        cpu_rows = [
            gantt.CpuRow(
                n.id,
                n.name,
                f"{n.cluster.site.name}/{n.cluster.name} · {n.cpu_model}",
                len(view.leasable_cores),
                view.leasable_memory_gib,
                n.state,
            )
            for n in o.nodes
            if (view := inventory.cpu_node_view(n)) is not None
        ]
        alerts = [(a.at, a.kind, a.message) for a in o.alerts]
    return v.page(
        "overview.html",
        nav="overview",
        capacity=o.capacity,
        counts=o.lease_counts,
        states=[st.value for st in LeaseState],
        open_reviews=o.open_reviews,
        alerts=alerts,
        svg=gantt.render(rows, o.bookings, t0, t1, now),
        cpu_svg=gantt.render_cpu(cpu_rows, o.cpu_bookings, t0, t1, now) if cpu_rows else None,
        use=gantt.utilisation(rows, o.bookings, t0, t1, now),
        t0=t0,
        t1=t1,
        hours=hours,
        model=model,
        models=o.models,
        leased_now=o.leased_now,
        total_gpus=o.total_gpus,
        earlier=local_input(t0 - timedelta(hours=hours)),
        later=local_input(t0 + timedelta(hours=hours)),
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
    customer_id = int(customer) if customer.isascii() and customer.isdigit() else None  # else: no filter
    with v.rt.work() as w:
        rows = leases.list_leases(w, actor=v.actor, customer_id=customer_id, state=state or None)
        costs = spend.of_leases(w, rows)
        people = customers.list_customers(w, actor=v.actor)
        names = {c.id: c.legal_name for c in people}
        choices = [(c.id, c.legal_name, c.compliance_status) for c in people]
        models = inventory.models_in_service(w) or sorted(CATALOGUE)
    defaults = {
        "gpu_model": models[0] if models else "",
        "gpu_count": "1",
        "resource": "gpu",
        "cpu_cores": "16",
        "memory_gib": "",  # empty: the cores' share of the node's memory
        "cpu_model": "",  # empty: any model (priced as placed)
        "plan": "on_demand",
        "start": "",  # as the hints say: empty start is now, empty end is open-ended
        "end": "",
        "customer_id": str(customer_id or v.actor.customer_id or ""),
    }
    return v.page(
        "leases.html",
        status_code=error.status if error else 200,
        nav="leases",
        leases=rows,
        costs=costs,
        names=names,
        state=state,
        customer=customer,
        states=[st.value for st in LeaseState],
        customers=choices,
        models=models,
        cpu_models=sorted(CPU_CATALOGUE),
        plans=[p.value for p in Plan],
        form={**defaults, **(form or {})},
        error=error,
        can_book=v.may(Permission.BOOK_LEASE),
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
    resource: str = Form("gpu"),
    cpu_cores: str = Form(""),
    memory_gib: str = Form(""),
    cpu_model: str = Form(""),
    plan: str = Form("on_demand"),
    start: str = Form(""),
    end: str = Form(""),
) -> Response:
    form = {
        "customer_id": customer_id,
        "gpu_model": gpu_model,
        "gpu_count": gpu_count,
        "resource": resource,
        "cpu_cores": cpu_cores,
        "memory_gib": memory_gib,
        "cpu_model": cpu_model,
        "plan": plan,
        "start": start,
        "end": end,
    }
    try:
        chosen = customer_id.strip()
        if chosen and not (chosen.isascii() and chosen.isdigit()):
            raise InvalidRequest("choose the customer the lease is for")
        if resource not in ("gpu", "cpu"):
            raise InvalidRequest("choose GPUs or CPU cores")
        cpu = resource == "cpu"  # a CPU lease: the same service as the API's, with cpu_cores instead of GPUs
        req = leases.LeaseRequest(
            gpu_model="" if cpu else gpu_model,
            gpu_count=0 if cpu else limits.parse_int(gpu_count, what="the number of GPUs"),
            plan=plan,
            start=parse_time(start, "start") or "now",
            end=parse_time(end, "end"),
            customer_id=int(chosen) if chosen else None,
            cpu_cores=limits.parse_int(cpu_cores, what="the number of cores") if cpu else None,
            memory_gib=limits.parse_int(memory_gib, what="the memory (GiB)") if cpu and memory_gib.strip() else None,
            cpu_model=(cpu_model.strip() or None) if cpu else None,
        )
        with v.rt.work() as w:
            lease_id = leases.create_lease(w, actor=v.actor, request=req).lease.id
    except ServiceError as e:
        if not v.may(Permission.BOOK_LEASE):
            raise  # no booking form to show it on: the error page says it
        return _leases_page(v, form=form, error=e)  # on the form, with what was typed
    return see_other(f"/leases/{lease_id}")


def lease_page(v: Visit, lease_id: int, error: str | None = None, status: int = 200, **extra: Any) -> HTMLResponse:
    """A lease: its facts, cost, actions, GPUs, runs (and the form to start one), how to use it, its events."""
    with v.rt.work() as w:
        lease = leases.get_lease(w, actor=v.actor, lease_id=lease_id)
        events = leases.lease_events(w, actor=v.actor, lease_id=lease_id)
        customer = customers.get_customer(w, actor=v.actor, customer_id=lease.customer_id)
        by_node: dict[str, list[Any]] = {}
        for a in sorted(lease.allocations, key=lambda a: (a.node.name, a.gpu_index)):
            by_node.setdefault(a.node.name, []).append(a)
        cores = held_cores(lease, leases.held_allocations(lease))  # a CPU lease's, or its GPUs' share
        quote = Quote.from_dict(lease.quote)
        actions = {a.value: True for a in leases.allowed_actions(lease, v.actor)}
        suggested_end = local_input((lease.ends_at or v.rt.clock()) + timedelta(hours=4))
        page_data = {"lease": lease, "events": events, "customer": customer, "by_node": by_node, "quote": quote}
        page_data["cost"] = spend.of_lease(w, lease)
        page_data["cores"] = cores
        page_data["cancel_fee_applies"] = cancellation_fee_applies(quote)
        page_data["runnable"] = lease.state in RUNNABLE
        page_data["gpu_use"] = None
        if lease.resource == "gpu" and lease.activated_at is not None:
            use = gpu_usage.lease_gpu_usage(w, actor=v.actor, lease_id=lease_id)
            if use.readings:  # no readings (no NVML): no card, no chart
                page_data["gpu_use"], page_data["gpu_chart"] = use, gpu_chart.render(use)
    runs = v.rt.executor.runs_of(v.actor, lease_id=lease_id)  # its own transaction: never nest them
    return v.page(
        "lease.html",
        status_code=status,
        nav="leases",
        runs=runs,
        actions=actions,
        error=error,
        suggested_end=suggested_end,
        can_run=v.may(Permission.RUN_WORK),
        base_url=str(v.request.base_url).rstrip("/"),
        **{"run_error": None, "run_command": "", **extra},
        **page_data,
    )


@router.get("/leases/{lease_id}")
def lease_detail(lease_id: int, v: Visit = Depends(visit)) -> Response:
    return lease_page(v, lease_id)


def _change(v: Visit, lease_id: int, change: Callable[..., Lease], **kwargs: Any) -> Response:
    """One lease change through its use case; a refusal is shown on the lease's page."""
    try:
        v.rt.perform(change, actor=v.actor, lease_id=lease_id, **kwargs)
    except ServiceError as e:
        if e.status == 404:
            raise
        return lease_page(v, lease_id, error=e.detail, status=e.status)
    except IllegalTransition as e:
        return lease_page(v, lease_id, error=str(e), status=409)
    return see_other(f"/leases/{lease_id}")


@router.post("/leases/{lease_id}/end")
def end_lease(lease_id: int, v: Visit = Depends(posted)) -> Response:
    return _change(v, lease_id, leases.end)


@router.post("/leases/{lease_id}/cancel")
def cancel_lease(lease_id: int, v: Visit = Depends(posted)) -> Response:
    return _change(v, lease_id, leases.cancel)


@router.post("/leases/{lease_id}/extend")
def extend_lease(lease_id: int, v: Visit = Depends(posted), end: str = Form("")) -> Response:
    try:
        new_end = parse_time(end, "the new end")
        if new_end is None:
            raise InvalidRequest("give the new end of the lease")
    except ServiceError as e:
        return lease_page(v, lease_id, error=e.detail, status=e.status)
    return _change(v, lease_id, leases.extend, new_end=new_end)


# --------------------------------------------------------------------------------------------- customers


@router.get("/customers")
def customer_list(v: Visit = Depends(visit)) -> Response:
    with v.rt.work() as w:
        lines = reports.customer_directory(w, actor=v.actor)
        return v.page(
            "customers.html",
            nav="customers",
            customers=[ln.customer for ln in lines],
            counts={ln.customer.id: ln.lease_counts for ln in lines},
        )


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


def _kyc(form: dict[str, str], owners: list[tuple[str, str]]) -> KycInput:
    """The form parsed into the KYC input (the use case validates it, as for the API and the CLI)."""
    incorporated = None
    if form["incorporated_on"]:
        try:
            incorporated = date.fromisoformat(form["incorporated_on"])
        except ValueError:
            raise InvalidRequest("the date of incorporation must be a date such as 2015-03-01") from None
    requested = 0
    if form["requested_gpus"]:
        requested = limits.parse_int(form["requested_gpus"], what="requested GPUs")
    parsed = []
    for name, percent in owners:
        try:
            share = float(percent)
        except ValueError:
            raise InvalidRequest(f"give {name}'s share as a percentage between 0 and 100") from None
        parsed.append(Owner(name, share))
    return KycInput(
        legal_name=form["legal_name"],
        country=form["country"],
        local_name=form["local_name"] or None,
        address=form["address"] or None,
        incorporated_on=incorporated,
        email_domain=form["email_domain"] or None,
        website=form["website"] or None,
        parent=form["parent"] or None,
        owners=tuple(parsed),
        end_use=form["end_use"] or None,
        requested_gpus=requested,
    )


@router.get("/customers/new")
def new_customer_form(v: Visit = Depends(visit)) -> Response:
    require(v.actor, Permission.ONBOARD_CUSTOMER)  # the form of an action is offered to those who may take it
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
    given = (legal_name, local_name, country, address, incorporated_on, email_domain, website, parent, end_use)
    form = dict(zip(KYC_FIELDS, (x.strip() for x in (*given, requested_gpus)), strict=True))
    owners = [(n.strip(), p.strip()) for n, p in zip(owner_name, owner_percent, strict=False)]
    owners = [o for o in owners if any(o)]
    try:
        kyc = _kyc(form, owners)
        with v.rt.work() as w:
            customer_id = customers.create_customer(w, actor=v.actor, kyc=kyc).id
    except ServiceError as e:
        if _refused(e):
            raise
        return _new_customer_page(v, form, owners, e)
    return see_other(f"/customers/{customer_id}")


def _customer_page(v: Visit, customer_id: int, limits_error: ServiceError | None = None) -> HTMLResponse:
    spending = account.staff_spend_context(v, customer_id)
    with v.rt.work() as w:
        f = reports.customer_file(w, actor=v.actor, customer_id=customer_id)
        return v.page(
            "customer.html",
            status_code=limits_error.status if limits_error else 200,
            nav="customers",
            c=f.customer,
            screening=f.screening,
            invoices=f.invoices,
            leases=f.leases,
            reviews=f.reviews,
            limits_error=limits_error,
            **spending,
        )


@router.get("/customers/{customer_id}")
def customer_detail(customer_id: int, v: Visit = Depends(visit)) -> Response:
    return _customer_page(v, customer_id)


@router.get("/customers/{customer_id}/compliance-file")
def customer_compliance_file(customer_id: int, v: Visit = Depends(visit)) -> Response:
    """The compliance file as a page an auditor can read (the JSON export is the API's, same use case)."""
    f = v.rt.perform(compliance_file.compliance_file, actor=v.actor, customer_id=customer_id)
    return v.page("compliance_file.html", nav="customers", f=f)


@router.post("/customers/{customer_id}/limits")
def set_limits(
    customer_id: int,
    v: Visit = Depends(posted),
    monthly_spend_limit: str = Form(""),
    quota_model: list[str] = Form([]),
    quota_gpus: list[str] = Form([]),
) -> Response:
    try:
        v.rt.perform(
            budgets.set_limits,
            actor=v.actor,
            customer_id=customer_id,
            monthly_spend_limit=monthly_spend_limit.strip() or None,
            gpu_quota=account.parse_quota(quota_model, quota_gpus),
        )
    except ServiceError as e:
        if _refused(e):
            raise
        return _customer_page(v, customer_id, limits_error=e)
    return see_other(f"/customers/{customer_id}#limits")


# --------------------------------------------------------------------------------------------- reviews


def _review_context(v: Visit, w: Work, items: list[ReviewItem]) -> dict[str, Any]:
    ids = {r.customer_id for r in items}
    people = {c.id: c for c in customers.list_customers(w, actor=v.actor) if c.id in ids}
    cleared = reviews.cleared_parties(w)
    needed = {r.id: reviews.needs_licence(r, cleared) for r in items if r.status in reviews.OPEN}
    approvals = {r.id: [d for d in reviews.decisions_of(w, r) if d.decision == "approve"] for r in items}
    return {"people": people, "can_decide": v.may(Permission.DECIDE_REVIEWS), "needed": needed, "approvals": approvals}


@router.get("/reviews")
def review_queue(v: Visit = Depends(visit), status: str = "open") -> Response:
    if status not in reviews.STATUSES:
        status = "open"
    with v.rt.work() as w:
        items = reviews.list_reviews(w, actor=v.actor, status=status)
        return v.page("reviews.html", nav="reviews", items=items, status=status, **_review_context(v, w, items))


@router.post("/reviews/{review_id}/decision")
def decide_review(
    review_id: int,
    v: Visit = Depends(posted),
    decision: str = Form(""),
    comment: str = Form(""),
    confirm: str = Form(""),
    licence_authority: str = Form(""),
    licence_number: str = Form(""),
    licence_expires_on: str = Form(""),
    licence_scope: str = Form(""),
) -> Response:
    """A decision from the queue. Clearing a blocking-list hit is confirmed on the form (the entries cleared are
    shown beside the box) and carries the licence fields; the use case checks both approvals."""
    error: ServiceError | None = None
    try:
        with v.rt.work() as w:
            item = reviews.get_review(w, actor=v.actor, review_id=review_id)
            needed = reviews.needs_licence(item, reviews.cleared_parties(w))
        asked = decision == "approve" and needed and comment.strip() and v.may(Permission.DECIDE_REVIEWS)
        if asked and confirm != "yes":
            raise InvalidRequest(f"confirm what you clear: {', '.join(needed)} (tick the box)")
        expires: date | None = None
        if licence_expires_on.strip():
            try:
                expires = date.fromisoformat(licence_expires_on.strip())
            except ValueError:
                raise InvalidRequest("licence expiry: a date, YYYY-MM-DD") from None
        licence = reviews.LicenceInput(
            licence_authority.strip() or None, licence_number.strip() or None, expires, licence_scope.strip() or None
        )
        v.rt.perform(
            reviews.decide_review,
            actor=v.actor,
            review_id=review_id,
            decision=decision,
            comment=comment,
            licence=licence if licence.number else None,
        )
    except ServiceError as e:
        if _refused(e):
            raise
        error = e
    else:
        if not v.htmx:
            return see_other("/reviews")
    with v.rt.work() as w:
        item = reviews.get_review(w, actor=v.actor, review_id=review_id)
        if v.htmx:
            ctx = _review_context(v, w, [item])
            return v.page(
                "_review.html", status_code=error.status if error else 200, r=item, error=error, comment=comment, **ctx
            )
        items = reviews.list_reviews(w, actor=v.actor, status="open")
        return v.page(
            "reviews.html",
            status_code=error.status if error else 200,
            nav="reviews",
            items=items,
            status="open",
            error=error,
            error_review=review_id,
            comment=comment,
            **_review_context(v, w, [*items, item]),
        )


# --------------------------------------------------------------------------------------------- screening


@router.get("/screen")
def screen_form(v: Visit = Depends(visit)) -> Response:
    require(v.actor, Permission.SCREEN_NAMES)
    return v.page("screen.html", nav="screen", name="", country="", result=None)


@router.post("/screen")
def screen_name(v: Visit = Depends(posted), name: str = Form(""), country: str = Form("")) -> Response:
    try:
        result = v.rt.perform(screening.screen_name, actor=v.actor, name=name, country=country or None)
    except ServiceError as e:
        if _refused(e):
            raise
        return v.page(
            "screen.html",
            status_code=e.status,
            nav="screen",
            name=name.strip(),
            country=country.strip().upper(),
            result=None,
            error=e.detail,
        )
    return v.page(
        "screen.html", nav="screen", name=name.strip(), country=country.strip().upper(), result=result.to_dict()
    )


# --------------------------------------------------------------------------------------------- invoices


@router.get("/invoices")
def invoices(v: Visit = Depends(visit), customer: str = "", period: str = "") -> Response:
    period = period or v.rt.clock().strftime("%Y-%m")
    with v.rt.work() as w:
        choices = customers.list_customers(w, actor=v.actor)
        if v.actor.role is Role.CUSTOMER:
            cid: int | None = v.actor.customer_id
        else:
            chosen = customer.isascii() and customer.isdigit()
            cid = int(customer) if chosen else (choices[0].id if choices else None)
        so_far = None if cid is None else spend.invoice_so_far(w, actor=v.actor, customer_id=cid, period=period)
        periods = [] if cid is None else billing.usage_periods(w, actor=v.actor, customer_id=cid)
    return v.page(
        "invoices.html",
        nav="invoices",
        customers=choices,
        customer_id=cid,
        period=period,
        invoice=None if so_far is None else so_far.invoice,
        so_far=so_far,
        periods=periods,
    )


__all__ = ["router"]
