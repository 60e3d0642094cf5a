"""The bounds of what gpulease accepts, in one place: how long each text may be (the store's column widths), which
characters it may hold, and the ranges of ids, counts, money, durations and dates.

The API's schemas (api/schemas.py) are built from these constants and patterns, so the OpenAPI document states
them; the use cases check the same bounds with the functions below, so the dashboard, the CLI and the admin
commands refuse the same input with the same sentence. Nothing out of these bounds reaches the store, where it
would fail (a NUL byte, a string wider than its column, an integer beyond 32 bits, a numeric overflow) or
overflow a `datetime`.

Which characters, per kind of field:
- one line (names, domains, websites, labels, codes, filters): no control characters (C0, DEL, C1) and no
  line or paragraph separators;
- free text (addresses, intended end use, review comments): the same, except that tab, newline and carriage
  return are allowed, since people write paragraphs there;
- what is handed to the operating system (a run's command, arguments and environment values): anything but NUL,
  which no argv or environment string can carry (a command line may legitimately hold newlines or escapes).
Every text must also be valid Unicode (no lone surrogates, which no store or UTF-8 encoder can take).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from gpulease.domain.cpu import CPU_CATALOGUE
from gpulease.domain.inventory import CATALOGUE
from gpulease.services.errors import InvalidRequest

# --------------------------------------------------------------------------------------------- ids and counts

MAX_ID = 2**31 - 1  # ids are 32-bit integers in both stores
ID_MAX = MAX_ID
CONTACTS_MAX = 10  # a customer's contacts
KEY_GRACE_MAX_S = 7 * 86400  # how long a rotated key's old secret may keep working
REQUESTED_GPUS_MAX = 1_000_000  # capacity a customer says it expects to use (a red-flag input, never stored)
OWNERS_MAX = 100  # declared beneficial owners of one customer
LOG_OFFSET_MAX = 2**63 - 1  # a byte offset into a run's log

# --------------------------------------------------------------------------------------------- text lengths
# Each is at most the width of the column it is stored in (tests/test_limits.py checks them against the models).

NAME_MAX = 300  # customers.legal_name, local_name, parent, website; owners' names
DOMAIN_MAX = 200  # customers.email_domain
ADDRESS_MAX = 1000  # customers.address (text): any postal address fits
END_USE_MAX = 4000  # customers.end_use (text)
COMMENT_MAX = 4000  # review_items.comment (text)
PLACE_MAX = 100  # sites.name, clusters.name
NODE_NAME_MAX = 80  # nodes.name is 100 wide: removing a node appends "~removed-<id>" (up to 19 characters)
MODEL_NAME_MAX = 40  # gpu_model columns
LABEL_MAX = 200  # api_keys.label
CONTACT_NAME_MAX = 200  # a customer contact's name (JSON in customers.contacts)
CONTACT_ROLE_MAX = 60
PHONE_MAX = 40
EMAIL_MAX = 254  # RFC 5321
URL_MAX = 2000  # webhooks.url (text): what browsers and servers take
WEBHOOK_DESCRIPTION_MAX = 200
SCREEN_NAME_MAX = 500  # a name screened on its own (kept in the audit record only)
SCREEN_ADDRESS_MAX = ADDRESS_MAX
FILTER_MAX = 100  # free-form filters in queries (a GPU model, a state)
RUN_ID_PATTERN = r"^[0-9a-f]{16}$"  # what the executor names runs
# A run: what execve accepts (MAX_ARG_STRLEN is 128 KiB; a character is at most 4 bytes of UTF-8).
COMMAND_ARGS_MAX = 1024
ARG_MAX = 32_768
ENV_VARS_MAX = 256
ENV_NAME_MAX = 255
CWD_MAX = 4096  # PATH_MAX
IMAGE_MAX = 500

# --------------------------------------------------------------------------------------------- characters
# The same patterns go into the OpenAPI document (ECMA-262), pydantic (Rust regex) and Python's re: only the
# syntax all three read alike.

_CONTROLS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
_TEXT_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
LINE = rf"^[^{_CONTROLS}]*$"
REQUIRED_LINE = rf"^[^{_CONTROLS}]*[^\s{_CONTROLS}][^{_CONTROLS}]*$"  # with something besides spaces
TEXT = rf"^[^{_TEXT_CONTROLS}]*$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
HTTP_URL = r"^https?://[^\s]+$"
REQUIRED_TEXT = rf"^[^{_TEXT_CONTROLS}]*[^\s{_TEXT_CONTROLS}][^{_TEXT_CONTROLS}]*$"
NO_NUL = r"^[^\x00]*$"
ARG = r"^[^\x00]+$"  # a command's word: not empty, no NUL
COUNTRY = r"^ {0,3}[A-Za-z]{2} {0,3}$"  # ISO 3166-1 alpha-2 (case and a few spaces around do not matter)
CURRENCY = r"^ {0,3}[A-Za-z]{3} {0,3}$"  # ISO 4217
PERIOD = r"^2[01][0-9]{2}-(0[1-9]|1[0-2])$"  # a billing month, YYYY-MM, within the years times may have
ENV_NAME = r"^[^=\x00]+$"  # an environment variable's name: anything but '=' and NUL
# Money: the price book's columns are numeric(18, 6) for rates and numeric(6, 4) for the cancellation fee; a rate
# has at most 15 significant digits, which SQLite (which keeps numerics as doubles) also stores exactly.
RATE = r"^[0-9]{1,9}(\.[0-9]{1,6})?$"
FRACTION = r"^(0(\.[0-9]{1,4})?|1(\.0{1,4})?|\.[0-9]{1,4})$"


def _any_case(name: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in name)


# A GPU model of the catalogue, in any case (the use cases look models up case-insensitively).
GPU_MODEL = "^(" + "|".join(_any_case(m) for m in sorted(CATALOGUE)) + ")$"

# A CPU model of the CPU catalogue (domain/cpu.py), in any case.
CPU_MODEL = "^(" + "|".join(_any_case(m) for m in sorted(CPU_CATALOGUE)) + ")$"
CPU_CORES_MAX = 512  # cores of one CPU lease (one node) and of one node
MEMORY_GIB_MAX = 65_536  # GiB of one CPU lease and of one node
SOCKETS_MAX = 8

# What each pattern means, for the sentence a refusal gives (the API turns pydantic's pattern errors into these).
MEANING = {
    LINE: "one line of text without control characters",
    REQUIRED_LINE: "one line of text without control characters, not blank",
    TEXT: "text without control characters (other than tabs and line breaks)",
    REQUIRED_TEXT: "text without control characters (other than tabs and line breaks), not blank",
    NO_NUL: "text without NUL characters",
    ARG: "a non-empty text without NUL characters",
    COUNTRY: "an ISO 3166-1 alpha-2 country code such as US or CN",
    CURRENCY: "an ISO 4217 currency code such as USD",
    PERIOD: "a month written YYYY-MM",
    ENV_NAME: "an environment variable's name: not empty, without '=' or NUL",
    RATE: "a decimal amount such as 1.25: up to 9 digits before the point and 6 after",
    FRACTION: "a decimal fraction between 0 and 1 with at most 4 places, such as 0.5",
    GPU_MODEL: f"one of the catalogue's GPU models ({', '.join(sorted(CATALOGUE))})",
    CPU_MODEL: f"one of the catalogue's CPU models ({', '.join(sorted(CPU_CATALOGUE))})",
    RUN_ID_PATTERN: "a run id: 16 hexadecimal digits",
}

# --------------------------------------------------------------------------------------------- money, time

CANCEL_FREE_HOURS_MAX = 24 * 366  # a year
NOTICE_MAX_S = 30 * 86_400  # a preemption notice of at most 30 days
LEASE_MAX_S = 10 * 366 * 86_400  # a lease (or a queued request) lasts at most ~10 years (fits 32 bits)
MAX_WAIT_MAX_S = 366 * 86_400  # a request waits in the queue at most a year
HORIZON = timedelta(seconds=LEASE_MAX_S)  # a window ends at most this far ahead of now
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # no time before this or after LATEST is meaningful here,
LATEST = datetime(2200, 1, 1, tzinfo=UTC)  # and every date in between survives arithmetic by the horizon
CALENDAR_DAYS_MAX = 366
OVERVIEW_HOURS_MAX = 24 * 31


# --------------------------------------------------------------------------------------------- checks


def _surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def text(value: str | None, *, what: str, max_len: int, pattern: str = LINE, required: bool = False) -> str | None:
    """`value` stripped, or None when empty (InvalidRequest if `required`); refused if too long or holding
    characters the pattern excludes."""
    if value is None:
        if required:
            raise InvalidRequest(f"{what} is required")
        return None
    # As given, not stripped: the OpenAPI document states these bounds of the value sent.
    if len(value) > max_len:
        raise InvalidRequest(f"{what} is longer than {max_len} characters")
    if _surrogate(value) or re.fullmatch(pattern, value) is None:
        if not value.strip() and required:
            raise InvalidRequest(f"{what} is required")
        raise InvalidRequest(f"{what} must be {MEANING.get(pattern, 'valid text')}")
    value = value.strip()
    if not value and required:
        raise InvalidRequest(f"{what} is required")
    return value or None


def required_text(value: str | None, *, what: str, max_len: int, pattern: str = LINE) -> str:
    out = text(value, what=what, max_len=max_len, pattern=pattern, required=True)
    assert out is not None
    return out


def os_string(value: str, *, what: str, max_len: int) -> str:
    """A string handed to the operating system as it is (not stripped): anything but NUL, valid Unicode."""
    if len(value) > max_len:
        raise InvalidRequest(f"{what} is longer than {max_len} characters")
    if "\x00" in value or _surrogate(value):
        raise InvalidRequest(f"{what} must not contain NUL characters or invalid Unicode")
    return value


def fits_id(value: int) -> bool:
    """Whether `value` can be a stored id at all (one beyond 32 bits names nothing, and fails on PostgreSQL)."""
    return 1 <= value <= MAX_ID


def whole(value: int, *, what: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidRequest(f"{what} must be between {low} and {high}, got {value}")
    return value


def parse_int(value: str, *, what: str) -> int:
    """A whole number typed into a form (ASCII digits only: '²' is a digit to str.isdigit, not to int)."""
    value = value.strip()
    if not value:
        raise InvalidRequest(f"give {what}")
    if re.fullmatch(r"-?[0-9]{1,30}", value) is None:
        raise InvalidRequest(f"{what} must be a whole number, got {value[:40]!r}")
    return int(value)


def moment(value: datetime, *, what: str) -> datetime:
    """A time given by a client: with an offset, and between EARLIEST and LATEST."""
    if value.tzinfo is None:
        raise InvalidRequest(f"{what} must carry a UTC offset, e.g. 2026-12-01T09:00:00Z")
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):  # 9999-12-31T23:00-23:59 is beyond year 9999 in UTC
        raise InvalidRequest(f"{what} is out of range") from None
    if not EARLIEST <= utc <= LATEST:
        raise InvalidRequest(
            f"{what} must be between {EARLIEST.date().isoformat()} and {LATEST.date().isoformat()}, "
            f"got {value.isoformat()}"
        )
    return utc
