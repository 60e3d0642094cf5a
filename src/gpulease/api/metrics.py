"""Prometheus metrics: request counters from middleware, fleet gauges from the read model at scrape time."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from gpulease.api.deps import ActorDep
from gpulease.runtime import Runtime
from gpulease.services import reports
from gpulease.services.permissions import Permission, require


class FleetCollector(Collector):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def collect(self) -> Iterator[Metric]:
        leader = GaugeMetricFamily(
            "gpulease_clock_leader", "1 if this server process runs the lease clock, else 0", labels=["process"]
        )
        leader.add_metric([self.rt.leadership.name], 1.0 if self.rt.is_clock_leader else 0.0)
        yield leader
        writer = self.rt.store.writer_stats
        if writer is not None:  # SQLite: one write transaction at a time, in this process
            yield CounterMetricFamily(
                "gpulease_sqlite_write_transactions",
                "Write transactions through the writer lock",
                value=writer.transactions,
            )
            yield CounterMetricFamily(
                "gpulease_sqlite_write_lock_wait_seconds",
                "Time write transactions waited for the lock, summed",
                value=writer.wait_s,
            )
            yield CounterMetricFamily(
                "gpulease_sqlite_write_lock_held_seconds",
                "Time the writer lock was held; a rate near 1 means the store's one writer is the bound",
                value=writer.hold_s,
            )
            yield CounterMetricFamily(
                "gpulease_sqlite_write_lock_held_cpu_seconds",
                "CPU time the holder of the writer lock ran while holding it; held minus this is time it waited to run",
                value=writer.hold_cpu_s,
            )
            held = HistogramMetricFamily(
                "gpulease_sqlite_write_lock_hold_seconds",
                "How long each write transaction held the writer lock (every writer queued behind waits it out)",
            )
            held.add_metric(
                [], [("+Inf" if le == float("inf") else f"{le:g}", n) for le, n in writer.histogram()], writer.hold_s
            )
            yield held
            short = CounterMetricFamily(
                "gpulease_sqlite_short_units",
                "Short units of work (a booking, an end) run on the event loop itself, or handed to the thread pool "
                "because the writer lock did not come to them at once (a long writer held it)",
                labels=["ran"],
            )
            short.add_metric(["loop"], writer.on_loop)
            short.add_metric(["pool"], writer.to_pool)
            yield short
            yield GaugeMetricFamily(
                "gpulease_sqlite_wal_pages",
                "Pages in SQLite's write-ahead log at the server's last checkpoint (it is kept short from a thread of "
                "its own; a growing figure means checkpoints cannot finish)",
                value=self.rt.wal_pages,
            )
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
        cores = GaugeMetricFamily(
            "gpulease_cpu_cores_leased", "CPU cores held by a CPU lease now", labels=["cpu_model"]
        )
        for model, n in f.cores_leased.items():
            cores.add_metric([model], n)
        yield cores
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


class HttpMetrics:
    """The request-side series; the middleware in api/middleware.py feeds them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("gpulease_http_requests", "HTTP requests", ["method", "route", "status"], registry=r)
        self.latency = Histogram(
            "gpulease_http_request_seconds", "HTTP request latency", ["method", "route"], registry=r
        )
        self.errors = Counter(
            "gpulease_http_unhandled_errors", "Requests that ended in an unhandled error (500)", ["error"], registry=r
        )
        self.limited = Counter("gpulease_http_rate_limited", "Requests refused with 429 by the rate limit", registry=r)


# Every thread of the process waits out a collection: its pauses are the process's, timed once for all apps.
GC_PAUSES = Histogram(
    "gpulease_gc_pause_seconds",
    "Garbage-collector pauses (every request in flight waits), by generation collected",
    ["generation"],
    registry=None,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
_gc_began = [0.0]


def _time_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_began[0] = time.perf_counter()
    else:
        GC_PAUSES.labels(str(info["generation"])).observe(time.perf_counter() - _gc_began[0])


if _time_gc not in gc.callbacks:
    gc.callbacks.append(_time_gc)


def install(app: FastAPI, runtime: Runtime, http: HttpMetrics) -> None:
    """`/metrics` for Prometheus, behind an operator or compliance key (the fleet gauges are business data)."""
    http.registry.register(FleetCollector(runtime))
    http.registry.register(GC_PAUSES)

    @app.get("/metrics", include_in_schema=False)
    def metrics(actor: ActorDep) -> Response:
        require(actor, Permission.VIEW_FLEET)
        return Response(generate_latest(http.registry), media_type=CONTENT_TYPE_LATEST)
