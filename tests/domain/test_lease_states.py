"""The lease state machine: no state traps a lease."""

from __future__ import annotations

import pytest

from gpulease.domain.leases import TERMINAL, IllegalTransition, LeaseState, check_transition, reaches_terminal


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
