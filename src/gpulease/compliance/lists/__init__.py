"""One loading path for every list: files → list sources → one dataset with the enrichment aliases attached.

Server seeding, `gpulease lists load`, the tests and the benchmark all go through `load_sources` and
`build_dataset`; `bundled_dataset()` is that same path over the files shipped in the package
(`data/lists/bundled.toml` names them, in load order, with their publication dates).
"""

from __future__ import annotations

import functools
import hashlib
import re
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from importlib.resources import as_file, files
from pathlib import Path

from gpulease.compliance.lists.csl import load_csl_csv, load_csl_json
from gpulease.compliance.lists.dpl import load_dpl
from gpulease.compliance.lists.enrichment import EnrichmentRow, attach, read_enrichment
from gpulease.compliance.lists.ofac import OfacSet, Role, SetKind, load_ofac, ofac_set, set_member
from gpulease.compliance.lists.source import PathLike, Progress, SourceFile
from gpulease.compliance.lists.un import load_un_xml
from gpulease.compliance.model import ListDataset, ListEntry, ListFormatError, ListSource, Publication

__all__ = [
    "Enrichment",
    "ListDataset",
    "ListFormatError",
    "ListSource",
    "build_dataset",
    "bundled_dataset",
    "bundled_enrichment",
    "bundled_sources",
    "detect_format",
    "load_file",
    "load_files",
    "load_sources",
    "source_key",
]

MANIFEST = "bundled.toml"
_UN_DATE = re.compile(rb'dateGenerated="(\d{4}-\d{2}-\d{2})')


def detect_format(path: PathLike) -> str:
    """One of 'ofac', 'csl-csv', 'csl-json', 'un-xml', 'dpl'; raises ListFormatError if unknown."""
    p = Path(path)
    try:
        with open(p, "rb") as raw:
            head = raw.read(4096).lstrip(b"\xef\xbb\xbf").lstrip()
    except OSError as exc:
        raise ListFormatError(str(path), None, f"the file cannot be opened ({exc.strerror}).") from exc
    first = head.split(b"\n", 1)[0]
    if head.startswith(b"<"):
        return "un-xml"
    if head.startswith(b"{") or head.startswith(b"["):
        return "csl-json"
    if b"\t" in first and b"Name" in first:
        return "dpl"
    if b"source" in first and b"name" in first:
        return "csl-csv"
    if set_member(p) is not None or first[:1].isdigit():
        return "ofac"
    raise ListFormatError(
        str(path),
        1,
        "unknown list format: expected OFAC sdn.csv or cons_prim.csv (with their alias and address files), "
        "trade.gov consolidated.csv/.json, UN consolidated XML or BIS dpl.txt.",
    )


def source_key(path: PathLike) -> str:
    """Which earlier load a file replaces: its list set, with the bundled Entity List supplement kept apart."""
    kind = detect_format(path)
    if kind == "ofac":
        member = set_member(path)
        return "ofac-cons" if member is not None and member[0] == "cons" else "ofac"
    kind = {"csl-json": "csl", "csl-csv": "csl", "un-xml": "un"}.get(kind, kind)
    return f"{kind}-supplement" if "supplement" in Path(path).name.lower() else kind


def _digest(sources: Sequence[SourceFile]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.sha256.digest())
    return digest.hexdigest()[:16]


def _latest(entries: Sequence[ListEntry]) -> str | None:
    dates = [e.start_date[:10] for e in entries if e.start_date and re.match(r"\d{4}-\d{2}-\d{2}", e.start_date)]
    return max(dates) if dates else None


def _publication(kind: str, path: Path, entries: Sequence[ListEntry]) -> Publication:
    """The publication date a file states, else the best lower bound it gives, else its modification time."""
    if kind == "un-xml":
        with open(path, "rb") as raw:
            found = _UN_DATE.search(raw.read(4096))
        if found:
            return Publication(found.group(1).decode(), "stated in the file (dateGenerated)")
    if kind in ("csl-csv", "csl-json", "dpl") and (latest := _latest(entries)):
        return Publication(latest, "latest listing date in the file (published on or after it)")
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC).date().isoformat()
    return Publication(modified, "file modification time (the file states no publication date)")


def _load_ofac_set(files_: OfacSet, allow_partial: bool, progress: Progress | None) -> ListSource:
    if files_.missing and not allow_partial:
        raise ListFormatError(
            str(files_.primary),
            None,
            f"{', '.join(files_.missing)} not found beside {files_.primary.name}: without them the list's aliases, "
            "addresses and remark continuations would be lost. Put OFAC's four files in one folder (or give them "
            "all), or allow a partial set (`--partial`) to load the primary records alone.",
        )
    entries, read, missing = load_ofac(files_, progress)
    return ListSource(
        key="ofac-cons" if files_.kind == "cons" else "ofac",
        files=tuple(str(f) for f in files_.files),
        entries=tuple(entries),
        version=_digest(read),
        published=_publication("ofac", files_.primary, entries),
        missing_entry_rows=tuple(missing),
    )


def _load_single(path: Path, progress: Progress | None) -> ListSource:
    kind = detect_format(path)
    loader = {"csl-csv": load_csl_csv, "csl-json": load_csl_json, "un-xml": load_un_xml, "dpl": load_dpl}[kind]
    entries, source = loader(path, progress)
    return ListSource(
        key=source_key(path),
        files=(str(path),),
        entries=tuple(entries),
        version=_digest([source]),
        published=_publication(kind, path, entries),
    )


def load_sources(
    paths: Sequence[PathLike],
    *,
    allow_partial: bool = False,
    published: Publication | None = None,
    progress: Progress | None = None,
) -> list[ListSource]:
    """Read list files into list sources, one per published set.

    An OFAC primary file (sdn.csv, cons_prim.csv) picks up the detail files beside it; without them it is
    refused unless `allow_partial`. A detail file given without its primary file is refused. `published`
    overrides the publication date of every source (an operator who knows it says so at load).
    """
    ofac_groups: dict[tuple[SetKind, Path], dict[Role, Path]] = {}
    order: list[tuple[SetKind, Path] | Path] = []
    for raw in paths:
        path = Path(raw)
        kind = detect_format(path)
        member = set_member(path) if kind == "ofac" else None
        if kind == "ofac" and member is None:
            member = ("sdn", "primary")  # an OFAC-shaped file under another name: read it as sdn.csv
        if member is None:
            order.append(path)
            continue
        group = (member[0], path.parent.resolve())
        if group not in ofac_groups:
            ofac_groups[group] = {}
            order.append(group)
        ofac_groups[group][member[1]] = path
    sources: list[ListSource] = []
    for item in order:
        if isinstance(item, Path):
            loaded = _load_single(item, progress)
        else:
            given = ofac_groups[item]
            if "primary" not in given:
                detail = next(iter(given.values()))
                primary = "cons_prim.csv" if item[0] == "cons" else "sdn.csv"
                raise ListFormatError(
                    str(detail), None, f"{detail.name} is part of an OFAC set; load it together with {primary}."
                )
            loaded = _load_ofac_set(ofac_set(item[0], given), allow_partial, progress)
        if published is not None:
            loaded = ListSource(
                loaded.key, loaded.files, loaded.entries, loaded.version, published, loaded.missing_entry_rows
            )
        sources.append(loaded)
    return sources


@dataclass(frozen=True, slots=True)
class Enrichment:
    """A curated alias file as read: its rows, its name and a hash of its bytes."""

    file: str
    rows: tuple[EnrichmentRow, ...]
    version: str


def read_enrichment_file(path: PathLike) -> Enrichment:
    rows, source = read_enrichment(path)
    return Enrichment(Path(path).name, tuple(rows), _digest([source]))


def build_dataset(sources: Sequence[ListSource], enrichment: Enrichment | None = None) -> ListDataset:
    """The entries of every source (an entry id once: the first source wins) with the enrichment attached."""
    entries: list[ListEntry] = []
    seen: set[str] = set()
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.version.encode())
        for entry in source.entries:
            if entry.id not in seen:
                seen.add(entry.id)
                entries.append(entry)
    # Enrichment attached earlier (entries kept from the version in force) is replaced, or dropped without a file.
    attached, report = attach(entries, enrichment.rows if enrichment else (), enrichment.file if enrichment else None)
    if enrichment is not None:
        digest.update(enrichment.version.encode())
    return ListDataset(
        entries=attached,
        source=", ".join(s.key for s in sources),
        version=digest.hexdigest()[:16],
        sources=tuple(sources),
        enrichment=report if enrichment is not None else None,
    )


def load_file(path: PathLike, progress: Progress | None = None, *, allow_partial: bool = False) -> ListDataset:
    """Load one list file of any supported format (an OFAC primary file picks up its detail files)."""
    return build_dataset(load_sources([path], allow_partial=allow_partial, progress=progress))


def load_files(paths: Sequence[PathLike], progress: Progress | None = None) -> ListDataset:
    """Load several files into one dataset; an OFAC set may be given as its four files."""
    return build_dataset(load_sources(paths, progress=progress))


@contextmanager
def _bundled_root() -> Iterator[Path]:
    with as_file(files("gpulease") / "data" / "lists") as root:
        yield Path(root)


def _manifest() -> dict[str, list[dict[str, object]]]:
    with _bundled_root() as root:
        return tomllib.loads((root / MANIFEST).read_text(encoding="utf-8"))


@functools.cache
def bundled_sources() -> tuple[ListSource, ...]:
    """Every list set shipped inside the package, with its publication date (loaded once per process)."""
    sources: list[ListSource] = []
    with ExitStack() as stack:
        root = stack.enter_context(_bundled_root())
        for item in _manifest()["source"]:
            published = item["published"]
            assert isinstance(published, date), f"{MANIFEST}: published must be a date"
            (source,) = load_sources(
                [root / str(item["path"])], published=Publication(published.isoformat(), str(item["basis"]))
            )
            # Shipped with the package: say so, with the path inside it, rather than a temporary path.
            shipped = tuple(f"bundled:{Path(f).relative_to(root)}" for f in source.files)
            sources.append(replace(source, files=shipped))
    return tuple(sources)


def merge_enrichments(parts: Sequence[Enrichment]) -> Enrichment | None:
    """Several curated alias files as one (their rows in order; the name and hash cover every file)."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    digest = hashlib.sha256("".join(p.version for p in parts).encode()).hexdigest()[:16]
    rows = tuple(row for part in parts for row in part.rows)
    return Enrichment(" + ".join(p.file for p in parts), rows, digest)


@functools.cache
def bundled_enrichment() -> Enrichment | None:
    """The curated alias files shipped inside the package, as one (a missing file is fine)."""
    parts: list[Enrichment] = []
    with _bundled_root() as root:
        for item in _manifest().get("enrichment", []):
            path = root / str(item["path"])
            if path.exists():
                parts.append(read_enrichment_file(path))
    return merge_enrichments(parts)


@functools.cache
def bundled_dataset() -> ListDataset:
    """Every list shipped inside the package with the shipped enrichment attached (once per process)."""
    return build_dataset(bundled_sources(), bundled_enrichment())
