"""The capacity calendars a server keeps in memory: one per GPU model, loaded once, kept current on commit.

Rebuilding a model's calendar from the store on every request cost more than the placement itself and grew
with the reservations stored. A Runtime keeps one `Calendars`; a use case that places gets its model's calendar
from it (`capacity.placement_calendar`) and works on it inside a speculation, so whatever it tries (the queue
head's hold, preemptions) is undone when its transaction ends. Once the transaction has committed, the leases
whose allocations it changed are applied to the calendar as they are now in the store.

Correctness never rests on the copy in memory:

- Every transaction that takes capacity (a booking, an extension, a start from the queue, a lease moved off a
  failed node) or changes a model's nodes bumps the model's row in `calendar_versions`. A placement compares the
  version committed before it with the one its calendar is at; any gap means another process (or a transaction
  whose change could not be applied) committed something the calendar has not seen, and it is reloaded from the
  store, in the same transaction, before placing.
- SQLite (one writer at a time, no exclusion constraint): the bump is taken when placing, and the model's lock
  in this process is held until the commit: placements of a model follow one another.
- PostgreSQL: placements overlap. A placement reads the version without a lock and the bump waits for the
  commit (its row lock is held only for the bump, the NOTIFY and the COMMIT). A booking that gave nobody notice
  books its lease in the calendar as soon as its allocation rows exist (`placed`: tentative until the commit,
  taken out again by a rollback, kept across a reload) and lets the next placement of the model go on; one
  that preempts, an extension or a start from the queue keeps the model's lock until it commits. What a
  placement cannot have seen (another process's commit not heard of yet) is caught by the exclusion
  constraint.
- Frees (ends, cancellations, truncations) are not versioned: a calendar that has not seen one yet only holds
  GPUs that are free in truth, which can refuse or delay a request but never double-book.
- On PostgreSQL the exclusion constraint `no_double_booking` still refuses two live allocations of one GPU over
  overlapping time; the Runtime forgets every calendar and retries the action if it ever fires.

Several server processes: on PostgreSQL each transaction that changes allocations sends `NOTIFY` with the
leases' new GPUs (delivered on commit, in commit order); each process listens (`listen`, run by the Runtime in
a thread) and applies what the others did, so its version stays current and placements rarely reload.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, event, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.util import identity_key

from gpulease.domain.placement import CapacityCalendar, DoubleBooking, GpuRef, Speculation
from gpulease.services.capacity import load_calendar
from gpulease.services.context import epoch
from gpulease.services.errors import Conflict
from gpulease.services.work import Work
from gpulease.store import direct
from gpulease.store.db import Store
from gpulease.store.models import Allocation, ApiKey, Lease, Node, Webhook
from gpulease.store.prepared import Prepared

log = logging.getLogger("gpulease.calendars")

NOTIFY_MAX = 7900  # PostgreSQL refuses a payload of 8000 bytes or more
_CARRIED_ROOM = 120  # a carried NOTIFY's keys, spaces and numbers around its changes (`Calendars._carry`)

# (lease id, model, [(node, index)], start, end or None, the lease's calendar_seq): a lease's GPUs after a
# commit; no GPUs = holds none
LeaseGpus = tuple[int, str, list[tuple[int, int]], int, int | None, int]


@dataclass
class _Change:
    """One committed (or committing) change of a model's calendar, by its version."""

    leases: list[LeaseGpus]
    stale: bool  # the model's nodes changed (or the change could not be told): reload rather than apply
    committed: bool
    owner: object  # the transaction that registered it (None: another process's)


@dataclass
class _Entry:
    lock: threading.RLock = field(default_factory=threading.RLock)
    cal: CapacityCalendar | None = None  # None: load from the store when next needed
    version: int = -1  # the calendar_versions value this calendar has seen every change up to
    pending: dict[int, _Change] = field(default_factory=dict)  # later versions, applied in order (guarded)
    applied: dict[int, int] = field(default_factory=dict)  # lease -> the calendar_seq its GPUs here are at
    # PostgreSQL: leases placed by transactions of this process still in flight (lease -> GPUs, start, end),
    # booked in the calendar before their commit so that the lock is not held to it (`placed`)
    tentative: dict[int, tuple[list[GpuRef], int, int | None]] = field(default_factory=dict)


@dataclass
class _Tx:
    """What one transaction did with the calendars (kept in `session.info`)."""

    held: dict[str, tuple[_Entry, Any]] = field(default_factory=dict)  # model -> (entry, open speculation)
    bumped: dict[str, int] = field(default_factory=dict)  # model -> version this transaction takes it to
    placing: set[str] = field(default_factory=set)  # PostgreSQL: models placed on, versioned at the commit
    tentative: list[tuple[_Entry, int]] = field(default_factory=list)  # leases booked before the commit
    touched: set[int] = field(default_factory=set)  # leases whose allocations changed
    kept: list[Any] = field(default_factory=list)  # their changed rows and leases (the identity map is weak)
    node_models: set[str] = field(default_factory=set)  # models whose nodes changed
    keys_changed: bool = False
    webhooks_changed: bool = False
    new_leases: set[int] = field(default_factory=set)
    registered: list[tuple[_Entry, int]] = field(default_factory=list)
    immediate: dict[str, list[LeaseGpus]] = field(default_factory=dict)  # frees: applied at once, by lease order


# PostgreSQL: how long a placement waits for the model's lock in this process. A transaction that holds it to its
# commit (a preemption) may wait for a row that the waiting one has locked (an extension of the same lease): the
# database cannot see that cycle, so the waiting one gives up, rolls back and is retried (Runtime.perform).
LOCK_WAIT_S = 2.0


class CalendarBusy(Conflict):
    """The model's calendar stayed taken for LOCK_WAIT_S: rolled back and retried; told as a 409 if it persists."""

    title = "Busy, try again"


# Requests starting within this long of now are placed in this process's own part of the nodes, ties broken from
# its share of the way along (`_share`); later windows as by one process (CapacityCalendar.apart_until).
APART_S = 3600
PEER_TTL_S = 60.0  # a process not heard from for this long no longer counts among those placing (`_share`)
RECENTLY_ENDED = timedelta(hours=1)  # a change of a lease that ended longer ago cannot still be on its way
WAIT_FOR_COMMITTING_S = 0.2  # a placement waits this long for changes committed by threads still applying
# A placement that finds another process committed a change it has not heard of yet waits this long for the
# change's NOTIFY (usually a few ms behind the commit) before it reads the whole calendar from the store instead:
# with two workers 3-5% of placements reloaded, each holding the model's lock for as long as the load took.
WAIT_FOR_NOTIFY_S = 0.05

# The statements every booking runs, built once (building one cost about as much CPU as running it).
# Compiled once and run on the driver's cursor (store/prepared.py).
_VERSION = Prepared(text("SELECT version FROM calendar_versions WHERE gpu_model = :m"))
_BUMP_SQL = (
    "INSERT INTO calendar_versions (gpu_model, version) VALUES (:m, 1) "
    "ON CONFLICT (gpu_model) DO UPDATE SET version = calendar_versions.version + 1 "
    "RETURNING version"
)
_BUMP = Prepared(text(_BUMP_SQL))
_SEQUENCE = (
    update(Lease)
    .where(Lease.id.in_(bindparam("ids", expanding=True)))
    .values(calendar_seq=Lease.calendar_seq + 1)
    .returning(Lease.id, Lease.calendar_seq)
    .execution_options(synchronize_session=False)
)
_NOTIFY = Prepared(text("SELECT pg_notify(:c, :p)"))
# The two usual commits on PostgreSQL, each one round trip instead of two: a booking's version bump and an end's
# calendar_seq bump, each with the NOTIFY that carries the number it returns (`_carry`). PostgreSQL builds the
# payload around that number; the listener reads it as it reads `_notify`'s.
_BUMP_AND_NOTIFY = Prepared(
    text(
        f"WITH b AS ({_BUMP_SQL}) "
        "SELECT b.version, pg_notify(CAST(:c AS text), json_build_object('src', CAST(:src AS text), "
        "'v', json_build_object(CAST(:m AS text), b.version), 'stale', json_build_array(), "
        "'l', CAST(:l AS json))::text) FROM b"
    )
)
_SEQUENCE_AND_NOTIFY = Prepared(
    text(
        "WITH q AS (UPDATE leases SET calendar_seq = leases.calendar_seq + 1 WHERE leases.id = :lease "
        "RETURNING leases.id, leases.calendar_seq) "
        "SELECT q.id, q.calendar_seq, pg_notify(CAST(:c AS text), json_build_object('src', CAST(:src AS text), "
        "'v', json_build_object(), 'stale', json_build_array(), "
        "'l', json_build_array(CAST(:entry AS jsonb) || to_jsonb(q.calendar_seq)))::text) FROM q"
    ),
    autoflush=True,
)
# The usual case, one lease changed (an end): its own statement, compiled once and run on the cursor.
_SEQUENCE_ONE = Prepared(
    update(Lease)
    .where(Lease.id == bindparam("lease"))
    .values(calendar_seq=Lease.calendar_seq + 1)
    .returning(Lease.id, Lease.calendar_seq),
    autoflush=True,
)


class Calendars:
    """One Runtime's calendars (thread-safe: a lock per model, held by a placing transaction until it ends).

    Every change is applied in version order: a transaction registers its change under its version just before
    it commits, marks it committed right after, and whoever holds the model's lock next applies what is there."""

    def __init__(
        self,
        store: Store,
        *,
        on_keys_changed: Callable[[], None] | None = None,
        on_webhooks_changed: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.instance = uuid.uuid4().hex[:12]
        self._entries: dict[str, _Entry] = {}
        self._guard = threading.Lock()  # entries and their pending changes
        self._channel: str | None = None
        self._node_model: dict[int, str] = {}  # node id -> its GPU model, from the calendars loaded
        self._on_keys_changed = on_keys_changed
        self._on_webhooks_changed = on_webhooks_changed
        self.reloads = 0  # calendars loaded from the store (tests and benchmarks read it)
        self.remote_applied = 0  # changes of other processes applied from notifications
        self._spread = 0.0  # CapacityCalendar.spread and .part of every calendar loaded here (`_respread`)
        self._part = (0, 1)
        self._peers: dict[str, float] = {}  # other processes placing on this store -> when last heard (monotonic)
        self._refused = False  # the store refused a placement of this process (`spread_out`)
        self._listening = False  # other processes' changes are heard (`listen` connected)
        self._install(store.sessions)

    # -- for use cases --------------------------------------------------------------------------------

    def for_placement(self, work: Work, model: str, *, holding: int | None = None) -> CapacityCalendar:
        """The model's calendar, current as of this transaction, for placing, under the model's lock in this
        process: held to the commit (SQLite; PostgreSQL unless the booking is `placed` first).

        `holding`: a lease the calendar must know (an extension); reloaded if it does not.
        """
        session = work.session
        tx = _tx(session)
        if model in tx.held:
            return tx.held[model][0].cal  # type: ignore[return-value]
        if model in _node_changes(session, tx):
            # Its nodes change in this transaction: place on what the store says, and reload after the commit.
            self._bump(session, tx, model)
            tx.node_models.add(model)
            return self._load(work, model)
        if self.store.is_postgres:
            # Optimistic: the version as committed now (no lock); the bump waits for the commit (`_before`), so
            # placements of a model overlap. A change committed meanwhile by another process that this one has
            # not heard of yet can only make the exclusion constraint refuse the allocation: the Runtime then
            # reads every calendar afresh and retries.
            seen = _VERSION.scalar(session, {"m": model})
            known = int(seen or 0)
            tx.placing.add(model)
        else:
            # SQLite (one writer at a time, no exclusion constraint): the bump itself is the lock, taken now.
            known = self._bump(session, tx, model) - 1  # every change up to `known` has committed
        entry = self._entry(model)
        if not entry.lock.acquire(timeout=LOCK_WAIT_S if self.store.is_postgres else -1):
            raise CalendarBusy(f"the {model} calendar is busy with other bookings; please try again")
        try:
            self._catch_up(entry, known)
            cal = entry.cal
            behind = entry.version < known if self.store.is_postgres else entry.version != known
            if cal is None or behind or (holding is not None and not cal.bookings_of(holding)):
                cal = self._reload(work, entry, model, known)
            spec = cal.speculate()
            spec.__enter__()
        except BaseException:
            entry.lock.release()
            raise
        tx.held[model] = (entry, spec)
        cal.apart_until = epoch(work.now) + APART_S  # under the model's lock, to the commit
        return cal

    def view(self, work: Work, model: str) -> CapacityCalendar:
        """The model's calendar for reading (availability): what this process knows, not serialised."""
        tx = _tx(work.session)
        if model in tx.held:
            return tx.held[model][0].cal  # type: ignore[return-value]
        entry = self._entry(model)
        entry.lock.acquire()
        try:
            self._drain(entry)
            if entry.cal is None:
                seen = _VERSION.scalar(work.session, {"m": model})
                self._reload(work, entry, model, int(seen or 0))  # sees at least every change up to `seen`
            assert entry.cal is not None
            spec = entry.cal.speculate()
            spec.__enter__()
        except BaseException:
            entry.lock.release()
            raise
        tx.held[model] = (entry, spec)
        return entry.cal

    def placed(self, work: Work, model: str, lease_id: int, gpus: list[GpuRef], start: int, end: int | None) -> None:
        """A new lease was placed on `gpus` of the model's calendar, and nothing else changed in it (no notice
        given): on PostgreSQL, book it now and let other placements of the model go on before this commits.

        Whatever the transaction tried (the queue head's hold) is undone; the lease stays booked as tentative
        until the commit applies it for good, or a rollback takes it out. SQLite keeps the lock to the commit.
        """
        tx = _tx(work.session)
        if not self.store.is_postgres or model not in tx.placing or model not in tx.held:
            return
        entry, spec = tx.held.pop(model)
        try:
            spec.__exit__(None, None, None)
            if entry.cal is not None:
                entry.cal.book(lease_id, gpus, start, end)
            entry.tentative[lease_id] = (gpus, start, end)
            tx.tentative.append((entry, lease_id))
        except Exception:  # never leave a calendar half changed: reload it instead
            log.exception("booking a placed lease in the calendar failed; the calendar will be reloaded")
            entry.cal, entry.version = None, -1
        finally:
            entry.lock.release()

    # -- housekeeping ---------------------------------------------------------------------------------

    def forget_all(self) -> None:
        """Drop every calendar: each is reloaded from the store when next needed."""
        for entry in self._all():
            with entry.lock:
                entry.cal, entry.version = None, -1

    def trim(self, now: datetime) -> None:
        """Drop bookings that ended (they can block nothing any more); for the clock to call now and then."""
        for entry in self._all():
            if entry.lock.acquire(timeout=0.5):
                try:
                    if entry.cal is not None:
                        entry.cal.forget_ended(epoch(now))
                finally:
                    entry.lock.release()

    def snapshot(self, model: str) -> list[tuple[int, int, int, int, int | None]] | None:
        """(lease, node, gpu, start, end) of every booking in memory, or None if not loaded (for tests)."""
        entry = self._entry(model)
        with entry.lock:
            self._drain(entry)
            if entry.cal is None:
                return None
            return sorted((b.lease_id, b.gpu.node_id, b.gpu.index, b.start, b.end) for b in entry.cal.bookings())

    def spread_out(self) -> None:
        """Another process booked GPUs this one chose (the store refused them): from now on break ties between
        equally good placements from a place of this process's own, so that the two seldom meet again."""
        self._refused = True
        self._respread()

    def follow_peers(self) -> None:
        """Drop the processes not heard from for `PEER_TTL_S` from the ranking, and place as those left do. Called
        by each server process's loop every tick: a process heard of stops counting only when this runs, and
        nothing else runs it once the others are all gone (a process never hears itself)."""
        self._respread()

    def _share(self) -> tuple[float, tuple[int, int]]:
        """Where this process places (CapacityCalendar.spread and .part): the processes heard from lately, this one
        included, ranked by instance id, each takes its own part of each cluster's nodes first and breaks ties from
        its share of the way along (two: the first half from the start, the second from the middle; they rank
        themselves alike, as each hears the other). None heard yet after a refusal: a share from the id alone."""
        now = time.monotonic()
        with self._guard:
            for peer in [p for p, heard in self._peers.items() if now - heard > PEER_TTL_S]:
                del self._peers[peer]
            ranked = sorted([*self._peers, self.instance])
        if len(ranked) > 1:
            rank = ranked.index(self.instance)
            return rank / len(ranked), (rank, len(ranked))
        return ((zlib.crc32(self.instance.encode()) % 997) / 997 if self._refused else 0.0), (0, 1)

    def _respread(self) -> None:
        spread, part = self._share()
        if (spread, part) == (self._spread, self._part):
            return
        self._spread, self._part = spread, part
        log.info(
            "placing on part %d of %d of each cluster's nodes first, ties from %.2f of the way along",
            part[0] + 1,
            part[1],
            spread,
        )
        # Not under the entries' locks: the listener calls this, and a placement holding a lock may be waiting for
        # the very notice the listener is handling (`_catch_up`). A placement reads either value whole.
        for entry in self._all():
            cal = entry.cal
            if cal is not None:
                cal.spread, cal.part = spread, part

    def _load(self, work: Work, model: str) -> CapacityCalendar:
        cal = load_calendar(work, model)
        cal.spread, cal.part = self._spread, self._part
        for node in cal.nodes():
            self._node_model[node.id] = node.gpu_model
        return cal

    def _reload(self, work: Work, entry: _Entry, model: str, version: int) -> CapacityCalendar:
        # Each live lease's order first, then its GPUs: a change committed in between is applied again after
        # (the same state), never skipped.
        since = work.now - RECENTLY_ENDED
        entry.applied = {
            int(lid): int(seq)
            for lid, seq in work.session.execute(
                select(Lease.id, Lease.calendar_seq).where(
                    Lease.gpu_model == model,
                    Lease.calendar_seq > 0,
                    or_(Lease.ended_at.is_(None), Lease.ended_at > since),
                )
            )
        }
        cal = entry.cal = self._load(work, model)
        entry.version = version
        self.reloads += 1
        for lease_id, (gpus, start, end) in entry.tentative.items():  # in flight: not in the store yet
            if not cal.bookings_of(lease_id):
                try:
                    cal.book(lease_id, gpus, start, end)
                except (ValueError, DoubleBooking):  # taken meanwhile by a commit: this one will meet the constraint
                    log.info("lease %s in flight overlaps what the store holds; its commit will be refused", lease_id)
        with self._guard:
            for v in [v for v in entry.pending if v <= version]:
                del entry.pending[v]
        self._drain(entry)
        return cal

    def _entry(self, model: str) -> _Entry:
        with self._guard:
            entry = self._entries.get(model)
            if entry is None:
                entry = self._entries[model] = _Entry()
            return entry

    def _models(self) -> list[str]:
        with self._guard:
            return list(self._entries)

    def _all(self) -> list[_Entry]:
        with self._guard:
            return list(self._entries.values())

    def _bump(self, session: Session, tx: _Tx, model: str) -> int:
        if model in tx.bumped:
            return tx.bumped[model]
        (version,) = _BUMP.rows(session, {"m": model})[0]
        version = int(version)
        tx.bumped[model] = version
        return version

    # -- applying changes in order ----------------------------------------------------------------------

    def _drain(self, entry: _Entry) -> None:
        """Apply the committed changes that follow the calendar's version, in order (entry lock held)."""
        while entry.cal is not None:
            with self._guard:
                change = entry.pending.get(entry.version + 1)
                if change is None or not change.committed:
                    return
                del entry.pending[entry.version + 1]
            entry.version += 1
            if change.stale:
                entry.cal, entry.version = None, -1
                return
            if not self._apply_leases(entry, change.leases):
                return
            if change.owner is None:
                self.remote_applied += 1

    def _apply_leases(self, entry: _Entry, leases: list[LeaseGpus]) -> bool:
        """Set each lease's GPUs as the change has them, unless the calendar already has a later state of it
        (two changes of one lease apply in the order they committed, whatever order they arrive in)."""
        if entry.cal is None:
            return False
        try:
            fresh = [c for c in leases if c[5] > entry.applied.get(c[0], -1)]
            for lease_id, *_rest in fresh:  # every old state out first: a preemption frees what a booking takes
                entry.cal.release(lease_id)
            for lease_id, _model, gpus, start, end, seq in fresh:
                entry.applied[lease_id] = seq
                if gpus:
                    self._book_committed(entry, entry.cal, lease_id, [GpuRef(n, i) for n, i in gpus], start, end)
        except Exception:  # out of step with the store: reload rather than guess
            log.exception("applying a committed change to a calendar failed; reloading it")
            entry.cal, entry.version = None, -1
            return False
        return True

    @staticmethod
    def _book_committed(
        entry: _Entry, cal: CapacityCalendar, lease_id: int, gpus: list[GpuRef], start: int, end: int | None
    ) -> None:
        """Book a lease as committed. Where it meets only leases still in flight in this process (placed by a
        transaction that did not know of it: another process's, committed first), those are taken out of the
        calendar: the store will refuse them (the Runtime then retries), or, if they commit after all, their own
        change books them again. A committed lease in the way means the calendar is out of step: DoubleBooking."""
        try:
            cal.book(lease_id, gpus, start, end)
            return
        except DoubleBooking:
            in_way = cal.leases_on(gpus, start, end)
            if not in_way or not in_way <= entry.tentative.keys():
                raise
        for doomed in in_way:
            cal.release(doomed)
        cal.book(lease_id, gpus, start, end)

    def _catch_up(self, entry: _Entry, version: int) -> None:
        """Apply every change up to `version` (all committed: the caller holds the next version), waiting
        briefly for threads that have committed but not yet said so."""
        start = time.monotonic()
        heard_by = start + (WAIT_FOR_NOTIFY_S if self._listening else 0.0)
        deadline = start + WAIT_FOR_COMMITTING_S
        while True:
            self._drain(entry)  # what the listener queued meanwhile too (it waits for the entry's lock held here)
            if entry.cal is None or entry.version >= version:
                return
            with self._guard:
                committing = any(not c.committed for v, c in entry.pending.items() if entry.version < v <= version)
            if time.monotonic() > (deadline if committing else heard_by):
                return  # a change was missed (another process's, not heard of in time): the caller reloads
            time.sleep(0.0005)

    @staticmethod
    def _sequence(session: Session, tx: _Tx, changes: list[LeaseGpus]) -> list[LeaseGpus]:
        """Number each changed lease's new state: a lease booked in this transaction is at 0; any other has its
        calendar_seq bumped (its row is locked by this transaction until it commits, so in commit order)."""
        old = sorted({c[0] for c in changes} - tx.new_leases)
        seqs = {lid: 0 for lid in tx.new_leases}
        if old:
            if len(old) == 1:
                bumped: Iterable[Any] = _SEQUENCE_ONE.rows(session, {"lease": old[0]})
            else:
                bumped = session.execute(_SEQUENCE, {"ids": old})
            seqs.update((int(lid), int(seq)) for lid, seq in bumped)
        return [(lid, m, g, st, en, seqs.get(lid, 0)) for lid, m, g, st, en, _ in changes]

    def _register(self, tx: _Tx, model: str, leases: list[LeaseGpus], stale: bool) -> None:
        entry = self._entry(model)
        version = tx.bumped[model]
        with self._guard:
            entry.pending[version] = _Change(leases, stale, committed=False, owner=tx)
        tx.registered.append((entry, version))

    def _settle(self, tx: _Tx, committed: bool) -> None:
        with self._guard:
            for entry, version in tx.registered:
                change = entry.pending.get(version)
                if change is None or change.owner is not tx:
                    continue
                if committed:
                    change.committed = True
                else:
                    del entry.pending[version]

    # -- following commits ----------------------------------------------------------------------------

    def _install(self, sessions: sessionmaker[Session]) -> None:
        def _note_objects(session: Session, changed: Iterable[object], new: Collection[object]) -> None:
            if session.info.setdefault("calendars", self) is not self:
                return
            tx = _tx(session)
            for obj in changed:
                if isinstance(obj, Allocation):
                    tx.touched.add(obj.lease_id)
                    tx.kept.append(obj)
                elif isinstance(obj, Lease):
                    tx.kept.append(obj)
                    if obj in new:
                        tx.new_leases.add(obj.id)
                elif isinstance(obj, Node) and obj.gpu_model is not None:  # a CPU node is no GPU calendar's
                    tx.node_models.add(obj.gpu_model)
                elif isinstance(obj, ApiKey):
                    tx.keys_changed = True
                elif isinstance(obj, Webhook):
                    tx.webhooks_changed = True
                    session.info["webhooks_changed"] = True  # services/notifications reads them itself

        @event.listens_for(sessions, "after_flush")
        def _note(session: Session, _ctx: Any) -> None:
            _note_objects(session, (*session.new, *session.dirty, *session.deleted), session.new)

        # A booking's lease and allocations and an end's changes to them: written without a flush (store/direct.py).
        direct.listen(sessions, lambda session, objects, new: _note_objects(session, objects, objects if new else ()))

        @event.listens_for(sessions, "before_commit")
        def _before(session: Session) -> None:
            if session.info.get("calendars") is not self:
                return
            session.flush()
            tx = _tx(session)
            changes = _lease_gpus(session, tx.touched, self._node_model)
            if changes is None:  # cannot tell every lease's GPUs from the session: every process reloads
                changes = []
                tx.node_models.update(self._models())
            versioned = tx.node_models | set(tx.bumped) | tx.placing  # placements: a version each, even of nothing
            carried = self._carry(session, tx, changes, versioned) if self.store.is_postgres else None
            changes = self._sequence(session, tx, changes) if carried is None else carried
            by_model: dict[str, list[LeaseGpus]] = {m: [] for m in tx.node_models}
            for change in changes:
                by_model.setdefault(change[1], []).append(change)
            for model in sorted(versioned):  # one order: two transactions never wait on each other's rows
                self._bump(session, tx, model)
                self._register(tx, model, by_model.get(model, []), model in tx.node_models)
            tx.immediate = {m: c for m, c in by_model.items() if m not in versioned}
            if carried is None and self.store.is_postgres and (changes or versioned or tx.webhooks_changed):
                self._notify(session, tx, changes)

        @event.listens_for(sessions, "after_commit")
        def _after(session: Session) -> None:
            if session.info.get("calendars") is not self:
                return
            session.info.pop("webhooks_changed", None)
            tx = session.info.pop("calendars_tx", None)
            if tx is None:
                return
            self._settle(tx, committed=True)
            self._close(tx)
            try:
                for entry, _version in tx.registered:
                    with entry.lock:
                        self._drain(entry)
                for entry, lease_id in tx.tentative:  # committed: in the store now, and applied or on its way
                    with entry.lock:
                        entry.tentative.pop(lease_id, None)
                for model, leases in tx.immediate.items():
                    entry = self._entry(model)
                    with entry.lock:
                        self._apply_leases(entry, leases)
            finally:
                self._release(tx)
            if tx.keys_changed and self._on_keys_changed is not None:
                self._on_keys_changed()
            if tx.webhooks_changed:
                self._webhooks_changed()

        @event.listens_for(sessions, "after_transaction_end")
        def _ended(session: Session, transaction: Any) -> None:
            if transaction.parent is not None or session.info.get("calendars") is not self:
                return  # a savepoint, or not ours
            session.info.pop("webhooks_changed", None)
            tx = session.info.pop("calendars_tx", None)  # still here: rolled back (a commit took it)
            if tx is not None:
                self._settle(tx, committed=False)
                self._close(tx)
                self._release(tx)
                self._forget_tentative(tx)

    @staticmethod
    def _forget_tentative(tx: _Tx) -> None:
        for entry, lease_id in tx.tentative:  # rolled back: the lease never was
            with entry.lock:
                if entry.tentative.pop(lease_id, None) is not None and entry.cal is not None:
                    entry.cal.release(lease_id)
        tx.tentative.clear()

    def _webhooks_changed(self) -> None:
        if self._on_webhooks_changed is not None:
            self._on_webhooks_changed()

    @staticmethod
    def _close(tx: _Tx) -> None:
        for _entry, spec in tx.held.values():
            try:
                spec.__exit__(None, None, None)  # undo what the transaction tried on the calendar
            except Exception:  # never leave a calendar half undone: reload it instead
                log.exception("undoing a speculation failed; the calendar will be reloaded")
                _entry.cal, _entry.version = None, -1

    @staticmethod
    def _release(tx: _Tx) -> None:
        for entry, _spec in tx.held.values():
            entry.lock.release()
        tx.held.clear()

    # -- several processes (PostgreSQL) -----------------------------------------------------------------

    def channel(self) -> str:
        """The NOTIFY channel of this database and schema (tests share a database, one schema each)."""
        if self._channel is None:
            with self.store.transaction() as s:
                db, schema = s.execute(text("SELECT current_database(), current_schema()")).one()
            self._channel = f"gpulease_calendar_{zlib.crc32(f'{db}.{schema}'.encode()):08x}"
        return self._channel

    def _carry(
        self, session: Session, tx: _Tx, changes: list[LeaseGpus], versioned: set[str]
    ) -> list[LeaseGpus] | None:
        """PostgreSQL, the two usual commits: a booking (new leases of one model placed, nothing else) bumps its
        model's version and an end (one lease changed, no version) its lease's calendar_seq, each with its NOTIFY
        in the same statement. Returns the changes numbered as `_sequence` would; None, having sent nothing, for
        any other commit or a payload that might not fit (the caller then goes the long way)."""
        if tx.webhooks_changed or tx.node_models:
            return None
        old = {c[0] for c in changes} - tx.new_leases
        if not old and len(versioned) == 1 and not tx.bumped:
            (model,) = versioned
            numbered = [(lid, m, g, st, en, 0) for lid, m, g, st, en, _ in changes]
            l_json = json.dumps(numbered, separators=(",", ":"))
            if len(l_json) + len(self.instance) + len(model) + _CARRIED_ROOM > NOTIFY_MAX:
                return None
            rows = _BUMP_AND_NOTIFY.rows(session, {"m": model, "c": self.channel(), "src": self.instance, "l": l_json})
            tx.bumped[model] = int(rows[0][0])
            return numbered
        if len(old) == 1 and len(changes) == 1 and not versioned:
            lid, m, g, st, en, _ = changes[0]
            entry = json.dumps([lid, m, g, st, en], separators=(",", ":"))
            if len(entry) + len(self.instance) + _CARRIED_ROOM > NOTIFY_MAX:
                return None
            rows = _SEQUENCE_AND_NOTIFY.rows(
                session, {"lease": lid, "c": self.channel(), "src": self.instance, "entry": entry}
            )
            if not rows:  # no such lease (gone from the store): numbered 0 and told, as `_sequence` would
                self._notify(session, tx, [(lid, m, g, st, en, 0)])
                return [(lid, m, g, st, en, 0)]
            return [(lid, m, g, st, en, int(rows[0][1]))]
        return None

    def _notify(self, session: Session, tx: _Tx, changes: list[LeaseGpus]) -> None:
        body: dict[str, Any] = {"src": self.instance, "v": tx.bumped, "stale": sorted(tx.node_models)}
        if tx.webhooks_changed:
            body["hooks"] = 1
        payload = json.dumps({**body, "l": changes}, separators=(",", ":"))
        if len(payload) > NOTIFY_MAX:  # too big to carry: the others reload the models
            payload = json.dumps({**body, "stale": sorted(tx.bumped), "l": []}, separators=(",", ":"))
        _NOTIFY.rows(session, {"c": self.channel(), "p": payload})

    def listen(self, stop: threading.Event, *, ready: threading.Event | None = None) -> None:
        """Apply the other processes' committed changes until `stop` is set (PostgreSQL; run in a thread).

        Every calendar is dropped whenever listening (re)starts: what was committed while nobody listened is
        read from the store."""

        def connected() -> None:
            self.forget_all()
            self._webhooks_changed()
            self._listening = True
            if ready is not None:
                ready.set()

        try:
            self.store.listen(self.channel(), stop, self.on_notification, on_connect=connected)
        finally:
            self._listening = False

    def on_notification(self, payload: str) -> None:
        """Another process committed a change: apply it in its place in the version order."""
        try:
            msg = json.loads(payload)
        except ValueError:
            return
        src = msg.get("src")
        if src == self.instance:
            return
        if isinstance(src, str):
            with self._guard:
                new_peer = src not in self._peers
                self._peers[src] = time.monotonic()
            if new_peer:  # one more process places on this store: each takes its own share of the nodes
                self._respread()
        if msg.get("hooks"):
            self._webhooks_changed()
        stale = set(msg.get("stale", []))
        by_model: dict[str, list[LeaseGpus]] = {}
        for c in msg.get("l", []):
            change: LeaseGpus = (
                int(c[0]),
                str(c[1]),
                [(int(n), int(i)) for n, i in c[2]],
                int(c[3]),
                None if c[4] is None else int(c[4]),
                int(c[5]),
            )
            by_model.setdefault(change[1], []).append(change)
        versions = {str(m): int(v) for m, v in msg.get("v", {}).items()}
        for model, version in versions.items():
            entry = self._entry(model)
            with self._guard:
                entry.pending[version] = _Change(by_model.get(model, []), model in stale, True, None)
            with entry.lock:
                self._drain(entry)
        for model, leases in by_model.items():
            if model not in versions:
                entry = self._entry(model)
                with entry.lock:
                    if self._apply_leases(entry, leases):
                        self.remote_applied += 1


def _tx(session: Session) -> _Tx:
    tx = session.info.get("calendars_tx")
    if tx is None:
        tx = session.info["calendars_tx"] = _Tx()
    assert isinstance(tx, _Tx)
    return tx


def _node_changes(session: Session, tx: _Tx) -> set[str]:
    """Models whose nodes this transaction changed (flushed or not yet)."""
    pending = {o.gpu_model for o in (*session.new, *session.dirty) if isinstance(o, Node) and o.gpu_model is not None}
    return tx.node_models | pending


_ALLOCATION_COLUMNS = frozenset(("id", "lease_id", "node_id", "gpu_index", "starts_at", "ends_at", "released"))


def _lease_gpus(session: Session, lease_ids: set[int], node_model: dict[int, str]) -> list[LeaseGpus] | None:
    """Each lease's GPUs as they stand in this transaction: its unreleased, non-empty allocations of the latest
    start (a lease moved off a failed node keeps its earlier ones on record, ended at the failure)."""
    if not lease_ids:
        return []
    # The rows' values read from each object's dict: what the session holds, loaded or as set, without an attribute
    # event per read (an object with a column expired is read through its attributes, which load it).
    allocs: dict[int, dict[int, dict[str, Any]]] = {lid: {} for lid in lease_ids}
    for obj in list(session.identity_map.values()):
        if type(obj) is Allocation and instance_state(obj).persistent:
            values = obj.__dict__
            if not values.keys() >= _ALLOCATION_COLUMNS:
                values = {k: getattr(obj, k) for k in _ALLOCATION_COLUMNS}
            by_id = allocs.get(values["lease_id"])
            if by_id is not None:
                by_id[values["id"]] = values
    out: list[LeaseGpus] = []
    for lease_id, by_id in allocs.items():
        rows = list(by_id.values())
        # The model as the session has it, without refreshing an expired lease (no statement).
        known = session.identity_map.get(identity_key(Lease, lease_id))
        model = None if known is None else known.__dict__.get("gpu_model")
        if model is None and rows:
            model = node_model.get(rows[0]["node_id"])
        if model is None:
            lease = session.get(Lease, lease_id)
            if lease is None or lease.gpu_model is None:
                continue
            model = lease.gpu_model
        live = [a for a in rows if not a["released"] and (a["ends_at"] is None or a["ends_at"] > a["starts_at"])]
        latest = max((a["starts_at"] for a in live), default=None)
        group = sorted((a for a in live if a["starts_at"] == latest), key=lambda a: (a["node_id"], a["gpu_index"]))
        if not group:
            out.append((lease_id, model, [], 0, None, 0))
            continue
        count = None if known is None else known.__dict__.get("gpu_count")
        if count is not None and len(group) != count:
            return None  # not every allocation of the lease is in the session: the caller reloads instead
        end = group[0]["ends_at"]
        out.append(
            (
                lease_id,
                model,
                [(a["node_id"], a["gpu_index"]) for a in group],
                epoch(group[0]["starts_at"]),
                None if end is None else epoch(end),
                0,
            )
        )
    return out


__all__ = ["CalendarBusy", "Calendars", "Speculation"]
