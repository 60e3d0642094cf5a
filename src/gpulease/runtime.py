"""The running system: store, clock, screening index and execution, plus the background tick and audit sealer.

One Runtime per server process (and one per test); the API, the web pages and the CLI's `serve` hold it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from gpulease.audit import AuditLog
from gpulease.services import keys, lifecycle, telemetry
from gpulease.services.context import Actor, utcnow
from gpulease.settings import Settings, get_settings
from gpulease.store.db import Store

if TYPE_CHECKING:
    from gpulease.services.execution import Executor
    from gpulease.services.screening import ScreeningRegistry

log = logging.getLogger("gpulease.runtime")


class Runtime:
    def __init__(
        self, settings: Settings | None = None, *, store: Store | None = None, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.settings = settings or get_settings()
        self.store = store or Store(self.settings.db_url)
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._screening: ScreeningRegistry | None = None
        self._executor: Executor | None = None
        self._lock = threading.Lock()
        self._last_sample: datetime | None = None
        self.audit_log = AuditLog(self.store, self.settings, clock)  # seals and checkpoints the audit chain

    # -- lazily built parts (the screening index takes a moment; tests that never screen skip it)
    @property
    def screening(self) -> ScreeningRegistry:
        with self._lock:
            if self._screening is None:
                from gpulease.services.screening import ScreeningRegistry

                self._screening = ScreeningRegistry(self.store)
            return self._screening

    @property
    def executor(self) -> Executor:
        with self._lock:
            if self._executor is None:
                from gpulease.services.execution import Executor

                self._executor = Executor(self)
            return self._executor

    def authenticate(self, key: str) -> Actor | None:
        with self.store.transaction() as s:
            return keys.authenticate(s, key)

    def tick(self) -> lifecycle.TickResult:
        """Advance leases to the current time, then bring execution in line with them.

        A lease the clock cannot advance is logged, alerted once and retried on the next tick; it never
        holds back the others (each lease is advanced in its own savepoint).
        """
        with self.store.transaction() as s:
            now = self.clock()
            result = lifecycle.tick(s, self.store, now)
        if result.failed:
            with self.store.transaction() as s:
                lifecycle.report_failures(s, result.failed, now)
        if self._last_sample is None or (now - self._last_sample).total_seconds() >= self.settings.telemetry_interval_s:
            self._last_sample = now
            try:
                with self.store.transaction() as s:
                    telemetry.sample_active_leases(s, now)
            except Exception:  # telemetry is best effort; it must not stop the clock
                log.exception("telemetry sampling failed")
        self.executor.reconcile()  # stops runs of leases that ended and closes them (ending -> ended)
        return result

    def after_lease_change(self) -> None:
        """A lease ended, was cancelled or held: stop what must stop now rather than at the next tick."""
        self.executor.reconcile()

    def record_refusal(self, actor: Actor, customer_id: int | None, reason: str) -> None:
        from gpulease.services.customers import audit_refusal

        with self.store.transaction() as s:
            audit_refusal(s, actor, customer_id, reason, self.clock())

    def start(self) -> None:
        if self._thread is not None:
            return
        stopped = self.executor.recover()
        if stopped:
            log.warning("stopped %d run(s) left from before a restart: %s", len(stopped), stopped)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="gpulease-tick", daemon=True)
        self._thread.start()
        self.audit_log.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.tick_seconds):
            try:
                self.tick()
            except Exception:  # keep ticking: one bad lease must not stop every other lease's clock
                log.exception("tick failed")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._executor is not None:
            self._executor.close()
        self.audit_log.stop()  # after the last change: seals it and signs the final head
        self.store.dispose()
