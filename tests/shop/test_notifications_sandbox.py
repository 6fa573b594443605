"""End to end with the sandbox, in-process: the sandbox signs and sends its notifications
to the shop's routes (httpx.WSGITransport), the shop calls the sandbox back through its
client. Widget payments succeed through their Pay notification only; Fail, Confirm,
Refund and Cancel move the ledger; a Check answered 12 declines the payment; a
notification sent while the shop is down arrives through the retries, once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from checkout_kit.errors import PaymentDeclined
from checkout_kit.ledger import PaymentStatus
from checkout_kit.models import Transaction
from checkout_kit.shop import signals

from .conftest import DECLINED, NO_3DS, Shop, make_shop

S = PaymentStatus
IP = "203.0.113.9"


def widget_pays(shop: Shop, payment: Any, card: str = NO_3DS, *, amount: Decimal | None = None,
                two_stage: bool = False) -> Transaction:
    """What the widget's frame does: pay at the gateway, past the shop's server."""
    call = shop.state.client.auth if two_stage else shop.state.client.charge
    tx = call(amount or payment.amount, ip_address=IP,
              cryptogram=shop.sandbox.make_cryptogram(card), invoice_id=payment.invoice_id)
    assert isinstance(tx, Transaction)
    return tx


def outcomes(shop: Shop, kind: str) -> list[str]:
    return [r.outcome for r in reversed(shop.state.inbox.list(type=kind))]


def test_a_widget_payment_succeeds_through_its_pay_notification(notified_shop: Shop) -> None:
    shop = notified_shop
    heard: list[str] = []
    signals.payment_succeeded.connect(lambda _a, **kw: heard.append(kw["payment"].id),
                                      shop.app, weak=False)
    payment = shop.create()
    tx = widget_pays(shop, payment)
    stored = shop.state.ledger.get(payment.id)
    assert stored.status is S.SUCCEEDED and stored.gateway_transaction_id == tx.transaction_id
    assert heard == [payment.id]
    notes = [e.note for e in shop.state.ledger.history(payment.id)]
    assert notes[-1] == f"Pay notification {tx.transaction_id}"
    assert (outcomes(shop, "Check"), outcomes(shop, "Pay")) == (["decided"], ["applied"])
    assert shop.state.inbox.list(type="Check")[0].code == 0
    assert 'data-result="success"' in shop.client.get(f"/checkout/payments/{payment.id}").text


def test_without_the_pay_notification_only_reconcile_makes_it_succeed(
        notified_shop: Shop) -> None:
    shop = notified_shop
    shop.state.client.update_notification_settings("Pay", is_enabled=False)
    payment = shop.create()
    widget_pays(shop, payment)
    for _ in range(3):  # the widget's callback sends the payer to the result page
        page = shop.client.get(f"/checkout/payments/{payment.id}")
        assert 'data-result="pending"' in page.text
    assert shop.state.ledger.get(payment.id).status is S.CREATED
    # Reconcile asks the gateway, which took the payment.
    unpaid = shop.create("never-paid")
    result = shop.app.test_cli_runner().invoke(args=["checkout", "reconcile"])
    assert result.exit_code == 0 and "1 payment(s) looked at" in result.output
    assert shop.state.ledger.get(payment.id).status is S.SUCCEEDED
    assert shop.state.ledger.get(unpaid.id).status is S.CREATED


def test_fail_confirm_refund_and_cancel_move_the_ledger(notified_shop: Shop) -> None:
    shop = notified_shop
    client = shop.state.client
    # Fail: a widget decline.
    declined = shop.create("fail-1")
    with pytest.raises(PaymentDeclined):
        widget_pays(shop, declined, DECLINED)
    failed = shop.state.ledger.get(declined.id)
    assert (failed.status, failed.reason_code) == (S.FAILED, 5051)
    # Pay (authorized), then Confirm of part of it, made at the gateway (the dashboard).
    held = shop.create("auth-1", scheme="auth")
    tx = widget_pays(shop, held, two_stage=True)
    assert shop.state.ledger.get(held.id).status is S.AUTHORIZED
    client.confirm(tx.transaction_id, Decimal("60.00"))
    captured = shop.state.ledger.get(held.id)
    assert (captured.status, captured.amount) == (S.SUCCEEDED, Decimal("60.00"))
    # Refunds: a partial one (the status stays), then the rest.
    refunds: list[Decimal] = []
    signals.payment_refunded.connect(lambda _a, **kw: refunds.append(kw.get("amount")),
                                     shop.app, weak=False)
    client.refund(tx.transaction_id, Decimal("20.00"))
    part = shop.state.ledger.get(held.id)
    assert (part.status, part.refunded_amount) == (S.SUCCEEDED, Decimal("20.00"))
    client.refund(tx.transaction_id, Decimal("40.00"))
    full = shop.state.ledger.get(held.id)
    assert (full.status, full.refunded_amount) == (S.REFUNDED, Decimal("60.00"))
    assert refunds == [Decimal("20.00"), None]
    # Cancel: a hold voided at the gateway.
    voided = shop.create("auth-2", scheme="auth")
    other = widget_pays(shop, voided, two_stage=True)
    client.void(other.transaction_id)
    assert shop.state.ledger.get(voided.id).status is S.CANCELLED
    assert outcomes(shop, "Refund") == ["applied", "applied"]
    assert outcomes(shop, "Cancel") == outcomes(shop, "Confirm") == ["applied"]


def test_the_ledgers_own_calls_are_not_counted_twice(notified_shop: Shop) -> None:
    # The Confirm and Refund notifications arrive while our own call is on its way.
    shop = notified_shop
    payment = shop.create(scheme="auth")
    shop.pay(payment.id, NO_3DS)
    with shop.app.app_context():
        shop.kit.confirm(payment.id, "80.00")
        shop.kit.refund(payment.id, "30.00")
        after = shop.kit.refund(payment.id, "50.00")
    assert (after.status, after.amount, after.refunded_amount) == (
        "refunded", Decimal("80.00"), Decimal("80.00"))
    assert set(outcomes(shop, "Refund")) <= {"deferred", "recorded"}
    assert len(shop.state.inbox.list(type="Refund")) == 2


def test_a_check_answered_12_makes_the_sandbox_decline(notified_shop: Shop) -> None:
    shop = notified_shop
    payment = shop.create(amount="100.00")
    with pytest.raises(PaymentDeclined) as declined:
        widget_pays(shop, payment, amount=Decimal("99.00"))
    assert declined.value.reason_code == 3003
    check = shop.state.inbox.list(type="Check")[0]
    assert (check.code, check.outcome) == (12, "decided")
    assert shop.state.ledger.get(payment.id).status is S.CREATED
    # Paying the right amount afterwards goes through.
    widget_pays(shop, payment)
    assert shop.state.ledger.get(payment.id).status is S.SUCCEEDED


class Outage:
    """A shop that is down for Pay notifications while ``down`` is set."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.down = True
        self.refused = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down and request.url.path.endswith("/pay"):
            self.refused += 1
            raise httpx.ConnectError("connection refused", request=request)
        return self.inner.handle_request(request)


def test_a_notification_sent_while_the_shop_is_down_arrives_through_retries(
        tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    outages: list[Outage] = []

    def wrap(inner: httpx.BaseTransport) -> httpx.BaseTransport:
        outages.append(Outage(inner))
        return httpx.MockTransport(outages[0].handle_request)

    shop = make_shop(tmp_path, cloudpayments_sandbox_keys, notify=True, wrap_notifications=wrap)
    (outage,) = outages
    settings = shop.client.post("/sandbox/_sandbox/settings",
                                json={"duplicate_notifications": True})
    assert settings.status_code == 200, settings.text
    payment = shop.create()
    widget_pays(shop, payment)
    assert outage.refused == 2  # both copies failed
    assert shop.state.ledger.get(payment.id).status is S.CREATED
    outage.down = False
    advanced = shop.client.post("/sandbox/_sandbox/clock/advance", json={"minutes": 1})
    assert advanced.status_code == 200, advanced.text
    assert shop.state.ledger.get(payment.id).status is S.SUCCEEDED
    shop.client.post("/sandbox/_sandbox/clock/advance", json={"hours": 3})
    pay_rows = shop.state.inbox.list(type="Pay")
    assert sorted(r.outcome for r in pay_rows) == ["applied", "duplicate"]
    assert [str(e.new_status) for e in shop.state.ledger.history(payment.id)] == [
        "created", "processing", "succeeded"]
    shop.state.ledger.engine.dispose()
    shop.state.client.close()
