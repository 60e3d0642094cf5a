"""Lease plans and the lease state machine."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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


class LeaseAction(enum.StrEnum):
    """What a person can do to an existing lease."""

    END = "end"
    CANCEL = "cancel"
    EXTEND = "extend"
    PREEMPT = "preempt"


@dataclass(frozen=True, slots=True)
class LeaseFacts:
    """What decides which actions a lease takes: its state and a few facts about it."""

    id: int
    state: LeaseState
    plan: Plan
    started: bool  # it has been active (activated_at is set)
    open_ended: bool  # no end: it runs until it is ended
    notice_given: bool  # an interruptible lease told its GPUs will be taken back


def refusal(action: LeaseAction, lease: LeaseFacts) -> str | None:
    """Why `lease` cannot take `action` now, as a sentence; None when it can.

    Ending a lease that has not started cancels it, so the same rules apply to both then.
    """
    st, lid = lease.state, lease.id
    if action is LeaseAction.END and (st in (S.SCHEDULED, S.QUEUED) or (st is S.SUSPENDED and not lease.started)):
        action = LeaseAction.CANCEL
    if action is LeaseAction.CANCEL:
        if st in (S.ACTIVE, S.ENDING):
            return f"lease {lid} is already active; end it instead of cancelling"
        if st not in (S.SCHEDULED, S.QUEUED, S.SUSPENDED, S.QUOTED, S.PENDING_COMPLIANCE):
            return f"lease {lid} is {st} and cannot be cancelled"
        if st is S.SUSPENDED and lease.started:
            return f"lease {lid} has started; end it instead of cancelling"
    elif action is LeaseAction.END:
        if st not in (S.ACTIVE, S.SUSPENDED, S.ENDING):
            return f"lease {lid} is {st} and cannot be ended"
    elif action is LeaseAction.EXTEND:
        if st not in (S.SCHEDULED, S.ACTIVE):
            return f"lease {lid} is {st}; only scheduled or active leases can be extended"
        if lease.open_ended:
            return f"lease {lid} is open-ended; it runs until it is ended"
        if lease.notice_given:
            return f"lease {lid} has been given notice of preemption"
    elif action is LeaseAction.PREEMPT:
        if lease.plan is not Plan.INTERRUPTIBLE:
            return f"lease {lid} is {lease.plan}; only interruptible leases can be preempted"
        if st not in (S.ACTIVE, S.SCHEDULED):
            return f"lease {lid} is {st} and cannot be preempted"
    return None


def offered_actions(lease: LeaseFacts) -> frozenset[LeaseAction]:
    """The actions to offer on a lease: those it can take, with "end" only once it has started (before that,
    ending it is cancelling it, offered as such)."""
    return frozenset(
        a for a in LeaseAction if refusal(a, lease) is None and (a is not LeaseAction.END or lease.started)
    )
