"""The one normalised shape every published list is loaded into."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address as published; any part may be missing."""

    street: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None  # ISO-2 where derivable, else as published

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Address:
        return cls(
            street=data.get("street"),
            city=data.get("city"),
            state=data.get("state"),
            postal_code=data.get("postal_code"),
            country=data.get("country"),
        )

    def is_empty(self) -> bool:
        return not any((self.street, self.city, self.state, self.postal_code, self.country))


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One listed party (a person, company, vessel or aircraft) from one list."""

    id: str
    list: str
    list_name: str
    type: str
    name: str
    aliases: tuple[str, ...] = ()
    addresses: tuple[Address, ...] = ()
    countries: tuple[str, ...] = ()
    programs: tuple[str, ...] = ()
    start_date: str | None = None
    source_url: str | None = None
    remarks: str | None = None
    websites: tuple[str, ...] = field(default=())  # web and e-mail domains, lower case

    @property
    def names(self) -> tuple[str, ...]:
        """The primary name followed by every alias."""
        return (self.name, *self.aliases)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "list": self.list,
            "list_name": self.list_name,
            "type": self.type,
            "name": self.name,
            "aliases": list(self.aliases),
            "addresses": [a.to_dict() for a in self.addresses],
            "countries": list(self.countries),
            "programs": list(self.programs),
            "start_date": self.start_date,
            "source_url": self.source_url,
            "remarks": self.remarks,
            "websites": list(self.websites),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ListEntry:
        return cls(
            id=str(data["id"]),
            list=str(data["list"]),
            list_name=str(data.get("list_name") or data["list"]),
            type=str(data.get("type") or "unknown"),
            name=str(data["name"]),
            aliases=tuple(data.get("aliases") or ()),
            addresses=tuple(Address.from_dict(a) for a in data.get("addresses") or ()),
            countries=tuple(data.get("countries") or ()),
            programs=tuple(data.get("programs") or ()),
            start_date=data.get("start_date"),
            source_url=data.get("source_url"),
            remarks=data.get("remarks"),
            websites=tuple(data.get("websites") or ()),
        )


class ListFormatError(ValueError):
    """A list file that cannot be read; says where and why in words."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class ListDataset:
    """Entries loaded from one or more files; `version` is a hash of their content."""

    entries: tuple[ListEntry, ...]
    source: str
    version: str

    @property
    def counts(self) -> dict[str, int]:
        """Number of entries per list code."""
        return dict(sorted(Counter(e.list for e in self.entries).items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "version": self.version,
            "counts": self.counts,
            "entries": [e.to_dict() for e in self.entries],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ListDataset:
        return cls(
            entries=tuple(ListEntry.from_dict(e) for e in data["entries"]),
            source=str(data["source"]),
            version=str(data["version"]),
        )
