"""GPU utilisation and memory, read from NVML where there is one; nothing made up where there is not."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

_MIB = 1024 * 1024
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuSample:
    index: int
    utilization_pct: int
    memory_used_mib: int
    memory_total_mib: int
    at: float  # epoch seconds


class _Nvml:
    """NVML initialised once per process; the reason is kept when it cannot be."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tried = False
        self._module: Any = None
        self._reason: str | None = None

    def get(self) -> tuple[Any, str | None]:
        with self._lock:
            if not self._tried:
                self._tried = True
                try:
                    import pynvml  # from nvidia-ml-py, the 'gpu' extra
                except ImportError:
                    self._reason = "nvidia-ml-py is not installed (pip install 'gpulease[gpu]')"
                else:
                    try:
                        pynvml.nvmlInit()
                    except pynvml.NVMLError as exc:
                        self._reason = f"NVML could not start: {exc}"
                    else:
                        self._module = pynvml
            return self._module, self._reason


_nvml = _Nvml()


def nvml_available() -> tuple[bool, str | None]:
    """(True, None) where NVML answers; (False, why not) elsewhere."""
    module, reason = _nvml.get()
    return module is not None, reason


def sample_gpus(indices: list[int] | None = None) -> list[GpuSample] | None:
    """One sample per GPU (all of this node's, or those of `indices` that it has), or None where NVML is unavailable.

    Indices are NVML's, which follow PCI bus order like CUDA_DEVICE_ORDER=PCI_BUS_ID. An index this host does not
    have (a lease on GPU 5 of a node declared with 8, on a host with one) and a GPU that does not answer (fallen off
    the bus) give no sample: the others are still read.
    """
    nvml, _ = _nvml.get()
    if nvml is None:
        return None
    count = nvml.nvmlDeviceGetCount()
    if indices is None:
        indices = list(range(count))
    samples = []
    for index in indices:
        if not 0 <= index < count:
            _unknown_once(index, count)
            continue
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            util = nvml.nvmlDeviceGetUtilizationRates(handle)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        except nvml.NVMLError as exc:
            log.warning("GPU %d did not answer NVML: %s", index, exc)
            continue
        samples.append(
            GpuSample(
                index=index,
                utilization_pct=int(util.gpu),
                memory_used_mib=int(memory.used) // _MIB,
                memory_total_mib=int(memory.total) // _MIB,
                at=time.time(),
            )
        )
    return samples


_unknown_said: set[int] = set()


def _unknown_once(index: int, count: int) -> None:
    """Said once per index: leases on GPUs this host does not have are the inventory's, not a fault of the moment."""
    if index not in _unknown_said:
        _unknown_said.add(index)
        log.warning("no GPU %d on this host (NVML sees %d): leases on it get no GPU readings here", index, count)
