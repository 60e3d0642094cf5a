"""Fixtures: a fresh, migrated store per test (SQLite file, or a PostgreSQL schema per run), a runtime with a
controllable clock, an API client, and small factories."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from gpulease.runtime import Runtime
from gpulease.services import keys, screening
from gpulease.services.context import SYSTEM
from gpulease.settings import Settings
from gpulease.store.db import Store, upgrade
from tests.webhook_receiver import receiver  # noqa: F401  (a fixture: a webhook receiver on 127.0.0.1)

PG_URL = os.environ.get("GPULEASE_TEST_DATABASE_URL")  # e.g. postgresql://postgres@127.0.0.1:5432/test
LIST_TABLES = {"list_versions", "list_entries", "alembic_version"}
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll until `predicate()` is true; fail naming `what` after `timeout_s`."""
    import time

    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.05)


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


def _pg_schema_url(schema: str) -> str:
    assert PG_URL
    base = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema},public"


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated store with the bundled lists loaded, made once per test run."""
    now = datetime.now(UTC)
    if PG_URL:
        schema = f"t_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as c:
            c.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA public"))
            c.execute(text(f"CREATE SCHEMA {schema}"))
        url = _pg_schema_url(schema)
        upgrade(url)
        store = Store(url)
        with store.transaction() as s:
            screening.seed_bundled_lists(s, now)
        store.dispose()
        yield url
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    else:
        path = tmp_path_factory.mktemp("template") / "template.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        store = Store(url)
        with store.transaction() as s:
            screening.seed_bundled_lists(s, now)
        store.dispose()
        yield str(path)


def fresh_db_url(template_db: str, tmp_dir: Path) -> str:
    """An empty store with the bundled lists: a copy of the template (SQLite) or the template wiped (PostgreSQL)."""
    if PG_URL:
        engine = create_engine(template_db)
        with engine.begin() as c:
            tables = [
                r[0] for r in c.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))
            ]
            wipe = [t for t in tables if t not in LIST_TABLES]
            c.execute(text(f"TRUNCATE {', '.join(wipe)} RESTART IDENTITY CASCADE"))
            # Every store's audit log starts with one record (migration 0005); put it back as a new store has it.
            c.execute(
                text(
                    "INSERT INTO audit_log (at, actor, action, subject, data) "
                    "VALUES (date_trunc('second', now()), 'system', 'audit.started', 'audit_log', '{}')"
                )
            )
            # Keep the bundled list version (loading it per test is slow); drop any a test loaded.
            first = c.execute(text("SELECT min(id) FROM list_versions")).scalar()
            c.execute(text("DELETE FROM list_entries WHERE version_id <> :v"), {"v": first})
            c.execute(text("DELETE FROM list_versions WHERE id <> :v"), {"v": first})
            c.execute(text("UPDATE list_versions SET in_force = true"))
        engine.dispose()
        return template_db
    path = tmp_dir / f"gpulease-{uuid.uuid4().hex[:8]}.db"
    shutil.copy(template_db, path)
    return f"sqlite:///{path}"


@pytest.fixture
def db_url(template_db: str, tmp_path: Path) -> str:
    return fresh_db_url(template_db, tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


# Sandboxed runs need bubblewrap; CI installs it (.ci/run), so there a missing bwrap fails instead of skipping.
needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None and not os.environ.get("CI"), reason="bubblewrap (bwrap) is not installed"
)


@pytest.fixture
def sandbox_dir() -> Iterator[Path]:
    """Per-lease sandbox folders: outside pytest's private tmp folder, since a run's uid must reach them."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="gpulease-sandboxes-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def settings(db_url: str, tmp_path: Path, sandbox_dir: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url, stop_grace_s=2.0, sandbox_dir=sandbox_dir)


@pytest.fixture
def runtime(settings: Settings, clock: Clock) -> Iterator[Runtime]:
    from gpulease.backends import supervisor

    rt = Runtime(settings, clock=clock)
    yield rt
    rt.close()
    supervisor.stop_all(settings.runs_dir)  # runs outlive the server by design; not the test


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    from gpulease.api.app import create_app

    with TestClient(create_app(runtime, background=False)) as c:
        yield c


@dataclass
class Keys:
    operator: str
    compliance: str

    def h(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    @property
    def op(self) -> dict[str, str]:
        return self.h(self.operator)

    @property
    def co(self) -> dict[str, str]:
        return self.h(self.compliance)


@pytest.fixture
def api_keys(runtime: Runtime, clock: Clock) -> Keys:
    with runtime.work() as w:
        return Keys(
            keys.create_key(w, actor=SYSTEM, role="operator"),
            keys.create_key(w, actor=SYSTEM, role="compliance"),
        )


class Facility:
    """Factories that go through the API, as a user would."""

    def __init__(self, client: TestClient, keys: Keys, runtime: Runtime) -> None:
        self.c, self.k, self.rt = client, keys, runtime

    def nodes(
        self,
        n: int,
        model: str = "A100-80GB",
        gpus: int = 8,
        cluster: str = "c1",
        site: str = "s1",
        prefix: str | None = None,
    ) -> list[dict[str, Any]]:
        out = []
        for i in range(n):
            r = self.c.post(
                "/api/v1/nodes",
                headers=self.k.op,
                json={
                    "site": site,
                    "cluster": cluster,
                    "name": f"{prefix or cluster}-n{i:03d}",
                    "gpu_model": model,
                    "gpu_count": gpus,
                },
            )
            assert r.status_code == 201, r.text
            out.append(r.json())
        return out

    def prices(self, model: str = "A100-80GB", **rates: str) -> None:
        defaults = {"on_demand": "1.25", "reserved": "1.00", "long_term": "600", "interruptible": "0.50"}
        defaults.update(rates)
        for plan, rate in defaults.items():
            r = self.c.put("/api/v1/prices", headers=self.k.op, json={"gpu_model": model, "plan": plan, "rate": rate})
            assert r.status_code == 200, r.text

    def customer(self, name: str = "Acme Robotics Inc.", country: str = "US", **kyc: Any) -> dict[str, Any]:
        body = {
            "legal_name": name,
            "country": country,
            "address": "1 Market St, San Francisco",
            "incorporated_on": "2015-01-01",
            "end_use": "training vision models for warehouse robots",
            "owners": [{"name": f"{name} Holdings", "percent": 100}],
            **kyc,
        }
        r = self.c.post("/api/v1/customers", headers=self.k.op, json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def customer_key(self, customer_id: int) -> dict[str, str]:
        return self.k.h(self.rt.perform(keys.create_key, actor=SYSTEM, role="customer", customer_id=customer_id))

    def lease(self, headers: dict[str, str] | None = None, expect: int = 201, **body: Any) -> dict[str, Any]:
        r = self.c.post("/api/v1/leases", headers=headers or self.k.op, json=body)
        assert r.status_code == expect, r.text
        return dict(r.json())


@pytest.fixture
def facility(client: TestClient, api_keys: Keys, runtime: Runtime) -> Facility:
    return Facility(client, api_keys, runtime)


@pytest.fixture
def fresh_runtime(
    template_db: str, tmp_path: Path
) -> Callable[[], AbstractContextManager[tuple[Runtime, Clock, Facility]]]:
    """A new store, runtime, API client and facility per call: for property tests that need one per example."""
    from gpulease.api.app import create_app

    @contextmanager
    def make() -> Iterator[tuple[Runtime, Clock, Facility]]:
        url = fresh_db_url(template_db, tmp_path)
        clock = Clock()
        rt = Runtime(Settings(data_dir=tmp_path / "data", database_url=url, stop_grace_s=2.0), clock=clock)
        try:
            with rt.work() as w:
                ks = Keys(
                    keys.create_key(w, actor=SYSTEM, role="operator"),
                    keys.create_key(w, actor=SYSTEM, role="compliance"),
                )
            with TestClient(create_app(rt, background=False)) as client:
                yield rt, clock, Facility(client, ks, rt)
        finally:
            rt.close()

    return make


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ACME = {
    "legal_name": "Acme Robotics Inc.",
    "country": "US",
    "address": "1 Market St, San Francisco",
    "incorporated_on": "2015-01-01",
    "end_use": "training vision models for warehouse robots",
    "owners": [{"name": "Acme Robotics Inc. Holdings", "percent": 100}],
}


def seed_over_http(c: httpx.Client, op: dict[str, str], *, nodes: list[str], rates: dict[str, str]) -> dict[str, Any]:
    """Through a running server's API, as an operator: 8-GPU A100 nodes of these names (site s1, cluster c1), these
    on-demand/reserved/… rates, and a cleared customer (returned)."""
    for name in nodes:
        body = {"site": "s1", "cluster": "c1", "name": name, "gpu_model": "A100-80GB", "gpu_count": 8}
        assert c.post("/api/v1/nodes", headers=op, json=body).status_code == 201
    for plan, rate in rates.items():
        r = c.put("/api/v1/prices", headers=op, json={"gpu_model": "A100-80GB", "plan": plan, "rate": rate})
        assert r.status_code == 200
    customer: dict[str, Any] = c.post("/api/v1/customers", headers=op, json=ACME).json()
    assert customer["compliance_status"] == "cleared", customer
    return customer


class ServeProcess:
    """`gpulease serve` in a process of its own, as an operator runs it (several of them on one database)."""

    def __init__(self, env: dict[str, str], log: Path, *, upgrade_db: bool = True, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from gpulease.cli import app; app()", "serve", "--port", str(self.port)]
            + ([] if upgrade_db else ["--no-upgrade-db"])
            + ([] if workers == 1 else ["--workers", str(workers)]),
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"gpulease serve exited with {self.proc.returncode} (see {self.log})")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout_s: float = 60) -> ServeProcess:
        """Wait until it answers /healthz; stop it and fail the test if it does not within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"gpulease serve did not start (see {self.log})")
            time.sleep(0.1)
        return self

    def health(self) -> dict[str, str]:
        return dict(httpx.get(self.url + "/healthz", timeout=5).json())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def live_server(runtime: Runtime) -> Iterator[str]:
    """uvicorn on a free local port, in a thread, over the test's runtime: for real HTTP clients."""
    import threading
    import time

    import httpx
    import uvicorn

    from gpulease.api.app import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(runtime, background=False), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name="uvicorn", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail("the test server did not start")
        time.sleep(0.05)
    yield base
    srv.should_exit = True
    thread.join(timeout=10)
