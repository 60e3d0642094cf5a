"""Request dependencies: the store session, the authenticated actor, the clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from gpulease.runtime import Runtime
from gpulease.services import keys
from gpulease.services.context import Actor, Role

MAX_ID = 2**31 - 1  # ids are 32-bit integers in both stores
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]

bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer gl_…`")


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]


def session(rt: RuntimeDep) -> Iterator[Session]:  # read-only views; writes use rt.store.transaction()
    with rt.store.transaction() as s:
        yield s


SessionDep = Annotated[Session, Depends(session)]


def now(rt: RuntimeDep) -> datetime:
    return rt.clock()


NowDep = Annotated[datetime, Depends(now)]


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


def require(*roles: Role):  # type: ignore[no-untyped-def]
    def dep(a: ActorDep) -> Actor:
        a.require(*roles)
        return a

    return Depends(dep)


__all__ = ["ActorDep", "NowDep", "RuntimeDep", "SessionDep", "keys", "require"]
