"""Invoices and usage export."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from gpulease.api.deps import ActorDep, IdPath, RuntimeDep
from gpulease.api.schemas import InvoiceLineOut, InvoiceOut
from gpulease.services import billing
from gpulease.services.context import Role

router = APIRouter(tags=["billing"])


@router.get("/customers/{customer_id}/invoices", response_model=InvoiceOut)
def invoice(
    customer_id: IdPath,
    rt: RuntimeDep,
    actor: ActorDep,
    period: str = Query(pattern=r"^\d{4}-\d{2}$", examples=["2026-11"]),
) -> InvoiceOut:
    """The month's invoice: one line per lease and month, each rounded to the cent; total = sum of lines."""
    with rt.store.transaction() as s:
        inv = billing.invoice(s, actor, customer_id, period)
    return InvoiceOut(
        customer_id=inv.customer_id,
        period=inv.period,
        currency=inv.currency,
        total=f"{inv.total:f}",
        lines=[
            InvoiceLineOut(
                lease_id=ln.lease_id,
                kind=ln.kind,
                description=ln.description,
                gpu_model=ln.gpu_model,
                gpu_count=ln.gpu_count,
                plan=ln.plan,
                start=ln.start,
                end=ln.end,
                seconds=ln.seconds,
                rate=f"{ln.rate.normalize():f}",
                unit=ln.unit,
                amount=f"{ln.amount:f}",
            )
            for ln in inv.lines
        ],
    )


@router.get("/billing/verify")
def verify(
    rt: RuntimeDep, actor: ActorDep, period: str | None = Query(default=None, pattern=r"^\d{4}-\d{2}$")
) -> dict[str, object]:
    """Recompute every usage record from the lease event log and say where they differ (operator)."""
    actor.require(Role.OPERATOR)
    with rt.store.transaction() as s:
        problems = billing.verify_usage(s, rt.clock(), period)
    return {"ok": not problems, "problems": problems}


@router.get(
    "/customers/{customer_id}/usage.csv",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def usage_csv(customer_id: IdPath, rt: RuntimeDep, actor: ActorDep, period: str | None = None) -> PlainTextResponse:
    with rt.store.transaction() as s:
        body = billing.usage_csv(s, actor, customer_id, period)
    name = f"usage-{customer_id}-{period or 'all'}.csv"
    return PlainTextResponse(
        body, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
