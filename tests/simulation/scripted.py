"""Helpers of the scripted-world tests (test_regressions.py, test_attack2.py; the
``world`` fixture is in conftest.py): invoice inv-1 of account acc-1, paid through
instance A's form or through the payer's widget, and the notifications in the network.
"""

from __future__ import annotations

from typing import Any

from .world import Delivery, World

NO_3DS = "4000 0000 0000 3055"
DECLINED = "4000 0566 5566 5556"  # no 3-D Secure, declined 5051


def deliver_all(world: World) -> None:
    """Every notification not taken yet, to instance A, in the order sent."""
    for delivery in world.network:
        if not delivery.taken:
            world.deliver(world.instances[0], delivery)


def pending(world: World) -> list[Delivery]:
    """The notifications the shop has not taken yet, in the order sent."""
    return [d for d in world.network if not d.taken]


def create(world: World, scheme: str = "charge", amount: str = "100.00") -> str:
    """A payment for invoice inv-1, created through instance A; its id."""
    a = world.instances[0]
    with a.context():
        payment = a.kit.create_payment(invoice_id="inv-1", amount=amount, scheme=scheme,
                                       description="Order", account_id="acc-1")
    return payment.id


def pay_form(world: World, payment_id: str, card: str = NO_3DS) -> str:
    """The payer pays through instance A's card form; the outcome's kind."""
    a = world.instances[0]
    with a.context():
        outcome = a.service.pay(payment_id, cryptogram=world.sandbox.make_cryptogram(card),
                                ip_address="203.0.113.7")
    return outcome.kind


def paid(world: World, amount: str = "100.00") -> str:
    """A one-stage payment paid through instance A; its notifications delivered."""
    payment_id = create(world, "charge", amount)
    assert pay_form(world, payment_id) == "succeeded"
    deliver_all(world)
    return payment_id


def authorized(world: World, amount: str = "100.00") -> tuple[str, int]:
    """A two-stage payment held through instance A, its Pay notification delivered:
    (payment id, the hold's transaction)."""
    payment_id = create(world, "auth", amount)
    assert pay_form(world, payment_id) == "authorized"
    deliver_all(world)
    tx = world.instances[0].state.ledger.get(payment_id).gateway_transaction_id
    assert tx is not None
    return payment_id, tx


def widget(world: World, operation: str, amount: str, card: str = NO_3DS) -> dict[str, Any]:
    """The payer's browser pays invoice inv-1 through the widget (``charge`` or
    ``auth``; another tab), without the shop; the gateway's answer."""
    return world.browser.post(f"/payments/cards/{operation}", json={
        "PublicId": world.sandbox.public_id, "Amount": amount, "Currency": "RUB",
        "InvoiceId": "inv-1", "AccountId": "acc-1", "IpAddress": "203.0.113.9",
        "CardCryptogramPacket": world.sandbox.make_cryptogram(card)}).json()


def widget_tx(world: World, operation: str, amount: str, card: str = NO_3DS) -> int:
    """:func:`widget`, which must have made a transaction; that transaction."""
    return int(widget(world, operation, amount, card)["Model"]["TransactionId"])
