"""Screening benchmark: the index the server screens with, on an evaluation set, and through the API.

    .venv/bin/python benchmarks/screening.py [--eval benchmarks/data/screening_eval] [--api-names 500]
                                             [--api-clients 8] [--baselines] [--show-misses]
                                             [--json-out /tmp/screening.json]
                                             [--dump /tmp/outcomes.jsonl]
                                             [--extra benchmarks/data/screening_eval/dev_extra.csv]

1. Seeds a fresh SQLite store (temp folder) with `services.screening.seed_bundled_lists`, the server's own
   loading path, and takes the index from `ScreeningRegistry.index()`, as the running server does.
2. Screens the evaluation set with `compliance.screening.screen_name` (the function behind POST /screen):
   - `listed.csv` (name,country,expected_list,expected_name,category,source): found when the decision is
     review or denied and a hit at or above the review threshold is the expected party (its list code and
     one of its names equal to expected_name); recall and the denied/review split per category;
   - `unlisted.csv` (name,country,category,source): a false positive is any decision but cleared;
   names/s and p99 on one core (a component figure: no HTTP, no database).
   Without the set (or with --eval none) it falls back to variants generated from the lists (aliases,
   typos, reordering, legal forms, Chinese names) and benchmarks/data/unlisted_companies.txt.
3. Starts `gpulease serve` (uvicorn on 127.0.0.1, a free port) over that store and POSTs names to
   /api/v1/screen with a compliance key, one client with keep-alive (`--api-clients N`: N at once): names/s,
   p99 and the server's CPU per name through the door users use (each call is also written to the audit log,
   as in production).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import opencc
from rapidfuzz import fuzz, process, utils

from gpulease.compliance.decide import Thresholds
from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.model import ListEntry
from gpulease.compliance.normalize import LEGAL_FORMS, fold, normalize_name
from gpulease.compliance.screening import ScreeningResult, screen_name

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_EVAL = HERE / "data" / "screening_eval"
LEGAL_SUFFIXES = ("Ltd.", "LLC", "Co., Ltd.", "GmbH", "Inc.", "S.A.", "Limited", "Corp.")
_S2T = opencc.OpenCC("s2t")


@dataclass(frozen=True)
class Listed:
    name: str
    country: str | None
    expected_list: str
    expected_name: str
    category: str


@dataclass(frozen=True)
class Unlisted:
    name: str
    country: str | None
    category: str


def half(row: Listed | Unlisted) -> str:
    """The row's half of the set, fixed by a hash of the row: "dev" (tune on it) or "test" (report it)."""
    kind = "listed" if isinstance(row, Listed) else "unlisted"
    key = f"{kind}\t{row.name}\t{row.country or ''}\t{row.category}".encode()
    return "dev" if hashlib.sha256(key).digest()[0] % 2 == 0 else "test"


@dataclass
class Tally:
    total: int = 0
    found: int = 0
    denied: int = 0
    review: int = 0
    misses: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- the server's index


@contextmanager
def seeded_store() -> Iterator[Path]:
    """A temp data folder with a migrated SQLite store holding the bundled lists, seeded as the server does."""
    from gpulease.services import screening
    from gpulease.store.db import Store, upgrade

    folder = Path(tempfile.mkdtemp(prefix="gpulease-bench-"))
    try:
        url = f"sqlite:///{folder / 'gpulease.db'}"
        upgrade(url)
        store = Store(url)
        with store.transaction() as s:
            screening.seed_bundled_lists(s, datetime.now(UTC))
        store.dispose()
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def server_index(data_dir: Path) -> ScreeningIndex:
    """The index `gpulease serve` screens with over this data folder: built from the store's version in force."""
    from gpulease.services.screening import ScreeningRegistry
    from gpulease.store.db import Store

    store = Store(f"sqlite:///{data_dir / 'gpulease.db'}")
    try:
        return ScreeningRegistry(store).index()
    finally:
        store.dispose()


# --------------------------------------------------------------------------- evaluation sets


def _country(value: str | None) -> str | None:
    return (value or "").strip() or None


def read_eval(folder: Path) -> tuple[list[Listed], list[Unlisted]] | None:
    listed_path, unlisted_path = folder / "listed.csv", folder / "unlisted.csv"
    if not (listed_path.exists() and unlisted_path.exists()):
        return None
    with listed_path.open(newline="", encoding="utf-8-sig") as f:
        listed = [
            Listed(r["name"], _country(r.get("country")), r["expected_list"], r["expected_name"], r["category"])
            for r in csv.DictReader(f)
            if (r.get("name") or "").strip()
        ]
    with unlisted_path.open(newline="", encoding="utf-8-sig") as f:
        unlisted = [
            Unlisted(r["name"], _country(r.get("country")), r["category"])
            for r in csv.DictReader(f)
            if (r.get("name") or "").strip()
        ]
    return listed, unlisted


def half_names(split: str) -> list[tuple[str, str | None]]:
    """The names and countries of one half of the evaluation set, listed rows then unlisted ones; exits saying so
    when the set is missing."""
    found = read_eval(Path(DEFAULT_EVAL))
    if found is None:
        raise SystemExit(f"no evaluation set at {DEFAULT_EVAL}")
    rows: list[Listed | Unlisted] = [*found[0], *found[1]]
    return [(r.name, r.country) for r in rows if half(r) == split]


def read_extra(path: Path) -> tuple[list[Listed], list[Unlisted]]:
    """A development file with listed.csv's columns: a row with an expected_list is a listed form, a row
    without one an unlisted party (its category then says what kind)."""
    listed: list[Listed] = []
    unlisted: list[Unlisted] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        for r in csv.DictReader(f):
            if not (r.get("name") or "").strip():
                continue
            if (r.get("expected_list") or "").strip():
                listed.append(
                    Listed(r["name"], _country(r.get("country")), r["expected_list"], r["expected_name"], r["category"])
                )
            else:
                unlisted.append(Unlisted(r["name"], _country(r.get("country")), r["category"]))
    return listed, unlisted


def _typo(name: str, rng: random.Random) -> str | None:
    words = name.split()
    candidates = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
    if not candidates:
        return None
    i = rng.choice(candidates)
    word = words[i]
    pos = rng.randrange(1, len(word) - 1)  # typos rarely hit the first letter
    kind = rng.choice(("substitute", "delete", "transpose", "insert"))
    letter = rng.choice("aeioulnrst")
    if kind == "substitute":
        word = word[:pos] + letter + word[pos + 1 :]
    elif kind == "delete":
        word = word[:pos] + word[pos + 1 :]
    elif kind == "transpose":
        word = word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]
    else:
        word = word[:pos] + letter + word[pos:]
    words[i] = word
    return " ".join(words)


def generated_eval(entries: tuple[ListEntry, ...], count: int, seed: int) -> tuple[list[Listed], list[Unlisted]]:
    """The fallback set: variants of listed names (deterministic for a seed) and the old negatives."""
    rng = random.Random(seed)
    listed: list[Listed] = []
    for entry in entries:  # every Chinese name on the lists, in both scripts
        for alias in entry.names:
            if any("\u4e00" <= ch <= "\u9fff" for ch in alias):
                listed.append(Listed(alias, None, entry.list, entry.name, "generated: chinese"))
                listed.append(Listed(_S2T.convert(alias), None, entry.list, entry.name, "generated: chinese"))
    pool = [e for e in entries if e.type != "individual" and normalize_name(e.name).strong]
    while len(listed) < count:
        entry = rng.choice(pool)
        kind = rng.choice(("alias", "typo", "reordered", "legal form"))
        query: str | None = None
        if kind == "alias" and entry.aliases:
            query = rng.choice(entry.aliases)
        elif kind == "typo":
            query = _typo(entry.name, rng)
        elif kind == "reordered":
            words = entry.name.replace(",", " ").split()
            if len(words) >= 2:
                rng.shuffle(words)
                query = " ".join(words)
        elif kind == "legal form":
            words = [w for w in entry.name.replace(",", " ").split() if w.lower().strip(".") not in LEGAL_FORMS]
            if words:
                query = " ".join(words) + " " + rng.choice(LEGAL_SUFFIXES)
        if query and normalize_name(query).strong:
            listed.append(Listed(query, None, entry.list, entry.name, f"generated: {kind}"))
    lines = (HERE / "data" / "unlisted_companies.txt").read_text(encoding="utf-8").splitlines()
    unlisted = [Unlisted(x.strip(), None, "companies (old set)") for x in lines if x.strip() and not x.startswith("#")]
    return listed, unlisted


# --------------------------------------------------------------------------- measuring


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _key(name: str) -> str:
    return " ".join(fold(name).split())


# The evaluation set's list codes that the product spells otherwise: "MBS" (OFAC's non-SDN menu-based
# sanctions, RUSSIA-EO14024) is the product's "NS-MBS".
LIST_CODES = {"MBS": frozenset({"MBS", "NS-MBS"})}


def _expected_hits(result: ScreeningResult, row: Listed, review: float) -> list[Any]:
    """The result's hits at or above the review threshold on the row's expected entry."""
    want = _key(row.expected_name)
    lists = LIST_CODES.get(row.expected_list, frozenset({row.expected_list}))
    return [
        screened
        for screened in result.hits
        if screened.hit.score >= review
        and screened.hit.list in lists
        and any(_key(n) == want for n in screened.hit.entry.names)
    ]


def _found(result: ScreeningResult, row: Listed, review: float) -> bool:
    return bool(_expected_hits(result, row, review))


NON_BLOCKING = frozenset({"CMIC", "SSI", "MBS"})


def _is_namesake_review(result: ScreeningResult) -> bool:
    """Review, and every hit that asks for it is a listed individual reviewed as a possible namesake."""
    asking = [h for h in result.hits if h.ruling.outcome != "cleared"]
    return (
        result.decision == "review"
        and bool(asking)
        and all(h.hit.entry.type == "individual" and "namesake" in h.ruling.rule for h in asking)
    )


def run_eval(index: ScreeningIndex, listed: list[Listed], unlisted: list[Unlisted], review: float) -> dict[str, Any]:
    """Screen every row once. Listed: found, denied/review; a CMIC/SSI/MBS or affiliate row denied is a wrong
    outcome. Unlisted: any decision but cleared is not cleared; a false positive is a company not cleared or
    a namesake denied (a namesake reviewed as a possible namesake is the outcome issue 9 asks for)."""
    latencies: list[float] = []
    cpu_latencies: list[float] = []  # CPU time of each call: on a shared machine the wall clock also waits
    by_category: dict[str, Tally] = {}
    wrong_outcome: list[str] = []
    denied_elsewhere: list[str] = []
    start = time.perf_counter()
    cpu_start = time.process_time()  # CPU time too: on a shared machine the wall clock also counts waiting
    for row in listed:
        t0, c0 = time.perf_counter(), time.thread_time()
        result = screen_name(index, row.name, row.country)
        latencies.append(time.perf_counter() - t0)
        cpu_latencies.append(time.thread_time() - c0)
        tally = by_category.setdefault(row.category, Tally())
        tally.total += 1
        if result.decision != "cleared" and _found(result, row, review):
            tally.found += 1
            tally.denied += result.decision == "denied"
            tally.review += result.decision == "review"
            if result.decision == "denied" and (row.expected_list in NON_BLOCKING or row.category == "affiliate"):
                line = f"[{row.category}] {row.name!r} ({row.country}) {row.expected_list}: denied"
                if any(h.ruling.outcome == "denied" for h in _expected_hits(result, row, review)):
                    wrong_outcome.append(line)  # the expected entry's own hit denied: the rule broken
                else:  # denied on another entry of a blocking list (Hikvision: CMIC and the Entity List)
                    denied_elsewhere.append(line + ", on another entry of a blocking list")
        else:
            top = result.hits[0].hit if result.hits else None
            got = f"{top.list} {top.matched_name!r} {top.score:.0f}" if top else "no hit"
            tally.misses.append(
                f"[{row.category}] {row.name!r} ({row.country}) expected {row.expected_list} "
                f"{row.expected_name!r}; {result.decision}, top {got}"
            )
    fp_by_category: dict[str, Tally] = {}
    not_cleared = fps = companies = 0
    for u in unlisted:
        t0, c0 = time.perf_counter(), time.thread_time()
        result = screen_name(index, u.name, u.country)
        latencies.append(time.perf_counter() - t0)
        cpu_latencies.append(time.thread_time() - c0)
        tally = fp_by_category.setdefault(u.category, Tally())
        tally.total += 1
        namesake = u.category == "namesake"
        companies += not namesake
        if result.decision == "cleared":
            continue
        not_cleared += 1
        tally.denied += result.decision == "denied"
        tally.review += result.decision == "review"
        if namesake and _is_namesake_review(result):
            continue
        tally.found += 1
        fps += 1
        top = result.hits[0].hit
        tally.misses.append(
            f"[{u.category}] {u.name!r} ({u.country}) -> {result.decision}: {top.list} "
            f"{top.entry_id} {top.matched_name!r} {top.score:.0f}"
        )
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    found = sum(t.found for t in by_category.values())
    company_fps = sum(t.found for c, t in fp_by_category.items() if c != "namesake")
    return {
        "names_per_s": len(latencies) / elapsed,
        "names_per_cpu_s": len(latencies) / cpu,
        "median_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "cpu_p99_ms": percentile(cpu_latencies, 0.99) * 1000,
        "recall": found / max(len(listed), 1),
        "denied": sum(t.denied for t in by_category.values()) / max(len(listed), 1),
        "review_share": sum(t.review for t in by_category.values()) / max(len(listed), 1),
        "fp_rate": fps / max(len(unlisted), 1),
        "company_fp_rate": company_fps / max(companies, 1),
        "not_cleared_rate": not_cleared / max(len(unlisted), 1),
        "wrong_outcome": wrong_outcome,
        "denied_elsewhere": denied_elsewhere,
        "listed": by_category,
        "unlisted": fp_by_category,
    }


def report(title: str, ours: dict[str, Any], listed: list[Listed], unlisted: list[Unlisted]) -> None:
    print(f"\n=== {title}: {len(listed)} listed, {len(unlisted)} unlisted")
    print(f"{'listed, by category':36} {'n':>5} {'recall':>7} {'denied':>7} {'review':>7}")
    for category, t in sorted(ours["listed"].items()):
        n = max(t.total, 1)
        print(f"{category[:36]:36} {t.total:5} {t.found / n:7.3f} {t.denied / n:7.3f} {t.review / n:7.3f}")
    print(f"{'all listed':36} {len(listed):5} {ours['recall']:7.3f} {ours['denied']:7.3f} {ours['review_share']:7.3f}")
    print(
        f"denied where review is expected (CMIC/SSI/MBS, affiliate): {len(ours['wrong_outcome'])} by the expected "
        f"entry's own hit; {len(ours['denied_elsewhere'])} more denied on another entry of a blocking list (a party "
        "on two lists, e.g. the CMIC list and the Entity List: denial is right)"
    )
    print()
    print(f"{'unlisted, by category':36} {'n':>5} {'FP rate':>8} {'denied':>7} {'review':>7}")
    for category, t in sorted(ours["unlisted"].items()):
        n = max(t.total, 1)
        print(f"{category[:36]:36} {t.total:5} {t.found / n:8.3f} {t.denied / n:7.3f} {t.review / n:7.3f}")
    print(
        f"{'all unlisted':36} {len(unlisted):5} {ours['fp_rate']:8.3f}   companies only: "
        f"{ours['company_fp_rate']:.3f}; not cleared at all (namesake reviews included): {ours['not_cleared_rate']:.3f}"
    )
    print(
        f"in-process (component, one core): {ours['names_per_s']:,.0f} names/s "
        f"({ours['names_per_cpu_s']:,.0f} per CPU second), median {ours['median_ms']:.2f} ms, "
        f"p99 {ours['p99_ms']:.2f} ms wall, {ours['cpu_p99_ms']:.2f} ms CPU"
    )


def dump_outcomes(index: ScreeningIndex, rows: Sequence[tuple[str, str | None]], path: Path) -> None:
    """One JSON line per row: its decision, top entry and score, and every hit as the API returns it."""
    with path.open("w", encoding="utf-8") as out:
        for name, country in rows:
            result = screen_name(index, name, country)
            top = result.hits[0].hit if result.hits else None
            line = {
                "name": name,
                "country": country,
                "decision": result.decision,
                "top_entry": f"{top.entry_id} {top.matched_name}" if top else None,
                "top_score": f"{top.score:.1f}" if top else None,
                "result": result.to_dict(),
            }
            out.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_api(
    data_dir: Path, names: list[tuple[str, str | None]], rate_limited: bool = False, clients: int = 1
) -> dict[str, Any]:
    """POST /api/v1/screen through a real `gpulease serve` over the seeded store: names/s, p99, and the server's CPU
    per name. `clients` keep-alive connections post their share of the names at once (each call also appends an audit
    record, as in production)."""
    from api_load import cpu_seconds  # (this folder's load benchmark: the server's CPU from /proc)

    # Without the per-key rate limit (50 requests/s after a burst of 200 by default), which would otherwise be what a
    # run of more than 200 names measures; `rate_limited` keeps it, and the waits it asks for are counted.
    env = {**os.environ, "GPULEASE_DATA_DIR": str(data_dir), "GPULEASE_LOG_JSON": "true"}
    if not rate_limited:
        env["GPULEASE_RATE_LIMIT_PER_S"] = "0"
    env.pop("GPULEASE_DATABASE_URL", None)
    gpulease = str(Path(sys.executable).with_name("gpulease"))
    key = subprocess.run(
        [gpulease, "keys", "create", "--role", "compliance", "--label", "benchmark"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    port = _free_port()
    server = subprocess.Popen(
        [gpulease, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-upgrade-db"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start")
                time.sleep(0.2)
            # The first screen builds the index from the store; time the calls after it.
            # (On a loaded machine the build takes more than the client's 30 s: it gets two minutes.)
            client.post("/api/v1/screen", json={"name": "warm up"}, timeout=120).raise_for_status()

        def post_share(share: list[tuple[str, str | None]]) -> tuple[list[float], int, int]:
            latencies: list[float] = []
            errors = waits = 0
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as one:
                for name, country in share:
                    t0 = time.perf_counter()
                    r = one.post("/api/v1/screen", json={"name": name, "country": country})
                    while r.status_code == 429:  # a rate limit, if the server has one: wait as told, count the wait
                        waits += 1
                        time.sleep(float(r.headers.get("Retry-After", "1")))
                        r = one.post("/api/v1/screen", json={"name": name, "country": country})
                    latencies.append(time.perf_counter() - t0)
                    errors += r.status_code != 200
            return latencies, errors, waits

        cpu_before = cpu_seconds(server.pid)
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            done = list(pool.map(post_share, [names[k::clients] for k in range(clients)]))
        elapsed = time.perf_counter() - start
        server_cpu = cpu_seconds(server.pid) - cpu_before
        latencies = [t for share, _, _ in done for t in share]
        errors = sum(e for _, e, _ in done)
        waits = sum(w for _, _, w in done)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return {
        "names_per_s": len(latencies) / elapsed,
        "median_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": errors,
        "queries": len(latencies),
        "rate_limit_waits": waits,
        "clients": clients,
        "server_cpu_ms_per_name": server_cpu / max(len(latencies), 1) * 1000,
    }


def run_scan(
    entries: tuple[ListEntry, ...], listed: list[Listed], unlisted: list[Unlisted], limit: int
) -> dict[str, Any]:
    """Baseline: plain rapidfuzz extractOne over every listed name (WRatio >= 90, default processor)."""
    names: list[str] = []
    owner: list[ListEntry] = []
    for entry in entries:
        for name in entry.names:
            names.append(utils.default_process(name))
            owner.append(entry)
    latencies: list[float] = []
    hits = fps = 0
    start = time.perf_counter()
    for row in listed[:limit]:
        t0 = time.perf_counter()
        best = process.extractOne(utils.default_process(row.name), names, scorer=fuzz.WRatio, processor=None)
        latencies.append(time.perf_counter() - t0)
        if best and best[1] >= 90 and owner[best[2]].list == row.expected_list:
            hits += _key(row.expected_name) in {_key(n) for n in owner[best[2]].names}
    for u in unlisted[:limit]:
        t0 = time.perf_counter()
        best = process.extractOne(utils.default_process(u.name), names, scorer=fuzz.WRatio, processor=None)
        latencies.append(time.perf_counter() - t0)
        fps += bool(best and best[1] >= 90)
    elapsed = time.perf_counter() - start
    return {
        "names_per_s": len(latencies) / elapsed,
        "median_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "recall": hits / max(min(limit, len(listed)), 1),
        "fp_rate": fps / max(min(limit, len(unlisted)), 1),
    }


# --------------------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--eval", default=str(DEFAULT_EVAL), help="folder with listed.csv and unlisted.csv, or none")
    parser.add_argument("--positives", type=int, default=1500, help="generated variants when there is no set")
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--api-names", type=int, default=500, help="names sent through POST /api/v1/screen (0: skip)")
    parser.add_argument(
        "--api-rate-limit", action="store_true", help="keep the server's default per-key rate limit (50/s after 200)"
    )
    parser.add_argument("--api-clients", type=int, default=1, help="connections posting the API's names at once")
    parser.add_argument("--baselines", action="store_true", help="also time a plain rapidfuzz scan")
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument(
        "--split", choices=("both", "dev", "test", "all"), default="both",
        help="halves of the evaluation set, fixed by a hash of each row: tune on dev, report test",
    )  # fmt: skip
    parser.add_argument("--json-out", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--dump", type=Path,
        help="write every row's outcome (both halves, listed and unlisted) as JSON lines here: diff two runs "
        "to check that a change to the matcher changes no outcome (the rows are screened once before the timed "
        "halves, which then find warm caches: time without it)",
    )  # fmt: skip
    parser.add_argument(
        "--extra", type=Path, action="append", default=[],
        help="also screen this development file (listed.csv's columns; no expected_list: unlisted), reported apart",
    )  # fmt: skip
    args = parser.parse_args()

    review = Thresholds().review
    with seeded_store() as data_dir:
        t0 = time.perf_counter()
        index = server_index(data_dir)
        build_s = time.perf_counter() - t0
        entries = index.entries
        folder = None if args.eval == "none" else Path(args.eval)
        loaded = read_eval(folder) if folder else None
        if loaded is None:
            listed, unlisted = generated_eval(entries, args.positives, args.seed)
            source = "generated variants of listed names + benchmarks/data/unlisted_companies.txt"
        else:
            listed, unlisted = loaded
            source = str(folder)
        print(f"lists: {len(entries)} entries, {len(index.names)} distinct names, version {index.version}")
        print(f"index built from the store in {build_s:.2f} s (the server's path: seed_bundled_lists → registry)")
        print(f"evaluation set: {source}: {len(listed)} listed, {len(unlisted)} unlisted; review threshold {review:g}")
        if args.dump:
            dump_outcomes(
                index, [(r.name, r.country) for r in listed] + [(u.name, u.country) for u in unlisted], args.dump
            )
            print(f"outcomes written to {args.dump}", file=sys.stderr)
        halves: dict[str, dict[str, Any]] = {}
        wanted = ("dev", "test") if args.split == "both" else (args.split,)
        if loaded is None:
            wanted = ("all",)  # the generated fallback has no halves
        for which in wanted:
            part_l = [r for r in listed if which == "all" or half(r) == which]
            part_u = [u for u in unlisted if which == "all" or half(u) == which]
            halves[which] = run_eval(index, part_l, part_u, review)
            report(f"{which} half" if which != "all" else "whole set", halves[which], part_l, part_u)
        for extra in args.extra:  # development files: reported apart, not part of either half
            extra_l, extra_u = read_extra(extra)
            halves[extra.stem] = run_eval(index, extra_l, extra_u, review)
            report(extra.stem, halves[extra.stem], extra_l, extra_u)
        ours = halves[wanted[-1]]
        if len(wanted) > 1:  # the figures of the whole set: both halves together, rows counted once
            both = [halves[w] for w in wanted]  # the halves only, not --extra files
            n_l = sum(sum(t.total for t in h["listed"].values()) for h in both)
            n_u = sum(sum(t.total for t in h["unlisted"].values()) for h in both)
            found = sum(sum(t.found for t in h["listed"].values()) for h in both)
            fps = sum(sum(t.found for t in h["unlisted"].values()) for h in both)
            recall, fp = found / max(n_l, 1), fps / max(n_u, 1)
            print(f"\n=== whole set: recall {recall:.3f} ({found}/{n_l}), FP {fp:.3f} ({fps}/{n_u})")
        api: dict[str, Any] | None = None
        if args.api_names:
            sample = [(r.name, r.country) for r in listed] + [(u.name, u.country) for u in unlisted]
            random.Random(args.seed).shuffle(sample)
            api = run_api(data_dir, sample[: args.api_names], args.api_rate_limit, args.api_clients)
            limit = "the default per-key rate limit" if args.api_rate_limit else "no rate limit"
            who = "one client" if args.api_clients == 1 else f"{args.api_clients} clients"
            print(
                f"through POST /api/v1/screen (uvicorn on 127.0.0.1, {who}, {limit}): "
                f"{api['names_per_s']:,.0f} names/s, median {api['median_ms']:.2f} ms, p99 {api['p99_ms']:.2f} ms, "
                f"{api['errors']} errors, {api['rate_limit_waits']} waits on 429 ({api['queries']} names); "
                f"server CPU {api['server_cpu_ms_per_name']:.2f} ms per name "
                f"({1000 / max(api['server_cpu_ms_per_name'], 1e-9):,.0f} names per server CPU second)"
            )
        scan = run_scan(entries, listed, unlisted, 300) if args.baselines else None
        if scan:
            print(
                f"baseline rapidfuzz extractOne scan (300+300): {scan['names_per_s']:,.0f} names/s, p99 "
                f"{scan['p99_ms']:.1f} ms, recall {scan['recall']:.3f}, FP rate {scan['fp_rate']:.3f}"
            )
        if args.show_misses:
            for which, h in halves.items():
                print(f"\nmisses ({which}: listed names not found):")
                for t in h["listed"].values():
                    for line in t.misses:
                        print(f"  {line}")
                print(f"\nfalse positives ({which}: unlisted names not cleared, namesake reviews aside):")
                for t in h["unlisted"].values():
                    for line in t.misses:
                        print(f"  {line}")
                print(f"\ndenied where review is expected ({which}):")
                for line in h["wrong_outcome"] + h["denied_elsewhere"]:
                    print(f"  {line}")
        if args.json_out:
            methods = [
                {
                    "key": "gpulease" if which == "all" else f"gpulease-{which}",
                    "label": "gpulease index" + ("" if which == "all" else f" ({which} half)"),
                    "queries": sum(t.total for part in ("listed", "unlisted") for t in h[part].values()),
                    **{k: h[k] for k in ("names_per_s", "median_ms", "p99_ms", "recall", "fp_rate")},
                }
                for which, h in halves.items()
            ]
            if scan:
                methods.append({"key": "rapidfuzz", "label": "rapidfuzz scan", "queries": 600, **scan})
            figures = {
                "benchmark": "screening",
                "eval": source,
                "entries": len(entries),
                "distinct_names": len(index.names),
                "positives": len(listed),
                "negatives": len(unlisted),
                "review_threshold": review,
                "build_s": build_s,
                "methods": methods,
                "denied_share": ours["denied"],
                "listed_by_category": {k: vars(v) for k, v in ours["listed"].items()},
                "unlisted_by_category": {k: vars(v) for k, v in ours["unlisted"].items()},
                "api": api,
                "reported_half": wanted[-1],
                "halves": {
                    k: {
                        f: h[f]
                        for f in (
                            "recall",
                            "denied",
                            "review_share",
                            "fp_rate",
                            "company_fp_rate",
                            "not_cleared_rate",
                            "names_per_s",
                            "names_per_cpu_s",
                            "p99_ms",
                            "cpu_p99_ms",
                        )
                    }
                    for k, h in halves.items()
                },
            }
            args.json_out.write_text(json.dumps(figures, indent=1) + "\n")
            print(f"figures written to {args.json_out}", file=sys.stderr)


if __name__ == "__main__":
    main()
