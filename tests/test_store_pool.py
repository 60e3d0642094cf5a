"""PostgreSQL's connection pool: a connection that sat idle is checked before use, one just used is not."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from gpulease.store import db
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL's pool (GPULEASE_TEST_DATABASE_URL)")


@pytest.fixture
def engine() -> Iterator[Engine]:
    assert PG_URL
    e = db.make_engine(PG_URL)
    yield e
    e.dispose()


def _pid(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    seen: list[object] = []
    real = engine.dialect.do_ping

    def counted(dbapi_conn: Any) -> bool:
        seen.append(dbapi_conn)
        return bool(real(dbapi_conn))

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return seen


def test_a_connection_used_just_now_goes_out_without_a_round_trip(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings = _pings(engine, monkeypatch)
    first = _pid(engine)
    for _ in range(5):
        assert _pid(engine) == first  # the same connection, back from the pool at once
    assert pings == []


def test_a_connection_cut_while_idle_is_replaced_before_use(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "PING_IDLE_S", 0.05)
    pings = _pings(engine, monkeypatch)
    first = _pid(engine)
    assert PG_URL
    with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    time.sleep(0.1)
    # Without the check the first statement would fail ("server closed the connection unexpectedly").
    assert _pid(engine) != first
    assert len(pings) == 1
