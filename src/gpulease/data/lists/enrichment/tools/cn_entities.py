"""Enumerate the Chinese (mainland, Hong Kong, Macau) entities on the bundled lists and report alias coverage.

Not product logic: a reproducible inventory for the people who curate `cn_aliases.csv`.

    python src/gpulease/data/lists/enrichment/tools/cn_entities.py --data /work/shared/data
    python src/gpulease/data/lists/enrichment/tools/cn_entities.py --data /work/shared/data --write-readme
    python src/gpulease/data/lists/enrichment/tools/cn_entities.py --data /work/shared/data --missing

An OFAC entry counts as Chinese when it is an entity (not an individual, vessel or aircraft) and its first
listed address lies in China, Hong Kong or Macau (a foreign bank or trading house with a Beijing or Dandong
branch lists its home address first); `INCLUDE` and `EXCLUDE` below
correct that rule by hand, each with its reason. A Consolidated Screening List row counts when its address
ends in CN/HK/MO or names China/Hong Kong/Macau; every row of the Entity List supplement counts (it was compiled
as a list of Chinese parties).
"""

from __future__ import annotations

import argparse
import collections
import csv
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENRICHMENT = HERE.parent
PACKAGE_LISTS = ENRICHMENT.parent
ALIASES = ENRICHMENT / "cn_aliases.csv"
README = ENRICHMENT / "README.md"

SDN_DIR = "ofac-sdn-2023-12"
CONS_DIR = "ofac-cons-2025"
SUPPLEMENT = "entity-list-supplement/entity_list_supplement_v2.csv"
CSL_SAMPLE = "csl-sample/consolidated_sample.csv"

CN_COUNTRIES = {"China", "Hong Kong", "Macau", "Macao"}
NOT_A_PLACE = {"-0-", "", "undetermined"}
NOT_ENTITIES = {"individual", "vessel", "aircraft"}

# OFAC non-SDN programmes -> the list code the product uses for them (the programme family).
CONS_LIST_CODES = {
    "CMIC-EO13959": "CMIC",
    "NS-CMIC": "CMIC",
    "UKRAINE-EO13662": "SSI",
    "NS-PLC": "PLC",
    "561-Related": "CAP",
    "RUSSIA-EO14024": "MBS",
    "CAATSA - RUSSIA": "MBS",
}
CONS_CODE_ORDER = ("CMIC", "SSI", "CAP", "PLC", "MBS")

# Hand corrections to the address rule: (list file, ent_num) -> reason.
INCLUDE = {
    ("cons", "33091"): "Megvii Technology Limited: Cayman holding company of the Beijing face-recognition firm",
    ("cons", "32089"): "Proven Glory Capital Limited: BVI bond issuer of the Huawei group (CMIC)",
    ("cons", "32091"): "Proven Honour Capital Limited: BVI bond issuer of the Huawei group (CMIC)",
    ("cons", "33893"): "Yitu Limited: Cayman holding company of Shanghai Yitu (CMIC)",
    ("sdn", "33675"): "Pingtan Marine Enterprise: Cayman-listed holding of the Fuzhou fishing group",
    ("sdn", "35378"): "Mars Harvest: BVI company of the Pingtan fishing group, operating from Fuzhou",
    ("sdn", "27646"): "Global United Biotechnology: BVI company operating from Shanghai",
    ("sdn", "33272"): "Taiwan Be Charm Trading Co., Limited: Hong Kong limited company with a Guangzhou office",
    ("sdn", "39822"): "East Asia Trading Import and Export Trade: operating from Shenzhen",
    ("sdn", "30287"): "NAZ Technology: four of its five addresses in Shenzhen and Hong Kong",
}
EXCLUDE = {
    ("sdn", "37518"): "Air Koryo Trading Corporation: North Korean state company (Dandong office)",
}


@dataclass
class Entity:
    """One listed entity that the inventory treats as Chinese."""

    code: str
    entry_id: str
    listed_name: str
    programs: str
    places: list[str]
    basis: str
    names: set[str] = field(default_factory=set)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.code, self.entry_id, self.listed_name)


def _ofac_rows(path: Path) -> Iterator[list[str]]:
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        for row in csv.reader(handle):
            if len(row) > 2 and row[0].strip().isdigit():
                yield [cell.strip() for cell in row]


def _clean(cell: str) -> str:
    return "" if cell.strip() == "-0-" else cell.strip()


def ofac_entities(folder: Path, which: str) -> list[Entity]:
    """Chinese entities of an OFAC legacy-CSV set (`which` is 'sdn' or 'cons')."""
    prefix = "" if which == "sdn" else "cons_"
    primary = folder / ("sdn.csv" if which == "sdn" else "cons_prim.csv")
    places: dict[str, list[tuple[int, str, str]]] = collections.defaultdict(list)
    for row in _ofac_rows(folder / f"{prefix}add.csv"):
        places[row[0]].append((int(row[1]), _clean(row[4]), _clean(row[3])))
    aliases: dict[str, set[str]] = collections.defaultdict(set)
    for row in _ofac_rows(folder / f"{prefix}alt.csv"):
        aliases[row[0]].add(_clean(row[3]))
    found: list[Entity] = []
    for row in _ofac_rows(primary):
        number, name, kind, programs = row[0], row[1], _clean(row[2]).lower(), _clean(row[3])
        if kind in NOT_ENTITIES or (which, number) in EXCLUDE:
            continue
        countries = [country for _, country, _ in sorted(places[number]) if country not in NOT_A_PLACE]
        in_cn = [c for c in countries if c in CN_COUNTRIES]
        if (which, number) in INCLUDE:
            basis = "manual: " + INCLUDE[(which, number)]
        elif countries and countries[0] in CN_COUNTRIES:
            basis = "address in " + "/".join(sorted(set(in_cn)))
        else:
            continue
        if which == "sdn":
            code, entry_id = "SDN", f"SDN-{number}"
        else:
            codes = {CONS_LIST_CODES.get(p.strip(" []"), "NS") for p in programs.split("] [")}
            code = next((c for c in CONS_CODE_ORDER if c in codes), sorted(codes)[0])
            entry_id = f"CONS-{number}"
        cities = sorted({f"{city}, {country}" if city else country for _, country, city in places[number]})
        found.append(Entity(code, entry_id, name, programs, cities, basis, {name, *aliases[number]}))
    return found


def csl_list_code(source: str) -> str:
    """'Entity List (EL) - Bureau of Industry and Security' -> 'EL' (as the product's CSL loader does)."""
    match = re.search(r"\(([A-Z][A-Z0-9-]{1,9})\)", source)
    return match.group(1) if match else source


_CSL_CN = re.compile(r"(,\s*(CN|HK|MO)\s*$)|\b(China|Hong Kong|Macau|Macao)\b")


def csl_entities(path: Path) -> list[Entity]:
    """Chinese entities of a trade.gov CSL-format file (the CSL sample or the Entity List supplement)."""
    found: list[Entity] = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        for record in csv.DictReader(handle):
            if (record.get("type") or "").strip().lower() in NOT_ENTITIES:
                continue
            code = csl_list_code(record["source"])
            if code in {"SDN", "SSI", "PLC", "DPL"}:
                continue  # OFAC rows come from the OFAC files themselves; DPL rows are individuals here
            addresses = record.get("addresses") or ""
            name = record["name"].strip()
            if _CSL_CN.search(addresses):
                basis = "address in China/Hong Kong"
            elif _CSL_CN.search(name):
                basis = "the listed name carries its Chinese address"
            elif path.name.startswith("entity_list_supplement"):
                # Every row of the supplement is a Chinese party by construction (see PROVENANCE.md).
                basis = "Entity List supplement of Chinese parties (cited notice)"
            else:
                continue
            aliases = {a.strip() for a in (record.get("alt_names") or "").split(";") if a.strip()}
            programs = record.get("federal_register_notice") or record.get("programs") or ""
            found.append(Entity(code, "", name, programs, [addresses], basis, {name, *aliases}))
    return found


def all_entities(data: Path) -> list[Entity]:
    """Every Chinese entity on the four bundled list sources, in file order."""
    return [
        *ofac_entities(data / SDN_DIR, "sdn"),
        *ofac_entities(data / CONS_DIR, "cons"),
        *csl_entities(data / SUPPLEMENT),
        *csl_entities(data / CSL_SAMPLE),
    ]


def read_aliases(path: Path = ALIASES) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _has_chinese(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" for ch in text)


def coverage(entities: list[Entity], rows: list[dict[str, str]]) -> tuple[str, list[tuple[Entity, bool]]]:
    """Markdown coverage tables, and the entities with no Chinese legal name (flag: has a Chinese short/brand name)."""
    by_key: dict[tuple[str, str, str], list[dict[str, str]]] = collections.defaultdict(list)
    for row in rows:
        by_key[(row["list"], row["entry_id"], row["listed_name"])].append(row)
    per_list: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    missing: list[tuple[Entity, bool]] = []
    for entity in entities:
        mine = by_key.get(entity.key, [])
        counts = per_list[entity.code]
        counts[0] += 1
        counts[1] += bool(mine)
        has_legal = any(r["alias_kind"] == "legal_name" and _has_chinese(r["alias"]) for r in mine)
        counts[2] += has_legal
        counts[3] += len(mine)
        if not has_legal:
            missing.append((entity, any(_has_chinese(r["alias"]) for r in mine)))
    lines = [
        "| list | Chinese/HK/Macau entities found | with ≥1 alias | with a Chinese legal name | alias rows |",
        "|---|---:|---:|---:|---:|",
    ]
    totals = [0, 0, 0, 0]
    for code in sorted(per_list, key=lambda c: (-per_list[c][0], c)):
        counts = per_list[code]
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        lines.append(f"| {code} | {counts[0]} | {counts[1]} | {counts[2]} | {counts[3]} |")
    lines.append(f"| **all** | **{totals[0]}** | **{totals[1]}** | **{totals[2]}** | **{totals[3]}** |")
    kinds = collections.Counter(r["alias_kind"] for r in rows)
    scripts = collections.Counter(r["script"] for r in rows)
    lines += [
        "",
        f"{len(rows)} alias rows in all. By kind: "
        + ", ".join(f"{k} {n}" for k, n in kinds.most_common())
        + ". By script: "
        + ", ".join(f"{k} {n}" for k, n in scripts.most_common())
        + ".",
    ]
    return "\n".join(lines), missing


def missing_markdown(missing: list[tuple[Entity, bool]]) -> str:
    lines = []
    for code in sorted({e.code for e, _ in missing}):
        names = [
            e.listed_name.strip()
            + (f" ({e.entry_id})" if e.entry_id else "")
            + (" [short/brand name only]" if some else "")
            for e, some in missing
            if e.code == code
        ]
        lines.append(f"- **{code}** ({len(names)}): " + "; ".join(names) + ".")
    return "\n".join(lines)


def write_readme(section: str) -> None:
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- coverage:start -->", "<!-- coverage:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    README.write_text(f"{head}{start}\n{section}\n{end}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=PACKAGE_LISTS, help="folder holding the list files")
    parser.add_argument("--inventory", action="store_true", help="print every entity found, as CSV")
    parser.add_argument("--missing", action="store_true", help="print the entities with no Chinese legal name")
    parser.add_argument("--write-readme", action="store_true", help="rewrite the coverage section of README.md")
    args = parser.parse_args(argv)
    for needed in (SDN_DIR + "/sdn.csv", CONS_DIR + "/cons_prim.csv", SUPPLEMENT, CSL_SAMPLE):
        if not (args.data / needed).exists():
            print(f"{args.data / needed} is missing; point --data at the folder holding the list files.")
            return 2
    entities = all_entities(args.data)
    if args.inventory:
        out = csv.writer(sys.stdout)
        out.writerow(["list", "entry_id", "listed_name", "programs", "basis", "places"])
        for e in entities:
            out.writerow([e.code, e.entry_id, e.listed_name, e.programs, e.basis, "; ".join(e.places)])
        return 0
    table, missing = coverage(entities, read_aliases())
    if args.missing:
        print(missing_markdown(missing))
        return 0
    section = (
        f"{table}\n\nEntities with no verified Chinese legal name ({len(missing)}; "
        "[short/brand name only] marks those that carry a verified Chinese short or brand name):\n\n"
        f"{missing_markdown(missing)}"
    )
    if args.write_readme:
        write_readme(section)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
