"""Webhooks, the pure part: which events a customer can subscribe to, how a delivery is signed and checked,
which URLs may receive them, and when a failed delivery is tried again.

The signature scheme (docs/webhooks.md) is Stripe's: the header `X-Gpulease-Signature: t=<unix time>,v1=<hex>`
where hex = HMAC-SHA256(secret, "<t>.<raw body>"). Signing the time with the body lets a receiver refuse an old
delivery replayed at it; comparing in constant time keeps the secret from leaking through timing.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Gpulease-Signature"
TOLERANCE_S = 300  # a receiver should refuse a signature older than this


class EventType(enum.StrEnum):
    """What a customer is told about. On hold says only that: never why."""

    LEASE_STARTED = "lease.started"
    LEASE_ENDING_SOON = "lease.ending_soon"
    LEASE_ENDED = "lease.ended"
    LEASE_CANCELLED = "lease.cancelled"
    PREEMPTION_NOTICE = "lease.preemption_notice"
    LEASE_ON_HOLD = "lease.on_hold"
    LEASE_HOLD_RELEASED = "lease.hold_released"
    LEASE_NODE_FAILURE = "lease.node_failure"
    QUEUE_STARTED = "queue.started"
    QUEUE_EXPIRED = "queue.expired"
    BUDGET_THRESHOLD = "budget.threshold"
    TEST = "webhook.test"


SUBSCRIBABLE = tuple(e.value for e in EventType if e is not EventType.TEST)
ALL = "*"


class InvalidWebhook(ValueError):
    """A webhook the customer asked for that cannot be accepted (bad URL, unknown event)."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Gpulease-Signature` value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance_s: int = TOLERANCE_S) -> bool:
    """Whether `header` signs `body` with `secret` and is at most `tolerance_s` old (what a receiver checks)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    t, given = parts.get("t", ""), parts.get("v1", "")
    if not t.isdigit() or abs(now - int(t)) > tolerance_s:
        return False
    expected = sign(secret, int(t), body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


def wants(subscribed: list[str], event: str) -> bool:
    return event == EventType.TEST or ALL in subscribed or event in subscribed


def checked_events(events: list[str]) -> list[str]:
    """The events list as stored: known names only, without repeats; `*` stands for all of them."""
    if not events:
        raise InvalidWebhook(f"choose at least one event ({ALL} for all): {', '.join(SUBSCRIBABLE)}")
    unknown = [e for e in events if e != ALL and e not in SUBSCRIBABLE]
    if unknown:
        raise InvalidWebhook(f"unknown event {unknown[0]!r}; events are {', '.join(SUBSCRIBABLE)} (or {ALL})")
    return [ALL] if ALL in events else sorted(set(events))


MAX_URL = 2000


def checked_url(url: str, *, allow_private: bool) -> str:
    """A webhook URL: http(s), a host, no credentials in it; an IP literal must be public unless allowed.

    Names are resolved, and their addresses checked, when a delivery is sent (`is_public_address`).
    """
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise InvalidWebhook(f"give the URL to deliver to (at most {MAX_URL} characters)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidWebhook(f"{url!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhook("a webhook URL must start with https:// (or http://)")
    if not parts.hostname:
        raise InvalidWebhook("a webhook URL needs a host name")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhook("a webhook URL must not carry a user name or password; deliveries are signed instead")
    if port == 0:
        raise InvalidWebhook("a webhook URL's port must be 1 to 65535")
    if parts.fragment:
        raise InvalidWebhook("a webhook URL must not have a #fragment")
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        literal = None
    if literal is not None and not allow_private and not is_public_address(str(literal)):
        raise InvalidWebhook(f"{parts.hostname} is a private or local address; webhooks go to public addresses")
    if not allow_private and parts.hostname.lower() in ("localhost", "localhost.localdomain"):
        raise InvalidWebhook("localhost is this server itself; webhooks go to public addresses")
    return url


def is_public_address(address: str) -> bool:
    """Whether an IP address is one a delivery may go to: not loopback, private, link-local (cloud metadata),
    multicast, reserved or unspecified."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def retry_delay(attempt: int, *, base_s: float, cap_s: float) -> float:
    """Seconds before trying again after failed attempt number `attempt` (1, 2, …): base, 2x base, 4x … up to cap."""
    return float(min(cap_s, base_s * 2.0 ** max(0, attempt - 1)))
