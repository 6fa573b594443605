"""The payment pages end to end with the Flask test client and the sandbox in-process."""

from __future__ import annotations

from decimal import Decimal

from checkout_kit.ledger import PaymentStatus

from .conftest import DECLINED, NO_3DS, WITH_3DS, Shop, path_of


def test_form_mode_charge_without_3ds(shop: Shop) -> None:
    payment = shop.create(amount="250.50")
    form = shop.client.get(f"/checkout/pay/{payment.id}/form")
    assert form.text.count("<h1") == 1  # axe: page-has-heading-one
    response = shop.pay(payment.id, NO_3DS)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/checkout/payments/{payment.id}")
    page = shop.client.get(path_of(response.headers["Location"]))
    assert page.status_code == 200 and 'data-result="success"' in page.text
    stored = shop.state.ledger.get(payment.id)
    assert stored.status is PaymentStatus.SUCCEEDED
    tx = shop.sandbox.state.transactions[stored.gateway_transaction_id]
    assert tx.amount == Decimal("250.50") and tx.invoice_id == "order-1"


def test_form_mode_3ds_confirmed_at_the_bank(shop: Shop) -> None:
    payment = shop.create()
    response = shop.pay(payment.id, WITH_3DS)
    assert response.status_code == 200 and 'data-page="threeds"' in response.text
    assert response.text.count("<h1") == 1  # axe: page-has-heading-one
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.AWAITING_3DS
    term_url, fields = shop.bank(response.text)
    # The bank's POST is cross-site: no session cookie comes with it.
    shop.client.delete_cookie("session")
    back = shop.client.post(path_of(term_url), data=fields)
    assert back.status_code == 303
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.SUCCEEDED
    page = shop.client.get(path_of(back.headers["Location"]))
    assert 'data-result="success"' in page.text


def test_decline_returns_to_the_form_with_the_cardholder_message(shop: Shop) -> None:
    payment = shop.create()
    response = shop.pay(payment.id, DECLINED)
    assert response.status_code == 200
    assert 'data-page="form"' in response.text and 'id="ck-message"' in response.text
    stored = shop.state.ledger.get(payment.id)
    assert stored.status is PaymentStatus.FAILED and stored.reason_code == 5051
    assert stored.cardholder_message and stored.cardholder_message in response.text
    # The payer may try again with another card.
    again = shop.pay(payment.id, NO_3DS)
    assert again.status_code == 303
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.SUCCEEDED
