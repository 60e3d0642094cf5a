"""The FastAPI application: routers under /api/v1, problem+json errors, metrics, the dashboard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline

from gpulease import __version__, heap
from gpulease.api import access, metrics, problems
from gpulease.api.deps import bearer
from gpulease.api.middleware import (
    BodyLimit,
    Idempotency,
    RateLimit,
    RequestContext,
    SecurityHeaders,
    UnhandledErrors,
)
from gpulease.api.routers import billing, compliance, customers, inventory, keys, leases, runs, spend, webhooks
from gpulease.observability import configure_logging
from gpulease.runtime import Runtime
from gpulease.settings import get_settings
from gpulease.web import site

API = "/api/v1"


DOCS_ASSETS = "/docs/static"


def worker_app() -> FastAPI:
    """The app of one worker process of `gpulease serve --workers N` (uvicorn imports and calls it in each)."""
    settings = get_settings()
    configure_logging(settings.log_json)
    return create_app(Runtime(settings))


# The order the API's documentation lists its routers in.
DOCS_ORDER = (inventory, customers, leases, billing, spend, compliance, runs, keys, webhooks)


def _document_in_order(app: FastAPI, paths: list[str]) -> None:
    """The OpenAPI document lists `paths` in this order (others after, as they come), whatever order the routes
    are matched in."""
    build = app.openapi
    rank = {path: i for i, path in enumerate(dict.fromkeys(paths))}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema["paths"] = dict(sorted(schema["paths"].items(), key=lambda item: rank.get(item[0], len(rank))))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_keys(app: FastAPI) -> None:
    """`security` on each operation that needs a key, from the access table the routes are checked against (not
    from a security dependency, which FastAPI would solve on every request). Installed before the problems'
    step, which documents 401 and 403 where an operation has `security`."""
    build = app.openapi
    name = bearer.scheme_name  # as FastAPI names a security dependency's scheme

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            keyed = [
                operation
                for path, operations in schema["paths"].items()
                for method, operation in operations.items()
                if access.needs_key(method, path)
            ]
            for operation in keyed:
                operation["security"] = [{name: []}]
            if keyed:
                scheme = bearer.model.model_dump(mode="json", by_alias=True, exclude_none=True)
                schema.setdefault("components", {}).setdefault("securitySchemes", {})[name] = scheme
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(runtime: Runtime | None = None, *, background: bool = True) -> FastAPI:
    rt = runtime or Runtime(get_settings())  # the app factory is an entry point: it reads the environment

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = rt.settings.request_threads
        if background:
            rt.start()
        heap.freeze()  # what start-up built lives as long as the process
        try:
            yield
        finally:
            if background:
                rt.close()

    app = FastAPIOffline(  # /docs and /redoc with Swagger UI and ReDoc from the package, not from a CDN
        static_url=DOCS_ASSETS,
        title="gpulease",
        version=__version__,
        lifespan=lifespan,
        description="Rent out GPU compute, with US export-control compliance built into the gate. "
        "Authenticate with `Authorization: Bearer KEY`.",
    )
    app.state.runtime = rt
    _document_keys(app)
    problems.install(app)
    # Matched in this order, leases first: a request is matched against every route before its own, ~12 calls
    # each (booking and ending through inventory's and customers' 17 routes cost ~750 calls per booking + end).
    # The documentation keeps the order it was written in (DOCS_ORDER).
    for module in (leases, inventory, customers, billing, spend, compliance, runs, keys, webhooks):
        app.include_router(module.router, prefix=API, dependencies=[Depends(access.check)])
    _document_in_order(app, [API + r.path for m in DOCS_ORDER for r in m.router.routes if isinstance(r, APIRoute)])
    http = metrics.HttpMetrics()
    metrics.install(app, rt, http)
    # Added innermost first: errors become answers before idempotency stores them, and every answer, 429s
    # and 500s included, is logged, counted and carries the request id.
    st = rt.settings
    app.add_middleware(UnhandledErrors, errors=http.errors)
    app.add_middleware(Idempotency, runtime=rt, wait_s=st.idempotency_wait_s)
    app.add_middleware(BodyLimit, max_bytes=st.max_body_bytes)
    app.add_middleware(RateLimit, rate=st.rate_limit_per_s, burst=st.rate_limit_burst, limited=http.limited)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestContext, requests=http.requests, latency=http.latency, errors=http.errors)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Alive, and which process this is and whether it runs the lease clock (`leader` or `follower`)."""
        return {
            "status": "ok",
            "version": __version__,
            "process": rt.leadership.name,
            "clock": "leader" if rt.is_clock_leader else "follower",
        }

    site.install(app)
    return app
