"""Secondary identifiers of individuals: does a date of birth or nationality agree with a listed person's?

A common name equal to a listed individual's says little on its own; the date of birth and nationality
tell namesakes apart. Listed dates come as OFAC and the UN write them: "14 Jun 1960", "Mar 1963 to Mar
1964", "1970", "circa 1958", "1978-04-28".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from gpulease.compliance.countries import country_code

_MONTHS = {
    m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}
_ISO = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_DAY_MONTH_YEAR = re.compile(r"^(\d{1,2}) ([A-Za-z]{3})[a-z]*\.? (\d{4})$")
_MONTH_YEAR = re.compile(r"^([A-Za-z]{3})[a-z]*\.? (\d{4})$")
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
CIRCA_YEARS = 2


@dataclass(frozen=True, slots=True)
class BirthDate:
    """A date of birth as far as it is known: a year, a month of a year, or a day."""

    year: int
    month: int | None = None
    day: int | None = None


def parse_birth_date(value: date | str) -> BirthDate | None:
    """A date of birth given by a customer: a date, "YYYY-MM-DD", "YYYY-MM" or "YYYY"."""
    if isinstance(value, date):
        return BirthDate(value.year, value.month, value.day)
    match = _ISO.match(value.strip())
    if not match:
        return None
    year, month, day = match.groups()
    return BirthDate(int(year), int(month) if month else None, int(day) if day else None)


def _agrees_with(listed: str, given: BirthDate) -> bool | None:
    """Whether one published date of birth admits the given one; None if it cannot be read."""
    text = listed.strip()
    if match := _ISO.match(text):
        return _same(BirthDate(*(int(g) if g else None for g in match.groups())), given)  # type: ignore[arg-type]
    if match := _DAY_MONTH_YEAR.match(text):
        month = _MONTHS.get(match.group(2).lower())
        return _same(BirthDate(int(match.group(3)), month, int(match.group(1))), given)
    if match := _MONTH_YEAR.match(text):
        return _same(BirthDate(int(match.group(2)), _MONTHS.get(match.group(1).lower())), given)
    years = [int(y) for y in _YEAR.findall(text)]
    if not years:
        return None
    if "circa" in text.lower() or "approximately" in text.lower():
        return any(abs(given.year - y) <= CIRCA_YEARS for y in years)
    return min(years) <= given.year <= max(years)


def _same(listed: BirthDate, given: BirthDate) -> bool:
    if listed.year != given.year:
        return False
    if listed.month and given.month and listed.month != given.month:
        return False
    return not (listed.day and given.day and listed.day != given.day)


def birth_date_agrees(listed: Sequence[str], given: date | str | None) -> bool | None:
    """True if any published date admits the given one, False if all readable ones exclude it, else None."""
    if given is None:
        return None
    parsed = parse_birth_date(given)
    if parsed is None:
        return None
    verdicts = [v for v in (_agrees_with(d, parsed) for d in listed) if v is not None]
    if not verdicts:
        return None
    return any(verdicts)


def nationality_agrees(listed: Sequence[str], given: str | None) -> bool | None:
    """True if the given nationality is one of the listed ones, False if not, None if either is unknown."""
    if not given or not listed:
        return None
    code = country_code(given)
    return code in listed if code else None
