"""OFAC's legacy SDN CSV set: sdn.csv, add.csv, alt.csv, sdn_comments.csv (no header, `-0-` = empty)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from gpulease.compliance.countries import country_code
from gpulease.compliance.lists.source import PathLike, Progress, SourceFile, clean, domains_in
from gpulease.compliance.model import Address, ListEntry, ListFormatError

LIST_NAME = "Specially Designated Nationals (SDN) - Treasury Department"
SOURCE_URL = "https://sanctionssearch.ofac.treas.gov/"
_TYPES = {"individual": "individual", "vessel": "vessel", "aircraft": "aircraft"}
_COLUMNS = {"sdn.csv": 12, "add.csv": 6, "alt.csv": 5, "sdn_comments.csv": 2}


@dataclass
class _Draft:
    number: str
    name: str
    type: str
    programs: tuple[str, ...]
    remarks: str | None
    aliases: list[str] = field(default_factory=list)
    addresses: list[Address] = field(default_factory=list)


def _rows(source: SourceFile, kind: str) -> list[tuple[int, list[str]]]:
    want = _COLUMNS[kind]
    rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(source.lines())
    try:
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != want:
                raise ListFormatError(
                    source.path,
                    reader.line_num,
                    f"expected {want} comma-separated columns for OFAC {kind}, found {len(row)}.",
                )
            if not row[0].strip().isdigit():
                raise ListFormatError(
                    source.path, reader.line_num, f"the entry number {row[0].strip()!r} is not a number."
                )
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise ListFormatError(source.path, reader.line_num, f"the CSV quoting is broken ({exc}).") from exc
    return rows


def _programs(cell: str | None) -> tuple[str, ...]:
    if not cell:
        return ()
    # Several programs are published as "SDGT] [IRGC".
    return tuple(p.strip(" []") for p in cell.split("] [") if p.strip(" []"))


def siblings(sdn_path: PathLike) -> dict[str, Path]:
    """The other files of the OFAC set that sit next to sdn.csv."""
    folder = Path(sdn_path).parent
    return {name: folder / name for name in _COLUMNS if (folder / name).exists()}


def load_ofac(
    sdn: PathLike,
    add: PathLike | None = None,
    alt: PathLike | None = None,
    comments: PathLike | None = None,
    progress: Progress | None = None,
) -> tuple[list[ListEntry], list[SourceFile]]:
    """Load the OFAC SDN set; returns entries and the files read (for the dataset hash)."""
    sources: list[SourceFile] = []
    drafts: dict[str, _Draft] = {}
    main = SourceFile(sdn, progress)
    sources.append(main)
    for line, row in _rows(main, "sdn.csv"):
        number = row[0].strip()
        name = clean(row[1])
        if name is None:
            raise ListFormatError(main.path, line, f"entry {number} has no name.")
        kind = _TYPES.get((clean(row[2]) or "").lower(), "entity")
        drafts[number] = _Draft(number, name, kind, _programs(clean(row[3])), clean(row[11]))
    for path, kind in ((comments, "sdn_comments.csv"), (add, "add.csv"), (alt, "alt.csv")):
        if path is None:
            continue
        extra = SourceFile(path, progress)
        sources.append(extra)
        for _line, row in _rows(extra, kind):
            draft = drafts.get(row[0].strip())
            if draft is None:
                # Published snapshots of the four files are not always cut at the same moment;
                # a detail row for an entry that is not (or no longer) in sdn.csv has nothing to attach to.
                continue
            if kind == "sdn_comments.csv":
                more = clean(row[1])
                if more:
                    draft.remarks = f"{draft.remarks} {more}" if draft.remarks else more
            elif kind == "add.csv":
                address = Address(street=clean(row[2]), city=clean(row[3]), country=country_code(clean(row[4])))
                if not address.is_empty():
                    draft.addresses.append(address)
            else:
                alias = clean(row[3])
                if alias and alias != draft.name:
                    draft.aliases.append(alias)
    entries = [
        ListEntry(
            id=f"SDN-{d.number}",
            list="SDN",
            list_name=LIST_NAME,
            type=d.type,
            name=d.name,
            aliases=tuple(dict.fromkeys(d.aliases)),
            addresses=tuple(d.addresses),
            countries=tuple(dict.fromkeys(a.country for a in d.addresses if a.country)),
            programs=d.programs,
            source_url=SOURCE_URL,
            remarks=d.remarks,
            websites=domains_in(d.remarks),
        )
        for d in drafts.values()
    ]
    return entries, sources
