"""What a listing means for renting compute to the party: a blocking prohibition or a narrower restriction.

The lists differ in kind, not only in name. An SDN, Entity List, Denied Persons or UN listing bars the
dealing (without a licence); the OFAC non-SDN lists restrict particular dealings only (CMIC: buying or
selling the company's publicly traded securities; SSI and the menu-based directives: new debt, equity or
other financing), so a hit on them goes to a person with that meaning stated, never to a denial.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Restriction:
    """The meaning of one list."""

    code: str
    name: str
    blocking: bool  # True: serving the party is prohibited without a licence
    restricts: str  # what the listing prohibits, in words a compliance officer uses


_RESTRICTIONS = (
    Restriction(
        "SDN",
        "Specially Designated Nationals (OFAC)",
        True,
        "blocking sanctions: the party's property is blocked and US persons may not deal with it",
    ),
    Restriction(
        "EL",
        "Entity List (BIS)",
        True,
        "a licence is required to export, re-export or transfer items subject to the EAR to the party "
        "(see the licence requirement and policy of the entry)",
    ),
    Restriction(
        "DPL",
        "Denied Persons List (BIS)",
        True,
        "export privileges denied: no one may take part with the party in an export transaction",
    ),
    Restriction(
        "UN",
        "UN Security Council Consolidated List",
        True,
        "UN sanctions: assets frozen, no funds or economic resources may be made available",
    ),
    Restriction(
        "CMIC",
        "Non-SDN Chinese Military-Industrial Complex Companies List (OFAC, EO 13959/14032)",
        False,
        "restricts securities investment: US persons may not buy or sell the company's publicly traded "
        "securities; selling it services is not prohibited by this listing",
    ),
    Restriction(
        "SSI",
        "Sectoral Sanctions Identifications List (OFAC, EO 13662 directives)",
        False,
        "restricts financing: US persons may not deal in new debt or new equity of the party as its "
        "directive says; other dealings are not prohibited by this listing",
    ),
    Restriction(
        "NS-MBS",
        "Non-SDN Menu-Based Sanctions List (OFAC)",
        False,
        "restricts the dealings named in the entry's directive (new debt or equity, financial services, "
        "loans); other dealings are not prohibited by this listing",
    ),
    Restriction(
        "PLC",
        "Non-SDN Palestinian Legislative Council List (OFAC)",
        False,
        "members of the Palestinian Legislative Council elected on the slate of a designated terrorist "
        "organisation; dealings are restricted, not blocked",
    ),
    Restriction(
        "CAP",
        "Correspondent Account or Payable-Through Account Sanctions (CAPTA, OFAC)",
        False,
        "restricts banking: US financial institutions may not open or keep correspondent or payable-through "
        "accounts for it",
    ),
    Restriction(
        "MEU",
        "Military End-User List (BIS)",
        False,
        "a licence is required for the items of Supplement 2 to EAR Part 744 when destined to the party",
    ),
    Restriction(
        "UVL",
        "Unverified List (BIS)",
        False,
        "the party's bona fides could not be verified: a UVL statement is required and red flags must be resolved",
    ),
    Restriction(
        "ISN",
        "Nonproliferation Sanctions (State Department)",
        False,
        "the restrictions stated in the Federal Register notice of the entry",
    ),
    Restriction(
        "DTC",
        "ITAR Debarred (State Department)",
        False,
        "may not take part in exports of defence articles or services",
    ),
    Restriction(
        "FSE",
        "Foreign Sanctions Evaders List (OFAC)",
        False,
        "US persons may not deal with the party in the transactions named by its designation",
    ),
)
RESTRICTIONS: dict[str, Restriction] = {r.code: r for r in _RESTRICTIONS}
BLOCKING_LISTS: frozenset[str] = frozenset(r.code for r in _RESTRICTIONS if r.blocking)


def restriction(code: str) -> Restriction:
    """The meaning of a list code; an unknown list is treated as restrictive, not blocking."""
    return RESTRICTIONS.get(code) or Restriction(code, code, False, "a restriction this version does not describe")
