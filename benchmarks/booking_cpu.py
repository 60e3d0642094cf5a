"""CPU per booking + end, in one process, one request at a time: the figure to compare commits by.

    .venv/bin/python benchmarks/booking_cpu.py --store sqlite --cycles 300
    .venv/bin/python benchmarks/booking_cpu.py --store postgresql --cycles 300
    .venv/bin/python benchmarks/booking_cpu.py --store sqlite --cycles 1000 --batches 20   # on a noisy machine
    .venv/bin/python benchmarks/booking_cpu.py --store postgresql --held-s 600 --count-calls   # ends that bill
    .venv/bin/py-spy record -f raw -o /tmp/book.raw -- .venv/bin/python benchmarks/booking_cpu.py  # where it goes

The same fleet, prices, customer and keys as `api_load.py` (its `seed`), the app built as `gpulease serve` builds
it but without the background workers (clock, sealer, outbox), driven by Starlette's TestClient: each cycle
books an on-demand lease of 1 or 8 GPUs for an hour and ends it. Prints the process CPU time per cycle
(`time.process_time`, which counts the test client's side too: the same on every commit, so differences are
the server's) and the wall time. On a machine shared with others CPU time still moves with their load (caches,
hyperthreads); `--count-calls` counts instead the Python and C function calls made per cycle in every thread
(a profile hook: slow, but the count does not depend on the machine), the figure to compare commits by there.
Unlike the load test it does not move with how many requests are waiting: it isolates what one booking costs.
By default a lease is ended within the second it was booked, as in the load test, so its end bills nothing;
`--held-s N` moves the server's clock N seconds on between the booking and its end, and every end then rates its
usage and writes its usage record, as an end in production does.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from api_load import MODEL, make_store, seed

from gpulease.api.app import create_app
from gpulease.runtime import Runtime
from gpulease.services.context import utcnow
from gpulease.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--pg-url", default=os.environ.get("PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--cycles", type=int, default=300)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--count-calls", action="store_true", help="count function calls per cycle (slow, exact)")
    ap.add_argument(
        "--batches",
        type=int,
        default=1,
        help="split the cycles into batches and also print the least and the median CPU per cycle of a batch "
        "(on a machine whose speed varies, the least is the figure to compare commits by)",
    )
    ap.add_argument(
        "--held-s", type=int, default=0, help="seconds each lease is held before its end (the server's clock moved on)"
    )
    args = ap.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="gpulease-cpu-") as tmp:
        url, drop = make_store(args.store, args.pg_url, Path(tmp))
        try:
            customer_id, (key,), _ = seed(url, args.nodes, 1, 0, rng)
            moved = [timedelta(0)]  # how far the server's clock has been moved on (`--held-s`)
            rt = Runtime(
                Settings(database_url=url, data_dir=Path(tmp) / "data", rate_limit_per_s=0),
                clock=lambda: utcnow() + moved[0],
            )
            headers = {"Authorization": f"Bearer {key}"}
            calls = [0]
            counting = [False]

            def hook(_frame: object, event: str, _arg: object) -> None:
                if counting[0] and event in ("call", "c_call"):
                    calls[0] += 1

            if args.count_calls:  # before the app's threads start: threading.setprofile reaches new threads only
                threading.setprofile(hook)
                sys.setprofile(hook)
            with TestClient(create_app(rt, background=False), headers=headers) as c:

                def cycle(n: int) -> None:
                    body = {"customer_id": customer_id, "gpu_model": MODEL, "gpu_count": n, "plan": "on_demand"}
                    r = c.post("/api/v1/leases", json=body | {"duration_s": 3600})
                    assert r.status_code == 201, r.text
                    moved[0] += timedelta(seconds=args.held_s)
                    r = c.post(f"/api/v1/leases/{r.json()['id']}/end")
                    assert r.status_code == 200, r.text

                for i in range(30):  # warm: calendar loaded, key cached, statements compiled
                    cycle(1 if i % 2 else 8)
                cpu0, wall0 = time.process_time(), time.perf_counter()
                counting[0] = True
                per_batch = max(1, args.cycles // max(1, args.batches))
                batches: list[float] = []
                mark = cpu0
                for i in range(args.cycles):
                    cycle(1 if i % 2 else 8)
                    if (i + 1) % per_batch == 0:
                        now = time.process_time()
                        batches.append(1000 * (now - mark) / per_batch)
                        mark = now
                counting[0] = False
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            sys.setprofile(None)
            threading.setprofile(None)
            rt.close()
        finally:
            drop()
    print(
        f"{args.store}: {args.cycles} booking+end cycles"
        + (f" (held {args.held_s} s each)" if args.held_s else "")
        + f", CPU {1000 * cpu / args.cycles:.2f} ms per cycle, "
        f"wall {1000 * wall / args.cycles:.2f} ms per cycle"
        + (f", {calls[0] / args.cycles:,.0f} function calls per cycle" if args.count_calls else "")
        + (
            f"; batches of {per_batch}: least {min(batches):.2f}, median {statistics.median(batches):.2f} ms per cycle"
            if args.batches > 1
            else ""
        )
        + f"; load average {[round(x, 2) for x in os.getloadavg()]}"
    )


if __name__ == "__main__":
    main()
