"""The one normalised shape every published list is loaded into."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
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
class Identifier:
    """A secondary identifier as published: date of birth, passport, tax id, equity ticker, ..."""

    kind: str
    value: str
    country: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Identifier:
        return cls(kind=str(data["kind"]), value=str(data["value"]), country=data.get("country"))

    def describe(self) -> str:
        return f"{self.kind} {self.value}" + (f" ({self.country})" if self.country else "")


@dataclass(frozen=True, slots=True)
class EnrichmentAlias:
    """A name the list itself does not carry, added from a curated file with its public source.

    Of kind `SUBSIDIARY`, the name of a company the listed party owns or controls (not a name of the party itself):
    `relation` says how (wholly_owned, majority_owned, controlled, successor), `share` the ownership share where
    known ("100%", "51.6%") and `country` where the subsidiary is (ISO-2)."""

    alias: str
    kind: str  # legal_name, short_name, brand, stock_code, english_trade_name, former_name, pinyin, ..., subsidiary
    script: str | None = None  # Hans, Hant, Latn
    source_url: str | None = None
    source_note: str | None = None
    relation: str | None = None
    share: str | None = None
    country: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        # (An alias's dict as before subsidiaries came: stored versions hash and compare the same.)
        return {key: value for key, value in asdict(self).items() if value is not None or key not in _OWNERSHIP}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnrichmentAlias:
        return cls(
            alias=str(data["alias"]),
            kind=str(data["kind"]),
            script=data.get("script"),
            source_url=data.get("source_url"),
            source_note=data.get("source_note"),
            relation=data.get("relation"),
            share=data.get("share"),
            country=data.get("country"),
        )

    def describe_ownership(self) -> str:
        """ "a wholly owned subsidiary (100%)", "the successor": the relation in words, with the share if known."""
        relation = (self.relation or "related company").replace("_", " ")
        if relation == "successor":
            words = "the successor"
        elif relation in ("wholly owned", "majority owned"):
            words = f"a {relation} subsidiary"
        else:
            words = f"a {relation} company"
        return f"{words} ({self.share})" if self.share else words


SUBSIDIARY = "subsidiary"  # EnrichmentAlias.kind of a listed party's known subsidiary
_OWNERSHIP = ("relation", "share", "country")


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
    federal_register: str | None = None  # the notice that listed it, e.g. "84 FR 54002"
    license_requirement: str | None = None
    license_policy: str | None = None
    dates_of_birth: tuple[str, ...] = ()  # as published: "14 Jun 1960", "1970", "Mar 1963 to Mar 1964"
    nationalities: tuple[str, ...] = ()  # ISO-2 where derivable (nationality and citizenship)
    identifiers: tuple[Identifier, ...] = ()
    enrichment: tuple[EnrichmentAlias, ...] = ()  # curated aliases, not part of the published list
    # Curated known subsidiaries (kind SUBSIDIARY): companies the party owns or controls, not names of the party.
    subsidiaries: tuple[EnrichmentAlias, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The primary name, every published alias, then every enrichment alias."""
        return (self.name, *self.aliases, *(e.alias for e in self.enrichment))

    @property
    def listing_date(self) -> str | None:
        return self.start_date

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
            "federal_register": self.federal_register,
            "license_requirement": self.license_requirement,
            "license_policy": self.license_policy,
            "dates_of_birth": list(self.dates_of_birth),
            "nationalities": list(self.nationalities),
            "identifiers": [i.to_dict() for i in self.identifiers],
            "enrichment": [e.to_dict() for e in self.enrichment],
            **({"subsidiaries": [s.to_dict() for s in self.subsidiaries]} if self.subsidiaries else {}),
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
            federal_register=data.get("federal_register"),
            license_requirement=data.get("license_requirement"),
            license_policy=data.get("license_policy"),
            dates_of_birth=tuple(data.get("dates_of_birth") or ()),
            nationalities=tuple(data.get("nationalities") or ()),
            identifiers=tuple(Identifier.from_dict(i) for i in data.get("identifiers") or ()),
            enrichment=tuple(EnrichmentAlias.from_dict(e) for e in data.get("enrichment") or ()),
            subsidiaries=tuple(EnrichmentAlias.from_dict(s) for s in data.get("subsidiaries") or ()),
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
class Publication:
    """When a list was published and how that is known (the legacy OFAC files carry no date)."""

    date: str  # ISO yyyy-mm-dd
    basis: str  # "stated in the file", "given at load", "file modification time", ...


@dataclass(frozen=True, slots=True)
class MissingEntryRows:
    """Detail rows (addresses, aliases, remarks) of one file whose entry is not in the primary file."""

    file: str
    kind: str  # address, alias, remarks
    rows: int
    entry_numbers: tuple[str, ...]

    def describe(self) -> str:
        shown = ", ".join(self.entry_numbers[:8]) + (" …" if len(self.entry_numbers) > 8 else "")
        return (
            f"{self.rows} {self.kind} rows in {self.file} belong to {len(self.entry_numbers)} entries that are "
            f"not in the primary file ({shown}): the files are not one publication"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "kind": self.kind, "rows": self.rows, "entry_numbers": list(self.entry_numbers)}


@dataclass(frozen=True, slots=True)
class ListSource:
    """One published list set as loaded (OFAC's four SDN files, one CSL export, one UN XML, ...)."""

    key: str  # which earlier load it replaces: ofac, ofac-cons, csl, csl-supplement, un, dpl
    files: tuple[str, ...]
    entries: tuple[ListEntry, ...]
    version: str  # hash of the files' bytes
    published: Publication | None = None
    missing_entry_rows: tuple[MissingEntryRows, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(e.list for e in self.entries).items()))

    def summary(self) -> dict[str, Any]:
        """What a list version records about this source (JSON)."""
        return {
            "source": self.key,
            "file": ", ".join(f if f.startswith("bundled:") else Path(f).name for f in self.files),
            "version": self.version,
            "entries": len(self.entries),
            "counts": self.counts,
            "published": self.published.date if self.published else None,
            "published_basis": self.published.basis if self.published else None,
            "missing_entry_rows": [m.to_dict() for m in self.missing_entry_rows],
        }


@dataclass(frozen=True, slots=True)
class UnresolvedAlias:
    """An enrichment row naming an entry that is not on the lists in force."""

    line: int
    list: str
    entry_id: str | None
    listed_name: str
    alias: str


@dataclass(frozen=True, slots=True)
class EnrichmentReport:
    """What attaching a curated alias file to the lists did."""

    file: str | None  # None: no enrichment file
    rows: int = 0
    attached: int = 0
    already_listed: int = 0  # the list itself carries the alias: kept as published, not as enrichment
    unresolved: tuple[UnresolvedAlias, ...] = ()

    def summary(self) -> dict[str, Any]:
        return {
            "source": "enrichment",
            "file": self.file,
            "rows": self.rows,
            "attached": self.attached,
            "already_listed": self.already_listed,
            "unresolved": len(self.unresolved),
            "unresolved_names": sorted({u.listed_name for u in self.unresolved}),
        }


@dataclass(frozen=True, slots=True)
class ListDataset:
    """The entries of one or more list sources with enrichment attached; `version` hashes their files."""

    entries: tuple[ListEntry, ...]
    source: str
    version: str
    sources: tuple[ListSource, ...] = ()
    enrichment: EnrichmentReport | None = None

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
