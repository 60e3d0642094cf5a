"""Leases: book, look, extend, cancel, end, preempt; availability."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from gpulease.api.deps import ActorDep, IdPath, RuntimeDep
from gpulease.api.schemas import AvailabilityOut, ExtendIn, LeaseEventOut, LeaseIn, LeaseOut, QuoteOut
from gpulease.services import leases
from gpulease.services.errors import NotCleared

router = APIRouter(tags=["leases"])


def _request(body: LeaseIn) -> leases.LeaseRequest:
    return leases.LeaseRequest(
        gpu_model=body.gpu_model,
        gpu_count=body.gpu_count,
        plan=body.plan,
        start=body.start,
        end=body.end,
        customer_id=body.customer_id,
        duration_s=body.duration_s,
        max_wait_s=body.max_wait_s,
    )


@router.post("/quotes", response_model=QuoteOut)
def quote(body: LeaseIn, rt: RuntimeDep, actor: ActorDep) -> QuoteOut:
    """Price a request without booking it."""
    with rt.store.transaction() as s:
        return QuoteOut.of(leases.quote_request(s, _request(body), rt.clock()))


@router.post(
    "/leases",
    status_code=201,
    response_model=LeaseOut,
    responses={403: {"description": "customer not cleared"}, 409: {"description": "cannot be placed"}},
)
def create_lease(body: LeaseIn, rt: RuntimeDep, actor: ActorDep) -> LeaseOut:
    try:
        with rt.store.transaction() as s:
            booked = leases.create_lease(s, rt.store, actor, _request(body), rt.clock())
            out = LeaseOut.of(booked.lease, booked.preempted)
    except NotCleared:
        rt.record_refusal(actor, body.customer_id or actor.customer_id, "lease refused: customer not cleared")
        raise
    rt.after_lease_change()
    return out


@router.get("/leases", response_model=list[LeaseOut])
def list_leases(
    rt: RuntimeDep, actor: ActorDep, customer_id: IdPath | None = None, state: str | None = None
) -> list[LeaseOut]:
    with rt.store.transaction() as s:
        return [LeaseOut.of(lease) for lease in leases.list_leases(s, actor, customer_id, state)]


@router.get("/leases/{lease_id}", response_model=LeaseOut)
def get_lease(lease_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> LeaseOut:
    with rt.store.transaction() as s:
        return LeaseOut.of(leases.get_lease(s, actor, lease_id))


@router.get("/leases/{lease_id}/events", response_model=list[LeaseEventOut])
def lease_events(lease_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> list[LeaseEventOut]:
    with rt.store.transaction() as s:
        return [
            LeaseEventOut(at=e.at, from_state=e.from_state, to_state=e.to_state, actor=e.actor, reason=e.reason)
            for e in leases.lease_events(s, actor, lease_id)
        ]


def _change(rt: RuntimeDep, action: Literal["end", "cancel", "preempt"], lease_id: IdPath, actor: ActorDep) -> LeaseOut:
    with rt.store.transaction() as s:
        now = rt.clock()
        if action == "end":
            leases.end(s, actor, lease_id, now)
        elif action == "cancel":
            leases.cancel(s, actor, lease_id, now)
        else:
            leases.preempt_by_operator(s, actor, lease_id, now)
    rt.after_lease_change()  # stops the lease's runs; an ending lease becomes ended once they are gone
    with rt.store.transaction() as s:
        return LeaseOut.of(leases.get_lease(s, actor, lease_id))


@router.post("/leases/{lease_id}/end", response_model=LeaseOut)
def end_lease(lease_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> LeaseOut:
    """End now; its runs are stopped and pay-as-you-go usage is billed to this second."""
    return _change(rt, "end", lease_id, actor)


@router.post("/leases/{lease_id}/cancel", response_model=LeaseOut)
def cancel_lease(lease_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> LeaseOut:
    """Cancel before the start; reserved windows cancelled late carry the plan's fee."""
    return _change(rt, "cancel", lease_id, actor)


@router.post("/leases/{lease_id}/preempt", response_model=LeaseOut)
def preempt_lease(lease_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> LeaseOut:
    """Operator: take an interruptible lease's GPUs back after its notice period."""
    return _change(rt, "preempt", lease_id, actor)


@router.post("/leases/{lease_id}/extend", response_model=LeaseOut)
def extend_lease(lease_id: IdPath, body: ExtendIn, rt: RuntimeDep, actor: ActorDep) -> LeaseOut:
    with rt.store.transaction() as s:
        return LeaseOut.of(leases.extend(s, rt.store, actor, lease_id, body.end, rt.clock()))


@router.get("/availability", response_model=AvailabilityOut)
def availability(
    rt: RuntimeDep,
    actor: ActorDep,
    gpu_model: str,
    gpu_count: int = Query(ge=1, le=64),
    start: AwareDatetime | Literal["now"] = "now",
    end: AwareDatetime | None = None,
) -> AvailabilityOut:
    """Is this capacity free in this window, at what price, and the earliest start at which it fits."""
    with rt.store.transaction() as s:
        a = leases.availability(s, gpu_model_name=gpu_model, gpu_count=gpu_count, start=start, end=end, now=rt.clock())
    return AvailabilityOut(
        gpu_model=a.gpu_model,
        gpu_count=a.gpu_count,
        start=a.start,
        end=a.end,
        available=a.available,
        earliest_start=a.earliest_start,
        reason=a.reason,
        quotes={k: QuoteOut.of(q) for k, q in a.quotes.items()},
    )


__all__ = ["datetime", "router"]
