"""Who is acting, and what time it is: passed into every use case (tests drive the clock)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from gpulease.services.errors import NotFound


class Role(enum.StrEnum):
    OPERATOR = "operator"
    COMPLIANCE = "compliance"
    CUSTOMER = "customer"


@dataclass(frozen=True)
class Actor:
    role: Role
    customer_id: int | None = None
    name: str = "system"

    def can_see_customer(self, customer_id: int) -> bool:
        return self.role in (Role.OPERATOR, Role.COMPLIANCE) or self.customer_id == customer_id

    def check_customer(self, customer_id: int, what: str = "customer") -> None:
        # A customer never learns whether another tenant's object exists: same answer as a missing one.
        if not self.can_see_customer(customer_id):
            raise NotFound(f"no such {what}")


SYSTEM = Actor(Role.OPERATOR, name="system")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def epoch(t: datetime) -> int:
    return int(t.timestamp())


def from_epoch(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
