"""CPU model catalogue and the CPU side of nodes: sockets, cores, memory, and the share kept for each GPU.

A core here is a physical core (the unit leased, priced and pinned); its hardware threads go with it. Cores are
numbered 0..cores-1 socket by socket (socket s holds cores s*cores_per_socket ..), the way Linux numbers the first
hardware thread of each core on the servers below, so a lease's core ids are also its cpuset.

A GPU node keeps a fixed share of its cores and memory for each GPU (`GpuShare`, configurable per node type):
GPU i's cores lie on the socket GPU i is attached to (GPUs split evenly over the sockets, in order). CPU leases
may only ever be given the rest (`CpuNodeView.leasable_cores`), so they never starve a GPU lease on the same node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gpulease.domain.inventory import NodeState


@dataclass(frozen=True, slots=True)
class CpuModel:
    """One server CPU product (one socket) as the price book and the compute thresholds see it.

    Peak FLOP/s per socket = cores x clock x FLOP per cycle per core, at the max boost clock: an upper bound (as the
    GPU figures are), which is what a compute threshold wants. FLOP per cycle per core = FMA pipes x vector lanes x 2.
    """

    name: str
    vendor: str
    cores: int  # physical cores per socket
    threads: int  # hardware threads per socket
    base_ghz: float
    boost_ghz: float  # max single-core boost, vendor datasheet
    fp64_flops_per_cycle: int  # per core
    fp32_flops_per_cycle: int  # per core

    @property
    def fp64_flops_per_core(self) -> float:
        return self.boost_ghz * 1e9 * self.fp64_flops_per_cycle

    @property
    def fp32_flops_per_core(self) -> float:
        return self.boost_ghz * 1e9 * self.fp32_flops_per_cycle

    @property
    def fp64_flops_per_socket(self) -> float:
        return self.cores * self.fp64_flops_per_core

    @property
    def fp32_flops_per_socket(self) -> float:
        return self.cores * self.fp32_flops_per_core


# Cores, threads and clocks from the vendors' product pages (amd.com EPYC product pages, ark.intel.com, NVIDIA's
# Grace CPU Superchip datasheet). FLOP per cycle per core from the microarchitecture:
#   AMD Zen 3 (EPYC 7763) and Zen 4 (EPYC 9654/9554): 2 x 256-bit FMA pipes (Zen 4 runs AVX-512 as 2 x 256-bit)
#       -> FP64 2 x 4 x 2 = 16, FP32 2 x 8 x 2 = 32.
#       EPYC 9654: 96 x 3.7 GHz x 16 = 5.68 TFLOP/s FP64 per socket.
#   Intel Ice Lake-SP (Xeon Platinum 8380) and Sapphire Rapids (8480+): 2 x 512-bit AVX-512 FMA units
#       -> FP64 2 x 8 x 2 = 32, FP32 2 x 16 x 2 = 64. Xeon 8480+: 56 x 3.8 GHz x 32 = 6.81 TFLOP/s FP64.
#       (Sapphire Rapids' AMX tiles reach far more BF16/INT8 operations; not counted here: see docs/cpu-leases.md.)
#   NVIDIA Grace (Neoverse V2): 4 x 128-bit SVE2 FMA pipes -> FP64 4 x 2 x 2 = 16, FP32 4 x 4 x 2 = 32.
#       72 x 3.1 GHz x 16 = 3.57 TFLOP/s FP64, half the 7.1 TFLOP/s NVIDIA states for the 144-core Superchip.
CPU_CATALOGUE: dict[str, CpuModel] = {
    m.name: m
    for m in (
        CpuModel("EPYC-9654", "AMD", 96, 192, 2.4, 3.7, 16, 32),
        CpuModel("EPYC-9554", "AMD", 64, 128, 3.1, 3.75, 16, 32),
        CpuModel("EPYC-7763", "AMD", 64, 128, 2.45, 3.5, 16, 32),
        CpuModel("Xeon-8480+", "Intel", 56, 112, 2.0, 3.8, 32, 64),
        CpuModel("Xeon-8380", "Intel", 40, 80, 2.3, 3.4, 32, 64),
        CpuModel("Grace", "NVIDIA", 72, 72, 3.1, 3.1, 16, 32),
    )
}

MAX_SOCKETS_PER_NODE = 8


class UnknownCpuModel(ValueError):
    def __init__(self, name: str) -> None:
        known = ", ".join(sorted(CPU_CATALOGUE))
        super().__init__(f"unknown CPU model {name!r}; known models: {known}")
        self.name = name


def cpu_model(name: str) -> CpuModel:
    """Look a model up by its catalogue name (case-insensitive)."""
    if name in CPU_CATALOGUE:
        return CPU_CATALOGUE[name]
    for key, model in CPU_CATALOGUE.items():
        if key.lower() == name.lower():
            return model
    raise UnknownCpuModel(name)


@dataclass(frozen=True, slots=True)
class GpuShare:
    """Cores and memory a GPU node keeps for each of its GPUs: a GPU lease gets them with its GPUs."""

    cores_per_gpu: int
    memory_gib_per_gpu: int


# The share kept per GPU by node type (GPU model); an operator may give a node another one. A DGX H100 has
# 2 x 56 cores and 2 TiB for 8 GPUs (14 cores and 256 GiB each): it keeps 12 and 192 GiB, and leases the rest.
DEFAULT_GPU_SHARE = GpuShare(8, 64)
GPU_SHARES: dict[str, GpuShare] = {
    "H100-80GB": GpuShare(12, 192),
    "H200": GpuShare(12, 256),
    "A100-80GB": GpuShare(12, 128),
    "A100-40GB": GpuShare(8, 96),
    "L40S": GpuShare(8, 64),
}


def gpu_share(gpu_model: str) -> GpuShare:
    return GPU_SHARES.get(gpu_model, DEFAULT_GPU_SHARE)


class BadNodeShape(ValueError):
    """A node whose sockets, cores, memory or GPU share do not add up."""


@dataclass(frozen=True, slots=True)
class CpuNodeView:
    """What CPU placement needs to know of a node: a CPU node (gpu_count 0) or the CPU side of a GPU node."""

    id: int
    name: str
    cluster: str
    site: str
    cpu_model: str
    sockets: int
    cores: int  # physical cores, all sockets together
    memory_gib: int
    state: NodeState = NodeState.AVAILABLE
    gpu_count: int = 0
    share: GpuShare = field(default=GpuShare(0, 0))

    def __post_init__(self) -> None:
        if not 1 <= self.sockets <= MAX_SOCKETS_PER_NODE:
            raise BadNodeShape(f"a node has 1 to {MAX_SOCKETS_PER_NODE} sockets, not {self.sockets}")
        if self.cores < self.sockets or self.cores % self.sockets:
            raise BadNodeShape(f"{self.cores} cores do not split evenly over {self.sockets} sockets")
        if self.memory_gib < 1 or min(self.gpu_count, self.share.cores_per_gpu, self.share.memory_gib_per_gpu) < 0:
            raise BadNodeShape("memory must be positive, GPU count and shares non-negative")
        gpus_per_socket = math.ceil(self.gpu_count / self.sockets)
        if gpus_per_socket * self.share.cores_per_gpu > self.cores_per_socket:
            raise BadNodeShape(f"{self.gpu_count} GPUs x {self.share.cores_per_gpu} cores do not fit the sockets")
        if self.reserved_memory_gib > self.memory_gib:
            gib = self.share.memory_gib_per_gpu
            raise BadNodeShape(f"{self.gpu_count} GPUs x {gib} GiB exceed the node's {self.memory_gib} GiB")

    @property
    def schedulable(self) -> bool:
        return self.state is NodeState.AVAILABLE

    @property
    def is_gpu_node(self) -> bool:
        return self.gpu_count > 0

    @property
    def cores_per_socket(self) -> int:
        return self.cores // self.sockets

    def socket_of(self, core: int) -> int:
        return core // self.cores_per_socket

    def gpu_cores(self, gpu_index: int) -> tuple[int, ...]:
        """The cores kept for GPU `gpu_index`: on the socket it is attached to, one block after the other."""
        if not 0 <= gpu_index < self.gpu_count:
            raise ValueError(f"node {self.name} has no GPU {gpu_index}")
        per_socket = math.ceil(self.gpu_count / self.sockets)
        socket, slot = divmod(gpu_index, per_socket)
        first = socket * self.cores_per_socket + slot * self.share.cores_per_gpu
        return tuple(range(first, first + self.share.cores_per_gpu))

    @property
    def reserved_cores(self) -> frozenset[int]:
        return frozenset(c for g in range(self.gpu_count) for c in self.gpu_cores(g))

    @property
    def reserved_memory_gib(self) -> int:
        return self.gpu_count * self.share.memory_gib_per_gpu

    @property
    def leasable_cores(self) -> tuple[int, ...]:
        """The cores CPU leases may be given, ascending."""
        reserved = self.reserved_cores
        return tuple(c for c in range(self.cores) if c not in reserved)

    @property
    def leasable_memory_gib(self) -> int:
        return self.memory_gib - self.reserved_memory_gib

    def default_memory_gib(self, cpu_cores: int) -> int:
        """Memory a lease of `cpu_cores` gets when it asks for none: its cores' proportional share of the leasable
        memory, rounded down (so the defaults of leases filling the node never add up to more than it has), at
        least 1 GiB."""
        leasable = len(self.leasable_cores)
        if leasable == 0:
            return 1
        return max(1, cpu_cores * self.leasable_memory_gib // leasable)


def cpu_node(
    id: int,
    name: str,
    cluster: str,
    site: str,
    model: str,
    sockets: int,
    memory_gib: int,
    state: NodeState = NodeState.AVAILABLE,
) -> CpuNodeView:
    """A CPU-only node of `sockets` x the model's cores."""
    m = cpu_model(model)
    return CpuNodeView(id, name, cluster, site, m.name, sockets, sockets * m.cores, memory_gib, state)


def cpuset(cores: tuple[int, ...] | list[int] | frozenset[int]) -> str:
    """Core ids in the Linux list format of cpuset.cpus and `taskset -c`: 0-3,8,10-11."""
    out: list[str] = []
    ordered = sorted(cores)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)
