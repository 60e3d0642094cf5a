"""GPU model catalogue and the shapes of capacity: sites, clusters, nodes."""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GpuModel:
    """One GPU product as the price book and the compliance thresholds see it."""

    name: str
    memory_gb: int
    bf16_dense_tflops: float  # peak dense BF16/FP16 tensor TFLOP/s, vendor datasheet
    interconnect: str

    @property
    def bf16_flops_per_second(self) -> float:
        return self.bf16_dense_tflops * 1e12


# Peak dense (no sparsity) BF16 tensor throughput from the vendors' datasheets.
CATALOGUE: dict[str, GpuModel] = {
    m.name: m
    for m in (
        GpuModel("A100-40GB", 40, 312.0, "NVLink 3 (600 GB/s)"),
        GpuModel("A100-80GB", 80, 312.0, "NVLink 3 (600 GB/s)"),
        GpuModel("H100-80GB", 80, 989.4, "NVLink 4 (900 GB/s)"),
        GpuModel("H200", 141, 989.4, "NVLink 4 (900 GB/s)"),
        GpuModel("L40S", 48, 362.05, "PCIe Gen4 x16"),
        GpuModel("V100-32GB", 32, 125.0, "NVLink 2 (300 GB/s)"),
        GpuModel("P100", 16, 21.2, "NVLink 1 (160 GB/s)"),
        GpuModel("T4", 16, 65.0, "PCIe Gen3 x16"),
    )
}

MAX_GPUS_PER_NODE = 8


class UnknownGpuModel(ValueError):
    def __init__(self, name: str) -> None:
        known = ", ".join(sorted(CATALOGUE))
        super().__init__(f"unknown GPU model {name!r}; known models: {known}")
        self.name = name


def gpu_model(name: str) -> GpuModel:
    """Look a model up by its catalogue name (case-insensitive)."""
    if name in CATALOGUE:
        return CATALOGUE[name]
    for key, model in CATALOGUE.items():
        if key.lower() == name.lower():
            return model
    raise UnknownGpuModel(name)


class NodeState(enum.StrEnum):
    AVAILABLE = "available"
    DRAINING = "draining"  # takes no new leases; running leases run to their end
    DOWN = "down"


class Backend(enum.StrEnum):
    LOCAL = "local"
    RAY = "ray"
    SLURM = "slurm"


@dataclass(frozen=True, slots=True)
class NodeView:
    """What placement needs to know of a node."""

    id: int
    name: str
    cluster: str
    site: str
    gpu_model: str
    gpu_count: int
    state: NodeState = NodeState.AVAILABLE
    cpus_described: bool = False  # a GPU lease's answer then shows its GPUs' share of cores (not placement's)

    @property
    def schedulable(self) -> bool:
        return self.state is NodeState.AVAILABLE
