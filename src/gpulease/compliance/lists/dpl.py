"""BIS Denied Persons List: tab-separated text with a header row."""

from __future__ import annotations

import csv
import hashlib
import re

from gpulease.compliance.countries import country_code
from gpulease.compliance.lists.source import PathLike, Progress, SourceFile, clean, table_rows
from gpulease.compliance.model import Address, ListEntry, ListFormatError

LIST_NAME = "Denied Persons List (DPL) - Bureau of Industry and Security"
SOURCE_URL = "https://www.bis.doc.gov/index.php/policy-guidance/lists-of-parties-of-concern/denied-persons-list"
# The DPL does not say whether a party is a person or a firm; a name with a company word is a firm.
_ORGANISATION = re.compile(
    r"\b(?:inc|corp|corporation|co|company|ltd|limited|llc|l\.l\.c|gmbh|s\.a|sa|srl|bv|ag|group|trading|"
    r"international|industries|industrial|enterprises?|technolog(?:y|ies)|electronics|systems|services|"
    r"import|export|aviation|airlines?|logistics|shipping|supply|engineering|holdings?|partners)\b",
    re.IGNORECASE,
)
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
HEADER = ("Name", "Street_Address", "City", "State", "Country", "Postal_Code", "Effective_Date")


def party_type(name: str) -> str:
    return "entity" if _ORGANISATION.search(name) else "individual"


def _iso(value: str | None) -> str | None:
    match = _US_DATE.match(value or "")
    if not match:
        return value
    month, day, year = match.groups()
    return f"{year}-{int(month):02d}-{int(day):02d}"


def load_dpl(path: PathLike, progress: Progress | None = None) -> tuple[list[ListEntry], SourceFile]:
    """Load dpl.txt. Ids are `DPL-` + a hash of the row, stable across list versions."""
    source = SourceFile(path, progress)
    reader = csv.reader(source.lines(), delimiter="\t")
    entries: list[ListEntry] = []
    seen: dict[str, int] = {}
    try:
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in HEADER if c not in header]
        if missing:
            raise ListFormatError(
                source.path, 1, f"the header row lacks {', '.join(missing)}; is this the BIS dpl.txt file?"
            )
        for line, row in table_rows(reader, len(header), source.path, "tab-separated columns"):
            cells = {h: clean(v) for h, v in zip(header, row, strict=True)}
            name = cells["Name"]
            if name is None:
                raise ListFormatError(source.path, line, "the row has no name.")
            address = Address(
                street=cells["Street_Address"],
                city=cells["City"],
                state=cells["State"],
                postal_code=cells["Postal_Code"],
                country=country_code(cells["Country"]),
            )
            # The same person is listed again for each order (renewal, modification): hash the whole row.
            digest = hashlib.sha1("|".join(row).encode()).hexdigest()[:10]
            seen[digest] = seen.get(digest, 0) + 1
            if seen[digest] > 1:
                digest = f"{digest}-{seen[digest]}"
            entries.append(
                ListEntry(
                    id=f"DPL-{digest}",
                    list="DPL",
                    list_name=LIST_NAME,
                    type=party_type(name),
                    name=name,
                    addresses=(address,),
                    countries=(address.country,) if address.country else (),
                    start_date=_iso(cells["Effective_Date"]),
                    source_url=SOURCE_URL,
                    federal_register=cells.get("FR_Citation"),
                    remarks=" ".join(f"{k}: {cells[k]}" for k in ("Action", "Expiration_Date") if cells.get(k)) or None,
                )
            )
    except csv.Error as exc:
        raise ListFormatError(source.path, reader.line_num, f"the quoting is broken ({exc}).") from exc
    return entries, source
