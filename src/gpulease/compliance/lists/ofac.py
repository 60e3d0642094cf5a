"""OFAC's legacy CSV sets (no header, `-0-` = empty), each a primary file and three detail files:

- the SDN list: sdn.csv, add.csv, alt.csv, sdn_comments.csv;
- the non-SDN Consolidated Sanctions List: cons_prim.csv, cons_add.csv, cons_alt.csv, cons_comments.csv.

The detail files (addresses, aliases, remark continuations) are keyed by the primary file's entry number.
A detail row whose entry is not in the primary file means the files come from different publications;
such rows are counted and reported, never dropped silently.

Non-SDN entries keep the meaning of their programme: CMIC restricts securities investment, SSI and the
menu-based directives restrict financing. Their list codes (CMIC, SSI, NS-MBS, PLC, CAP) say so, and
`compliance.restrictions` says what each means.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gpulease.compliance.countries import country_code
from gpulease.compliance.lists.remarks import read_remarks
from gpulease.compliance.lists.source import PathLike, Progress, SourceFile, clean, domains_in
from gpulease.compliance.model import Address, ListEntry, ListFormatError, MissingEntryRows

SetKind = Literal["sdn", "cons"]
Role = Literal["primary", "add", "alt", "comments"]
SDN_LIST_NAME = "Specially Designated Nationals (SDN) - Treasury Department"
SOURCE_URL = "https://sanctionssearch.ofac.treas.gov/"
CONS_SOURCE_URL = "https://ofac.treasury.gov/other-ofac-sanctions-lists"
FILES: dict[SetKind, dict[Role, str]] = {
    "sdn": {"primary": "sdn.csv", "add": "add.csv", "alt": "alt.csv", "comments": "sdn_comments.csv"},
    "cons": {"primary": "cons_prim.csv", "add": "cons_add.csv", "alt": "cons_alt.csv", "comments": "cons_comments.csv"},
}
_WIDTH: dict[Role, int] = {"primary": 12, "add": 6, "alt": 5, "comments": 2}
_DETAIL_WORDS: dict[Role, str] = {"add": "address", "alt": "alias", "comments": "remarks"}
_TYPES = {"individual": "individual", "vessel": "vessel", "aircraft": "aircraft"}
CONS_LISTS: dict[str, str] = {
    "CMIC": "Non-SDN Chinese Military-Industrial Complex Companies List (CMIC) - Treasury Department",
    "SSI": "Sectoral Sanctions Identifications List (SSI) - Treasury Department",
    "NS-MBS": "Non-SDN Menu-Based Sanctions List (NS-MBS List) - Treasury Department",
    "PLC": "Palestinian Legislative Council List (PLC) - Treasury Department",
    "CAP": "Correspondent Account or Payable-Through Account Sanctions (CAPTA) - Treasury Department",
}


def set_member(path: PathLike) -> tuple[SetKind, Role] | None:
    """Which OFAC set and which file of it a path is, by its published file name."""
    name = Path(path).name.lower()
    for kind, roles in FILES.items():
        for role, file_name in roles.items():
            if name == file_name:
                return kind, role
    return None


@dataclass(frozen=True, slots=True)
class OfacSet:
    """The files of one OFAC set; `missing` names the detail files that were not found."""

    kind: SetKind
    primary: Path
    details: dict[Role, Path] = field(default_factory=dict)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(FILES[self.kind][r] for r in ("add", "alt", "comments") if r not in self.details)

    @property
    def files(self) -> tuple[Path, ...]:
        return (self.primary, *self.details.values())


def ofac_set(kind: SetKind, given: dict[Role, Path]) -> OfacSet:
    """The set made of the files given, completed with the missing ones found beside the primary file."""
    primary = given["primary"]
    details: dict[Role, Path] = {}
    for role in ("add", "alt", "comments"):
        if role in given:
            details[role] = given[role]
        elif (sibling := primary.parent / FILES[kind][role]).exists():
            details[role] = sibling
    return OfacSet(kind, primary, details)


@dataclass
class _Draft:
    number: str
    name: str
    type: str
    programs: tuple[str, ...]
    title: str | None
    remarks: str | None
    aliases: list[str] = field(default_factory=list)
    addresses: list[Address] = field(default_factory=list)


def _rows(source: SourceFile, role: Role, set_name: str) -> list[tuple[int, list[str]]]:
    want = _WIDTH[role]
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
                    f"expected {want} comma-separated columns for OFAC {set_name}, found {len(row)}.",
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


def cons_list(programs: tuple[str, ...]) -> str:
    """The non-SDN list an entry of the consolidated file belongs to, from its programmes."""
    if any(p.startswith("CMIC") for p in programs):
        return "CMIC"
    if "UKRAINE-EO13662" in programs:
        return "SSI"
    if "NS-PLC" in programs:
        return "PLC"
    if "561-Related" in programs:
        return "CAP"
    return "NS-MBS"


def load_ofac(
    files: OfacSet, progress: Progress | None = None
) -> tuple[list[ListEntry], list[SourceFile], list[MissingEntryRows]]:
    """Load one OFAC set: entries, the files read (for the version hash), detail rows without an entry."""
    set_name = FILES[files.kind]["primary"]
    sources: list[SourceFile] = []
    drafts: dict[str, _Draft] = {}
    main = SourceFile(files.primary, progress)
    sources.append(main)
    for line, row in _rows(main, "primary", set_name):
        number = row[0].strip()
        name = clean(row[1])
        if name is None:
            raise ListFormatError(main.path, line, f"entry {number} has no name.")
        kind = _TYPES.get((clean(row[2]) or "").lower(), "entity")
        drafts[number] = _Draft(number, name, kind, _programs(clean(row[3])), clean(row[4]), clean(row[11]))
    missing: list[MissingEntryRows] = []
    for role in ("comments", "add", "alt"):
        path = files.details.get(role)
        if path is None:
            continue
        extra = SourceFile(path, progress)
        sources.append(extra)
        orphans: dict[str, int] = {}
        for _line, row in _rows(extra, role, set_name):
            number = row[0].strip()
            draft = drafts.get(number)
            if draft is None:
                orphans[number] = orphans.get(number, 0) + 1
                continue
            if role == "comments":
                # sdn_comments.csv continues a remark cut at OFAC's cell limit, mid-word: join as is.
                more = row[1].strip()
                if more and more != "-0-":
                    draft.remarks = f"{draft.remarks}{more}" if draft.remarks else more
            elif role == "add":
                address = Address(street=clean(row[2]), city=clean(row[3]), country=country_code(clean(row[4])))
                if not address.is_empty():
                    draft.addresses.append(address)
            else:
                alias = clean(row[3])
                if alias and alias != draft.name:
                    draft.aliases.append(alias)
        if orphans:
            missing.append(
                MissingEntryRows(
                    file=Path(path).name,
                    kind=_DETAIL_WORDS[role],
                    rows=sum(orphans.values()),
                    entry_numbers=tuple(sorted(orphans, key=int)),
                )
            )
    return [_entry(d, files.kind) for d in drafts.values()], sources, missing


def _entry(d: _Draft, kind: SetKind) -> ListEntry:
    facts = read_remarks(d.remarks)
    code = "SDN" if kind == "sdn" else cons_list(d.programs)
    aliases = [a for a in dict.fromkeys([*d.aliases, *facts.issuer_names]) if a.casefold() != d.name.casefold()]
    countries = [*(a.country for a in d.addresses if a.country), *facts.nationalities]
    return ListEntry(
        id=f"{code}-{d.number}",
        list=code,
        list_name=SDN_LIST_NAME if kind == "sdn" else CONS_LISTS[code],
        type=d.type,
        name=d.name,
        aliases=tuple(aliases),
        addresses=tuple(d.addresses),
        countries=tuple(dict.fromkeys(countries)),
        programs=d.programs,
        source_url=SOURCE_URL if kind == "sdn" else CONS_SOURCE_URL,
        remarks=d.remarks,
        websites=domains_in(d.remarks),
        dates_of_birth=facts.dates_of_birth,
        nationalities=facts.nationalities,
        identifiers=facts.identifiers,
    )
