"""The floor under a booking through the door: what this machine does with nothing but HTTP and the statements.

    .venv/bin/python benchmarks/floor.py --design http    # uvicorn + FastAPI + pydantic, no database
    .venv/bin/python benchmarks/floor.py --design each    # + a booking's and an end's statements, per request
    .venv/bin/python benchmarks/floor.py --design batch   # + the same rows, the waiting requests' written together

A component figure, for what `api_load.py`'s goals (PostgreSQL ≥ 300 bookings/s with 32 clients, p99 ≤ 100 ms) would
take of any design on this machine. A server of ~60 lines (`--serve`, started as its own process, uvicorn as
`gpulease serve` runs it) answers `POST /api/v1/leases` and `POST /api/v1/leases/{id}/end` with bodies and answers
shaped like gpulease's (pydantic models in, a lease of 14 fields out), and `api_load.py`'s own 32 clients (aiohttp,
one keep-alive connection each) book and end against it. There is no placement, pricing, compliance, idempotency,
audit, metrics or middleware: whatever gpulease does beyond this is above the floor.

- `http`: the answers are made up; the cost of the door alone.
- `each`: each request runs, in the thread pool (as gpulease's endpoints do) on one of four connections (`--slots`),
  the 15 statements of a booking or the 10 of an end in a transaction (`statement_floor.book` / `end`: the kinds
  and count of gpulease's on PostgreSQL, on scratch tables, psycopg alone with prepared statements).
- `batch`: group commit. Requests queue for one writer thread, which takes all that wait and writes their rows with
  one statement per kind for all of them (`statement_floor.book_many` / `end_many`: arrays unnested, one
  transaction per batch), then answers each (`--writers`: how many such threads, each with its connection).

Prints, per design: bookings/s, booking p50/p99, and CPU per booking + end of the server, of PostgreSQL (every
`postgres` process, read from /proc) and of the load generator, and how many requests a batch held.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from pydantic import BaseModel, Field

sys.path.insert(0, str(Path(__file__).resolve().parent))

import statement_floor
from api_load import Stats, client, cpu_seconds, free_port, pct

DESIGNS = ("http", "each", "batch")


class LeaseIn(BaseModel):
    customer_id: int = Field(ge=1)
    gpu_model: str | None = Field(default=None, max_length=64)
    gpu_count: int = Field(default=1, ge=1, le=64)
    plan: str = Field(max_length=32)
    duration_s: int | None = Field(default=None, ge=60, le=10 * 365 * 86400)


class Gpu(BaseModel):
    node: str
    index: int


class LeaseOut(BaseModel):
    id: int
    customer_id: int
    gpu_model: str
    gpu_count: int
    plan: str
    state: str
    starts_at: datetime
    ends_at: datetime | None
    created_at: datetime
    price_per_gpu_hour: Decimal
    currency: str
    spend: Decimal
    gpus: list[Gpu]
    preemptible: bool


def serve(design: str, port: int, pg_url: str, slots: int, writers: int) -> None:
    import uvicorn
    from fastapi import FastAPI, Header
    from starlette.concurrency import run_in_threadpool

    def answer(lease_id: int, n: int, state: str) -> LeaseOut:
        now = datetime.now(UTC)
        return LeaseOut(
            id=lease_id, customer_id=1, gpu_model="A100-80GB", gpu_count=n, plan="on_demand", state=state,
            starts_at=now, ends_at=now + timedelta(hours=1), created_at=now, price_per_gpu_hour=Decimal("1.25"),
            currency="USD", spend=Decimal("0.00"), gpus=[Gpu(node="node-001", index=i) for i in range(n)],
            preemptible=False,
        )  # fmt: skip

    app = FastAPI()
    counts: dict[int, int] = {}  # lease id -> GPUs, for the end's answer
    batches: list[int] = []
    made = iter(range(1, 1 << 62))
    conns: queue.Queue[psycopg.Connection[Any]] = queue.Queue()
    pending: queue.Queue[tuple[str, int, asyncio.AbstractEventLoop, asyncio.Future[int]]] = queue.Queue()
    if design == "each":
        for _ in range(slots):  # gpulease's default work slots on two cores: 4
            conns.put(psycopg.connect(pg_url, autocommit=True, prepare_threshold=0))

    def with_conn(fn: Any, arg: int) -> int:
        c = conns.get()
        try:
            return int(fn(c, arg) or arg)
        finally:
            conns.put(c)

    def writer() -> None:
        c = psycopg.connect(pg_url, autocommit=True, prepare_threshold=0)
        while True:
            items = [pending.get()]
            while len(items) < 256:
                try:
                    items.append(pending.get_nowait())
                except queue.Empty:
                    break
            batches.append(len(items))
            books = [x for x in items if x[0] == "book"]
            ends = [x for x in items if x[0] == "end"]
            ids = statement_floor.book_many(c, [x[1] for x in books]) if books else []
            if ends:
                statement_floor.end_many(c, [x[1] for x in ends])
            for (_kind, _arg, loop, fut), value in zip(books + ends, ids + [x[1] for x in ends], strict=True):
                loop.call_soon_threadsafe(fut.set_result, value)

    async def write(kind: str, arg: int) -> int:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        pending.put((kind, arg, loop, fut))
        return await fut

    if design == "batch":
        for _ in range(writers):
            threading.Thread(target=writer, daemon=True).start()

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"ok": True, "batches": len(batches), "requests": sum(batches)}

    @app.post("/api/v1/leases", status_code=201)
    async def book(body: LeaseIn, authorization: str = Header()) -> LeaseOut:
        n = body.gpu_count
        if design == "each":
            lease_id = await run_in_threadpool(with_conn, statement_floor.book, n)
        elif design == "batch":
            lease_id = await write("book", n)
        else:
            lease_id = next(made)
        counts[lease_id] = n
        return answer(lease_id, n, "active")

    @app.post("/api/v1/leases/{lease_id}/end")
    async def end(lease_id: int, authorization: str = Header()) -> LeaseOut:
        if design == "each":
            await run_in_threadpool(with_conn, statement_floor.end, lease_id)
        elif design == "batch":
            await write("end", lease_id)
        return answer(lease_id, counts.pop(lease_id, 1), "ended")

    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


def postgres_cpu() -> float:
    """CPU seconds every `postgres` process has used so far (Linux)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            fields = text.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measure(design: str, url: str, clients: int, seconds: float, slots: int, writers: int) -> str:
    port = free_port()
    command = [sys.executable, __file__, "--serve", design, "--port", str(port), "--pg-url", url]
    server = subprocess.Popen(
        [*command, "--slots", str(slots), "--writers", str(writers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        stats, warm = Stats(), Stats()

        async def run() -> float:
            start = time.monotonic()
            until = start + 3 + seconds
            tasks = [client(base, "k", 1, until, stats, i, False, warm=(start + 3, warm)) for i in range(clients)]
            gathered = asyncio.gather(*tasks)
            await asyncio.sleep(3)
            marks.update(server=cpu_seconds(server.pid), pg=postgres_cpu(), gen=time.process_time(), t=time.monotonic())
            marks["seen"] = httpx.get(base + "/healthz").json()
            await gathered
            return float(time.monotonic() - marks["t"])

        marks: dict[str, Any] = {}
        elapsed = asyncio.run(run())
        seen = httpx.get(base + "/healthz").json()
        server_cpu = cpu_seconds(server.pid) - marks["server"]
        pg_cpu, gen_cpu = postgres_cpu() - marks["pg"], time.process_time() - marks["gen"]
    finally:
        server.kill()
        server.wait()
    n = len(stats.book_ms)

    def per(seconds: float) -> str:
        return f"{1000 * seconds / n:.2f} ms" if n else "-"

    batch = seen["requests"] - marks["seen"]["requests"]
    held = f", {batch / max(1, seen['batches'] - marks['seen']['batches']):.1f} requests per batch" if batch else ""
    name = {"each": f"each ({slots} slots)", "batch": f"batch ({writers} wr.)"}.get(design, design)
    return (
        f"{name:14} bookings/s {n / elapsed:7.1f}  booking p50 {pct(stats.book_ms, 50):6.1f} ms  "
        f"p99 {pct(stats.book_ms, 99):6.1f} ms  errors {len(stats.errors)}  CPU per booking + end: server "
        f"{per(server_cpu)}, PostgreSQL {per(pg_cpu)}, load generator {per(gen_cpu)}{held}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--design", choices=DESIGNS, action="append", help="default: all three")
    ap.add_argument("--pg-url", default=os.environ.get("PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--slots", type=int, default=4, help="`each`: connections, and requests at the database at once")
    ap.add_argument("--writers", type=int, default=1, help="`batch`: writer threads, each with its connection")
    ap.add_argument("--serve", choices=DESIGNS, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.pg_url, args.slots, args.writers)
        return
    random.seed(1)
    url = statement_floor.create(args.pg_url)
    try:
        for design in args.design or DESIGNS:
            print(measure(design, url, args.clients, args.seconds, args.slots, args.writers), flush=True)
    finally:
        statement_floor.drop(args.pg_url, url)


if __name__ == "__main__":
    main()
