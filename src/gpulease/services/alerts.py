"""Operator alerts: a customer newly hit after a list load, a lease the clock could not advance, …"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gpulease import audit
from gpulease.services import limits
from gpulease.services.context import Actor
from gpulease.services.errors import NotFound
from gpulease.services.permissions import Permission, require
from gpulease.services.work import Work
from gpulease.store.models import Alert


def list_alerts(work: Work, *, actor: Actor, unacknowledged_only: bool = False, limit: int = 200) -> list[Alert]:
    require(actor, Permission.VIEW_ALERTS)
    q = select(Alert).order_by(Alert.id.desc()).limit(limit)
    if unacknowledged_only:
        q = q.where(Alert.acknowledged.is_(False))
    return list(work.session.scalars(q))


def acknowledge_alert(work: Work, *, actor: Actor, alert_id: int) -> Alert:
    require(actor, Permission.VIEW_ALERTS)
    alert = work.session.get(Alert, alert_id) if limits.fits_id(alert_id) else None
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    alert.acknowledged = True
    audit.append(
        work.session,
        at=work.now,
        actor=actor.name,
        action="alert.acknowledged",
        subject=f"alert:{alert.id}",
        data={"kind": alert.kind},
    )
    return alert


def count_unacknowledged(session: Session) -> int:
    """How many alerts nobody has acknowledged yet (the dashboard's badge, the metrics gauge)."""
    return int(session.scalar(select(func.count()).select_from(Alert).where(Alert.acknowledged.is_(False))) or 0)
