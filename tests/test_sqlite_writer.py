"""SQLite's one writer: what it shows in /metrics, and the checkpoints kept out of it.

The server copies the write-ahead log into the database from a thread of its own, so that no commit
(holding the store's one writer lock) has to: at SQLite's default of 1,000 pages, under load, a commit copied the
log and waited for the disk two or three times a second while every other writer queued behind it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gpulease import runtime as runtime_module
from gpulease.runtime import Runtime
from gpulease.settings import Settings
from gpulease.store.db import WAL_AUTOCHECKPOINT_PAGES, Store, WriterLockStats, upgrade
from tests.conftest import Keys


def _write(store: Store, rows: int) -> None:
    with store.transaction() as s:
        s.execute(text("CREATE TABLE IF NOT EXISTS filler (x BLOB)"))
        s.execute(text("INSERT INTO filler (x) VALUES (randomblob(3000))"), [{}] * rows)


def test_commits_leave_the_log_to_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(f"sqlite:///{path}")
    try:
        with store.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_AUTOCHECKPOINT_PAGES
        _write(store, 1)
        before = path.stat().st_size
        _write(store, 1500)  # about 1,500 pages of log: past SQLite's default threshold, below ours
        assert path.stat().st_size == before  # no commit copied the log into the database
        done = store.checkpoint()
        assert done is not None
        pages, copied = done
        assert pages >= 1500 and copied == pages
        assert path.stat().st_size > before + 1000 * 3000
    finally:
        store.dispose()


def test_postgresql_has_no_log_to_checkpoint() -> None:
    store = Store("postgresql://postgres@127.0.0.1:5432/none")  # no connection is made
    assert store.checkpoint() is None


def test_the_server_checkpoints_on_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_module, "WAL_CHECKPOINT_S", 0.05)
    path = tmp_path / "s.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    rt = Runtime(Settings(data_dir=tmp_path / "data", database_url=url))
    rt.start()
    try:
        _write(rt.store, 1)
        time.sleep(0.2)
        before = path.stat().st_size
        _write(rt.store, 1500)
        deadline = time.monotonic() + 10
        while path.stat().st_size <= before + 1000 * 3000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_size > before + 1000 * 3000
    finally:
        rt.close()


def test_hold_times_are_counted_by_bucket() -> None:
    stats = WriterLockStats()
    for held in (0.001, 0.004, 0.03, 0.3, 2.0):
        stats.note(0.0, held, held / 2)
    assert stats.transactions == 5
    assert stats.hold_s == pytest.approx(2.335)
    assert stats.hold_cpu_s == pytest.approx(2.335 / 2)
    counts = dict(stats.histogram())
    assert counts[0.005] == 2 and counts[0.025] == 2 and counts[0.05] == 3 and counts[0.25] == 3
    assert counts[0.5] == 4 and counts[1.0] == 4 and counts[float("inf")] == 5


def test_metrics_show_the_writer(runtime: Runtime, client: TestClient, api_keys: Keys) -> None:
    if runtime.store.is_postgres:
        pytest.skip("PostgreSQL has no writer lock of the process")
    client.post("/api/v1/customers", headers=api_keys.op, json={"name": "Writer Test GmbH", "country": "DE"})
    text = client.get("/metrics", headers=api_keys.op).text
    assert 'gpulease_sqlite_write_lock_hold_seconds_bucket{le="+Inf"}' in text
    assert "gpulease_sqlite_write_lock_held_cpu_seconds_total" in text
    assert "gpulease_sqlite_wal_pages" in text
