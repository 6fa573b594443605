"""The state machine: every (old, new) pair, allowed or forbidden."""

from __future__ import annotations

import itertools

import pytest

from checkout_kit.errors import InvalidTransitionError, LedgerError
from checkout_kit.ledger.states import (
    FINAL,
    PENDING,
    TRANSITIONS,
    PaymentStatus,
    can_transition,
    check_transition,
)

# Written out independently of the module's table: a change to either must be deliberate.
ALLOWED = {
    ("created", "processing"), ("created", "cancelled"),
    ("processing", "awaiting_3ds"), ("processing", "authorized"), ("processing", "succeeded"),
    ("processing", "failed"), ("processing", "unknown"), ("processing", "cancelled"),
    ("awaiting_3ds", "processing"), ("awaiting_3ds", "authorized"),
    ("awaiting_3ds", "succeeded"), ("awaiting_3ds", "failed"), ("awaiting_3ds", "cancelled"),
    ("authorized", "succeeded"), ("authorized", "cancelled"), ("authorized", "unknown"),
    ("succeeded", "refunded"),
    ("failed", "processing"), ("failed", "cancelled"), ("failed", "unknown"),
    ("unknown", "awaiting_3ds"), ("unknown", "authorized"), ("unknown", "succeeded"),
    ("unknown", "failed"), ("unknown", "cancelled"),
}
NAMES = [
    "created", "processing", "awaiting_3ds", "authorized", "succeeded", "failed",
    "cancelled", "refunded", "unknown",
]
PAIRS = list(itertools.product(NAMES, NAMES))


def test_the_statuses_are_the_contracts() -> None:
    assert [s.value for s in PaymentStatus] == NAMES
    assert set(TRANSITIONS) == set(PaymentStatus)


@pytest.mark.parametrize(("old", "new"), [p for p in PAIRS if p in ALLOWED])
def test_allowed(old: str, new: str) -> None:
    assert can_transition(old, new)
    assert check_transition(old, new) is PaymentStatus(new)
    assert check_transition(PaymentStatus(old), PaymentStatus(new)) is PaymentStatus(new)


@pytest.mark.parametrize(("old", "new"), [p for p in PAIRS if p not in ALLOWED])
def test_forbidden(old: str, new: str) -> None:
    assert not can_transition(old, new)
    with pytest.raises(InvalidTransitionError) as info:
        check_transition(old, new)
    assert (info.value.old, info.value.new) == (old, new)
    assert isinstance(info.value, LedgerError)
    assert old in info.value.message and new in info.value.message


def test_the_table_is_exactly_the_allowed_pairs() -> None:
    table = {(old.value, new.value) for old, targets in TRANSITIONS.items() for new in targets}
    assert table == ALLOWED


@pytest.mark.parametrize("name", ["", "paid", "SUCCEEDED", "Completed"])
def test_unknown_status_names_are_refused(name: str) -> None:
    assert not can_transition(name, "processing")
    assert not can_transition("created", name)
    with pytest.raises(InvalidTransitionError):
        check_transition("created", name)


def test_no_status_moves_to_itself() -> None:
    for status in PaymentStatus:
        with pytest.raises(InvalidTransitionError):
            check_transition(status, status)


def test_unknown_is_never_retried_blind_nor_failed_by_a_call() -> None:
    # Charging an unknown payment again could charge twice: only a lookup settles it.
    assert not can_transition("unknown", "processing")
    # A lost answer is never recorded as a failure by the call itself.
    assert can_transition("processing", "unknown")


def test_final_and_pending_sets() -> None:
    assert {s.value for s in FINAL} == {"cancelled", "refunded"}
    assert {s.value for s in PENDING} == {"processing", "awaiting_3ds", "unknown"}
    # Every status can reach a final one: nothing is stuck for ever.
    for start in PaymentStatus:
        seen, todo = {start}, [start]
        while todo:
            for nxt in TRANSITIONS[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert seen & FINAL, start
