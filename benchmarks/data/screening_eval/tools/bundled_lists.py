"""Read the bundled restricted-party list files into plain entries, with the standard library only.

The evaluation set is checked against the same files the product bundles, independently of the product's
own loaders (a bug in those must not hide a wrong label here). Each file is looked up, in this order, under
``$GPULEASE_LIST_DATA``, the package's ``src/gpulease/data/lists/``, the checkout's ``../shared/data/`` and
``/work/shared/data/``; the first folder that has it wins, so a partly bundled set still resolves.

List codes: ``SDN`` (OFAC SDN), ``CMIC``, ``SSI``, ``MBS``, ``PLC`` (programmes of OFAC's non-SDN list), ``EL``
(Entity List: the supplement and the CSL sample), ``DPL``, ``UN``, and the CSL sample's other codes (``UVL``,
``ISN``, ``DTC``, ``CAP``). An entry's primary ``name`` is written exactly as in its file; for UN entries it is
the non-empty ``FIRST_NAME`` ... ``FOURTH_NAME`` parts joined by one space.
"""

from __future__ import annotations

import csv
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]

SDN_DIR = "ofac-sdn-2023-12"
CONS_DIR = "ofac-cons-2025"
SUPPLEMENT = "entity-list-supplement/entity_list_supplement_v2.csv"
CSL_SAMPLE = "csl-sample/consolidated_sample.csv"
UN_XML = "un/UN_consolidated.xml"
DPL_TXT = "dpl.txt"

# Country names as OFAC writes them -> ISO 3166 alpha-2, for the countries this evaluation uses.
COUNTRY_CODES = {
    "afghanistan": "AF",
    "belarus": "BY",
    "burma": "MM",
    "canada": "CA",
    "cayman islands": "KY",
    "china": "CN",
    "cuba": "CU",
    "cyprus": "CY",
    "finland": "FI",
    "germany": "DE",
    "hong kong": "HK",
    "india": "IN",
    "iran": "IR",
    "iraq": "IQ",
    "israel": "IL",
    "korea, north": "KP",
    "korea, south": "KR",
    "lebanon": "LB",
    "mexico": "MX",
    "pakistan": "PK",
    "russia": "RU",
    "russian federation": "RU",
    "saudi arabia": "SA",
    "singapore": "SG",
    "syria": "SY",
    "taiwan": "TW",
    "turkey": "TR",
    "ukraine": "UA",
    "united arab emirates": "AE",
    "united kingdom": "GB",
    "united states": "US",
    "uzbekistan": "UZ",
    "venezuela": "VE",
    "armenia": "AM",
    "colombia": "CO",
    "kuwait": "KW",
    "yemen": "YE",
    "somalia": "SO",
    "kenya": "KE",
    "thailand": "TH",
    "kyrgyzstan": "KG",
    "azerbaijan": "AZ",
    "georgia": "GE",
    "kazakhstan": "KZ",
    "spain": "ES",
    "france": "FR",
    "italy": "IT",
    "netherlands": "NL",
    "switzerland": "CH",
    "japan": "JP",
    "australia": "AU",
    "brazil": "BR",
    "egypt": "EG",
    "libya": "LY",
    "jordan": "JO",
    "qatar": "QA",
    "malaysia": "MY",
    "indonesia": "ID",
    "philippines": "PH",
    "vietnam": "VN",
    "nigeria": "NG",
    "comoros": "KM",
    "algeria": "DZ",
    "tunisia": "TN",
    "morocco": "MA",
    "palestinian": "PS",
    "west bank": "PS",
    "gaza": "PS",
}


@dataclass
class Entry:
    """One listed party: its list code(s), primary name, aliases and the countries tied to it."""

    codes: frozenset[str]
    name: str
    aliases: list[str] = field(default_factory=list)
    countries: set[str] = field(default_factory=set)
    individual: bool = False
    source: str = ""

    def all_names(self) -> list[str]:
        return [self.name, *self.aliases]


def candidate_roots() -> list[Path]:
    roots = []
    if os.environ.get("GPULEASE_LIST_DATA"):
        roots.append(Path(os.environ["GPULEASE_LIST_DATA"]))
    roots += [REPO / "src" / "gpulease" / "data" / "lists", REPO.parent / "shared" / "data", Path("/work/shared/data")]
    return roots


def locate(relative: str) -> Path | None:
    """The first bundled copy of a list file, or None when no candidate folder has it."""
    for root in candidate_roots():
        path = root / relative
        if path.is_file():
            return path
    return None


def _cell(value: str) -> str:
    value = value.strip()
    return "" if value == "-0-" else value


def _country_names_to_codes(text: str) -> set[str]:
    found = set()
    lowered = text.lower()
    for name, code in COUNTRY_CODES.items():
        if re.search(r"\b" + re.escape(name) + r"\b", lowered):
            found.add(code)
    return found


def _cons_codes(program: str) -> frozenset[str]:
    codes = set()
    if "CMIC" in program:
        codes.add("CMIC")
    if "UKRAINE-EO13662" in program:
        codes.add("SSI")
    if "NS-PLC" in program:
        codes.add("PLC")
    if not codes and "RUSSIA-EO14024" in program:
        codes.add("MBS")
    return frozenset(codes or {program.strip()})


def _ofac(prim: Path, cons: bool = False) -> Iterator[Entry]:
    folder = prim.parent
    stem = "cons_" if cons else ""
    aliases: dict[str, list[str]] = {}
    alt_path = folder / f"{stem}alt.csv"
    if alt_path.is_file():
        with alt_path.open(encoding="utf-8", errors="replace", newline="") as fh:
            for row in csv.reader(fh):
                if len(row) > 3 and _cell(row[3]):
                    aliases.setdefault(row[0].strip(), []).append(_cell(row[3]))
    countries: dict[str, set[str]] = {}
    add_path = folder / f"{stem}add.csv"
    if add_path.is_file():
        with add_path.open(encoding="utf-8", errors="replace", newline="") as fh:
            for row in csv.reader(fh):
                if len(row) > 4:
                    countries.setdefault(row[0].strip(), set()).update(_country_names_to_codes(_cell(row[4])))
    with prim.open(encoding="utf-8", errors="replace", newline="") as fh:
        for row in csv.reader(fh):
            if len(row) < 4 or not row[1].strip():
                continue
            ent = row[0].strip()
            remarks = _cell(row[11]) if len(row) > 11 else ""
            found = set(countries.get(ent, set()))
            for match in re.finditer(r"(?:nationality|citizen|POB)[^;]*", remarks):
                found |= _country_names_to_codes(match.group(0))
            yield Entry(
                codes=_cons_codes(row[3]) if cons else frozenset({"SDN"}),
                name=row[1].strip(),
                aliases=aliases.get(ent, []),
                countries=found,
                individual=_cell(row[2]).lower() == "individual",
                source=f"{prim.name}#{ent}",
            )


def _cons(prim: Path) -> Iterator[Entry]:
    return _ofac(prim, cons=True)


def _csl(path: Path) -> Iterator[Entry]:
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            code = re.search(r"\(([A-Z-]+)(?: List)?\)", row["source"])
            countries = {part.strip()[-2:] for part in row["addresses"].split(";") if part.strip()}
            yield Entry(
                codes=frozenset({code.group(1) if code else row["source"]}),
                name=row["name"].strip(),
                aliases=[a.strip() for a in row["alt_names"].split(";") if a.strip()],
                countries={c for c in countries if c.isalpha() and c.isupper()},
                individual=row["type"].strip().lower() == "individual",
                source=f"{path.name}#{row.get('_id') or row['name']}",
            )


def _text(node: ET.Element, tag: str) -> str:
    child = node.find(tag)
    return (child.text or "").strip() if child is not None and child.text else ""


def _un(path: Path) -> Iterator[Entry]:
    root = ET.parse(path).getroot()
    for group, alias_tag, address_tag in (
        ("INDIVIDUALS", "INDIVIDUAL_ALIAS", "INDIVIDUAL_ADDRESS"),
        ("ENTITIES", "ENTITY_ALIAS", "ENTITY_ADDRESS"),
    ):
        section = root.find(group)
        if section is None:
            continue
        for node in section:
            parts = [_text(node, t) for t in ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME")]
            aliases = []
            for alias in node.findall(alias_tag):
                aliases += [a.strip() for a in _text(alias, "ALIAS_NAME").split(";") if a.strip()]
            original = _text(node, "NAME_ORIGINAL_SCRIPT")
            if original:
                aliases.append(original)
            countries: set[str] = set()
            for nat in node.findall("NATIONALITY"):
                for value in nat.findall("VALUE"):
                    countries |= _country_names_to_codes(value.text or "")
            for address in node.findall(address_tag):
                countries |= _country_names_to_codes(_text(address, "COUNTRY"))
            yield Entry(
                codes=frozenset({"UN"}),
                name=" ".join(p for p in parts if p),
                aliases=aliases,
                countries=countries,
                individual=group == "INDIVIDUALS",
                source=f"{path.name}#{_text(node, 'REFERENCE_NUMBER')}",
            )


def _dpl(path: Path) -> Iterator[Entry]:
    by_name: dict[str, Entry] = {}
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            name = row["Name"].strip()
            entry = by_name.setdefault(name, Entry(codes=frozenset({"DPL"}), name=name, source=f"{path.name}#{name}"))
            entry.countries.add(row["Country"].strip() or "US")
    yield from by_name.values()


def load_entries() -> tuple[list[Entry], list[str]]:
    """Every entry of every bundled list file that can be found, and the relative paths that could not."""
    entries: list[Entry] = []
    missing: list[str] = []
    sources: list[tuple[str, Callable[[Path], Iterator[Entry]]]] = [
        (f"{SDN_DIR}/sdn.csv", _ofac),
        (f"{CONS_DIR}/cons_prim.csv", _cons),
        (SUPPLEMENT, _csl),
        (CSL_SAMPLE, _csl),
        (UN_XML, _un),
        (DPL_TXT, _dpl),
    ]
    for relative, reader in sources:
        path = locate(relative)
        if path is None:
            missing.append(relative)
            continue
        entries.extend(reader(path))
    return entries, missing


def names_by_code(entries: list[Entry]) -> dict[str, set[str]]:
    """Primary names per list code (an entry on two programmes is found under both codes)."""
    index: dict[str, set[str]] = {}
    for entry in entries:
        for code in entry.codes:
            index.setdefault(code, set()).add(entry.name)
    return index
