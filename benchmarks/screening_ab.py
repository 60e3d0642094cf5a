"""Two checkouts' screening timed in one process, passes alternated (component figure).

    .venv/bin/python benchmarks/screening_ab.py --old <checkout of main> --new . --rounds 14

On a shared machine, one process per run measures the load more than the code (the spread of one version's runs
is ±20%). Here each checkout's package is imported in turn (the modules dropped from `sys.modules` in between; each
index keeps its own functions and caches), its index built from a seeded store as `benchmarks/screening.py` builds
it, and then the dev names are screened by each in turn, the order swapped every round. Prints names per CPU second
(`time.process_time`) of every pass; the first pass of each is cold, as the benchmark's.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any


def _load(checkout: Path) -> Any:
    """The checkout's `benchmarks/screening.py`, importing that checkout's package."""
    for name in [m for m in sys.modules if m in ("gpulease", "screening") or m.startswith("gpulease.")]:
        del sys.modules[name]
    paths = [str(checkout / "src"), str(checkout / "benchmarks")]
    sys.path[:0] = paths
    try:
        return importlib.import_module("screening")
    finally:
        for path in paths:
            sys.path.remove(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", type=Path, required=True, help="a checkout (its root)")
    parser.add_argument("--new", type=Path, default=Path("."), help="a checkout (its root)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    args = parser.parse_args()
    runs: dict[str, tuple[Any, Callable[..., Any], list[tuple[str, str | None]]]] = {}
    rates: dict[str, list[float]] = {"old": [], "new": []}
    with ExitStack() as stack:
        for label, checkout in (("old", args.old.resolve()), ("new", args.new.resolve())):
            bench = _load(checkout)
            found = bench.read_eval(checkout / "benchmarks" / "data" / "screening_eval")
            if found is None:
                raise SystemExit(f"no evaluation set in {checkout}")
            listed, unlisted = found
            names = [(r.name, r.country) for r in [*listed, *unlisted] if bench.half(r) == args.split]
            index = bench.server_index(stack.enter_context(bench.seeded_store()))
            runs[label] = (index, bench.screen_name, names)
            print(f"{label}: {sys.modules['gpulease.compliance.index'].__file__}", flush=True)
        for round_ in range(args.rounds):
            for label in ("old", "new") if round_ % 2 == 0 else ("new", "old"):
                index, screen_name, names = runs[label]
                gc.collect()
                start = time.process_time()
                for name, country in names:
                    screen_name(index, name, country)
                rates[label].append(len(names) / (time.process_time() - start))
            print(f"round {round_}: old {rates['old'][-1]:,.0f}, new {rates['new'][-1]:,.0f}", flush=True)
    for label, values in rates.items():
        warm = values[1:]
        print(
            f"{label}: cold {values[0]:,.0f} names per CPU second; warm median "
            f"{statistics.median(warm) if warm else float('nan'):,.0f} over {len(warm)} passes"
        )
    ahead = sum(new > old for old, new in zip(rates["old"][1:], rates["new"][1:], strict=True))
    print(f"new ahead in {ahead} of {len(rates['new']) - 1} warm rounds")


if __name__ == "__main__":
    main()
