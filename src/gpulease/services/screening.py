"""Restricted-party lists in the store, the screening index over the version in force, list loads.

A list version is a unit: a load builds a complete new version (the entries of the sources it replaces,
plus everything else unchanged) and switches to it in one transaction. A malformed file is refused before
anything is written, so the lists in force stay in force.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from gpulease import audit
from gpulease.compliance.decide import decide_name
from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.lists import BUNDLED_FILES, detect_format, load_files
from gpulease.compliance.model import ListDataset, ListEntry
from gpulease.compliance.screening import screen_rows
from gpulease.domain.customers import ComplianceStatus
from gpulease.services import limits
from gpulease.services.context import Actor
from gpulease.services.customer_screening import rescreen_all
from gpulease.services.errors import InvalidRequest
from gpulease.services.permissions import Permission, require
from gpulease.services.work import Work
from gpulease.store.db import Store
from gpulease.store.models import ListEntryRow, ListVersion

Progress = Callable[[int, int | None], None]


def source_key(path: str) -> str:
    """Which earlier load a file replaces: its format, with the bundled supplement kept apart."""
    kind = detect_format(path)
    kind = {"csl-json": "csl", "csl-csv": "csl"}.get(kind, kind)
    return f"{kind}-supplement" if "supplement" in Path(path).name.lower() else kind


def in_force(session: Session) -> ListVersion | None:
    return session.scalar(select(ListVersion).where(ListVersion.in_force.is_(True)))


def list_versions(work: Work, *, actor: Actor) -> list[ListVersion]:
    """Every list version, newest first: the one in force, counts per list, where it came from."""
    require(actor, Permission.VIEW_LISTS)
    return list(work.session.scalars(select(ListVersion).order_by(ListVersion.id.desc())))


def _entries(session: Session, version_id: int) -> list[tuple[str, ListEntry]]:
    rows = session.execute(select(ListEntryRow.source, ListEntryRow.data).where(ListEntryRow.version_id == version_id))
    return [(src, ListEntry.from_dict(data)) for src, data in rows]


def _new_version(
    session: Session, parts: list[tuple[str, ListEntry]], sources: list[Any], now: datetime, actor: str
) -> ListVersion:
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    for _, e in sorted(parts, key=lambda p: p[1].id):
        digest.update(e.id.encode())
        digest.update(repr(e.to_dict()).encode())
        counts[e.list] = counts.get(e.list, 0) + 1
    old = in_force(session)
    if old is not None:
        old.in_force = False
    version = ListVersion(loaded_at=now, sources=sources, content_hash=digest.hexdigest(), counts=counts, in_force=True)
    session.add(version)
    session.flush()
    seen: set[str] = set()
    rows = []
    for src, e in parts:
        if e.id in seen:  # one entry id per version; a later source wins
            continue
        seen.add(e.id)
        rows.append(
            {"version_id": version.id, "entry_id": e.id, "list_code": e.list, "source": src, "data": e.to_dict()}
        )
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
    """Make the lists shipped in the package the version in force, unless some version already is."""
    current = in_force(session)
    if current is not None:
        return current
    root = files("gpulease") / "data/lists"
    parts: list[tuple[str, ListEntry]] = []
    sources = []
    for rel in BUNDLED_FILES:
        with as_file(root / rel) as path:
            ds = load_files([str(path)])
            key = source_key(str(path))
        parts.extend((key, e) for e in ds.entries)
        sources.append({"source": key, "file": f"bundled:{rel}", "version": ds.version, "entries": len(ds.entries)})
    return _new_version(session, parts, sources, now, actor="system")


@dataclass
class LoadResult:
    version_id: int
    counts: dict[str, int]
    rescreened: int = 0
    newly_hit: list[int] = field(default_factory=list)
    suspended_leases: int = 0


def load_lists(
    work: Work,
    *,
    actor: Actor,
    paths: Sequence[str],
    progress: Progress | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> LoadResult:
    """Load newer list files as a new version, then re-screen every customer against it."""
    require(actor, Permission.LOAD_LISTS)
    session, now, registry = work.session, work.now, work.screening
    phase = on_phase or (lambda _p: None)
    phase("reading list files")
    # Group the OFAC parts (sdn.csv + add/alt/comments) with their main file; each other file stands alone.
    datasets: list[tuple[str, ListDataset, list[str]]] = []
    ofac = [p for p in paths if detect_format(p) == "ofac"]
    others = [p for p in paths if p not in ofac]
    if ofac:
        datasets.append(("ofac", load_files(ofac, progress=progress), ofac))
    for p in others:
        datasets.append((source_key(p), load_files([p], progress=progress), [p]))
    phase("writing the new list version")
    current = in_force(session)
    replaced = {key for key, _, _ in datasets}
    parts = [] if current is None else [(src, e) for src, e in _entries(session, current.id) if src not in replaced]
    sources = [] if current is None else [s for s in current.sources if s.get("source") not in replaced]
    for key, ds, files_ in datasets:
        parts.extend((key, e) for e in ds.entries)
        sources.append(
            {
                "source": key,
                "file": ", ".join(Path(f).name for f in files_),
                "version": ds.version,
                "entries": len(ds.entries),
            }
        )
    version = _new_version(session, parts, sources, now, actor.name)
    phase("building the screening index")
    index = registry.build(version.content_hash, [e for _, e in parts])
    phase("re-screening customers")
    done = rescreen_all(
        work, index, trigger=f"list version {version.id}", list_version_id=version.id, progress=progress
    )
    return LoadResult(version.id, version.counts, done.rescreened, done.newly_hit, done.suspended_leases)


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
                self._cache[content_hash] = ScreeningIndex.build(entries, version=content_hash[:12])
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
        return self.build(version.content_hash, [e for _, e in _entries(session, version.id)])


@dataclass(frozen=True)
class ScreenedHit:
    """One listed party a name resembles, and why."""

    entry_id: str
    list: str
    name: str
    matched_name: str
    score: float
    reasons: tuple[str, ...]
    countries: tuple[str, ...]
    programs: tuple[str, ...]
    source_url: str | None


@dataclass(frozen=True)
class NameScreeningResult:
    """One name against the lists in force: the decision, its reasons and every hit."""

    decision: ComplianceStatus
    reasons: tuple[str, ...]
    list_version: str | None
    hits: tuple[ScreenedHit, ...]


def screen_name(
    work: Work, *, actor: Actor, name: str, country: str | None = None, address: str | None = None
) -> NameScreeningResult:
    """Screen one name (any script); who screened what is kept in the audit log."""
    require(actor, Permission.SCREEN_NAMES)
    if not name.strip():
        raise InvalidRequest("give a name to screen")
    if len(name) > limits.SCREEN_NAME_MAX:
        raise InvalidRequest(f"a name to screen is at most {limits.SCREEN_NAME_MAX} characters")
    name = limits.required_text(name, what="the name", max_len=limits.SCREEN_NAME_MAX)
    code = limits.text(country, what="country", max_len=8, pattern=limits.COUNTRY)
    country = None if code is None else code.upper()
    address = limits.text(address, what="the address", max_len=limits.SCREEN_ADDRESS_MAX, pattern=limits.TEXT)
    index = work.index()
    hits = index.screen(name, country=country, address=address)
    decision = decide_name(hits)
    result = NameScreeningResult(
        decision=ComplianceStatus(decision.decision),
        reasons=tuple(decision.reasons),
        list_version=index.version,
        hits=tuple(
            ScreenedHit(
                entry_id=h.entry_id,
                list=h.list,
                name=h.name,
                matched_name=h.matched_name,
                score=h.score,
                reasons=tuple(h.reasons),
                countries=tuple(h.entry.countries),
                programs=tuple(h.entry.programs),
                source_url=h.entry.source_url,
            )
            for h in hits
        ),
    )
    audit.append(
        work.session,
        at=work.now,
        actor=actor.name,
        action="screen",
        subject="name",
        data={
            "name": name,
            "country": country,
            "decision": result.decision.value,
            "top": result.hits[0].entry_id if result.hits else None,
        },
    )
    return result


def screen_row(index: ScreeningIndex, row: dict[str, str]) -> dict[str, Any]:
    out = next(screen_rows([row], index))
    return {k: out[k] for k in ("decision", "top_score", "top_entry", "top_list")}
