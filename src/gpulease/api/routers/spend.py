"""Spend and limits: what a customer has spent this month and what it is heading for, and the limits operators
set on it (a monthly spend limit, a quota of GPUs per model)."""

from __future__ import annotations

from fastapi import APIRouter

from gpulease.api.deps import ActorDep, IdPath, RuntimeDep
from gpulease.api.routing import OneTripRoute
from gpulease.api.schemas import LimitsIn, LimitsOut, SpendOut
from gpulease.services import budgets, spend

router = APIRouter(tags=["spend"], route_class=OneTripRoute)


@router.get("/customers/{customer_id}/spend", response_model=SpendOut)
def customer_spend(customer_id: IdPath, rt: RuntimeDep, actor: ActorDep, period: str | None = None) -> SpendOut:
    """Month-to-date spend (period YYYY-MM, default this month): `billed` is on record, `accrued` is what running
    leases have used since (not final), `forecast` adds what leases booked now cost until the month ends
    (`forecast_method` says how), `limit` is the monthly spend limit."""
    return SpendOut.of(rt.perform(spend.customer_spend, actor=actor, customer_id=customer_id, period=period))


@router.get("/customers/{customer_id}/limits", response_model=LimitsOut)
def get_limits(customer_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> LimitsOut:
    return LimitsOut.of(rt.perform(budgets.get_limits, actor=actor, customer_id=customer_id))


@router.put(
    "/customers/{customer_id}/limits",
    response_model=LimitsOut,
    responses={403: {"description": "only operators set limits"}},
)
def set_limits(customer_id: IdPath, body: LimitsIn, rt: RuntimeDep, actor: ActorDep) -> LimitsOut:
    """Operator: set the monthly spend limit and the GPU quota per model (both replaced whole).

    A booking that would pass the limit answers 402 (`spend-limit`), one over the quota 409 (`gpu-quota`).
    """
    result = rt.perform(
        budgets.set_limits,
        actor=actor,
        customer_id=customer_id,
        monthly_spend_limit=body.monthly_spend_limit,
        gpu_quota=body.gpu_quota,
    )
    return LimitsOut.of(result)
