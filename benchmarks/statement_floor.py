"""The floor under a booking: what the statements of one booking + end cost in Python with nothing above the driver.

    .venv/bin/python benchmarks/statement_floor.py [--pg-url URL] [--cycles 2000]

A booking + end through the API makes 15 + 10 statements on PostgreSQL (tests/api/test_statement_budget.py). This
runs 25 statements of the same kinds (reads by key, inserts with RETURNING, batched inserts, updates, a NOTIFY) in
two transactions per cycle, on scratch tables, through psycopg 3 alone with server-side prepared statements, one
connection, and prints the process CPU per cycle (`time.process_time`) and the wall time. A component figure: it
says how much of the server's 25-34 ms of CPU per booking + end the statements themselves need, and so how far a
booking path without the ORM's unit of work could go.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

import psycopg

SCHEMA = """
CREATE TABLE t_lease (id bigserial PRIMARY KEY, customer_id int, state text, starts_at timestamptz,
                      ends_at timestamptz, quote jsonb, calendar_seq int DEFAULT 0);
CREATE TABLE t_alloc (id bigserial PRIMARY KEY, lease_id bigint, node_id int, gpu_index int,
                      starts_at timestamptz, ends_at timestamptz, released boolean DEFAULT false);
CREATE TABLE t_event (id bigserial PRIMARY KEY, lease_id bigint, at timestamptz, from_state text, to_state text,
                      actor text, reason text);
CREATE TABLE t_customer (id int PRIMARY KEY, status text, flop double precision DEFAULT 0);
CREATE TABLE t_version (model text PRIMARY KEY, version bigint);
CREATE INDEX ON t_lease (customer_id, state);
CREATE INDEX ON t_lease (state);
CREATE INDEX ON t_alloc (lease_id);
CREATE INDEX ON t_event (lease_id);
INSERT INTO t_customer VALUES (1, 'cleared');
INSERT INTO t_version VALUES ('A100', 0);
"""


EVENTS = "INSERT INTO t_event (lease_id, at, from_state, to_state, actor, reason) VALUES (%s, now(), %s, %s, %s, %s)"
ALLOCS = "INSERT INTO t_alloc (lease_id, node_id, gpu_index, starts_at, ends_at) VALUES (%s, %s, %s, now(), now())"
RECORD = "INSERT INTO t_event (lease_id, at, actor, reason) VALUES (%s, now(), %s, %s)"  # an audit record, a note
ENDED = (("active", "ending"), ("ending", "ended"))
BOOKED = (("", "quoted"), ("quoted", "pending"), ("pending", "scheduled"), ("scheduled", "active"))


def cycle(c: psycopg.Connection, n_gpus: int) -> None:
    end(c, book(c, n_gpus))


def book(c: psycopg.Connection, n_gpus: int) -> int:
    """A booking's 15 statements, in one transaction; the lease's id."""
    with c.transaction():
        lease_id = c.execute("SELECT nextval('t_lease_id_seq')").fetchone()[0]  # type: ignore[index]
        c.execute("SELECT id, status FROM t_customer WHERE id = %s", (1,)).fetchone()
        c.execute("SELECT version FROM t_version WHERE model = %s", ("A100",)).fetchone()
        c.execute("SELECT coalesce(sum(calendar_seq), 0) FROM t_lease WHERE customer_id = %s AND state = %s",
                  (1, "active")).fetchone()  # fmt: skip
        c.execute("SELECT id FROM t_lease WHERE state = %s LIMIT 10", ("queued",)).fetchall()
        c.execute(
            "INSERT INTO t_lease (id, customer_id, state, starts_at, ends_at, quote) "
            "VALUES (%s, %s, %s, now(), now() + interval '1 hour', %s)",
            (lease_id, 1, "quoted", '{"rate": "1.25"}'),
        )
        with c.cursor() as cur:
            cur.executemany(EVENTS, [(lease_id, a, b, "customer", "r") for a, b in BOOKED])
            cur.executemany(ALLOCS, [(lease_id, 1, i) for i in range(n_gpus)])
        c.execute(RECORD, (lease_id, "audit", "x"))
        c.execute(RECORD, (lease_id, "note", "x"))
        c.execute("UPDATE t_lease SET state = %s WHERE id = %s", ("active", lease_id))
        c.execute("SELECT id FROM t_alloc WHERE lease_id = %s", (lease_id,)).fetchall()
        c.execute("UPDATE t_version SET version = version + 1 WHERE model = %s RETURNING version", ("A100",)).fetchone()
        c.execute("SELECT pg_notify(%s, %s)", ("floor", f'{{"l": {lease_id}}}'))
    return int(lease_id)


def end(c: psycopg.Connection, lease_id: int) -> None:
    """An end's 10 statements, in one transaction."""
    with c.transaction():
        c.execute("SELECT l.id, l.state, a.id FROM t_lease l JOIN t_alloc a ON a.lease_id = l.id WHERE l.id = %s",
                  (lease_id,)).fetchall()  # fmt: skip
        c.execute("SELECT coalesce(sum(calendar_seq), 0) FROM t_lease WHERE id = %s", (lease_id,)).fetchone()
        c.execute("SELECT id FROM t_event WHERE lease_id = %s AND actor = %s LIMIT 1", (lease_id, "run")).fetchall()
        with c.cursor() as cur:
            cur.executemany(EVENTS, [(lease_id, a, b, "customer", "r") for a, b in ENDED])
        c.execute(RECORD, (lease_id, "audit", "x"))
        c.execute(RECORD, (lease_id, "note", "x"))
        c.execute("UPDATE t_lease SET state = %s WHERE id = %s", ("ended", lease_id))
        c.execute("UPDATE t_alloc SET released = true WHERE lease_id = %s", (lease_id,))
        c.execute("UPDATE t_lease SET calendar_seq = calendar_seq + 1 WHERE id = %s RETURNING calendar_seq",
                  (lease_id,)).fetchone()  # fmt: skip
        c.execute("SELECT pg_notify(%s, %s)", ("floor", f'{{"l": {lease_id}}}'))


# The same rows for many bookings and ends at once (group commit): one statement per kind for all of them, each
# kind one prepared statement whatever the count (arrays unnested), one version bump and one notification.
EVENTS_MANY = (
    "INSERT INTO t_event (lease_id, at, from_state, to_state, actor, reason) "
    "SELECT l, now(), f, t, %s, %s FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS u(l, f, t)"
)
ALLOCS_MANY = (
    "INSERT INTO t_alloc (lease_id, node_id, gpu_index, starts_at, ends_at) "
    "SELECT l, 1, g, now(), now() FROM unnest(%s::bigint[], %s::int[]) AS u(l, g)"
)
RECORDS_MANY = (
    "INSERT INTO t_event (lease_id, at, actor, reason) "
    "SELECT l, now(), a, %s FROM unnest(%s::bigint[], %s::text[]) AS u(l, a)"
)


def _events(ids: list[int], changes: tuple[tuple[str, str], ...]) -> tuple[list[int], list[str], list[str]]:
    return (
        [i for i in ids for _ in changes],
        [a for _ in ids for a, _b in changes],
        [b for _ in ids for _a, b in changes],
    )


def book_many(c: psycopg.Connection, counts: list[int]) -> list[int]:
    """The rows of `len(counts)` bookings (of `counts[i]` GPUs) in one transaction of 12 statements; their ids."""
    with c.transaction():
        ids = [r[0] for r in c.execute("SELECT nextval('t_lease_id_seq') FROM generate_series(1, %s)", (len(counts),))]
        c.execute("SELECT id, status FROM t_customer WHERE id = ANY(%s)", ([1],)).fetchall()
        c.execute("SELECT version FROM t_version WHERE model = %s", ("A100",)).fetchone()
        c.execute("SELECT customer_id, coalesce(sum(calendar_seq), 0) FROM t_lease WHERE customer_id = ANY(%s) "
                  "AND state = %s GROUP BY customer_id", ([1], "active")).fetchall()  # fmt: skip
        c.execute("SELECT id FROM t_lease WHERE state = %s LIMIT 10", ("queued",)).fetchall()
        c.execute(
            "INSERT INTO t_lease (id, customer_id, state, starts_at, ends_at, quote) "
            "SELECT i, 1, 'quoted', now(), now() + interval '1 hour', q "
            "FROM unnest(%s::bigint[], %s::jsonb[]) AS u(i, q)",
            (ids, ['{"rate": "1.25"}'] * len(ids)),
        )
        c.execute(EVENTS_MANY, ("customer", "r", *_events(ids, BOOKED)))
        c.execute(
            ALLOCS_MANY,
            ([i for i, n in zip(ids, counts, strict=True) for _ in range(n)], [g for n in counts for g in range(n)]),
        )
        c.execute(RECORDS_MANY, ("x", ids + ids, ["audit"] * len(ids) + ["note"] * len(ids)))
        c.execute("UPDATE t_lease SET state = %s WHERE id = ANY(%s)", ("active", ids))
        c.execute("SELECT id FROM t_alloc WHERE lease_id = ANY(%s)", (ids,)).fetchall()
        c.execute("UPDATE t_version SET version = version + 1 WHERE model = %s RETURNING version", ("A100",)).fetchone()
        c.execute("SELECT pg_notify(%s, %s)", ("floor", f'{{"l": {ids}}}'))
    return ids


def end_many(c: psycopg.Connection, ids: list[int]) -> None:
    """The rows of `len(ids)` ends in one transaction of 9 statements."""
    with c.transaction():
        c.execute("SELECT l.id, l.state, a.id FROM t_lease l JOIN t_alloc a ON a.lease_id = l.id WHERE l.id = ANY(%s)",
                  (ids,)).fetchall()  # fmt: skip
        c.execute(
            "SELECT id, coalesce(sum(calendar_seq), 0) FROM t_lease WHERE id = ANY(%s) GROUP BY id", (ids,)
        ).fetchall()
        c.execute(
            "SELECT DISTINCT lease_id FROM t_event WHERE lease_id = ANY(%s) AND actor = %s", (ids, "run")
        ).fetchall()
        c.execute(EVENTS_MANY, ("customer", "r", *_events(ids, ENDED)))
        c.execute(RECORDS_MANY, ("x", ids + ids, ["audit"] * len(ids) + ["note"] * len(ids)))
        c.execute("UPDATE t_lease SET state = %s WHERE id = ANY(%s)", ("ended", ids))
        c.execute("UPDATE t_alloc SET released = true WHERE lease_id = ANY(%s)", (ids,))
        c.execute("UPDATE t_lease SET calendar_seq = calendar_seq + 1 WHERE id = ANY(%s) RETURNING id, calendar_seq",
                  (ids,)).fetchall()  # fmt: skip
        c.execute("SELECT pg_notify(%s, %s)", ("floor", f'{{"l": {ids}}}'))


def create(pg_url: str) -> str:
    """A scratch database with the tables; its URL."""
    name = f"floor_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = pg_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as c:
        for statement in filter(str.strip, SCHEMA.split(";")):
            c.execute(statement)
    return url


def drop(pg_url: str, url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg-url", default=os.environ.get("PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--cycles", type=int, default=2000)
    args = ap.parse_args()
    url = create(args.pg_url)
    try:
        with psycopg.connect(url, autocommit=True, prepare_threshold=0) as c:  # every statement prepared once
            for i in range(200):  # warm: statements prepared, caches filled
                cycle(c, 1 if i % 2 else 8)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for i in range(args.cycles):
                cycle(c, 1 if i % 2 else 8)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        drop(args.pg_url, url)
    print(
        f"25 statements in 2 transactions per booking + end, psycopg alone: CPU {1000 * cpu / args.cycles:.2f} ms "
        f"per cycle, wall {1000 * wall / args.cycles:.2f} ms per cycle ({args.cycles} cycles)"
    )


if __name__ == "__main__":
    main()
