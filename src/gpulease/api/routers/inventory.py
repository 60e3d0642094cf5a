"""Nodes, GPU models, prices and the capacity calendar."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime

from gpulease.api.deps import ActorDep, FilterQuery, IdPath, RuntimeDep
from gpulease.api.routing import OneTripRoute
from gpulease.api.schemas import (
    CalendarOut,
    CpuNodeIn,
    CpuPriceIn,
    GpuModelOut,
    NodeIn,
    NodeOut,
    NodeStateIn,
    NodeStateOut,
    PriceIn,
    PriceOut,
    TelemetryOut,
)
from gpulease.domain.inventory import CATALOGUE, NodeState
from gpulease.services import inventory, limits, node_failure, prices, telemetry

router = APIRouter(tags=["inventory"], route_class=OneTripRoute)


@router.get("/gpu-models", response_model=list[GpuModelOut])
def list_gpu_models() -> list[GpuModelOut]:
    return [
        GpuModelOut(
            name=m.name, memory_gb=m.memory_gb, bf16_dense_tflops=m.bf16_dense_tflops, interconnect=m.interconnect
        )
        for m in CATALOGUE.values()
    ]


@router.post("/nodes", status_code=201, response_model=NodeOut)
def add_node(body: NodeIn | CpuNodeIn, rt: RuntimeDep, actor: ActorDep, response: Response) -> NodeOut:
    """A GPU node (its CPUs optionally described), or a CPU node (cpu_model, cpu_cores, memory_gib, no GPUs)."""
    gpu_model, gpu_count = (body.gpu_model, body.gpu_count) if isinstance(body, NodeIn) else (None, 0)
    with rt.work() as w:
        node = inventory.add_node(
            w,
            actor=actor,
            site=body.site,
            cluster=body.cluster,
            name=body.name,
            gpu_model_name=gpu_model,
            gpu_count=gpu_count,
            backend=body.backend,
            cpus=body.cpus(),
        )
        created = NodeOut.of(node)
    response.headers["Location"] = f"/api/v1/nodes/{created.id}"
    return created


@router.get("/nodes", response_model=list[NodeOut])
def list_nodes(rt: RuntimeDep, actor: ActorDep, gpu_model: FilterQuery | None = None) -> list[NodeOut]:
    with rt.work() as w:
        return [NodeOut.of(n) for n in inventory.list_nodes(w, actor=actor, gpu_model_name=gpu_model)]


@router.get("/nodes/{node_id}", response_model=NodeOut)
def get_node(node_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> NodeOut:
    with rt.work() as w:
        return NodeOut.of(inventory.get_node(w, actor=actor, node_id=node_id))


@router.post("/nodes/{node_id}/drain", response_model=NodeOut)
def drain_node(node_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> NodeOut:
    """Take no new leases on this node; leases already on it run to their end."""
    with rt.work() as w:
        node, _ = node_failure.set_node_state(w, actor=actor, node_id=node_id, state=NodeState.DRAINING)
        return NodeOut.of(node)


@router.put("/nodes/{node_id}/state", response_model=NodeStateOut)
def set_node_state(node_id: IdPath, body: NodeStateIn, rt: RuntimeDep, actor: ActorDep) -> NodeStateOut:
    """available, draining, or down: a failed node, whose leases move to free GPUs of the same model or end
    (interruptible ones always end); billing of an ended lease stops at the failure, the operator is alerted."""
    with rt.work() as w:
        node, failure = node_failure.set_node_state(
            w, actor=actor, node_id=node_id, state=body.state, reason=body.reason
        )
        return NodeStateOut.of_change(node, failure)


@router.delete("/nodes/{node_id}", status_code=204)
def remove_node(node_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> None:
    rt.perform(inventory.remove_node, actor=actor, node_id=node_id)


@router.get("/prices", response_model=list[PriceOut])
def list_prices(rt: RuntimeDep, actor: ActorDep) -> list[PriceOut]:
    return [PriceOut.of(p) for p in rt.perform(prices.current_prices)]


@router.put("/prices", response_model=PriceOut)
def set_price(body: PriceIn | CpuPriceIn, rt: RuntimeDep, actor: ActorDep) -> PriceOut:
    """Set the price of a GPU model (per GPU-hour) or a CPU model (per core-hour, and optionally per GiB-hour) on a
    plan; long_term per GPU-month or core-month. Applies to new leases only."""
    model = (
        {"cpu_model_name": body.cpu_model, "gib_rate": body.gib_rate, "gpu_model_name": None}
        if isinstance(body, CpuPriceIn)
        else {"gpu_model_name": body.gpu_model}
    )
    listing = rt.perform(
        prices.set_price,
        actor=actor,
        **model,
        plan=body.plan,
        rate=body.rate,
        currency=body.currency,
        cancel_free_hours=body.cancel_free_hours,
        cancel_fee_fraction=body.cancel_fee_fraction,
        preemption_notice_s=body.preemption_notice_s,
    )
    return PriceOut.of(listing)


@router.get("/telemetry", response_model=TelemetryOut)
def telemetry_status(actor: ActorDep) -> TelemetryOut:
    """Whether GPU telemetry (NVML) is available on this host, and if not, why."""
    s = telemetry.status()
    return TelemetryOut(nvml_available=s.nvml_available, reason=s.reason, note=s.note)


@router.get("/calendar", response_model=CalendarOut)
def capacity_calendar(
    rt: RuntimeDep,
    actor: ActorDep,
    gpu_model: FilterQuery | None = None,
    start: AwareDatetime | None = None,
    end: AwareDatetime | None = None,
    days: Annotated[int, Query(json_schema_extra={"minimum": 1, "maximum": limits.CALENDAR_DAYS_MAX})] = 7,
) -> CalendarOut:
    """Who holds which GPU when: every node with its bookings overlapping [start, end) (default: `days` ahead)."""
    with rt.work() as w:
        cal = inventory.calendar(w, actor=actor, gpu_model_name=gpu_model, start=start, end=end, days=days)
        return CalendarOut.of(cal)
