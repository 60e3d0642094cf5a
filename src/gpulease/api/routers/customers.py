"""Customers and their KYC; the screening behind their compliance status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gpulease.api.deps import ActorDep, IdPath, RuntimeDep
from gpulease.api.schemas import CustomerIn, CustomerOut
from gpulease.services import customers

router = APIRouter(tags=["customers"])


@router.post("/customers", status_code=201, response_model=CustomerOut)
def create_customer(body: CustomerIn, rt: RuntimeDep, actor: ActorDep) -> CustomerOut:
    """Register a customer with its KYC. It is screened at once: cleared, review or denied."""
    index = rt.screening.index()
    with rt.store.transaction() as s:
        c = customers.create_customer(s, actor, index, body.model_dump(), rt.clock())
        return CustomerOut.of(c)


@router.get("/customers", response_model=list[CustomerOut])
def list_customers(rt: RuntimeDep, actor: ActorDep) -> list[CustomerOut]:
    with rt.store.transaction() as s:
        return [CustomerOut.of(c) for c in customers.list_customers(s, actor)]


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def get_customer(customer_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> CustomerOut:
    with rt.store.transaction() as s:
        return CustomerOut.of(customers.get_customer(s, actor, customer_id))


@router.get("/customers/{customer_id}/screening")
def customer_screening(customer_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> dict[str, Any]:
    """The latest screening: decision, reasons, name hits, the ownership path to listed parties, red flags.

    Customers see their own status only; the evidence is for operators and compliance officers.
    """
    with rt.store.transaction() as s:
        sc = customers.latest_screening(s, actor, customer_id)
        c = customers.get_customer(s, actor, customer_id)
        if actor.role == "customer":
            return {"customer_id": customer_id, "compliance_status": c.compliance_status, "at": sc.at}
        return {
            "customer_id": customer_id,
            "compliance_status": c.compliance_status,
            "at": sc.at,
            "trigger": sc.trigger,
            "decision": sc.status,
            **sc.result,
        }
