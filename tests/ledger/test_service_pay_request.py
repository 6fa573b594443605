"""What ``PaymentService.pay`` sends and keeps of the payer: the ledger's own fields in
the charge, the payer's e-mail kept once (issue 14 mutation survivors of ``pay``)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from checkout_kit.ledger import PaymentService

from .conftest import Recorder

NO_3DS = "4000 0000 0000 3055"
IP = "203.0.113.7"
CHARGE = "/payments/cards/charge"


@pytest.mark.parametrize("currency", ["RUB", "USD"])
def test_the_charge_carries_the_ledgers_currency_description_and_the_payers_name(
        service: PaymentService, card: Callable[[str], str], recorder: Recorder,
        currency: str) -> None:
    payment = service.create_payment(invoice_id="inv-1", amount="12.00", currency=currency,
                                     description="Order inv-1", account_id="user-1")
    assert service.pay(payment.id, cryptogram=card(NO_3DS), ip_address=IP,
                       name="IVAN PETROV").kind == "succeeded"
    (body,) = [json.loads(b) for p, b in zip(recorder.paths, recorder.bodies, strict=True)
               if p == CHARGE]
    assert (body["Amount"], body["Currency"], body["Description"], body["Name"],
            body["InvoiceId"], body["AccountId"]) == (
        12, currency, "Order inv-1", "IVAN PETROV", "inv-1", "user-1")


def test_the_payers_email_is_kept_when_the_payment_had_none(
        service: PaymentService, card: Callable[[str], str]) -> None:
    payment = service.create_payment(invoice_id="inv-1", amount="12.00", currency="RUB",
                                     description="Order inv-1")
    service.pay(payment.id, cryptogram=card(NO_3DS), ip_address=IP, email="payer@example.com")
    assert service.get(payment.id).email == "payer@example.com"


def test_the_payers_email_never_replaces_the_shops(
        service: PaymentService, card: Callable[[str], str]) -> None:
    payment = service.create_payment(invoice_id="inv-1", amount="12.00", currency="RUB",
                                     description="Order inv-1", email="shop@example.com")
    service.pay(payment.id, cryptogram=card(NO_3DS), ip_address=IP, email="other@example.com")
    assert service.get(payment.id).email == "shop@example.com"
