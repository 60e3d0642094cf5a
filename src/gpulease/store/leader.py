"""Which server process runs the lease clock: one at a time per database, chosen by the database itself.

PostgreSQL: the clock belongs to whoever holds a session advisory lock, taken with `pg_try_advisory_lock` on a
connection of its own that stays open for as long as the process holds the clock. When the holder dies (killed,
its machine gone, its connection cut), PostgreSQL ends its session and the lock goes with it; the other
processes try to take it every `clock_takeover_s` and one of them succeeds. The holder checks its connection
before every tick, so a holder that lost it (a network cut, a database failover) stops ticking at once.

The lock is keyed by the database and the schema, so two installations sharing one PostgreSQL server (or test
runs in their own schemas) each have a clock. As a second line of defence, each tick also takes a
transaction-scoped lock (`try_tick_lock`): two ticks never overlap, even if a deposed holder had not noticed yet.

SQLite: one process owns the file; its clock just runs.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from gpulease.store.db import Store

log = logging.getLogger("gpulease.clock")

# pg_advisory_lock(int4, int4) keys: (CLASS, hashtext(database:schema)); their own space beside the bigint
# keys of the transaction locks in store/db.py.
CLOCK_LOCK_CLASS = 0x67_6C_63  # "glc"
TICK_LOCK_CLASS = 0x67_6C_74  # "glt"
_SCOPE = "hashtext(current_database() || ':' || current_schema())"


def process_name() -> str:
    """How a server process is named in /healthz, /metrics and the logs: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ClockLeadership:
    """This process's claim on the lease clock. `hold()` says whether it holds it now, trying to take it when
    it does not (at most every `retry_s`)."""

    def __init__(self, store: Store, *, retry_s: float = 1.0) -> None:
        self.store = store
        self.retry_s = retry_s
        self.name = process_name()
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._leader = not store.is_postgres  # SQLite: the one process that owns the file

    @property
    def is_leader(self) -> bool:
        """Whether this process held the clock when it last looked (no database round trip)."""
        return self._leader

    def hold(self) -> bool:
        """True if this process holds the clock now: checks the lock's connection, or tries to take the lock."""
        if not self.store.is_postgres:
            return True
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT 1"))
                    return True
                except Exception:
                    log.warning("%s lost its connection to the database: it no longer holds the clock", self.name)
                    self._drop()
                    return False
            try:
                conn = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            except Exception:
                log.warning("cannot reach the database to take the clock", exc_info=True)
                return False
            try:
                got = bool(conn.execute(text(f"SELECT pg_try_advisory_lock({CLOCK_LOCK_CLASS}, {_SCOPE})")).scalar())
            except Exception:
                conn.invalidate()
                conn.close()
                return False
            if not got:
                conn.close()  # back to the pool: it holds no lock
                return False
            self._conn, self._leader = conn, True
            log.info("%s holds the lease clock", self.name)
            return True

    def release(self) -> None:
        """Let go of the clock (at shutdown): another process takes it over at once."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute(text(f"SELECT pg_advisory_unlock({CLOCK_LOCK_CLASS}, {_SCOPE})"))
                except Exception:
                    log.debug("unlocking the clock failed; closing its connection releases it", exc_info=True)
                self._drop()

    def _drop(self) -> None:
        conn, self._conn, self._leader = self._conn, None, False
        if conn is not None:
            try:
                conn.invalidate()  # never back to the pool: a session lock must not outlive its holder's claim
                conn.close()
            except Exception:
                log.debug("closing the clock's connection failed", exc_info=True)


def try_tick_lock(session: Session) -> bool:
    """Hold the clock's transaction-scoped lock for this tick, or False when another tick holds it now."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(text(f"SELECT pg_try_advisory_xact_lock({TICK_LOCK_CLASS}, {_SCOPE})")))
