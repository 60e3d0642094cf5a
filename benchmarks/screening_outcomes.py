"""Every evaluation row's screening outcome as JSON lines, to diff two versions of the matcher.

    .venv/bin/python benchmarks/screening_outcomes.py /tmp/new.jsonl
    cd /other/checkout && .venv/bin/python /this/checkout/benchmarks/screening_outcomes.py /tmp/old.jsonl
    cmp /tmp/old.jsonl /tmp/new.jsonl

Run from a checkout's root: it screens with that checkout's code, benchmark module and evaluation set.

Rows: all of `listed.csv` and `unlisted.csv` (both halves) and `dev_extra.csv`, screened through the benchmark's own
path (`seeded_store`, `server_index`, `screen_name`). Per row: the decision, the top entry, the top score's `repr`
and the whole result as `POST /screen` returns it. Nothing is timed and no miss is printed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path.cwd() / "benchmarks"))  # (the checkout's own benchmark module, not this file's)

import screening as bench


def main() -> None:
    out = Path(sys.argv[1])
    folder = Path("benchmarks/data/screening_eval")
    loaded = bench.read_eval(folder)
    assert loaded is not None, folder
    listed, unlisted = loaded
    extra_l, extra_u = bench.read_extra(folder / "dev_extra.csv")
    rows = [("listed", r.name, r.country) for r in listed] + [("unlisted", u.name, u.country) for u in unlisted]
    rows += [("extra", r.name, r.country) for r in extra_l] + [("extra", u.name, u.country) for u in extra_u]
    with bench.seeded_store() as data_dir, out.open("w", encoding="utf-8") as f:
        index = bench.server_index(data_dir)
        for source, name, country in rows:
            result = bench.screen_name(index, name, country)
            top = result.hits[0].hit if result.hits else None
            line = {
                "src": source,
                "name": name,
                "country": country,
                "decision": result.decision,
                "top_entry": f"{top.entry_id} {top.matched_name}" if top else None,
                "top_score": repr(top.score) if top else None,
                "result": result.to_dict(),
            }
            f.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{len(rows)} rows written to {out}")


if __name__ == "__main__":
    main()
