"""Cumulative training compute and the thresholds it crosses (operations = FLOP)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class ComputeProjection:
    """What a booking will add to a customer's training compute, with the arithmetic shown."""

    gpu_model: str
    gpu_count: int
    flops_per_gpu: float
    seconds: int
    projected: float
    before: float
    crossed: tuple[float, ...]

    @property
    def after(self) -> float:
        return self.before + self.projected

    def arithmetic(self) -> str:
        crossed = ", ".join(f"{t:.0e}" for t in self.crossed) or "none"
        return (
            f"{self.gpu_count} GPUs × {self.flops_per_gpu:.3e} FLOP/s ({self.gpu_model} peak dense BF16) × "
            f"{self.seconds:,} s = {self.projected:.3e} operations; {self.before:.3e} so far + {self.projected:.3e} "
            f"= {self.after:.3e}; thresholds crossed: {crossed}"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "gpu_model": self.gpu_model,
            "gpu_count": self.gpu_count,
            "flops_per_gpu": self.flops_per_gpu,
            "seconds": self.seconds,
            "projected_operations": self.projected,
            "cumulative_before": self.before,
            "cumulative_after": self.after,
            "thresholds_crossed": list(self.crossed),
            "arithmetic": self.arithmetic(),
        }


def project(
    gpu_model: str, gpu_count: int, flops_per_gpu: float, seconds: int, before: float, thresholds: Sequence[float]
) -> ComputeProjection:
    """GPUs × peak throughput × window, added to what the customer has used: which thresholds it would cross."""
    projected = training_operations(gpu_count * max(0, seconds), flops_per_gpu)
    return ComputeProjection(
        gpu_model,
        gpu_count,
        flops_per_gpu,
        seconds,
        projected,
        before,
        tuple(crossed_thresholds(before, before + projected, thresholds)),
    )
