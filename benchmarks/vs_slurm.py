"""gpulease and Slurm side by side: one stream of GPU requests, sent to both, on the same fleet, in one run.

    nice -n 10 .venv/bin/python benchmarks/vs_slurm.py                  # 32 nodes x 8 GPUs, 1,000 requests, 8 clients
    nice -n 10 .venv/bin/python benchmarks/vs_slurm.py --requests 200 --clients 4     # a quicker look
    .venv/bin/python benchmarks/vs_slurm.py --slurm-conf /etc/slurm/slurm.conf --partition gpu   # a Slurm you run
    nice -n 10 .venv/bin/python benchmarks/vs_slurm.py --store sqlite   # gpulease on its embedded store (`make demo`)
    .venv/bin/python benchmarks/vs_slurm.py --systems gpulease --py-spy /tmp/vs.raw   # where gpulease's server CPU goes

Fleet: `--nodes` x `--gpus` (32 x 8). Slurm is a local cluster started with `.ci/slurm-up.sh` (one
slurmctld, slurmdbd with accounting, one `slurmd -N` per node, GPUs as plain GRES `gpu:8`) and stopped at
the end, unless `--slurm-conf` names one you run. gpulease is `gpulease serve` (uvicorn, the lease clock)
on a scratch PostgreSQL database (`--database-url`, dropped at the end) with the same nodes, or with
`--store sqlite` on a scratch SQLite file (one server process: `--workers` needs PostgreSQL).

The stream (seeded, identical for both): `--reservation-share` of the requests are future reservations of
whole nodes (8 or 16 GPUs, starting 1-14 days ahead, 2-48 h long); the rest are jobs of 1/2/4/8 GPUs
(40/25/20/15 %) for 1-8 h that start as soon as they can.

    request                  Slurm                                         gpulease (HTTP API)
    job of n GPUs, t long    sbatch -N1 --gres=gpu:n -t t --wrap 'sleep'   POST /leases start=asap duration_s=t
    reservation, k nodes     scontrol create reservation NodeCnt=k          POST /leases plan=reserved start end
                             StartTime Duration Users

`--clients` threads take requests from the stream in order, each waiting for its answer before the next
(an sbatch/scontrol process, or an HTTP request on a kept-alive connection). Latency is the client's
wait; requests/s is requests over the wall time of the whole stream. Both systems then settle (queued
work placed by their schedulers) and the whole nodes with nothing running now are counted.

Prints one line per system:
    slurm     requests/s  R  p50 X ms  p99 Y ms  accepted A/N  GPUs busy B/256  whole nodes free F/32
    gpulease  ...  server CPU C ms/request   (its server's CPU, all workers, over the stream's requests)
                   SQLite writer held W% (H ms per write)   (`--store sqlite`: the one writer's share of the stream)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_load import cpu_seconds, read_samples, serving, start_py_spy, writer_lock

REPO = Path(__file__).resolve().parents[1]
GPU_MODEL = "A100-80GB"
SERVER_LOG = Path(tempfile.gettempdir()) / "gpulease-vs-slurm-server.log"  # kept after the run


@dataclass(frozen=True)
class Request:
    kind: str  # "job" | "reservation"
    gpus: int
    duration_s: int
    start_offset_s: int  # reservations: from the run's base time


@dataclass
class Outcome:
    system: str
    stream: list[Request]
    latencies_s: list[float]
    answers: list[str]  # per request: accepted | refused | error
    wall_s: float
    gpus_busy: int
    whole_nodes_free: int
    server_cpu_s: float | None = None  # gpulease: its server's CPU (all workers) while the stream was sent
    writer_busy: float | None = None  # gpulease on SQLite: the share of the stream's wall time its writer was held
    writer_hold_ms: float | None = None  # and per write transaction

    def line(self, total_gpus: int, nodes: int) -> str:
        def p(q: float, kind: str | None = None) -> float:
            lat = sorted(t for t, r in zip(self.latencies_s, self.stream, strict=True) if kind in (None, r.kind))
            return lat[min(len(lat) - 1, int(len(lat) * q))] * 1000 if lat else float("nan")

        accepted = self.answers.count("accepted")
        errors = self.answers.count("error")
        cpu = f"  server CPU {1000 * self.server_cpu_s / len(self.stream):.2f} ms/request" if self.server_cpu_s else ""
        return (
            f"{self.system:<9} requests/s {len(self.stream) / self.wall_s:6.1f}  p50 {p(0.5):6.1f} ms  "
            f"p99 {p(0.99):6.1f} ms  (p99 jobs {p(0.99, 'job'):.1f} ms, reservations {p(0.99, 'reservation'):.1f} ms)  "
            f"accepted {accepted}/{len(self.stream)}"
            + (f"  errors {errors}" if errors else "")
            + f"  GPUs busy {self.gpus_busy}/{total_gpus}  whole nodes free {self.whole_nodes_free}/{nodes}"
            + cpu
            + (
                f"  SQLite writer held {100 * self.writer_busy:.0f}% ({self.writer_hold_ms:.2f} ms per write)"
                if self.writer_busy is not None and self.writer_hold_ms is not None
                else ""
            )
        )


def make_stream(n: int, nodes: int, gpus: int, load: float, seed: int) -> list[Request]:
    """Jobs until they would fill `load` of the GPUs (so packing shows in the whole nodes left free), the
    rest future reservations; in a seeded random order."""
    rng = random.Random(seed)
    stream: list[Request] = []
    demand = 0
    while len(stream) < n and demand + 8 <= load * nodes * gpus:
        size = rng.choices([1, 2, 4, 8], weights=[40, 25, 20, 15])[0]
        demand += size
        stream.append(Request("job", size, rng.randint(60, 480) * 60, 0))
    while len(stream) < n:
        size = rng.choices([8, 16], weights=[70, 30])[0]
        start = rng.randint(1 * 86400, 60 * 86400) // 60 * 60
        stream.append(Request("reservation", size, rng.randint(2, 48) * 3600, start))
    rng.shuffle(stream)
    return stream


def drive(
    stream: list[Request], clients: int, send: Callable[[int, Request], str]
) -> tuple[list[float], list[str], float]:
    """Send the stream with `clients` threads, in order; (latencies, answers, wall seconds)."""
    latencies: list[float] = [0.0] * len(stream)
    answers = ["error"] * len(stream)
    cursor = iter(range(len(stream)))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                return
            t0 = time.perf_counter()
            answers[i] = send(i, stream[i])
            latencies[i] = time.perf_counter() - t0

    threads = [threading.Thread(target=client, name=f"client-{c}") for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, answers, time.perf_counter() - t0


def settle(count: Callable[[], int], quiet_s: float = 3.0, limit_s: float = 120.0) -> int:
    """Wait until `count()` (work placed by a scheduler) has not changed for `quiet_s`."""
    last, since, deadline = count(), time.monotonic(), time.monotonic() + limit_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
    return last


# -- Slurm --------------------------------------------------------------------------------------------


class Slurm:
    def __init__(self, conf: str, partition: str | None) -> None:
        self.env = {**os.environ, "SLURM_CONF": conf, "TZ": "UTC"}
        self.partition = partition
        self.tag = f"vs{uuid.uuid4().hex[:6]}"
        self.reservations: list[str] = []
        self._lock = threading.Lock()

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=120)

    def nodes(self) -> dict[str, str]:
        out = self.run("sinfo", "-h", "-N", "-o", "%N|%T").stdout.split()
        return dict(line.split("|", 1) for line in out)

    def send(self, base: datetime, i: int, r: Request) -> str:
        part = [f"--partition={self.partition}"] if self.partition else []
        if r.kind == "job":
            done = self.run(
                "sbatch", "--parsable", "-Q", f"--job-name={self.tag}-{i}", "-N1", f"--gres=gpu:{r.gpus}",
                f"--time={r.duration_s // 60}", "-o", "/dev/null", *part, "--wrap", f"exec sleep {r.duration_s}",
            )  # fmt: skip
            return "accepted" if done.returncode == 0 else "refused"
        start = (base + timedelta(seconds=r.start_offset_s)).strftime("%Y-%m-%dT%H:%M:%S")
        done = self.run(
            "scontrol", "create", "reservation", f"StartTime={start}", f"Duration={r.duration_s // 60}",
            f"NodeCnt={r.gpus // 8}", "Users=root", *([f"PartitionName={self.partition}"] if self.partition else []),
        )  # fmt: skip
        found = re.search(r"Reservation created: (\S+)", done.stdout + done.stderr)
        if found:
            with self._lock:
                self.reservations.append(found.group(1))
        return "accepted" if done.returncode == 0 and found is not None else "refused"

    def jobs_running(self) -> int:
        out = self.run("squeue", "-h", "-t", "R", "-o", "%j|%b").stdout.split()
        return sum(1 for line in out if line.startswith(f"{self.tag}-"))

    def gpus_busy(self) -> int:
        total = 0
        for line in self.run("squeue", "-h", "-t", "R", "-o", "%j|%b").stdout.split():
            name, _, tres = line.partition("|")
            if name.startswith(f"{self.tag}-"):
                total += int(tres.rsplit(":", 1)[-1]) if tres.rsplit(":", 1)[-1].isdigit() else 0
        return total

    def cleanup(self) -> None:
        jobs = [
            line.split("|")[0]
            for line in self.run("squeue", "-h", "-o", "%i|%j").stdout.split()
            if line.split("|")[1].startswith(f"{self.tag}-")
        ]
        for chunk in range(0, len(jobs), 200):
            self.run("scancel", *jobs[chunk : chunk + 200])
        for name in self.reservations:
            self.run("scontrol", "delete", f"ReservationName={name}")


@contextlib.contextmanager
def local_slurm(nodes: int, gpus: int, keep: bool) -> Iterator[str]:
    """A local Slurm of `nodes` slurmd with `gpus` plain GRES GPUs each, by .ci/slurm-up.sh."""
    env = {
        **os.environ,
        "GPULEASE_SLURM_DIR": "/tmp/gpulease-slurm-bench",
        "GPULEASE_SLURM_NODES": str(nodes),
        "GPULEASE_SLURM_GPUS": str(gpus),
        "GPULEASE_SLURM_NODE_PREFIX": "bench-n",
        "GPULEASE_SLURM_TYPED_GPUS": "0",
    }
    subprocess.run([str(REPO / ".ci" / "slurm-up.sh")], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        yield "/tmp/gpulease-slurm-bench/slurm.conf"
    finally:
        if not keep:
            subprocess.run([str(REPO / ".ci" / "slurm-down.sh")], env=env, check=False, stdout=subprocess.DEVNULL)


def run_slurm(conf: str, partition: str | None, stream: list[Request], clients: int, base: datetime) -> Outcome:
    slurm = Slurm(conf, partition)
    nodes = slurm.nodes()
    busy_before = [n for n, state in nodes.items() if state not in ("idle",)]
    if busy_before:
        print(f"  note: Slurm nodes not idle before the run: {len(busy_before)}", file=sys.stderr)
    try:
        latencies, answers, wall = drive(stream, clients, lambda i, r: slurm.send(base, i, r))
        settle(slurm.jobs_running)
        states = slurm.nodes()
        free = sum(1 for state in states.values() if state == "idle")
        return Outcome("slurm", stream, latencies, answers, wall, slurm.gpus_busy(), free)
    finally:
        slurm.cleanup()


# -- gpulease -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    import psycopg

    name = f"gpulease_vs_slurm_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def gpulease_server(db_url: str, workers: int = 1) -> Iterator[tuple[str, str, int]]:
    """`gpulease serve` (`--workers`) on a free port over `db_url`; (base URL, operator key, the server's pid)."""
    data = tempfile.mkdtemp(prefix="gpulease-vs-slurm-")
    # No per-key rate limit: one operator key sends the whole stream (Slurm has none here either). With it, runs
    # that went fast enough were refused hundreds of 429s, read as refusals (the "46 refused" of an earlier run).
    env = {**os.environ, "GPULEASE_DATABASE_URL": db_url, "GPULEASE_DATA_DIR": data, "GPULEASE_RATE_LIMIT_PER_S": "0"}
    cli = str(Path(sys.executable).with_name("gpulease"))
    subprocess.run([cli, "db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL)
    key = subprocess.run(
        [cli, "keys", "create", "--role", "operator"], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    port = free_port()
    server = subprocess.Popen(
        [cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-upgrade-db"]
        + (["--workers", str(workers)] if workers > 1 else []),
        env=env,
        stdout=open(SERVER_LOG, "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        if not serving(base, workers, server, time.monotonic() + 60):
            raise RuntimeError("gpulease serve did not start: " + SERVER_LOG.read_text()[-2000:])
        yield base, key, server.pid
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(data, ignore_errors=True)


@contextlib.contextmanager
def scratch_sqlite() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="gpulease-vs-slurm-db-")
    try:
        yield f"sqlite:///{folder}/gpulease.db"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def sampled(pid: int, workers: int, out: Path | None) -> Iterator[None]:
    """py-spy samples the server (all its workers) while the stream is sent, not its start-up or seeding: where
    its CPU goes under the load (`--py-spy FILE`, collapsed stacks)."""
    if out is None:
        yield
        return
    spy = start_py_spy(pid, out, subprocesses=workers > 1)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


def run_gpulease(
    db_admin_url: str | None,
    nodes: int,
    gpus: int,
    stream: list[Request],
    clients: int,
    base: datetime,
    workers: int = 1,
    py_spy: Path | None = None,
) -> Outcome:
    """The stream through gpulease's API, on a scratch database of `db_admin_url`'s PostgreSQL, or (None) on a
    scratch SQLite file."""
    store = scratch_sqlite() if db_admin_url is None else scratch_database(db_admin_url)
    with store as db_url, gpulease_server(db_url, workers) as (url, key, pid):
        h = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=h, timeout=60) as c:
            for n in range(nodes):
                body = {"site": "bench", "cluster": "bench", "name": f"bench-n{n + 1:02d}", "gpu_model": GPU_MODEL,
                        "gpu_count": gpus}  # fmt: skip
                c.post("/api/v1/nodes", json=body).raise_for_status()
            for plan, rate in (("on_demand", "2.00"), ("reserved", "1.50")):
                c.put("/api/v1/prices", json={"gpu_model": GPU_MODEL, "plan": plan, "rate": rate}).raise_for_status()
            customer = c.post(
                "/api/v1/customers",
                json={"legal_name": "Acme Robotics Inc.", "country": "US", "address": "1 Market St, San Francisco",
                      "incorporated_on": "2015-01-01", "end_use": "training vision models for warehouse robots",
                      "owners": [{"name": "Acme Robotics Inc. Holdings", "percent": 100}]},
            )  # fmt: skip
            customer.raise_for_status()
            cid = customer.json()["id"]
            assert customer.json()["compliance_status"] == "cleared", customer.json()

        local = threading.local()

        def send(_: int, r: Request) -> str:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=url, headers=h, timeout=60)
            body: dict[str, object] = {"customer_id": cid, "gpu_model": GPU_MODEL, "gpu_count": r.gpus}
            if r.kind == "job":
                body.update(start="asap", duration_s=r.duration_s, max_wait_s=14 * 86400)
            else:
                start = base + timedelta(seconds=r.start_offset_s)
                body.update(
                    plan="reserved", start=start.isoformat(), end=(start + timedelta(seconds=r.duration_s)).isoformat()
                )
            try:
                answer = local.client.post("/api/v1/leases", json=body)
            except httpx.TransportError:  # the server dropped the connection (after a 500): a new one next time
                local.client.close()
                del local.client
                return "error"
            if answer.status_code == 201:
                return "accepted"
            with reasons_lock:
                reasons[(answer.status_code, r.kind, str(answer.json().get("title", ""))[:60])] += 1
            return "refused" if answer.status_code < 500 else "error"

        reasons: Counter[tuple[int, str, str]] = Counter()
        reasons_lock = threading.Lock()
        # On SQLite every booking's unit of work holds the one writer: its share of the stream's wall time bounds
        # what several processes could add (the rest is all they could do side by side).
        metrics_before = read_samples(url, key) if db_admin_url is None else {}
        cpu_before = cpu_seconds(pid)
        with sampled(pid, workers, py_spy):
            latencies, answers, wall = drive(stream, clients, send)
        server_cpu = cpu_seconds(pid) - cpu_before
        writer: dict[str, float | str | None] = {}
        if db_admin_url is None:
            after = read_samples(url, key)
            writer = writer_lock({k: v - metrics_before.get(k, 0.0) for k, v in after.items()}, wall)
        for (status, kind, title), n in reasons.most_common(5):
            print(f"  gpulease: {n} x {status} {title!r} ({kind})", file=sys.stderr)
        if "error" in answers:
            print(f"  gpulease: {answers.count('error')} requests failed with 5xx; see {SERVER_LOG}", file=sys.stderr)

        with httpx.Client(base_url=url, headers=h, timeout=60) as c:

            def active() -> list[dict[str, object]]:
                return list(c.get("/api/v1/leases", params={"state": "active"}).json())

            settle(lambda: len(active()))
            running = active()
            used = {g["node"] for lease in running for g in lease["gpus"]}  # type: ignore[attr-defined]
            busy = sum(int(lease["gpu_count"]) for lease in running)  # type: ignore[call-overload]
        busy_share, hold_ms = writer.get("writer_lock_busy"), writer.get("writer_lock_hold_ms")
        return Outcome(
            "gpulease", stream, latencies, answers, wall, busy, nodes - len(used), server_cpu,
            busy_share if isinstance(busy_share, float) else None, hold_ms if isinstance(hold_ms, float) else None,
        )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=32)
    ap.add_argument("--gpus", type=int, default=8, help="GPUs per node")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--load", type=float, default=0.8, help="jobs fill this share of the GPUs; the rest reserve")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--slurm-conf", help="use this Slurm (its nodes must be the fleet) instead of starting one")
    ap.add_argument("--partition", help="Slurm partition for jobs and reservations")
    ap.add_argument("--keep-slurm", action="store_true", help="leave the local Slurm running afterwards")
    ap.add_argument("--systems", default="slurm,gpulease", help="which to run, in this order")
    ap.add_argument("--workers", type=int, default=1, help="gpulease server processes (`gpulease serve --workers`)")
    ap.add_argument(
        "--store",
        choices=("postgresql", "sqlite"),
        default="postgresql",
        help="gpulease's store (scratch, dropped after)",
    )
    ap.add_argument(
        "--database-url",
        default=os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL where a scratch database is created for gpulease",
    )
    ap.add_argument("--py-spy", type=Path, help="profile gpulease's server under the stream (collapsed stacks here)")
    args = ap.parse_args()
    if args.store == "sqlite" and args.workers > 1:
        ap.error("--workers needs --store postgresql (one process serves a SQLite store)")

    stream = make_stream(args.requests, args.nodes, args.gpus, args.load, args.seed)
    kinds = {k: sum(1 for r in stream if r.kind == k) for k in ("job", "reservation")}
    print(
        f"fleet {args.nodes} nodes x {args.gpus} GPUs; {args.requests} requests ({kinds['job']} jobs of 1/2/4/8 GPUs, "
        f"{kinds['reservation']} future reservations of 1-2 whole nodes, 1-60 days ahead); {args.clients} clients; "
        f"gpulease on {args.store}" + (f" with {args.workers} server processes" if args.workers > 1 else ""),
        flush=True,
    )
    base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=5)
    total = args.nodes * args.gpus
    for system in args.systems.split(","):
        if system == "slurm":
            with contextlib.ExitStack() as stack:  # Slurm's daemons are stopped before gpulease runs
                conf = args.slurm_conf or stack.enter_context(local_slurm(args.nodes, args.gpus, args.keep_slurm))
                outcome = run_slurm(conf, args.partition, stream, args.clients, base)
        elif system == "gpulease":
            admin = args.database_url if args.store == "postgresql" else None
            outcome = run_gpulease(admin, args.nodes, args.gpus, stream, args.clients, base, args.workers, args.py_spy)
        else:
            ap.error(f"unknown system {system!r}")
        print(outcome.line(total, args.nodes), flush=True)


if __name__ == "__main__":
    main()
