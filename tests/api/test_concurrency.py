"""Zero double bookings when many requests race for the same GPUs, on both stores."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import timedelta
from itertools import pairwise

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from gpulease.compliance.compute import training_operations
from gpulease.domain.inventory import gpu_model
from gpulease.runtime import Runtime
from gpulease.services import leases
from gpulease.services.context import SYSTEM
from gpulease.services.errors import NoCapacity
from gpulease.store.models import Allocation, CpuAllocation, Customer
from tests.conftest import Clock, Facility


def _overlaps(
    runtime: Runtime, table: type[Allocation] | type[CpuAllocation] = Allocation
) -> list[tuple[int, int, int, int]]:
    """Live holds of one GPU (or one core: `CpuAllocation`) that overlap in time: (node, unit, lease, lease)."""
    unit = "core_index" if table is CpuAllocation else "gpu_index"
    with runtime.store.transaction() as s:
        allocs: list[Allocation | CpuAllocation] = list(s.scalars(select(table).where(table.released.is_(False))))
    by_gpu = defaultdict(list)
    for a in allocs:
        by_gpu[(a.node_id, getattr(a, unit))].append(a)
    bad = []
    for (node, gpu), items in by_gpu.items():
        items.sort(key=lambda a: a.starts_at)
        for x, y in pairwise(items):
            if x.ends_at is None or x.ends_at > y.starts_at:
                bad.append((node, gpu, x.lease_id, y.lease_id))
    return bad


def race(runtime: Runtime, requests: list[leases.LeaseRequest]) -> list[str]:
    """Book every request at once, one thread each released together: "booked" or "no capacity" for each."""
    barrier = threading.Barrier(len(requests))
    results: list[str] = []
    lock = threading.Lock()

    def book(req: leases.LeaseRequest) -> None:
        barrier.wait()
        try:
            runtime.perform(leases.create_lease, actor=SYSTEM, request=req)
            outcome = "booked"
        except NoCapacity:
            outcome = "no capacity"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=book, args=(req,)) for req in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_fifty_concurrent_requests_never_double_book(facility: Facility, runtime: Runtime, clock: Clock) -> None:
    facility.nodes(2)  # 16 GPUs for 60 requests of 1-4 GPUs over overlapping windows
    facility.prices()
    cust = facility.customer()
    t0 = clock()
    n = 60

    def request(i: int) -> leases.LeaseRequest:
        start = t0 + timedelta(minutes=5 * (i % 3))
        return leases.LeaseRequest(
            gpu_model="A100-80GB",
            gpu_count=1 + i % 4,
            plan="reserved",
            start=start,
            end=start + timedelta(hours=1),
            customer_id=cust["id"],
        )

    results = race(runtime, [request(i) for i in range(n)])
    assert len(results) == n
    booked = results.count("booked")
    assert 0 < booked < n  # the race was real: some won, some were refused
    assert _overlaps(runtime) == []
    with runtime.store.transaction() as s:
        gpus_used = s.scalar(text("SELECT count(*) FROM allocations WHERE NOT released"))
    assert gpus_used <= 16 * 3  # never more GPU-windows than exist


def test_postgres_refuses_overlap_even_without_the_application(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    if not runtime.store.is_postgres:
        pytest.skip("the exclusion constraint is PostgreSQL's; SQLite serialises writers instead")
    facility.nodes(1)
    facility.prices()
    cust = facility.customer()
    lease = facility.lease(customer_id=cust["id"], gpu_model="A100-80GB", gpu_count=1, plan="on_demand")
    g = lease["gpus"][0]
    with pytest.raises(IntegrityError, match="no_double_booking"), runtime.store.transaction() as s:
        s.add(
            Allocation(
                lease_id=lease["id"],
                node_id=g["node_id"],
                gpu_index=g["index"],
                starts_at=clock() + timedelta(days=1),
                ends_at=clock() + timedelta(days=2),
            )
        )
        s.flush()


def test_concurrent_ends_of_one_customer_count_all_its_compute(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    """Each end adds its GPU-seconds x peak FLOP/s to the customer's cumulative compute (the figure compute
    thresholds are checked on): ends committing together must not lose one another's share."""
    facility.nodes(2)
    facility.prices()
    cust = facility.customer()
    req = leases.LeaseRequest(gpu_model="A100-80GB", gpu_count=1, plan="on_demand", customer_id=cust["id"])
    ids = [runtime.perform(leases.create_lease, actor=SYSTEM, request=req).lease.id for _ in range(12)]
    clock.advance(minutes=10)  # 600 GPU-seconds each
    barrier = threading.Barrier(len(ids))
    errors: list[BaseException] = []

    def end(lease_id: int) -> None:
        barrier.wait()
        try:
            runtime.perform(leases.end, actor=SYSTEM, lease_id=lease_id)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=end, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with runtime.store.transaction() as s:
        total = s.scalar(select(Customer.cumulative_flop).where(Customer.id == cust["id"]))
    per_lease = training_operations(600, gpu_model("A100-80GB").bf16_flops_per_second)
    assert total == pytest.approx(len(ids) * per_lease, rel=1e-9)
