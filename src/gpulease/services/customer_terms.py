"""What a booking reads of its customer: whether it is cleared, what its red flags and compute projection need, and
its limits. Read as one row of plain values on the driver's cursor (store/prepared.py), not as the whole mapped
`Customer` (nineteen columns, three JSON): loading the object cost a booking ~250 Python calls more than reading
these seven columns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select

from gpulease.services.work import Work
from gpulease.store.models import Customer
from gpulease.store.prepared import Prepared


@dataclass(frozen=True)
class CustomerTerms:
    id: int
    legal_name: str
    compliance_status: str
    incorporated_on: date | None
    cumulative_flop: float
    monthly_spend_limit: Decimal | None
    gpu_quota: Mapping[str, Any]


_TERMS = Prepared(
    select(
        Customer.id,
        Customer.legal_name,
        Customer.compliance_status,
        Customer.incorporated_on,
        Customer.cumulative_flop,
        Customer.monthly_spend_limit,
        Customer.gpu_quota,
    ).where(Customer.id == bindparam("id")),
    autoflush=True,  # a change of this transaction's own (an operator's limits) is read as it stands
)


def customer_terms(work: Work, customer_id: int) -> CustomerTerms | None:
    rows = _TERMS.rows(work.session, {"id": customer_id})
    if not rows:
        return None
    cid, name, status, incorporated, flop, limit, quota = rows[0]
    return CustomerTerms(cid, name, status, incorporated, float(flop or 0.0), limit, dict(quota or {}))
