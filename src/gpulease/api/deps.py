"""Request dependencies: the runtime and the authenticated actor. Authorisation (which role may do what) is
the use cases' own business (services/permissions.py); the edge only says who is asking."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from gpulease.runtime import Runtime
from gpulease.services.context import Actor
from gpulease.services.limits import FILTER_MAX, LINE, MAX_ID, PERIOD

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]  # ids are 32-bit integers in both stores
IdQuery = Annotated[int, Query(ge=1, le=MAX_ID)]
# Query filters: bounds stated in the OpenAPI document, checked by the use case (like the schemas' `doc`).
FilterQuery = Annotated[str, Query(json_schema_extra={"maxLength": FILTER_MAX, "pattern": LINE})]
PeriodQuery = Annotated[str, Query(json_schema_extra={"pattern": PERIOD}, description="a month, YYYY-MM")]

# The scheme the OpenAPI document names for every route that needs a key (api/app.py documents it from the access
# table). Not a dependency: FastAPI solves each dependency of each request (a sub-dependency, a cache key), ~4% of
# a booking's calls for what is one header read.
bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer gl_…`")

# The dependencies are coroutines: a plain function would be run in the thread pool, a round trip between
# threads per dependency per request, for work that never blocks (a key looked up in the store does go there).


async def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]


def credentials(request: Request) -> HTTPAuthorizationCredentials | None:
    """The `Authorization` header as scheme and token (None when absent or without a token), as HTTPBearer reads
    it."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=token) if scheme and token else None


async def actor(request: Request) -> Actor:
    """The caller, from its key: found once per request (the route's permission check, api/access.py, finds it
    first and every later use reads it from the request)."""
    known = getattr(request.state, "actor", None)
    if isinstance(known, Actor):
        return known
    rt: Runtime = request.app.state.runtime
    creds = credentials(request)
    if creds is not None and creds.scheme.lower() == "bearer":
        cached = rt.known_key(creds.credentials)
        if cached is not None:
            request.state.actor = cached
            return cached
    return await run_in_threadpool(authenticate, request, rt, creds)


def authenticate(request: Request, rt: Runtime, creds: HTTPAuthorizationCredentials | None) -> Actor:
    """The caller, from its key (which may be looked up in the store: call it off the event loop)."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(
            401, "an API key is required: send 'Authorization: Bearer KEY'", headers={"WWW-Authenticate": "Bearer"}
        )
    a = rt.authenticate(creds.credentials)
    if a is None:
        raise HTTPException(
            401, "this API key is not valid (unknown or revoked)", headers={"WWW-Authenticate": "Bearer"}
        )
    request.state.actor = a
    return a


ActorDep = Annotated[Actor, Depends(actor)]

__all__ = ["ActorDep", "FilterQuery", "IdPath", "IdQuery", "PeriodQuery", "RuntimeDep"]
