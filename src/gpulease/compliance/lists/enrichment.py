"""Curated aliases (Chinese legal names, short and brand names, stock codes ...) attached to listed entries.

The file (CSV, header `list,entry_id,listed_name,alias,alias_kind,script,source_url,source_note`) names an
entry by the product's list code and entry id (`SDN-12345`) or, where ids are not stable, by the entry's
primary name exactly as published. Each alias keeps its public source so an explanation can cite it. A row
that names no entry on the lists is reported (how many, which names), never dropped silently.

A known-subsidiary file (header `list,entry_id,listed_name,subsidiary,script,country,relation,share,source_url,
source_note`) names companies a listed party owns or controls; read by the same function, its rows are attached to
the parent entry's `subsidiaries`, not to its names (a subsidiary is not the listed party: a hit on it is a review
as a possible affiliate).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from gpulease.compliance.lists.source import PathLike, SourceFile, clean, table_rows
from gpulease.compliance.model import (
    SUBSIDIARY,
    EnrichmentAlias,
    EnrichmentReport,
    ListEntry,
    ListFormatError,
    UnresolvedAlias,
)

COLUMNS = ("list", "entry_id", "listed_name", "alias", "alias_kind", "script", "source_url", "source_note")
SUBSIDIARY_COLUMNS = (
    "list", "entry_id", "listed_name", "subsidiary", "script", "country", "relation", "share", "source_url",
    "source_note",
)  # fmt: skip
# How the listed party holds the subsidiary: all of it, more than half, control without a majority (a golden share,
# the board), or the company that took over the listed one's business (a renamed or re-listed successor).
RELATIONS = frozenset({"wholly_owned", "majority_owned", "controlled", "successor"})
_SHARE = re.compile(r"\d{1,3}(?:\.\d+)?%")
_COUNTRY = re.compile(r"[A-Z]{2}")
ALIAS_KINDS = frozenset(
    {
        "legal_name",
        "short_name",
        "brand",
        "stock_code",
        "english_trade_name",
        "former_name",
        "pinyin",
        "wade_giles",
        "transliteration",  # an official or established Latin rendering of a native-script name
    }
)
# ISO 15924 codes: Chinese simplified/traditional, Latin, Cyrillic, Arabic (Persian and Arabic), Hangul.
SCRIPTS = frozenset({"Hans", "Hant", "Latn", "Cyrl", "Arab", "Hang"})


@dataclass(frozen=True, slots=True)
class EnrichmentRow:
    line: int
    list: str
    entry_id: str | None
    listed_name: str
    alias: EnrichmentAlias


def read_enrichment(path: PathLike) -> tuple[list[EnrichmentRow], SourceFile]:
    """Read an enrichment file (aliases, or known subsidiaries by its header); a malformed row is refused with its
    line."""
    source = SourceFile(path)
    reader = csv.reader(source.lines())
    rows: list[EnrichmentRow] = []
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        if "subsidiary" in header:
            for line, code, name, cell in _cells(source, reader, header, SUBSIDIARY_COLUMNS, "subsidiary"):
                owned = _owned(source, line, name, cell)
                rows.append(EnrichmentRow(line, code, cell["entry_id"], cell["listed_name"] or "", owned))
            return rows, source
        for line, code, alias, cell in _cells(source, reader, header, COLUMNS, "alias"):
            kind = cell["alias_kind"]
            if kind not in ALIAS_KINDS:
                raise ListFormatError(
                    source.path, line, f"alias_kind {kind!r} is not one of {', '.join(sorted(ALIAS_KINDS))}."
                )
            added = EnrichmentAlias(alias, kind, cell["script"], cell["source_url"], cell["source_note"])
            rows.append(EnrichmentRow(line, code, cell["entry_id"], cell["listed_name"] or "", added))
    except csv.Error as exc:
        raise ListFormatError(source.path, reader.line_num, f"the CSV quoting is broken ({exc}).") from exc
    return rows, source


def _cells(
    source: SourceFile, reader: Iterator[list[str]], header: list[str], columns: Sequence[str], named: str
) -> Iterator[tuple[int, str, str, dict[str, str | None]]]:
    """Each row's line, list code, `named` column and cells, once the checks both kinds of file share are passed."""
    missing = [c for c in columns if c not in header]
    if missing:
        raise ListFormatError(source.path, 1, f"the header lacks {', '.join(missing)} (expected {','.join(columns)}).")
    at = {c: header.index(c) for c in columns}
    for line, row in table_rows(reader, len(header), source.path, "columns as in the header row"):
        cell = {c: clean(row[at[c]]) for c in columns}
        code, name = cell["list"], cell[named]
        if not code or not name:
            raise ListFormatError(source.path, line, f"the row needs a list code and a name in {named}.")
        if not cell["entry_id"] and not cell["listed_name"]:
            raise ListFormatError(source.path, line, "the row names no entry (entry_id or listed_name).")
        script = cell["script"]
        if script is not None and script not in SCRIPTS:
            raise ListFormatError(source.path, line, f"script {script!r} is not one of {', '.join(sorted(SCRIPTS))}.")
        yield line, code.upper(), name, cell


def _owned(source: SourceFile, line: int, name: str, cell: Mapping[str, str | None]) -> EnrichmentAlias:
    """A known subsidiary's row as the parent's EnrichmentAlias of kind SUBSIDIARY, its relation and share checked."""
    relation, share, country = cell["relation"], cell["share"], cell["country"]
    if relation not in RELATIONS:
        raise ListFormatError(source.path, line, f"relation {relation!r} is not one of {', '.join(sorted(RELATIONS))}.")
    if share is not None and not _SHARE.fullmatch(share):
        raise ListFormatError(source.path, line, f"share {share!r} is not a percentage such as 100% or 51.6%.")
    if country is not None and not _COUNTRY.fullmatch(country):
        raise ListFormatError(source.path, line, f"country {country!r} is not an ISO 3166 alpha-2 code.")
    if not cell["source_url"] and not cell["source_note"]:
        raise ListFormatError(source.path, line, "the row gives no source (source_url or source_note).")
    url, note = cell["source_url"], cell["source_note"]
    return EnrichmentAlias(name, SUBSIDIARY, cell["script"], url, note, relation, share, country)


def _name_key(name: str) -> str:
    return " ".join(name.casefold().split())


def attach(
    entries: Sequence[ListEntry], rows: Iterable[EnrichmentRow], file: str | None
) -> tuple[tuple[ListEntry, ...], EnrichmentReport]:
    """The entries with the rows' aliases and subsidiaries attached (replacing any attached before), and what
    happened."""
    base = [replace(e, enrichment=(), subsidiaries=()) if e.enrichment or e.subsidiaries else e for e in entries]
    by_id = {e.id: i for i, e in enumerate(base)}
    by_name: dict[tuple[str, str], list[int]] = {}
    for i, e in enumerate(base):
        by_name.setdefault((e.list, _name_key(e.name)), []).append(i)
    added: dict[int, list[EnrichmentAlias]] = {}
    owned: dict[int, list[EnrichmentAlias]] = {}
    count = attached = already = 0
    unresolved: list[UnresolvedAlias] = []
    for row in rows:
        count += 1
        found = by_id.get(row.entry_id) if row.entry_id else None
        targets = [found] if found is not None else by_name.get((row.list, _name_key(row.listed_name)), [])
        if not targets:
            unresolved.append(UnresolvedAlias(row.line, row.list, row.entry_id, row.listed_name, row.alias.alias))
            continue
        for i in targets:
            entry = base[i]
            key = _name_key(row.alias.alias)
            if any(_name_key(n) == key for n in (entry.name, *entry.aliases)):
                already += 1
                continue
            mine = (owned if row.alias.kind == SUBSIDIARY else added).setdefault(i, [])
            if all(_name_key(a.alias) != key for a in mine):
                mine.append(row.alias)
                attached += 1
    result = tuple(
        replace(e, enrichment=tuple(added.get(i, ())), subsidiaries=tuple(owned.get(i, ())))
        if i in added or i in owned
        else e
        for i, e in enumerate(base)
    )
    return result, EnrichmentReport(file, count, attached, already, tuple(unresolved))
