"""Leases: book, look, extend, cancel, end, preempt; availability. Each route translates one use case."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime

from gpulease.api.deps import ActorDep, IdPath, IdQuery, RuntimeDep
from gpulease.api.routing import OneTripRoute, short_unit
from gpulease.api.schemas import (
    AvailabilityOut,
    BookingIn,
    CoresOut,
    CpuLeaseIn,
    ExtendIn,
    GpuOut,
    GpuUsageOut,
    GpuUsagePointOut,
    LeaseEventOut,
    LeaseIn,
    LeaseOut,
    QuoteOut,
)
from gpulease.domain.inventory import NodeView
from gpulease.domain.leases import LeaseState
from gpulease.services import gpu_usage, leases, limits, spend, telemetry
from gpulease.services.context import Actor
from gpulease.services.records import Lease
from gpulease.services.work import Work

router = APIRouter(tags=["leases"], route_class=OneTripRoute)


def _request(body: LeaseIn | CpuLeaseIn) -> leases.LeaseRequest:
    return body.request()


@router.post("/quotes", response_model=QuoteOut)
@short_unit
def quote(body: BookingIn, rt: RuntimeDep, actor: ActorDep) -> QuoteOut:
    """Price a request without booking it."""
    return QuoteOut.of(rt.perform(leases.quote_request, request=_request(body)))


@router.post(
    "/leases",
    status_code=201,
    response_model=LeaseOut,
    responses={
        402: {"description": "past the customer's monthly spend limit"},
        403: {"description": "customer not cleared"},
        409: {"description": "cannot be placed, or past the customer's GPU quota"},
    },
)
@short_unit
def create_lease(body: BookingIn, rt: RuntimeDep, actor: ActorDep, response: Response) -> LeaseOut:
    """GPUs of a model (gpu_model, gpu_count), or cores and memory of one node (cpu_cores, optional memory_gib and
    cpu_model): the lease shows the GPUs (`gpus`) or the cores (`cores`, with their cpuset) it holds."""
    created = LeaseOut.of(*rt.perform(_book, actor=actor, request=_request(body)))
    response.headers["Location"] = f"/api/v1/leases/{created.id}"
    return created


@router.get("/leases", response_model=list[LeaseOut])
def list_leases(
    rt: RuntimeDep,
    actor: ActorDep,
    customer_id: IdQuery | None = None,
    state: Annotated[str, Query(json_schema_extra={"enum": [s.value for s in LeaseState]})] | None = None,
) -> list[LeaseOut]:
    with rt.work() as w:
        rows = leases.list_leases(w, actor=actor, customer_id=customer_id, state=state)
        costs = spend.of_leases(w, rows)
        return [LeaseOut.of(x, costs[x.id]) for x in rows]


# A booking's and an end's answer is built after the commit (`LeaseOut.of` on what the unit of work read), not in
# it: on SQLite the unit runs inside the store's one writer lock, which every other booking and end waits for.
Answer = tuple[Lease, spend.LeaseSpend, list[int], tuple[list[GpuOut], list[CoresOut]]]


def _answer(
    w: Work, lease: Lease, preempted: list[int] | None = None, nodes: Mapping[int, NodeView] | None = None
) -> Answer:
    return lease, spend.of_lease(w, lease), preempted or [], LeaseOut.holdings(lease, nodes)


def _book(w: Work, *, actor: Actor, request: leases.LeaseRequest) -> Answer:
    booked = leases.create_lease(w, actor=actor, request=request)
    return _answer(w, booked.lease, booked.preempted, booked.nodes)


def _end(w: Work, *, actor: Actor, lease_id: int) -> Answer:
    return _answer(w, leases.end(w, actor=actor, lease_id=lease_id))


def _lease(rt: RuntimeDep, actor: Actor, lease_id: int) -> LeaseOut:
    with rt.work() as w:
        lease = leases.get_lease(w, actor=actor, lease_id=lease_id)
        return LeaseOut.of(lease, spend.of_lease(w, lease))


@router.get("/leases/{lease_id}", response_model=LeaseOut)
def get_lease(lease_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> LeaseOut:
    """The lease with its cost so far (usage on record plus what it has used since), elapsed and remaining
    time, and its final cost once closed."""
    return _lease(rt, actor, lease_id)


@router.get("/leases/{lease_id}/events", response_model=list[LeaseEventOut])
def lease_events(lease_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> list[LeaseEventOut]:
    with rt.work() as w:
        return [
            LeaseEventOut(at=e.at, from_state=e.from_state, to_state=e.to_state, actor=e.actor, reason=e.reason)
            for e in leases.lease_events(w, actor=actor, lease_id=lease_id)
        ]


@router.get("/leases/{lease_id}/gpu-usage", response_model=GpuUsageOut)
def lease_gpu_usage(
    lease_id: IdPath,
    rt: RuntimeDep,
    actor: ActorDep,
    hours: Annotated[int, Query(ge=1, le=gpu_usage.HOURS_MAX, description="the last hours of its running time")] = 24,
    points: Annotated[int, Query(ge=1, le=gpu_usage.POINTS_MAX, description="buckets at most")] = 96,
) -> GpuUsageOut:
    """How the lease has used its GPUs: utilisation and memory over time, from the clock's NVML readings."""
    with rt.work() as w:
        u = gpu_usage.lease_gpu_usage(w, actor=actor, lease_id=lease_id, hours=hours, points=points)
    status = telemetry.status()
    return GpuUsageOut(
        lease_id=u.lease_id,
        since=u.since,
        until=u.until,
        readings=u.readings,
        mean_utilization_pct=u.mean_utilization_pct,
        peak_memory_mib=u.peak_memory_mib,
        nvml_available=status.nvml_available,
        reason=status.reason,
        points=[
            GpuUsagePointOut(at=p.at, utilization_pct=p.utilization_pct, memory_used_mib=p.memory_used_mib)
            for p in u.points
        ],
    )


# The lease is read again after the change: its runs were stopped after the commit, and an ending lease
# whose runs are gone is ended by then.


@router.post("/leases/{lease_id}/end", response_model=LeaseOut)
@short_unit
def end_lease(lease_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> LeaseOut:
    """End now; its runs are stopped and pay-as-you-go usage is billed to this second."""
    return LeaseOut.of(*rt.perform(_end, actor=actor, lease_id=lease_id))  # as the end committed it


@router.post("/leases/{lease_id}/cancel", response_model=LeaseOut)
@short_unit
def cancel_lease(lease_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> LeaseOut:
    """Cancel before the start; reserved windows cancelled late carry the plan's fee."""
    rt.perform(leases.cancel, actor=actor, lease_id=lease_id)
    return _lease(rt, actor, lease_id)


@router.post("/leases/{lease_id}/preempt", response_model=LeaseOut)
@short_unit
def preempt_lease(lease_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> LeaseOut:
    """Operator: take an interruptible lease's GPUs back after its notice period."""
    rt.perform(leases.preempt_by_operator, actor=actor, lease_id=lease_id)
    return _lease(rt, actor, lease_id)


@router.post("/leases/{lease_id}/extend", response_model=LeaseOut)
@short_unit
def extend_lease(lease_id: IdPath, body: ExtendIn, rt: RuntimeDep, actor: ActorDep) -> LeaseOut:
    with rt.work() as w:
        lease = leases.extend(w, actor=actor, lease_id=lease_id, new_end=body.end)
        return LeaseOut.of(lease, spend.of_lease(w, lease))


@router.get("/availability", response_model=AvailabilityOut)
def availability(
    rt: RuntimeDep,
    actor: ActorDep,
    gpu_model: Annotated[str, Query(json_schema_extra={"pattern": limits.GPU_MODEL})] | None = None,
    gpu_count: Annotated[int, Query(json_schema_extra={"minimum": 1, "maximum": 64})] | None = None,
    start: AwareDatetime | Literal["now"] = "now",
    end: AwareDatetime | None = None,
    cpu_cores: Annotated[int, Query(json_schema_extra={"minimum": 1, "maximum": limits.CPU_CORES_MAX})] | None = None,
    memory_gib: Annotated[int, Query(json_schema_extra={"minimum": 1, "maximum": limits.MEMORY_GIB_MAX})] | None = None,
    cpu_model: Annotated[str, Query(json_schema_extra={"pattern": limits.CPU_MODEL})] | None = None,
) -> AvailabilityOut:
    """Is this capacity free in this window, at what price, and the earliest start at which it fits: GPUs
    (gpu_model and gpu_count) or CPU cores (cpu_cores, optional memory_gib and cpu_model)."""
    a = rt.perform(
        leases.availability,
        gpu_model_name=gpu_model,
        gpu_count=gpu_count,
        start=start,
        end=end,
        cpu_cores=cpu_cores,
        memory_gib=memory_gib,
        cpu_model_name=cpu_model,
    )
    return AvailabilityOut(
        gpu_model=a.gpu_model or None,
        gpu_count=a.gpu_count,
        cpu_model=a.cpu_model,
        cpu_cores=a.cpu_cores,
        memory_gib=a.memory_gib,
        start=a.start,
        end=a.end,
        available=a.available,
        earliest_start=a.earliest_start,
        reason=a.reason,
        quotes={k: QuoteOut.of(q) for k, q in a.quotes.items()},
    )


__all__ = ["datetime", "router"]
