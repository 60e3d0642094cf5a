"""The running system: store, settings, clock, screening index and execution, plus the background tick and
the audit sealer.

One Runtime per server process (and one per test); the API, the web pages and the CLI hold it. Every use case
runs in a unit of work the Runtime opens (`work()`): one transaction, the Runtime's own settings and clock,
and after the commit the effects the use case asked for (stopping a lease's runs, …).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from gpulease import audit
from gpulease.audit import AuditLog
from gpulease.outbox import DeliveryWorker
from gpulease.queueing import FairSemaphore
from gpulease.services import billing, keys, lifecycle, node_failure, notifications, slurm_mirror, telemetry
from gpulease.services.calendars import CalendarBusy, Calendars
from gpulease.services.context import Actor, utcnow
from gpulease.services.errors import ServiceError
from gpulease.services.execution import Executor
from gpulease.services.screening import ScreeningRegistry
from gpulease.services.work import (
    AuditEntry,
    DeliverWebhooks,
    Effect,
    LeaseDisplaced,
    LeasesChanged,
    NotifyPreemption,
    StopRuns,
    Work,
)
from gpulease.settings import Settings
from gpulease.store.db import Store
from gpulease.store.leader import ClockLeadership, try_tick_lock

log = logging.getLogger("gpulease.runtime")

P = ParamSpec("P")
T = TypeVar("T")

AUTH_CACHE_S = 5.0  # an API key's actor is remembered this long (a revocation in this process clears it at once)
# Keys in memory are looked up again, together, once they are this old: a key in use never expires between two
# requests, so no request waits for its look-up (keys first used together used to expire together, and under load
# every client stalled behind their look-ups, which need a request thread, every AUTH_CACHE_S).
AUTH_REFRESH_S = AUTH_CACHE_S / 2
CONFLICT_RETRIES = 5  # an action refused by the exclusion constraint is retried with calendars read afresh
CALENDAR_TRIM_S = 60.0  # bookings that ended are dropped from the calendars in memory this often
WAL_CHECKPOINT_S = 1.0  # SQLite: the write-ahead log is copied into the database this often (Store.checkpoint)


def _lease_ids(e: StopRuns | LeaseDisplaced) -> tuple[int, ...]:
    return e.lease_ids if isinstance(e, StopRuns) else (e.lease_id,)


def _double_booked(e: DBAPIError) -> bool:
    return isinstance(e, IntegrityError) and "no_double_booking" in str(e.orig)


def _deadlocked(e: DBAPIError) -> bool:
    """PostgreSQL chose this transaction to break a deadlock (an end and a preemption crossing): safe to retry."""
    return "deadlock detected" in str(e.orig)


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        clock: Callable[[], datetime] = utcnow,
        supervises_runs: bool = True,
    ) -> None:
        """`supervises_runs=False` for one-off admin runtimes (the CLI's): they leave stopping runs to the
        server, whose executor started them, rather than marking runs stopped that they cannot stop."""
        self.settings = settings
        self.store = store or Store(settings.db_url)
        self.clock = clock
        self.supervises_runs = supervises_runs
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_sample: datetime | None = None
        self._last_node_poll: datetime | None = None
        # Several server processes on one PostgreSQL: one of them runs the clock (store/leader.py).
        self.leadership = ClockLeadership(self.store, retry_s=settings.clock_takeover_s)
        # The index itself is built lazily, on the first screening (tests that never screen skip it).
        self.screening = ScreeningRegistry(self.store)
        self.executor = Executor(self)
        self.audit_log = AuditLog(self.store, self.settings, clock)  # seals and checkpoints the audit chain
        self.deliveries = DeliveryWorker(self.perform, self.settings, clock)  # sends the webhook outbox
        self._auth_cache: dict[str, tuple[float, Actor]] = {}  # sha256 of a key -> (when, its actor)
        self._slots = FairSemaphore(settings.work_slots or 2 * (os.cpu_count() or 1))
        self._in_work = threading.local()
        self._auth_generation = 0  # bumped when keys change: a refresh that read before must not write after
        # The capacity calendars in memory, kept current on commit (and from other processes on PostgreSQL).
        self.webhooks = notifications.WebhookDirectory()  # who listens to lease events, kept like the keys
        self.calendars = Calendars(
            self.store, on_keys_changed=self.forget_keys, on_webhooks_changed=self.webhooks.clear
        )
        billing.install(self.store.sessions)  # compute added at each commit (after the calendars' version bump)
        self._listener: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self.wal_pages = 0  # SQLite: pages in the write-ahead log at the last checkpoint (a gauge in /metrics)
        self._last_trim = 0.0

    # -- units of work ---------------------------------------------------------------------------------

    @contextmanager
    def work(self) -> Iterator[Work]:
        """One transaction for one use case; its effects are carried out once it has committed.

        A refused action that must stay on record (a lease refused to a customer not cleared) has its audit
        entry written in a transaction of its own, since the action's own was rolled back.
        """
        try:
            with self._slot(), self.store.transaction() as s:
                w = self._unit(s)
                yield w
        except ServiceError as e:
            if e.record is not None:
                self._keep_record(e.record)
            raise
        deferred: list[Effect] | None = getattr(self._in_work, "deferred", None)
        if deferred is not None:  # a unit on the event loop: its caller carries them out (`on_this_thread`)
            deferred.extend(w.effects)
        else:
            self.carry_out(w.effects)

    @contextmanager
    def on_this_thread(self, wait_s: float) -> Iterator[list[Effect] | None]:
        """Units of work run on the calling thread, the event loop's: yields the list their after-commit effects
        are collected in, for the caller to carry out (`carry_out`, in the thread pool when `effects_may_block`),
        or None, having run nothing, when they would wait longer than `wait_s` for SQLite's writer (a long unit
        holds it: run them in the thread pool instead, and the loop goes on serving).

        Only SQLite: its writer lock is held for them from here, so a unit never waits for another writer in the
        middle. Measured (`api_load.py --store sqlite`, 32 clients): run in a worker thread, a booking's unit held
        the writer 6.9 ms, 2 ms of it waiting for the interpreter's lock that the event loop and other workers
        held between its statements, and handing each request to a worker and back cost CPU of its own; on the
        loop it holds it 4.4-4.7 ms, and the server's CPU per booking + end fell by a fifth (docs/benchmarks.md).
        On PostgreSQL a unit waits on its round trips to the server, during which the loop must go on serving:
        never there (api/routing.py)."""
        with self.store.writer_soon(wait_s) as held:
            if not held:
                yield None
                return
            effects: list[Effect] = []
            self._in_work.deferred = effects
            try:
                yield effects
            finally:
                self._in_work.deferred = None

    def effects_may_block(self, effects: Sequence[Effect]) -> bool:
        """Whether `carry_out(effects)` may wait on a backend, Slurm's commands or the store (so not on the event
        loop): it does not when no run is on the leases and no Slurm cluster needs telling, as for most bookings
        and ends."""
        if not self.supervises_runs or not effects:
            return False
        if any(isinstance(e, NotifyPreemption | LeaseDisplaced) for e in effects):
            return True
        stops = [e for e in effects if isinstance(e, StopRuns)]
        changed = stops or any(isinstance(e, LeasesChanged) for e in effects)
        if changed and self.mirrors_backends and not slurm_mirror.idle(self.executor):
            return True
        return any(e.runs_on_record for e in stops) or self.executor.knows_any(i for e in stops for i in e.lease_ids)

    @contextmanager
    def _slot(self) -> Iterator[None]:
        """One of `work_slots` units of work at once (a thread already in one does not wait again).

        Measured (32 threads booking and ending on PostgreSQL, in one process): 8.4 ms of user and 1.2 ms of system
        CPU per booking + end with one thread, 10.9 and 5.8 ms with 32, the difference spent switching threads
        over the interpreter's lock. Queued here, a request waits asleep; those let in run nearly as one would."""
        depth = getattr(self._in_work, "depth", 0)
        if getattr(self._in_work, "deferred", None) is not None:  # on the event loop, holding the writer: never waits
            yield
            return
        if depth == 0:
            self._slots.acquire(first=getattr(self._in_work, "again", False))
        self._in_work.depth = depth + 1
        try:
            yield
        finally:
            self._in_work.depth = depth
            if depth == 0:
                self._slots.release()

    def _unit(self, session: Session) -> Work:
        session.info["calendars"] = self.calendars
        return Work(
            session=session,
            store=self.store,
            now=self.clock(),
            settings=self.settings,
            screening=self.screening,
            calendars=self.calendars,
            webhooks=self.webhooks,
        )

    def perform(self, action: Callable[Concatenate[Work, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one use case in its own unit of work and return what it returns.

        Should the database's exclusion constraint ever refuse a placement (a calendar out of step with the
        store), every calendar is read afresh and the action retried; so is a transaction PostgreSQL rolled
        back to break a deadlock, and one that gave up waiting for a calendar (calendars.CalendarBusy)."""
        for attempt in range(CONFLICT_RETRIES + 1):
            # A retry waited its turn for a slot once already: it goes to the front of the queue, not the back
            # (with two server processes on PostgreSQL ~8% of bookings are retried, and those made the p99).
            self._in_work.again = attempt > 0
            try:
                with self.work() as w:
                    return action(w, *args, **kwargs)
            except CalendarBusy:  # rolled back: whatever it held is free for the one it may have blocked
                if attempt == CONFLICT_RETRIES:
                    raise
                log.info("a placement waited too long for its calendar; retrying")
                time.sleep(random.uniform(0, 0.05))
            except DBAPIError as e:
                if not (_double_booked(e) or _deadlocked(e)):
                    raise
                if attempt == CONFLICT_RETRIES:
                    if _double_booked(e):  # other processes keep taking these GPUs first: the client may retry
                        raise CalendarBusy(
                            "the GPUs chosen were taken by other bookings at the same moment, each time it was tried; "
                            "please try again"
                        ) from None
                    raise
                if _double_booked(e):
                    # Most often another server process committed those GPUs first: its NOTIFY brings them here in
                    # a moment, and the placement's version check reloads what has not come. A third refusal in
                    # a row may be a calendar out of step: every one is read afresh.
                    log.info("placement refused by the exclusion constraint; retrying")
                    self.calendars.spread_out()
                    if attempt > 1:
                        log.warning("placement refused by the exclusion constraint again; reading calendars afresh")
                        self.calendars.forget_all()
                    time.sleep(random.uniform(0, 0.02 * (attempt + 1)))
            finally:
                self._in_work.again = False
        raise AssertionError("unreachable")

    def carry_out(self, effects: Sequence[Effect]) -> None:
        """What must follow a commit. Runs stop now rather than at the next tick."""
        if any(isinstance(e, DeliverWebhooks) for e in effects):
            self.deliveries.wake()
        if not self.supervises_runs:
            return
        for e in effects:
            if isinstance(e, NotifyPreemption):
                self.executor.notify_preemption(e.lease_id, e.deadline)
            elif isinstance(e, LeaseDisplaced):  # its runs were on the lost node: stopped, whatever became of it
                self.executor.stop_lease_runs(e.lease_id, f"node {e.node} failed ({e.reason}); the lease {e.outcome}")
        mirror = self.mirrors_backends
        stopped = [e for e in effects if isinstance(e, StopRuns | LeaseDisplaced)]
        if stopped:  # their runs stop now; a lease without runs is closed by the tick
            look = any(not isinstance(e, StopRuns) or e.runs_on_record for e in stopped)
            self.executor.stop_leases([lid for e in stopped for lid in _lease_ids(e)], look=look, mirror=mirror)
        elif mirror and any(isinstance(e, LeasesChanged) for e in effects):
            self.executor.mirror_leases()  # Slurm: reservations and allocations follow the new windows

    def _keep_record(self, entry: AuditEntry) -> None:
        with self.store.transaction() as s:
            audit.append(
                s, at=self.clock(), actor=entry.actor, action=entry.action, subject=entry.subject, data=entry.data
            )

    def known_key(self, key: str) -> Actor | None:
        """The actor of a key looked up less than `AUTH_CACHE_S` ago, without asking the store (None: ask it)."""
        return self._remembered(keys.key_hash(key), self.clock().timestamp())

    def _remembered(self, digest: str, now: float) -> Actor | None:
        hit = self._auth_cache.get(digest)
        if hit is not None and 0 <= now - hit[0] < AUTH_CACHE_S:
            return hit[1]
        return None

    def authenticate(self, key: str) -> Actor | None:
        """The actor a key stands for; remembered for `AUTH_CACHE_S` (keys changed in this process clear it)."""
        # By the Runtime's clock: a key whose grace period ends is dropped as soon as the clock passes it (within
        # `AUTH_CACHE_S`), and a test that moves the clock sees it at once.
        now, digest = self.clock(), keys.key_hash(key)
        hit = self._remembered(digest, now.timestamp())
        if hit is not None:
            return hit
        with self.store.reading() as s:
            found = keys.actors_by_hash(s, [digest], now).get(digest)
        if found is not None:  # an unknown key is looked up every time (it may be created in another process)
            if len(self._auth_cache) > 10_000:
                self._auth_cache.clear()
            self._auth_cache[digest] = (now.timestamp(), found)
        return found

    def forget_keys(self) -> None:
        """Keys changed (here or, on PostgreSQL, in another process): every key is looked up afresh."""
        self._auth_generation += 1
        self._auth_cache.clear()

    def refresh_keys(self) -> None:
        """Look up again, in one query, the keys in memory older than `AUTH_REFRESH_S`: those still working are
        remembered anew, the others forgotten (a revocation by another process on SQLite, a grace period over)."""
        now = self.clock()
        stamp = now.timestamp()
        due = [d for d, (at, _) in list(self._auth_cache.items()) if stamp - at >= AUTH_REFRESH_S]
        if not due:
            return
        generation = self._auth_generation
        with self.store.reading() as s:
            found = keys.actors_by_hash(s, due, now)
        if generation != self._auth_generation:  # keys changed meanwhile: what was read may be stale
            return
        for digest in due:
            actor = found.get(digest)
            if actor is None:
                self._auth_cache.pop(digest, None)
            else:
                self._auth_cache[digest] = (stamp, actor)

    # -- the clock ---------------------------------------------------------------------------------------

    def tick(self) -> lifecycle.TickResult:
        """Advance leases to the current time, then bring execution in line with them.

        A lease the clock cannot advance is logged, alerted once and retried on the next tick; it never
        holds back the others (each lease is advanced in its own savepoint).
        """
        with self.store.transaction() as s:
            if not try_tick_lock(s):  # another process is ticking right now (see store/leader.py)
                return lifecycle.TickResult()
            w = self._unit(s)
            result = lifecycle.tick(w)  # the tick reconciles below, whatever the clock changed
        now = w.now
        self._follow_backend_nodes(now)
        self.carry_out([e for e in w.effects if not isinstance(e, StopRuns | LeasesChanged)])  # reconciled below
        if result.failed:
            self.perform(lifecycle.report_failures, result.failed)
        if self._last_sample is None or (now - self._last_sample).total_seconds() >= self.settings.telemetry_interval_s:
            self._last_sample = now
            try:
                with self.store.transaction() as s:
                    telemetry.sample_active_leases(s, now)
            except Exception:  # telemetry is best effort; it must not stop the clock
                log.exception("telemetry sampling failed")
        self.executor.reconcile()  # stops runs of leases that ended and closes them (ending -> ended)
        return result

    def _housekeeping(self) -> None:
        """What every server process does on each pass of its loop, whether it holds the clock or not."""
        self._trim_calendars()
        self.calendars.follow_peers()  # a process gone (killed, stopped) no longer takes a part of the nodes
        try:
            self.refresh_keys()
        except Exception:  # the keys expire as before and are looked up by the requests themselves
            log.exception("refreshing the API keys in memory failed")

    def _trim_calendars(self) -> None:
        """Every `CALENDAR_TRIM_S`, in every process (leader or not): drop bookings that ended from memory."""
        if time.monotonic() - self._last_trim >= CALENDAR_TRIM_S:
            self._last_trim = time.monotonic()
            self.calendars.trim(self.clock())

    def _follow_backend_nodes(self, now: datetime) -> None:
        """Every `slurm_node_poll_s`: nodes Slurm reports down or drained are node failures; back when it says so."""
        last = self._last_node_poll
        if last is not None and (now - last).total_seconds() < self.settings.slurm_node_poll_s:
            return
        self._last_node_poll = now
        try:
            seen = slurm_mirror.node_health(self.executor)
            if seen is not None:
                self.perform(node_failure.follow_backend_nodes, backend="slurm", nodes=seen)
        except Exception:  # a backend that cannot be read must not stop the clock
            log.exception("following Slurm's node states failed")

    @property
    def is_clock_leader(self) -> bool:
        """Whether this process runs the lease clock (always, on SQLite)."""
        return self.leadership.is_leader

    @property
    def mirrors_backends(self) -> bool:
        """Whether this process tells Slurm about lease changes as they happen: the clock's holder, or a runtime
        without a background clock (tests, one-off tools) that acts alone. Other server processes leave it to
        the holder's next tick, so two processes never create one lease's reservation or allocation twice."""
        return self._thread is None or self.leadership.is_leader

    def start(self) -> None:
        if self._thread is not None:
            return
        stopped = self.executor.recover()
        if stopped:
            log.warning("stopped %d run(s) left from before a restart: %s", len(stopped), stopped)
        self._stop.clear()
        self.listen_for_calendar_changes()
        self._thread = threading.Thread(target=self._loop, name="gpulease-tick", daemon=True)
        self._thread.start()
        self.audit_log.start()
        self.deliveries.start()
        if not self.store.is_postgres:
            self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="gpulease-wal", daemon=True)
            self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        """SQLite: keep the write-ahead log short from here, so that no commit (holding the one writer lock) has
        to copy it into the database and wait for the disk (`Store.checkpoint`)."""
        while not self._stop.wait(WAL_CHECKPOINT_S):
            try:
                done = self.store.checkpoint()
            except Exception:  # a busy or failing disk: the commits' own checkpoint is the backstop
                log.exception("checkpoint of the write-ahead log failed")
                continue
            if done is not None:
                self.wal_pages = done[0]

    def _loop(self) -> None:
        """Tick while this process holds the clock; otherwise try to take it over every `clock_takeover_s`."""
        wait = self.settings.tick_seconds
        while not self._stop.wait(wait):
            try:
                leader = self.leadership.hold()
            except Exception:
                log.exception("cannot tell whether this process holds the clock")
                leader = False
            wait = self.settings.tick_seconds if leader else min(self.settings.tick_seconds, self.leadership.retry_s)
            self._housekeeping()
            if not leader:
                continue
            try:
                self.tick()
            except Exception:  # keep ticking: one bad lease must not stop every other lease's clock
                log.exception("tick failed")

    def listen_for_calendar_changes(self) -> None:
        """PostgreSQL: follow the other server processes' bookings in this process's calendars (LISTEN)."""
        if not self.store.is_postgres or self._listener is not None:
            return
        ready = threading.Event()
        self._listener = threading.Thread(
            target=self.calendars.listen,
            args=(self._stop,),
            kwargs={"ready": ready},
            name="gpulease-calendars",
            daemon=True,
        )
        self._listener.start()
        ready.wait(timeout=10)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._listener is not None:
            self._listener.join(timeout=5)
            self._listener = None
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=5)
            self._checkpointer = None
        self.leadership.release()  # another server takes the clock over at once
        self.executor.close()
        self.deliveries.stop()
        self.audit_log.stop()  # after the last change: seals it and signs the final head
        self.store.dispose()
