"""Request dependencies: the runtime and the authenticated actor. Authorisation (which role may do what) is
the use cases' own business (services/permissions.py); the edge only says who is asking."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gpulease.runtime import Runtime
from gpulease.services.context import Actor

MAX_ID = 2**31 - 1  # ids are 32-bit integers in both stores
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]

bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer gl_…`")


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]


def actor(rt: RuntimeDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Actor:
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(
            401, "an API key is required: send 'Authorization: Bearer KEY'", headers={"WWW-Authenticate": "Bearer"}
        )
    a = rt.authenticate(creds.credentials)
    if a is None:
        raise HTTPException(
            401, "this API key is not valid (unknown or revoked)", headers={"WWW-Authenticate": "Bearer"}
        )
    return a


ActorDep = Annotated[Actor, Depends(actor)]

__all__ = ["ActorDep", "IdPath", "RuntimeDep"]
