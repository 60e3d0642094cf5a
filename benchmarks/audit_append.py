"""Audit-log append cost under concurrency — a component figure (the library and the database, no HTTP).

    .venv/bin/python benchmarks/audit_append.py [--url postgresql://postgres@127.0.0.1:5432/test]
                                                [--threads 1,8,32] [--seconds 10] [--json-out /tmp/audit.json]

Each worker thread runs transactions that each append one audit record with `audit.append` — what every
audited action adds to its own transaction — for `--seconds` per concurrency level, against a fresh
PostgreSQL schema (or SQLite file) migrated with the project's own migrations. It prints appends/s, the
latency of one such transaction (p50/p99) and how many failed.

Where the code has a sealer (`audit.seal`), it runs in its own thread once a second as the server's
Runtime does, so the figures include its cost; at the end the rest is sealed, the seal throughput is
timed, and the chain is verified. The same script measures the code before the sealer existed when run
with `PYTHONPATH` pointing at an older checkout's `src/` (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text

from gpulease import audit
from gpulease.store.db import Store, upgrade
from gpulease.store.models import AuditRecord


def fresh_store(url: str) -> tuple[Store, str, Any]:
    """A migrated, empty store; returns it, its URL and a function that drops it afterwards."""
    if url.startswith("postgresql"):
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
        base = url.replace("postgresql://", "postgresql+psycopg://", 1)
        scoped = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema},public"

        def drop() -> None:
            with admin.begin() as c:
                c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()

        upgrade(scoped)
        return Store(scoped), scoped, drop
    path = Path(tempfile.mkdtemp(prefix="bench-audit-")) / "audit.db"
    scoped = f"sqlite:///{path}"
    upgrade(scoped)
    return Store(scoped), scoped, lambda: None


def run_level(store: Store, threads: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(n: int) -> None:
        mine: list[float] = []
        k = 0
        while time.monotonic() < stop_at:
            k += 1
            t0 = time.perf_counter()
            try:
                with store.transaction() as s:
                    audit.append(
                        s,
                        at=datetime.now(UTC),
                        actor="bench",
                        action="bench.append",
                        subject=f"worker:{n}",
                        data={"k": k, "note": "one audited action"},
                    )
            except Exception as e:  # what a request handler would have turned into a 500
                with lock:
                    errors.append(type(e).__name__)
                continue
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "threads": threads,
        "appends": len(latencies),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "appends_per_s": len(latencies) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test", help="PostgreSQL or sqlite:// URL")
    ap.add_argument("--threads", default="1,8,32", help="concurrency levels, comma-separated")
    ap.add_argument("--seconds", type=float, default=10.0, help="how long each level runs")
    ap.add_argument(
        "--no-sealer", action="store_true", help="no sealer thread while appending: the append alone, then one seal"
    )
    ap.add_argument("--json-out", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args()

    has_sealer = hasattr(audit, "seal")
    background = has_sealer and not args.no_sealer
    store, _url, drop = fresh_store(args.url)
    sealer_stop = threading.Event()

    def seal_every_second() -> None:
        while not sealer_stop.wait(1.0):
            with store.transaction() as s:
                audit.seal(s)  # type: ignore[attr-defined,unused-ignore]

    sealer = threading.Thread(target=seal_every_second, daemon=True) if background else None
    if sealer:
        sealer.start()
    mode = "yes" if background else "no" if has_sealer else "no (append chains)"
    print(f"store: {store.engine.dialect.name}; sealer thread while appending: {mode}")
    print(f"{'threads':>7} {'appends/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'appends':>8} {'errors':>7}")
    figures: dict[str, Any] = {"store": store.engine.dialect.name, "sealer": background, "levels": []}
    try:
        for n in (int(x) for x in args.threads.split(",")):
            r = run_level(store, n, args.seconds)
            figures["levels"].append(r)
            kinds = f"  ({', '.join(r['error_kinds'])})" if r["errors"] else ""
            print(
                f"{n:>7} {r['appends_per_s']:>10.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}"
                f" {r['appends']:>8} {r['errors']:>7}{kinds}"
            )
        if has_sealer:
            sealer_stop.set()
            if sealer:
                sealer.join()
            with store.transaction() as s:
                pending = s.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.seq.is_(None)))
            t0 = time.perf_counter()
            with store.transaction() as s:
                audit.seal(s)  # type: ignore[attr-defined,unused-ignore]
            took = time.perf_counter() - t0
            figures["final_seal"] = {"pending": pending, "seconds": took}
            rate = f" ({(pending or 0) / took:,.0f} records/s)" if pending else ""
            print(f"final seal: {pending} pending records chained in {took * 1000:.0f} ms{rate}")
        t0 = time.perf_counter()
        with store.transaction() as s:
            result = audit.verify(s)
        figures["verify"] = {"ok": result.ok, "records": result.records, "seconds": time.perf_counter() - t0}
        print(f"verify: ok={result.ok}, {result.records} records in {figures['verify']['seconds']:.2f} s")
    finally:
        sealer_stop.set()
        store.dispose()
        drop()
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=1) + "\n")
        print(f"figures written to {args.json_out}", file=sys.stderr)


if __name__ == "__main__":
    main()
