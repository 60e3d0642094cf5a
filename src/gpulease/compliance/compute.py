"""Cumulative training compute and the thresholds it crosses (operations = FLOP)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# Reporting thresholds for training runs: 1e26 operations is the figure of US Executive Order 14110
# (Sec. 4.2) and of the 2025 AI diffusion rule (ECCN 4E091); 1e25 is the EU AI Act's systemic-risk
# presumption; 1e24 is an early-warning line of our own.
DEFAULT_THRESHOLDS: tuple[float, ...] = (1e24, 1e25, 1e26)


def training_operations(gpu_seconds: float, flops_per_second: float) -> float:
    """Upper bound of operations: GPU-seconds times the model's peak dense BF16 FLOP/s."""
    if gpu_seconds < 0 or flops_per_second < 0:
        raise ValueError("GPU-seconds and FLOP/s cannot be negative.")
    return gpu_seconds * flops_per_second


def cumulative_operations(usage: Iterable[tuple[float, float]]) -> float:
    """Σ GPU-seconds × FLOP/s over (gpu_seconds, flops_per_second) pairs."""
    return sum(training_operations(seconds, flops) for seconds, flops in usage)


def crossed_thresholds(
    before_ops: float, after_ops: float, thresholds: Sequence[float] = DEFAULT_THRESHOLDS
) -> list[float]:
    """Thresholds reached by going from `before_ops` to `after_ops` (reached = at or above)."""
    return sorted(t for t in thresholds if before_ops < t <= after_ops)


def gpu_flops_per_second(model_name: str) -> float:
    """Peak dense BF16 FLOP/s of a catalogued GPU model."""
    from gpulease.domain.inventory import CATALOGUE

    return CATALOGUE[model_name].bf16_flops_per_second


def cpu_operations(core_seconds: float, flops_per_core: float) -> float:
    """Upper bound of operations on CPUs: core-seconds times the model's per-core peak FLOP/s (as for GPUs)."""
    if core_seconds < 0 or flops_per_core < 0:
        raise ValueError("core-seconds and FLOP/s cannot be negative.")
    return core_seconds * flops_per_core


def cpu_lease_operations(cores: int, seconds: float, flops_per_core: float) -> float:
    """A CPU lease's operations: cores x seconds x per-core peak FLOP/s."""
    if cores < 0:
        raise ValueError("cores cannot be negative.")
    return cpu_operations(cores * seconds, flops_per_core)


def cpu_flops_per_core(model_name: str) -> float:
    """Peak FP32 FLOP/s of one core of a catalogued CPU model (vector FMA at max boost; see domain/cpu.py)."""
    from gpulease.domain.cpu import cpu_model

    return cpu_model(model_name).fp32_flops_per_core
