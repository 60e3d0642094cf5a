"""What every dashboard page shares: the templates and their filters, and the signed-in visit.

A page handler parses its form, calls one use case in one unit of work (`v.rt.work()`), and renders what it
returns; refusals come from the use case, so the dashboard says what the API and the CLI say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from gpulease.domain.customers import shown_status
from gpulease.domain.pricing import canonical
from gpulease.runtime import Runtime
from gpulease.services import limits, reports
from gpulease.services.context import Actor, Role
from gpulease.services.errors import InvalidRequest
from gpulease.services.permissions import Permission, allowed
from gpulease.web import gantt
from gpulease.web.session import CSRF_FIELD, CSRF_HEADER, check_csrf, csrf_token, signed_in

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


# --------------------------------------------------------------------------------------------- formatting


def _dt(t: datetime | None, missing: str = "—") -> str:
    if t is None:
        return missing
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _money(v: Decimal | str | None, currency: str = "") -> str:
    if v is None:
        return "—"
    d = Decimal(v).quantize(Decimal("0.01"))
    return f"{d:,.2f} {currency}".strip()


def _hours(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds / 3600:,.2f} h"


def _num(x: float | Decimal) -> str:
    """60.0 -> "60", 33.333 -> "33.3": percentages as people write them."""
    return f"{round(float(x), 1):g}"


def local_input(t: datetime | None) -> str:
    """A time as <input type=datetime-local> shows it (UTC)."""
    return "" if t is None else t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def _rate(v: Decimal) -> str:
    """A rate with at least its cents, "2.50", and any finer digits, "0.0042" (as the API writes it)."""
    return f"{canonical(Decimal(v)):f}"


def _duration(seconds: int | None, missing: str = "—") -> str:
    if seconds is None:
        return missing
    d, rest = divmod(int(seconds), 86400)
    h, rest = divmod(rest, 3600)
    return (f"{d} d " if d else "") + f"{h} h {rest // 60:02d} min"


ENDED_STATES = frozenset({"ended", "preempted", "failed"})


def _lease_end(lease: Any) -> str:
    """A lease's end as a person wants it: when it really ended once it has, else the booked end (or open-ended;
    a lease cancelled before its start shows "cancelled")."""
    if lease.state in ENDED_STATES and lease.ended_at is not None:
        return _dt(lease.ended_at)
    if lease.ends_at is None:
        return "cancelled" if lease.state in ("cancelled", "rejected") else "open-ended"
    return _dt(lease.ends_at)


templates.env.filters.update(
    lease_end=_lease_end,
    dt=_dt,
    money=_money,
    hours=_hours,
    num=_num,
    local_input=local_input,
    rate=_rate,
    duration=_duration,
)
templates.env.globals.update(
    plan_colours=gantt.PLAN_COLOURS, plan_labels=gantt.PLAN_LABELS, csrf_field=CSRF_FIELD, csrf_header=CSRF_HEADER
)


def parse_time(value: str, what: str) -> datetime | None:
    """A form's date-time (from <input type=datetime-local>, read as UTC) or None when left empty; refused when
    out of the range any time may have (services/limits.py)."""
    value = value.strip()
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{what} must be a date and time such as 2026-11-02T09:00 (UTC)") from None
    return limits.moment(t.replace(tzinfo=UTC) if t.tzinfo is None else t, what=what)


def whole(value: str, what: str) -> int:
    """A form field that must be a whole number (not negative; its range is the use case's to check)."""
    value = value.strip()
    if not (value.isascii() and value.isdigit()):
        raise InvalidRequest(f"{what} must be a whole number, got {value[:40]!r}" if value else f"give {what}")
    return int(value)


def optional_id(value: str) -> int | None:
    """An id chosen in a form or a page's query (a customer): None when not given, refused when not a number."""
    value = value.strip()
    return None if not value else limits.parse_int(value, what="the id")


# --------------------------------------------------------------------------------------------- the visit


@dataclass
class Visit:
    """One signed-in request: the runtime, who is asking, and how to answer with a page."""

    request: Request
    rt: Runtime
    actor: Actor
    key: str
    masthead: reports.Masthead

    @property
    def staff(self) -> bool:
        """Whether this is an operator's or compliance officer's dashboard (which pages it leads to)."""
        return self.actor.role is not Role.CUSTOMER

    @property
    def htmx(self) -> bool:
        return self.request.headers.get("HX-Request") == "true"

    def may(self, permission: Permission) -> bool:
        """Whether to offer an action: the same table the use cases check."""
        return allowed(self.actor, permission)

    def page(self, template: str, /, status_code: int = 200, **ctx: Any) -> HTMLResponse:
        return templates.TemplateResponse(self.request, template, {**self.context(), **ctx}, status_code=status_code)

    def context(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "role": str(self.actor.role),
            "csrf": csrf_token(self.key),
            "customer_name": self.masthead.customer_name,
            "open_alerts": self.masthead.open_alerts,
            "now": self.rt.clock(),
            "path": self.request.url.path,
            # a customer sees its own account in review or denied as "on hold", never why (no tipping off)
            "standing": lambda status: shown_status(status, to_customer=self.actor.role is Role.CUSTOMER).value,
        }


def signed_in_visit(request: Request) -> Visit:
    actor, key = signed_in(request)
    rt: Runtime = request.app.state.runtime
    return Visit(request, rt, actor, key, rt.perform(reports.masthead, actor=actor))


def visit(request: Request) -> Visit:
    return signed_in_visit(request)


async def posted(request: Request) -> Visit:
    """A signed-in POST: the SameSite cookie plus the per-session token, or it is refused."""
    v = await run_in_threadpool(signed_in_visit, request)
    await check_csrf(request, v.key)
    return v


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
