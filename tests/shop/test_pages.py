"""The payment pages end to end with the Flask test client and the sandbox in-process."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest

from checkout_kit.ledger import PaymentStatus

from .conftest import DECLINED, NO_3DS, WITH_3DS, Shop, form_of, path_of


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


def test_a_refused_bank_page_is_a_final_answer_and_another_card_may_pay(
        shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    # Review finding: the refusal said "try again in a minute" while the payment stayed
    # awaiting_3ds and every new card got "in progress" for stale_after (10 minutes).
    monkeypatch.setattr(shop.sandbox.settings, "acs_url", "http://bank.example/acs")
    payment = shop.create()
    response = shop.pay(payment.id, WITH_3DS)
    assert response.status_code == 502 and 'data-result="failure"' in response.text
    assert "с карты не списаны" in response.text and "через минуту" not in response.text
    assert f"/checkout/pay/{payment.id}" in response.text  # "Try another card"
    stored = shop.state.ledger.get(payment.id)
    assert stored.status is PaymentStatus.FAILED
    again = shop.pay(payment.id, NO_3DS)
    assert again.status_code == 303
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.SUCCEEDED


def test_a_relative_acs_url_from_the_gateway_is_refused(
        shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    # Review finding: the page used to join the gateway's AcsUrl to its own URL, so a
    # bare path got past threeds.acs_form's absolute-URL rule in production too.
    service = shop.state.service
    real_pay = service.pay

    def relative_pay(*args: Any, **kwargs: Any) -> Any:
        outcome = real_pay(*args, **kwargs)
        if outcome.challenge is None:
            return outcome
        return replace(outcome, challenge=replace(outcome.challenge, acs_url="/sandbox/acs"))

    monkeypatch.setattr(service, "pay", relative_pay)
    payment = shop.create()
    response = shop.pay(payment.id, WITH_3DS)
    assert response.status_code == 502 and 'data-page="threeds"' not in response.text
    assert "PaReq" not in response.text


def test_the_mounted_sandbox_names_an_absolute_bank_page_on_the_shop_origin(shop: Shop) -> None:
    payment = shop.create()
    response = shop.pay(payment.id, WITH_3DS)
    assert response.status_code == 200
    assert form_of(response.text, "ck-acs")["action"] == "http://localhost/sandbox/acs"


def test_the_mounted_sandbox_order_page_posts_to_an_absolute_bank_page(shop: Shop) -> None:
    # Review finding: the sandbox's own order page, mounted, handed acs_form_html the
    # bare path of its bank page (refused: no bank form at all).
    order = shop.state.client.create_order(Decimal("3"), description="3ds", invoice_id="INV-3")
    path = "/sandbox" + urlsplit(order.url or "").path
    card = {"cardNumber": WITH_3DS, "expDate": "12/35", "cvv": "1"}
    to_bank = shop.client.post(f"{path}/pay", data=card)
    assert to_bank.status_code == 200, to_bank.text
    assert 'action="http://localhost/sandbox/acs"' in to_bank.text


def test_a_shop_host_the_sandbox_does_not_answer_still_reaches_its_api(shop: Shop) -> None:
    # The mounted sandbox's calls take the browser's origin only where the sandbox
    # answers that Host (its pages would be 403 elsewhere): the API calls still work.
    payment = shop.create()
    host = {"Host": "shop.example.com"}
    _, token = shop.form_page(payment.id, **host)
    response = shop.client.post(f"/checkout/pay/{payment.id}/form", headers=host, data={
        "csrf_token": token, "cryptogram": shop.sandbox.make_cryptogram(NO_3DS),
        "name": "IVAN PETROV", "email": "payer@example.com"})
    assert response.status_code == 303, response.text
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.SUCCEEDED
