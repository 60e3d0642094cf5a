"""A customer sees how its lease uses its GPUs: the clock's NVML readings (faked here: CI has no GPU; the real
readings are checked by tests/backends/test_real_gpu.py on a GPU machine) through the API, `gpulease leases show`
and the lease's page, its own lease only. Without NVML nothing is recorded and the API says why."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpulease.backends.telemetry import GpuSample
from gpulease.cli import app
from gpulease.runtime import Runtime
from gpulease.services import telemetry
from gpulease.settings import get_settings
from tests.conftest import Clock, Facility
from tests.web.conftest import sign_in


class FakeNvml:
    """NVML as the clock reads it: GPU `i` at `util[i]`% with `mem[i]` MiB in use."""

    def __init__(self) -> None:
        self.util: dict[int, int] = {}
        self.mem: dict[int, int] = {}

    def sample(self, indices: list[int] | None = None) -> list[GpuSample]:
        wanted = indices if indices is not None else list(range(8))
        return [GpuSample(i, self.util.get(i, 0), self.mem.get(i, 0), 81559, time.time()) for i in wanted]


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNvml]:
    fake = FakeNvml()
    monkeypatch.setattr(telemetry, "nvml_available", lambda: (True, None))
    monkeypatch.setattr(telemetry, "sample_gpus", fake.sample)
    yield fake


def _run_clock(runtime: Runtime, clock: Clock, ticks: int) -> None:
    for _ in range(ticks):
        clock.advance(seconds=runtime.settings.telemetry_interval_s)
        assert runtime.tick().failed == {}


def test_a_lease_s_gpu_use_through_the_api_the_cli_and_its_page(
    facility: Facility,
    runtime: Runtime,
    clock: Clock,
    nvml: FakeNvml,
    live_server: str,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    f = facility
    f.nodes(1)
    f.prices()
    c = f.customer()
    key = f.customer_key(c["id"])
    lease = f.lease(key, customer_id=c["id"], gpu_model="A100-80GB", gpu_count=2)
    gpus = [g["index"] for g in lease["gpus"]]
    for i in gpus:
        nvml.util[i], nvml.mem[i] = 80, 6000
    _run_clock(runtime, clock, 4)
    nvml.util[gpus[0]], nvml.mem[gpus[0]] = 100, 9000  # one GPU busier later on
    _run_clock(runtime, clock, 4)

    r = f.c.get(f"/api/v1/leases/{lease['id']}/gpu-usage", headers=key)
    assert r.status_code == 200, r.text
    use = r.json()
    assert use["nvml_available"] is True and use["readings"] == 2 * 8, use
    assert use["mean_utilization_pct"] == 85.0 and use["peak_memory_mib"] == 9000, use  # (80×12 + 100×4) / 16
    assert use["points"][0]["utilization_pct"] == 80.0 and use["points"][-1]["utilization_pct"] == 90.0, use
    assert use["points"][-1]["memory_used_mib"] == 9000
    r = f.c.get(f"/api/v1/leases/{lease['id']}/gpu-usage", headers=key, params={"points": 2})
    # Two buckets of a minute: readings at :15, :30, :45 in the first; :00 (still 80%) and four busier in the second.
    assert [p["utilization_pct"] for p in r.json()["points"]] == [80.0, 88.0], r.text
    assert f.c.get(f"/api/v1/leases/{lease['id']}/gpu-usage", headers=key, params={"hours": 0}).status_code == 422

    other = f.customer("Borealis Vision AB", country="SE")
    r = f.c.get(f"/api/v1/leases/{lease['id']}/gpu-usage", headers=f.customer_key(other["id"]))
    assert r.status_code == 404, r.text  # another tenant's lease does not exist for it

    monkeypatch.setenv("GPULEASE_API_URL", live_server)
    monkeypatch.setenv("GPULEASE_API_KEY", key["Authorization"].removeprefix("Bearer "))
    monkeypatch.setenv("GPULEASE_DATABASE_URL", db_url)
    monkeypatch.setenv("GPULEASE_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("COLUMNS", "80")
    get_settings.cache_clear()
    out = CliRunner().invoke(app, ["leases", "show", str(lease["id"])])
    get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    assert re.search(r"GPU use \(last 0h02m00s\): mean 85% · peak memory 9,000 MiB per GPU", out.output), out.output

    page = sign_in(type(f.c)(f.c.app), key["Authorization"].removeprefix("Bearer ")).get(f"/leases/{lease['id']}")
    assert page.status_code == 200
    assert 'id="gpu-use"' in page.text and "Mean utilisation <strong>85%</strong>" in page.text, page.text
    assert re.search(r'<svg [^>]*class="gpu-chart"[^>]*aria-label="GPU use from .*mean 85%', page.text)
    assert page.text.count("<polyline") == 2  # utilisation and memory


def test_without_nvml_nothing_is_recorded_and_the_api_says_why(
    facility: Facility, runtime: Runtime, clock: Clock
) -> None:
    f = facility
    f.nodes(1)
    f.prices()
    c = f.customer()
    lease = f.lease(customer_id=c["id"], gpu_model="A100-80GB", gpu_count=1)
    _run_clock(runtime, clock, 3)
    use = f.c.get(f"/api/v1/leases/{lease['id']}/gpu-usage", headers=f.k.op).json()
    if use["nvml_available"]:
        pytest.skip("this machine has NVML: its GPUs are read for real")
    assert use["readings"] == 0 and use["points"] == [] and use["mean_utilization_pct"] is None, use
    assert use["reason"], use  # e.g. "NVML could not start: NVML Shared Library Not Found"
    page = sign_in(type(f.c)(f.c.app), f.k.operator).get(f"/leases/{lease['id']}")
    assert page.status_code == 200 and 'id="gpu-use"' not in page.text
