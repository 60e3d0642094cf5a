"""Trade-name probe: acronyms, English names in everyday use and short names of prominent listed parties.

    .venv/bin/python benchmarks/trade_name_probe.py [--show-misses] [--group "Iran"]

1. Takes the server's index (`screening.server_index`, built from a seeded store as `gpulease serve` builds it).
2. Screens `benchmarks/data/trade_names/listed.csv` (name,country,expected,group) with
   `compliance.screening.screen_name` (POST /screen's function): the names under which prominent parties of every
   bundled list are known (IRGC, KOMID, NORINCO, "Bank Melli", "Wagner Group", "Islamic State"), written from the
   curator's knowledge, not from the evaluation set. `expected` holds the party's entries as `LIST:primary name`,
   separated by " | " (a party on two lists, the SDN and the UN, counts as found on either). A row is found when the
   decision is not cleared and a hit at or above the review threshold is one of those entries.
3. Screens `benchmarks/data/trade_names/unlisted.csv` (name,country,note): real firms and bodies on none of the lists
   that share an acronym or words with a listed party's trade name; any decision but cleared is a false positive.

Recall by group, the misses with the top hit, and the false positives with what stopped them.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from screening import seeded_store, server_index

from gpulease.compliance.decide import Thresholds
from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.screening import ScreeningResult, screen_name

DATA = Path(__file__).resolve().parent / "data" / "trade_names"


@dataclass(frozen=True)
class Probe:
    name: str
    country: str | None
    expected: frozenset[tuple[str, str]]  # (list code, primary name)
    group: str


def read_listed(path: Path) -> list[Probe]:
    rows: list[Probe] = []
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            expected = frozenset(
                (code, name) for code, _, name in (part.partition(":") for part in row["expected"].split(" | "))
            )
            rows.append(Probe(row["name"], row["country"] or None, expected, row["group"]))
    return rows


def read_unlisted(path: Path) -> list[tuple[str, str | None, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [(row["name"], row["country"] or None, row["note"]) for row in csv.DictReader(f)]


def found(result: ScreeningResult, probe: Probe, review: float) -> bool:
    return result.decision != "cleared" and any(
        h.hit.score >= review and (h.hit.list, h.hit.entry.name) in probe.expected for h in result.hits
    )


def _top(result: ScreeningResult) -> str:
    if not result.hits:
        return "no hit"
    top = result.hits[0].hit
    return f"{top.list} {top.entry.name!r} via {top.matched_name!r} {top.score:.0f}"


def check_expected(index: ScreeningIndex, probes: list[Probe]) -> list[str]:
    """Rows whose expected entries are not all in the index (a list update renamed or dropped them)."""
    present = {(e.list, e.name) for e in index.entries}
    return [f"{p.name!r}: {sorted(p.expected - present)}" for p in probes if not p.expected <= present]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--group", default="", help="only rows whose group contains this text")
    args = parser.parse_args()
    review = Thresholds().review
    probes = [p for p in read_listed(DATA / "listed.csv") if args.group.lower() in p.group.lower()]
    unlisted = read_unlisted(DATA / "unlisted.csv")
    with seeded_store() as data_dir:
        index = server_index(data_dir)
        stale = check_expected(index, probes)
        by_group: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        misses: list[str] = []
        for p in probes:
            result = screen_name(index, p.name, p.country)
            ok = found(result, p, review)
            by_group[p.group][0] += 1
            by_group[p.group][1] += ok
            if not ok:
                misses.append(f"[{p.group}] {p.name!r} ({p.country}): {result.decision}, top {_top(result)}")
        fps: list[str] = []
        for name, country, note in unlisted:
            result = screen_name(index, name, country)
            if result.decision != "cleared":
                fps.append(f"{name!r} ({country}; {note}): {result.decision}, top {_top(result)}")
    total = sum(n for n, _ in by_group.values())
    hit = sum(k for _, k in by_group.values())
    print(f"trade-name probe: {total} listed names, {len(unlisted)} unlisted; review threshold {review:g}")
    for group, (n, k) in by_group.items():
        print(f"  {group:52} {k / n:6.3f} ({k}/{n})")
    print(f"  {'all':52} {hit / max(total, 1):6.3f} ({hit}/{total})")
    print(f"unlisted not cleared: {len(fps)}/{len(unlisted)}")
    if stale:
        print("\nexpected entries not in the index:")
        for line in stale:
            print(f"  {line}")
    if args.show_misses:
        print("\nmisses:")
        for line in misses:
            print(f"  {line}")
        print("\nfalse positives:")
        for line in fps:
            print(f"  {line}")


if __name__ == "__main__":
    main()
