"""The payment pages end to end with the Flask test client and the sandbox in-process."""

from __future__ import annotations

from decimal import Decimal

import pytest

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


@pytest.mark.parametrize("acs_url", ["http://bank.example/acs", "javascript:alert(1)",
                                     "ftp://bank.example/acs", "http://10.0.0.1/acs"])
def test_the_three_ds_page_refuses_a_bank_page_that_is_not_https(
        shop: Shop, monkeypatch: pytest.MonkeyPatch, acs_url: str) -> None:
    # The gateway's AcsUrl goes through the same rule as threeds.acs_form_html: https,
    # http only on loopback. The payer's browser never gets a form to post elsewhere.
    monkeypatch.setattr(shop.sandbox.settings, "acs_url", acs_url)
    payment = shop.create()
    response = shop.pay(payment.id, WITH_3DS)
    assert response.status_code == 502 and 'data-page="threeds"' not in response.text
    assert "PaReq" not in response.text and acs_url.split(":")[1] not in response.text
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.AWAITING_3DS
