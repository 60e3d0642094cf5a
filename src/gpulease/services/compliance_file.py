"""A customer's compliance file: what an export-control auditor asks for, in one export.

The KYC record as it stands, every screening with the list version it used, every review with its decisions
(approvers, comments, licences, the evidence fingerprint each saw), the latest red flags and ownership findings,
compute-threshold reports, and the audit entries that concern the customer, its leases and its reviews.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from gpulease.services.context import Actor
from gpulease.services.customers import get_customer
from gpulease.services.permissions import Permission, require
from gpulease.services.work import Work
from gpulease.store.models import AuditRecord, Lease, ListVersion, ReviewDecision, ReviewItem, Screening


def _plain(value: Any) -> Any:
    """JSON-safe: dates as ISO strings, money as strings."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def compliance_file(work: Work, *, actor: Actor, customer_id: int) -> dict[str, Any]:
    """The file of one customer (compliance role)."""
    require(actor, Permission.VIEW_COMPLIANCE_FILE)
    s = work.session
    c = get_customer(work, actor=actor, customer_id=customer_id)
    kyc = {
        "legal_name": c.legal_name,
        "local_name": c.local_name,
        "country": c.country,
        "address": c.address,
        "incorporated_on": c.incorporated_on,
        "email_domain": c.email_domain,
        "website": c.website,
        "parent": c.parent,
        "owners": list(c.owners),
        "officers": list(c.officers or []),
        "end_use": c.end_use,
        "requested_gpus": c.requested_gpus,
        "created_at": c.created_at,
    }
    versions = {v.id: v for v in s.scalars(select(ListVersion))}
    screenings = []
    for sc in s.scalars(select(Screening).where(Screening.customer_id == c.id).order_by(Screening.id)):
        v = versions.get(sc.list_version_id) if sc.list_version_id is not None else None
        screenings.append(
            {
                "id": sc.id,
                "at": sc.at,
                "trigger": sc.trigger,
                "status": sc.status,
                "list_version_id": sc.list_version_id,
                "list_version": sc.result.get("list_version"),
                "list_version_hash": None if v is None else v.content_hash,
                "list_sources": None if v is None else list(v.sources),
                "reasons": sc.result.get("reasons", []),
                "name_hits": sc.result.get("name_hits", []),
                "ownership": sc.result.get("ownership"),
                "red_flags": sc.result.get("red_flags", []),
            }
        )
    items = list(s.scalars(select(ReviewItem).where(ReviewItem.customer_id == c.id).order_by(ReviewItem.id)))
    decisions: dict[int, list[dict[str, Any]]] = {}
    for d in s.scalars(select(ReviewDecision).where(ReviewDecision.customer_id == c.id).order_by(ReviewDecision.id)):
        decisions.setdefault(d.review_id, []).append(
            {
                "at": d.at,
                "by": d.actor,
                "decision": d.decision,
                "comment": d.comment,
                "licence": d.licence,
                "evidence_fingerprint": d.fingerprint,
                "final": d.final,
            }
        )
    reviews = [
        {
            "id": i.id,
            "kind": i.kind,
            "status": i.status,
            "summary": i.summary,
            "created_at": i.created_at,
            "decided_by": i.decided_by,
            "decided_at": i.decided_at,
            "comment": i.comment,
            "decisions": decisions.get(i.id, []),
        }
        for i in items
    ]
    threshold_reports = [
        {"review_id": i.id, "kind": i.kind, "status": i.status, "created_at": i.created_at, **i.details}
        for i in items
        if i.kind in ("compute_threshold", "compute_projection") or i.details.get("compute")
    ]
    lease_ids = list(s.scalars(select(Lease.id).where(Lease.customer_id == c.id)))
    subjects = [f"customer:{c.id}"] + [f"lease:{x}" for x in lease_ids] + [f"review:{i.id}" for i in items]
    audit_rows = s.scalars(select(AuditRecord).where(AuditRecord.subject.in_(subjects)).order_by(AuditRecord.id))
    audit_entries = [
        {"seq": a.seq, "at": a.at, "actor": a.actor, "action": a.action, "subject": a.subject, "data": a.data}
        for a in audit_rows
    ]
    latest = screenings[-1] if screenings else None
    out: dict[str, Any] = _plain(
        {
            "customer_id": c.id,
            "generated_at": work.now,
            "compliance_status": c.compliance_status,
            "kyc": kyc,
            "screenings": screenings,
            "reviews": reviews,
            "red_flags": [] if latest is None else latest["red_flags"],
            "ownership": None if latest is None else latest["ownership"],
            "threshold_reports": threshold_reports,
            "audit": audit_entries,
        }
    )
    return out
