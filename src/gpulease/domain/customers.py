"""A customer's compliance status and how a new screening moves it."""

from __future__ import annotations

import enum


class ComplianceStatus(enum.StrEnum):
    CLEARED = "cleared"  # may rent capacity
    REVIEW = "review"  # a compliance officer must decide; no new leases meanwhile
    DENIED = "denied"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {ComplianceStatus.CLEARED: 0, ComplianceStatus.REVIEW: 1, ComplianceStatus.DENIED: 2}


def after_rescreening(current: ComplianceStatus, screening: ComplianceStatus) -> ComplianceStatus | None:
    """The status a customer moves to when a re-screening comes back worse; None when it changes nothing.

    A cleared customer newly hit goes to review (a person decides, even on a denying hit); one already in
    review becomes denied on a denying hit.
    """
    worse = screening.rank > current.rank or (
        screening is not ComplianceStatus.CLEARED and current is ComplianceStatus.CLEARED
    )
    if not worse:
        return None
    if current is ComplianceStatus.CLEARED:
        return ComplianceStatus.REVIEW
    if screening is ComplianceStatus.DENIED:
        return ComplianceStatus.DENIED
    return current


class ShownStatus(enum.StrEnum):
    """A compliance status as the viewer may see it: a customer on hold learns only that (no tipping off)."""

    CLEARED = "cleared"
    REVIEW = "review"
    DENIED = "denied"
    ON_HOLD = "on_hold"


def shown_status(status: str, *, to_customer: bool) -> ShownStatus:
    """`on_hold` for a customer looking at its own account in review or denied; the status itself for staff."""
    if to_customer and status != ComplianceStatus.CLEARED.value:
        return ShownStatus.ON_HOLD
    return ShownStatus(status)
