"""Function calls per screened name: the figure to compare commits by where timings drift (component figure).

    .venv/bin/python benchmarks/screening_calls.py                      # the dev half of the evaluation set
    PYTHONPATH=<a checkout>/src .venv/bin/python benchmarks/screening_calls.py    # that checkout's code

The server's index (`screening.server_index`, built from the store as the server builds it), then every name of the
chosen half screened once under cProfile, after 50 names to warm caches. Prints the calls per name and the
functions called most; the count does not depend on the machine's speed or load.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from screening import half_names, seeded_store, server_index

from gpulease.compliance.screening import screen_name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--top", type=int, default=10, help="also print the functions called most")
    args = parser.parse_args()
    names = half_names(args.split)
    with seeded_store() as data_dir:
        index = server_index(data_dir)
        for name, country in names[:50]:
            screen_name(index, name, country)
        profile = cProfile.Profile()
        profile.enable()
        for name, country in names:
            screen_name(index, name, country)
        profile.disable()
    # (pstats keeps its table as `stats`, which typeshed does not describe: function -> (primitive calls, calls, ...))
    table: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    counts = sorted(
        ((row[1], f"{fn} ({Path(file).name}:{line})") for (file, line, fn), row in table.items()), reverse=True
    )
    total = sum(calls for calls, _ in counts)
    print(f"{args.split} half: {len(names)} names, {total / len(names):,.0f} function calls per name")
    for calls, where in counts[: args.top]:
        print(f"  {calls / len(names):8.1f} per name  {where}")


if __name__ == "__main__":
    main()
