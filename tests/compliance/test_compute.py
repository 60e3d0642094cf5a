from __future__ import annotations

import pytest

from gpulease.compliance.compute import (
    crossed_thresholds,
    cumulative_operations,
    gpu_flops_per_second,
    training_operations,
)


def test_operations_from_gpu_seconds() -> None:
    flops = gpu_flops_per_second("H100-80GB")
    assert flops == pytest.approx(989.4e12)
    assert training_operations(3600, flops) == pytest.approx(3600 * 989.4e12)
    assert cumulative_operations([(10, 1e12), (5, 2e12)]) == pytest.approx(2e13)


def test_crossed_thresholds() -> None:
    assert crossed_thresholds(5e23, 2e25) == [1e24, 1e25]
    assert crossed_thresholds(1e24, 5e24) == []  # already at the first threshold
    assert crossed_thresholds(9e25, 1e26) == [1e26]
    assert crossed_thresholds(0, 1e27, thresholds=(1e26,)) == [1e26]


def test_negative_refused() -> None:
    with pytest.raises(ValueError):
        training_operations(-1, 1e12)
