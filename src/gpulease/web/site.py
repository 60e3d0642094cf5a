"""Mounting the dashboard on the app: its pages, /static, and HTML error pages outside the API's paths."""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from gpulease.domain.leases import IllegalTransition
from gpulease.services.errors import ServiceError
from gpulease.web import account, operations, runs, views
from gpulease.web.pages import HERE, see_other, signed_in_visit, templates
from gpulease.web.session import CsrfRejected, LoginRequired

API_PATHS = ("/api/", "/metrics", "/healthz", "/docs", "/redoc", "/openapi.json")

TITLES = {
    400: "Bad request",
    401: "Sign in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "Conflict",
    422: "Check the form",
}


def _is_page(request: Request) -> bool:
    return not request.url.path.startswith(API_PATHS)


def error_page(request: Request, status: int, detail: str, title: str | None = None) -> HTMLResponse:
    ctx: dict[str, Any] = {
        "status": status,
        "title": title or TITLES.get(status, "Something went wrong"),
        "detail": detail,
    }
    with contextlib.suppress(LoginRequired):
        ctx.update(signed_in_visit(request).context())
    if request.headers.get("HX-Request") == "true":
        return templates.TemplateResponse(request, "_error.html", ctx, status_code=status)
    return templates.TemplateResponse(request, "error.html", ctx, status_code=status)


def _to_login(request: Request) -> Response:
    path = request.url.path
    target = "/login" if path in ("/", "/login") else "/login?next=" + quote(path, safe="/")
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": target})
    return see_other(target)


def install(app: FastAPI) -> None:
    """Mount the dashboard on the app: pages, /static, and HTML error pages outside the API's paths."""
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(views.router)
    app.include_router(operations.router)
    app.include_router(account.router)
    app.include_router(runs.router)
    api_handlers = dict(app.exception_handlers)

    async def login_required(request: Request, exc: Exception) -> Response:
        return _to_login(request)

    async def csrf_rejected(request: Request, exc: Exception) -> Response:
        return await run_in_threadpool(
            error_page,
            request,
            403,
            "This form was not sent from a page of this dashboard (its security token "
            "is missing or out of date). Reload the page and try again.",
            "Form refused",
        )

    def fallback(exc_type: Any, detail_of: Any, status_of: Any) -> Any:
        api = api_handlers.get(exc_type)

        async def handler(request: Request, exc: Exception) -> Response:
            if _is_page(request) or api is None:
                return await run_in_threadpool(error_page, request, status_of(exc), detail_of(exc))
            result: Response = await api(request, exc)
            return result

        return handler

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(CsrfRejected, csrf_rejected)
    app.add_exception_handler(ServiceError, fallback(ServiceError, lambda e: e.detail, lambda e: e.status))
    app.add_exception_handler(IllegalTransition, fallback(IllegalTransition, str, lambda e: 409))
    app.add_exception_handler(
        StarletteHTTPException,
        fallback(
            StarletteHTTPException,
            lambda e: "There is no such page." if e.status_code == 404 else str(e.detail),
            lambda e: e.status_code,
        ),
    )
    app.add_exception_handler(
        RequestValidationError,
        fallback(RequestValidationError, _invalid_detail, lambda e: 404 if _only_in_path(e) else 422),
    )


def _only_in_path(e: RequestValidationError) -> bool:
    """A page address whose id is not a number names no page (/leases/abc): not found, as for a missing id."""
    return bool(e.errors()) and all(tuple(x.get("loc", ()))[:1] == ("path",) for x in e.errors())


def _invalid_detail(e: RequestValidationError) -> str:
    if _only_in_path(e):
        return "There is no such page."
    return "; ".join(str(x.get("msg", "invalid")) for x in e.errors())
