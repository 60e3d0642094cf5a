"""The HTTP edge, as plain ASGI middleware (cheap per request, and they see every response, 500s included).

Outermost first: request id + access log + request metrics, security headers, per-key rate limits, the body
size limit, idempotency keys, and the last resort that turns an unhandled exception into a problem+json 500 (so
it is logged, counted, carries the request id, and the connection stays usable).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prometheus_client import Counter, Histogram

from gpulease.api.routing import run_short
from gpulease.observability import request_id
from gpulease.services import idempotency as idem
from gpulease.services.errors import store_unavailable

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROBLEM = "application/problem+json"
TYPE_BASE = "https://gpulease.dev/problems/"
access = logging.getLogger("gpulease.access")
log = logging.getLogger("gpulease.api")


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return str(v.decode("latin-1"))
    return None


async def send_problem(
    send: Send, status: int, type_: str, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> None:
    body: dict[str, Any] = {"type": TYPE_BASE + type_, "title": title, "status": status, "detail": detail}
    rid = request_id.get()
    if rid:
        body["request_id"] = rid
    body.update(extra)
    raw = json.dumps(body).encode()
    hdrs = [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(raw)).encode())]
    hdrs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})


# --------------------------------------------------------------------------------------------- request id, log, metrics


class RequestContext:
    """A request id on every request and response, one access-log line, and the request counters; and the last
    net under the edge itself: an error in a middleware below (outside `UnhandledErrors`) is a problem+json 500
    too, logged and counted."""

    def __init__(self, app: ASGIApp, *, requests: Counter, latency: Histogram, errors: Counter) -> None:
        self.app, self.requests, self.latency, self.errors = app, requests, latency, errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = (_header(scope, b"x-request-id") or uuid.uuid4().hex[:16])[:64]
        rid = "".join(c for c in rid if c.isalnum() or c in "-_.") or uuid.uuid4().hex[:16]
        token = request_id.set(rid)
        t0 = time.perf_counter()
        status = 500

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            self.errors.labels(type(exc).__name__).inc()
            log.exception("unhandled error at the edge in %s %s", scope["method"], scope["path"])
            if started:
                raise
            await send_problem(
                send_with_id,
                500,
                "internal-error",
                "Internal server error",
                "Something went wrong on our side; it has been logged. Quote the request id when you report it.",
            )
        finally:
            elapsed = time.perf_counter() - t0
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.requests.labels(scope["method"], path, str(status)).inc()
            self.latency.labels(scope["method"], path).observe(elapsed)
            ms = round(elapsed * 1000, 1)
            access.info(
                "%s %s %s %.1fms",
                scope["method"],
                scope["path"],
                status,
                ms,
                extra={"status": status, "duration_ms": ms},
            )
            request_id.reset(token)


# --------------------------------------------------------------------------------------------- errors


class UnhandledErrors:
    """Any exception a handler did not turn into an answer becomes a logged, counted problem+json 500; a database
    that cannot be reached (lost or refused connections: a restart, a failover) a 503 with Retry-After."""

    def __init__(self, app: ASGIApp, *, errors: Counter) -> None:
        self.app, self.errors = app, errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except idem.KeyTaken:
            raise  # not an error: the idempotency middleware (outside) answers it as a duplicate
        except Exception as exc:
            self.errors.labels(type(exc).__name__).inc()
            if store_unavailable(exc):  # not a bug: the database is down or failing over; the client may retry
                log.error("the store is unavailable in %s %s: %s", scope["method"], scope["path"], exc)
                if not started:
                    await send_problem(
                        send,
                        503,
                        "store-unavailable",
                        "Service unavailable",
                        "The database cannot be reached just now. Please retry shortly: with the same "
                        "Idempotency-Key a change is made at most once.",
                        headers={"Retry-After": "1"},
                    )
                return
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if not started:
                await send_problem(
                    send,
                    500,
                    "internal-error",
                    "Internal server error",
                    "Something went wrong on our side; it has been logged. Quote the request id when you report it.",
                )


# --------------------------------------------------------------------------------------------- security headers

DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
# Swagger UI and ReDoc start with an inline script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


class SecurityHeaders:
    """CSP, no framing, no sniffing, no referrer; HSTS over HTTPS; no caching of API answers and pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        csp = DOCS_CSP if path in ("/docs", "/redoc") or path.startswith("/docs/") else DASHBOARD_CSP
        extra = [
            (b"content-security-policy", csp.encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        if scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        if not path.startswith(("/static/", "/docs/static/")):
            extra.append((b"cache-control", b"no-store"))

        async def add(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *[h for h in extra if h[0] not in present]]
            await send(message)

        await self.app(scope, receive, add)


# --------------------------------------------------------------------------------------------- rate limits


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimit:
    """A token bucket per credential (API key, dashboard session, else client address): 429 + Retry-After.

    Per server process: with N processes behind a balancer a client gets up to N times the rate.
    """

    def __init__(self, app: ASGIApp, *, rate: float, burst: int, limited: Counter) -> None:
        self.app, self.rate, self.burst, self.limited = app, rate, burst, limited
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _who(self, scope: Scope) -> str:
        auth = _header(scope, b"authorization")
        if auth:
            return "k:" + hashlib.sha256(auth.encode()).hexdigest()[:32]
        cookie = _header(scope, b"cookie")
        if cookie and "gpulease_session=" in cookie:
            return "s:" + hashlib.sha256(cookie.encode()).hexdigest()[:32]
        client = scope.get("client")
        return "a:" + (client[0] if client else "?")

    def take(self, who: str, now: float) -> float:
        """0 if a request may go now, else the seconds until it may."""
        with self._lock:
            b = self._buckets.get(who)
            if b is None:
                if len(self._buckets) > 100_000:  # forget idle callers rather than grow without bound
                    self._buckets.clear()
                b = self._buckets[who] = _Bucket(float(self.burst), now)
            b.tokens = min(float(self.burst), b.tokens + (now - b.at) * self.rate)
            b.at = now
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return 0.0
            return (1.0 - b.tokens) / self.rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or self.rate <= 0 or path == "/healthz" or path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        wait = self.take(self._who(scope), time.monotonic())
        if wait > 0:
            self.limited.inc()
            retry = max(1, math.ceil(wait))
            await send_problem(
                send,
                429,
                "rate-limited",
                "Too many requests",
                f"This key sends requests faster than {self.rate:g} per second; retry after {retry} s.",
                headers={"Retry-After": str(retry)},
            )
            return
        await self.app(scope, receive, send)


# --------------------------------------------------------------------------------------------- body size

TOO_LARGE_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Too large · gpulease</title>"
    "<h1>Too large</h1><p>What this form sent is larger than the server accepts ({limit}). "
    "Go back and send less.</p></html>"
)


class BodyLimit:
    """A request body larger than `max_bytes` is refused with 413 before it is read into memory.

    A declared Content-Length is checked at once; a chunked body is read up to the limit and handed on. The
    API answers with problem+json, the dashboard with a page.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None:
            if length.strip().isascii() and length.strip().isdigit() and int(length) <= self.max_bytes:
                await self.app(scope, receive, send)
            else:
                await self._refuse(scope, send)
            return
        if _header(scope, b"transfer-encoding") is None:
            await self.app(scope, receive, send)  # no body
            return
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, send)
                return
            parts.append(chunk)
            if not message.get("more_body"):
                break
        await self.app(scope, _replay_body(b"".join(parts), receive), send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        limit = f"{self.max_bytes / (1 << 20):g} MiB" if self.max_bytes >= 1 << 20 else f"{self.max_bytes} bytes"
        if scope["path"].startswith("/api/"):
            await send_problem(send, 413, "too-large", "Request too large", f"The request body is larger than {limit}.")
            return
        raw = TOO_LARGE_PAGE.format(limit=limit).encode()
        headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(raw)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": raw})


# --------------------------------------------------------------------------------------------- idempotency

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Where a recovered retry finds the resource its first run created.
RESOURCE_PATHS = {"leases": "/api/v1/leases/{id}", "customers": "/api/v1/customers/{id}", "nodes": "/api/v1/nodes"}
MAX_STORED_BODY = 1 << 20
SHOWN_ONCE = b"x-gpulease-shown-once"  # a route names the field of its answer that holds a secret shown once


class Idempotency:
    """`Idempotency-Key` on mutating API requests, with Stripe's semantics.

    The first response is stored and replayed for 24 h (marked `Idempotent-Replayed: true`); the same key with
    a different request answers 422; a concurrent duplicate waits for the first to finish, then gets its
    response (or 409 if it takes too long). A request that fails before changing anything (5xx, 429) keeps no
    record, so its retry runs afresh.

    A key not in the store (a read tells) costs no transaction of its own before its request runs: the change
    the request commits inserts the key's row in its own transaction, or, when it changed nothing, the row is
    inserted with its answer before the answer goes. A request that finds its key inserted by another meanwhile
    (its change rolled back: `KeyTaken`) answers as that one's duplicate; so its answer is held back until then.
    A key found in the store is claimed before its request runs, as a retry's is.
    """

    def __init__(self, app: ASGIApp, *, runtime: Any, wait_s: float) -> None:
        self.app, self.rt, self.wait_s = app, runtime, wait_s
        self.stale_after = timedelta(seconds=60)

    async def _perform(self, action: Callable[..., Any], **kwargs: Any) -> Any:
        return await run_short(self.rt, self.rt.perform, action, **kwargs)  # a key's short units (api/routing.py)

    def _known(self, principal: str, key: str) -> bool:
        with self.rt.store.reading() as s:
            return idem.known(s, principal=principal, key=key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] not in MUTATING or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= 255 or not key.isprintable() or not key.isascii():
            await send_problem(
                send, 422, "invalid-request", "Invalid request", "Idempotency-Key must be 1-255 printable ASCII"
            )
            return
        auth = _header(scope, b"authorization")
        if not auth:
            await self.app(scope, receive, send)  # the app answers 401; nothing to remember
            return
        body = await _read_body(receive)
        fp = idem.fingerprint(
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            body,
            _header(scope, b"content-type") or "",
        )
        principal = hashlib.sha256(auth.encode()).hexdigest()
        # The path is kept for reading only (the fingerprint covers it whole): at most its column's width.
        path = scope["path"][:500]
        claim_args = {"principal": principal, "key": key, "method": scope["method"], "path": path, "fp": fp}
        if not await run_short(self.rt, self._known, principal, key):
            row = {"principal": principal, "key": key, "method": scope["method"], "path": path, "fingerprint": fp}
            row.update(created_at=self.rt.clock(), owner=idem.OWNER)
            if await self._first(scope, body, receive, send, row):
                return
        await self._claimed(scope, body, receive, send, claim_args, auth)

    async def _first(self, scope: Scope, body: bytes, receive: Receive, send: Send, row: dict[str, Any]) -> bool:
        """Run a request whose key is not in the store; False, having sent nothing, when another request took the
        key while it ran (its change, if any, rolled back): it is then that one's duplicate."""
        active = idem.ActiveClaim(None, new_row=row)
        token = idem.current_claim.set(active)
        answer = _Answer()
        try:
            await self.app(scope, _replay_body(body, receive), answer.capture)
        except idem.KeyTaken:
            return False
        except Exception:
            if active.bound and active.row_id is not None:  # what committed stays on record, as in `_run`
                await self._complete(active.row_id, answer)
            raise
        finally:
            idem.current_claim.reset(token)
        if active.bound and active.row_id is not None:
            await answer.send(send)
            await self._complete(active.row_id, answer)
            return True
        stored = answer.stored()
        if answer.status >= 500 or answer.status == 429 or len(stored) > MAX_STORED_BODY:
            await answer.send(send)  # nothing changed and nothing kept: a retry runs afresh
            return True
        if not await self._perform(idem.keep, row=row, status=answer.status, content_type=answer.ctype, body=stored):
            return False
        await answer.send(send)
        return True

    async def _claimed(
        self, scope: Scope, body: bytes, receive: Receive, send: Send, claim_args: dict[str, Any], auth: str
    ) -> None:
        """A request whose key is in the store, or was taken by another while it ran: claimed before it runs."""
        claim = await self._perform(idem.claim, stale_after=self.stale_after, **claim_args)
        deadline = time.monotonic() + self.wait_s
        while claim.outcome is idem.Outcome.IN_PROGRESS and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            seen = await self._perform(idem.peek, row_id=claim.row_id)
            if seen is None:  # the first request failed early and let the key go: run this one
                claim = await self._perform(idem.claim, stale_after=self.stale_after, **claim_args)
            elif seen.outcome is idem.Outcome.REPLAY:
                claim = seen
        if claim.outcome is idem.Outcome.IN_PROGRESS:
            await send_problem(
                send,
                409,
                "idempotency-in-progress",
                "Request in progress",
                "A request with this Idempotency-Key is still being processed; retry in a moment.",
                headers={"Retry-After": "1"},
            )
        elif claim.outcome is idem.Outcome.MISMATCH:
            await send_problem(
                send,
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "This Idempotency-Key was already used with a different request; use a new key for a new request.",
            )
        elif claim.outcome is idem.Outcome.REPLAY:
            await _send_stored(send, claim.status or 200, claim.content_type or "application/json", claim.body or "")
        elif claim.outcome is idem.Outcome.RECOVER:
            await self._recover(scope, send, claim, auth)
        else:
            await self._run(scope, body, receive, send, claim)

    async def _run(self, scope: Scope, body: bytes, receive: Receive, send: Send, claim: idem.Claim) -> None:
        active = idem.ActiveClaim(claim.row_id)
        token = idem.current_claim.set(active)
        answer = _Answer(send)
        try:
            await self.app(scope, _replay_body(body, receive), answer.capture)
        finally:
            idem.current_claim.reset(token)
            if (answer.status >= 500 or answer.status == 429) and not active.bound:
                await self._perform(idem.release, row_id=claim.row_id)
            else:
                await self._complete(claim.row_id, answer)

    async def _complete(self, row_id: int, answer: _Answer) -> None:
        """Keep a claimed key's answer for its replays, unless it is too big to keep."""
        stored = answer.stored()
        if len(stored) <= MAX_STORED_BODY:
            await self._perform(
                idem.complete, row_id=row_id, status=answer.status, content_type=answer.ctype, body=stored
            )

    async def _recover(self, scope: Scope, send: Send, claim: idem.Claim, auth: str) -> None:
        """The first run committed but died before answering: answer with what it created."""
        for table, ident in claim.created:
            template = RESOURCE_PATHS.get(table)
            if template is None or "{id}" not in template:
                continue
            status, ctype, body = await _internal_get(self.app, scope, template.format(id=ident), auth)
            if status == 200:
                # A POST to the collection created it: REST's 201, as the first answer would have been.
                created_here = scope["method"] == "POST" and scope["path"].rstrip("/").endswith("/" + table)
                status = 201 if created_here else 200
                await self._perform(
                    idem.complete, row_id=claim.row_id, status=status, content_type=ctype, body=body.decode()
                )
                await _send_stored(send, status, ctype, body.decode())
                return
        what = ", ".join(f"{t} {i}" for t, i in claim.created) or "its change"
        await send_problem(
            send,
            409,
            "idempotency-response-lost",
            "Carried out; response lost",
            f"The request with this Idempotency-Key was carried out ({what}) but the server stopped before "
            "answering; look the result up instead of sending the request again.",
        )


class _Answer:
    """A response as the app sends it: passed on as it comes (`through`), or held back until `send`; kept for
    replays without a secret shown once (its header names the field, and is not sent)."""

    def __init__(self, through: Send | None = None) -> None:
        self.through = through
        self.status, self.ctype, self.secret_field = 500, "application/json", None
        self.messages: list[Message] = []
        self.chunks: list[bytes] = []

    async def capture(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            for k, v in message.get("headers", []):
                if k.lower() == b"content-type":
                    self.ctype = v.decode("latin-1")
                elif k.lower() == SHOWN_ONCE:
                    self.secret_field = v.decode("latin-1")
            message["headers"] = [(k, v) for k, v in message.get("headers", []) if k.lower() != SHOWN_ONCE]
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
        if self.through is not None:
            await self.through(message)
        else:
            self.messages.append(message)

    async def send(self, send: Send) -> None:
        for message in self.messages:
            await send(message)

    def stored(self) -> str:
        return _without_secret(b"".join(self.chunks), self.secret_field).decode("utf-8", "replace")


def _without_secret(body: bytes, field: str | None) -> bytes:
    """The answer as kept for replays: a secret shown once (a new API key) is not kept, its field is null."""
    if field is None:
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict) and field in data:
        data[field] = None
    return json.dumps(data).encode()


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(parts)


def _replay_body(body: bytes, then: Receive | None = None) -> Receive:
    """A `receive` that hands the already-read body on, then the client's own messages (its disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if then is not None:
            return await then()
        await asyncio.Event().wait()  # an internal request: no client that could go away
        return {"type": "http.disconnect"}

    return receive


async def _send_stored(send: Send, status: int, content_type: str, body: str) -> None:
    raw = body.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(raw)).encode()),
                (b"idempotent-replayed", b"true"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


async def _internal_get(app: ASGIApp, scope: Scope, path: str, auth: str) -> tuple[int, str, bytes]:
    sub: Scope = {
        **{k: v for k, v in scope.items() if k not in ("route", "endpoint", "path_params")},
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"authorization", auth.encode())],
    }
    status, ctype, chunks = 500, "application/json", []

    async def capture(message: Message) -> None:
        nonlocal status, ctype
        if message["type"] == "http.response.start":
            status = message["status"]
            for k, v in message.get("headers", []):
                if k.lower() == b"content-type":
                    ctype = v.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(sub, _replay_body(b""), capture)
    return status, ctype, b"".join(chunks)
