"""trade.gov Consolidated Screening List: `consolidated.csv` (header row, `; ` between values) and `.json`."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from gpulease.compliance.countries import country_code
from gpulease.compliance.lists.source import PathLike, Progress, SourceFile, clean, domains_in, table_rows
from gpulease.compliance.model import Address, Identifier, ListEntry, ListFormatError

REQUIRED_COLUMNS = ("source", "name")
_CODE = re.compile(r"\(([A-Z][A-Z0-9-]{1,9})(?: List)?\)")
_TYPES = {"entity": "entity", "individual": "individual", "vessel": "vessel", "aircraft": "aircraft"}


def list_code(source: str) -> str:
    """Short list code from a CSL `source` such as 'Entity List (EL) - Bureau of Industry and Security'."""
    match = _CODE.search(source)
    if match:
        return match.group(1)
    return re.sub(r"[^A-Z]", "", source.upper())[:6] or "CSL"


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(";") if part.strip()]


def _address(value: Any) -> Address | None:
    if isinstance(value, Mapping):
        address = Address(
            street=clean(value.get("address")),
            city=clean(value.get("city")),
            state=clean(value.get("state")),
            postal_code=clean(value.get("postal_code")),
            country=country_code(clean(value.get("country"))),
        )
        return None if address.is_empty() else address
    parts = [p.strip() for p in str(value).split(",") if p.strip()]
    if not parts:
        return None
    country = None
    last = country_code(parts[-1])
    if last is not None and (len(last) == 2 and last.isupper()):
        country = last
        parts = parts[:-1]
    if not parts:
        return Address(country=country)
    if len(parts) == 1:
        return Address(city=parts[0], country=country)
    if len(parts) == 2:
        return Address(city=parts[0], state=parts[1], country=country)
    return Address(street=", ".join(parts[:-2]), city=parts[-2], state=parts[-1], country=country)


def _entry(record: Mapping[str, Any], where: str, line: int | None) -> ListEntry:
    source = clean(str(record.get("source") or ""))
    name = clean(str(record.get("name") or ""))
    if source is None:
        raise ListFormatError(where, line, "the record has no 'source' (which list it comes from).")
    if name is None:
        raise ListFormatError(where, line, "the record has no name.")
    code = list_code(source)
    record_id = clean(str(record.get("_id") or record.get("id") or ""))
    if record_id is None:
        record_id = hashlib.sha1(f"{source}|{name}".encode()).hexdigest()[:12]
        entry_id = f"CSL-{record_id}"
    else:
        entry_id = f"{code}-{record_id}"
    addresses = tuple(a for a in (_address(v) for v in _listed(record.get("addresses"))) if a is not None)
    countries = [a.country for a in addresses if a.country]
    nationalities = [
        c for key in ("nationalities", "citizenships") for c in (country_code(v) for v in _split(record.get(key))) if c
    ]
    countries.extend(nationalities)
    remarks = clean(str(record.get("remarks") or "")) or None
    kind = _TYPES.get(
        (clean(str(record.get("type") or "")) or "").lower(),
        "entity" if code in {"EL", "MEU", "UVL"} else "unknown",
    )
    return ListEntry(
        id=entry_id,
        list=code,
        list_name=source,
        type=kind,
        name=name,
        aliases=tuple(dict.fromkeys(a for a in _split(record.get("alt_names")) if a != name)),
        addresses=addresses,
        countries=tuple(dict.fromkeys(countries)),
        programs=tuple(_split(record.get("programs"))),
        start_date=clean(str(record.get("start_date") or "")),
        # Each row keeps its own source: the notice or page it was taken from, else the list's page.
        source_url=clean(str(record.get("source_information_url") or record.get("source_list_url") or "")),
        remarks=remarks,
        websites=domains_in(remarks),
        federal_register=_text(record, "federal_register_notice"),
        license_requirement=_text(record, "license_requirement"),
        license_policy=_text(record, "license_policy"),
        dates_of_birth=tuple(_split(record.get("dates_of_birth"))),
        nationalities=tuple(dict.fromkeys(nationalities)),
        identifiers=tuple(_identifier(v) for v in _listed(record.get("ids"))),
    )


def _text(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if isinstance(value, list):
        value = "; ".join(str(v) for v in value)
    return clean(str(value or ""))


def _identifier(value: Any) -> Identifier:
    """A CSL id: "country, number, kind" in the CSV; {"type", "number", "country"} in the JSON."""
    if isinstance(value, Mapping):
        country = clean(str(value.get("country") or ""))
        return Identifier(
            kind=str(value.get("type") or "id"),
            value=str(value.get("number") or ""),
            country=country_code(country) if country else None,
        )
    parts = [p.strip() for p in str(value).split(",")]
    if len(parts) >= 3:
        return Identifier(kind=", ".join(parts[2:]), value=parts[1], country=country_code(parts[0]) or None)
    return Identifier(kind="id", value=str(value).strip())


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return _split(value)


def load_csl_csv(path: PathLike, progress: Progress | None = None) -> tuple[list[ListEntry], SourceFile]:
    """Load a CSL CSV export (the trade.gov column names are the contract)."""
    source = SourceFile(path, progress)
    reader = csv.reader(source.lines())
    entries: list[ListEntry] = []
    try:
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise ListFormatError(
                source.path,
                1,
                f"the header row lacks the column(s) {', '.join(missing)}; "
                "is this the trade.gov consolidated screening list CSV?",
            )
        for line, row in table_rows(reader, len(header), source.path, "columns as in the header row"):
            entries.append(_entry(dict(zip(header, row, strict=True)), source.path, line))
        entries = _unique_ids(entries)
    except csv.Error as exc:
        raise ListFormatError(source.path, reader.line_num, f"the CSV quoting is broken ({exc}).") from exc
    return entries, source


def load_csl_json(path: PathLike, progress: Progress | None = None) -> tuple[list[ListEntry], SourceFile]:
    """Load trade.gov `consolidated.json`: {"results": [{...CSV columns, lists as arrays...}]}."""
    source = SourceFile(path, progress)
    data = source.read_bytes()
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ListFormatError(source.path, None, "the file is not UTF-8 text.") from exc
    except json.JSONDecodeError as exc:
        raise ListFormatError(source.path, exc.lineno, f"not valid JSON ({exc.msg}).") from exc
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, list):
        raise ListFormatError(source.path, None, "expected an object with a 'results' array of records.")
    entries: list[ListEntry] = []
    for number, record in enumerate(results, start=1):
        if not isinstance(record, dict):
            raise ListFormatError(source.path, None, f"record {number} in 'results' is not an object.")
        try:
            entries.append(_entry(record, source.path, None))
        except ListFormatError as exc:
            raise ListFormatError(source.path, None, f"record {number} in 'results': {exc.reason}") from exc
    return _unique_ids(entries), source


def _unique_ids(entries: list[ListEntry]) -> list[ListEntry]:
    """Records without an id get one from their list and name; a party listed twice under one name (two
    addresses, two orders) is kept twice, the second as `-2`, not merged away."""
    seen: dict[str, int] = {}
    out: list[ListEntry] = []
    for entry in entries:
        seen[entry.id] = seen.get(entry.id, 0) + 1
        out.append(entry if seen[entry.id] == 1 else replace(entry, id=f"{entry.id}-{seen[entry.id]}"))
    return out
