"""Bad input gets a 4xx with a message, never a 500, and leaves the ledger as it was."""

from __future__ import annotations

import time
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from checkout_kit.ledger import PaymentStatus

from .conftest import NO_3DS, WITH_3DS, Shop, path_of


def snapshot(shop: Shop, payment_id: str) -> tuple[Any, ...]:
    ledger = shop.state.ledger
    return (ledger.get(payment_id), ledger.history(payment_id), ledger.attempts(payment_id),
            len(shop.sandbox.state.transactions))


def message_of(html: str) -> str:
    assert 'role="alert"' in html, html
    return html.split('role="alert"', 1)[1].split(">", 1)[1].split("<", 1)[0].strip()


def post_form(shop: Shop, payment_id: str, **data: str) -> Any:
    return shop.client.post(f"/checkout/pay/{payment_id}/form", data=data)


def test_a_tampered_amount_is_refused(shop: Shop) -> None:
    payment = shop.create(amount="100.00")
    before = snapshot(shop, payment.id)
    response = shop.pay(payment.id, NO_3DS, amount="1.00")
    assert response.status_code == 400 and message_of(response.text)
    assert snapshot(shop, payment.id) == before


def test_card_data_posted_by_mistake_is_refused_and_not_echoed(shop: Shop) -> None:
    payment = shop.create()
    before = snapshot(shop, payment.id)
    response = shop.pay(payment.id, NO_3DS, cardNumber=NO_3DS, cvv="123")
    assert response.status_code == 400
    assert NO_3DS not in response.text
    assert snapshot(shop, payment.id) == before


@pytest.mark.parametrize("cryptogram", ["", "   ", "not a packet", "03" + "A" * 20])
def test_a_missing_or_malformed_cryptogram_is_refused(shop: Shop, cryptogram: str) -> None:
    payment = shop.create()
    _, token = shop.form_page(payment.id)
    before = snapshot(shop, payment.id)
    response = post_form(shop, payment.id, csrf_token=token, cryptogram=cryptogram)
    assert response.status_code == 400 and message_of(response.text)
    assert snapshot(shop, payment.id) == before


def test_a_wrong_csrf_token_is_refused(shop: Shop) -> None:
    payment = shop.create()
    shop.form_page(payment.id)
    before = snapshot(shop, payment.id)
    packet = shop.sandbox.make_cryptogram(NO_3DS)
    for token in ("", "garbage", "20991231000000##" + "0" * 40):
        response = post_form(shop, payment.id, csrf_token=token, cryptogram=packet)
        assert response.status_code == 403 and message_of(response.text)
    assert snapshot(shop, payment.id) == before


def test_a_csrf_token_of_another_payment_is_refused(shop: Shop) -> None:
    first, second = shop.create("order-1"), shop.create("order-2")
    _, token = shop.form_page(first.id)
    before = snapshot(shop, second.id)
    response = post_form(shop, second.id, csrf_token=token,
                         cryptogram=shop.sandbox.make_cryptogram(NO_3DS))
    assert response.status_code == 403
    assert snapshot(shop, second.id) == before


def test_a_post_without_the_session_cookie_is_refused(shop: Shop) -> None:
    payment = shop.create()
    _, token = shop.form_page(payment.id)
    shop.client.delete_cookie("session")
    response = post_form(shop, payment.id, csrf_token=token,
                         cryptogram=shop.sandbox.make_cryptogram(NO_3DS))
    assert response.status_code == 403


@pytest.mark.parametrize("path", [
    "/checkout/pay/unknown-id", "/checkout/pay/unknown-id/form", "/checkout/pay/unknown-id/widget",
    "/checkout/payments/unknown-id", "/checkout/pay/bad%20id!", "/checkout/payments/" + "x" * 200,
    "/checkout/pay/unknown-id/other-mode",
])
def test_an_unknown_payment_id_is_a_404_page(shop: Shop, path: str) -> None:
    response = shop.client.get(path)
    assert response.status_code == 404


def test_posting_to_an_unknown_payment_is_a_404(shop: Shop) -> None:
    response = post_form(shop, "unknown-id", cryptogram="x")
    assert response.status_code == 404 and message_of(response.text)


def three_ds(shop: Shop, invoice: str) -> tuple[Any, str, dict[str, str]]:
    payment = shop.create(invoice)
    response = shop.pay(payment.id, WITH_3DS)
    term_url, fields = shop.bank(response.text)
    return payment, path_of(term_url), fields


def test_a_forged_md_is_refused(shop: Shop) -> None:
    payment, term, fields = three_ds(shop, "order-1")
    before = snapshot(shop, payment.id)
    for md in ("1", "not-a-number", str(int(fields["MD"]) + 1)):
        response = shop.client.post(term, data={**fields, "MD": md})
        assert response.status_code == 400 and message_of(response.text)
    assert snapshot(shop, payment.id) == before
    assert before[0].status is PaymentStatus.AWAITING_3DS


def test_a_swapped_md_is_refused(shop: Shop) -> None:
    first, first_term, first_fields = three_ds(shop, "order-1")
    second, _, second_fields = three_ds(shop, "order-2")
    before = (snapshot(shop, first.id), snapshot(shop, second.id))
    response = shop.client.post(first_term, data=second_fields)
    assert response.status_code == 400
    assert (snapshot(shop, first.id), snapshot(shop, second.id)) == before
    # The right pair still works afterwards.
    assert shop.client.post(first_term, data=first_fields).status_code == 303


def test_a_replayed_pares_shows_the_stored_result(shop: Shop) -> None:
    payment, term, fields = three_ds(shop, "order-1")
    first = shop.client.post(term, data=fields)
    after_first = snapshot(shop, payment.id)
    second = shop.client.post(term, data=fields)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert snapshot(shop, payment.id) == after_first
    post3ds = [a for a in shop.state.ledger.attempts(payment.id) if a.operation == "post3ds"]
    assert len(post3ds) == 1


def test_an_expired_term_url_is_refused(shop: Shop) -> None:
    payment, _, fields = three_ds(shop, "order-1")

    class Past(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - shop.state.settings.term_url_max_age - 60

    old = URLSafeTimedSerializer("test secret", salt="checkout-kit.3ds", signer=Past)
    expired = "/checkout/3ds/" + old.dumps({"p": payment.id, "f": 0})
    before = snapshot(shop, payment.id)
    response = shop.client.post(expired, data=fields)
    assert response.status_code == 400 and message_of(response.text)
    assert snapshot(shop, payment.id) == before


@pytest.mark.parametrize("mutate", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    lambda t: "garbage",
])
def test_a_tampered_term_url_is_refused(shop: Shop, mutate: Any) -> None:
    payment, term, fields = three_ds(shop, "order-1")
    token = term.rsplit("/", 1)[1]
    before = snapshot(shop, payment.id)
    response = shop.client.post("/checkout/3ds/" + mutate(token), data=fields)
    assert response.status_code == 400
    assert snapshot(shop, payment.id) == before


def test_term_url_without_pares_or_by_get_is_refused(shop: Shop) -> None:
    payment, term, fields = three_ds(shop, "order-1")
    before = snapshot(shop, payment.id)
    assert shop.client.post(term, data={"MD": fields["MD"]}).status_code == 400
    assert shop.client.post(term, data={"PaRes": fields["PaRes"]}).status_code == 400
    assert shop.client.get(term).status_code == 405
    assert snapshot(shop, payment.id) == before


def test_a_pares_for_another_outcome_is_a_failure_not_an_error(shop: Shop) -> None:
    payment = shop.create()
    response = shop.pay(payment.id, WITH_3DS)
    term_url, fields = shop.bank(response.text, action="decline")
    back = shop.client.post(path_of(term_url), data=fields)
    assert back.status_code == 303
    page = shop.client.get(path_of(back.headers["Location"]))
    assert 'data-result="failure"' in page.text and 'data-field="reason"' in page.text
    assert shop.state.ledger.get(payment.id).reason_code == 5206


def test_a_paid_payment_is_not_paid_again(shop: Shop) -> None:
    payment = shop.create()
    _, token = shop.form_page(payment.id)
    packet = shop.sandbox.make_cryptogram(NO_3DS)
    first = post_form(shop, payment.id, csrf_token=token, cryptogram=packet)
    after = snapshot(shop, payment.id)
    second = post_form(shop, payment.id, csrf_token=token, cryptogram=packet)
    assert first.status_code == second.status_code == 303
    assert snapshot(shop, payment.id) == after
    # The payment page itself sends the payer to the result.
    assert shop.client.get(f"/checkout/pay/{payment.id}").status_code == 303


def test_a_bank_answer_for_a_cancelled_payment_is_a_conflict(shop: Shop) -> None:
    payment, term, fields = three_ds(shop, "order-1")
    shop.state.ledger.transition(payment.id, PaymentStatus.CANCELLED, note="given up")
    before = snapshot(shop, payment.id)
    response = shop.client.post(term, data=fields)
    assert response.status_code == 409 and message_of(response.text)
    assert snapshot(shop, payment.id) == before


def test_a_gateway_outage_at_post3ds_is_pending_not_a_crash(
        tmp_path: Any, cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    from .conftest import make_shop

    shop = make_shop(tmp_path, cloudpayments_sandbox_keys, CHECKOUT_KIT_HTTP_RETRIES=0)
    payment, term, fields = three_ds(shop, "order-1")
    shop.sandbox.faults.add("status", path="/payments/cards/post3ds", status=503)
    response = shop.client.post(term, data=fields)
    # A 5xx to a mutating call: its outcome is unknown, never a failure or a crash.
    assert response.status_code == 303
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.UNKNOWN
    page = shop.client.get(f"/checkout/payments/{payment.id}")
    assert page.status_code == 200 and 'data-result="pending"' in page.text
    # The gateway still waits for 3-D Secure: the bank's answer, posted again, finishes it.
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.AWAITING_3DS
    assert shop.client.post(term, data=fields).status_code == 303
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.SUCCEEDED
