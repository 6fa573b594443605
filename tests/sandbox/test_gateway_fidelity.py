"""Gateway behaviours the sandbox follows closely: who initiates a token payment, the
Check settings the API cannot change, the fields the gateway fills (Rrn, CardId,
CardProduct, Ip*, PaymentMethod), abandoned 3-D Secure, and a payment waiting for
3-D Secure that has no outcome yet."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from checkout_kit import notifications as nt
from checkout_kit.client import CloudPaymentsClient, TrInitiator
from checkout_kit.errors import RequestRejectedError
from checkout_kit.models import ThreeDSChallenge, Transaction, TransactionStatus
from checkout_kit.sandbox import Sandbox
from checkout_kit.sandbox.rules.engine import CHECK_NOT_UPDATABLE
from checkout_kit.sandbox.rules.geo import locate

IP = "198.51.100.20"  # the offline table places it in Ufa
NO_3DS = "4000000000003055"
THREE_DS = "4242424242424242"


def _notes(shop: Any, kind: str) -> list[nt.Notification]:
    return [nt.parse_notification(kind, r.raw) for r in shop.of(kind)]


def _saved(client: CloudPaymentsClient, sandbox: Sandbox) -> Transaction:
    tx = client.charge(Decimal("10"), ip_address=IP, account_id="acc-1", save_card=True,
                       cryptogram=sandbox.make_cryptogram(NO_3DS))
    assert isinstance(tx, Transaction) and tx.token
    return tx


# --------------------------------------------------------------------------- §3.5 initiator


def test_initiator_and_schedule_are_recorded_and_shown(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
    subscribe: Callable[..., None],
) -> None:
    token = _saved(cloudpayments_client, cloudpayments_sandbox).token
    assert token is not None
    subscribe("Pay")
    mit = cloudpayments_client.charge_token(
        Decimal("3"), account_id="acc-1", token=token, tr_initiator_code=TrInitiator.MERCHANT,
        payment_scheduled=True)
    cit = cloudpayments_client.charge_token(
        Decimal("4"), account_id="acc-1", token=token, tr_initiator_code=TrInitiator.CARDHOLDER)
    assert (mit.tr_initiator_code, mit.payment_scheduled) == (TrInitiator.MERCHANT, True)
    assert (cit.tr_initiator_code, cit.payment_scheduled) == (TrInitiator.CARDHOLDER, False)
    record = cloudpayments_sandbox.state.transactions[mit.transaction_id]
    assert (record.tr_initiator_code, record.payment_scheduled) == (0, True)
    again = cloudpayments_client.get_payment(mit.transaction_id)
    assert again.raw["PaymentScheduled"] == 1 and again.raw["TrInitiatorCode"] == 0
    first, second = _notes(shop, "Pay")
    assert (first.tr_initiator_code, first.payment_scheduled) == (0, True)
    assert (second.tr_initiator_code, second.payment_scheduled) == (1, False)


# --------------------------------------------------------------------------- §3.5 Check settings


def test_the_api_cannot_change_check_settings(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
) -> None:
    http = cloudpayments_client._http  # the raw call: the client itself refuses to send it
    answer = http.post("/site/notifications/check/update",
                       json={"IsEnabled": True, "Address": shop.url("Check")})
    assert answer.status_code == 200
    assert answer.json() == {"Success": False, "Message": CHECK_NOT_UPDATABLE}
    assert cloudpayments_client.get_notification_settings("Check").is_enabled is False
    # The merchant account (the Python shortcut) still can.
    cloudpayments_sandbox.configure_notification("Check", shop.url("Check"))
    assert cloudpayments_client.get_notification_settings("Check").is_enabled is True
    cloudpayments_client.update_notification_settings("Pay", is_enabled=True,
                                                      address=shop.url("Pay"))


# --------------------------------------------------------------------------- §3.4/§5.4 fields


def test_fields_the_gateway_fills(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
    subscribe: Callable[..., None],
) -> None:
    subscribe("Check", "Pay", "Confirm", "Refund")
    data = {"order": 7}
    held = cloudpayments_client.auth(Decimal("20"), ip_address=IP, json_data=data,
                                     invoice_id="F-1",
                                     cryptogram=cloudpayments_sandbox.make_cryptogram(NO_3DS))
    assert isinstance(held, Transaction)
    place = locate(IP)
    assert place is not None and place.city == "Уфа"
    assert (held.ip_country, held.ip_region, held.ip_city, held.ip_district) == (
        "RU", "Республика Башкортостан", "Уфа", "Приволжский федеральный округ")
    assert (held.ip_latitude, held.ip_longitude) == (Decimal("54.7355"), Decimal("55.99182"))
    assert held.rrn and len(held.rrn) == 12 and held.card_product == "Visa Classic"
    assert held.payment_method == "Card"
    assert "Уфа" not in repr(held) and "54.7355" not in repr(held)  # where the payer is
    cloudpayments_client.confirm(held.transaction_id, Decimal("20"))
    refund = cloudpayments_client.refund(held.transaction_id, Decimal("5"),
                                         json_data={"refund": "reason"})
    (check,), (pay,), (confirm,), (refund_note,) = (
        _notes(shop, k) for k in ("Check", "Pay", "Confirm", "Refund"))
    # CardId and CardProduct in Check and Pay; Rrn in Pay and Confirm (docs/gateway.md §5.4)
    assert check.card_id and check.card_id == pay.card_id and check.rrn is None
    assert check.card_product == pay.card_product == "Visa Classic"
    assert pay.rrn == confirm.rrn == held.rrn and confirm.card_id is None
    for note in (check, pay, confirm):
        assert (note.ip_country, note.ip_city, note.payment_method) == ("RU", "Уфа", "Card")
        assert note.ip_latitude == Decimal("54.7355")  # not rounded to two decimals
    # A Refund notification's Data is the payment's, not the refund request's.
    assert refund_note.data == data
    assert refund_note.rrn and refund_note.rrn != pay.rrn
    assert refund_note.transaction_id == refund.transaction_id


def test_card_id_is_per_card_and_addresses_off_the_table_are_not_placed(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
    subscribe: Callable[..., None],
) -> None:
    subscribe("Pay")
    for number in (NO_3DS, NO_3DS, "5205000000003055"):
        cloudpayments_client.charge(Decimal("1"), ip_address="8.8.8.8",
                                    cryptogram=cloudpayments_sandbox.make_cryptogram(number))
    first, second, other = _notes(shop, "Pay")
    assert first.card_id == second.card_id != other.card_id
    assert NO_3DS not in (first.card_id or "")
    assert (first.ip_country, first.ip_city, first.ip_latitude) == (None, None, None)
    assert "IpCountry" not in shop.of("Pay")[0].fields
    assert locate("::1") == locate("127.0.0.1") == locate("::ffff:127.0.0.1") is not None
    assert locate("not an address") is None and locate(None) is None


# --------------------------------------------------------------------------- abandoned 3-D Secure


def test_abandoned_3ds_is_declined_after_the_timeout(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
    subscribe: Callable[..., None],
) -> None:
    subscribe("Fail")
    timeout = cloudpayments_sandbox.settings.three_ds_timeout
    assert timeout == timedelta(minutes=20)  # the documented choice
    challenge = cloudpayments_client.charge(
        Decimal("30"), ip_address=IP, invoice_id="A-3",
        cryptogram=cloudpayments_sandbox.make_cryptogram(THREE_DS))
    assert isinstance(challenge, ThreeDSChallenge)
    cloudpayments_sandbox.advance(timeout - timedelta(seconds=1))
    waiting = cloudpayments_client.get_payment(challenge.transaction_id)
    assert waiting.status is TransactionStatus.AWAITING_AUTHENTICATION and shop.of("Fail") == []
    cloudpayments_sandbox.advance(timedelta(seconds=1))
    for seen in (cloudpayments_client.get_payment(challenge.transaction_id),
                 cloudpayments_client.find_payment("A-3"),
                 cloudpayments_client.find_operation("A-3")):
        assert seen.status is TransactionStatus.DECLINED
        assert seen.reason_code == 5206 and seen.reason == "AuthenticationFailed"
    (fail,) = _notes(shop, "Fail")
    assert (fail.transaction_id, fail.reason_code) == (challenge.transaction_id, 5206)
    # The bank's late answer changes nothing.
    with pytest.raises(RequestRejectedError, match="not waiting"):
        cloudpayments_client.post3ds(challenge.transaction_id,
                                     cloudpayments_sandbox.pa_res_for(challenge.transaction_id))


# --------------------------------------------------------------------------- in progress


def test_a_payment_waiting_for_3ds_has_no_outcome(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    challenge = cloudpayments_client.charge(
        Decimal("30"), ip_address=IP, culture_name="en-US",
        cryptogram=cloudpayments_sandbox.make_cryptogram(THREE_DS))
    assert isinstance(challenge, ThreeDSChallenge)
    waiting = cloudpayments_client.get_payment(challenge.transaction_id)
    assert waiting.status is TransactionStatus.AWAITING_AUTHENTICATION and waiting.in_progress
    assert (waiting.raw["ReasonCode"], waiting.raw["Reason"],
            waiting.raw["CardHolderMessage"]) == (None, None, None)
    assert waiting.reason_code is None and waiting.reason_info is None
    assert waiting.raw["StatusCode"] == 1 and waiting.auth_code is None
    done = cloudpayments_client.post3ds(challenge.transaction_id,
                                        cloudpayments_sandbox.pa_res_for(challenge.transaction_id))
    assert done.reason_code == 0 and done.reason == "Approved" and not done.in_progress
