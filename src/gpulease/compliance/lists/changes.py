"""What a list load changes: entries added and removed per list, and the shrink check that guards loads.

A truncated download or an empty export looks like a valid file. Loading it would silently drop the
parties it lacks and re-screen every customer against the remainder, so a load that removes more than a
set share of a list's entries, or empties it, is refused unless the operator says it is intended.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gpulease.compliance.model import ListEntry, ListSource


@dataclass(frozen=True, slots=True)
class ListChange:
    """One list of one source before and after a load."""

    source: str
    list: str
    before: int
    after: int
    added: tuple[str, ...]  # entry ids
    removed: tuple[tuple[str, str], ...]  # (entry id, name)

    @property
    def removed_share(self) -> float:
        return len(self.removed) / self.before if self.before else 0.0

    def describe(self, shown: int = 10) -> str:
        names = "; ".join(f"{i} {n}" for i, n in self.removed[:shown])
        more = f" and {len(self.removed) - shown} more" if len(self.removed) > shown else ""
        text = (
            f"{self.list} ({self.source}): {self.before} → {self.after} entries, "
            f"{len(self.added)} added, {len(self.removed)} removed ({self.removed_share:.1%})"
        )
        return f"{text}; would remove {names}{more}" if self.removed else text

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "list": self.list,
            "before": self.before,
            "after": self.after,
            "added": len(self.added),
            "removed": len(self.removed),
            "removed_entries": [{"entry_id": i, "name": n} for i, n in self.removed],
        }


class ListShrinkError(ValueError):
    """A load that would remove too much of a list; nothing was changed."""

    def __init__(self, changes: Sequence[ListChange], max_share: float) -> None:
        self.changes = tuple(changes)
        self.max_share = max_share
        lines = "\n".join(f"  {c.describe()}" for c in self.changes)
        super().__init__(f"the load would remove more than {max_share:.0%} of a list's entries or empty it:\n{lines}")


def compare(old: Mapping[str, Sequence[ListEntry]], new: Sequence[ListSource]) -> list[ListChange]:
    """Per replaced source and list code: entries before (`old`, by source key) and after (`new`)."""
    changes: list[ListChange] = []
    for source in new:
        before: dict[str, dict[str, str]] = {}
        for entry in old.get(source.key, ()):
            before.setdefault(entry.list, {})[entry.id] = entry.name
        after: dict[str, dict[str, str]] = {}
        for entry in source.entries:
            after.setdefault(entry.list, {})[entry.id] = entry.name
        for code in sorted(before.keys() | after.keys()):
            was, now = before.get(code, {}), after.get(code, {})
            changes.append(
                ListChange(
                    source=source.key,
                    list=code,
                    before=len(was),
                    after=len(now),
                    added=tuple(i for i in now if i not in was),
                    removed=tuple((i, n) for i, n in was.items() if i not in now),
                )
            )
    return changes


def shrinking(changes: Sequence[ListChange], max_share: float) -> list[ListChange]:
    """The changes that remove more than `max_share` of a list's entries, or empty a list."""
    return [c for c in changes if c.before and (c.after == 0 or c.removed_share > max_share)]
