"""Build ``unlisted.csv`` from the hand-curated rows in ``unlisted/*.psv``; run ``verify.py`` afterwards.

.venv/bin/python benchmarks/data/screening_eval/tools/build_unlisted.py
.venv/bin/python benchmarks/data/screening_eval/tools/verify.py
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "unlisted.csv"
FIELDS = ["name", "country", "category", "source"]


def main() -> int:
    rows: list[dict[str, str]] = []
    for path in sorted((HERE / "unlisted").glob("*.psv")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            cells = [c.strip() for c in line.split("|")]
            if len(cells) != len(FIELDS) or not all(cells):
                raise SystemExit(f"{path.name}:{number}: expected {len(FIELDS)} non-empty fields: {line!r}")
            rows.append(dict(zip(FIELDS, cells, strict=True)))
    rows.sort(key=lambda r: (r["category"], r["country"], r["name"]))
    with OUT.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {OUT.name}")
    for category, count in sorted(Counter(r["category"] for r in rows).items()):
        print(f"  {category:24} {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
