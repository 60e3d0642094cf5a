"""The audit log as one server process runs it: a background sealer that chains new records about once a
second and signs a checkpoint of the head when it grew (at most every `audit_checkpoint_interval_s`, and
at shutdown), storing it in the database and appending it to a file under the data folder.

Several processes on one PostgreSQL database each run a sealer; the advisory lock in `seal` lets one
at a time do the work and the others skip that round. A checkpoint is signed only over a chain that
still extends the previous checkpoint; otherwise the sealer refuses, raises an operator alert and keeps
sealing (writers never wait on it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpulease.audit.chain import ChainWalk, SealPlan, SealResult, plan_seal, seal, sealed_records
from gpulease.audit.checkpoints import (
    Checkpoint,
    CheckpointFormatError,
    SigningKey,
    VerifierKey,
    append_checkpoint_file,
    read_checkpoint_file,
    utc_text,
)
from gpulease.audit.verify import VerifyResult, verify
from gpulease.settings import Settings
from gpulease.store.db import Store
from gpulease.store.models import Alert, AuditCheckpoint, AuditRecord

# A checkpoint's check of the chain since the last one hashes every record again: ~4,000 under load, 10 s apart,
# ~200 ms of CPU. Run in one go it held the interpreter while the bookings (SQLite's writer lock among them) waited,
# and every client's latency jumped by 100-250 ms at once. In batches of ~2.5 ms with a pause after each, it runs
# about a fifth of the time for a second and the request threads run in between.
WALK_BATCH = 50
WALK_PAUSE_S = 0.01

log = logging.getLogger("gpulease.audit")


class AuditKeyError(RuntimeError):
    """The signing key is missing where it must be, or unreadable."""


class ChainMismatch(RuntimeError):
    """The chain no longer extends the last signed checkpoint: nothing new will be signed over it."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _latest(s: Session) -> Checkpoint | None:
    row = s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)).first()
    return None if row is None else Checkpoint(row.size, row.head, row.at, row.key_id, row.signature)


class AuditLog:
    def __init__(self, store: Store, settings: Settings, clock: Callable[[], datetime] = _utcnow) -> None:
        self.store, self.settings, self.clock = store, settings, clock
        self._key: SigningKey | None = None
        self._pass_lock = threading.Lock()  # one sealing pass at a time within this process
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_problem: str | None = None

    # ------------------------------------------------------------------------------------------- keys
    def signing_key(self, session: Session) -> SigningKey:
        """The checkpoint key: the configured file, else the data folder's, made on first use."""
        if self._key is not None:
            return self._key
        path = self.settings.audit_key_path
        try:
            self._key = SigningKey.load(path)
            return self._key
        except FileNotFoundError:
            if self.settings.audit_signing_key_file is not None:
                raise AuditKeyError(f"the audit signing key file {path} does not exist") from None
        except (OSError, ValueError) as e:
            raise AuditKeyError(f"cannot read the audit signing key {path}: {e}") from e
        signed_by = session.scalar(select(AuditCheckpoint.key_id).limit(1))
        if signed_by is not None:
            # A fresh key here would fork the log's signatures; this process is probably pointed at the
            # wrong data folder.
            raise AuditKeyError(
                f"the stored checkpoints are signed by key {signed_by} but there is no key at {path}; "
                "set GPULEASE_AUDIT_SIGNING_KEY_FILE to the key that signed them"
            )
        try:
            self._key = SigningKey.create(path)
            log.info("made a new audit signing key %s at %s", self._key.verifier.key_id, path)
        except FileExistsError:  # another thread or process made it first
            self._key = SigningKey.load(path)
        return self._key

    def public_key(self) -> VerifierKey:
        with self.store.transaction() as s:
            return self.signing_key(s).verifier

    def trusted_keys(self, given: Sequence[VerifierKey] = ()) -> list[VerifierKey]:
        """Keys a checkpoint may be signed with: the ones given, else this log's own and the configured ones.

        Given keys replace the local ones, so a verifier holding the real key is not fooled by a key file
        someone swapped in the data folder.
        """
        if given:
            return list(given)
        keys = [VerifierKey.parse(k) for k in self.settings.audit_public_keys]
        if self._key is not None:
            keys.append(self._key.verifier)
        elif self.settings.audit_key_path.exists():
            try:
                keys.append(SigningKey.load(self.settings.audit_key_path).verifier)
            except (OSError, ValueError) as e:
                raise AuditKeyError(f"cannot read the audit signing key {self.settings.audit_key_path}: {e}") from e
        return keys

    # ---------------------------------------------------------------------------------------- sealing
    def seal_pass(self, *, wait: bool = False, checkpoint: bool = False) -> Checkpoint | None:
        """Chain what has committed; sign a checkpoint when one is due (or now, with `checkpoint`).

        Returns the newest checkpoint covering the head when one is due or asked for; None when another
        process holds the sealer lock (and not `wait`) or no checkpoint is due. Raises ChainMismatch
        when asked for a checkpoint the chain no longer supports.
        """
        with self._pass_lock:
            refusal: str | None = None
            fresh = False
            plan, walked = (None, None) if self.store.is_postgres else self._prepare(force=checkpoint)
            with self.store.transaction() as s:
                # A regular pass writes what it planned; one asked for a checkpoint seals everything committed.
                result = seal(s, wait=wait, plan=plan, rest=checkpoint)
                if result is None:
                    return None
                cp, fresh, refusal = self._checkpoint(s, result, force=checkpoint, walked=walked)
            if fresh and cp is not None:
                try:
                    append_checkpoint_file(self.settings.audit_checkpoint_path, cp)
                except OSError:
                    log.exception("could not append to the audit checkpoint file")
            if refusal is not None and checkpoint:
                raise ChainMismatch(refusal)
            return cp

    def checkpoint(self) -> Checkpoint:
        """Seal everything committed (waiting for another sealer if need be) and sign its head."""
        cp = self.seal_pass(wait=True, checkpoint=True)
        if cp is None:
            raise ChainMismatch("the audit log is empty: there is nothing to sign")
        return cp

    def _prepare(self, *, force: bool) -> tuple[SealPlan, ChainWalk | None]:
        """SQLite: what a pass can work out in a read-only snapshot, outside the store's one writer lock (held by
        the pass, every booking waited for it: 15-50 ms each second, 100-170 ms at each checkpoint). The links of
        the pending records (a regular pass writes only those: the records committed while it waited for the lock
        are the next pass's); and when a checkpoint is due, the check of the chain sealed since the last one (None
        when not due, or when it finds a problem: the writing pass then checks, and reports it)."""
        with self.store.reading() as r:
            plan = plan_seal(r)
            latest = _latest(r)
            if not force and not self._checkpoint_due(latest, self.clock()):
                return plan, None
            walk = ChainWalk() if latest is None else ChainWalk(latest.size, latest.head)
            for n, rec in enumerate(sealed_records(r, after=walk.size), 1):
                if walk.step(rec) is not None:
                    return plan, None
                if n % WALK_BATCH == 0:
                    time.sleep(WALK_PAUSE_S)
            return plan, walk

    def _checkpoint_due(self, latest: Checkpoint | None, now: datetime) -> bool:
        """Whether the interval since the last checkpoint has passed (or there is none, or the clock went back)."""
        if latest is None:
            return True
        since = (now - latest.at).total_seconds()
        return not 0 <= since < self.settings.audit_checkpoint_interval_s

    def _checkpoint(
        self, s: Session, result: SealResult, *, force: bool, walked: ChainWalk | None = None
    ) -> tuple[Checkpoint | None, bool, str | None]:
        """(checkpoint of the head or None, whether it was just signed, why signing was refused). `walked`: the
        chain checked already from the last checkpoint (`_prepare`), where this transaction still has it."""
        latest = _latest(s)
        now = self.clock()
        if latest is not None:
            # Every round, cheaply: is the last signed head still in the chain? (emptied, truncated, re-hashed)
            pinned = s.scalar(select(AuditRecord.hash).where(AuditRecord.seq == latest.size))
            if pinned != latest.head:
                problem = (
                    f"record {latest.size} is gone" if pinned is None else f"record {latest.size} has another hash"
                ) + f" since the checkpoint signed {utc_text(latest.at)}"
                self._alert(s, now, problem)
                return None, False, problem
            if (latest.size, latest.head) == (result.size, result.head):
                return latest, False, None
        if result.size == 0:
            return None, False, None
        if not force and not self._checkpoint_due(latest, now):
            return None, False, None
        mismatch = self._mismatch(s, latest, result, walked)
        if mismatch is not None:
            self._alert(s, now, mismatch)
            return None, False, mismatch
        self._last_problem = None
        cp = self.signing_key(s).sign(result.size, result.head, now)
        s.add(AuditCheckpoint(size=cp.size, head=cp.head, at=cp.at, key_id=cp.key_id, signature=cp.signature))
        return cp, True, None

    @staticmethod
    def _mismatch(
        s: Session, latest: Checkpoint | None, result: SealResult, walked: ChainWalk | None = None
    ) -> str | None:
        """Why the chain does not extend `latest` (checking only what came after it), or None."""
        # The first checkpoint vouches for the whole chain, so it checks the whole chain.
        walk = ChainWalk() if latest is None else ChainWalk(latest.size, latest.head)
        if (
            walked is not None
            and walked.size > walk.size
            and s.scalar(select(AuditRecord.hash).where(AuditRecord.seq == walked.size)) == walked.head
        ):
            # Checked from a checkpoint at or before `latest` up to a record this transaction still has as it was:
            # only what was sealed since is left to check.
            walk = ChainWalk(walked.size, walked.head)
        for rec in sealed_records(s, after=walk.size):
            problem = walk.step(rec)
            if problem is not None:
                return problem
        if (walk.size, walk.head) != (result.size, result.head):
            return f"the chain's head is not where sealing left it (record {result.size})"
        return None

    def _alert(self, s: Session, now: datetime, problem: str) -> None:
        message = (
            "The audit chain no longer extends its last signed checkpoint, so no new checkpoint is signed; "
            f"run `gpulease audit verify`: {problem}"
        )
        if problem != self._last_problem:
            log.error("audit checkpoint refused: %s", problem)
            self._last_problem = problem
        # One alert per distinct problem: once acknowledged it stays acknowledged, though the sealer meets it
        # again every round until the chain is repaired.
        raised = s.scalar(select(Alert.id).where(Alert.kind == "audit_chain", Alert.message == message).limit(1))
        if raised is None:
            s.add(Alert(at=now, kind="audit_chain", message=message, data={"problem": problem}))

    # ----------------------------------------------------------------------------------- verification
    def verify(self, session: Session, *, files: Sequence[Path] = (), keys: Sequence[VerifierKey] = ()) -> VerifyResult:
        """Verify against the stored checkpoints, this log's checkpoint file and any `files` given."""
        try:
            trusted = self.trusted_keys(keys)
            given: list[tuple[str, Checkpoint]] = []
            local = self.settings.audit_checkpoint_path
            for path in ([local] if local.exists() else []) + list(files):
                given += [(str(path), cp) for cp in read_checkpoint_file(path)]
        except (CheckpointFormatError, AuditKeyError, OSError) as e:
            return VerifyResult(False, 0, None, str(e))
        return verify(session, keys=trusted, checkpoints=given)

    # --------------------------------------------------------------------------------- the background
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="gpulease-audit-sealer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.audit_seal_interval_s):
            try:
                self.seal_pass()
            except Exception:  # keep sealing: the next round may well succeed (database back, lock free)
                log.exception("audit sealing failed")

    def stop(self) -> None:
        """Stop the background sealer; seal what is left and sign the final head."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=10)
        self._thread = None
        try:
            self.seal_pass(wait=True, checkpoint=True)
        except Exception:
            log.exception("final audit seal failed")
