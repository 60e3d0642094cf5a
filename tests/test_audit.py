"""The audit log: appends that never collide, the sealer, signed checkpoints, and what verification catches."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import stat
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import create_engine, delete, func, select, text, update
from typer.testing import CliRunner

from gpulease import audit
from gpulease.cli import app
from gpulease.runtime import Runtime
from gpulease.settings import Settings, get_settings
from gpulease.store.db import Store, upgrade
from gpulease.store.models import Alert, AuditCheckpoint, AuditRecord
from tests.conftest import PG_URL, Clock, Facility, Keys, _pg_schema_url, wait_for

runner = CliRunner()
on_postgres = pytest.mark.skipif(not PG_URL, reason="needs concurrent transactions: PostgreSQL")


@pytest.fixture
def cli(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI pointed at the test's store and data folder, as an operator's shell would be."""
    monkeypatch.setenv("GPULEASE_DATABASE_URL", runtime.settings.db_url)
    monkeypatch.setenv("GPULEASE_DATA_DIR", str(runtime.settings.data_dir))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _append(store: Store, n: int, actor: str = "tester", at: datetime | None = None) -> None:
    for k in range(n):
        with store.transaction() as s:
            audit.append(
                s, at=at or datetime.now(UTC), actor=actor, action="test.fact", subject=f"thing:{k}", data={"k": k}
            )


def _sealed_chain(facility: Facility, runtime: Runtime) -> audit.Checkpoint:
    """Some real history through the API, sealed and checkpointed the way the server does it."""
    facility.nodes(3)
    facility.prices()
    facility.customer()
    return runtime.audit_log.checkpoint()


def _size(runtime: Runtime) -> int:
    with runtime.store.transaction() as s:
        return int(s.scalar(select(func.max(AuditRecord.seq))) or 0)


def _rehash_from(runtime: Runtime, first: int) -> None:
    """What an attacker who knows the formula does after editing record `first`: re-hash everything after."""
    with runtime.store.transaction() as s:
        prev = s.scalar(select(AuditRecord.hash).where(AuditRecord.seq == first - 1)) or audit.GENESIS
        for rec in s.scalars(select(AuditRecord).where(AuditRecord.seq >= first).order_by(AuditRecord.seq)):
            assert rec.seq is not None
            rec.prev_hash = prev
            rec.hash = prev = audit.chain_hash(prev, rec.seq, rec.at, rec.actor, rec.action, rec.subject, rec.data)
            s.flush()


def _verify(runtime: Runtime) -> audit.VerifyResult:
    with runtime.store.transaction() as s:
        return runtime.audit_log.verify(s)


# ----------------------------------------------------------------------------------- appends and sealing


def test_append_leaves_the_record_to_the_sealer(runtime: Runtime, clock: Clock) -> None:
    with runtime.store.transaction() as s:
        rec = audit.append(s, at=clock(), actor="op", action="node.added", subject="node:1", data={"gpus": 8})
        s.flush()
        assert rec.id is not None and rec.seq is None and rec.hash is None
    before = _verify(runtime)
    assert before.ok and before.pending >= 1
    with runtime.store.transaction() as s:
        result = audit.seal(s)
    assert result is not None and result.sealed == before.pending
    with runtime.store.transaction() as s:
        sealed = s.get(AuditRecord, rec.id)
        assert sealed is not None and sealed.seq == result.size and sealed.hash == result.head
    after = _verify(runtime)
    assert after.ok and after.pending == 0 and after.records == result.size


def test_many_threads_append_in_parallel_then_one_chain_verifies(runtime: Runtime) -> None:
    """16 writers, two records per transaction, while the server's sealer runs; on PostgreSQL all 16
    transactions are open at once (a barrier inside them), which the old tail lock could not survive."""
    writers, rounds = 16, 20
    barrier = threading.Barrier(writers, timeout=30) if runtime.store.is_postgres else None
    errors: list[str] = []
    runtime.audit_log.start()

    def writer(i: int) -> None:
        for k in range(rounds):
            try:
                with runtime.store.transaction() as s:
                    for part in ("a", "b"):
                        audit.append(
                            s,
                            at=datetime.now(UTC),
                            actor=f"writer-{i}",
                            action="test.parallel",
                            subject=f"w:{i}",
                            data={"k": k, "part": part},
                        )
                    s.flush()
                    if barrier is not None and k == 0:
                        barrier.wait()  # every writer holds an uncommitted, numbered record now
            except Exception as e:  # each of these would have been a 500
                errors.append(repr(e))

    pool = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    runtime.audit_log.stop()  # as at shutdown: seals the rest and signs the final head
    assert errors == []
    result = _verify(runtime)
    assert result.ok, result.problem
    assert result.pending == 0 and result.checkpoints >= 1
    with runtime.store.transaction() as s:
        rows = s.execute(
            select(AuditRecord.actor, AuditRecord.data)
            .where(AuditRecord.action == "test.parallel")
            .order_by(AuditRecord.seq)
        ).all()
        seqs = s.scalars(select(AuditRecord.seq).order_by(AuditRecord.seq)).all()
    assert len(rows) == writers * rounds * 2
    assert seqs == list(range(1, len(seqs) + 1))
    for i in range(writers):  # each writer's records sit in the chain in the order it committed them
        mine = [(r.data["k"], r.data["part"]) for r in rows if r.actor == f"writer-{i}"]
        assert mine == sorted(mine)


@on_postgres
def test_a_record_that_commits_late_is_sealed_after_later_ids(runtime: Runtime, clock: Clock) -> None:
    slow = runtime.store.sessions()
    slow.begin()
    early = audit.append(slow, at=clock(), actor="slow", action="test.late", subject="x")
    slow.flush()  # numbered now, committed later
    with runtime.store.transaction() as s:
        quick = audit.append(s, at=clock(), actor="quick", action="test.late", subject="y")
    runtime.audit_log.seal_pass(wait=True)
    slow.commit()
    slow.close()
    runtime.audit_log.seal_pass(wait=True)
    with runtime.store.transaction() as s:
        a, b = s.get(AuditRecord, early.id), s.get(AuditRecord, quick.id)
        assert a is not None and b is not None and a.seq is not None and b.seq is not None
        assert a.id < b.id and a.seq > b.seq  # chain order is seal order
    assert _verify(runtime).ok


def _pending(runtime: Runtime) -> int:
    with runtime.store.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.seq.is_(None))) or 0)


def test_links_worked_out_in_a_snapshot_are_written_and_later_records_sealed_after(runtime: Runtime) -> None:
    _append(runtime.store, 5)
    with runtime.store.reading() as r:
        plan = audit.plan_seal(r)
    assert len(plan.links) == _pending(runtime) and plan.size == plan.after[0] + len(plan.links)
    _append(runtime.store, 2, actor="later")  # committed after the snapshot
    with runtime.store.transaction() as s:
        result = audit.seal(s, plan=plan)
    assert result is not None and result.sealed == len(plan.links) + 2
    assert _pending(runtime) == 0
    checked = _verify(runtime)
    assert checked.ok and checked.records == result.size
    with runtime.store.transaction() as s:
        last = s.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(2)).all()
        assert [r.actor for r in last] == ["later", "later"]  # sealed after the planned ones


def test_a_plan_the_chain_has_moved_past_is_worked_out_afresh(runtime: Runtime) -> None:
    _append(runtime.store, 3)
    with runtime.store.reading() as r:
        stale = audit.plan_seal(r)
    with runtime.store.transaction() as s:
        audit.seal(s)  # another pass sealed them first
    _append(runtime.store, 1)
    with runtime.store.transaction() as s:
        result = audit.seal(s, plan=stale)
    assert result is not None and result.sealed == 1
    assert _verify(runtime).ok


def test_a_planned_record_taken_out_meanwhile_rolls_the_seal_back(runtime: Runtime) -> None:
    _append(runtime.store, 3)
    with runtime.store.reading() as r:
        plan = audit.plan_seal(r)
    taken = plan.links[1]["rid"]
    with runtime.store.transaction() as s:  # taken out of the chain by hand before it was sealed
        s.execute(update(AuditRecord).where(AuditRecord.id == taken).values(hash="f" * 64))
    before = _pending(runtime)
    with pytest.raises(audit.ChainMoved, match="no longer pending"), runtime.store.transaction() as s:
        audit.seal(s, plan=plan)
    assert _pending(runtime) == before  # nothing of the plan was written
    with runtime.store.transaction() as s:
        result = audit.seal(s)  # worked out afresh: the record taken out stays out
    assert result is not None and result.sealed == before - 1


def test_a_plan_only_seal_leaves_what_came_since_to_the_next_pass(runtime: Runtime) -> None:
    _append(runtime.store, 3)
    with runtime.store.reading() as r:
        plan = audit.plan_seal(r)
    planned = len(plan.links)  # the 3, and what the new store holds already
    _append(runtime.store, 2, actor="later")  # committed while the pass waited for the writer lock
    with runtime.store.transaction() as s:
        result = audit.seal(s, plan=plan, rest=False)
    assert result is not None and (result.sealed, result.size) == (planned, planned)
    assert _pending(runtime) == 2
    with runtime.store.transaction() as s:
        audit.seal(s)  # the next pass seals them
    assert _pending(runtime) == 0 and _verify(runtime).ok
    with runtime.store.reading() as r:
        nothing = audit.plan_seal(r)
    _append(runtime.store, 1)
    with runtime.store.transaction() as s:  # a plan that found nothing pending writes nothing and leaves the rest
        result = audit.seal(s, plan=nothing, rest=False)
    assert result is not None and (result.sealed, result.size) == (0, planned + 2) and _pending(runtime) == 1


def _hashes_inside_the_lock(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """From now on, one entry per chain hash computed: whether SQLite's writer lock was held while it was."""
    writer = runtime.store._writer
    assert writer is not None
    inside: list[bool] = []
    real = audit.chain.chain_hash

    def counted(*args: Any) -> str:
        inside.append(writer.is_owned())
        return real(*args)

    monkeypatch.setattr(audit.chain, "chain_hash", counted)
    return inside


@pytest.mark.skipif(bool(PG_URL), reason="SQLite's one writer lock")
def test_the_sealer_hashes_outside_sqlites_writer_lock(
    runtime: Runtime, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bookings wait for SQLite's one writer: a sealing pass works out its links, and at a checkpoint checks the
    chain since the last one, in a read-only snapshot; inside the lock only what it sealed is checked."""
    inside = _hashes_inside_the_lock(runtime, monkeypatch)
    _append(runtime.store, 4)
    assert runtime.audit_log.seal_pass() is not None  # the first checkpoint
    _append(runtime.store, 30)
    inside.clear()
    assert runtime.audit_log.seal_pass() is None  # sealed; no checkpoint due yet
    assert len(inside) == 30 and not any(inside)
    _append(runtime.store, 5)
    clock.advance(seconds=runtime.settings.audit_checkpoint_interval_s)
    inside.clear()
    cp = runtime.audit_log.seal_pass()
    assert cp is not None and cp.size == _size(runtime)
    assert sum(inside) == 5  # the five it sealed; the thirty before were checked outside the lock
    assert _verify(runtime).ok


@pytest.mark.skipif(bool(PG_URL), reason="SQLite's one writer lock")
def test_records_committed_while_a_pass_waits_for_the_lock_wait_for_the_next(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load a pass waits its turn for the writer lock behind a queue of bookings, which append records
    meanwhile (a few hundred): sealing those inside the lock held every writer up 40-150 ms."""
    inside = _hashes_inside_the_lock(runtime, monkeypatch)
    assert runtime.audit_log.seal_pass() is not None  # the first checkpoint
    real_prepare = runtime.audit_log._prepare

    def then_more(*, force: bool) -> Any:
        planned = real_prepare(force=force)
        _append(runtime.store, 3, actor="meanwhile")
        return planned

    monkeypatch.setattr(runtime.audit_log, "_prepare", then_more)
    _append(runtime.store, 10)
    inside.clear()
    runtime.audit_log.seal_pass()
    assert len(inside) == 10 and not any(inside) and _pending(runtime) == 3
    monkeypatch.setattr(runtime.audit_log, "_prepare", real_prepare)
    inside.clear()
    runtime.audit_log.seal_pass()
    assert len(inside) == 3 and not any(inside) and _pending(runtime) == 0
    assert runtime.audit_log.checkpoint().size == _size(runtime) and _verify(runtime).ok


@on_postgres
def test_sealers_in_several_processes_take_turns(
    runtime: Runtime, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Three server processes on one database, each with its own engine and sealer, sealing every 20 ms."""
    fast = settings.model_copy(update={"audit_seal_interval_s": 0.02})
    stores = [Store(settings.db_url) for _ in range(3)]
    logs = [audit.AuditLog(st, fast) for st in stores]
    caplog.set_level(logging.ERROR, logger="gpulease.audit")
    for lg in logs:
        lg.start()
    pool = [threading.Thread(target=_append, args=(stores[i % 3], 40, f"p{i}")) for i in range(6)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    for lg in logs:
        lg.stop()
    for st in stores:
        st.dispose()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    result = _verify(runtime)
    assert result.ok and result.pending == 0 and result.records >= 240


def test_the_servers_sealer_chains_and_checkpoints_within_seconds(facility: Facility, runtime: Runtime) -> None:
    runtime.start()
    facility.nodes(1)

    path = runtime.settings.audit_checkpoint_path

    def settled() -> bool:
        r = _verify(runtime)
        # The sealer appends to the file just after its transaction commits: wait for both.
        chained = r.ok and r.pending == 0 and r.checkpoints >= 1
        return chained and path.exists() and path.read_text().count("\n") >= r.checkpoints

    wait_for(settled, 10, "the sealer to chain and checkpoint the new records")
    lines = path.read_text().splitlines()
    with runtime.store.transaction() as s:
        stored = s.scalars(select(AuditCheckpoint)).all()
    assert len(lines) == len(stored) >= 1
    assert audit.read_checkpoint_file(runtime.settings.audit_checkpoint_path)[-1].size == stored[-1].size


def test_parallel_audited_api_requests_all_succeed(live_server: str, runtime: Runtime, api_keys: Keys) -> None:
    """The load that gave 99 × 500 out of 200: 8 clients screening names at once, server sealing meanwhile."""
    runtime.start()
    names = ["iFlytek Co., Ltd.", "Acme Robotics Inc.", "北京商汤科技开发有限公司", "Nvidia Corporation"]
    with httpx.Client(base_url=live_server, headers=api_keys.co, timeout=120) as c:
        assert c.post("/api/v1/screen", json={"name": "warm-up"}).status_code == 200  # builds the index
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def client(i: int) -> None:
        with httpx.Client(base_url=live_server, headers=api_keys.co, timeout=120) as c:
            for k in range(25):
                r = c.post("/api/v1/screen", json={"name": names[(i + k) % len(names)], "country": "CN"})
                with lock:
                    statuses[r.status_code] += 1

    pool = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert statuses == {200: 200}
    with httpx.Client(base_url=live_server, headers=api_keys.co, timeout=120) as c:
        cp = c.get("/api/v1/audit/checkpoint").json()  # seals first
        report = c.get("/api/v1/audit/verify").json()
    assert report["ok"] and report["pending"] == 0 and report["signatures_checked"]
    assert report["records"] == cp["size"] >= 201
    with runtime.store.transaction() as s:
        assert s.scalar(select(func.count()).where(AuditRecord.action == "screen")) == 201


# ------------------------------------------------------------------------------------ keys and checkpoints


def test_checkpoint_key_is_made_on_first_use_private_and_printable(runtime: Runtime, cli: None) -> None:
    key_path = runtime.settings.audit_key_path
    assert not key_path.exists()
    r = runner.invoke(app, ["audit", "checkpoint", "--json"])
    assert r.exit_code == 0, r.output
    cp = audit.Checkpoint.from_json(json.loads(r.stdout))
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    r = runner.invoke(app, ["audit", "public-key"])
    assert r.exit_code == 0, r.output
    key = audit.VerifierKey.parse(r.stdout)
    assert key.key_id == cp.key_id and key.verifies(cp)


def test_checkpoint_is_a_signed_note_any_verifier_can_check(facility: Facility, runtime: Runtime, cli: None) -> None:
    """C2SP signed note: key hash = SHA-256(name, LF, 0x01, public key)[:4]; Ed25519 over the text."""
    _sealed_chain(facility, runtime)
    note = runner.invoke(app, ["audit", "checkpoint"]).stdout
    vkey = runner.invoke(app, ["audit", "public-key"]).stdout.strip()
    body, signature_line = note.split("\n\n")
    name, key_hash_hex, key_b64 = vkey.split("+", 2)
    public = base64.b64decode(key_b64)
    assert public[0] == 1 and bytes.fromhex(key_hash_hex) == hashlib.sha256(b"gpulease-audit\n" + public).digest()[:4]
    dash, signer, blob_b64 = signature_line.strip().split(" ")
    blob = base64.b64decode(blob_b64)
    assert (dash, signer, blob[:4].hex()) == ("\u2014", name, key_hash_hex)
    Ed25519PublicKey.from_public_bytes(public[1:]).verify(blob[4:], (body + "\n").encode())  # raises if forged
    origin, size, head, when = body.split("\n")
    assert origin == "gpulease audit log" and int(size) == _size(runtime) and len(head) == 64
    assert datetime.fromisoformat(when) == runtime.clock()


def test_another_data_folder_does_not_fork_the_signing_key(
    facility: Facility, runtime: Runtime, tmp_path: Path
) -> None:
    first = _sealed_chain(facility, runtime)
    elsewhere = runtime.settings.model_copy(update={"data_dir": tmp_path / "other"})
    _append(runtime.store, 1)
    with pytest.raises(audit.AuditKeyError, match="GPULEASE_AUDIT_SIGNING_KEY_FILE"):
        audit.AuditLog(runtime.store, elsewhere).checkpoint()
    assert not elsewhere.audit_key_path.exists()
    shared = elsewhere.model_copy(update={"audit_signing_key_file": runtime.settings.audit_key_path})
    again = audit.AuditLog(runtime.store, shared).checkpoint()
    assert again.key_id == first.key_id and again.size == first.size + 1


def test_checkpoints_follow_the_interval_and_skip_a_still_log(runtime: Runtime, clock: Clock) -> None:
    _append(runtime.store, 2)
    first = runtime.audit_log.seal_pass()
    assert first is not None and first.size >= 2  # the first one comes at once
    _append(runtime.store, 1)
    assert runtime.audit_log.seal_pass() is None  # sealed, but the next checkpoint is not due yet
    clock.advance(seconds=runtime.settings.audit_checkpoint_interval_s)
    second = runtime.audit_log.seal_pass()
    assert second is not None and second.size == first.size + 1
    clock.advance(hours=1)
    assert runtime.audit_log.seal_pass() == second  # nothing new: nothing signed
    with runtime.store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(AuditCheckpoint)) == 2


# ----------------------------------------------------------------------------------- tampering is caught


def test_edited_record_is_named(facility: Facility, runtime: Runtime, cli: None) -> None:
    _sealed_chain(facility, runtime)
    with runtime.store.transaction() as s:
        s.execute(update(AuditRecord).where(AuditRecord.seq == 4).values(data={"gpus": 800}))
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1 and "at record 4" in r.stderr and "altered" in r.stderr


def test_deleted_middle_record_is_named(facility: Facility, runtime: Runtime, cli: None) -> None:
    _sealed_chain(facility, runtime)
    with runtime.store.transaction() as s:
        s.execute(delete(AuditRecord).where(AuditRecord.seq == 3))
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1 and "record 3 is missing" in r.stderr


def test_deleted_tail_is_found_with_a_checkpoint_kept_elsewhere(
    facility: Facility, runtime: Runtime, cli: None, tmp_path: Path
) -> None:
    _sealed_chain(facility, runtime)
    kept = tmp_path / "shipped-elsewhere.txt"
    r = runner.invoke(app, ["audit", "checkpoint"])
    assert r.exit_code == 0, r.output
    kept.write_text(r.stdout)
    n = _size(runtime)
    with runtime.store.transaction() as s:
        s.execute(delete(AuditRecord).where(AuditRecord.seq > n - 2))
    r = runner.invoke(app, ["audit", "verify"])  # the stored checkpoint is enough while it is there
    assert r.exit_code == 1 and f"records {n - 1}–{n} are missing" in r.stderr
    # Someone who can delete records can delete the local evidence too …
    with runtime.store.transaction() as s:
        s.execute(delete(AuditCheckpoint))
    runtime.settings.audit_checkpoint_path.unlink()
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0  # what is left is a consistent, shorter chain
    # … but not the checkpoint the operator shipped elsewhere.
    r = runner.invoke(app, ["audit", "verify", "--checkpoint", str(kept)])
    assert r.exit_code == 1 and f"records {n - 1}–{n} are missing" in r.stderr and str(kept) in r.stderr


def test_emptied_table_fails_even_with_every_checkpoint_gone(facility: Facility, runtime: Runtime, cli: None) -> None:
    _sealed_chain(facility, runtime)
    with runtime.store.transaction() as s:
        s.execute(delete(AuditRecord))
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1 and "records 1–" in r.stderr and "missing" in r.stderr
    with runtime.store.transaction() as s:
        s.execute(delete(AuditCheckpoint))
    runtime.settings.audit_checkpoint_path.unlink()
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1 and "empty" in r.stderr


def test_emptied_table_of_a_new_store_fails(runtime: Runtime, cli: None) -> None:
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0  # a new store: its first record is there
    with runtime.store.transaction() as s:
        s.execute(delete(AuditRecord))
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1 and "empty" in r.stderr


def test_fully_rehashed_chain_fails(facility: Facility, runtime: Runtime, cli: None) -> None:
    _sealed_chain(facility, runtime)
    with runtime.store.transaction() as s:
        s.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(actor="mallory"))
    _rehash_from(runtime, 2)
    with runtime.store.transaction() as s:
        assert audit.verify(s).ok is False  # the chain alone would pass; the stored checkpoint does not
        rows = list(s.scalars(select(AuditRecord).order_by(AuditRecord.seq)))
    walk = audit.chain.ChainWalk()
    assert all(walk.step(rec) is None for rec in rows)
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1 and "changed and re-hashed" in r.stderr


def test_forged_checkpoint_signature_fails(facility: Facility, runtime: Runtime, cli: None) -> None:
    _sealed_chain(facility, runtime)
    with runtime.store.transaction() as s:
        s.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(actor="mallory"))
    _rehash_from(runtime, 2)
    with runtime.store.transaction() as s:  # the attacker makes the stored checkpoint match the new head
        head = s.scalar(select(AuditRecord.hash).where(AuditRecord.seq == _size(runtime)))
        s.execute(update(AuditCheckpoint).values(head=head))
    runtime.settings.audit_checkpoint_path.unlink()
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1 and "a signature that does not verify" in r.stderr
    mallory = audit.SigningKey(Ed25519PrivateKey.generate())
    forged = mallory.sign(_size(runtime), str(head), runtime.clock())
    with runtime.store.transaction() as s:  # or signs it with a key of their own
        s.execute(update(AuditCheckpoint).values(key_id=forged.key_id, signature=forged.signature, at=forged.at))
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1 and "not a trusted key" in r.stderr


def test_swapped_key_file_is_caught_by_the_key_and_checkpoint_kept_elsewhere(
    facility: Facility, runtime: Runtime, cli: None, tmp_path: Path
) -> None:
    cp = _sealed_chain(facility, runtime)
    real_key = runtime.audit_log.public_key().vkey
    kept = tmp_path / "kept.jsonl"
    kept.write_text(cp.to_json() + "\n")
    # Full local compromise: history re-written, key file replaced, every local checkpoint re-signed with it.
    with runtime.store.transaction() as s:
        s.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(actor="mallory"))
    _rehash_from(runtime, 2)
    path = runtime.settings.audit_key_path
    path.unlink()
    mallory = audit.SigningKey.create(path)
    with runtime.store.transaction() as s:
        s.execute(delete(AuditCheckpoint))
    runtime.settings.audit_checkpoint_path.unlink()
    forged = audit.AuditLog(runtime.store, runtime.settings, runtime.clock).checkpoint()
    assert forged.key_id == mallory.verifier.key_id
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0  # locally, everything agrees with itself
    r = runner.invoke(app, ["audit", "verify", "--public-key", real_key])
    assert r.exit_code == 1 and "not a trusted key" in r.stderr
    r = runner.invoke(app, ["audit", "verify", "--public-key", real_key, "--checkpoint", str(kept)])
    assert r.exit_code == 1


def test_a_sealed_record_cannot_be_moved(facility: Facility, runtime: Runtime) -> None:
    _sealed_chain(facility, runtime)
    with runtime.store.transaction() as s:  # take record 3 out of the chain, hoping the sealer re-seals it last
        s.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(seq=None))
    runtime.audit_log.seal_pass(wait=True)
    r = _verify(runtime)
    assert not r.ok and r.problem is not None and "moved" in r.problem
    with runtime.store.transaction() as s:
        assert s.scalar(select(func.count()).where(AuditRecord.seq.is_(None))) == 1  # the sealer left it alone


def test_sealer_refuses_to_sign_over_a_rewritten_chain_and_alerts(facility: Facility, runtime: Runtime) -> None:
    _sealed_chain(facility, runtime)
    with runtime.store.transaction() as s:
        s.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(actor="mallory"))
    _rehash_from(runtime, 2)
    _append(runtime.store, 1)
    with pytest.raises(audit.ChainMismatch, match="another hash"):
        runtime.audit_log.checkpoint()
    r = facility.c.get("/api/v1/audit/checkpoint", headers=facility.k.co)
    assert r.status_code == 409 and "another hash" in r.json()["detail"]
    with runtime.store.transaction() as s:
        alerts = s.scalars(select(Alert).where(Alert.kind == "audit_chain")).all()
        assert len(alerts) == 1 and "gpulease audit verify" in alerts[0].message
        assert s.scalar(select(func.count()).where(AuditRecord.seq.is_(None))) == 0  # sealing goes on


def test_api_and_dashboard_report_the_checkpoints(facility: Facility, runtime: Runtime) -> None:
    cp = _sealed_chain(facility, runtime)
    body = facility.c.get("/api/v1/audit/checkpoint", headers=facility.k.op).json()
    assert body["size"] == cp.size and body["signature"] == cp.signature
    assert audit.VerifierKey.parse(body["public_key"]).verifies(audit.Checkpoint.from_note(body["note"]))
    report = facility.c.get("/api/v1/audit/verify", headers=facility.k.co).json()
    assert report == {
        "ok": True,
        "records": cp.size,
        "broken_seq": None,
        "problem": None,
        "pending": 0,
        "checkpoints": 1,
        "signatures_checked": True,
    }


# ---------------------------------------------------------------------------------------------- migration


@pytest.fixture
def store_at_0004(tmp_path: Path) -> Iterator[str]:
    """An empty database migrated only up to 0004, when records were chained on insert."""
    if PG_URL:
        schema = f"m_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as c:
            c.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA public"))
            c.execute(text(f"CREATE SCHEMA {schema}"))
        url = _pg_schema_url(schema)
        upgrade(url, "0004")
        yield url
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    else:
        url = f"sqlite:///{tmp_path / 'old.db'}"
        upgrade(url, "0004")
        yield url


def test_migration_keeps_an_existing_chain_valid_and_appends_continue(store_at_0004: str, tmp_path: Path) -> None:
    from gpulease.store.types import UTCDateTime

    old = sa.table(
        "audit_log",
        sa.column("seq", sa.Integer),
        sa.column("at", UTCDateTime),
        sa.column("actor", sa.String),
        sa.column("action", sa.String),
        sa.column("subject", sa.String),
        sa.column("data", sa.JSON),
        sa.column("prev_hash", sa.String),
        sa.column("hash", sa.String),
    )
    engine = create_engine(store_at_0004.replace("postgresql://", "postgresql+psycopg://", 1))
    prev, t0 = audit.GENESIS, datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
    with engine.begin() as c:  # what the old append wrote, record by record
        for seq in range(1, 6):
            at, data = t0 + timedelta(minutes=seq), {"n": seq, "note": "before 0005"}
            h = audit.chain_hash(prev, seq, at, "op", "node.added", f"node:{seq}", data)
            c.execute(
                sa.insert(old).values(
                    seq=seq,
                    at=at,
                    actor="op",
                    action="node.added",
                    subject=f"node:{seq}",
                    data=data,
                    prev_hash=prev,
                    hash=h,
                )
            )
            prev = h
    engine.dispose()
    upgrade(store_at_0004)
    store = Store(store_at_0004)
    log = audit.AuditLog(store, Settings(data_dir=tmp_path / "data", database_url=store_at_0004))
    with store.transaction() as s:
        migrated = log.verify(s)
        assert migrated.ok and migrated.records == 5 and migrated.pending == 0
        assert s.scalar(select(AuditRecord.hash).where(AuditRecord.seq == 5)) == prev
    _append(store, 3)  # the database numbers new records after the migrated ones
    cp = log.checkpoint()
    assert cp.size == 8
    with store.transaction() as s:
        assert log.verify(s).ok
        ids = s.scalars(select(AuditRecord.id).order_by(AuditRecord.seq)).all()
        assert ids == [1, 2, 3, 4, 5, 6, 7, 8]
    store.dispose()


def test_migration_starts_an_empty_log_with_its_first_record(store_at_0004: str) -> None:
    upgrade(store_at_0004)
    store = Store(store_at_0004)
    with store.transaction() as s:
        first = s.scalars(select(AuditRecord)).one()
        assert (first.action, first.seq) == ("audit.started", None)
        assert audit.verify(s).ok
    store.dispose()


@pytest.mark.skipif(bool(PG_URL), reason="SQLite's check outside the writer lock")
def test_a_checkpoints_walk_of_the_chain_pauses_between_batches(
    runtime: Runtime, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check of every record since the last checkpoint (~4,000 under load, ~200 ms of CPU) runs in batches
    with a pause after each, so that requests run in between rather than all waiting ~200 ms at once."""
    from gpulease.audit import sealer

    _append(runtime.store, 4)
    assert runtime.audit_log.seal_pass() is not None  # the first checkpoint
    _append(runtime.store, 25)
    assert runtime.audit_log.seal_pass() is None  # sealed, not yet checked: no checkpoint due
    pauses: list[float] = []
    monkeypatch.setattr(sealer, "WALK_BATCH", 10)
    monkeypatch.setattr("gpulease.audit.sealer.time.sleep", pauses.append)
    clock.advance(seconds=runtime.settings.audit_checkpoint_interval_s)
    cp = runtime.audit_log.seal_pass()
    assert cp is not None and cp.size == _size(runtime)
    assert pauses == [sealer.WALK_PAUSE_S] * 2  # 25 records walked: a pause after the 10th and the 20th
    assert _verify(runtime).ok
