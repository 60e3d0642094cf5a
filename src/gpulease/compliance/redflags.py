"""Named KYC red-flag rules (BIS "Know Your Customer" guidance, Supplement 3 to EAR Part 732)."""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from gpulease.compliance import web
from gpulease.compliance.countries import country_code
from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.model import Address, ListEntry
from gpulease.compliance.normalize import fold
from gpulease.compliance.restrictions import restriction

Severity = Literal["review", "deny"]

# Country Group D:5 (US arms embargoed countries, Supplement 1 to EAR Part 740) and E:1/E:2
# (terrorist-supporting and embargoed), plus Macau and Venezuela which the advanced computing
# rules of 2023 (88 FR 73458, Sections 742.6(a)(6) and 744.23) treat like D:5 headquarters.
COUNTRIES_OF_CONCERN: frozenset[str] = frozenset({"CN", "HK", "MO", "RU", "BY", "IR", "KP", "SY", "CU", "VE"})

# Web domains of Entity List firms in the bundled supplement. The lists carry no websites for
# them; these are the companies' own corporate sites as printed in their annual reports and
# stock-exchange filings, so mail or a website on them ties the customer to the listed firm.
LISTED_DOMAINS: dict[str, str] = {
    "iflytek.com": "IFLYTEK",
    "sensetime.com": "Beijing SenseTime Technology Development Co., Ltd.",
    "megvii.com": "Megvii Technology",
    "hikvision.com": "Hangzhou Hikvision Digital Technology Co., Ltd.",
    "dahuatech.com": "Zhejiang Dahua Technology Co., Ltd.",
    "yitutech.com": "Yitu Technologies",
    "huawei.com": "Huawei Technologies Co., Ltd.",
    "sugon.com": "Sugon",
    "hygon.cn": "Higon",
    "smics.com": "Semiconductor Manufacturing International Corporation",
    "cloudwalk.com": "CloudWalk Technology Co., Ltd.",
}

VAGUE_END_USES: frozenset[str] = frozenset(
    {
        "",
        "research",
        "ai",
        "a i",
        "n a",
        "na",
        "none",
        "tbd",
        "other",
        "misc",
        "general",
        "compute",
        "computing",
        "gpu",
        "gpus",
        "training",
        "ml",
        "machine learning",
        "deep learning",
        "business",
        "testing",
        "test",
        "various",
        "unknown",
        "confidential",
        "refused",
        "not disclosed",
        "prefer not to say",
    }
)


# Free-trade zones and the businesses that move goods on (BIS red flags: a freight forwarder or trading company as
# the ultimate consignee, a free-trade-zone address, re-export). Folded text; matched as whole words.
TRANSSHIPMENT_TERMS: tuple[str, ...] = (
    "free trade zone",
    "free zone",
    "ftz",
    "bonded zone",
    "bonded area",
    "bonded warehouse",
    "jafza",
    "dmcc",
    "freight forward",
    "freight forwarder",
    "freight forwarding",
    "forwarding agent",
    "re export",
    "reexport",
    "re exporter",
    "transshipment",
    "trans shipment",
    "import export",
    "general trading",
)


@dataclass(frozen=True, slots=True)
class KycProfile:
    """What a customer declared at onboarding."""

    legal_name: str
    local_name: str | None = None
    country: str | None = None
    address: str | None = None
    incorporated_on: date | None = None
    email_domain: str | None = None
    website: str | None = None
    parent: str | None = None
    owners: tuple[tuple[str, float], ...] = ()
    end_use: str | None = None
    requested_gpus: int = 0
    officers: tuple[str, ...] = ()  # directors and officers (individuals), screened like owners
    identifiers: tuple[tuple[str, str | None, str | None], ...] = ()  # (name, date of birth, nationality)

    def to_dict(self) -> dict[str, Any]:
        return {
            "legal_name": self.legal_name,
            "local_name": self.local_name,
            "country": self.country,
            "address": self.address,
            "incorporated_on": self.incorporated_on.isoformat() if self.incorporated_on else None,
            "email_domain": self.email_domain,
            "website": self.website,
            "parent": self.parent,
            "owners": [[n, p] for n, p in self.owners],
            "end_use": self.end_use,
            "requested_gpus": self.requested_gpus,
        }


@dataclass(frozen=True, slots=True)
class RedFlag:
    rule: str
    severity: Severity
    evidence: str

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity, "evidence": self.evidence}


@dataclass(frozen=True, slots=True)
class RedFlagRules:
    """The knobs of every rule; set `enabled` to switch rules off by name."""

    recent_incorporation_days: int = 365
    large_request_gpus: int = 64
    min_disclosed_ownership_percent: float = 75.0
    countries_of_concern: frozenset[str] = COUNTRIES_OF_CONCERN
    listed_domains: dict[str, str] = field(default_factory=lambda: dict(LISTED_DOMAINS))
    vague_end_uses: frozenset[str] = VAGUE_END_USES
    min_end_use_words: int = 4
    address_match_min_tokens: int = 3
    transshipment_terms: tuple[str, ...] = TRANSSHIPMENT_TERMS
    enabled: frozenset[str] = frozenset(
        {
            "transshipment_risk",
            "shared_address",
            "new_company_large_request",
            "undisclosed_owners",
            "listed_domain",
            "parent_in_country_of_concern",
            "vague_end_use",
        }
    )


def _address_tokens(text: str) -> set[str]:
    return {t for t in re.findall(r"[^\W_]+", fold(text)) if len(t) > 1}


_ListedAddress = tuple[ListEntry, str, frozenset[str], frozenset[str]]
_ADDRESS_CACHE: weakref.WeakKeyDictionary[ScreeningIndex, list[_ListedAddress]] = weakref.WeakKeyDictionary()
_ListedWebsites = tuple[ListEntry, tuple[tuple[str, bool], ...]]  # an entry, its websites with "the party's own?"
_WEBSITE_CACHE: weakref.WeakKeyDictionary[ScreeningIndex, list[_ListedWebsites]] = weakref.WeakKeyDictionary()


def _listed_addresses(index: ScreeningIndex) -> list[_ListedAddress]:
    cached = _ADDRESS_CACHE.get(index)
    if cached is None:
        cached = [
            (entry, _join(a), frozenset(_address_tokens(a.street)), frozenset(_address_tokens(_join(a))))
            for entry in index.entries
            for a in entry.addresses
            if a.street  # only street addresses are distinctive; a city alone is shared by millions
        ]
        _ADDRESS_CACHE[index] = cached
    return cached


def _shared_address(profile: KycProfile, index: ScreeningIndex, rules: RedFlagRules) -> list[RedFlag]:
    if not profile.address:
        return []
    mine = _address_tokens(profile.address)
    if len(mine) < rules.address_match_min_tokens:
        return []
    flags: list[RedFlag] = []
    for entry, text, street, full in _listed_addresses(index):
        if street and street <= mine and len(full & mine) >= rules.address_match_min_tokens:
            flags.append(
                RedFlag(
                    "shared_address",
                    "review",
                    f"address '{profile.address}' matches {entry.list} entry {entry.id} ({entry.name}): {text}",
                )
            )
            if len(flags) >= 5:
                break
    return flags


def _join(address: Address) -> str:
    parts = (address.street, address.city, address.state, address.postal_code, address.country)
    return ", ".join(p for p in parts if p)


def _new_company_large_request(profile: KycProfile, rules: RedFlagRules, today: date) -> list[RedFlag]:
    return new_company_large_request(profile.incorporated_on, profile.requested_gpus, rules, today)


def young_company(incorporated_on: date | None, rules: RedFlagRules, today: date) -> bool:
    """Whether `new_company_large_request` can flag the company at all, whatever it asks for or holds (a booking
    reads what the customer holds only then)."""
    return (
        "new_company_large_request" in rules.enabled
        and incorporated_on is not None
        and (today - incorporated_on).days < rules.recent_incorporation_days
    )


def new_company_large_request(
    incorporated_on: date | None, gpus: int, rules: RedFlagRules, today: date, *, held: int = 0
) -> list[RedFlag]:
    """A young company asking for many GPUs. At onboarding `gpus` is the declared number; at booking it is the
    request plus what the customer already holds (`held`), so splitting a large request does not hide it."""
    if not young_company(incorporated_on, rules, today):
        return []
    assert incorporated_on is not None
    total = gpus + held
    age = (today - incorporated_on).days
    if total < rules.large_request_gpus:
        return []
    asks = f"asks for {gpus} GPUs" if not held else f"asks for {gpus} GPUs on top of the {held} it holds ({total})"
    return [
        RedFlag(
            "new_company_large_request",
            "review",
            f"incorporated {age} days ago ({incorporated_on.isoformat()}) and {asks} "
            f"(thresholds: < {rules.recent_incorporation_days} days, ≥ {rules.large_request_gpus} GPUs)",
        )
    ]


def _transshipment_risk(profile: KycProfile, rules: RedFlagRules) -> list[RedFlag]:
    """A free-trade-zone address, or a freight forwarder, trading house or re-exporter as the customer: the GPUs'
    real user may be someone else (BIS Know Your Customer red flags)."""
    flags: list[RedFlag] = []
    fields = (("name", profile.legal_name), ("address", profile.address), ("end use", profile.end_use))
    for label, value in fields:
        text = " " + " ".join(re.findall(r"[^\W_]+", fold(value or ""))) + " "
        found = [t for t in rules.transshipment_terms if f" {fold(t)} " in text]
        if found:
            flags.append(
                RedFlag(
                    "transshipment_risk",
                    "review",
                    f"{label} '{value}' names a free-trade zone, forwarder or re-exporter ({', '.join(found)}): "
                    "the end user may be someone else",
                )
            )
    return flags


def _undisclosed_owners(profile: KycProfile, rules: RedFlagRules) -> list[RedFlag]:
    declared = sum(p for _, p in profile.owners)
    if profile.parent and not profile.owners:
        return []  # a declared parent is a 100% owner
    if declared > rules.min_disclosed_ownership_percent:
        return []
    return [
        RedFlag(
            "undisclosed_owners",
            "review",
            f"owners declared for {declared:g}% only; {100 - declared:g}% of the ownership is not disclosed",
        )
    ]


def _listed_domain(profile: KycProfile, index: ScreeningIndex, rules: RedFlagRules) -> list[RedFlag]:
    flags: list[RedFlag] = []
    for label, value in (("email domain", profile.email_domain), ("website", profile.website)):
        domain = web.host_of(value)
        if domain is None:
            continue
        ident = web.identity(value)
        for listed_domain, firm in rules.listed_domains.items():
            if domain == listed_domain or domain.endswith("." + listed_domain):
                flags.append(RedFlag("listed_domain", "deny", f"{label} {domain} belongs to listed firm {firm}"))
        for entry, websites in _entries_with_websites(index):
            for w, own in websites:
                if (own and (domain == w or domain.endswith("." + w))) or (not own and ident == w != domain):
                    meaning = restriction(entry.list)
                    evidence = f"{label} {ident if not own else domain} appears in {entry.list} entry {entry.id} "
                    evidence += f"({entry.name})"
                    if not meaning.blocking:  # as for a name hit there: review with the list's meaning, no denial
                        evidence += f"; {entry.list} is not a blocking list: {meaning.restricts}"
                    flags.append(RedFlag("listed_domain", "deny" if meaning.blocking else "review", evidence))
                    break
    return flags


def _entries_with_websites(index: ScreeningIndex) -> list[_ListedWebsites]:
    """The entries with websites, each website with whether it is the party's own (not on a shared host), worked
    out once per index. A shared host (gmail.com, facebook.com) names no one; its mailbox or page does, and only as a
    whole (a list stored before shared hosts were told apart may still hold the bare host)."""
    cached = _WEBSITE_CACHE.get(index)
    if cached is None:
        cached = [
            (e, tuple((w, not web.is_shared_host(web.host_of(w) or w)) for w in e.websites))
            for e in index.entries
            if e.websites
        ]
        _WEBSITE_CACHE[index] = cached
    return cached


def ultimate_parent(profile: KycProfile, known_parties: Mapping[str, KycProfile]) -> tuple[str, str | None] | None:
    """The top of the declared parent chain and its country (None when no parent is declared)."""
    known = {fold(k): v for k, v in known_parties.items()}
    name = profile.parent
    if not name:
        return None
    country = profile.country
    seen = {fold(profile.legal_name)}
    while True:
        seen.add(fold(name))
        party = known.get(fold(name))
        if party is None:
            # An undocumented parent: the customer's own country is the best evidence we have.
            return name, country
        country = party.country or country
        if not party.parent or fold(party.parent) in seen:
            return name, country
        name = party.parent


def _parent_in_country_of_concern(
    profile: KycProfile, rules: RedFlagRules, known_parties: Mapping[str, KycProfile]
) -> list[RedFlag]:
    top = ultimate_parent(profile, known_parties)
    if top is None:
        return []
    name, country = top
    code = country_code(country) if country else None
    if code not in rules.countries_of_concern:
        return []
    return [
        RedFlag(
            "parent_in_country_of_concern",
            "review",
            f"ultimate parent {name} is headquartered in {code} (Country Group D:5/E, or Macau/Venezuela "
            "under the advanced computing rules)",
        )
    ]


def _vague_end_use(profile: KycProfile, rules: RedFlagRules) -> list[RedFlag]:
    text = " ".join(re.findall(r"[^\W_]+", fold(profile.end_use or "")))
    words = text.split()
    if text in rules.vague_end_uses or len(words) < rules.min_end_use_words:
        shown = profile.end_use.strip() if profile.end_use and profile.end_use.strip() else "(none given)"
        return [
            RedFlag(
                "vague_end_use",
                "review",
                f"end use '{shown}' is refused, empty or too vague to assess",
            )
        ]
    return []


def evaluate(
    profile: KycProfile,
    index: ScreeningIndex,
    rules: RedFlagRules = RedFlagRules(),
    today: date | None = None,
    known_parties: Mapping[str, KycProfile] | None = None,
) -> list[RedFlag]:
    """Every enabled red-flag rule applied to one customer profile.

    `known_parties` (profiles by legal name) lets the parent rule follow the chain to the top.
    """
    today = today or date.today()
    known = known_parties or {}
    checks: Sequence[tuple[str, Callable[[], list[RedFlag]]]] = (
        ("shared_address", lambda: _shared_address(profile, index, rules)),
        ("new_company_large_request", lambda: _new_company_large_request(profile, rules, today)),
        ("undisclosed_owners", lambda: _undisclosed_owners(profile, rules)),
        ("listed_domain", lambda: _listed_domain(profile, index, rules)),
        ("parent_in_country_of_concern", lambda: _parent_in_country_of_concern(profile, rules, known)),
        ("vague_end_use", lambda: _vague_end_use(profile, rules)),
        ("transshipment_risk", lambda: _transshipment_risk(profile, rules)),
    )
    flags: list[RedFlag] = []
    for name, check in checks:
        if name in rules.enabled:
            flags.extend(check())
    return flags
