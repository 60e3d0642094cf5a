"""The stored records the use cases hand to the doors (leases, customers, nodes, …), named here so that the API
and the dashboard can type what they render without importing the store. They read them; they never query."""

from __future__ import annotations

from gpulease.store.models import (
    Alert,
    Allocation,
    Customer,
    Lease,
    LeaseEvent,
    ListVersion,
    Node,
    ReviewDecision,
    ReviewItem,
    Run,
)

__all__ = [
    "Alert",
    "Allocation",
    "Customer",
    "Lease",
    "LeaseEvent",
    "ListVersion",
    "Node",
    "ReviewDecision",
    "ReviewItem",
    "Run",
]
