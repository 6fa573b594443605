"""Regression tests of issue 14, §1, through the shop: expired payments on the pages,
a second charge on one invoice, and Checks for payments the ledger does not own."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from checkout_kit.models import ThreeDSChallenge
from checkout_kit.notifications import CheckCode
from checkout_kit.pytest_plugin import send_notification
from checkout_kit.shop import signals
from checkout_kit.shop.config import ConfigurationError

from .conftest import NO_3DS, Shop, field_value, make_shop

BASE = "/checkout/notifications"


def _send(shop: Shop, kind: str, fields: dict[str, str]) -> Any:
    return send_notification(shop.client, kind, path=f"{BASE}/{kind.lower()}", fields=fields)


def _later(shop: Shop, delta: timedelta) -> None:
    """Move the shop's ledger clock (the service reads the same one)."""
    moment = datetime.now(UTC) + delta
    shop.state.ledger._clock = lambda: moment


# --- 6. expires_at on the pages -----------------------------------------------------------------


def test_the_pages_of_an_expired_payment_say_so_and_charge_nothing(shop: Shop) -> None:
    payment = shop.create(expires_at=datetime.now(UTC) + timedelta(minutes=30))
    form = shop.client.get(f"/checkout/pay/{payment.id}/form")
    assert form.status_code == 200
    token = field_value(form.text, "csrf_token")
    _later(shop, timedelta(minutes=31))  # the payer left the form open
    for path in (f"/checkout/pay/{payment.id}", f"/checkout/pay/{payment.id}/widget"):
        page = shop.client.get(path)
        assert page.status_code == 410 and 'data-problem="expired"' in page.text
    posted = shop.client.post(f"/checkout/pay/{payment.id}/form", data={
        "csrf_token": token, "cryptogram": shop.sandbox.make_cryptogram(NO_3DS),
        "name": "IVAN PETROV", "email": "payer@example.com"})
    assert posted.status_code == 410 and 'data-problem="expired"' in posted.text
    assert "деньги не списаны" in posted.text  # nothing was charged (the default: ru)
    assert shop.sandbox.state.transactions == {}
    assert str(shop.state.ledger.get(payment.id).status) == "created"


# --- 7. a second charge on one invoice ----------------------------------------------------------


def _paid_twice(shop: Shop) -> tuple[Any, int]:
    payment = shop.create()
    assert shop.pay(payment.id, NO_3DS).status_code == 303
    # The widget, open in a second tab, charges the invoice again.
    second = shop.state.client.charge(
        "100.00", ip_address="203.0.113.7", cryptogram=shop.sandbox.make_cryptogram(NO_3DS),
        invoice_id=payment.invoice_id)
    assert not isinstance(second, ThreeDSChallenge)
    return payment, second.transaction_id


def test_a_second_charge_is_recorded_as_a_duplicate_and_listed(shop: Shop) -> None:
    payment, second = _paid_twice(shop)
    sent = _send(shop, "Pay", {"TransactionId": str(second), "InvoiceId": payment.invoice_id,
                               "Amount": "100.00", "Currency": "RUB", "Status": "Completed"})
    assert sent.code == 0
    (row,) = shop.state.inbox.list(type="Pay")
    assert row.outcome == "payment_duplicate" and row.applied
    runner = shop.app.test_cli_runner()
    listed = runner.invoke(args=["checkout", "payments", "--problems", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert rows[0]["id"] == payment.id
    assert (rows[1]["problem"], rows[1]["transaction"]) == ("duplicate", second)
    assert len(rows) == 2
    plain = runner.invoke(args=["checkout", "payments", "--problems"]).output
    assert f"problem=duplicate  transaction={second}" in plain


def test_a_second_charge_sends_payment_duplicate_once(shop: Shop) -> None:
    heard: list[tuple[str, int | None]] = []

    def duplicate(_app: Any, payment: Any, problem: Any, **_: Any) -> None:
        heard.append((payment.id, problem.gateway_transaction_id))

    signals.payment_duplicate.connect(duplicate, sender=shop.app)
    payment, second = _paid_twice(shop)
    fields = {"TransactionId": str(second), "InvoiceId": payment.invoice_id,
              "Amount": "100.00", "Currency": "RUB", "Status": "Completed"}
    for _ in range(2):
        assert _send(shop, "Pay", fields).code == 0
    assert heard == [(payment.id, second)]


# --- 8. Check for payments the ledger does not own ----------------------------------------------


def test_a_check_for_a_payment_the_ledger_does_not_own_is_accepted_and_recorded(
    shop: Shop,
) -> None:
    paid = shop.create("sub-1")
    assert shop.pay(paid.id, NO_3DS).status_code == 303
    # A token charge the shop made with the client, and a subscription's charge on the
    # invoice of the payment that started it.
    for fields in ({"InvoiceId": "token-charge-7", "Amount": "250.00", "Currency": "RUB"},
                   {"InvoiceId": "sub-1", "Amount": "100.00", "Currency": "RUB",
                    "SubscriptionId": "sc_8cf8a9338fb8ebf7202b08d09c938"}):
        sent = _send(shop, "Check", fields)
        assert (sent.status_code, sent.code) == (200, 0)
    rows = shop.state.inbox.list(type="Check")
    assert [(r.outcome, r.code) for r in rows] == [("decided", 0), ("decided", 0)]


def test_a_check_for_a_payment_the_ledger_does_not_own_goes_to_the_shops_rule(
    shop: Shop,
) -> None:
    @shop.kit.unowned_check_rule
    def subscriptions_only(notification: Any) -> int | None:
        return None if notification.subscription_id else CheckCode.NOT_ACCEPTED

    other = {"InvoiceId": "elsewhere-1", "Amount": "10.00", "Currency": "RUB"}
    assert _send(shop, "Check", other).code == CheckCode.NOT_ACCEPTED
    assert _send(shop, "Check", {**other, "SubscriptionId": "sc_1"}).code == 0


def test_a_subscription_the_shop_started_with_the_client_is_charged(
    notified_shop: Shop,
) -> None:
    # Issue 14 §1.8 as reported: with Check configured, the sandbox declined the shop's
    # own token charges and every recurrent charge with 3001 (the shop answered 10),
    # and rejected the subscription after three days.
    shop = notified_shop
    client = shop.state.client
    saved = client.charge("1.00", ip_address="203.0.113.7", account_id="reader-1",
                          cryptogram=shop.sandbox.make_cryptogram(NO_3DS), save_card=True)
    assert not isinstance(saved, ThreeDSChallenge) and isinstance(saved.token, str)
    sub = client.create_subscription(
        token=saved.token, account_id="reader-1", amount=Decimal("100.00"),
        description="Magazine", start_date=shop.sandbox.now() + timedelta(minutes=10),
        interval="Day", period=1)
    shop.sandbox.advance(timedelta(days=3, minutes=11))
    charges = [t for t in shop.sandbox.state.transactions.values()
               if t.subscription_id == sub.id]
    assert [str(t.status) for t in charges] == ["Completed"] * 4
    assert str(client.get_subscription(sub.id).status) == "Active"
    rows = shop.state.inbox.list(type="Check")
    assert [(r.outcome, r.code) for r in rows] == [("decided", 0)] * 5


def test_a_subscriptions_recurrent_charge_on_the_paid_invoice_is_recorded_not_a_duplicate(
    notified_shop: Shop,
) -> None:
    # Regression (review of issue 14 §1.8): the charges of a subscription a payment
    # started carry that payment's InvoiceId, so each recurrent Pay landed on the owned,
    # already-paid payment and was recorded as a second charge to refund
    # (payment_duplicate). The sandbox sent no InvoiceId on them, which hid it.
    shop = notified_shop
    heard: list[Any] = []
    signals.payment_problem.connect(lambda _app, **kw: heard.append(kw), sender=shop.app)
    payment = shop.create("magazine-1", account_id="reader-1")
    first = shop.state.client.charge(
        "100.00", ip_address="203.0.113.7", account_id="reader-1",
        invoice_id=payment.invoice_id, cryptogram=shop.sandbox.make_cryptogram(NO_3DS),
        json_data={"CloudPayments": {"recurrent": {"interval": "Day", "period": 1}}})
    assert not isinstance(first, ThreeDSChallenge) and first.subscription_id
    shop.sandbox.advance(timedelta(days=2, minutes=1))
    charges = [t for t in shop.sandbox.state.transactions.values()
               if t.subscription_id == first.subscription_id and t.id != first.transaction_id]
    assert len(charges) == 2
    assert {t.invoice_id for t in charges} == {payment.invoice_id}
    paid = shop.state.ledger.get(payment.id)
    assert (str(paid.status), paid.gateway_transaction_id) == (
        "succeeded", first.transaction_id)
    assert [(r.outcome, r.code) for r in shop.state.inbox.list(type="Pay")] == [
        ("recorded", 0), ("recorded", 0), ("applied", 0)]
    assert [r.code for r in shop.state.inbox.list(type="Check")] == [0, 0, 0]
    assert shop.state.ledger.problems(payment.id) == [] and heard == []


def test_a_recurrent_or_token_pay_of_another_amount_is_not_a_mismatch(shop: Shop) -> None:
    # Regression (review of issue 14 §1.8): not the payment's charge, so neither a second
    # charge nor a mismatch (a subscription may charge another amount).
    payment = shop.create("plan-1")
    paid = {"InvoiceId": payment.invoice_id, "Amount": "100.00", "Currency": "RUB",
            "Status": "Completed"}
    assert _send(shop, "Pay", {**paid, "TransactionId": "42"}).code == 0
    for extra in ({"TransactionId": "43", "SubscriptionId": "sc_1", "Amount": "250.00"},
                  {"TransactionId": "44", "TrInitiatorCode": "1"}):
        assert _send(shop, "Pay", {**paid, **extra}).code == 0
    assert _send(shop, "Fail", {**paid, "TransactionId": "45", "SubscriptionId": "sc_1",
                                "Reason": "InsufficientFunds", "ReasonCode": "5051"}).code == 0
    assert [r.outcome for r in shop.state.inbox.list()][:4] == [
        "recorded", "recorded", "recorded", "applied"]
    after = shop.state.ledger.get(payment.id)
    assert (str(after.status), after.gateway_transaction_id) == ("succeeded", 42)
    assert shop.state.ledger.problems(payment.id) == []


def test_the_payer_sees_a_final_page_when_the_answer_does_not_match(
    shop: Shop, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Regression (review of issue 14 §1.1): a charge answered with another amount left
    # the payment unknown, and the pending page reloaded forever.
    real = shop.state.client.charge

    def charge(*args: Any, **kwargs: Any) -> Any:
        return dataclasses.replace(real(*args, **kwargs), amount=Decimal("1.00"))

    monkeypatch.setattr(shop.state.client, "charge", charge)
    payment = shop.create()
    page = shop.pay(payment.id, NO_3DS)
    assert page.status_code == 200 and "Неверная сумма платежа" in page.text
    assert str(shop.state.ledger.get(payment.id).status) == "failed"
    assert [p.kind for p in shop.state.ledger.problems(payment.id)] == ["mismatch"]


def test_a_pay_of_an_absurd_amount_is_a_mismatch_not_a_500(shop: Shop) -> None:
    payment = shop.create()
    sent = _send(shop, "Pay", {"TransactionId": "9001", "InvoiceId": payment.invoice_id,
                               "Amount": "99999999999999.99", "Currency": "RUBLES",
                               "Status": "Completed"})
    assert (sent.status_code, sent.code) == (200, 0)
    (row,) = shop.state.inbox.list(type="Pay")
    assert row.outcome == "mismatch"
    (problem,) = shop.state.ledger.problems(payment.id)
    assert (problem.kind, problem.gateway_transaction_id, problem.amount, problem.currency) == (
        "mismatch", 9001, None, None)


def test_an_http_timeout_a_stale_takeover_would_cut_into_is_refused(
    tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes],
) -> None:
    # Issue 14 §1.2: with calls that may run 13 minutes (150 s x 4 + 3 x 60 s), a worker
    # still waiting would be taken for dead by the ledger's stale_after (10 minutes).
    with pytest.raises(ConfigurationError) as info:
        make_shop(tmp_path, cloudpayments_sandbox_keys, CHECKOUT_KIT_HTTP_TIMEOUT=150)
    assert info.value.key == "CHECKOUT_KIT_HTTP_TIMEOUT"
    assert "CHECKOUT_KIT_STALE_AFTER" in str(info.value)


@pytest.mark.parametrize(("setting", "key"), [
    ({"CHECKOUT_KIT_HTTP_RETRIES": 10}, "CHECKOUT_KIT_HTTP_RETRIES"),
    ({"CHECKOUT_KIT_HTTP_TIMEOUT": 150}, "CHECKOUT_KIT_HTTP_TIMEOUT"),
    ({"CHECKOUT_KIT_STALE_AFTER": 120}, "CHECKOUT_KIT_STALE_AFTER"),
])
def test_the_stale_after_check_names_the_key_at_fault_before_opening_anything(
    tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes],
    monkeypatch: pytest.MonkeyPatch, setting: dict[str, Any], key: str,
) -> None:
    # Regression: HTTP_RETRIES=10 was reported as CHECKOUT_KIT_HTTP_TIMEOUT (with
    # stale_after, not a shop setting), after the client and the ledger were opened.
    from checkout_kit.shop import extension

    opened: list[str] = []
    monkeypatch.setattr(extension, "CloudPaymentsClient",
                        lambda *a, **kw: opened.append("client"))
    monkeypatch.setattr(extension, "Ledger", lambda *a, **kw: opened.append("ledger"))
    with pytest.raises(ConfigurationError) as info:
        make_shop(tmp_path, cloudpayments_sandbox_keys, **setting)
    assert info.value.key == key
    assert opened == []


def test_stale_after_is_a_shop_setting(
    tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes],
) -> None:
    # A longer timeout is fine with a stale_after above the call it allows.
    shop = make_shop(tmp_path, cloudpayments_sandbox_keys, CHECKOUT_KIT_HTTP_TIMEOUT=150,
                     CHECKOUT_KIT_STALE_AFTER=1200)
    assert shop.state.service.stale_after == timedelta(seconds=1200)
