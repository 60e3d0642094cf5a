"""Screening customers and what follows from it: the screening record, the review queue item, re-screening
everyone after a list load (a customer newly hit goes to review and its leases are held).

The red-flag rules come from the Runtime's settings (GPULEASE_REDFLAG_*), never from the process environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sqlalchemy import select

from gpulease import audit
from gpulease.compliance.decisions import evidence_of, fingerprint, with_cleared_owners
from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.redflags import RedFlagRules
from gpulease.compliance.screening import CustomerScreening, screen_customer
from gpulease.domain.customers import ComplianceStatus, after_rescreening
from gpulease.services.holds import hold_leases
from gpulease.services.kyc import Declarations, declarations, others, profile_of
from gpulease.services.reviews import cleared_parties, standing_approval
from gpulease.services.work import Work
from gpulease.settings import Settings
from gpulease.store.models import Alert, Customer, ReviewItem, Screening


def red_flag_rules(settings: Settings) -> RedFlagRules:
    """The red-flag rules with the knobs an operator set (GPULEASE_REDFLAG_*)."""
    defaults = RedFlagRules()
    return replace(
        defaults,
        recent_incorporation_days=settings.redflag_recent_incorporation_days,
        large_request_gpus=settings.redflag_large_request_gpus,
        countries_of_concern=frozenset(settings.redflag_countries_of_concern or defaults.countries_of_concern),
        enabled=defaults.enabled - set(settings.redflag_disabled),
        transshipment_terms=tuple(settings.redflag_transshipment_terms or defaults.transshipment_terms),
    )


def screen_and_record(
    work: Work,
    index: ScreeningIndex,
    c: Customer,
    *,
    trigger: str,
    list_version_id: int | None,
    declared: Declarations | None = None,
    cleared: dict[str, str] | None = None,
) -> CustomerScreening:
    """Screen one customer and keep the result; `declared` (from `declarations`) and `cleared` (from
    `reviews.cleared_parties`) save re-reading them for everyone."""
    session, now = work.session, work.now
    known = others(declared if declared is not None else declarations(session), c.id)
    result = screen_customer(profile_of(c), index, known, red_flag_rules(work.settings), today=now.date())
    # A listed owner cleared under a running licence is cleared wherever it appears in an ownership chain.
    result = with_cleared_owners(result, cleared if cleared is not None else cleared_parties(work))
    session.add(
        Screening(
            customer_id=c.id,
            at=now,
            list_version_id=list_version_id,
            status=result.status,
            trigger=trigger,
            result=result.to_dict(),
        )
    )
    audit.append(
        session,
        at=now,
        actor="screening",
        action="customer.screened",
        subject=f"customer:{c.id}",
        data={
            "status": result.status,
            "trigger": trigger,
            "reasons": list(result.reasons),
            "list_version": result.list_version,
        },
    )
    return result


def queue_review(work: Work, c: Customer, result: CustomerScreening, *, kind: str) -> None:
    work.session.add(
        ReviewItem(
            kind=kind,
            customer_id=c.id,
            status="open",
            created_at=work.now,
            summary=f"{c.legal_name}: screening says {result.status}",
            details={"screening": result.to_dict()},
        )
    )


def after_screening(work: Work, c: Customer, screening: CustomerScreening, *, trigger: str) -> int | None:
    """A re-screening that came back worse: the customer goes to review (or denied), its leases are held, a
    review item and an operator alert are made. Returns how many leases were held; None if nothing changed."""
    session, now = work.session, work.now
    before = ComplianceStatus(c.compliance_status)
    moved = after_rescreening(before, ComplianceStatus(screening.status))
    if moved is None:
        return None
    standing = standing_approval(work, c.id) if before is ComplianceStatus.CLEARED else None
    if standing is not None and standing.fingerprint == fingerprint(evidence_of(screening.to_dict())):
        # Decided already on exactly this evidence: the decision stands (a licence's expiry re-opens it).
        audit.append(
            session,
            at=now,
            actor="screening",
            action="customer.decision_stands",
            subject=f"customer:{c.id}",
            data={"trigger": trigger, "decision": standing.id, "evidence_fingerprint": standing.fingerprint},
        )
        return None
    c.compliance_status = moved.value
    held = hold_leases(work, c, detail=f"re-screening after {trigger}: {screening.status}")
    queue_review(work, c, screening, kind="rescreen")
    session.add(
        Alert(
            at=now,
            kind="customer_newly_hit",
            data={"customer_id": c.id, "leases_held": held},
            message=f"{c.legal_name} (customer {c.id}) is newly hit after {trigger}; "
            f"{held} lease(s) suspended pending review",
        )
    )
    audit.append(
        session,
        at=now,
        actor="screening",
        action="customer.newly_hit",
        subject=f"customer:{c.id}",
        data={"from": before.value, "screening": screening.status, "leases_held": held},
    )
    return held


def rescreen_customer(work: Work, c: Customer, *, trigger: str, list_version_id: int | None) -> int | None:
    """Screen one customer again (its declarations changed): as a list load does for everyone."""
    screening = screen_and_record(work, work.index(), c, trigger=trigger, list_version_id=list_version_id)
    return after_screening(work, c, screening, trigger=trigger)


@dataclass
class Rescreened:
    rescreened: int = 0
    newly_hit: list[int] = field(default_factory=list)
    suspended_leases: int = 0


def rescreen_all(
    work: Work,
    index: ScreeningIndex,
    *,
    trigger: str,
    list_version_id: int | None,
    progress: Callable[[int, int | None], None] | None = None,
) -> Rescreened:
    """Screen everyone again; a customer newly hit goes to review and its leases are held."""
    session = work.session
    out = Rescreened()
    everyone = list(session.scalars(select(Customer).order_by(Customer.id)))
    declared = declarations(session)  # read once: re-screening n customers stays O(n) queries, not O(n²)
    cleared = cleared_parties(work)
    for i, c in enumerate(everyone, 1):
        screening = screen_and_record(
            work, index, c, trigger=trigger, list_version_id=list_version_id, declared=declared, cleared=cleared
        )
        out.rescreened += 1
        held = after_screening(work, c, screening, trigger=trigger)
        if held is not None:
            out.newly_hit.append(c.id)
            out.suspended_leases += held
        if progress is not None:
            progress(i, len(everyone))
    return out
