"""schemathesis with every check against a real server over the test's store (SQLite, or PostgreSQL when the suite
runs on it): `st run --checks all`, i.e. no server error, documented status codes, content types and headers,
responses that match their schemas, schema-invalid requests refused and schema-valid ones accepted (see
schemathesis.toml for the few operations whose business rules a schema cannot state), unsupported methods
answered 405 with the right Allow header, and requests without a key refused.

All phases run (the schema's examples, boundary and negative coverage, random fuzzing, stateful sequences that
follow what earlier answers created) with a bounded number of examples per operation and a fixed seed, so a run
takes about a minute per store and a finding reproduces. GPULEASE_FUZZ_EXAMPLES and GPULEASE_FUZZ_SEED widen or
vary the search.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from gpulease.settings import Settings
from tests.conftest import Clock, Facility

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = os.environ.get("GPULEASE_FUZZ_EXAMPLES", "25")
SEED = os.environ.get("GPULEASE_FUZZ_SEED", "20261102")


@pytest.fixture
def settings(db_url: str, tmp_path: Path, sandbox_dir: Path) -> Settings:
    """The suite's settings without the per-key rate limit: the fuzzer sends thousands of requests a minute."""
    return Settings(
        data_dir=tmp_path / "data", database_url=db_url, stop_grace_s=1.0, sandbox_dir=sandbox_dir, rate_limit_per_s=0
    )


def _seed(f: Facility, clock: Clock) -> None:
    """A small facility whose ids the config's dictionaries name (a fresh store numbers them from 1)."""
    f.nodes(3)  # nodes 1-3
    f.prices()
    acme = f.customer()  # customer 1, cleared
    f.customer("iFlytek Co., Ltd.", "CN", owners=[])  # customer 2, under review: review item 1
    hour = timedelta(hours=1)
    f.lease(customer_id=acme["id"], gpu_model="A100-80GB", gpu_count=2)  # lease 1, active, open-ended
    f.lease(customer_id=acme["id"], gpu_model="A100-80GB", gpu_count=1, end=(clock() + 5 * hour).isoformat())
    f.lease(  # lease 3, scheduled
        customer_id=acme["id"],
        gpu_model="A100-80GB",
        gpu_count=4,
        plan="reserved",
        start=(clock() + 24 * hour).isoformat(),
        end=(clock() + 48 * hour).isoformat(),
    )
    f.lease(customer_id=acme["id"], gpu_model="A100-80GB", gpu_count=1, plan="interruptible")  # lease 4


def _schemathesis(base: str, key: str, tmp: Path, *extra: str, examples: str = EXAMPLES) -> tuple[int, str]:
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        examples,
        "--seed",
        SEED,
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {key}",
        *extra,
    ]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp, env=env, check=False)
    return done.returncode, done.stdout + done.stderr


def test_schemathesis_with_every_check_finds_nothing(
    live_server: str, facility: Facility, clock: Clock, tmp_path: Path
) -> None:
    _seed(facility, clock)
    code, out = _schemathesis(live_server, facility.k.operator, tmp_path)
    assert code == 0, out[-30_000:]
    assert "Tested: 40" in out or "Tested:" in out, out[-5000:]
    # The compliance officer's own operations (deciding reviews needs that role).
    code, out = _schemathesis(
        live_server,
        facility.k.compliance,
        tmp_path,
        "--include-path-regex",
        "/(reviews|screen|alerts|lists|audit)",
        examples="10",
    )
    assert code == 0, out[-30_000:]
    # A customer's key over the tenant's operations: another tenant's objects and staff-only ones refused alike.
    customer = facility.customer_key(1)["Authorization"].removeprefix("Bearer ")
    code, out = _schemathesis(
        live_server,
        customer,
        tmp_path,
        "--include-path-regex",
        "/(leases|customers|availability|quotes|prices)",
        examples="10",
    )
    assert code == 0, out[-30_000:]
