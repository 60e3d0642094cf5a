"""The dashboard's runs: start a command on a lease's GPUs from its page, and a run's page whose log follows the
run live (htmx polls the log from the last offset read and appends what is new, until the run has finished).

Starting a run is the executor's one use case (`Executor.submit`: the RUN_WORK permission, tenancy, the
lease's state), as for the API and `gpulease run`; the form only splits the command line as a shell would."""

from __future__ import annotations

import shlex

from fastapi import APIRouter, Depends, Form
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from gpulease.services import limits
from gpulease.services.errors import Forbidden, InvalidRequest, NotFound, ServiceError
from gpulease.services.execution import FINISHED
from gpulease.web.pages import Visit, posted, see_other, visit
from gpulease.web.views import lease_page

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

LOG_CHUNK_MAX = 256 * 1024  # bytes a page shows per poll (the rest comes with the next polls)


def command_line(text: str) -> list[str]:
    """A command line typed in the form, split as a POSIX shell would (quotes, backslashes), not run by one."""
    try:
        argv = shlex.split(text)
    except ValueError as e:
        raise InvalidRequest(f"the command cannot be read: {e} (close the quote)") from None
    if not argv:
        raise InvalidRequest("give the command to run, e.g. nvidia-smi or python train.py")
    return argv


@router.post("/leases/{lease_id}/runs")
def start_run(lease_id: int, v: Visit = Depends(posted), command: str = Form("")) -> Response:
    try:
        argv = command_line(limits.text(command, what="the command", max_len=limits.ARG_MAX) or "")
        run = v.rt.executor.submit(v.actor, lease_id=lease_id, command=argv, env={})
    except ServiceError as e:
        if isinstance(e, NotFound | Forbidden):
            raise  # the error page: there is no form of theirs to show it on
        return lease_page(v, lease_id, run_error=e.detail, run_command=command, status=e.status)
    return see_other(f"/leases/{lease_id}/runs/{run.id}")


@router.get("/leases/{lease_id}/runs/{run_id}")
def run_page(lease_id: int, run_id: str, v: Visit = Depends(visit)) -> Response:
    run = v.rt.executor.get(v.actor, lease_id=lease_id, run_id=run_id)
    return v.page("run.html", nav="leases", run=run, lease_id=lease_id, finished=run.state in FINISHED)


def _complete_utf8(data: bytes) -> int:
    """How many leading bytes of `data` are whole UTF-8 characters (a read may stop inside one)."""
    for cut in range(len(data), max(len(data) - 4, -1), -1):
        try:
            data[:cut].decode()
        except UnicodeDecodeError as e:
            if e.reason == "unexpected end of data":
                continue
            return len(data)  # not UTF-8 at all: shown with replacement characters
        return cut
    return len(data)


@router.get("/leases/{lease_id}/runs/{run_id}/log")
async def run_log(lease_id: int, run_id: str, v: Visit = Depends(visit), offset: int = 0) -> Response:
    """What the run wrote from `offset`, and (until it has finished) the element that asks for the rest."""
    limits.whole(offset, what="offset", low=0, high=limits.LOG_OFFSET_MAX)
    data, end, finished = await run_in_threadpool(
        v.rt.executor.read_logs, v.actor, lease_id=lease_id, run_id=run_id, offset=offset
    )
    data = data[:LOG_CHUNK_MAX]
    shown = len(data) if finished and offset + len(data) >= end else _complete_utf8(data)
    more = offset + shown < end
    run = None
    if finished and not more:
        run = await run_in_threadpool(v.rt.executor.get, v.actor, lease_id=lease_id, run_id=run_id)
    return v.page(
        "_run_log.html",
        text=data[:shown].decode(errors="replace"),
        next_offset=offset + shown,
        done=run is not None,
        run=run,
        lease_id=lease_id,
        run_id=run_id,
    )
