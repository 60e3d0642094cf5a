"""Compliance checks a booking makes on the request itself (issue 10, items 5 and 6).

- `new_company_large_request`: a company incorporated recently asking for many GPUs, counted on the actual
  request plus the GPUs it already holds or waits for (not only what it declared at onboarding).
- Compute thresholds ahead of time: the lease's projected operations (GPUs × peak dense BF16 FLOP/s × window;
  an open-ended lease is assumed to run `compute_projection_open_ended_days`) added to the customer's cumulative
  compute, compared with `compute_thresholds`. `compute_threshold_action` = block: review before it starts;
  allow: booked, and the report goes to the review queue.

A booking that needs a review is kept as a lease in `pending_compliance` with no GPUs and a review item of kind
`booking`; an approval puts it in the waiting queue (it starts when capacity allows), a denial rejects it.
The customer is told only that the booking is being reviewed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select

from gpulease.compliance.compute import ComputeProjection, cpu_flops_per_core, project
from gpulease.compliance.redflags import RedFlag, new_company_large_request, young_company
from gpulease.domain.inventory import gpu_model
from gpulease.domain.leases import HOLDS_CAPACITY, LeaseState
from gpulease.services.customer_screening import red_flag_rules
from gpulease.services.customer_terms import CustomerTerms
from gpulease.services.work import Work
from gpulease.store.models import Lease, ReviewItem
from gpulease.store.prepared import Prepared

PENDING_MESSAGE = "This booking is being reviewed. Please contact support."
COUNTED = tuple(s.value for s in (*HOLDS_CAPACITY, LeaseState.QUEUED, LeaseState.PENDING_COMPLIANCE))


@dataclass(frozen=True)
class BookingFindings:
    red_flags: list[RedFlag] = field(default_factory=list)
    compute: ComputeProjection | None = None  # set when a threshold would be crossed
    block: bool = False  # the booking waits for a review

    def to_dict(self) -> dict[str, Any]:
        return {
            "red_flags": [f.to_dict() for f in self.red_flags],
            "compute": None if self.compute is None else self.compute.to_dict(),
        }


# Built once, not per booking: building a statement cost as much CPU as running it (see docs/benchmarks.md).
_HELD = Prepared(
    select(func.coalesce(func.sum(Lease.gpu_count), 0)).where(
        Lease.customer_id == bindparam("customer_id"), Lease.state.in_(COUNTED)
    ),
    autoflush=True,
)


def held_gpus(work: Work, customer_id: int) -> int:
    """GPUs the customer holds, has booked or waits for."""
    return int(_HELD.scalar(work.session, {"customer_id": customer_id}) or 0)


def check_booking(
    work: Work,
    c: CustomerTerms,
    *,
    model: str,
    gpu_count: int,
    start: datetime,
    end: datetime | None,
    cpu: bool = False,
) -> BookingFindings:
    """The red flags of a booking and its projected compute. A CPU lease (`cpu`: `model` a CPU model, `gpu_count`
    its cores) asks for no GPUs, and its compute is cores x the model's per-core peak."""
    settings = work.settings
    rules, today = red_flag_rules(settings), work.now.date()
    # What the customer holds matters only to a young company: an established one is not read for it.
    held = held_gpus(work, c.id) if young_company(c.incorporated_on, rules, today) else 0
    flags = new_company_large_request(c.incorporated_on, 0 if cpu else gpu_count, rules, today, held=held)
    seconds = (
        int((end - start).total_seconds()) if end is not None else settings.compute_projection_open_ended_days * 86400
    )
    p = project(
        model,
        gpu_count,
        cpu_flops_per_core(model) if cpu else gpu_model(model).bf16_flops_per_second,
        seconds,
        c.cumulative_flop,
        settings.compute_thresholds,
    )
    compute = p if p.crossed else None
    block = bool(flags) or (compute is not None and settings.compute_threshold_action == "block")
    return BookingFindings(flags, compute, block)


def report(work: Work, c: CustomerTerms, lease: Lease, findings: BookingFindings) -> ReviewItem:
    """The review item of a booking: what was asked and what the checks found, with the arithmetic."""
    what = [f.rule for f in findings.red_flags]
    if findings.compute is not None:
        what.append("compute threshold " + ", ".join(f"{t:.0e}" for t in findings.compute.crossed))
    kind = "booking" if findings.block else "compute_projection"
    item = ReviewItem(
        kind=kind,
        customer_id=c.id,
        status="open",
        created_at=work.now,
        summary=f"{c.legal_name}: lease {lease.id} ({_asked(lease)}) — {'; '.join(what)}",
        details={
            "lease_id": lease.id,
            "blocks_booking": findings.block,
            "request": {
                "gpu_model": lease.gpu_model,
                "gpu_count": lease.gpu_count,
                **(
                    {"cpu_model": lease.cpu_model, "cpu_cores": lease.cpu_cores, "memory_gib": lease.memory_gib}
                    if lease.resource == "cpu"
                    else {}
                ),
                "plan": lease.plan,
                "start": lease.starts_at.isoformat(),
                "end": None if lease.ends_at is None else lease.ends_at.isoformat(),
            },
            **findings.to_dict(),
        },
    )
    work.session.add(item)
    return item


def _asked(lease: Lease) -> str:
    if lease.resource == "cpu":
        return f"{lease.cpu_cores} {lease.cpu_model} cores"
    return f"{lease.gpu_count} × {lease.gpu_model}"
