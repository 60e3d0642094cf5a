"""One loader per published list format; `load_file` picks the right one."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from importlib.resources import as_file, files
from pathlib import Path

from gpulease.compliance.lists.csl import load_csl_csv, load_csl_json
from gpulease.compliance.lists.dpl import load_dpl
from gpulease.compliance.lists.ofac import load_ofac, siblings
from gpulease.compliance.lists.source import PathLike, Progress, SourceFile
from gpulease.compliance.lists.un import load_un_xml
from gpulease.compliance.model import ListDataset, ListEntry, ListFormatError

__all__ = [
    "ListDataset",
    "ListFormatError",
    "bundled_dataset",
    "detect_format",
    "load_file",
    "load_files",
]

BUNDLED_FILES = (
    "ofac-sdn-2024/sdn.csv",
    "csl-sample/consolidated_sample.csv",
    "entity-list-supplement/entity_list_supplement.csv",
    "un/UN_consolidated.xml",
    "dpl.txt",
)
_OFAC_PARTS = {"add.csv", "alt.csv", "sdn_comments.csv"}


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
    if p.name.lower() in {"sdn.csv", *_OFAC_PARTS} or first[:1].isdigit():
        return "ofac"
    raise ListFormatError(
        str(path),
        1,
        "unknown list format: expected OFAC sdn.csv, trade.gov consolidated.csv/.json, "
        "UN consolidated XML or BIS dpl.txt.",
    )


def _load_one(path: PathLike, progress: Progress | None) -> tuple[list[ListEntry], list[SourceFile]]:
    kind = detect_format(path)
    if kind == "ofac":
        p = Path(path)
        if p.name.lower() in _OFAC_PARTS:
            raise ListFormatError(str(path), None, f"{p.name} is part of the OFAC set; load it together with sdn.csv.")
        parts = siblings(p)
        return load_ofac(p, parts.get("add.csv"), parts.get("alt.csv"), parts.get("sdn_comments.csv"), progress)
    loader = {"csl-csv": load_csl_csv, "csl-json": load_csl_json, "un-xml": load_un_xml, "dpl": load_dpl}[kind]
    entries, source = loader(path, progress)
    return entries, [source]


def _dataset(parts: Iterable[tuple[list[ListEntry], list[SourceFile]]], description: str) -> ListDataset:
    entries: list[ListEntry] = []
    digest = hashlib.sha256()
    for loaded, sources in parts:
        entries.extend(loaded)
        for source in sources:
            digest.update(source.sha256.digest())
    return ListDataset(entries=tuple(entries), source=description, version=digest.hexdigest()[:16])


def load_file(path: PathLike, progress: Progress | None = None) -> ListDataset:
    """Load one list file of any supported format (sdn.csv picks up add/alt/comments beside it)."""
    return _dataset([_load_one(path, progress)], str(path))


def load_files(paths: Sequence[PathLike], progress: Progress | None = None) -> ListDataset:
    """Load several files into one dataset; the OFAC set may be given as its four files."""
    by_name = {Path(p).name.lower(): Path(p) for p in paths}
    parts: list[tuple[list[ListEntry], list[SourceFile]]] = []
    for path in paths:
        name = Path(path).name.lower()
        if name in _OFAC_PARTS and "sdn.csv" in by_name:
            continue
        if name == "sdn.csv":
            parts.append(
                load_ofac(
                    path,
                    by_name.get("add.csv"),
                    by_name.get("alt.csv"),
                    by_name.get("sdn_comments.csv"),
                    progress,
                )
            )
        else:
            parts.append(_load_one(path, progress))
    return _dataset(parts, ", ".join(str(p) for p in paths))


@functools.cache
def bundled_dataset() -> ListDataset:
    """Every list shipped inside the package (loaded once per process)."""
    root = files("gpulease") / "data" / "lists"
    parts = []
    for relative in BUNDLED_FILES:
        resource = root.joinpath(*relative.split("/"))
        with as_file(resource) as path:
            parts.append(_load_one(path, None))
    return _dataset(parts, "bundled lists: " + ", ".join(BUNDLED_FILES))
