"""Nodes, GPU models, prices and the capacity calendar."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from gpulease.api.deps import ActorDep, IdPath, RuntimeDep
from gpulease.api.schemas import GpuModelOut, NodeIn, NodeOut, NodeStateIn, PriceIn, PriceOut
from gpulease.domain.inventory import CATALOGUE, NodeState
from gpulease.services import inventory, prices, telemetry
from gpulease.services.context import Role

router = APIRouter(tags=["inventory"])


@router.get("/gpu-models", response_model=list[GpuModelOut])
def list_gpu_models() -> list[GpuModelOut]:
    return [
        GpuModelOut(
            name=m.name, memory_gb=m.memory_gb, bf16_dense_tflops=m.bf16_dense_tflops, interconnect=m.interconnect
        )
        for m in CATALOGUE.values()
    ]


@router.post("/nodes", status_code=201, response_model=NodeOut)
def add_node(body: NodeIn, rt: RuntimeDep, actor: ActorDep) -> NodeOut:
    with rt.store.transaction() as s:
        node = inventory.add_node(
            s,
            actor,
            site=body.site,
            cluster=body.cluster,
            name=body.name,
            gpu_model_name=body.gpu_model,
            gpu_count=body.gpu_count,
            now=rt.clock(),
            backend=body.backend,
        )
        return NodeOut.of(node)


@router.get("/nodes", response_model=list[NodeOut])
def list_nodes(rt: RuntimeDep, actor: ActorDep, gpu_model: str | None = None) -> list[NodeOut]:
    actor.require(Role.OPERATOR, Role.COMPLIANCE)
    with rt.store.transaction() as s:
        return [NodeOut.of(n) for n in inventory.list_nodes(s, gpu_model)]


@router.get("/nodes/{node_id}", response_model=NodeOut)
def get_node(node_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> NodeOut:
    actor.require(Role.OPERATOR, Role.COMPLIANCE)
    with rt.store.transaction() as s:
        return NodeOut.of(inventory.get_node(s, node_id))


@router.post("/nodes/{node_id}/drain", response_model=NodeOut)
def drain_node(node_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> NodeOut:
    """Take no new leases on this node; leases already on it run to their end."""
    with rt.store.transaction() as s:
        return NodeOut.of(inventory.set_node_state(s, actor, node_id, NodeState.DRAINING, rt.clock()))


@router.put("/nodes/{node_id}/state", response_model=NodeOut)
def set_node_state(node_id: IdPath, body: NodeStateIn, rt: RuntimeDep, actor: ActorDep) -> NodeOut:
    with rt.store.transaction() as s:
        return NodeOut.of(inventory.set_node_state(s, actor, node_id, NodeState(body.state), rt.clock()))


@router.delete("/nodes/{node_id}", status_code=204)
def remove_node(node_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> None:
    with rt.store.transaction() as s:
        inventory.remove_node(s, actor, node_id, rt.clock())


@router.get("/prices", response_model=list[PriceOut])
def list_prices(rt: RuntimeDep, actor: ActorDep) -> list[PriceOut]:
    with rt.store.transaction() as s:
        return [_price_out(r) for r in prices.current_prices(s)]


@router.put("/prices", response_model=PriceOut)
def set_price(body: PriceIn, rt: RuntimeDep, actor: ActorDep) -> PriceOut:
    """Set the price of a GPU model on a plan. Applies to new leases only."""
    with rt.store.transaction() as s:
        row = prices.set_price(
            s,
            actor,
            gpu_model_name=body.gpu_model,
            plan=body.plan,
            rate=body.rate,
            currency=body.currency,
            now=rt.clock(),
            cancel_free_hours=body.cancel_free_hours,
            cancel_fee_fraction=body.cancel_fee_fraction,
            preemption_notice_s=body.preemption_notice_s,
        )
        return _price_out(row)


def _price_out(r: Any) -> PriceOut:
    return PriceOut(
        gpu_model=r.gpu_model,
        plan=r.plan,
        rate=f"{r.rate.normalize():f}",
        unit="gpu_month" if r.plan == "long_term" else "gpu_hour",
        currency=r.currency,
        cancel_free_hours=r.cancel_free_hours,
        cancel_fee_fraction=f"{r.cancel_fee_fraction.normalize():f}",
        preemption_notice_s=r.preemption_notice_s,
        effective_from=r.effective_from,
    )


@router.get("/telemetry")
def telemetry_status(actor: ActorDep) -> dict[str, object]:
    """Whether GPU telemetry (NVML) is available on this host, and if not, why."""
    return telemetry.status()


@router.get("/calendar")
def capacity_calendar(
    rt: RuntimeDep,
    actor: ActorDep,
    gpu_model: str | None = None,
    start: AwareDatetime | None = None,
    end: AwareDatetime | None = None,
    days: int = Query(default=7, ge=1, le=366),
) -> dict[str, Any]:
    """Who holds which GPU when: every node with its bookings overlapping [start, end)."""
    actor.require(Role.OPERATOR, Role.COMPLIANCE)
    now = rt.clock()
    t0: datetime = start or now
    t1: datetime = end or t0 + timedelta(days=days)
    with rt.store.transaction() as s:
        nodes = inventory.list_nodes(s, gpu_model)
        by_node: dict[int, list[dict[str, Any]]] = {}
        for b in inventory.calendar_bookings(s, nodes, t0, t1):
            by_node.setdefault(b.node_id, []).append(
                {
                    "gpu": b.gpu,
                    "lease_id": b.lease_id,
                    "customer_id": b.customer_id,
                    "plan": b.plan,
                    "state": b.state,
                    "start": b.start,
                    "end": b.end,
                }
            )
        return {
            "start": t0,
            "end": t1,
            "nodes": [
                {
                    **NodeOut.of(n).model_dump(),
                    "bookings": sorted(by_node.get(n.id, []), key=lambda b: (b["gpu"], b["start"])),
                }
                for n in nodes
            ],
        }
