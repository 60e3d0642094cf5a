"""RFC 7807 problem+json for every error, with a stable type and a sentence a person understands; and the
OpenAPI document saying so: every operation lists the problems it can answer with, as problem+json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gpulease.domain.leases import IllegalTransition
from gpulease.services.errors import ServiceError

PROBLEM = "application/problem+json"
TYPE_BASE = "https://gpulease.dev/problems/"


def problem(
    status: int, type_: str, title: str, detail: str, instance: str | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_BASE + type_, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _field(loc: tuple[Any, ...]) -> str:
    # (a tagged union's tag, "gpu" or "cpu" for a booking, says which model was checked, not where the field is)
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "gpu", "cpu")]
    return ".".join(parts) or "request"


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 7807 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}},
        },
    },
    "additionalProperties": True,  # e.g. earliest_start on no-capacity, leases on a node that still holds some
}
PROBLEM_TITLES = {
    "400": "Bad request",
    "401": "No or an invalid API key",
    "403": "Not allowed for this key's role",
    "404": "Not found (another tenant's objects answer alike)",
    "409": "Conflict with the current state (or a request with this Idempotency-Key still in progress)",
    "413": "Request body too large",
    "422": "Invalid request: what is wrong, in a sentence",
    "429": "Too many requests (see Retry-After)",
}


def _problems_of(path: str, method: str, op: dict[str, Any]) -> set[str]:
    """The problems an operation can answer with."""
    codes = {"429"}
    if op.get("security"):
        codes |= {"401", "403"}
    if op.get("parameters") or "requestBody" in op:
        codes.add("422")
    if "{" in path:
        codes.add("404")
    if method in ("post", "put", "patch", "delete"):
        codes |= {"400", "404", "409", "413", "422"}
    return codes


def document(app: FastAPI) -> None:
    """Every operation's error answers in the OpenAPI document, as problem+json (not FastAPI's default 422)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        ref = {"$ref": "#/components/schemas/Problem"}
        for path, item in schema.get("paths", {}).items():
            for method, op in item.items():
                responses = op.setdefault("responses", {})
                for code in sorted(_problems_of(path, method, op) | {c for c in responses if c.startswith("4")}):
                    description = responses.get(code, {}).get("description") or PROBLEM_TITLES.get(code, "Error")
                    if code == "422":
                        description = PROBLEM_TITLES[code]
                    responses[code] = {"description": description, "content": {PROBLEM: {"schema": ref}}}
        for unused in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    document(app)

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JSONResponse:
        return problem(exc.status, exc.type, exc.title, exc.detail, str(request.url.path), **exc.extra)

    @app.exception_handler(IllegalTransition)
    async def _transition(request: Request, exc: IllegalTransition) -> JSONResponse:
        return problem(409, "illegal-transition", "Not allowed in this state", str(exc), str(request.url.path))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(422, "invalid-request", "Invalid request", detail, str(request.url.path), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {
            400: "Bad request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not found",
            405: "Method not allowed",
        }
        resp = problem(
            exc.status_code,
            titles.get(exc.status_code, "Error").lower().replace(" ", "-"),
            titles.get(exc.status_code, "Error"),
            str(exc.detail),
            str(request.url.path),
        )
        if exc.headers:
            resp.headers.update(exc.headers)
        if exc.status_code == 405:
            resp.headers["Allow"] = _allowed_methods(request)
        return resp


def _allowed_methods(request: Request) -> str:
    """Every method the path takes (Starlette's 405 names only those of the first route that matched the path)."""
    methods: set[str] = set()
    for route in request.app.routes:
        regex, route_methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and route_methods and regex.match(request.url.path):
            methods |= set(route_methods)
    return ", ".join(sorted(methods))
