"""Notifications the sandbox sends: Check, Pay, Fail, Confirm, Refund, Cancel; HMAC
headers, retries on the virtual clock, duplicates, GET and Windows-1251."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from checkout_kit import notifications as nt
from checkout_kit.client import CloudPaymentsClient
from checkout_kit.errors import PaymentDeclined
from checkout_kit.models import ThreeDSChallenge, Transaction
from checkout_kit.sandbox import Sandbox
from checkout_kit.sandbox.web import notify

IP = "203.0.113.7"


def _charge(client: CloudPaymentsClient, sandbox: Sandbox, number: str = "4000000000003055",
            **kw: object) -> Transaction | ThreeDSChallenge:
    return client.charge(Decimal("99.90"), ip_address=IP,  # type: ignore[arg-type]
                         cryptogram=sandbox.make_cryptogram(number), **kw)


def _verified(shop: Any, kind: str, secret: str, encoding: str = "utf-8") -> nt.Notification:
    (received,) = shop.of(kind)
    nt.verify(received.raw, received.headers, secret, encoding=encoding, require_both=True)
    return nt.parse_notification(kind, received.raw, encoding=encoding)


def test_pay_notification_signed_and_typed(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
    subscribe: Callable[..., None],
) -> None:
    subscribe("Pay")
    tx = _charge(cloudpayments_client, cloudpayments_sandbox, invoice_id="N-1", account_id="a@b",
                 json_data={"k": "значение"}, save_card=True)
    assert isinstance(tx, Transaction)
    note = _verified(shop, "Pay", cloudpayments_sandbox.api_secret)
    assert note.transaction_id == tx.transaction_id and note.amount == Decimal("99.90")
    assert note.invoice_id == "N-1" and note.account_id == "a@b" and note.test_mode is True
    assert note.status == "Completed" and note.gateway_name == "Test"
    assert note.card_first_six == "400000" and note.card_exp_date == tx.card_exp_date
    assert note.data == {"k": "значение"} and note.token == tx.raw["Token"]
    with pytest.raises(Exception, match="does not match"):
        nt.verify(shop.of("Pay")[0].raw, shop.of("Pay")[0].headers, "another secret")


def test_fail_confirm_cancel_refund_notifications(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
    subscribe: Callable[..., None],
) -> None:
    subscribe("Fail", "Confirm", "Cancel", "Refund")
    secret = cloudpayments_sandbox.api_secret
    with pytest.raises(PaymentDeclined):
        _charge(cloudpayments_client, cloudpayments_sandbox, "4000056655665556")
    fail = _verified(shop, "Fail", secret)
    assert (fail.reason_code, fail.reason) == (5051, "InsufficientFunds")
    held = cloudpayments_client.auth(Decimal("50"), ip_address=IP,
                                     cryptogram=cloudpayments_sandbox.make_cryptogram("4000000000003055"))
    cloudpayments_client.confirm(held.transaction_id, Decimal("40"))
    confirm = _verified(shop, "Confirm", secret)
    assert confirm.transaction_id == held.transaction_id and confirm.amount == Decimal("40.00")
    other = cloudpayments_client.auth(Decimal("5"), ip_address=IP,
                                      cryptogram=cloudpayments_sandbox.make_cryptogram("4000000000003055"))
    cloudpayments_client.void(other.transaction_id)
    cancel = _verified(shop, "Cancel", secret)
    assert cancel.transaction_id == other.transaction_id
    # Only what docs/gateway.md §5.4 lists for Cancel (None-valued fields are left out).
    assert set(cancel.fields) <= {"TransactionId", "Amount", "DateTime", "InvoiceId",
                                  "AccountId", "Email", "Data", "Rrn"}
    assert {"TransactionId", "Amount", "DateTime", "Rrn"} <= set(cancel.fields)
    refund = cloudpayments_client.refund(held.transaction_id, Decimal("15"))
    note = _verified(shop, "Refund", secret)
    assert note.transaction_id == refund.transaction_id
    assert note.payment_transaction_id == held.transaction_id and note.amount == Decimal("15.00")


@pytest.mark.parametrize("code,reason", [(10, 3001), (11, 3002), (12, 3003), (13, 3008),
                                         (20, 3004), (99, 3005)])
def test_check_answer_declines_with_its_reason(
    code: int, reason: int, cloudpayments_client: CloudPaymentsClient,
    cloudpayments_sandbox: Sandbox, shop: Any, subscribe: Callable[..., None],
) -> None:
    subscribe("Check", "Pay", "Fail")
    shop.answers["Check"] = [(200, {"code": code})]
    with pytest.raises(PaymentDeclined) as exc:
        _charge(cloudpayments_client, cloudpayments_sandbox)
    assert exc.value.reason_code == reason
    check = _verified(shop, "Check", cloudpayments_sandbox.api_secret)
    assert check.status == "Completed" and check.amount == Decimal("99.90")
    assert shop.of("Pay") == [] and len(shop.of("Fail")) == 1


@pytest.mark.parametrize("answer,reason", [
    ((500, b"oops"), 3006), ((404, {"code": 0}), 3006),
    ((200, b"<html>Fatal error</html>"), 3005),
    (httpx.ConnectError("refused"), 3007),
])
def test_check_unavailable_or_unreadable(
    answer: object, reason: int, cloudpayments_client: CloudPaymentsClient,
    cloudpayments_sandbox: Sandbox, shop: Any, subscribe: Callable[..., None],
) -> None:
    subscribe("Check")
    shop.answers["Check"] = [answer]
    with pytest.raises(PaymentDeclined) as exc:
        _charge(cloudpayments_client, cloudpayments_sandbox)
    assert exc.value.reason_code == reason
    assert len(shop.of("Check")) == 1  # Check is never retried
    cloudpayments_sandbox.advance(timedelta(hours=1))
    assert len(shop.of("Check")) == 1


def test_check_accepts_and_comes_before_3ds(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
    subscribe: Callable[..., None],
) -> None:
    subscribe("Check", "Pay")
    result = _charge(cloudpayments_client, cloudpayments_sandbox, "4242424242424242")
    assert isinstance(result, ThreeDSChallenge)
    assert len(shop.of("Check")) == 1 and shop.of("Pay") == []
    cloudpayments_client.post3ds(result.transaction_id,
                                 cloudpayments_sandbox.pa_res_for(result.transaction_id))
    assert len(shop.of("Check")) == 1 and len(shop.of("Pay")) == 1


def test_failed_deliveries_are_retried_on_the_schedule(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
    subscribe: Callable[..., None],
) -> None:
    subscribe("Pay")
    shop.answers["Pay"] = [500, (200, {"code": 13}), httpx.ReadTimeout("slow"),
                           (200, b"not json"), 200]
    _charge(cloudpayments_client, cloudpayments_sandbox)
    assert len(shop.of("Pay")) == 1
    schedule = [1, 2, 5, 10]  # minutes between attempts
    for expected, minutes in enumerate(schedule, start=2):
        cloudpayments_sandbox.advance(timedelta(minutes=minutes) - timedelta(seconds=1))
        assert len(shop.of("Pay")) == expected - 1
        cloudpayments_sandbox.advance(timedelta(seconds=1))
        assert len(shop.of("Pay")) == expected
    (delivery,) = cloudpayments_sandbox.state.deliveries.values()
    assert delivery.state == "delivered" and [a.ok for a in delivery.attempts] == [
        False, False, False, False, True]
    bodies = {r.raw for r in shop.of("Pay")}
    assert len(bodies) == 1  # every retry carries the same body and signature
    cloudpayments_sandbox.advance(timedelta(hours=2))
    assert len(shop.of("Pay")) == 5


def test_retries_continue_every_30_minutes_up_to_100(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
    subscribe: Callable[..., None],
) -> None:
    subscribe("Pay")
    shop.answers["Pay"] = [503] * 200
    _charge(cloudpayments_client, cloudpayments_sandbox)
    cloudpayments_sandbox.advance(timedelta(minutes=1 + 2 + 5 + 10 + 30 * 3))
    assert len(shop.of("Pay")) == 8
    cloudpayments_sandbox.advance(timedelta(days=3))
    assert len(shop.of("Pay")) == 100
    (delivery,) = cloudpayments_sandbox.state.deliveries.values()
    assert delivery.state == "failed"


def test_duplicate_setting_delivers_each_notification_twice(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
    subscribe: Callable[..., None],
) -> None:
    subscribe("Pay")
    cloudpayments_sandbox.settings.duplicate_notifications = True
    _charge(cloudpayments_client, cloudpayments_sandbox)
    first, second = shop.of("Pay")
    assert first.raw == second.raw
    keys = {nt.parse_notification("Pay", r.raw).dedupe_key for r in (first, second)}
    assert len(keys) == 1


def test_get_delivery_and_windows_1251(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
    subscribe: Callable[..., None],
) -> None:
    subscribe("Pay", method="GET", encoding="Windows1251")
    _charge(cloudpayments_client, cloudpayments_sandbox, description="Оплата заказа №5")
    (received,) = shop.of("Pay")
    assert received.method == "GET"
    note = _verified(shop, "Pay", cloudpayments_sandbox.api_secret, encoding="windows-1251")
    assert note.description == "Оплата заказа №5" and note.card_type == "Visa"
    assert b"%CE%EF%EB%E0%F2%E0" in received.raw  # "Оплата" in Windows-1251


def test_deliveries_can_wait_for_an_explicit_flush(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
    subscribe: Callable[..., None],
) -> None:
    subscribe("Pay")
    cloudpayments_sandbox.settings.deliver_immediately = False
    _charge(cloudpayments_client, cloudpayments_sandbox)
    assert shop.of("Pay") == []
    assert cloudpayments_sandbox.deliver_pending() == 1
    assert len(shop.of("Pay")) == 1


def test_notification_settings_api(cloudpayments_client: CloudPaymentsClient, shop: Any) -> None:
    cloudpayments_client.update_notification_settings(
        "Pay", is_enabled=True, address=shop.url("Pay"), http_method="POST",
        encoding="Windows1251")
    got = cloudpayments_client.get_notification_settings("pay")
    assert (got.is_enabled, got.address, got.http_method, got.encoding, got.format) == (
        True, shop.url("Pay"), "POST", "Windows1251", "CloudPayments")
    off = cloudpayments_client.get_notification_settings("Refund")
    assert off.is_enabled is False and off.address is None
    from checkout_kit.errors import RequestRejectedError
    with pytest.raises(RequestRejectedError):
        cloudpayments_client.update_notification_settings("Pay", is_enabled=True,
                                                          http_method="PUT", address=shop.url("x"))
    with pytest.raises(RequestRejectedError):
        cloudpayments_client.get_notification_settings("Nonsense")


@pytest.mark.parametrize("address", [
    "http://a:b/", "http://[::1/", "http://shop.test/\tx", "http://shop.test/x\r\nX-Y: 1",
    "http:///x", "http://", "ftp://shop.test/", "http://xn--a/", "http://shop.test:99999/",
    "http://shop test/", " http://shop.test/", "http://shop.test/\x00",
])
def test_addresses_httpx_cannot_send_to_are_refused(
    address: str, cloudpayments_client: CloudPaymentsClient, shop: Any,
) -> None:
    from checkout_kit.errors import RequestRejectedError

    with pytest.raises(RequestRejectedError, match="Address"):
        cloudpayments_client.update_notification_settings("Pay", is_enabled=True, address=address)
    assert cloudpayments_client.get_notification_settings("Pay").address is None


def _saved_address(sandbox: Sandbox, kind: nt.NotificationType, address: str) -> None:
    # as a state file written before addresses were checked may hold it
    setting = sandbox.outbox.setting(kind)
    setting.is_enabled, setting.address, setting.http_method = True, address, "POST"


@pytest.mark.parametrize("address", ["http://a:b/", "http://[::1/", "http://shop.test/\tx"])
def test_an_unsendable_address_is_a_failed_attempt_retried_on_schedule(
    address: str, cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    _saved_address(cloudpayments_sandbox, nt.NotificationType.PAY, address)
    for _ in range(2):  # the payment is answered, and so is the next one
        assert isinstance(_charge(cloudpayments_client, cloudpayments_sandbox), Transaction)
    deliveries = list(cloudpayments_sandbox.state.deliveries.values())
    assert [d.state for d in deliveries] == ["pending", "pending"]
    assert all("InvalidURL" in (d.attempts[0].error or "") for d in deliveries)
    cloudpayments_sandbox.advance(timedelta(minutes=1))
    assert [len(d.attempts) for d in deliveries] == [2, 2]


def test_a_check_that_cannot_be_sent_declines_3007(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
    subscribe: Callable[..., None],
) -> None:
    _saved_address(cloudpayments_sandbox, nt.NotificationType.CHECK, "http://a:b/")
    with pytest.raises(PaymentDeclined) as exc:
        _charge(cloudpayments_client, cloudpayments_sandbox)
    assert exc.value.reason_code == 3007
    (check,) = cloudpayments_sandbox.state.deliveries.values()
    assert check.state == "failed"
    subscribe("Check", "Pay")
    shop.answers["Check"] = [RuntimeError("the shop's transport broke")]
    shop.answers["Pay"] = [RuntimeError("the shop's transport broke")]
    with pytest.raises(PaymentDeclined) as exc:
        _charge(cloudpayments_client, cloudpayments_sandbox)
    assert exc.value.reason_code == 3007
    assert isinstance(_charge(cloudpayments_client, cloudpayments_sandbox), Transaction)
    (pay,) = [d for d in cloudpayments_sandbox.state.deliveries.values() if d.type == "Pay"]
    assert pay.state == "pending" and "RuntimeError" in (pay.attempts[0].error or "")


def test_a_deeply_nested_check_answer_is_a_format_error(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
    subscribe: Callable[..., None],
) -> None:
    subscribe("Check")
    shop.answers["Check"] = [(200, b"[" * 100_000 + b"]" * 100_000)]
    with pytest.raises(PaymentDeclined) as exc:
        _charge(cloudpayments_client, cloudpayments_sandbox)
    assert exc.value.reason_code == 3005


def test_sender_makes_one_client_for_all_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two deliveries starting at once share one client: none is made and leaked."""
    made: list[httpx.Client] = []

    class SlowClient(httpx.Client):
        def __init__(self, **kwargs: Any) -> None:
            time.sleep(0.05)  # widen the window between the check and the assignment
            super().__init__(**kwargs)
            made.append(self)

    monkeypatch.setattr(notify.httpx, "Client", SlowClient)
    sender = notify.Sender(httpx.MockTransport(lambda request: httpx.Response(200)))
    got: list[httpx.Client] = []
    threads = [threading.Thread(target=lambda: got.append(sender.client)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(made) == 1 and all(client is made[0] for client in got)
    sender.close()
    assert made[0].is_closed
