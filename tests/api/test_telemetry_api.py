"""GPU telemetry: real NVML readings summarised into usage records, and none invented where NVML is absent."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from gpulease.backends.telemetry import nvml_available
from gpulease.store.models import GpuSampleRow, UsageRecord
from tests.conftest import Clock, Facility


def test_without_nvml_it_says_so_and_records_none(facility: Facility, clock: Clock) -> None:
    ok, reason = nvml_available()
    body = facility.c.get("/api/v1/telemetry", headers=facility.k.op).json()
    assert body["nvml_available"] is ok
    facility.nodes(1)
    facility.prices()
    cid = facility.customer()["id"]
    lease = facility.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=2)
    for _ in range(3):
        clock.advance(seconds=30)
        facility.rt.tick()
    facility.c.post(f"/api/v1/leases/{lease['id']}/end", headers=facility.k.op)
    with facility.rt.store.transaction() as s:
        samples = s.scalars(select(GpuSampleRow)).all()
        [rec] = s.scalars(select(UsageRecord)).all()
        if not ok:
            assert body["reason"] == reason and "no GPU telemetry" in body["note"]
            assert samples == [] and rec.gpu_util_pct is None and rec.gpu_mem_used_mib_max is None
        else:  # on a GPU host the readings are real and land in the record
            assert samples and rec.gpu_util_pct is not None


def test_readings_are_summarised_into_the_usage_record(facility: Facility, clock: Clock) -> None:
    facility.nodes(1)
    facility.prices()
    cid = facility.customer()["id"]
    lease = facility.lease(customer_id=cid, gpu_model="A100-80GB", gpu_count=2)
    with facility.rt.store.transaction() as s:  # readings as the sampler would store them
        for i, (util, mem) in enumerate([(80.0, 1000), (100.0, 3000), (60.0, 2000)]):
            s.add(
                GpuSampleRow(
                    lease_id=lease["id"],
                    at=clock() + timedelta(seconds=10 * i),
                    node="c1-n000",
                    gpu_index=lease["gpus"][0]["index"],
                    utilization_pct=util,
                    memory_used_mib=mem,
                )
            )
    clock.advance(minutes=5)
    facility.c.post(f"/api/v1/leases/{lease['id']}/end", headers=facility.k.op)
    with facility.rt.store.transaction() as s:
        [rec] = s.scalars(select(UsageRecord)).all()
        assert rec.gpu_util_pct == 80.0 and rec.gpu_mem_used_mib_max == 3000
