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
