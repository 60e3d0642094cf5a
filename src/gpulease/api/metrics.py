"""Prometheus metrics: request counters from middleware, fleet gauges read from the store at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from gpulease.api.deps import ActorDep
from gpulease.domain.leases import LeaseState
from gpulease.services.context import Role
from gpulease.store.models import Alert, Allocation, Customer, Lease, Node, ReviewItem

if TYPE_CHECKING:
    from gpulease.runtime import Runtime


class FleetCollector(Collector):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now: datetime = self.rt.clock()
        with self.rt.store.transaction() as s:
            leases = GaugeMetricFamily("gpulease_leases", "Leases by state and plan", labels=["state", "plan"])
            for state, plan, n in s.execute(
                select(Lease.state, Lease.plan, func.count()).group_by(Lease.state, Lease.plan)
            ):
                leases.add_metric([state, plan], n)
            yield leases
            gpus = GaugeMetricFamily("gpulease_gpus", "GPUs in service by model", labels=["gpu_model", "node_state"])
            for model, state, n in s.execute(
                select(Node.gpu_model, Node.state, func.sum(Node.gpu_count))
                .where(Node.removed_at.is_(None))
                .group_by(Node.gpu_model, Node.state)
            ):
                gpus.add_metric([model, state], float(n or 0))
            yield gpus
            busy = GaugeMetricFamily("gpulease_gpus_leased", "GPUs held by an active lease now", labels=["gpu_model"])
            for model, n in s.execute(
                select(Node.gpu_model, func.count())
                .select_from(Allocation)
                .join(Node)
                .join(Lease)
                .where(
                    Allocation.released.is_(False),
                    Allocation.starts_at <= now,
                    (Allocation.ends_at.is_(None)) | (Allocation.ends_at > now),
                    Lease.state.in_([LeaseState.ACTIVE.value, LeaseState.SUSPENDED.value]),
                )
                .group_by(Node.gpu_model)
            ):
                busy.add_metric([model], n)
            yield busy
            customers = GaugeMetricFamily("gpulease_customers", "Customers by compliance status", labels=["status"])
            for status, n in s.execute(
                select(Customer.compliance_status, func.count()).group_by(Customer.compliance_status)
            ):
                customers.add_metric([status], n)
            yield customers
            open_reviews = s.scalar(select(func.count()).select_from(ReviewItem).where(ReviewItem.status == "open"))
            yield GaugeMetricFamily(
                "gpulease_review_queue_open", "Open items in the compliance review queue", value=open_reviews or 0
            )
            alerts = s.scalar(select(func.count()).select_from(Alert).where(Alert.acknowledged.is_(False)))
            yield GaugeMetricFamily(
                "gpulease_alerts_unacknowledged", "Operator alerts not yet acknowledged", value=alerts or 0
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


def install(app: FastAPI, runtime: Runtime, http: HttpMetrics) -> None:
    """`/metrics` for Prometheus, behind an operator or compliance key (the fleet gauges are business data)."""
    http.registry.register(FleetCollector(runtime))

    @app.get("/metrics", include_in_schema=False)
    def metrics(actor: ActorDep) -> Response:
        actor.require(Role.OPERATOR, Role.COMPLIANCE)
        return Response(generate_latest(http.registry), media_type=CONTENT_TYPE_LATEST)
