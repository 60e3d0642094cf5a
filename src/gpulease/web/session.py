"""Who is signed in to the dashboard: the API key in an HttpOnly, SameSite=Strict cookie, and its CSRF token."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from gpulease.runtime import Runtime
from gpulease.services.context import Actor

COOKIE = "gpulease_key"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


class LoginRequired(Exception):
    """No valid key in the cookie: the page sends the browser to /login."""


class CsrfRejected(Exception):
    """A POST without the token of the signed-in key."""


def csrf_token(key: str) -> str:
    # Keyed by the API key itself: only a page served to the holder of the cookie can know it,
    # and it stays valid across server restarts and workers without any server-side state.
    return hmac.new(key.encode(), b"gpulease-dashboard-csrf", hashlib.sha256).hexdigest()


def signed_in(request: Request) -> tuple[Actor, str]:
    """The actor behind the cookie and its key, or LoginRequired."""
    key = request.cookies.get(COOKIE)
    if not key:
        raise LoginRequired
    rt: Runtime = request.app.state.runtime
    actor = rt.authenticate(key)
    if actor is None:
        raise LoginRequired
    return actor, key


async def check_csrf(request: Request, key: str) -> None:
    """A state-changing request must carry the token (form field or htmx header) of the signed-in key."""
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, csrf_token(key)):
        raise CsrfRejected


def safe_next(target: str | None) -> str:
    """Only ever redirect to a path on this site after login."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"
