"""The lease state machine: no state traps a lease; which actions a lease takes, and why not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpulease.domain.leases import (
    TERMINAL,
    IllegalTransition,
    LeaseAction,
    LeaseFacts,
    LeaseState,
    Plan,
    check_transition,
    offered_actions,
    reaches_terminal,
    refusal,
)


@pytest.mark.parametrize("state", list(LeaseState))
def test_every_state_has_a_path_to_a_terminal_state(state: LeaseState) -> None:
    assert reaches_terminal(state)


@pytest.mark.parametrize("target", [LeaseState.ENDING, LeaseState.CANCELLED, LeaseState.PREEMPTED, LeaseState.FAILED])
def test_a_held_lease_can_still_be_closed(target: LeaseState) -> None:
    check_transition(LeaseState.SUSPENDED, target)  # raises if a compliance hold could trap the lease


def test_terminal_states_allow_nothing() -> None:
    for state in TERMINAL:
        with pytest.raises(IllegalTransition):
            check_transition(state, LeaseState.ACTIVE)


# ------------------------------------------------------------------------------------- actions on a lease


def _facts(state: LeaseState, **kw: object) -> LeaseFacts:
    base: dict[str, object] = {
        "id": 7,
        "state": state,
        "plan": Plan.ON_DEMAND,
        "started": state in (LeaseState.ACTIVE, LeaseState.ENDING),
        "open_ended": False,
        "notice_given": False,
    }
    return LeaseFacts(**{**base, **kw})  # type: ignore[arg-type]


def test_what_a_lease_offers_follows_its_state() -> None:
    A = LeaseAction
    assert offered_actions(_facts(LeaseState.SCHEDULED)) == {A.CANCEL, A.EXTEND}
    assert offered_actions(_facts(LeaseState.ACTIVE)) == {A.END, A.EXTEND}
    assert offered_actions(_facts(LeaseState.ACTIVE, open_ended=True)) == {A.END}
    assert offered_actions(_facts(LeaseState.ACTIVE, plan=Plan.INTERRUPTIBLE)) == {A.END, A.EXTEND, A.PREEMPT}
    assert offered_actions(_facts(LeaseState.ACTIVE, notice_given=True, plan=Plan.INTERRUPTIBLE)) >= {A.END}
    assert A.EXTEND not in offered_actions(_facts(LeaseState.ACTIVE, notice_given=True))
    assert offered_actions(_facts(LeaseState.SUSPENDED, started=True)) == {A.END}
    assert offered_actions(_facts(LeaseState.SUSPENDED, started=False)) == {A.CANCEL}
    for terminal in TERMINAL:
        assert offered_actions(_facts(terminal)) == frozenset()


def test_refusals_say_why_and_ending_a_lease_not_started_is_cancelling_it() -> None:
    assert refusal(LeaseAction.END, _facts(LeaseState.ENDED)) == "lease 7 is ended and cannot be ended"
    assert refusal(LeaseAction.CANCEL, _facts(LeaseState.ACTIVE)) == (
        "lease 7 is already active; end it instead of cancelling"
    )
    assert refusal(LeaseAction.END, _facts(LeaseState.SCHEDULED)) is None  # it cancels
    assert refusal(LeaseAction.END, _facts(LeaseState.CANCELLED)) == "lease 7 is cancelled and cannot be ended"
    assert "open-ended" in (refusal(LeaseAction.EXTEND, _facts(LeaseState.ACTIVE, open_ended=True)) or "")
    assert "only interruptible" in (refusal(LeaseAction.PREEMPT, _facts(LeaseState.ACTIVE)) or "")


@given(st.sampled_from(list(LeaseState)), st.booleans(), st.booleans(), st.booleans(), st.sampled_from(list(Plan)))
def test_an_offered_action_is_never_refused(
    state: LeaseState, started: bool, open_ended: bool, notice: bool, plan: Plan
) -> None:
    f = LeaseFacts(7, state, plan, started, open_ended, notice)
    for action in offered_actions(f):
        assert refusal(action, f) is None
