"""Telemetry says plainly when it cannot measure, and measures real GPUs where there are some."""

from __future__ import annotations

import pytest

from gpulease.backends import telemetry
from gpulease.backends.telemetry import nvml_available, sample_gpus

AVAILABLE, REASON = nvml_available()


@pytest.mark.skipif(AVAILABLE, reason="NVML is available here; the no-NVML path cannot be observed")
def test_without_nvml_there_is_a_reason_and_no_numbers() -> None:
    assert REASON  # e.g. "NVML could not start: NVML Shared Library Not Found"
    assert sample_gpus() is None
    assert sample_gpus([0]) is None


@pytest.mark.skipif(not AVAILABLE, reason=f"needs a GPU with NVML: {REASON}")
def test_with_nvml_every_gpu_is_sampled() -> None:
    samples = sample_gpus()
    assert samples
    assert [s.index for s in samples] == list(range(len(samples)))
    for s in samples:
        assert 0 <= s.utilization_pct <= 100
        assert 0 <= s.memory_used_mib <= s.memory_total_mib
        assert s.memory_total_mib > 0
    (first,) = sample_gpus([0]) or []
    assert first.index == 0


class _FakePynvml:
    """NVML of a host with `count` GPUs, GPU `silent` not answering."""

    class NVMLError(Exception):
        pass

    def __init__(self, count: int, silent: int | None = None) -> None:
        self.count, self.silent = count, silent

    def nvmlDeviceGetCount(self) -> int:
        return self.count

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if not 0 <= index < self.count:
            raise self.NVMLError("Invalid Argument")  # what the real one raises (seen on a lent one-GPU machine)
        if index == self.silent:
            raise self.NVMLError("GPU is lost")
        return index

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> object:
        return type("Util", (), {"gpu": 10 * (handle + 1)})()

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> object:
        return type("Mem", (), {"used": (handle + 1) << 30, "total": 80 << 30})()


def test_gpus_the_host_does_not_have_or_that_do_not_answer_give_no_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    # A node declared with 8 GPUs on a host with 2, GPU 1 fallen off the bus: GPU 0 is still read, nothing raises.
    monkeypatch.setattr(telemetry._nvml, "get", lambda: (_FakePynvml(2, silent=1), None))
    samples = sample_gpus([0, 1, 3, 7]) or []
    assert [(s.index, s.utilization_pct, s.memory_used_mib) for s in samples] == [(0, 10, 1024)]
    assert [s.index for s in sample_gpus() or []] == [0]
