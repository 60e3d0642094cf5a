"""Run inside a separate venv that has nomenklatura: reads JSON on stdin, prints figures as JSON."""

import json
import statistics
import sys
import time
from typing import Any

from followthemoney import model
from nomenklatura.matching import get_algorithm

SCHEMA = {"individual": "Person", "vessel": "Vessel", "aircraft": "Airplane"}


def entity(eid: str, schema: str, names: list[str]) -> Any:
    proxy = model.make_entity(schema)
    proxy.id = eid
    for name in names:
        proxy.add("name", name)
    return proxy


def main() -> None:
    data = json.load(sys.stdin)
    algorithm = get_algorithm("name-based")
    listed = [entity(eid, SCHEMA.get(kind, "LegalEntity"), names) for eid, kind, names in data["entries"]]
    config = algorithm.default_config()
    latencies: list[float] = []
    found, fps = 0, 0

    def best(query: str) -> tuple[float, str | None]:
        q = entity("query", "LegalEntity", [query])
        top: float = 0.0
        top_id: str | None = None
        for candidate in listed:
            if not q.schema.can_match(candidate.schema):
                continue
            score = algorithm.compare(q, candidate, config).score
            if score > top:
                top, top_id = score, candidate.id
        return top, top_id

    start = time.perf_counter()
    for query, expected in data["positives"]:
        t0 = time.perf_counter()
        score, eid = best(query)
        latencies.append(time.perf_counter() - t0)
        found += int(score >= 0.7 and eid == expected)
    for query in data["negatives"]:
        t0 = time.perf_counter()
        score, _ = best(query)
        latencies.append(time.perf_counter() - t0)
        fps += int(score >= 0.7)
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    print(
        json.dumps(
            {
                "names_per_s": len(latencies) / elapsed,
                "median_ms": statistics.median(latencies) * 1000,
                "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000,
                "recall": found / max(len(data["positives"]), 1),
                "fp_rate": fps / max(len(data["negatives"]), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
