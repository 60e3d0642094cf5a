"""Curated aliases (Chinese legal names, short and brand names, stock codes ...) attached to listed entries.

The file (CSV, header `list,entry_id,listed_name,alias,alias_kind,script,source_url,source_note`) names an
entry by the product's list code and entry id (`SDN-12345`) or, where ids are not stable, by the entry's
primary name exactly as published. Each alias keeps its public source so an explanation can cite it. A row
that names no entry on the lists is reported (how many, which names), never dropped silently.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from gpulease.compliance.lists.source import PathLike, SourceFile, clean, table_rows
from gpulease.compliance.model import EnrichmentAlias, EnrichmentReport, ListEntry, ListFormatError, UnresolvedAlias

COLUMNS = ("list", "entry_id", "listed_name", "alias", "alias_kind", "script", "source_url", "source_note")
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
    """Read an enrichment file; a malformed row is refused with its line."""
    source = SourceFile(path)
    reader = csv.reader(source.lines())
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise ListFormatError(
                source.path, 1, f"the header lacks {', '.join(missing)} (expected {','.join(COLUMNS)})."
            )
        at = {c: header.index(c) for c in COLUMNS}
        rows: list[EnrichmentRow] = []
        for line, row in table_rows(reader, len(header), source.path, "columns as in the header row"):
            cell = {c: clean(row[at[c]]) for c in COLUMNS}
            code, alias, kind = cell["list"], cell["alias"], cell["alias_kind"]
            if not code or not alias:
                raise ListFormatError(source.path, line, "the row needs a list code and an alias.")
            if not cell["entry_id"] and not cell["listed_name"]:
                raise ListFormatError(source.path, line, "the row names no entry (entry_id or listed_name).")
            if kind not in ALIAS_KINDS:
                raise ListFormatError(
                    source.path, line, f"alias_kind {kind!r} is not one of {', '.join(sorted(ALIAS_KINDS))}."
                )
            script = cell["script"]
            if script is not None and script not in SCRIPTS:
                raise ListFormatError(
                    source.path, line, f"script {script!r} is not one of {', '.join(sorted(SCRIPTS))}."
                )
            rows.append(
                EnrichmentRow(
                    line=line,
                    list=code.upper(),
                    entry_id=cell["entry_id"],
                    listed_name=cell["listed_name"] or "",
                    alias=EnrichmentAlias(alias, kind, script, cell["source_url"], cell["source_note"]),
                )
            )
    except csv.Error as exc:
        raise ListFormatError(source.path, reader.line_num, f"the CSV quoting is broken ({exc}).") from exc
    return rows, source


def _name_key(name: str) -> str:
    return " ".join(name.casefold().split())


def attach(
    entries: Sequence[ListEntry], rows: Iterable[EnrichmentRow], file: str | None
) -> tuple[tuple[ListEntry, ...], EnrichmentReport]:
    """The entries with the rows' aliases attached (replacing any attached before), and what happened."""
    base = [replace(e, enrichment=()) if e.enrichment else e for e in entries]
    by_id = {e.id: i for i, e in enumerate(base)}
    by_name: dict[tuple[str, str], list[int]] = {}
    for i, e in enumerate(base):
        by_name.setdefault((e.list, _name_key(e.name)), []).append(i)
    added: dict[int, list[EnrichmentAlias]] = {}
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
            mine = added.setdefault(i, [])
            if all(_name_key(a.alias) != key for a in mine):
                mine.append(row.alias)
                attached += 1
    result = tuple(replace(e, enrichment=tuple(added[i])) if i in added else e for i, e in enumerate(base))
    return result, EnrichmentReport(file, count, attached, already, tuple(unresolved))
