"""On a machine with an NVIDIA GPU: a sandboxed run gets exactly its lease's GPU and CUDA works there, a run of a
lease without that GPU cannot reach it, and the end of a lease frees the GPU's memory (seen through NVML).

Skipped without a GPU (CI has none). Needs only pytest, gpulease's backends and, for the CUDA parts, PyTorch in the
Python that runs the tests, so it also runs on a GPU machine without the rest of the stack:

    PYTHONPATH=src python3 -m pytest -q --noconftest tests/backends/test_real_gpu.py

(`GPULEASE_TEST_BWRAP` names bubblewrap where it is not on the PATH.) docs/benchmarks.md, "On a real GPU", has a
run's figures.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpulease.backends.base import LeasedGpus, RunSpec
from gpulease.backends.local import LocalBackend
from gpulease.backends.sandbox import SandboxPolicy
from gpulease.backends.telemetry import nvml_available, sample_gpus

NVML, WHY = nvml_available()
BWRAP = os.environ.get("GPULEASE_TEST_BWRAP") or shutil.which("bwrap")
pytestmark = [
    pytest.mark.skipif(not NVML, reason=f"needs an NVIDIA GPU: {WHY}"),
    pytest.mark.skipif(BWRAP is None, reason="bubblewrap (bwrap) is not installed"),
]


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


needs_torch = pytest.mark.skipif(not _has_torch(), reason="PyTorch is not installed in this Python")

# What a run reports of itself: its CUDA_VISIBLE_DEVICES, the NVIDIA device nodes it can see, and what CUDA finds.
PROBE = """
import glob, json, os
seen = {"visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "nodes": sorted(glob.glob("/dev/nvidia*"))}
try:
    import torch
    seen["count"] = torch.cuda.device_count()
    if seen["count"]:
        x = torch.ones(1024, 1024, device="cuda")
        seen["name"], seen["sum"] = torch.cuda.get_device_name(0), float((x @ x).sum())
except ImportError:
    pass
print("PROBE " + json.dumps(seen))
"""
HOLD = (
    "import time, torch; x = torch.empty(4 * 1024**3, dtype=torch.uint8, device='cuda'); "
    "print('HOLDING', flush=True); time.sleep(600)"
)


@pytest.fixture
def backend() -> Iterator[LocalBackend]:
    # The Python running the tests (and its packages) visible read-only in the sandbox, where it is not under /usr.
    prefixes = {sys.prefix, sys.base_prefix, *site.getsitepackages()}
    extra = tuple(Path(p) for p in sorted(prefixes) if p != "/usr" and not p.startswith("/usr/"))
    # A folder the runs' uids can reach (pytest's own tmp_path is closed to others); no root conftest needed.
    tmp_path = Path(tempfile.mkdtemp(prefix="gpulease-gpu-"))
    tmp_path.chmod(0o755)
    policy = SandboxPolicy(root=tmp_path / "sandbox", ro_paths=extra, bwrap=BWRAP or "bwrap")
    b = LocalBackend(runs_dir=tmp_path / "runs", sandbox=policy)
    yield b
    b.close()
    shutil.rmtree(tmp_path, ignore_errors=True)


def _start(b: LocalBackend, lease_id: int, gpus: tuple[int, ...], run_id: str, code: str) -> None:
    held = [LeasedGpus(lease_id, "node-a", gpus)]
    b.lease_started(lease_id, held)
    log = Path(b._policy.root).parent / "logs" / f"{run_id}.log"
    b.start(
        RunSpec(
            run_id=run_id,
            lease_id=lease_id,
            command=[sys.executable, "-c", code],
            env={},
            cwd=None,
            gpus=held,
            log_path=log,
            image=None,
            customer_id=7,
        )
    )


def _log(b: LocalBackend, run_id: str) -> str:
    return b.read_logs(run_id)[0].decode(errors="replace")


def _until(what: Any, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while not what():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.2)


def _probe(b: LocalBackend, lease_id: int, gpus: tuple[int, ...]) -> dict[str, Any]:
    run_id = f"probe-{lease_id}"
    _start(b, lease_id, gpus, run_id, PROBE)
    _until(lambda: b.status(run_id).state.finished, 120)
    out = _log(b, run_id)
    assert b.status(run_id).exit_code == 0, out
    [line] = [ln for ln in out.splitlines() if ln.startswith("PROBE ")]
    b.lease_ended(lease_id, grace_s=2)
    return dict(json.loads(line[len("PROBE ") :]))


def test_a_run_sees_its_leased_gpu_only(backend: LocalBackend) -> None:
    seen = _probe(backend, 1, (0,))
    assert seen["visible"] == "0"
    assert [n for n in seen["nodes"] if n[len("/dev/nvidia") :].isdigit()] == ["/dev/nvidia0"]
    if "count" in seen:  # PyTorch there: CUDA works in the sandbox, on one GPU
        assert seen["count"] == 1 and seen["sum"] == 1024.0**3, seen


def test_a_run_of_a_lease_without_the_gpu_cannot_reach_it(backend: LocalBackend) -> None:
    other = [s.index for s in sample_gpus() or []][-1] + 1  # a GPU this machine does not have: GPU 0 is not leased
    seen = _probe(backend, 2, (other,))
    assert not [n for n in seen["nodes"] if n[len("/dev/nvidia") :].isdigit()], seen
    assert seen.get("count", 0) == 0, seen


@needs_torch
def test_the_end_of_a_lease_frees_its_gpu(backend: LocalBackend) -> None:
    [before] = sample_gpus([0]) or []
    _start(backend, 3, (0,), "holder", HOLD)
    _until(lambda: "HOLDING" in _log(backend, "holder") or backend.status("holder").state.finished, 120)
    [holding] = sample_gpus([0]) or []
    assert holding.memory_used_mib >= before.memory_used_mib + 4000, (before, holding, _log(backend, "holder"))
    t0 = time.monotonic()
    backend.lease_ended(3, grace_s=5)
    _until(lambda: backend.status("holder").state.finished, 30)
    stopped_s = time.monotonic() - t0
    _until(lambda: (sample_gpus([0]) or [holding])[0].memory_used_mib <= before.memory_used_mib + 100, 10)
    print(f"held {holding.memory_used_mib - before.memory_used_mib} MiB; stopped in {stopped_s:.2f} s; freed")
