"""A plain endpoint runs off the event loop in one trip to the thread pool, its answer validated as before."""

from __future__ import annotations

import threading
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
