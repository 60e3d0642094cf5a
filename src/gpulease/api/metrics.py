"""Prometheus metrics: request counters from middleware, fleet gauges from the read model at scrape time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gpulease.runtime import Runtime
from gpulease.services import reports


class FleetCollector(Collector):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def collect(self) -> Iterator[GaugeMetricFamily]:
        f = self.rt.perform(reports.fleet_figures)
        leases = GaugeMetricFamily("gpulease_leases", "Leases by state and plan", labels=["state", "plan"])
        for (state, plan), n in f.leases.items():
            leases.add_metric([state, plan], n)
        yield leases
        gpus = GaugeMetricFamily("gpulease_gpus", "GPUs in service by model", labels=["gpu_model", "node_state"])
        for (model, state), n in f.gpus.items():
            gpus.add_metric([model, state], float(n))
        yield gpus
        busy = GaugeMetricFamily("gpulease_gpus_leased", "GPUs held by a lease now", labels=["gpu_model"])
        for model, n in f.leased.items():
            busy.add_metric([model], n)
        yield busy
        customers = GaugeMetricFamily("gpulease_customers", "Customers by compliance status", labels=["status"])
        for status, n in f.customers.items():
            customers.add_metric([status], n)
        yield customers
        yield GaugeMetricFamily(
            "gpulease_review_queue_open", "Open items in the compliance review queue", value=f.open_reviews
        )
        yield GaugeMetricFamily(
            "gpulease_alerts_unacknowledged", "Operator alerts not yet acknowledged", value=f.unacknowledged_alerts
        )


def install(app: FastAPI, runtime: Runtime) -> None:
    registry = CollectorRegistry()
    requests = Counter("gpulease_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry)
    latency = Histogram("gpulease_http_request_seconds", "HTTP request latency", ["method", "route"], registry=registry)
    registry.register(FleetCollector(runtime))

    @app.middleware("http")
    async def _count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        requests.labels(request.method, path, str(response.status_code)).inc()
        latency.labels(request.method, path).observe(time.perf_counter() - t0)
        return response

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
