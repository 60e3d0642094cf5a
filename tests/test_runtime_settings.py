"""Settings reach the use cases only through the Runtime: a Runtime's own settings decide, whatever the
process environment says (several runtimes, e.g. tests or tenants, can run side by side)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from gpulease.runtime import Runtime
from gpulease.services import customers, leases
from gpulease.services.context import SYSTEM
from gpulease.services.kyc import KycInput, Owner
from gpulease.settings import Settings, get_settings
from gpulease.store.models import ReviewItem
from tests.conftest import T0, Clock, fresh_db_url

# A young company asking for 2 GPUs: a red flag only where the "large request" threshold is at most 2.
YOUNG = KycInput(
    legal_name="Fresh Start Robotics Inc.",
    country="US",
    address="12 Harbor Way, Oakland, CA",
    incorporated_on=(T0 - timedelta(days=30)).date(),
    owners=(Owner("Fresh Start Holdings LLC", 100),),
    end_use="training vision models for warehouse picking robots",
    requested_gpus=2,
)


@pytest.fixture
def environment_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process-wide settings (environment) disagree with the runtimes built in the test."""
    monkeypatch.setenv("GPULEASE_REDFLAG_LARGE_REQUEST_GPUS", "1000")
    monkeypatch.setenv("GPULEASE_COMPUTE_THRESHOLDS", "[1e30]")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _runtime(template_db: str, tmp_path: Path, settings: Settings, clock: Clock | None = None) -> Runtime:
    url = fresh_db_url(template_db, tmp_path)
    return Runtime(
        settings.model_copy(update={"data_dir": tmp_path / "data", "database_url": url}), clock=clock or Clock()
    )


@pytest.mark.parametrize(("threshold", "status"), [(1, "review"), (64, "cleared")])
def test_a_runtime_screens_with_its_own_red_flag_threshold(
    environment_says_otherwise: None, template_db: str, tmp_path: Path, threshold: int, status: str
) -> None:
    rt = _runtime(template_db, tmp_path, Settings(redflag_large_request_gpus=threshold))
    try:
        c = rt.perform(customers.create_customer, actor=SYSTEM, kyc=YOUNG)
        assert c.compliance_status == status
        record = rt.perform(customers.latest_screening, actor=SYSTEM, customer_id=c.id)
        flags = [f["rule"] for f in getattr(record, "red_flags", [])]
        assert ("new_company_large_request" in flags) is (threshold == 1), flags
    finally:
        rt.close()


def test_a_runtime_meters_compute_against_its_own_thresholds(
    environment_says_otherwise: None, template_db: str, tmp_path: Path
) -> None:
    """One GPU-hour of an A100 is ~1.1e18 operations: past a threshold of 1e18 set on this runtime only."""
    from gpulease.services import inventory, prices

    clock = Clock()
    # allow: booked and reported ahead of time (the projection), then counted at billing
    settings = Settings(compute_thresholds=(1e18,), compute_threshold_action="allow")
    rt = _runtime(template_db, tmp_path, settings, clock)
    try:
        with rt.work() as w:
            inventory.add_node(
                w, actor=SYSTEM, site="s1", cluster="c1", name="n1", gpu_model_name="A100-80GB", gpu_count=8
            )
            prices.set_price(w, actor=SYSTEM, gpu_model_name="A100-80GB", plan="on_demand", rate="1.25")
        c = rt.perform(customers.create_customer, actor=SYSTEM, kyc=replace(YOUNG, requested_gpus=0))
        request = leases.LeaseRequest(gpu_model="A100-80GB", gpu_count=1, plan="on_demand", customer_id=c.id)
        lease = rt.perform(leases.create_lease, actor=SYSTEM, request=request).lease
        clock.advance(hours=1)
        rt.perform(leases.end, actor=SYSTEM, lease_id=lease.id)
        with rt.store.transaction() as s:
            kinds = [r.kind for r in s.query(ReviewItem).filter(ReviewItem.customer_id == c.id)]
        assert kinds == ["compute_projection", "compute_threshold"]
    finally:
        rt.close()
