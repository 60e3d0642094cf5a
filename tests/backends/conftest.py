"""Shared fixtures for backend tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gpulease.backends.base import LeasedGpus, RunSpec


@pytest.fixture
def make_spec(tmp_path: Path) -> Callable[..., RunSpec]:
    def make(
        run_id: str,
        command: list[str],
        lease_id: int = 1,
        node: str = "node-a",
        indices: tuple[int, ...] = (3, 1),
        env: dict[str, str] | None = None,
        image: str | None = None,
        customer_id: int | None = 7,
        cwd: str | None = None,
        cores: tuple[int, ...] = (),
    ) -> RunSpec:
        return RunSpec(
            run_id=run_id,
            lease_id=lease_id,
            command=command,
            env=env or {},
            cwd=cwd,
            gpus=[LeasedGpus(lease_id, node, indices, cores=cores)],
            log_path=tmp_path / "logs" / f"{run_id}.log",
            image=image,
            customer_id=customer_id,
        )

    return make
