"""Who is signed in to the dashboard: a server-side session whose random id is in an HttpOnly, SameSite=Strict
cookie (Secure over HTTPS), and the CSRF token derived from it."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from gpulease.runtime import Runtime
from gpulease.services import sessions
from gpulease.services.context import Actor

COOKIE = "gpulease_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


class LoginRequired(Exception):
    """No valid key in the cookie: the page sends the browser to /login."""


class CsrfRejected(Exception):
    """A POST without the token of the signed-in key."""


def csrf_token(token: str) -> str:
    # Keyed by the session id: only a page served to the holder of the cookie can know it.
    return hmac.new(token.encode(), b"gpulease-dashboard-csrf", hashlib.sha256).hexdigest()


def signed_in(request: Request) -> tuple[Actor, str]:
    """The actor behind the session cookie and the session id, or LoginRequired."""
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 100:
        raise LoginRequired
    rt: Runtime = request.app.state.runtime
    actor = rt.perform(sessions.resolve, token=token)
    if actor is None:
        raise LoginRequired
    return actor, token


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
