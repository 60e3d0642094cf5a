"""OFAC's remarks field: dates of birth, nationalities and identity numbers a compliance officer needs.

OFAC writes secondary identifiers into one `; `-separated remarks cell ("DOB 14 Jun 1960; POB Moscow,
Russia; nationality Russia; Passport 724609161 (Russia) expires 23 May 2023; ..."). This reads the items
that tell namesakes apart; everything else stays in the remarks as published.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpulease.compliance.countries import country_code
from gpulease.compliance.model import Identifier

# Identifier kinds as OFAC spells them (longest first where one is a prefix of another).
_ID_KINDS = (
    "Unified Social Credit Code (USCC)",
    "Business Registration Number",
    "Commercial Registry Number",
    "Registration Number",
    "Registration ID",
    "National ID No.",
    "Tax ID No.",
    "Passport",
    "Cedula No.",
    "C.U.R.P.",
    "R.F.C.",
    "Identification Number",
    "SWIFT/BIC",
    "ISIN",
    "Equity Ticker",
    "Legal Entity Number",
    "Company Number",
    "V.A.T. Number",
    "D.N.I.",
    "Driver's License No.",
    "Vessel Registration Identification",
    "MMSI",
    "Aircraft Manufacturer's Serial Number (MSN)",
    "Government Gazette Number",
    "BIK (RU)",
)
_ID = re.compile(
    r"^(?P<kind>" + "|".join(re.escape(k) for k in _ID_KINDS) + r")\s+(?P<value>[^\s(;]+)(?:\s+\((?P<country>[^)]+)\))?"
)
_DOB = re.compile(r"^DOB\s+(?P<value>.+)$")
_NATIONALITY = re.compile(r"^(?:nationality|citizen)\s+(?P<value>.+)$")
_ISSUER = re.compile(r"^Issuer Name\s+(?P<value>.+)$")


@dataclass(frozen=True, slots=True)
class RemarkFacts:
    dates_of_birth: tuple[str, ...]
    nationalities: tuple[str, ...]
    identifiers: tuple[Identifier, ...]
    issuer_names: tuple[str, ...]  # CMIC entries name the securities' issuer: another name of the company


def read_remarks(remarks: str | None) -> RemarkFacts:
    """The identifiers in an OFAC remarks cell (empty tuples when there are none)."""
    dobs: list[str] = []
    nationalities: list[str] = []
    identifiers: list[Identifier] = []
    issuers: list[str] = []
    for raw in (remarks or "").split(";"):
        item = raw.strip().removeprefix("alt. ").strip().rstrip(".")
        if not item:
            continue
        if match := _DOB.match(item):
            dobs.append(match.group("value").strip())
        elif match := _NATIONALITY.match(item):
            code = country_code(match.group("value"))
            if code:
                nationalities.append(code)
        elif match := _ID.match(item):
            country = match.group("country")
            identifiers.append(
                Identifier(
                    kind=match.group("kind"),
                    value=match.group("value"),
                    country=country_code(country) if country else None,
                )
            )
        elif match := _ISSUER.match(item):
            issuers.append(match.group("value").strip())
    return RemarkFacts(
        tuple(dict.fromkeys(dobs)),
        tuple(dict.fromkeys(nationalities)),
        tuple(dict.fromkeys(identifiers)),
        tuple(dict.fromkeys(issuers)),
    )
