"""BIS Denied Persons List: tab-separated text with a header row."""

from __future__ import annotations

import csv
import hashlib

from gpulease.compliance.countries import country_code
from gpulease.compliance.lists.source import PathLike, Progress, SourceFile, clean, table_rows
from gpulease.compliance.model import Address, ListEntry, ListFormatError

LIST_NAME = "Denied Persons List (DPL) - Bureau of Industry and Security"
SOURCE_URL = "https://www.bis.doc.gov/index.php/policy-guidance/lists-of-parties-of-concern/denied-persons-list"
HEADER = ("Name", "Street_Address", "City", "State", "Country", "Postal_Code", "Effective_Date")


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
                    type="unknown",
                    name=name,
                    addresses=(address,),
                    countries=(address.country,) if address.country else (),
                    start_date=cells["Effective_Date"],
                    source_url=SOURCE_URL,
                    remarks=cells.get("FR_Citation"),
                )
            )
    except csv.Error as exc:
        raise ListFormatError(source.path, reader.line_num, f"the quoting is broken ({exc}).") from exc
    return entries, source
