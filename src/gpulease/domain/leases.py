"""Lease plans and the lease state machine."""

from __future__ import annotations

import enum


class Plan(enum.StrEnum):
    ON_DEMAND = "on_demand"
    RESERVED = "reserved"
    LONG_TERM = "long_term"
    INTERRUPTIBLE = "interruptible"


# Higher number = served first by the queue; interruptible capacity may be taken by anything above it.
PLAN_PRIORITY: dict[Plan, int] = {
    Plan.RESERVED: 3,
    Plan.LONG_TERM: 3,
    Plan.ON_DEMAND: 2,
    Plan.INTERRUPTIBLE: 1,
}

LONG_TERM_MIN_SECONDS = 30 * 86400


class LeaseState(enum.StrEnum):
    QUOTED = "quoted"
    PENDING_COMPLIANCE = "pending_compliance"
    QUEUED = "queued"  # waiting for capacity (start: "asap")
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    SUSPENDED = "suspended"  # compliance hold: GPUs kept, no new work starts
    ENDING = "ending"
    ENDED = "ended"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"
    FAILED = "failed"


S = LeaseState
TRANSITIONS: dict[LeaseState, frozenset[LeaseState]] = {
    S.QUOTED: frozenset({S.PENDING_COMPLIANCE, S.SCHEDULED, S.QUEUED, S.ACTIVE, S.REJECTED, S.CANCELLED}),
    S.PENDING_COMPLIANCE: frozenset({S.SCHEDULED, S.QUEUED, S.ACTIVE, S.REJECTED, S.CANCELLED}),
    S.QUEUED: frozenset({S.SCHEDULED, S.ACTIVE, S.CANCELLED, S.FAILED, S.SUSPENDED}),
    S.SCHEDULED: frozenset({S.ACTIVE, S.CANCELLED, S.SUSPENDED, S.PREEMPTED, S.FAILED}),
    S.ACTIVE: frozenset({S.ENDING, S.ENDED, S.PREEMPTED, S.SUSPENDED, S.FAILED}),
    # A hold must never trap a lease: its window can end, it can be preempted, ended or cancelled while held.
    S.SUSPENDED: frozenset({S.QUEUED, S.SCHEDULED, S.ACTIVE, S.ENDING, S.ENDED, S.CANCELLED, S.PREEMPTED, S.FAILED}),
    S.ENDING: frozenset({S.ENDED, S.FAILED}),
    S.ENDED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.PREEMPTED: frozenset(),
    S.FAILED: frozenset(),
}

TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def reaches_terminal(state: LeaseState) -> bool:
    """Whether some sequence of allowed transitions leads from `state` to a terminal state.

    The clock relies on every state having one: a state with no way out would hold its GPUs for ever.
    """
    seen: set[LeaseState] = set()
    todo = [state]
    while todo:
        s = todo.pop()
        if s in TERMINAL:
            return True
        if s not in seen:
            seen.add(s)
            todo.extend(TRANSITIONS[s])
    return False


# States in which a lease holds (or will hold) its GPUs in the capacity calendar.
HOLDS_CAPACITY = frozenset({S.SCHEDULED, S.ACTIVE, S.SUSPENDED, S.ENDING})


class IllegalTransition(ValueError):
    def __init__(self, current: LeaseState, target: LeaseState) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (terminal state)"
        super().__init__(f"a lease in state {current} cannot become {target}; allowed: {allowed}")
        self.current = current
        self.target = target


def check_transition(current: LeaseState, target: LeaseState) -> None:
    """Raise IllegalTransition unless current -> target is allowed."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)
