"""Booking throughput through the API: a real `gpulease serve` process, many clients booking and ending leases.

    .venv/bin/python benchmarks/api_load.py --store sqlite --clients 32 --seconds 60
    .venv/bin/python benchmarks/api_load.py --store postgresql --clients 32 --seconds 60
    .venv/bin/python benchmarks/api_load.py --store postgresql --preload 100000 --nodes 1000 --clients 1 --seconds 30
    .venv/bin/python benchmarks/api_load.py --store postgresql --kill 10 --clients 32 --seconds 120
    .venv/bin/python benchmarks/api_load.py --store sqlite --cpu 0.5 --clients 8 --seconds 30   # mixed CPU/GPU

Sets up a fresh store (SQLite file, or a new PostgreSQL database on --pg-url's server) with N nodes x 8
A100-80GB, prices, one cleared customer and one customer key per client, optionally P future reservations
already booked (`--preload`, written straight into the store: set-up, not measured). Then starts the server
as a user would (`gpulease serve`, its own process) and lets each client (aiohttp, one keep-alive connection
each) loop: book an on-demand lease of 1 or 8 GPUs for an hour starting now (it fits before preloaded
reservations), then end it. After `--warmup` seconds of that load (not measured: the clients' and the server's
first requests), it prints bookings/s and latency percentiles of the bookings, errors (any 5xx, transport
error or unexpected status), the server's CPU time per booking (robust to a busy machine), and checks the store
afterwards: no GPU held twice over overlapping time.

`--kill N` kills the server with SIGKILL N times during the load, evenly spaced, and starts it again. Every
booking and end then carries an `Idempotency-Key` and is retried with the same key until it gets an answer
(connection refused, reset or a 5xx while the server is down); afterwards no lease a client was told of may be
missing and no lease may exist that no client was told of, and `gpulease invoices verify` and `gpulease audit
verify` must pass. Latencies of a run with kills include the retries.

`--cpu F` makes a share F of the bookings CPU leases (issue 13): the fleet gains one EPYC-9654 node (192 cores,
1,536 GiB) per four GPU nodes, with core-hour prices, and a CPU booking asks for 4, 16 or 64 cores for an hour.
CPU bookings are reported apart (`cpu_*`), and the store is checked for a core held twice as for a GPU.

`--live-runs N` books N long leases before the load and starts a run on each (a shell loop printing a
heartbeat every second). After the load (and every kill and restart) each run must still be the same process:
state `running`, its start line printed once (a run started again would print it twice), and its heartbeat
still advancing after the last restart. Then the leases are ended and each run must be stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from sqlalchemy import create_engine, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gpulease.runtime import Runtime
from gpulease.services import customers, inventory, keys, prices, screening
from gpulease.services.context import SYSTEM
from gpulease.services.kyc import KycInput, Owner
from gpulease.settings import Settings
from gpulease.store.db import Store, upgrade
from gpulease.store.models import Allocation, Lease

MODEL = "A100-80GB"


@dataclass
class Stats:
    book_ms: list[float] = field(default_factory=list)
    end_ms: list[float] = field(default_factory=list)
    refused: int = 0  # 409: no capacity (a correct answer, not an error)
    errors: list[str] = field(default_factory=list)
    retries: int = 0  # requests sent again with the same Idempotency-Key (the server was down)
    lease_ids: list[int] = field(default_factory=list)  # every lease a client was told it booked
    cpu_book_ms: list[float] = field(default_factory=list)  # the CPU bookings among book_ms (--cpu)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_store(kind: str, pg_url: str, workdir: Path) -> tuple[str, Any]:
    """A fresh database URL and a function that drops it afterwards."""
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}", lambda: None
    name = f"gpulease_bench_{os.getpid()}"
    admin = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        c.execute(text(f"CREATE DATABASE {name}"))
    with create_engine(
        pg_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}",
        isolation_level="AUTOCOMMIT",
    ).connect() as c:
        c.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()

    return pg_url.rsplit("/", 1)[0] + f"/{name}", drop


CPU_MODEL = "EPYC-9654"


def seed(
    url: str, nodes: int, clients: int, preload: int, rng: random.Random, cpu_nodes: int = 0
) -> tuple[int, list[str], str]:
    """Fleet, prices, a cleared customer, one key per client, a compliance officer's key, and `preload` future
    reservations.

    Set-up goes through the same use cases as the API (as the local operator), not through HTTP: it is not
    what is measured.
    """
    upgrade(url)
    rt = Runtime(Settings(database_url=url, data_dir=Path(tempfile.mkdtemp())), supervises_runs=False)
    with rt.store.transaction() as s:
        screening.seed_bundled_lists(s, datetime.now(UTC))
    with rt.work() as w:
        for i in range(nodes):
            inventory.add_node(
                w,
                actor=SYSTEM,
                site="site-1",
                cluster=f"c{i // 25}",
                name=f"n{i:04d}",
                gpu_model_name=MODEL,
                gpu_count=8,
            )
        for plan, rate in (("on_demand", "1.25"), ("reserved", "1.00"), ("long_term", "600"), ("interruptible", "0.5")):
            prices.set_price(w, actor=SYSTEM, gpu_model_name=MODEL, plan=plan, rate=rate)
        for i in range(cpu_nodes):
            inventory.add_node(
                w,
                actor=SYSTEM,
                site="site-1",
                cluster="cpu",
                name=f"cpu{i:04d}",
                gpu_model_name=None,
                cpus=inventory.NodeCpus(CPU_MODEL, 192, 1536),
            )
        if cpu_nodes:
            for plan in ("on_demand", "reserved", "interruptible"):
                prices.set_price(w, actor=SYSTEM, gpu_model_name=None, cpu_model_name=CPU_MODEL, plan=plan, rate="0.04")
    kyc = KycInput(
        legal_name="Acme Robotics Inc.",
        country="US",
        address="1 Market St, San Francisco",
        incorporated_on=date(2015, 1, 1),
        end_use="training vision models for warehouse picking robots",
        owners=(Owner("Acme Holdings LLC", 100),),
    )
    cust = rt.perform(customers.create_customer, actor=SYSTEM, kyc=kyc)
    if cust.compliance_status != "cleared":
        raise SystemExit("the load-test customer was not cleared by screening")
    client_keys = [
        rt.perform(keys.create_key, actor=SYSTEM, role="customer", customer_id=cust.id) for _ in range(clients)
    ]
    staff_key = rt.perform(keys.create_key, actor=SYSTEM, role="compliance")  # screening, /metrics
    if preload:
        _preload(rt.store, cust.id, nodes, preload, datetime.now(UTC).replace(microsecond=0), rng)
    rt.close()
    return cust.id, client_keys, staff_key


def _preload(store: Store, customer_id: int, nodes: int, count: int, now: datetime, rng: random.Random) -> None:
    """Future reserved windows, one GPU each, back to back per GPU from tomorrow on: never overlapping."""
    gpus = [(n + 1, g) for n in range(nodes) for g in range(8)]
    next_free = {gpu: now + timedelta(days=1) for gpu in gpus}
    quote = {
        "gpu_model": MODEL,
        "plan": "reserved",
        "rate": "1.00",
        "currency": "USD",
        "unit": "gpu_hour",
        "gpu_count": 1,
        "start": 0,
        "end": 0,
        "cancel_free_hours": 24,
        "cancel_fee_fraction": "0.5",
        "preemption_notice_s": 120,
    }
    batch = 2000
    for first in range(0, count, batch):
        leases, windows = [], []
        for _ in range(min(batch, count - first)):
            gpu = rng.choice(gpus)
            start = next_free[gpu] + timedelta(hours=rng.randint(0, 6))
            end = start + timedelta(hours=rng.randint(1, 12))
            next_free[gpu] = end
            leases.append(
                {
                    "customer_id": customer_id,
                    "gpu_model": MODEL,
                    "gpu_count": 1,
                    "plan": "reserved",
                    "state": "scheduled",
                    "starts_at": start,
                    "ends_at": end,
                    "quote": {**quote, "start": int(start.timestamp()), "end": int(end.timestamp())},
                    "created_at": now,
                }
            )
            windows.append((gpu, start, end))
        with store.transaction() as s:
            ids = [s.execute(insert(Lease).returning(Lease.id), row).scalar_one() for row in leases]
            s.execute(
                insert(Allocation),
                [
                    {
                        "lease_id": lease_id,
                        "node_id": node,
                        "gpu_index": g,
                        "starts_at": start,
                        "ends_at": end,
                        "released": False,
                    }
                    for lease_id, ((node, g), start, end) in zip(ids, windows, strict=True)
                ],
            )


def server_env(url: str, workdir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "GPULEASE_DATABASE_URL": url,
        "GPULEASE_DATA_DIR": str(workdir / "data"),
        "GPULEASE_RATE_LIMIT_PER_S": "0",
    }


def gpulease_exe() -> str:
    """The CLI installed beside this Python, else the one on the PATH (benchmarks/device: a Python with no scripts)."""
    beside = Path(sys.executable).parent / "gpulease"
    return str(beside) if beside.exists() else (shutil.which("gpulease") or str(beside))


def start_server(url: str, workdir: Path, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    env = server_env(url, workdir)
    exe = gpulease_exe()
    log = open(workdir / "server.log", "ab")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [exe, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-upgrade-db"]
        + (["--workers", str(workers)] if workers > 1 else []),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    if not serving(f"http://127.0.0.1:{port}", workers, proc, time.monotonic() + 120):
        proc.kill()
        raise SystemExit(f"the server did not start; see {workdir / 'server.log'}")
    return proc


def start_py_spy(pid: int, out: Path, rate: int = 100, subprocesses: bool = False) -> subprocess.Popen[bytes]:
    """py-spy recording the server `pid` (and its workers: `subprocesses`) as collapsed stacks into `out`; stop it
    with SIGINT. `--gil`: only the thread holding the GIL, i.e. where the server's Python CPU goes, not where its
    request threads wait for the GIL or the database."""
    spy_args = ["--nonblocking", "--gil", "-r", str(rate), "-f", "raw", "-o", str(out)]
    if subprocesses:
        spy_args.append("--subprocesses")
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", *spy_args, "--pid", str(pid)],
        stdout=subprocess.DEVNULL,
    )


def serving(base: str, workers: int, proc: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait until `workers` server processes answer /healthz (each listens on its own socket once it has started:
    connections made before a worker is up all go to the others, and keep-alive keeps them there)."""
    seen: set[str] = set()
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            r = httpx.get(base + "/healthz", timeout=1)  # a new connection each time: any worker may take it
            if r.status_code == 200:
                seen.add(str(r.json().get("process")))
                if len(seen) >= workers:
                    return True
                continue
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


RETRY_S = 300.0  # how long a keyed request is retried (the server restarting, on a loaded machine: tens of seconds)


@dataclass(frozen=True)
class Answer:
    status_code: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Poster:
    """One client's keep-alive connection to the server. aiohttp by default: its C parser costs the load
    generator, which shares the machine with the server and the database, about a third of what httpx's does
    (`--http-client httpx` keeps the old one for comparison)."""

    def __init__(self, base: str, headers: dict[str, str], kind: str) -> None:
        self.kind = kind
        if kind == "aiohttp":
            self.aio = aiohttp.ClientSession(
                base_url=base,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=30),
                connector=aiohttp.TCPConnector(limit=1),
            )
        else:
            self.hx = httpx.AsyncClient(base_url=base, headers=headers, timeout=30)

    async def post(self, path: str, body: dict[str, Any] | None, headers: dict[str, str]) -> Answer:
        if self.kind == "aiohttp":
            async with self.aio.post(path, json=body, headers=headers) as r:
                return Answer(r.status, await r.text())
        answer = await self.hx.post(path, json=body, headers=headers)
        return Answer(answer.status_code, answer.text)

    async def close(self) -> None:
        if self.kind == "aiohttp":
            await self.aio.close()
        else:
            await self.hx.aclose()


# Connection refused or reset, a timeout: the server is down or restarting (with --kill), or it failed.
TRANSPORT_ERRORS = (httpx.HTTPError, aiohttp.ClientError, asyncio.TimeoutError, OSError)


async def send(
    http: Poster, path: str, body: dict[str, Any] | None, stats: Stats, what: str, keyed: bool
) -> Answer | None:
    """POST once; with `keyed`, under one Idempotency-Key until an answer that is not a 5xx comes back."""
    headers = {"Idempotency-Key": uuid.uuid4().hex} if keyed else {}
    give_up = time.monotonic() + RETRY_S
    while True:
        try:
            r = await http.post(path, body, headers)
        except TRANSPORT_ERRORS as e:
            if keyed and time.monotonic() < give_up:
                stats.retries += 1
                await asyncio.sleep(0.1)
                continue
            stats.errors.append(f"{what}: {type(e).__name__}")
            return None
        if r.status_code >= 500 and keyed and time.monotonic() < give_up:
            stats.retries += 1
            await asyncio.sleep(0.1)
            continue
        return r


def screen_once(base: str, key: str) -> None:
    r = httpx.post(
        f"{base}/api/v1/screen",
        json={"name": "Acme Robotics Inc.", "country": "US"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=300,
    )
    r.raise_for_status()


Samples = dict[str, float]  # a /metrics series with its labels, as written ('name{label="v"}') -> its value


def read_samples(base: str, key: str) -> Samples:
    """Every sample the server's /metrics shows now."""
    text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=60).text
    return {
        series: float(value)
        for series, _, value in (line.rpartition(" ") for line in text.splitlines())
        if series and not series.startswith("#")
    }


def gc_pauses(during: Samples) -> dict[str, dict[str, float | str]]:
    """The collector's pauses in `during` (a difference of two readings), by generation: how many, their total,
    the smallest histogram bound the longest fits under."""
    by_gen: dict[str, dict[str, float]] = {}
    bounds: dict[str, list[tuple[float, float]]] = {}
    for series, value in during.items():
        m = re.match(r"gpulease_gc_pause_seconds_(count|sum|bucket)\{(.*)\}$", series)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            gen = labels["generation"]
            if m.group(1) == "bucket":
                bounds.setdefault(gen, []).append((float(labels["le"]), value))
            else:
                by_gen.setdefault(gen, {})[m.group(1)] = value
    out: dict[str, dict[str, float | str]] = {}
    for gen, figures in sorted(by_gen.items()):
        count = figures.get("count", 0.0)
        if count:
            longest = next((f"{le:g}" for le, n in sorted(bounds.get(gen, [])) if n >= count), "inf")
            out[gen] = {"count": count, "sum_s": round(figures.get("sum", 0.0), 3), "max_le_s": longest}
    return out


def writer_lock(during: Samples, elapsed: float) -> dict[str, float | str | None]:
    """SQLite's writer lock in `during`: the share of the wall time it was held, and per write transaction the
    time held and waited (None on PostgreSQL, which has no such lock)."""
    n = during.get("gpulease_sqlite_write_transactions_total", 0.0)
    held = during.get("gpulease_sqlite_write_lock_held_seconds_total", 0.0)
    waited = during.get("gpulease_sqlite_write_lock_wait_seconds_total", 0.0)
    ran = during.get("gpulease_sqlite_write_lock_held_cpu_seconds_total", 0.0)
    under = sorted(
        (float(m.group(1)), value)
        for series, value in during.items()
        if (m := re.match(r'gpulease_sqlite_write_lock_hold_seconds_bucket\{le="([^"]+)"\}$', series))
    )
    over_01 = n - next((count for le, count in under if le == 0.1), n)
    longest = next((f"{le:g}" for le, count in under if count >= n), None) if n else None
    return {
        "short_units_on_loop": int(during.get('gpulease_sqlite_short_units_total{ran="loop"}', 0.0)),
        "short_units_to_pool": int(during.get('gpulease_sqlite_short_units_total{ran="pool"}', 0.0)),
        "writer_lock_holds_over_100ms": int(over_01),
        "writer_lock_longest_le_s": longest,
        "writer_lock_cpu_ms": round(1000 * ran / n, 2) if n else None,
        "writer_lock_busy": round(held / elapsed, 3) if n else None,
        "writer_lock_hold_ms": round(1000 * held / n, 2) if n else None,
        "writer_lock_wait_ms": round(1000 * waited / n, 1) if n else None,
    }


async def client(
    base: str,
    key: str,
    customer_id: int,
    until: float,
    measured: Stats,
    seed_: int,
    keyed: bool,
    cpu: float = 0.0,
    warm: tuple[float, Stats] | None = None,
    http_client: str = "aiohttp",
) -> None:
    """Book and end until `until`; a cycle begun before `warm`'s time counts in its Stats, not in `measured`."""
    rng = random.Random(seed_)
    headers = {"Authorization": f"Bearer {key}"}
    http = Poster(base, headers, http_client)
    try:
        while time.monotonic() < until:
            stats = warm[1] if warm is not None and time.monotonic() < warm[0] else measured
            is_cpu = rng.random() < cpu
            body: dict[str, Any] = {"customer_id": customer_id, "plan": "on_demand", "duration_s": 3600}
            if is_cpu:
                body["cpu_cores"] = rng.choice((4, 16, 64))
            else:
                body.update(gpu_model=MODEL, gpu_count=rng.choice((1, 8)))
            t0 = time.perf_counter()
            r = await send(http, "/api/v1/leases", body, stats, "book", keyed)
            if r is None:
                continue
            ms = (time.perf_counter() - t0) * 1000
            if r.status_code == 409:
                stats.refused += 1
                continue
            if r.status_code != 201:
                stats.errors.append(f"book: {r.status_code} {r.text[:200]}")
                continue
            stats.book_ms.append(ms)
            if is_cpu:
                stats.cpu_book_ms.append(ms)
            lease_id = r.json()["id"]
            stats.lease_ids.append(lease_id)
            t0 = time.perf_counter()
            r = await send(http, f"/api/v1/leases/{lease_id}/end", None, stats, "end", keyed)
            if r is None:
                continue
            if r.status_code == 409 and "idempotency-response-lost" in r.text:
                stats.end_ms.append((time.perf_counter() - t0) * 1000)  # ended before a crash; the answer was lost
            elif r.status_code != 200:
                stats.errors.append(f"end: {r.status_code} {r.text[:200]}")
            else:
                stats.end_ms.append((time.perf_counter() - t0) * 1000)
    finally:
        await http.close()


async def killer(
    url: str,
    workdir: Path,
    port: int,
    servers: list[subprocess.Popen[bytes]],
    kills: int,
    seconds: float,
    restarts_s: list[float],
) -> int:
    """Kill the server with SIGKILL `kills` times, evenly spaced over the run, and start it again each time
    (`restarts_s`: from the kill to the new server's first healthy answer)."""
    done, start = 0, time.monotonic()
    for i in range(kills):
        await asyncio.sleep(max(0.0, start + (i + 1) * seconds / (kills + 1) - time.monotonic()))
        proc = servers[-1]
        t0 = time.monotonic()
        proc.kill()
        await asyncio.to_thread(proc.wait)
        done += 1
        servers.append(await asyncio.to_thread(start_server, url, workdir, port))
        restarts_s.append(time.monotonic() - t0)
    return done


HEARTBEAT = "echo started; i=0; while true; do i=$((i+1)); echo beat $i; sleep 1; done"


def start_live_runs(base: str, key: str, customer_id: int, count: int, seconds: float) -> list[tuple[int, str]]:
    """`count` one-GPU leases outlasting the load, each with one heartbeat run; waits until all are running."""
    out = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        for _ in range(count):
            body = {
                "customer_id": customer_id,
                "gpu_model": MODEL,
                "gpu_count": 1,
                "plan": "on_demand",
                "duration_s": int(seconds) + 3600,
            }
            r = http.post("/api/v1/leases", json=body)
            r.raise_for_status()
            lease_id = r.json()["id"]
            deadline = time.monotonic() + 30
            while http.get(f"/api/v1/leases/{lease_id}").json()["state"] != "active":  # the clock starts it
                if time.monotonic() > deadline:
                    raise SystemExit(f"lease {lease_id} did not become active")
                time.sleep(0.2)
            run = http.post(f"/api/v1/leases/{lease_id}/runs", json={"command": ["sh", "-c", HEARTBEAT]})
            if run.status_code != 201:
                raise SystemExit(f"could not start a run on lease {lease_id}: {run.status_code} {run.text[:300]}")
            out.append((lease_id, run.json()["id"]))
        deadline = time.monotonic() + 60
        for lease_id, run_id in out:
            while http.get(f"/api/v1/leases/{lease_id}/runs/{run_id}").json()["state"] != "running":
                if time.monotonic() > deadline:
                    raise SystemExit(f"run {run_id} of lease {lease_id} did not start")
                time.sleep(0.2)
    return out


def last_beat(http: httpx.Client, lease_id: int, run_id: str) -> tuple[int, int]:
    """(times the run printed its start line, its last heartbeat number)."""
    log = http.get(f"/api/v1/leases/{lease_id}/runs/{run_id}/logs", params={"follow": "false"}).text
    beats = [int(line.split()[1]) for line in log.splitlines() if line.startswith("beat ")]
    return log.count("started"), beats[-1] if beats else 0


def check_live_runs(base: str, key: str, runs: list[tuple[int, str]]) -> dict[str, int]:
    """After the load: every run still the same running process with its heartbeat advancing; then end the
    leases and check every run was stopped."""
    survived = restarted = stopped = 0
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        before = {run: last_beat(http, lease, run) for lease, run in runs}
        time.sleep(3.0)
        for lease_id, run_id in runs:
            state = http.get(f"/api/v1/leases/{lease_id}/runs/{run_id}").json()["state"]
            starts, beat = last_beat(http, lease_id, run_id)
            if starts > 1:
                restarted += 1
            elif state == "running" and beat > before[run_id][1]:
                survived += 1
            else:
                print(f"  live run {run_id} of lease {lease_id}: state {state}, beats {before[run_id][1]} -> {beat}")
            http.post(f"/api/v1/leases/{lease_id}/end").raise_for_status()
        deadline = time.monotonic() + 60
        for lease_id, run_id in runs:
            while (state := http.get(f"/api/v1/leases/{lease_id}/runs/{run_id}").json()["state"]) == "running":
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            stopped += state == "stopped"
    return {"live_runs": len(runs), "runs_survived": survived, "runs_restarted": restarted, "runs_stopped": stopped}


def verify_cli(url: str, workdir: Path) -> dict[str, bool]:
    """`gpulease invoices verify` and `gpulease audit verify`, as an operator runs them."""
    exe = gpulease_exe()
    out = {}
    for name, args in (("billing_verified", ["invoices", "verify"]), ("audit_verified", ["audit", "verify"])):
        done = subprocess.run([exe, *args], env=server_env(url, workdir), capture_output=True, text=True, timeout=600)
        out[name] = done.returncode == 0
        if done.returncode != 0:
            print(f"  {' '.join(args)} failed:", (done.stdout + done.stderr)[-600:])
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process and its live children (`--workers`) have used so far (Linux), for CPU
    per booking: robust to a busy machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child) for child in children(pid))


def children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(x) for x in found]


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def max_lease_id(url: str) -> int:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as c:
        top = c.execute(text("SELECT coalesce(max(id), 0) FROM leases")).scalar_one()
    engine.dispose()
    return int(top)


def check_store(url: str, told: list[int] | None = None, after: int = 0) -> dict[str, Any]:
    """Overlapping live allocations of one GPU (must be none); with `told` (the leases clients were told of),
    leases lost (told of, not stored) and leases nobody was told of (a retry that booked twice)."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as c:
        far = "'9999-12-31'"
        overlaps = c.execute(
            text(
                f"""SELECT count(*) FROM allocations a JOIN allocations b
                ON a.node_id = b.node_id AND a.gpu_index = b.gpu_index AND a.id < b.id
                WHERE NOT a.released AND NOT b.released
                  AND a.starts_at < COALESCE(b.ends_at, {far}) AND b.starts_at < COALESCE(a.ends_at, {far})
                  AND COALESCE(a.ends_at, {far}) > a.starts_at AND COALESCE(b.ends_at, {far}) > b.starts_at"""
            )
        ).scalar_one()
        core_overlaps = c.execute(
            text(
                f"""SELECT count(*) FROM cpu_allocations a JOIN cpu_allocations b
                ON a.node_id = b.node_id AND a.core_index = b.core_index AND a.id < b.id
                WHERE NOT a.released AND NOT b.released
                  AND a.starts_at < COALESCE(b.ends_at, {far}) AND b.starts_at < COALESCE(a.ends_at, {far})
                  AND COALESCE(a.ends_at, {far}) > a.starts_at AND COALESCE(b.ends_at, {far}) > b.starts_at"""
            )
        ).scalar_one()
        leases = c.execute(text("SELECT count(*) FROM leases")).scalar_one()
        stored = {int(x) for x in c.execute(text("SELECT id FROM leases WHERE id > :a"), {"a": after}).scalars()}
    engine.dispose()
    out: dict[str, Any] = {"double_bookings": int(overlaps) + int(core_overlaps), "leases": int(leases)}
    if told is not None:
        out["lost_leases"] = len(set(told) - stored)
        out["unknown_leases"] = len(stored - set(told))
        out["told_twice"] = len(told) - len(set(told))  # two bookings answered with one lease
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--pg-url", default=os.environ.get("PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--preload", type=int, default=0, help="future reservations stored before the run")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kill", type=int, default=0, help="kill -9 the server this many times during the run")
    ap.add_argument("--idempotency", action="store_true", help="send Idempotency-Key and retry (on with --kill)")
    ap.add_argument("--live-runs", type=int, default=0, help="long leases with a heartbeat run that must survive")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds of load before the measured run, not measured (not with --kill)",
    )
    ap.add_argument("--cpu", type=float, default=0.0, help="share of bookings that are CPU leases (0 to 1)")
    ap.add_argument("--workers", type=int, default=1, help="server processes (`gpulease serve --workers`, PostgreSQL)")
    ap.add_argument(
        "--screened", action="store_true", help="screen one name through the server first (its index in memory)"
    )
    ap.add_argument(
        "--http-client", choices=("aiohttp", "httpx"), default="aiohttp", help="the load generator's HTTP client"
    )
    ap.add_argument("--py-spy-rate", type=int, default=100, help="py-spy's samples per second")
    ap.add_argument("--py-spy", type=Path, help="profile the server under load with py-spy (collapsed stacks here)")
    args = ap.parse_args()
    if args.workers > 1 and args.kill:
        ap.error("--kill restarts one server process; run it with --workers 1")

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="gpulease-load-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o711)  # runs execute under the customer's uid: its sandbox folder must be reachable
        url, drop = make_store(args.store, args.pg_url, workdir)
        try:
            t0 = time.perf_counter()
            cpu_nodes = max(1, args.nodes // 4) if args.cpu > 0 else 0
            customer_id, client_keys, staff_key = seed(url, args.nodes, args.clients, args.preload, rng, cpu_nodes)
            print(f"set-up: {args.nodes} nodes, {args.preload} stored reservations, {time.perf_counter() - t0:.1f} s")
            port = free_port()
            first_id = max_lease_id(url)
            servers = [start_server(url, workdir, port, args.workers)]
            keyed = args.idempotency or args.kill > 0
            kills = 0
            base = f"http://127.0.0.1:{port}"
            live = start_live_runs(base, client_keys[0], customer_id, args.live_runs, args.seconds)
            if args.screened:  # as in any server in use: the screening index (a million objects) in its memory
                screen_once(base, staff_key)
            run_checks: dict[str, int] = {}
            restarts_s: list[float] = []
            try:
                stats, warm = Stats(), Stats()
                stats.lease_ids.extend(lease for lease, _ in live)

                warmup = args.warmup if not args.kill else 0.0
                measure_gc = args.workers == 1 and not args.kill  # one process's /metrics, not restarted
                base0: dict[str, Any] = {}

                async def mark(at: float) -> None:
                    # The measured run starts here, the clients' connections kept: before it, each client's first
                    # requests met a server with nothing in memory (its key, the connections, the calendars) and
                    # the load generator paid for 32 HTTP clients' set-up (CA bundles: most of a second of CPU).
                    await asyncio.sleep(max(0.0, at - time.monotonic()))
                    base0["metrics"] = await asyncio.to_thread(read_samples, base, staff_key) if measure_gc else {}
                    base0["cpu"] = cpu_seconds(servers[0].pid)
                    base0["client_cpu"] = time.process_time()

                async def run() -> tuple[float, int]:
                    start = time.monotonic() + warmup
                    until = start + args.seconds
                    clients = [
                        client(
                            base,
                            k,
                            customer_id,
                            until,
                            stats,
                            args.seed + i,
                            keyed,
                            args.cpu,
                            (start, warm),
                            args.http_client,
                        )
                        for i, k in enumerate(client_keys)
                    ]
                    marked = asyncio.create_task(mark(start))
                    if args.kill:
                        _, killed = await asyncio.gather(
                            asyncio.gather(*clients),
                            killer(url, workdir, port, servers, args.kill, args.seconds, restarts_s),
                        )
                    else:
                        await asyncio.gather(*clients)
                        killed = 0
                    await marked
                    return time.monotonic() - start, killed

                spy = None
                if args.py_spy:  # sampled from the start of the load to its end, not the server's start-up
                    spy = start_py_spy(servers[0].pid, args.py_spy, args.py_spy_rate, args.workers > 1)
                elapsed, kills = asyncio.run(run())
                client_cpu = time.process_time() - base0["client_cpu"]
                metrics0, cpu0 = base0["metrics"], base0["cpu"]
                stats.lease_ids.extend(warm.lease_ids)
                stats.errors.extend(warm.errors)
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(timeout=60)
                cpu = cpu_seconds(servers[-1].pid) - (cpu0 if len(servers) == 1 else 0.0)
                metrics1 = read_samples(base, staff_key) if measure_gc else {}
                during = {series: v - metrics0.get(series, 0.0) for series, v in metrics1.items()}
                if live:
                    run_checks = check_live_runs(base, client_keys[0], live)
            finally:
                server = servers[-1]
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
            checks: dict[str, Any] = {**check_store(url, stats.lease_ids if keyed else None, first_id), **run_checks}
            if args.kill:
                checks.update(verify_cli(url, workdir))
            server_log = (workdir / "server.log").read_text(errors="replace")
        finally:
            drop()

    booked = len(stats.book_ms)
    result = {
        "store": args.store,
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "nodes": args.nodes,
        "preload": args.preload,
        "bookings": booked,
        "bookings_per_s": round(booked / elapsed, 1),
        "book_p50_ms": round(pct(stats.book_ms, 50), 1),
        "book_p95_ms": round(pct(stats.book_ms, 95), 1),
        "book_p99_ms": round(pct(stats.book_ms, 99), 1),
        "book_mean_ms": round(statistics.fmean(stats.book_ms), 1) if stats.book_ms else None,
        "end_p99_ms": round(pct(stats.end_ms, 99), 1),
        "server_cpu_ms_per_booking": round(1000 * cpu / booked, 2) if booked and not kills else None,
        # the load generator shares the machine: what it spends is CPU the server and the database do not get
        "client_cpu_ms_per_booking": round(1000 * client_cpu / booked, 2) if booked else None,
        "http_client": args.http_client,
        "cpu_share": args.cpu,
        "cpu_bookings": len(stats.cpu_book_ms),
        "cpu_book_p50_ms": round(pct(stats.cpu_book_ms, 50), 1),
        "cpu_book_p99_ms": round(pct(stats.cpu_book_ms, 99), 1),
        "warmup_s": warmup,
        "warmup_bookings": len(warm.book_ms),
        "warmup_book_p99_ms": round(pct(warm.book_ms, 99), 1),
        "refused_409": stats.refused,
        "errors": len(stats.errors),
        "kills": kills,
        "retries": stats.retries,
        "restart_s": [round(x, 1) for x in restarts_s],
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "gc_pauses": gc_pauses(during),
        **writer_lock(during, elapsed),
        **checks,
    }
    print(
        f"{args.store}: {result['bookings_per_s']} bookings/s over {result['seconds']} s with {args.clients} clients; "
        f"booking p50 {result['book_p50_ms']} ms, p95 {result['book_p95_ms']} ms, p99 {result['book_p99_ms']} ms; "
        f"end p99 {result['end_p99_ms']} ms; {stats.refused} refused (409), {len(stats.errors)} errors, "
        f"{checks['double_bookings']} double bookings; load average {result['load_average']}; "
        f"server CPU per booking+end {result['server_cpu_ms_per_booking']} ms, "
        f"load generator's {result['client_cpu_ms_per_booking']} ms"
    )
    if result["writer_lock_hold_ms"] is not None:
        print(
            f"  SQLite's writer lock: held {100 * result['writer_lock_busy']:.0f}% of the load, "
            f"{result['writer_lock_hold_ms']} ms per write transaction (the holder running "
            f"{result['writer_lock_cpu_ms']} ms of it), each waiting {result['writer_lock_wait_ms']} ms; "
            f"{result['writer_lock_holds_over_100ms']} held over 0.1 s, "
            f"the longest ≤ {result['writer_lock_longest_le_s']} s; short units run on the event loop "
            f"{result['short_units_on_loop']}, handed to the thread pool {result['short_units_to_pool']}"
        )
    if result["gc_pauses"]:
        print(
            "  garbage-collector pauses in the server during the load: "
            + "; ".join(
                f"generation {g}: {p['count']:.0f}, {1000 * p['sum_s']:.0f} ms in all, the longest ≤ {p['max_le_s']} s"
                for g, p in sorted(result["gc_pauses"].items())
            )
        )
    if args.cpu:
        print(
            f"  CPU leases: {result['cpu_bookings']} of the bookings; p50 {result['cpu_book_p50_ms']} ms, "
            f"p99 {result['cpu_book_p99_ms']} ms"
        )
    if keyed:
        print(
            f"  idempotency: {kills} kills (server back after {', '.join(f'{x:.1f}' for x in restarts_s) or '-'} s), "
            f"{stats.retries} retried requests; {checks['lost_leases']} lost, "
            f"{checks['unknown_leases']} unknown (duplicated) leases, {checks['told_twice']} told twice"
            + (
                f"; billing verify {'ok' if checks.get('billing_verified') else 'FAILED'}, "
                f"audit verify {'ok' if checks.get('audit_verified') else 'FAILED'}"
                if args.kill
                else ""
            )
        )
    if run_checks:
        print(
            f"  live runs: {run_checks['runs_survived']} of {run_checks['live_runs']} still running after the load "
            f"(the same process), {run_checks['runs_restarted']} started again; "
            f"{run_checks['runs_stopped']} stopped when their lease ended"
        )
    for e in stats.errors[:10]:
        print("  error:", e)
    warnings = Counter(
        line.split(" ", 3)[-1][:90] for line in server_log.splitlines() if " WARNING " in line or " ERROR " in line
    )
    for line, n in warnings.most_common(5):
        print(f"  server log: {n} x {line}")
    shown: set[str] = set()
    all_lines = server_log.splitlines()
    for at in [i for i, line in enumerate(all_lines) if line.startswith("Traceback")]:
        lines = all_lines[at:]
        end = next((i for i, line in enumerate(lines[1:], 1) if not line.startswith((" ", "Traceback"))), len(lines))
        last = lines[min(end, len(lines) - 1)]
        if last in shown or len(shown) >= 3:
            continue
        shown.add(last)  # one of each kind of error, at most three
        print("  a traceback in the server log (its end):\n    " + "\n    ".join(lines[max(0, end - 14) : end + 1]))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
