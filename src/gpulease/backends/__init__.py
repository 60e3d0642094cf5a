"""Execution backends: where a lease's runs actually execute. One interface, several places."""

from __future__ import annotations

from typing import Any

from gpulease.backends.base import (
    BackendError,
    ExecutionBackend,
    LeasedGpus,
    RunSpec,
    RunState,
    RunStatus,
)

BACKEND_KINDS = ("local", "ray", "slurm")


def get_backend(kind: str, **options: Any) -> ExecutionBackend:
    """The backend named `kind` ("local", "ray" or "slurm"), built with backend-specific `options`."""
    if kind == "local":
        from gpulease.backends.local import LocalBackend

        return LocalBackend(**options)
    if kind == "ray":
        try:
            from gpulease.backends.ray_backend import RayBackend
        except ImportError as exc:  # ray is an optional extra
            raise BackendError(f"the ray backend needs Ray installed (pip install 'gpulease[ray]'): {exc}") from exc
        return RayBackend(**options)
    if kind == "slurm":
        from gpulease.backends.slurm import SlurmBackend

        return SlurmBackend(**options)
    raise BackendError(f"unknown backend {kind!r}; known: {', '.join(BACKEND_KINDS)}")


__all__ = [
    "BACKEND_KINDS",
    "BackendError",
    "ExecutionBackend",
    "LeasedGpus",
    "RunSpec",
    "RunState",
    "RunStatus",
    "get_backend",
]
