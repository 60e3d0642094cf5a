"""The first pass over a half's names against the passes after it: build time, memory, and the collector (component).

    .venv/bin/python benchmarks/screening_cold.py [--split dev] [--passes 3]
    PYTHONPATH=<a checkout>/src .venv/bin/python benchmarks/screening_cold.py    # that checkout's code

The server's index (`screening.server_index`: seeded store, registry, built and frozen as the server does), its build
time (wall and CPU) and the process's RSS after it; then the half's names screened `--passes` times, the first cold
as in `benchmarks/screening.py`. Per pass: names per CPU second, and the garbage collector's collections in it, by
generation, with the CPU time they took (`gc.callbacks`). The RSS again at the end.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from screening import half_names, seeded_store, server_index

from gpulease.compliance.screening import screen_name


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    names = half_names(args.split)
    collections: dict[int, list[float]] = {}
    started = [0.0]

    def collector(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.process_time()
        else:
            collections.setdefault(info["generation"], []).append(time.process_time() - started[0])

    with seeded_store() as data_dir:
        wall, cpu = time.perf_counter(), time.process_time()
        index = server_index(data_dir)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"index built in {wall:.2f} s ({cpu:.2f} s CPU); RSS {_rss_mib():.0f} MiB")
        gc.callbacks.append(collector)
        try:
            for number in range(args.passes):
                collections.clear()
                start = time.process_time()
                for name, country in names:
                    screen_name(index, name, country)
                rate = len(names) / (time.process_time() - start)
                by_generation = ", ".join(
                    f"gen {g}: {len(t)} ({sum(t) * 1000:.1f} ms)" for g, t in sorted(collections.items())
                )
                label = "cold" if number == 0 else "warm"
                print(f"pass {number} ({label}): {rate:,.0f} names per CPU second; collections {by_generation or '-'}")
        finally:
            gc.callbacks.remove(collector)
        print(f"RSS after the passes {_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
