"""Restricted-party lists in the store, the screening index over the version in force, list loads.

A list version is a unit: a load builds a complete new version (the entries of the sources it replaces,
plus everything else unchanged) and switches to it in one transaction. A malformed file is refused before
anything is written, so the lists in force stay in force.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from gpulease import audit, heap
from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.lists import build_dataset, bundled_dataset, bundled_enrichment, load_sources
from gpulease.compliance.lists.changes import ListChange, ListShrinkError, compare, shrinking
from gpulease.compliance.model import ListDataset, ListEntry, ListSource, MissingEntryRows, Publication
from gpulease.compliance.screening import ScreeningResult as ScreeningResult  # the doors type answers with it
from gpulease.compliance.screening import screen_name as screen_one
from gpulease.compliance.screening import screen_rows
from gpulease.services import limits
from gpulease.services.context import Actor
from gpulease.services.customer_screening import rescreen_all
from gpulease.services.errors import InvalidRequest
from gpulease.services.permissions import Permission, require
from gpulease.services.work import Work
from gpulease.store.db import Store
from gpulease.store.models import ListEntryRow, ListVersion

Progress = Callable[[int, int | None], None]
DEFAULT_MAX_SHRINK = 0.10


def in_force(session: Session) -> ListVersion | None:
    return session.scalar(select(ListVersion).where(ListVersion.in_force.is_(True)))


def list_versions(work: Work, *, actor: Actor) -> list[ListVersion]:
    """Every list version, newest first: the one in force, counts per list, where it came from."""
    require(actor, Permission.VIEW_LISTS)
    return list(work.session.scalars(select(ListVersion).order_by(ListVersion.id.desc())))


def _entries(session: Session, version_id: int) -> list[tuple[str, ListEntry]]:
    rows = session.execute(select(ListEntryRow.source, ListEntryRow.data).where(ListEntryRow.version_id == version_id))
    return [(src, ListEntry.from_dict(data)) for src, data in rows]


def _summaries(dataset: ListDataset) -> list[dict[str, Any]]:
    """What the version records about its sources: files, counts, publication dates, enrichment."""
    out = [s.summary() for s in dataset.sources]
    if dataset.enrichment is not None:
        out.append(dataset.enrichment.summary())
    return out


def _new_version(session: Session, dataset: ListDataset, now: datetime, actor: str) -> ListVersion:
    """Write a dataset as the version in force (the one before stops being in force), audited."""
    source_of: dict[str, str] = {}
    for source in dataset.sources:
        for e in source.entries:
            source_of.setdefault(e.id, source.key)
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    for e in sorted(dataset.entries, key=lambda e: e.id):
        digest.update(e.id.encode())
        digest.update(repr(e.to_dict()).encode())
        counts[e.list] = counts.get(e.list, 0) + 1
    old = in_force(session)
    if old is not None:
        old.in_force = False
    sources = _summaries(dataset)
    version = ListVersion(loaded_at=now, sources=sources, content_hash=digest.hexdigest(), counts=counts, in_force=True)
    session.add(version)
    session.flush()
    rows = [
        {
            "version_id": version.id,
            "entry_id": e.id,
            "list_code": e.list,
            "source": source_of.get(e.id, "unknown"),
            "data": e.to_dict(),
        }
        for e in dataset.entries
    ]
    for i in range(0, len(rows), 2000):
        session.execute(insert(ListEntryRow), rows[i : i + 2000])
    audit.append(
        session,
        at=now,
        actor=actor,
        action="lists.loaded",
        subject=f"list_version:{version.id}",
        data={
            "sources": sources,
            "counts": counts,
            "content_hash": version.content_hash,
            "replaced_version": None if old is None else old.id,
        },
    )
    return version


def seed_bundled_lists(session: Session, now: datetime) -> ListVersion:
    """Make the lists shipped in the package the version in force, unless some version already is.

    The same loading path as `gpulease lists load`: `load_sources` → `build_dataset` with the shipped
    enrichment file; `bundled_dataset()` is that path over the bundled files.
    """
    current = in_force(session)
    if current is not None:
        return current
    with heap.collector_paused():  # tens of thousands of entries parsed and stored: a bulk load
        return _new_version(session, bundled_dataset(), now, actor="system")


def _kept_source(summary: Mapping[str, Any], entries: Sequence[ListEntry]) -> ListSource:
    """A source of the version in force, rebuilt from the store, that a load leaves as it is."""
    published = summary.get("published")
    return ListSource(
        key=str(summary["source"]),
        files=tuple(str(summary.get("file") or "").split(", ")),
        entries=tuple(entries),
        version=str(summary.get("version") or ""),
        published=Publication(str(published), str(summary.get("published_basis") or "")) if published else None,
        missing_entry_rows=tuple(
            MissingEntryRows(m["file"], m["kind"], int(m["rows"]), tuple(m["entry_numbers"]))
            for m in summary.get("missing_entry_rows") or ()
        ),
    )


@dataclass
class LoadResult:
    version_id: int
    counts: dict[str, int]
    rescreened: int = 0
    newly_hit: list[int] = field(default_factory=list)
    suspended_leases: int = 0
    changes: list[ListChange] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)  # what the version records (publication, gaps)


def load_lists(
    work: Work,
    *,
    actor: Actor,
    paths: Sequence[str],
    progress: Progress | None = None,
    on_phase: Callable[[str], None] | None = None,
    allow_partial: bool = False,
    allow_shrink: bool = False,
    max_shrink: float = DEFAULT_MAX_SHRINK,
    published: date | None = None,
) -> LoadResult:
    """Load newer list files as a new version, then re-screen every customer against it.

    Each file (or OFAC set) replaces the source of the same kind; the other sources stay. A load that would
    remove more than `max_shrink` of a list's entries, or empty it, raises ListShrinkError unless
    `allow_shrink`; a malformed file raises ListFormatError. Either way nothing is written.
    """
    require(actor, Permission.LOAD_LISTS)
    session, now, registry = work.session, work.now, work.screening
    phase = on_phase or (lambda _p: None)
    phase("reading list files")
    given = Publication(published.isoformat(), "given at load") if published else None
    with heap.collector_paused():  # a bulk load (the index is built the same way, below)
        new = load_sources(paths, allow_partial=allow_partial, published=given, progress=progress)
        current = in_force(session)
        stored = [] if current is None else _entries(session, current.id)
    by_source: dict[str, list[ListEntry]] = {}
    for src, e in stored:
        by_source.setdefault(src, []).append(e)
    changes = compare(by_source, new)
    refused = shrinking(changes, max_shrink)
    if refused and not allow_shrink:
        raise ListShrinkError(refused, max_shrink)
    phase("writing the new list version")
    replacing = {s.key: s for s in new}
    sources: list[ListSource] = []
    for summary in [] if current is None else current.sources:
        key = summary.get("source")
        if key == "enrichment":
            continue
        if key in replacing:
            sources.append(replacing.pop(key))
        else:
            sources.append(_kept_source(summary, by_source.get(str(key), [])))
    sources.extend(replacing.values())
    with heap.collector_paused():
        dataset = build_dataset(sources, bundled_enrichment())
        version = _new_version(session, dataset, now, actor.name)
    phase("building the screening index")
    index = registry.build(version.content_hash, dataset.entries)
    phase("re-screening customers")
    done = rescreen_all(
        work, index, trigger=f"list version {version.id}", list_version_id=version.id, progress=progress
    )
    return LoadResult(
        version.id,
        version.counts,
        done.rescreened,
        done.newly_hit,
        done.suspended_leases,
        changes=changes,
        sources=list(version.sources),
    )


@dataclass(frozen=True, slots=True)
class ListStatus:
    """One list of the version in force: how many entries, from which files, published when."""

    list: str
    entries: int
    source: str
    file: str
    published: str | None
    published_basis: str | None
    age_days: int | None
    stale: bool  # older than the configured age, or of unknown date
    missing_entry_rows: int  # detail rows of its files whose entry was missing

    @property
    def warning(self) -> str | None:
        if self.published is None:
            return "publication date unknown"
        if self.stale:
            return f"{self.age_days} days old: load the current list"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "list": self.list,
            "entries": self.entries,
            "source": self.source,
            "file": self.file,
            "published": self.published,
            "published_basis": self.published_basis,
            "age_days": self.age_days,
            "stale": self.stale,
            "warning": self.warning,
            "missing_entry_rows": self.missing_entry_rows,
        }


def list_status(version: ListVersion, today: date, max_age_days: int) -> list[ListStatus]:
    """Each list of a version with its publication date; `stale` when older than `max_age_days`."""
    rows: list[ListStatus] = []
    for summary in version.sources:
        if summary.get("source") == "enrichment":
            continue
        published = summary.get("published")
        age = (today - date.fromisoformat(published)).days if published else None
        counts = summary.get("counts") or {}
        for code, n in sorted(counts.items()):
            rows.append(
                ListStatus(
                    list=code,
                    entries=int(n),
                    source=str(summary.get("source")),
                    file=str(summary.get("file") or ""),
                    published=published,
                    published_basis=summary.get("published_basis"),
                    age_days=age,
                    stale=age is None or age > max_age_days,
                    missing_entry_rows=sum(int(m["rows"]) for m in summary.get("missing_entry_rows") or ()),
                )
            )
    return rows


class ScreeningRegistry:
    """The screening index of the list version in force, built once per version and shared by threads.

    Indexes are immutable and keyed by the content hash of their version, so one cache serves every
    registry of the process (several runtimes over stores holding the same lists build it once).
    """

    _lock = threading.Lock()
    _cache: ClassVar[dict[str, ScreeningIndex]] = {}

    def __init__(self, store: Store) -> None:
        self.store = store

    def build(self, content_hash: str, entries: Sequence[ListEntry]) -> ScreeningIndex:
        with self._lock:
            if content_hash not in self._cache:
                with heap.collector_paused():
                    self._cache[content_hash] = ScreeningIndex.build(entries, version=content_hash[:12])
                heap.freeze()  # a million objects that live as long as the list version: out of the collector's way
            return self._cache[content_hash]

    def index(self, session: Session | None = None) -> ScreeningIndex:
        if session is None:
            with self.store.transaction() as s:
                return self.index(s)
        version = in_force(session)
        if version is None:
            version = seed_bundled_lists(session, datetime.now().astimezone())
        with self._lock:
            cached = self._cache.get(version.content_hash)
        if cached is not None:
            return cached
        with heap.collector_paused():
            entries = [e for _, e in _entries(session, version.id)]
        return self.build(version.content_hash, entries)


def screen_name(
    work: Work,
    *,
    actor: Actor,
    name: str,
    country: str | None = None,
    address: str | None = None,
    date_of_birth: date | str | None = None,
    nationality: str | None = None,
) -> ScreeningResult:
    """Screen one name (any script) against the lists in force, every hit explained; who screened what is kept
    in the audit log."""
    require(actor, Permission.SCREEN_NAMES)
    if not name.strip():
        raise InvalidRequest("give a name to screen")
    if len(name) > limits.SCREEN_NAME_MAX:
        raise InvalidRequest(f"a name to screen is at most {limits.SCREEN_NAME_MAX} characters")
    name = limits.required_text(name, what="the name", max_len=limits.SCREEN_NAME_MAX)
    code = limits.text(country, what="country", max_len=8, pattern=limits.COUNTRY)
    country = None if code is None else code.upper()
    address = limits.text(address, what="the address", max_len=limits.SCREEN_ADDRESS_MAX, pattern=limits.TEXT)
    code = limits.text(nationality, what="nationality", max_len=8, pattern=limits.COUNTRY)
    nationality = None if code is None else code.upper()
    result = screen_one(work.index(), name, country, address, date_of_birth=date_of_birth, nationality=nationality)
    audit.append_staged(  # written in bulk at the commit, not as an ORM object: bulk screening goes through here
        work.session,
        at=work.now,
        actor=actor.name,
        action="screen",
        subject="name",
        data={
            "name": name,
            "country": country,
            "decision": result.decision,
            "top": result.hits[0].hit.entry_id if result.hits else None,
        },
    )
    return result


def screen_row(index: ScreeningIndex, row: dict[str, str]) -> dict[str, Any]:
    out = next(screen_rows([row], index))
    return {k: out[k] for k in ("decision", "top_score", "top_entry", "top_list")}
