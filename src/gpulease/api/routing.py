"""Routes that make one trip to the thread pool per request, not two.

FastAPI runs a plain (blocking) endpoint in the thread pool, and then, for a plain endpoint only, goes back to
the thread pool a second time to validate what it returned against the response model. Under load every trip is
a hand-over between threads fighting for the GIL (measured: the event loop's `Condition.notify` as the largest
single line of the server's profile). Here a plain endpoint is wrapped in a coroutine that runs it in the thread
pool: FastAPI sees a coroutine, so the answer is validated where it is serialised already, on the event loop.
Validating a model instance is an isinstance check; an endpoint's blocking work stays off the loop.

An endpoint marked `short_unit` (a booking, an end: one short unit of work and its answer) makes no trip at all on
SQLite when the store's writer comes to it within `SHORT_WAIT_S`: it runs on the event loop, in the order asked
(`run_short`, `Runtime.on_this_thread`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast
from weakref import WeakKeyDictionary

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from gpulease.runtime import Runtime
    from gpulease.services.work import Effect

T = TypeVar("T")
_SHORT = "__gpulease_short_unit__"


def short_unit(endpoint: Callable[..., T]) -> Callable[..., T]:
    """Mark a plain endpoint that runs one short unit of work (no backend, no long scan) and takes the runtime as
    `rt`: on SQLite it may run on the event loop (`run_short`)."""
    if "rt" not in inspect.signature(endpoint).parameters:
        raise TypeError(f"{endpoint.__name__}: a short unit's endpoint takes the runtime as `rt`")
    setattr(endpoint, _SHORT, True)
    return endpoint


# How long the event loop may wait for SQLite's writer before it hands a short unit to the thread pool instead:
# a few short units ahead of it (4-8 ms each here), not a long one (a list load holds the writer for seconds).
SHORT_WAIT_S = 0.05


@dataclass
class _Short:
    rt: Runtime
    call: Callable[[], Any]
    done: asyncio.Future[tuple[bool, Any, asyncio.Future[None] | None]]
    # Its request's context variables (its idempotency key's claim, its request id): a callback of the loop runs in
    # whichever context scheduled it, here the request first in the queue, not the unit's own.
    context: contextvars.Context


# Per event loop, the short units waiting for their turn, first come first served.
_WAITING: WeakKeyDictionary[asyncio.AbstractEventLoop, deque[_Short]] = WeakKeyDictionary()


def _run_next(loop: asyncio.AbstractEventLoop) -> None:
    """Run the oldest waiting short unit on the loop, then let the loop read its sockets and move other requests
    on before the next (`call_soon` puts it behind everything ready now): units run in the order they were asked
    for, each after the requests that came meanwhile have been read, so a unit waits about its place in the
    queue, not for whatever else the loop's pass over ready sockets holds."""
    waiting = _WAITING[loop]
    short = waiting.popleft()
    if waiting:
        loop.call_soon(_run_next, loop)
    if short.done.cancelled():  # its request is gone (the server stopping): nothing was done yet
        return
    try:
        short.done.set_result(short.context.run(_run, short, loop))
    except BaseException as e:  # its effects failed after the commit: the request answers so, as from a thread
        short.done.set_exception(e)
        if not isinstance(e, Exception):
            raise


def _run(short: _Short, loop: asyncio.AbstractEventLoop) -> tuple[bool, Any, asyncio.Future[None] | None]:
    rt, ran, value = short.rt, False, None
    effects: list[Effect] | None = None
    try:
        with rt.on_this_thread(SHORT_WAIT_S) as effects:  # the writer held to the block's end
            if effects is not None:
                ran, value = True, short.call()
    except Exception as e:  # handed to the request's own task, which raises it
        ran, value = True, e
    if not effects:
        return ran, value, None
    # Carried out even when a later step failed: what committed stays committed.
    if rt.effects_may_block(effects):
        return ran, value, loop.run_in_executor(None, contextvars.copy_context().run, rt.carry_out, effects)
    rt.carry_out(effects)
    return ran, value, None


async def run_short(rt: Runtime, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)`, units of work of `rt` and nothing else that waits. On SQLite it runs on the event loop
    itself, in the order asked, when the writer comes to it within `SHORT_WAIT_S`: no hand-over to a worker
    thread and back, and no other thread taking the interpreter's lock between its statements while it holds
    the writer (`Runtime.on_this_thread`); otherwise, and on PostgreSQL, in the thread pool. Effects that may
    wait (runs to stop, Slurm to tell) are carried out in the thread pool, before the answer goes, as from a
    worker thread."""
    if rt.store.is_postgres:
        return await run_in_threadpool(fn, *args, **kwargs)
    loop = asyncio.get_running_loop()
    waiting = _WAITING.setdefault(loop, deque())
    short = _Short(rt, functools.partial(fn, *args, **kwargs), loop.create_future(), contextvars.copy_context())
    waiting.append(short)
    if len(waiting) == 1:
        loop.call_soon(_run_next, loop)
    ran, value, carried = await short.done
    if carried is not None:
        await carried
    if not ran:
        return await run_in_threadpool(fn, *args, **kwargs)
    if isinstance(value, BaseException):
        raise value
    return cast(T, value)


def in_thread_pool(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """`endpoint` as a coroutine that runs it in the thread pool, or a short unit's by `run_short` (its signature
    kept for FastAPI)."""
    if getattr(endpoint, _SHORT, False):

        @functools.wraps(endpoint)
        async def short(*args: Any, **kwargs: Any) -> Any:
            return await run_short(kwargs["rt"], endpoint, *args, **kwargs)

        return short

    @functools.wraps(endpoint)
    async def call(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return call


def _plain(endpoint: Callable[..., Any]) -> bool:
    return not (
        inspect.iscoroutinefunction(endpoint)
        or inspect.isgeneratorfunction(endpoint)
        or inspect.isasyncgenfunction(endpoint)
    )


class OneTripRoute(APIRoute):
    """An APIRoute whose plain endpoint is run by `in_thread_pool`: one trip to the thread pool per request."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, in_thread_pool(endpoint) if _plain(endpoint) else endpoint, **kwargs)
