"""Routes that make one trip to the thread pool per request, not two.

FastAPI runs a plain (blocking) endpoint in the thread pool, and then, for a plain endpoint only, goes back to
the thread pool a second time to validate what it returned against the response model. Under load every trip is
a hand-over between threads fighting for the GIL (measured: the event loop's `Condition.notify` as the largest
single line of the server's profile). Here a plain endpoint is wrapped in a coroutine that runs it in the thread
pool: FastAPI sees a coroutine, so the answer is validated where it is serialised already, on the event loop.
Validating a model instance is an isinstance check; an endpoint's blocking work stays off the loop.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool


def in_thread_pool(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """`endpoint` as a coroutine that runs it in the thread pool (its signature kept for FastAPI)."""

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
