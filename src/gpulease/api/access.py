"""Which permission each API route needs: one table, enforced at the door before the request is read, and the
README's roles table is generated from it (`python -m gpulease.api.access`; `tests/test_roles.py` checks both).

The use cases check the same permissions again (services/permissions.py holds which role has which); this
table only makes sure that no route is left unclassified and that a role without the permission is answered
403 whatever it sent. Tenancy (a customer acts on its own tenant only) is the use cases' business.
"""

from __future__ import annotations

import enum

from fastapi import Request

from gpulease.api.deps import actor
from gpulease.services.context import Role
from gpulease.services.permissions import GRANTS, Permission, require


class Open(enum.StrEnum):
    PUBLIC = "no key"
    SIGNED_IN = "any key"


Access = Permission | Open
P = Permission
API = "/api/v1"

ROUTES: dict[tuple[str, str], Access] = {
    ("GET", "/healthz"): Open.PUBLIC,
    ("GET", "/metrics"): P.VIEW_FLEET,
    # inventory and prices
    ("GET", f"{API}/gpu-models"): Open.PUBLIC,
    ("POST", f"{API}/nodes"): P.MANAGE_INVENTORY,
    ("GET", f"{API}/nodes"): P.VIEW_INVENTORY,
    ("GET", f"{API}/nodes/{{node_id}}"): P.VIEW_INVENTORY,
    ("POST", f"{API}/nodes/{{node_id}}/drain"): P.MANAGE_INVENTORY,
    ("PUT", f"{API}/nodes/{{node_id}}/state"): P.MANAGE_INVENTORY,
    ("DELETE", f"{API}/nodes/{{node_id}}"): P.MANAGE_INVENTORY,
    ("GET", f"{API}/calendar"): P.VIEW_INVENTORY,
    ("GET", f"{API}/telemetry"): Open.SIGNED_IN,
    ("GET", f"{API}/prices"): P.VIEW_PRICES,
    ("PUT", f"{API}/prices"): P.SET_PRICES,
    ("POST", f"{API}/quotes"): P.VIEW_PRICES,
    ("GET", f"{API}/availability"): P.VIEW_PRICES,
    # customers
    ("POST", f"{API}/customers"): P.ONBOARD_CUSTOMER,
    ("GET", f"{API}/customers"): P.VIEW_CUSTOMERS,
    ("GET", f"{API}/customers/{{customer_id}}"): P.VIEW_CUSTOMERS,
    ("PATCH", f"{API}/customers/{{customer_id}}"): P.UPDATE_PROFILE,
    ("GET", f"{API}/customers/{{customer_id}}/screening"): P.VIEW_CUSTOMERS,
    ("GET", f"{API}/customers/{{customer_id}}/compliance-file"): P.VIEW_COMPLIANCE_FILE,
    # leases and runs
    ("POST", f"{API}/leases"): P.BOOK_LEASE,
    ("GET", f"{API}/leases"): P.VIEW_LEASES,
    ("GET", f"{API}/leases/{{lease_id}}"): P.VIEW_LEASES,
    ("GET", f"{API}/leases/{{lease_id}}/events"): P.VIEW_LEASES,
    ("GET", f"{API}/leases/{{lease_id}}/gpu-usage"): P.VIEW_LEASES,
    ("POST", f"{API}/leases/{{lease_id}}/end"): P.CHANGE_LEASE,
    ("POST", f"{API}/leases/{{lease_id}}/cancel"): P.CHANGE_LEASE,
    ("POST", f"{API}/leases/{{lease_id}}/extend"): P.CHANGE_LEASE,
    ("POST", f"{API}/leases/{{lease_id}}/preempt"): P.PREEMPT_LEASE,
    ("POST", f"{API}/leases/{{lease_id}}/runs"): P.RUN_WORK,
    ("GET", f"{API}/leases/{{lease_id}}/runs"): P.VIEW_LEASES,
    ("GET", f"{API}/leases/{{lease_id}}/runs/{{run_id}}"): P.VIEW_LEASES,
    ("GET", f"{API}/leases/{{lease_id}}/runs/{{run_id}}/logs"): P.VIEW_LEASES,
    # billing, spend and limits
    ("GET", f"{API}/customers/{{customer_id}}/invoices"): P.VIEW_BILLING,
    ("GET", f"{API}/customers/{{customer_id}}/usage.csv"): P.VIEW_BILLING,
    ("GET", f"{API}/customers/{{customer_id}}/spend"): P.VIEW_BILLING,
    ("GET", f"{API}/customers/{{customer_id}}/limits"): P.VIEW_BILLING,
    ("PUT", f"{API}/customers/{{customer_id}}/limits"): P.SET_LIMITS,
    ("GET", f"{API}/billing/verify"): P.VERIFY_RECORDS,
    # compliance
    ("POST", f"{API}/screen"): P.SCREEN_NAMES,
    ("GET", f"{API}/reviews"): P.VIEW_REVIEWS,
    ("GET", f"{API}/reviews/{{review_id}}"): P.VIEW_REVIEWS,
    ("POST", f"{API}/reviews/{{review_id}}/decision"): P.DECIDE_REVIEWS,
    ("GET", f"{API}/alerts"): P.VIEW_ALERTS,
    ("POST", f"{API}/alerts/{{alert_id}}/ack"): P.VIEW_ALERTS,
    ("GET", f"{API}/lists"): P.VIEW_LISTS,
    ("GET", f"{API}/audit/verify"): P.VERIFY_RECORDS,
    ("GET", f"{API}/audit/checkpoint"): P.VERIFY_RECORDS,
    # self-service keys and webhooks
    ("POST", f"{API}/keys"): P.MANAGE_OWN_KEYS,
    ("GET", f"{API}/keys"): P.LIST_KEYS,
    ("DELETE", f"{API}/keys/{{key_id}}"): P.MANAGE_OWN_KEYS,
    ("POST", f"{API}/keys/{{key_id}}/rotate"): P.MANAGE_OWN_KEYS,
    ("PATCH", f"{API}/keys/{{key_id}}"): P.MANAGE_OWN_KEYS,
    ("GET", f"{API}/webhook-events"): P.VIEW_WEBHOOKS,
    ("POST", f"{API}/webhooks"): P.MANAGE_WEBHOOKS,
    ("GET", f"{API}/webhooks"): P.VIEW_WEBHOOKS,
    ("GET", f"{API}/webhooks/{{webhook_id}}"): P.VIEW_WEBHOOKS,
    ("DELETE", f"{API}/webhooks/{{webhook_id}}"): P.MANAGE_WEBHOOKS,
    ("POST", f"{API}/webhooks/{{webhook_id}}/test"): P.MANAGE_WEBHOOKS,
    ("GET", f"{API}/webhooks/{{webhook_id}}/deliveries"): P.VIEW_WEBHOOKS,
    ("GET", f"{API}/notifications"): P.VIEW_WEBHOOKS,
}


def roles_of(access: Access) -> frozenset[Role]:
    if isinstance(access, Open):
        return frozenset(Role)
    return GRANTS[access]


async def check(request: Request) -> None:
    """The dependency of every router under /api/v1: the caller's role must hold the route's permission (401
    without a key). Its only parameter is the request: FastAPI solves a dependency's own dependencies on every
    request."""
    route = request.scope.get("route")
    path = API + str(getattr(route, "path", ""))  # the routers' own paths: they are all included under API
    access = ROUTES.get((request.method.upper(), path))
    if access is None:  # a route nobody classified is closed, not open (tests/test_roles.py catches it first)
        raise RuntimeError(f"route {request.method} {path} is not in gpulease.api.access.ROUTES")
    if access is Open.PUBLIC:
        return
    who = await actor(request)  # remembered on the request: the route's own ActorDep reads it there
    if isinstance(access, Permission):
        require(who, access)


def needs_key(method: str, path: str) -> bool:
    """Whether the route `method path` (its full path, as in ROUTES) is called with a key: what the OpenAPI document
    says of it (`security`)."""
    access = ROUTES.get((method.upper(), path))
    return access is not None and access is not Open.PUBLIC


def markdown_table() -> str:
    """The README's roles table: every route, the permission it needs and which role holds it."""
    lines = [
        "| route | needs | operator | compliance | customer |",
        "|---|---|:-:|:-:|:-:|",
    ]
    for (method, path), access in ROUTES.items():
        roles = roles_of(access)
        marks = []
        for role in (Role.OPERATOR, Role.COMPLIANCE, Role.CUSTOMER):
            mark = "yes" if role in roles else "—"
            if mark == "yes" and role is Role.CUSTOMER and access is not Open.PUBLIC:
                mark = "own"
            marks.append(mark)
        lines.append(f"| `{method} {path}` | {access.value} | {' | '.join(marks)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
