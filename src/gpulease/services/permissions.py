"""Who may do what: one table of permissions by role, checked by the use cases and read by the pages.

The roles as documented (README, "Roles"): `operator` runs inventory, prices, leases and customers;
`compliance` runs screening, reviews, lists and the audit, and only reads everything else; `customer` acts on
its own tenant. Tenancy is separate (`Actor.check_customer`): a customer acts on its own tenant only, whatever
it may do. Which permission each API route needs is `gpulease.api.access.ROUTES`.
"""

from __future__ import annotations

import enum

from gpulease.services.context import Actor, Role
from gpulease.services.errors import Forbidden

OPERATOR, COMPLIANCE, CUSTOMER = Role.OPERATOR, Role.COMPLIANCE, Role.CUSTOMER
STAFF = frozenset({OPERATOR, COMPLIANCE})
EVERYONE = frozenset(Role)


class Permission(enum.StrEnum):
    BOOK_LEASE = "book a lease"
    CHANGE_LEASE = "end, cancel or extend a lease"
    PREEMPT_LEASE = "preempt a lease"
    MANAGE_INVENTORY = "add, drain or remove nodes"
    VIEW_INVENTORY = "see the inventory and the capacity calendar"
    SET_PRICES = "set prices"
    ONBOARD_CUSTOMER = "register a customer"
    VIEW_CUSTOMER_FILES = "see customers' KYC and screening evidence"
    SCREEN_NAMES = "screen names"
    VIEW_REVIEWS = "see the review queue"
    DECIDE_REVIEWS = "decide reviews"
    VIEW_ALERTS = "see and acknowledge alerts"
    VIEW_LISTS = "see the restricted-party lists"
    LOAD_LISTS = "load restricted-party lists"
    VERIFY_RECORDS = "verify the audit chain and the usage records"
    VIEW_KEYS = "see the API keys"
    MANAGE_KEYS = "create or revoke API keys"
    VIEW_FLEET = "see the fleet overview"
    SET_LIMITS = "set customers' spend limits and GPU quotas"
    MANAGE_OWN_KEYS = "create, rotate or revoke one's own API keys"
    MANAGE_WEBHOOKS = "add, test or delete webhooks"
    UPDATE_PROFILE = "update a customer's contacts, address and declarations"
    VIEW_LEASES = "see leases, their events and runs"
    RUN_WORK = "start runs on a lease"
    VIEW_PRICES = "see GPU models, prices, quotes and availability"
    VIEW_CUSTOMERS = "see customers' profiles"
    VIEW_BILLING = "see invoices, usage, spend and limits"
    VIEW_WEBHOOKS = "see webhooks, their deliveries and notifications"
    VIEW_COMPLIANCE_FILE = "export a customer's compliance file"
    LIST_KEYS = "see API keys (a customer: its own)"


GRANTS: dict[Permission, frozenset[Role]] = {
    Permission.BOOK_LEASE: frozenset({OPERATOR, CUSTOMER}),
    Permission.CHANGE_LEASE: frozenset({OPERATOR, CUSTOMER}),
    Permission.PREEMPT_LEASE: frozenset({OPERATOR}),
    Permission.MANAGE_INVENTORY: frozenset({OPERATOR}),
    Permission.VIEW_INVENTORY: STAFF,
    Permission.SET_PRICES: frozenset({OPERATOR}),
    Permission.ONBOARD_CUSTOMER: frozenset({OPERATOR}),
    Permission.VIEW_CUSTOMER_FILES: STAFF,
    Permission.SCREEN_NAMES: frozenset({COMPLIANCE}),
    Permission.VIEW_REVIEWS: STAFF,
    Permission.DECIDE_REVIEWS: frozenset({COMPLIANCE}),
    Permission.VIEW_ALERTS: STAFF,
    Permission.VIEW_LISTS: STAFF,
    Permission.LOAD_LISTS: STAFF,  # compliance decides; operators run the scheduled loads (CLI, cron)
    Permission.VERIFY_RECORDS: STAFF,
    Permission.VIEW_KEYS: STAFF,
    Permission.MANAGE_KEYS: frozenset({OPERATOR}),
    Permission.VIEW_FLEET: STAFF,
    Permission.SET_LIMITS: frozenset({OPERATOR}),
    Permission.MANAGE_OWN_KEYS: frozenset({OPERATOR, CUSTOMER}),
    Permission.MANAGE_WEBHOOKS: frozenset({OPERATOR, CUSTOMER}),
    Permission.UPDATE_PROFILE: frozenset({OPERATOR, CUSTOMER}),
    Permission.VIEW_LEASES: EVERYONE,
    Permission.RUN_WORK: frozenset({OPERATOR, CUSTOMER}),
    Permission.VIEW_PRICES: EVERYONE,
    Permission.VIEW_CUSTOMERS: EVERYONE,
    Permission.VIEW_BILLING: EVERYONE,
    Permission.VIEW_WEBHOOKS: EVERYONE,
    Permission.VIEW_COMPLIANCE_FILE: frozenset({COMPLIANCE}),
    Permission.LIST_KEYS: EVERYONE,
}


def allowed(actor: Actor, permission: Permission) -> bool:
    return actor.role in GRANTS[permission]


def require(actor: Actor, permission: Permission) -> None:
    """Raise Forbidden unless the actor's role holds `permission`."""
    if not allowed(actor, permission):
        roles = [r.value for r in Role if r in GRANTS[permission]]
        raise Forbidden(f"this action needs the {' or '.join(roles)} role")
