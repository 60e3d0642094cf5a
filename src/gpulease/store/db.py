"""Engine, sessions and transactions for both stores.

SQLite: every transaction starts with BEGIN IMMEDIATE, so writers are serialised by the database itself
(no two placements can read the same free GPU). PostgreSQL: placement takes a transaction-scoped advisory
lock per GPU model, and an exclusion constraint on (gpu, time range) is the last line of defence.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any, ClassVar

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from gpulease.queueing import FairLock
from gpulease.store import idempotency
from gpulease.store.prepared import Prepared

log = logging.getLogger("gpulease.store")

READ_ONLY = "gpulease_read_only"
WAL_AUTOCHECKPOINT_PAGES = 10_000  # SQLite: about 40 MB of write-ahead log
MIGRATIONS = Path(__file__).parent / "migrations"
_BEGIN, _BEGIN_IMMEDIATE = Prepared(text("BEGIN")), Prepared(text("BEGIN IMMEDIATE"))  # SQLite


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let us issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # WAL with NORMAL: a commit survives the process being killed (kill -9), not a power cut before the
            # next checkpoint; it no longer waits for an fsync per transaction.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            # A server moves the log into the database from a thread of its own (Store.checkpoint), outside the
            # writer lock; SQLite's own checkpoint, run by the commit that crosses this many pages of log, stays as
            # a backstop. At its default of 1,000 pages a booking + end writes ~30 pages, so under load a commit
            # copied the log and waited for the disk 2-3 times a second (~11 ms each here) while every writer queued.
            cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A read-only unit (Store.reading) takes no write lock: in WAL mode it reads a snapshot beside writers.
            # On the driver's cursor (store/prepared.py): every transaction begins so, twice per booking + end.
            (_BEGIN if conn.get_execution_options().get(READ_ONLY) else _BEGIN_IMMEDIATE).rows_on(conn)

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, pool_size=20, max_overflow=40)
    _ping_when_idle(engine)
    return engine


PING_IDLE_S = 1.0  # a pooled connection unused this long is pinged before it is handed out
_LAST_USED = "gpulease_last_used"


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's `pool_pre_ping`, but only for a connection that sat idle in the pool: under load every
    connection comes back within milliseconds, and the ping was a round trip per request (two per booking + end,
    ~7% of a booking's round trips). A database restarted or a connection cut while idle is still found before
    use: the pool then drops it and connects afresh, as with `pool_pre_ping`."""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get(_LAST_USED)
        if last is None or time.monotonic() - last < PING_IDLE_S:
            return  # new (just connected) or just used
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as e:  # the pool drops this connection and hands out another (or a new one)
            raise DisconnectionError(f"connection lost while idle in the pool: {e}") from e


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision` by running the Alembic migrations (never create_all)."""
    command.upgrade(alembic_config(url), revision)


def advisory_lock(session: Session, name: str, *, wait: bool = True) -> bool:
    """Hold the transaction-scoped lock `name` across processes (PostgreSQL); False if busy and not `wait`.

    SQLite needs none: every transaction there is already the only writer (BEGIN IMMEDIATE).
    """
    if session.get_bind().dialect.name != "postgresql":
        return True
    key = zlib.crc32(name.encode())
    if wait:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        return True
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}))


@dataclass
class WriterLockStats:
    """SQLite: how this process's writers used its one write lock, since start. A server bound by the lock (rather
    than by CPU) shows it as `hold_s` growing by nearly a second per second."""

    transactions: int = 0
    wait_s: float = 0.0  # summed over the transactions: the time each waited for the lock
    hold_s: float = 0.0  # the time it was held, BEGIN IMMEDIATE to the commit or rollback
    # The holder's own CPU time while it held the lock (its Python and SQLite's C code): what is left of hold_s is
    # time the holder was ready but not running (waiting for the GIL behind this process's other threads) or
    # waiting for the disk.
    hold_cpu_s: float = 0.0
    # How many holds fell under each bound of BUCKETS (the last: above them all): one long hold stalls every
    # writer queued behind it, which the sums above do not show.
    BUCKETS: ClassVar[tuple[float, ...]] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
    holds: list[int] = field(default_factory=lambda: [0] * 9)
    # Short units (a booking, an end) the event loop ran itself, and those it handed to the thread pool because
    # the writer did not come to it in time (`Store.writer_soon`): many of these mean long writers are about.
    on_loop: int = 0
    to_pool: int = 0

    def note(self, waited: float, held: float, ran: float) -> None:
        self.transactions += 1
        self.wait_s += waited
        self.hold_s += held
        self.hold_cpu_s += ran
        self.holds[bisect_left(self.BUCKETS, held)] += 1

    def histogram(self) -> list[tuple[float, int]]:
        """(bound, holds at or under it) for each bound, the last one infinite: Prometheus's buckets."""
        return list(zip((*self.BUCKETS, float("inf")), accumulate(self.holds), strict=True))


class Store:
    """Owns the engine; hands out one-transaction sessions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = FairLock() if self.engine.dialect.name == "sqlite" else None
        self.writer_stats = WriterLockStats() if self._writer is not None else None
        self._readers = sessionmaker(self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)
        idempotency.install(self.sessions)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any exception.

        SQLite has one writer at a time: this process's writers queue on a lock of their own rather than in
        SQLite's busy handler, which polls with growing sleeps (seconds of tail latency under load), and in the
        order they came (queueing.FairLock)."""
        if self._writer is None:
            with self.sessions() as session, session.begin():
                yield session
            return
        asked = time.perf_counter()
        with self._writer:
            held = time.perf_counter()
            ran = time.thread_time()
            try:
                with self.sessions() as session, session.begin():
                    yield session
            finally:
                stats = self.writer_stats  # updated while the lock is still held: no two writers at once
                if stats is not None:
                    stats.note(held - asked, time.perf_counter() - held, time.thread_time() - ran)

    @contextmanager
    def writer_soon(self, wait_s: float) -> Iterator[bool]:
        """SQLite: hold the one writer lock for what follows if it is this thread's turn within `wait_s` seconds
        (True); False, holding nothing, if not, and always on PostgreSQL, which has no such lock. This thread's
        transactions inside take it again (it is re-entrant): a unit of work run on the event loop then never
        waits for another writer, and the loop waits at most `wait_s` behind others (api/routing.py)."""
        if self._writer is None:
            yield False
            return
        stats = self.writer_stats
        if not self._writer.try_acquire(wait_s):
            if stats is not None:
                stats.to_pool += 1
            yield False
            return
        if stats is not None:
            stats.on_loop += 1
        try:
            yield True
        finally:
            self._writer.release()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A transaction that only reads (an API key's look-up): on SQLite it does not wait for the writer."""
        with self._readers() as session, session.begin():
            yield session

    def checkpoint(self) -> tuple[int, int] | None:
        """SQLite: copy the write-ahead log into the database file without waiting for readers or writers (a
        passive checkpoint), so that commits never have to. Returns (pages in the log, pages copied); None on
        PostgreSQL. Takes no writer lock: writers go on appending to the log meanwhile."""
        if self._writer is None:
            return None
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            _busy, log_pages, copied = cur.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            cur.close()
        finally:
            conn.close()
        return int(log_pages), int(copied)

    def lock(self, session: Session, name: str) -> None:
        """Serialise a critical section across processes (PostgreSQL); SQLite is serialised already."""
        advisory_lock(session, name)

    def listen(
        self,
        channel: str,
        stop: threading.Event,
        on_payload: Callable[[str], None],
        *,
        on_connect: Callable[[], None] = lambda: None,
    ) -> None:
        """PostgreSQL: hand every NOTIFY payload on `channel` to `on_payload` until `stop` is set (blocking; run it
        in a thread). Reconnects after an error; `on_connect` runs each time listening (re)starts."""
        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    on_connect()
                    while not stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            on_payload(note.payload)
            except Exception:
                if stop.is_set():
                    return
                log.exception("listening on %s failed; reconnecting", channel)
                stop.wait(1.0)

    def dispose(self) -> None:
        self.engine.dispose()
