"""Several `gpulease serve` processes on one PostgreSQL: any of them answers, exactly one runs the lease clock,
and when that one is killed with SIGKILL another takes the clock over, so leases still start and end on time,
no GPU is booked twice and nothing is billed twice.

Three real server processes (as an operator runs them), real time, real HTTP; the store is read only at the end,
to look for double bookings and doubled usage. PostgreSQL only: an SQLite store has one process.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from gpulease.runtime import Runtime
from gpulease.services import keys, lifecycle
from gpulease.services.context import SYSTEM
from gpulease.services.transitions import close_ending
from gpulease.settings import Settings
from gpulease.store.db import Store
from gpulease.store.leader import try_tick_lock
from gpulease.store.models import Allocation, Lease, UsageRecord
from tests.api.test_concurrency import _overlaps
from tests.conftest import PG_URL, Clock, Facility, ServeProcess, seed_over_http, wait_for

needs_postgres = pytest.mark.skipif(not PG_URL, reason="several server processes need PostgreSQL")

MAX_DELAY_S = 5.0  # the goal: killing the clock's holder delays no lease transition by more than this


@pytest.fixture
def servers(db_url: str, tmp_path: Path, sandbox_dir: Path) -> Iterator[list[ServeProcess]]:
    env = {
        **os.environ,
        "GPULEASE_DATA_DIR": str(tmp_path / "data"),  # one host: the audit signing key and the runs are shared
        "GPULEASE_DATABASE_URL": db_url,
        "GPULEASE_SANDBOX_DIR": str(sandbox_dir),
        "GPULEASE_TICK_SECONDS": "0.5",
        "GPULEASE_CLOCK_TAKEOVER_S": "0.5",
        "GPULEASE_RATE_LIMIT_PER_S": "0",
        "GPULEASE_STOP_GRACE_S": "1",
    }
    began = time.monotonic()
    started: list[ServeProcess] = [ServeProcess(env, tmp_path / "serve-0.log")]
    try:
        wait_for(started[0].ready, 60, "the first server to answer")  # it migrates and makes the audit key
        # the others as deploy.md says: one migrates, the rest start with --no-upgrade-db
        started += [ServeProcess(env, tmp_path / f"serve-{i}.log", upgrade_db=False) for i in (1, 2)]
        for i, server in enumerate(started):
            wait_for(server.ready, 60, f"server {i} to answer")
        print(f"\nthree servers up in {time.monotonic() - began:.1f}s")
        yield started
    finally:
        for server in started:
            server.stop()


def leaders(servers: list[ServeProcess]) -> list[ServeProcess]:
    return [s for s in servers if s.proc.poll() is None and s.health()["clock"] == "leader"]


def test_one_runtime_at_a_time_holds_the_clock(settings: Settings, tmp_path: Path) -> None:
    """Two runtimes on one database: PostgreSQL lets one hold the clock, and the other takes it when the holder
    lets go or its connection dies; a tick while another tick runs does nothing. SQLite: the clock just runs."""
    a = Runtime(settings)
    b = Runtime(settings.model_copy(update={"data_dir": tmp_path / "b"}))
    try:
        assert a.leadership.hold() and a.is_clock_leader
        if not a.store.is_postgres:
            assert b.leadership.hold(), "SQLite has one process: its clock always runs"
            return
        assert not b.leadership.hold() and not b.is_clock_leader
        a.leadership.release()
        assert not a.is_clock_leader
        assert b.leadership.hold() and b.is_clock_leader
        assert not a.leadership.hold()
        # The holder's session ends (its process or machine died): the lock goes with it.
        conn = b.leadership._conn
        assert conn is not None
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with a.store.transaction() as s:
            assert s.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        wait_for(a.leadership.hold, 5, "the other runtime to take the clock")
        assert not b.leadership.hold() and not b.is_clock_leader
        # Two ticks never overlap: while one holds the tick lock, another returns at once, changing nothing.
        with b.store.transaction() as s:
            assert try_tick_lock(s)
            results: list[lifecycle.TickResult] = []
            t = threading.Thread(target=lambda: results.append(a.tick()))
            t.start()
            t.join(10)
        assert results == [lifecycle.TickResult()]
    finally:
        a.close()
        b.close()


@needs_postgres
def test_the_clock_survives_its_holder_killed(servers: list[ServeProcess], db_url: str, tmp_path: Path) -> None:
    admin = Runtime(Settings(database_url=db_url, data_dir=tmp_path / "admin"), supervises_runs=False)
    try:
        op = {"Authorization": "Bearer " + admin.perform(keys.create_key, actor=SYSTEM, role="operator")}
        staff = {"Authorization": "Bearer " + admin.perform(keys.create_key, actor=SYSTEM, role="compliance")}
        c = httpx.Client(base_url=servers[0].url, timeout=30)
        customer = seed_over_http(c, op, nodes=[f"n{n}" for n in range(3)], rates={"on_demand": "1.25"})
        cust = {
            "Authorization": "Bearer "
            + admin.perform(keys.create_key, actor=SYSTEM, role="customer", customer_id=customer["id"])
        }

        # Exactly one process runs the clock; /metrics says which.
        wait_for(lambda: len(leaders(servers)) == 1, 10, "one server to hold the clock")
        holder = leaders(servers)[0]
        for s in servers:
            metrics = httpx.get(s.url + "/metrics", headers=op, timeout=10).text
            want = 1 if s is holder else 0
            assert f'gpulease_clock_leader{{process="{s.health()["process"]}"}} {want}.0' in metrics

        # Book through all three at once: 3 clients x 12 requests for 24 GPUs, windows starting 6-11 s from now.
        t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
        booked: list[dict[str, Any]] = []
        refused: list[int] = []
        lock = threading.Lock()

        def book(server: ServeProcess, k: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                for i in range(12):
                    start = t0 + timedelta(seconds=(i + k) % 6)
                    end = start + timedelta(seconds=2 + (i + 2 * k) % 3)
                    body = {
                        "gpu_model": "A100-80GB",
                        "gpu_count": (1, 2, 4, 8)[(i + k) % 4],
                        "plan": "on_demand",
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                    }
                    r = client.post("/api/v1/leases", headers=cust, json=body)
                    with lock:
                        if r.status_code == 201:
                            booked.append(r.json())
                        else:
                            assert r.status_code == 409, r.text  # no room: refused, never double-booked
                            refused.append(r.status_code)

        clients = [threading.Thread(target=book, args=(s, k)) for k, s in enumerate(servers)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        assert booked, "nothing was booked"
        print(f"booked in {(datetime.now(UTC) - t0).total_seconds() + 6:.1f}s")
        assert datetime.now(UTC) < t0, "booking took too long for the windows chosen"

        # Watch the leases from a server that stays up; kill the clock's holder once the first leases started.
        survivors = [s for s in servers if s is not holder]
        watcher = httpx.Client(base_url=survivors[0].url, timeout=10)
        started: dict[int, datetime] = {}
        ended: dict[int, datetime] = {}
        mine = {x["id"]: x for x in booked}
        last_end = max(datetime.fromisoformat(x["end"]) for x in booked)
        killed_at: datetime | None = None
        taken_over_s: float | None = None
        while datetime.now(UTC) < last_end + timedelta(seconds=MAX_DELAY_S + 2) and len(ended) < len(mine):
            now = datetime.now(UTC)
            for lease in watcher.get("/api/v1/leases", headers=op).json():
                if lease["id"] not in mine:
                    continue
                if lease["state"] in ("active", "ending", "ended"):
                    started.setdefault(lease["id"], now)
                if lease["state"] in ("ending", "ended"):
                    ended.setdefault(lease["id"], now)
            if killed_at is None and now >= t0 + timedelta(seconds=2):
                holder.stop(signal.SIGKILL)
                killed_at = datetime.now(UTC)
            elif killed_at is not None and taken_over_s is None and leaders(survivors):
                taken_over_s = (datetime.now(UTC) - killed_at).total_seconds()
            time.sleep(0.2)
        assert killed_at is not None

        # Another server took the clock over.
        wait_for(lambda: len(leaders(survivors)) == 1, MAX_DELAY_S, "a surviving server to take the clock")
        start_delay = {i: (started[i] - datetime.fromisoformat(x["start"])).total_seconds() for i, x in mine.items()
                       if i in started}  # fmt: skip
        end_delay = {i: (ended[i] - datetime.fromisoformat(x["end"])).total_seconds() for i, x in mine.items()
                     if i in ended}  # fmt: skip
        assert set(started) == set(mine), f"never started: {sorted(set(mine) - set(started))}"
        assert set(ended) == set(mine), f"never ended: {sorted(set(mine) - set(ended))}"
        after_kill = [i for i, x in mine.items() if datetime.fromisoformat(x["end"]) > killed_at]
        assert after_kill, "no lease ended after the kill: the test shows nothing"
        print(
            f"\n{len(mine)} leases booked, {len(refused)} refused; killed the clock's holder at "
            f"{killed_at.time()}, another took the clock within {taken_over_s}s; {len(after_kill)} leases ended "
            f"after; largest delay: start "
            f"{max(start_delay.values()):.2f}s, end {max(end_delay.values()):.2f}s"
        )
        assert max(start_delay.values()) <= MAX_DELAY_S, start_delay
        assert max(end_delay.values()) <= MAX_DELAY_S, end_delay

        # Nothing billed twice: the usage records agree with the event log, and no lease's usage overlaps itself.
        wait_for(
            lambda: all(x["state"] == "ended" for x in watcher.get("/api/v1/leases", headers=op).json()),
            10,
            "every lease to close",
        )
        verdict = watcher.get("/api/v1/billing/verify", headers=staff).json()
        assert verdict == {"ok": True, "problems": []}, verdict
        store = Store(db_url)
        try:
            with store.transaction() as db:
                usage: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
                for u in db.scalars(select(UsageRecord)):
                    usage[u.lease_id].append((u.starts_at, u.ends_at))
                for lease in db.scalars(select(Lease)):
                    spans = sorted(usage[lease.id])
                    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), (lease.id, spans)
                    billed = sum((e - b).total_seconds() for b, e in spans)
                    assert lease.ends_at is not None
                    assert billed == (lease.ends_at - lease.starts_at).total_seconds(), (lease.id, spans)
                # No double booking: no two allocations of one GPU overlap in time.
                per_gpu: dict[tuple[int, int], list[tuple[datetime, datetime]]] = defaultdict(list)
                for a in db.scalars(select(Allocation).where(Allocation.released.is_(False))):
                    assert a.ends_at is not None
                    per_gpu[(a.node_id, a.gpu_index)].append((a.starts_at, a.ends_at))
                for gpu, spans in per_gpu.items():
                    spans.sort()
                    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), (gpu, spans)
        finally:
            store.dispose()
    finally:
        admin.close()


@needs_postgres
def test_an_ending_lease_is_closed_once_when_two_processes_reconcile(facility: Facility, clock: Clock) -> None:
    """Every process reconciles after its own changes and the clock's holder after each tick: a lease another
    process is closing right now is skipped, not closed (and told to its customer) twice."""
    f, rt = facility, facility.rt
    f.nodes(1)
    f.prices()
    key = f.customer_key(f.customer()["id"])
    lease = f.lease(headers=key, gpu_model="A100-80GB", gpu_count=1, end=(clock() + timedelta(hours=1)).isoformat())
    with rt.store.transaction() as s:
        row = s.get(Lease, lease["id"])
        assert row is not None
        row.state = "ending"  # as `finish` leaves it while its runs are being stopped
    closed: list[list[int]] = []
    with rt.store.transaction() as other:  # another process closing it now holds its row
        other.execute(select(Lease).where(Lease.id == lease["id"]).with_for_update())
        t = threading.Thread(target=lambda: closed.append(rt.perform(close_ending, actor="executor")))
        t.start()
        t.join(10)
    assert closed == [[]], "a lease locked by another process must be skipped, not waited for or closed again"
    assert rt.perform(close_ending, actor="executor") == [lease["id"]]
    assert rt.perform(close_ending, actor="executor") == []
    events = f.c.get(f"/api/v1/leases/{lease['id']}/events", headers=key).json()
    assert [e["to_state"] for e in events].count("ended") == 1


@needs_postgres
def test_one_serve_with_several_workers(db_url: str, tmp_path: Path, sandbox_dir: Path) -> None:
    """`gpulease serve --workers 2`: two processes on one port, each a server of its own (calendars kept in step by
    NOTIFY), one of them holding the clock; bookings through the port from many clients at once never overlap;
    SIGTERM to the command stops both."""
    env = {
        **os.environ,
        "GPULEASE_DATA_DIR": str(tmp_path / "data"),
        "GPULEASE_DATABASE_URL": db_url,
        "GPULEASE_SANDBOX_DIR": str(sandbox_dir),
        "GPULEASE_RATE_LIMIT_PER_S": "0",
    }
    server = ServeProcess(env, tmp_path / "serve.log", workers=2)
    admin = Runtime(Settings(database_url=db_url, data_dir=tmp_path / "admin"), supervises_runs=False)
    try:
        server.wait_ready(90)
        workers = [int(p) for p in Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()]
        op = {"Authorization": "Bearer " + admin.perform(keys.create_key, actor=SYSTEM, role="operator")}
        c = httpx.Client(base_url=server.url, timeout=30)
        customer = seed_over_http(c, op, nodes=[f"n{n}" for n in range(2)], rates={"on_demand": "1.25"})

        seen: dict[str, str] = {}

        def one_of_each() -> bool:  # a new connection each time: either worker may accept it
            health = httpx.get(server.url + "/healthz", timeout=5).json()
            seen[health["process"]] = health["clock"]
            return sorted(seen.values()) == ["follower", "leader"]

        assert len(workers) >= 2  # the two workers (and multiprocessing's resource tracker)
        wait_for(one_of_each, 30, "both workers to answer, one of them holding the clock")
        # A burst of connections is spread over both: each worker listens on a socket of its own (a shared one
        # gave a whole burst to whichever worker woke first: 32 keep-alive clients on one worker, the other idle).
        burst = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(16)]
        for conn in burst:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: gpulease\r\nConnection: close\r\n\r\n")
        answered = [conn.makefile("rb").read().split(b"\r\n\r\n", 1)[1] for conn in burst]
        for conn in burst:
            conn.close()
        assert len({json.loads(body)["process"] for body in answered}) == 2

        booked: list[int] = []
        failures: list[str] = []
        lock = threading.Lock()

        def book(k: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                for i in range(6):
                    body = {
                        "customer_id": customer["id"],
                        "gpu_model": "A100-80GB",
                        "gpu_count": (1, 2, 1, 4)[(i + k) % 4],
                        "plan": "on_demand",
                        "duration_s": 3600,
                    }
                    r = client.post("/api/v1/leases", headers=op, json=body)
                    with lock:
                        if r.status_code == 201:
                            booked.append(r.json()["id"])
                        elif r.status_code != 409:
                            failures.append(r.text)
                    if r.status_code == 201:
                        assert client.post(f"/api/v1/leases/{r.json()['id']}/end", headers=op).status_code == 200

        threads = [threading.Thread(target=book, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert failures == []
        assert len(booked) >= 40
        assert _overlaps(admin) == []
    finally:
        admin.close()
        server.stop()
    assert server.proc.returncode is not None

    def gone(pid: int) -> bool:
        try:
            return "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        except OSError:
            return True

    wait_for(lambda: all(gone(pid) for pid in workers), 15, "the workers to stop with the command")
