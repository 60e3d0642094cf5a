"""`GET /api/v1/leases/{id}/gpu-usage` over a month of NVML readings: an 8-GPU lease sampled every 15 s for 30 days
(1.4M rows), windows of 24 h (the default, what the lease page shows), 7 and 30 days, through the API.

    .venv/bin/python benchmarks/gpu_usage.py                                   # SQLite, a temp folder
    .venv/bin/python benchmarks/gpu_usage.py --store postgresql                # a scratch PostgreSQL database
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from api_load import MODEL, make_store, seed

from gpulease.api.app import create_app
from gpulease.runtime import Runtime
from gpulease.settings import Settings
from gpulease.store.models import GpuSampleRow, Lease


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--pg-url", default=os.environ.get("PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    url, drop = make_store(args.store, args.pg_url, work)
    try:
        customer, [key], _ = seed(url, nodes=1, clients=1, preload=0, rng=random.Random(7))  # as api_load.py
        h = {"Authorization": f"Bearer {key}"}
        rt = Runtime(Settings(data_dir=work, database_url=url))
        with TestClient(create_app(rt, background=False)) as c:
            body = {"customer_id": customer, "gpu_model": MODEL, "gpu_count": 8}
            lease = c.post("/api/v1/leases", headers=h, json=body).json()
            n = 0
            with rt.store.transaction() as s:  # started `days` ago, sampled every 15 s since
                row = s.get(Lease, lease["id"])
                assert row is not None and row.activated_at is not None
                t0 = row.activated_at - timedelta(days=args.days)
                row.activated_at = row.starts_at = t0
                for k0 in range(0, args.days * 5760, 6000):
                    batch = [
                        {
                            "lease_id": lease["id"],
                            "at": t0 + timedelta(seconds=15 * k),
                            "node": "n0000",
                            "gpu_index": g,
                            "utilization_pct": 50.0 + k % 50,
                            "memory_used_mib": 1000 + k % 7000,
                        }
                        for k in range(k0, min(k0 + 6000, args.days * 5760))
                        for g in range(8)
                    ]
                    s.execute(insert(GpuSampleRow), batch)
                    n += len(batch)
            print(f"{args.store}: {n:,} readings of one 8-GPU lease over {args.days} days")
            for hours in (24, 24, 24 * 7, 24 * args.days):
                t = time.perf_counter()
                r = c.get(f"/api/v1/leases/{lease['id']}/gpu-usage", headers=h, params={"hours": hours})
                ms = (time.perf_counter() - t) * 1000
                print(
                    f"  window {hours:>4} h: {r.json()['readings']:>9,} readings, {ms:6.0f} ms (HTTP {r.status_code})"
                )
        rt.close()
    finally:
        drop()


if __name__ == "__main__":
    main()
