"""Booking throughput through the API: a real `gpulease serve` process, many clients booking and ending leases.

    .venv/bin/python benchmarks/api_load.py --store sqlite --clients 32 --seconds 60
    .venv/bin/python benchmarks/api_load.py --store postgresql --clients 32 --seconds 60
    .venv/bin/python benchmarks/api_load.py --store postgresql --preload 100000 --nodes 1000 --clients 1 --seconds 30
    .venv/bin/python benchmarks/api_load.py --store postgresql --kill 10 --clients 32 --seconds 120

Sets up a fresh store (SQLite file, or a new PostgreSQL database on --pg-url's server) with N nodes x 8
A100-80GB, prices, one cleared customer and one customer key per client, optionally P future reservations
already booked (`--preload`, written straight into the store: set-up, not measured). Then starts the server
as a user would (`gpulease serve`, its own process) and lets each client (httpx, asyncio) loop: book an
on-demand lease of 1 or 8 GPUs for an hour starting now (it fits before preloaded reservations), then end
it. Prints bookings/s and latency percentiles of the bookings, errors (any 5xx, transport error or unexpected
status), the server's CPU time per booking (robust to a busy machine), and checks the store afterwards: no GPU
held twice over overlapping time.

`--kill N` kills the server with SIGKILL N times during the load, evenly spaced, and starts it again. Every
booking and end then carries an `Idempotency-Key` and is retried with the same key until it gets an answer
(connection refused, reset or a 5xx while the server is down); afterwards no lease a client was told of may be
missing and no lease may exist that no client was told of, and `gpulease invoices verify` and `gpulease audit
verify` must pass. Latencies of a run with kills include the retries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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


def seed(url: str, nodes: int, clients: int, preload: int, rng: random.Random) -> tuple[int, list[str]]:
    """Fleet, prices, a cleared customer, one key per client, and `preload` future reservations.

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
    if preload:
        _preload(rt.store, cust.id, nodes, preload, datetime.now(UTC).replace(microsecond=0), rng)
    rt.close()
    return cust.id, client_keys


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


def start_server(url: str, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    env = server_env(url, workdir)
    exe = Path(sys.executable).parent / "gpulease"
    log = open(workdir / "server.log", "ab")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-upgrade-db"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit(f"the server did not start; see {workdir / 'server.log'}")


RETRY_S = 120.0  # how long a keyed request is retried past the end of the run (the server restarting)


async def send(
    http: httpx.AsyncClient, path: str, body: dict[str, Any] | None, stats: Stats, what: str, keyed: bool
) -> httpx.Response | None:
    """POST once; with `keyed`, under one Idempotency-Key until an answer that is not a 5xx comes back."""
    headers = {"Idempotency-Key": uuid.uuid4().hex} if keyed else {}
    give_up = time.monotonic() + RETRY_S
    while True:
        try:
            r = await http.post(path, json=body, headers=headers)
        except httpx.HTTPError as e:
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


async def client(base: str, key: str, customer_id: int, until: float, stats: Stats, seed_: int, keyed: bool) -> None:
    rng = random.Random(seed_)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        while time.monotonic() < until:
            n = rng.choice((1, 8))
            body = {
                "customer_id": customer_id,
                "gpu_model": MODEL,
                "gpu_count": n,
                "plan": "on_demand",
                "duration_s": 3600,
            }
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


async def killer(
    url: str, workdir: Path, port: int, servers: list[subprocess.Popen[bytes]], kills: int, seconds: float
) -> int:
    """Kill the server with SIGKILL `kills` times, evenly spaced over the run, and start it again each time."""
    done, start = 0, time.monotonic()
    for i in range(kills):
        await asyncio.sleep(max(0.0, start + (i + 1) * seconds / (kills + 1) - time.monotonic()))
        proc = servers[-1]
        proc.kill()
        await asyncio.to_thread(proc.wait)
        done += 1
        servers.append(await asyncio.to_thread(start_server, url, workdir, port))
    return done


def verify_cli(url: str, workdir: Path) -> dict[str, bool]:
    """`gpulease invoices verify` and `gpulease audit verify`, as an operator runs them."""
    exe = str(Path(sys.executable).parent / "gpulease")
    out = {}
    for name, args in (("billing_verified", ["invoices", "verify"]), ("audit_verified", ["audit", "verify"])):
        done = subprocess.run([exe, *args], env=server_env(url, workdir), capture_output=True, text=True, timeout=600)
        out[name] = done.returncode == 0
        if done.returncode != 0:
            print(f"  {' '.join(args)} failed:", (done.stdout + done.stderr)[-600:])
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far (Linux), for CPU per booking: robust to a busy machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
        leases = c.execute(text("SELECT count(*) FROM leases")).scalar_one()
        stored = {int(x) for x in c.execute(text("SELECT id FROM leases WHERE id > :a"), {"a": after}).scalars()}
    engine.dispose()
    out: dict[str, Any] = {"double_bookings": int(overlaps), "leases": int(leases)}
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
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--py-spy", type=Path, help="profile the server under load with py-spy (collapsed stacks here)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="gpulease-load-") as tmp:
        workdir = Path(tmp)
        url, drop = make_store(args.store, args.pg_url, workdir)
        try:
            t0 = time.perf_counter()
            customer_id, client_keys = seed(url, args.nodes, args.clients, args.preload, rng)
            print(f"set-up: {args.nodes} nodes, {args.preload} stored reservations, {time.perf_counter() - t0:.1f} s")
            port = free_port()
            first_id = max_lease_id(url)
            servers = [start_server(url, workdir, port)]
            keyed = args.idempotency or args.kill > 0
            kills = 0
            try:
                stats = Stats()
                base = f"http://127.0.0.1:{port}"

                async def run() -> tuple[float, int]:
                    start = time.monotonic()
                    until = start + args.seconds
                    clients = [
                        client(base, k, customer_id, until, stats, args.seed + i, keyed)
                        for i, k in enumerate(client_keys)
                    ]
                    if args.kill:
                        _, killed = await asyncio.gather(
                            asyncio.gather(*clients), killer(url, workdir, port, servers, args.kill, args.seconds)
                        )
                    else:
                        await asyncio.gather(*clients)
                        killed = 0
                    return time.monotonic() - start, killed

                spy = None
                if args.py_spy:  # sampled from the start of the load to its end, not the server's start-up
                    spy_exe = str(Path(sys.executable).parent / "py-spy")
                    spy_args = ["--nonblocking", "-r", "50", "-f", "raw", "-o", str(args.py_spy)]
                    spy = subprocess.Popen(
                        [spy_exe, "record", *spy_args, "--pid", str(servers[0].pid)],
                        stdout=subprocess.DEVNULL,
                    )
                cpu0 = cpu_seconds(servers[0].pid)
                elapsed, kills = asyncio.run(run())
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(timeout=60)
                cpu = cpu_seconds(servers[-1].pid) - (cpu0 if len(servers) == 1 else 0.0)
            finally:
                server = servers[-1]
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
            checks = check_store(url, stats.lease_ids if keyed else None, first_id)
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
        "refused_409": stats.refused,
        "errors": len(stats.errors),
        "kills": kills,
        "retries": stats.retries,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        **checks,
    }
    print(
        f"{args.store}: {result['bookings_per_s']} bookings/s over {result['seconds']} s with {args.clients} clients; "
        f"booking p50 {result['book_p50_ms']} ms, p95 {result['book_p95_ms']} ms, p99 {result['book_p99_ms']} ms; "
        f"end p99 {result['end_p99_ms']} ms; {stats.refused} refused (409), {len(stats.errors)} errors, "
        f"{checks['double_bookings']} double bookings; load average {result['load_average']}; "
        f"server CPU per booking+end {result['server_cpu_ms_per_booking']} ms"
    )
    if keyed:
        print(
            f"  idempotency: {kills} kills, {stats.retries} retried requests; {checks['lost_leases']} lost, "
            f"{checks['unknown_leases']} unknown (duplicated) leases, {checks['told_twice']} told twice"
            + (
                f"; billing verify {'ok' if checks.get('billing_verified') else 'FAILED'}, "
                f"audit verify {'ok' if checks.get('audit_verified') else 'FAILED'}"
                if args.kill
                else ""
            )
        )
    for e in stats.errors[:10]:
        print("  error:", e)
    warnings = Counter(
        line.split(" ", 3)[-1][:90] for line in server_log.splitlines() if " WARNING " in line or " ERROR " in line
    )
    for line, n in warnings.most_common(5):
        print(f"  server log: {n} x {line}")
    if "Traceback" in server_log:
        lines = server_log[server_log.index("Traceback") :].splitlines()
        end = next((i for i, line in enumerate(lines[1:], 1) if not line.startswith((" ", "Traceback"))), len(lines))
        print("  first traceback in the server log (its end):\n    " + "\n    ".join(lines[max(0, end - 12) : end + 1]))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
