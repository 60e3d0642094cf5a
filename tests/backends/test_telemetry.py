"""Telemetry says plainly when it cannot measure, and measures real GPUs where there are some."""

from __future__ import annotations

import pytest

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
