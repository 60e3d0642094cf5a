"""Customers and their KYC; the screening behind their compliance status."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gpulease.api.deps import ActorDep, IdPath, RuntimeDep
from gpulease.api.routing import OneTripRoute
from gpulease.api.schemas import (
    ComplianceFileOut,
    CustomerIn,
    CustomerOut,
    CustomerPatch,
    CustomerScreeningOut,
    ScreeningStatusOut,
)
from gpulease.services import compliance_file, customers
from gpulease.services.customers import ScreeningRecord

router = APIRouter(tags=["customers"], route_class=OneTripRoute)


@router.post("/customers", status_code=201, response_model=CustomerOut)
def create_customer(body: CustomerIn, rt: RuntimeDep, actor: ActorDep, response: Response) -> CustomerOut:
    """Register a customer with its KYC. It is screened at once: cleared, review or denied."""
    with rt.work() as w:
        created = CustomerOut.of(customers.create_customer(w, actor=actor, kyc=body.kyc()), actor)
    response.headers["Location"] = f"/api/v1/customers/{created.id}"
    return created


@router.get("/customers", response_model=list[CustomerOut])
def list_customers(rt: RuntimeDep, actor: ActorDep) -> list[CustomerOut]:
    with rt.work() as w:
        return [CustomerOut.of(c, actor) for c in customers.list_customers(w, actor=actor)]


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def get_customer(customer_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> CustomerOut:
    with rt.work() as w:
        return CustomerOut.of(customers.get_customer(w, actor=actor, customer_id=customer_id), actor)


@router.patch("/customers/{customer_id}", response_model=CustomerOut)
def update_customer(customer_id: IdPath, body: CustomerPatch, rt: RuntimeDep, actor: ActorDep) -> CustomerOut:
    """Change contacts, address or declarations (customers: their own). Any change but contacts screens the
    customer again at once; worse news puts it in review and its leases on hold."""
    with rt.work() as w:
        return CustomerOut.of(
            customers.update_customer(w, actor=actor, customer_id=customer_id, change=body.change()), actor
        )


@router.get("/customers/{customer_id}/screening", response_model=CustomerScreeningOut | ScreeningStatusOut)
def customer_screening(
    customer_id: IdPath, rt: RuntimeDep, actor: ActorDep
) -> CustomerScreeningOut | ScreeningStatusOut:
    """The latest screening: decision, reasons, name hits, the ownership path to listed parties, red flags.

    Customers see their own status only; the evidence is for operators and compliance officers.
    """
    sc = rt.perform(customers.latest_screening, actor=actor, customer_id=customer_id)
    if isinstance(sc, ScreeningRecord):
        return CustomerScreeningOut.of_record(sc)
    return ScreeningStatusOut.of(sc)


@router.get("/customers/{customer_id}/compliance-file", response_model=ComplianceFileOut)
def customer_compliance_file(customer_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> ComplianceFileOut:
    """Compliance role: the customer's compliance file as one JSON export (KYC, every screening with its list
    version, decisions with licences and approvers, red flags, ownership, threshold reports, audit entries)."""
    return ComplianceFileOut(**rt.perform(compliance_file.compliance_file, customer_id=customer_id, actor=actor))
