"""Defects found by a second attack on the ledger's money flows (review-attack), each
reproduced by a scripted world (only the faults forced here). Every test here fails on
the code it was written against: it states what must hold.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from checkout_kit.errors import UnknownOutcomeError

from .scripted import (
    DECLINED,
    authorized,
    create,
    deliver_all,
    pay_form,
    pending,
    widget,
    widget_tx,
)
from .world import World


def _confirm_lost(world: World, payment_id: str) -> None:
    """The shop captures the hold; the gateway does, and every answer is lost."""
    a = world.instances[0]
    a.transport.forced = ["lost_after"] * 3
    with a.context(), pytest.raises(UnknownOutcomeError):
        a.kit.confirm(payment_id)
    assert a.state.ledger.get(payment_id).status.value == "unknown"


# A1: a payment made `unknown` by a confirm (or void) whose answer was lost still has
# its own transaction, a hold the gateway took. The inbox treats `unknown` as "not
# settled yet", as if a charge's answer were lost: a Fail or Pay of another tab's
# widget operation on the same invoice then replaces the payment's transaction.


def test_fail_of_another_tab_after_a_lost_confirm_does_not_fail_a_captured_payment(
        world: World) -> None:
    a = world.instances[0]
    payment_id, tx1 = authorized(world)
    answer = widget(world, "auth", "100.00", card=DECLINED)  # the payer's other tab
    assert answer["Success"] is False
    _confirm_lost(world, payment_id)  # tx1 Completed at the gateway
    deliver_all(world)  # the other tab's Fail (and Confirm of tx1, if any)
    with a.context():
        a.kit.reconcile()
    deliver_all(world)
    payment = a.state.ledger.get(payment_id)
    assert str(world.gateway_tx(tx1).status) == "Completed"
    assert (payment.status.value, payment.gateway_transaction_id) == ("succeeded", tx1)


def test_pay_of_another_tab_after_a_lost_confirm_is_a_duplicate(world: World) -> None:
    a = world.instances[0]
    payment_id, tx1 = authorized(world)
    tx2 = widget_tx(world, "auth", "100.00")  # the payer's other tab holds again
    _confirm_lost(world, payment_id)  # tx1 Completed at the gateway
    deliver_all(world)  # Pay of tx2
    with a.context():
        a.kit.reconcile()
    deliver_all(world)
    ledger = a.state.ledger
    payment = ledger.get(payment_id)
    assert str(world.gateway_tx(tx1).status) == "Completed"
    assert (payment.status.value, payment.gateway_transaction_id) == ("succeeded", tx1)
    assert [(p.kind.value, p.gateway_transaction_id) for p in ledger.problems(payment_id)] == [
        ("duplicate", tx2)]


# A2: a charge whose answer was lost (`unknown`, no transaction known) and a Fail of
# another tab's declined widget charge on the same invoice, delivered before the Pay of
# ours (out of order, or ours answered an error the first time). The inbox takes the
# Fail for our charge's: the payment is `failed`, our open charge attempt is marked
# `reconciled`, and the payer is shown "declined" for money taken, and may pay again.
# refresh() has the rule for this (a decline found by invoice while our charge is open
# answers only for itself, _money_on_invoice); the inbox's _fail does not.


def test_fail_of_another_tab_does_not_settle_a_charge_whose_answer_was_lost(
        world: World) -> None:
    a = world.instances[0]
    payment_id = create(world)
    a.transport.forced = ["lost_after"] * 3
    assert pay_form(world, payment_id) == "unknown"  # charged at the gateway
    (ours,) = world.gateway_payments("inv-1")
    assert str(ours.status) == "Completed"
    assert widget(world, "charge", "100.00", card=DECLINED)["Success"] is False
    pay, fail = pending(world)
    assert (pay.kind, fail.kind) == ("pay", "fail")
    world.deliver(a, fail)  # out of order: the other tab's Fail first
    payment = a.state.ledger.get(payment_id)
    # The gateway holds a success for this payment: it is not shown as declined.
    assert payment.status.value != "failed"


class _Before:
    """Instance A's way to the gateway, which runs ``meanwhile`` once, just before the
    first request to ``path`` reaches the gateway: A's worker froze past stale_after
    between its claim and its write (a paused VM), while the world went on."""

    def __init__(self, world: World, path: str, meanwhile) -> None:
        self.transport = world.instances[0].transport
        self.inner = self.transport.inner
        self.path = path
        self.meanwhile = meanwhile
        self.transport.inner = self

    def handle_request(self, request):
        if self.meanwhile is not None and request.url.path == self.path:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def _stale(world: World) -> None:
    world.advance(timedelta(seconds=world.instances[0].service.stale_after.total_seconds() + 60))


# A3: the same late success, when the shop cancelled the payment in between (the
# lookup had failed it: the gateway had nothing yet). The ledger records the money as
# `paid_after_cancel`, then pay() raises InvalidTransitionError('cancelled',
# 'processing') from _stored_outcome: the payer whose card was just charged gets the
# shop's 409 "conflict" page, and a caller of the service an exception, for a success.


def test_late_success_after_takeover_and_cancel_is_not_an_error(world: World) -> None:
    a, b = world.instances
    payment_id = create(world)

    def meanwhile() -> None:
        _stale(world)
        with b.context():
            assert b.kit.refresh(payment_id).status == "failed"  # nothing at the gateway
            b.service.cancel(payment_id)  # the shop gives up on the order

    _Before(world, "/payments/cards/charge", meanwhile)
    kind = pay_form(world, payment_id)  # raises InvalidTransitionError today
    problems = a.state.ledger.problems(payment_id)
    assert [p.kind.value for p in problems] == ["paid_after_cancel"]
    assert kind != "declined"


def test_fail_of_another_tab_during_our_charge_is_not_our_decline(world: World) -> None:
    """A2, while our charge is in flight: the other tab's Fail fails the `processing`
    payment (with the other tab's transaction); our charge then goes through but its
    answer is lost, and since the payment is no longer `processing` the `unknown` is
    not recorded: pay() tells the payer "declined" for a charge the gateway made."""
    a = world.instances[0]
    payment_id = create(world)

    def meanwhile() -> None:
        assert widget(world, "charge", "100.00", card=DECLINED)["Success"] is False
        (fail,) = pending(world)
        world.deliver(a, fail)

    _Before(world, "/payments/cards/charge", meanwhile)
    a.transport.forced = ["lost_after"] * 3
    kind = pay_form(world, payment_id)
    charged = [tx for tx in world.gateway_payments("inv-1") if str(tx.status) == "Completed"]
    assert len(charged) == 1  # our charge went through
    assert kind != "declined"


# A4: a one-stage payment declined (its transaction is the decline), then cancelled by
# the shop; the payer's other tab then pays through the widget. Nobody had paid the
# payment: this is `paid_after_cancel` (docs/ledger.md), but record_extra_charge sees
# a cancelled payment with a transaction of its own and calls the charge a `duplicate`
# "of" the declined transaction (audit outcome payment_duplicate, the shop's
# payment_duplicate signal, detail "the payment was paid by <the decline>").


def test_charge_after_a_declined_payment_was_cancelled_is_paid_after_cancel(
        world: World) -> None:
    a = world.instances[0]
    payment_id = create(world)
    assert pay_form(world, payment_id, card=DECLINED) == "declined"
    deliver_all(world)  # its Fail
    with a.context():
        a.state.service.cancel(payment_id)
    tx = widget_tx(world, "charge", "100.00")
    deliver_all(world)  # the Pay of the other tab's charge
    problems = a.state.ledger.problems(payment_id)
    assert [(p.kind.value, p.gateway_transaction_id) for p in problems] == [
        ("paid_after_cancel", tx)]
