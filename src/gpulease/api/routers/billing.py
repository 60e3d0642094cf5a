"""Invoices, usage export and the check of usage against the lease event log."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from gpulease.api.deps import ActorDep, IdPath, PeriodQuery, RuntimeDep
from gpulease.api.routing import OneTripRoute
from gpulease.api.schemas import InvoiceOut, UsageCheckOut
from gpulease.services import billing, spend

router = APIRouter(tags=["billing"], route_class=OneTripRoute)


@router.get("/customers/{customer_id}/invoices", response_model=InvoiceOut)
def invoice(customer_id: IdPath, rt: RuntimeDep, actor: ActorDep, period: PeriodQuery | None = None) -> InvoiceOut:
    """The month's invoice (period YYYY-MM; this month, UTC, when not given): one line per lease and month, each
    rounded to the cent; total = sum.

    Running leases' use since their last record is beside it (`accrued_lines`, marked running): not final.
    """
    return InvoiceOut.of(rt.perform(spend.invoice_so_far, actor=actor, customer_id=customer_id, period=period))


@router.get("/billing/verify", response_model=UsageCheckOut)
def verify(rt: RuntimeDep, actor: ActorDep, period: PeriodQuery | None = None) -> UsageCheckOut:
    """Recompute every usage record from the lease event log and say where they differ."""
    problems = rt.perform(billing.verify_usage, actor=actor, period=period)
    return UsageCheckOut(ok=not problems, problems=problems)


@router.get(
    "/customers/{customer_id}/usage.csv",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def usage_csv(
    customer_id: IdPath, rt: RuntimeDep, actor: ActorDep, period: PeriodQuery | None = None
) -> PlainTextResponse:
    body = rt.perform(billing.usage_csv, actor=actor, customer_id=customer_id, period=period)
    name = f"usage-{customer_id}-{period or 'all'}.csv"
    return PlainTextResponse(
        body, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
