"""Runs: work on an active lease's GPUs, its state, and its logs (streamed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from pydantic.json_schema import WithJsonSchema

from gpulease.api.deps import ActorDep, IdPath, RuntimeDep
from gpulease.api.routing import OneTripRoute
from gpulease.api.schemas import doc
from gpulease.services import limits
from gpulease.services.records import Run

router = APIRouter(tags=["runs"], route_class=OneTripRoute)


# Spelled out: pydantic would give the names' pattern as patternProperties, which lets other names through.
ENV_SCHEMA = {
    "type": "object",
    "maxProperties": limits.ENV_VARS_MAX,
    "propertyNames": {"pattern": limits.ENV_NAME, "maxLength": limits.ENV_NAME_MAX},
    "additionalProperties": {"type": "string", "pattern": limits.NO_NUL, "maxLength": limits.ARG_MAX},
}


class RunIn(BaseModel):
    """Handed to the operating system as given: any character but NUL (a command line may hold newlines)."""

    command: Annotated[
        list[Annotated[str, doc(pattern=limits.ARG, maxLength=limits.ARG_MAX)]],
        doc(minItems=1, maxItems=limits.COMMAND_ARGS_MAX),
    ] = Field(examples=[["python", "train.py", "--epochs", "3"]])
    env: Annotated[dict[str, str], WithJsonSchema(ENV_SCHEMA)] = Field(default_factory=dict)
    cwd: Annotated[str, doc(pattern=limits.NO_NUL, maxLength=limits.CWD_MAX)] | None = None
    image: Annotated[str, doc(pattern=limits.LINE, maxLength=limits.IMAGE_MAX)] | None = Field(
        default=None, description="container image, for backends that run images"
    )


RunId = Annotated[str, Path(json_schema_extra={"pattern": limits.RUN_ID_PATTERN}, description="16 hex digits")]


class RunOut(BaseModel):
    id: str
    lease_id: int
    command: list[str]
    backend: str
    state: str
    exit_code: int | None
    message: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None

    @classmethod
    def of(cls, r: Run) -> RunOut:
        return cls(
            id=r.id,
            lease_id=r.lease_id,
            command=list(r.command),
            backend=r.backend,
            state=r.state,
            exit_code=r.exit_code,
            message=r.message,
            created_at=r.created_at,
            started_at=r.started_at,
            ended_at=r.ended_at,
        )


@router.post("/leases/{lease_id}/runs", status_code=201, response_model=RunOut)
def submit_run(lease_id: IdPath, body: RunIn, rt: RuntimeDep, actor: ActorDep, response: Response) -> RunOut:
    """Start a command on exactly the lease's GPUs; it is stopped when the lease ends."""
    run = rt.executor.submit(
        actor, lease_id=lease_id, command=body.command, env=body.env, cwd=body.cwd, image=body.image
    )
    response.headers["Location"] = f"/api/v1/leases/{lease_id}/runs/{run.id}"
    return RunOut.of(run)


@router.get("/leases/{lease_id}/runs", response_model=list[RunOut])
def list_runs(lease_id: IdPath, rt: RuntimeDep, actor: ActorDep) -> list[RunOut]:
    return [RunOut.of(r) for r in rt.executor.runs_of(actor, lease_id=lease_id)]


@router.get("/leases/{lease_id}/runs/{run_id}", response_model=RunOut)
def get_run(lease_id: IdPath, run_id: RunId, rt: RuntimeDep, actor: ActorDep) -> RunOut:
    return RunOut.of(rt.executor.get(actor, lease_id=lease_id, run_id=run_id))


@router.get(
    "/leases/{lease_id}/runs/{run_id}/logs", response_class=Response, responses={200: {"content": {"text/plain": {}}}}
)
async def run_logs(
    lease_id: IdPath,
    run_id: RunId,
    rt: RuntimeDep,
    actor: ActorDep,
    offset: int = Query(default=0, ge=0, le=limits.LOG_OFFSET_MAX),
    follow: bool = Query(default=True, description="keep streaming until the run ends"),
) -> Response:
    """The run's stdout and stderr from `offset`; with follow, streamed until the run finishes."""
    data, new_offset, finished = await run_in_threadpool(
        rt.executor.read_logs, actor, lease_id=lease_id, run_id=run_id, offset=offset
    )
    if not follow or finished:
        return Response(data, media_type="text/plain", headers={"X-Log-Offset": str(new_offset)})

    async def stream() -> AsyncIterator[bytes]:
        pos, chunk, done = new_offset, data, False
        while True:
            if chunk:
                yield chunk
            if done:
                return
            await asyncio.sleep(0.5)
            chunk, pos, done = await run_in_threadpool(
                rt.executor.read_logs, actor, lease_id=lease_id, run_id=run_id, offset=pos
            )

    return StreamingResponse(stream(), media_type="text/plain")
