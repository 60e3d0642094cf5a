"""A plain endpoint runs off the event loop in one trip to the thread pool, its answer validated as before."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import fastapi.routing
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.testclient import TestClient

import gpulease.api.routing
from gpulease.api.routing import OneTripRoute


class Out(BaseModel):
    n: int
    thread: str


def _app(route_class: type[APIRoute]) -> FastAPI:
    router = APIRouter(route_class=route_class)

    @router.get("/plain/{n}", response_model=Out)
    def plain(n: int) -> dict[str, Any]:
        return {"n": n, "thread": threading.current_thread().name}

    @router.get("/bad", response_model=Out)
    def bad() -> dict[str, Any]:
        return {"n": "not a number", "thread": "x"}

    app = FastAPI()
    app.include_router(router)
    return app


def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    trips = {"fastapi": 0, "ours": 0}

    def counted(module: Any, name: str) -> None:
        real: Callable[..., Any] = module.run_in_threadpool

        async def run(*args: Any, **kwargs: Any) -> Any:
            trips[name] += 1
            return await real(*args, **kwargs)

        monkeypatch.setattr(module, "run_in_threadpool", run)

    counted(fastapi.routing, "fastapi")
    counted(gpulease.api.routing, "ours")
    return trips


def test_a_plain_endpoint_makes_one_trip_to_the_thread_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    trips = _counting(monkeypatch)
    with TestClient(_app(APIRoute)) as c:
        assert c.get("/plain/3").json()["n"] == 3
    assert trips == {"fastapi": 2, "ours": 0}  # FastAPI's own: the endpoint, then validating its answer

    trips.update(fastapi=0, ours=0)
    with TestClient(_app(OneTripRoute)) as c:
        r = c.get("/plain/3")
        loop_thread = c.portal.call(lambda: threading.current_thread().name)  # type: ignore[union-attr]
    assert r.json()["n"] == 3
    assert r.json()["thread"] != loop_thread  # still off the event loop
    assert trips == {"fastapi": 0, "ours": 1}


def test_the_answer_is_still_validated_and_the_signature_kept() -> None:
    app = _app(OneTripRoute)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/bad").status_code == 500  # an answer that breaks its model is not sent
        assert c.get("/plain/x").status_code == 422  # the path parameter is still typed
    params = app.openapi()["paths"]["/plain/{n}"]["get"]["parameters"]
    assert [p["name"] for p in params] == ["n"]


def test_leases_are_matched_first_and_documented_in_the_routers_order(client: TestClient) -> None:
    """Bookings and ends are matched before the other routers' routes (fewer routes tried per request), while
    the OpenAPI document still lists the routers in their documented order, inventory first."""
    from gpulease.api.app import API, DOCS_ORDER
    from gpulease.api.routers import leases

    app = client.app
    assert isinstance(app, FastAPI)
    included = [r.original_router for r in app.routes if hasattr(r, "original_router")]  # FastAPI's, in match order
    assert included[0] is leases.router
    documented = [p for p in client.get("/openapi.json").json()["paths"] if p.startswith(API)]
    written = list(dict.fromkeys(API + r.path for m in DOCS_ORDER for r in m.router.routes))
    assert documented == written
    assert documented[0] == API + "/gpu-models"


def _where_bookings_run(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records, for each booking's unit of work, whether it ran on the event loop or in a worker thread."""
    import asyncio

    from gpulease.api.routers import leases as leases_router

    seen: list[str] = []
    real = leases_router._book

    def book(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            seen.append("loop")
        except RuntimeError:
            seen.append("worker")
        return real(*args, **kwargs)

    monkeypatch.setattr(leases_router, "_book", book)
    return seen


def _booking(facility: Any) -> dict[str, Any]:
    facility.nodes(2)
    facility.prices()
    c = facility.customer()
    return {"customer_id": c["id"], "gpu_model": "A100-80GB", "gpu_count": 1, "plan": "on_demand", "duration_s": 600}


def test_a_booking_runs_on_the_event_loop_on_sqlite_only(facility: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A short unit (a booking, an end) runs on the loop itself on SQLite: no hand-over to a worker thread and no
    other thread taking the interpreter's lock while it holds the writer. On PostgreSQL it waits on round trips
    to the server, so it stays in the thread pool."""
    body = _booking(facility)
    seen = _where_bookings_run(monkeypatch)
    lease = facility.lease(**body)
    r = facility.c.post(f"/api/v1/leases/{lease['id']}/end", headers=facility.k.op)
    assert r.status_code == 200 and r.json()["state"] in ("ending", "ended")
    assert seen == ["worker" if facility.rt.store.is_postgres else "loop"]


def test_a_long_writer_does_not_hold_up_the_event_loop(facility: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """While another thread holds SQLite's writer for long (a list load takes seconds), a booking waits for it in
    a worker thread, not on the loop: the server goes on answering meanwhile, and the booking is made once the
    writer is free."""
    body = _booking(facility)
    if facility.rt.store.is_postgres:
        pytest.skip("PostgreSQL has no writer lock; its units always run in the thread pool")
    seen = _where_bookings_run(monkeypatch)
    held, release = threading.Event(), threading.Event()

    def long_unit() -> None:
        with facility.rt.store.transaction():
            held.set()
            release.wait(10)

    holder = threading.Thread(target=long_unit)
    holder.start()
    assert held.wait(5)
    answers: list[int] = []
    booking = threading.Thread(
        target=lambda: answers.append(facility.c.post("/api/v1/leases", headers=facility.k.op, json=body).status_code)
    )
    booking.start()
    try:
        time.sleep(0.3)  # the booking is waiting for the writer by now
        assert not answers
        started = time.monotonic()
        assert facility.c.get("/healthz").status_code == 200
        assert time.monotonic() - started < 1.0  # answered while the writer is held
    finally:
        release.set()
        holder.join(5)
        booking.join(10)
    assert answers == [201]
    assert seen == ["worker"]


def test_effects_that_may_wait_are_carried_out_off_the_loop(runtime: Any) -> None:
    from datetime import UTC, datetime

    from gpulease.services.work import DeliverWebhooks, LeasesChanged, NotifyPreemption, StopRuns

    rt = runtime
    rt.executor.mirror_leases()  # looks the inventory up once: no Slurm cluster, so none to tell for a while
    assert not rt.effects_may_block([])
    assert not rt.effects_may_block([DeliverWebhooks(), LeasesChanged((1,))])
    assert not rt.effects_may_block([StopRuns((1,), runs_on_record=False)])  # no run here: the tick closes it
    assert rt.effects_may_block([StopRuns((1,), runs_on_record=True)])  # runs to stop
    assert rt.effects_may_block([NotifyPreemption(1, datetime(2030, 1, 1, tzinfo=UTC))])


def test_short_units_run_in_the_order_asked_and_raise_in_their_own_request(runtime: Any) -> None:
    import asyncio

    from gpulease.api.routing import run_short

    if runtime.store.is_postgres:
        pytest.skip("PostgreSQL: short units run in the thread pool")
    ran: list[int] = []

    def unit(i: int) -> int:
        with runtime.work():
            ran.append(i)
        if i == 3:
            raise ValueError("refused")
        return i

    async def ask() -> list[Any]:
        return await asyncio.gather(*(run_short(runtime, unit, i) for i in range(6)), return_exceptions=True)

    answers = asyncio.run(ask())
    assert ran == list(range(6))
    assert answers[:3] == [0, 1, 2] and answers[4:] == [4, 5]
    assert isinstance(answers[3], ValueError)


def test_a_short_unit_runs_in_its_own_requests_context(runtime: Any) -> None:
    """Its idempotency key's claim, its request id: on SQLite the loop runs the queue's units one after another,
    each must see its own request's context variables, not those of the request that started the queue."""
    import asyncio
    import contextvars

    from gpulease.api.routing import run_short

    who: contextvars.ContextVar[int] = contextvars.ContextVar("who")

    async def ask(i: int) -> int:
        who.set(i)
        return await run_short(runtime, who.get)

    async def asks() -> list[int]:
        return await asyncio.gather(*(ask(i) for i in range(6)))

    assert asyncio.run(asks()) == list(range(6))
