"""Payments by cryptogram and token against the in-process sandbox."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import padding

from checkout_kit import cryptogram
from checkout_kit.client import CloudPaymentsClient
from checkout_kit.errors import PaymentDeclined, RequestRejectedError
from checkout_kit.models import ThreeDSChallenge, Transaction, TransactionStatus, TrInitiator
from checkout_kit.sandbox import (
    EXTRA_DECLINES,
    TEST_CARDS,
    Sandbox,
    VirtualClock,
    create_sandbox_app,
    sandbox_of,
)
from checkout_kit.sandbox.rules.settings import SandboxSettings, SaveCards
from checkout_kit.sandbox.store import Store

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors" / "sandbox_cards.json").read_text("utf-8"))["cards"]
IP = "203.0.113.7"
CARD_TYPES = {"Visa": "Visa", "Mastercard": "Mastercard", "MIR": "МИР"}


def _id(card: dict[str, Any]) -> str:
    return card["number"].replace(" ", "")


def test_the_table_is_exactly_the_documented_one() -> None:
    documented = {
        _id(c): (c["three_ds"], c["cryptogram"], c["token"]) for c in VECTORS
    }
    assert {n: (b.three_ds, b.charge_reason, b.token_reason) for n, b in TEST_CARDS.items()} \
        == documented


def _pay(
    client: CloudPaymentsClient, sandbox: Sandbox, number: str, **kw: Any
) -> Transaction:
    """Charge, passing 3-D Secure with Confirm when asked."""
    result = client.charge(kw.pop("amount", Decimal("100.00")), ip_address=IP,
                           cryptogram=sandbox.make_cryptogram(number), **kw)
    if isinstance(result, ThreeDSChallenge):
        return client.post3ds(result.transaction_id, sandbox.pa_res_for(result.transaction_id))
    return result


@pytest.mark.parametrize("card", VECTORS, ids=_id)
def test_each_test_card_by_cryptogram_and_by_token(
    card: dict[str, Any], cloudpayments_client: CloudPaymentsClient,
    cloudpayments_sandbox: Sandbox,
) -> None:
    number = _id(card)
    packet = cloudpayments_sandbox.make_cryptogram(number)
    declines_now = card["cryptogram"] and not card["three_ds"]
    if declines_now:
        with pytest.raises(PaymentDeclined) as declined:
            cloudpayments_client.charge(Decimal("100.00"), ip_address=IP, cryptogram=packet)
        assert declined.value.reason_code == card["cryptogram"]
        return
    first = cloudpayments_client.charge(
        Decimal("100.00"), ip_address=IP, cryptogram=packet, account_id="user-1",
        save_card=True, invoice_id="inv-1",
    )
    if card["three_ds"]:
        challenge = first
        assert isinstance(challenge, ThreeDSChallenge)
        assert challenge.acs_url.endswith("/acs")
        pending = cloudpayments_client.get_payment(challenge.transaction_id)
        assert pending.status is TransactionStatus.AWAITING_AUTHENTICATION
        pa_res = cloudpayments_sandbox.pa_res_for(challenge.transaction_id)
        if card["cryptogram"]:
            with pytest.raises(PaymentDeclined) as declined:
                cloudpayments_client.post3ds(challenge.transaction_id, pa_res)
            assert declined.value.reason_code == card["cryptogram"]
            return
        first = cloudpayments_client.post3ds(challenge.transaction_id, pa_res)
    assert isinstance(first, Transaction)
    assert first.status is TransactionStatus.COMPLETED
    assert first.card_type == CARD_TYPES[card["brand"]]
    assert (first.card_first_six, first.card_last_four) == (number[:6], number[-4:])
    token = first.raw["Token"]
    assert token and token.startswith("tk_")
    if card["token"] == 0:
        again = cloudpayments_client.charge_token(Decimal("5.00"), account_id="user-1", token=token,
                                                tr_initiator_code=TrInitiator.CARDHOLDER)
        assert again.status is TransactionStatus.COMPLETED
        assert again.raw["Token"] == token
    else:
        with pytest.raises(PaymentDeclined) as declined:
            cloudpayments_client.charge_token(Decimal("5.00"), account_id="user-1", token=token,
                                                tr_initiator_code=TrInitiator.CARDHOLDER)
        assert declined.value.reason_code == card["token"]


@pytest.mark.parametrize("number", ["4000056655665556", "5404000000000043", "2203000000000043"])
def test_insufficient_funds_decline_is_the_documented_one(
    number: str, cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    with pytest.raises(PaymentDeclined) as exc:
        cloudpayments_client.charge(Decimal("1"), ip_address=IP,
                                    cryptogram=cloudpayments_sandbox.make_cryptogram(
        number))
    tx = exc.value.transaction
    assert exc.value.reason_code == 5051
    assert tx.reason == "InsufficientFunds"
    assert tx.cardholder_message == "Недостаточно средств на карте"
    assert tx.status is TransactionStatus.DECLINED and tx.status_code == 5


@pytest.mark.parametrize("number,code", sorted(EXTRA_DECLINES.items())[::4])
def test_extra_magic_cards_decline_with_their_code(
    number: str, code: Any, cloudpayments_client: CloudPaymentsClient,
    cloudpayments_sandbox: Sandbox,
) -> None:
    assert number.startswith("400000" + str(code.charge_reason))
    with pytest.raises(PaymentDeclined) as exc:
        cloudpayments_client.charge(Decimal("1"), ip_address=IP,
                                    cryptogram=cloudpayments_sandbox.make_cryptogram(
        number))
    assert exc.value.reason_code == code.charge_reason


@pytest.mark.parametrize("number", ["5500000000000004", "4000000000000002", "2201382000000013"])
def test_any_other_valid_card_is_approved_without_3ds(
    number: str, cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    tx = cloudpayments_client.auth(Decimal("7.77"), ip_address=IP,
                                   cryptogram=cloudpayments_sandbox.make_cryptogram(
        number))
    assert isinstance(tx, Transaction) and tx.status is TransactionStatus.AUTHORIZED


@pytest.mark.parametrize("cvv", ["a123b", "12345"])
def test_a_legacy_script_cvv_pays_as_any_cvv_does(
    cvv: str, cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
    cloudpayments_sandbox_keys: dict[int, bytes],
) -> None:
    # The legacy script encrypts such CVVs (docs/gateway.md §2.5, §7.4); the test cards
    # take any CVV (§8), so the packet pays instead of failing as a format error.
    number = "4000000000003055"
    packet = cloudpayments_sandbox.make_cryptogram(number, format="01")
    header = cryptogram.parse(packet)
    assert header.exp_year is not None and header.exp_month is not None
    plain = (f"{number}@{header.exp_year % 100:02d}{header.exp_month:02d}@{cvv}@"
             f"{cloudpayments_sandbox.public_id}").encode()
    key = cryptogram.load_private_key(cloudpayments_sandbox_keys[header.key_version])
    sealed = base64.b64encode(header.ciphertext).decode()
    legacy = packet[: -len(sealed)] + base64.b64encode(
        key.public_key().encrypt(plain, padding.PKCS1v15())).decode()
    assert cryptogram.decrypt(legacy, cloudpayments_sandbox.keys).cvv == cvv
    tx = cloudpayments_client.charge(Decimal("5.00"), ip_address=IP, cryptogram=legacy)
    assert isinstance(tx, Transaction) and tx.status is TransactionStatus.COMPLETED


#: A frozen virtual now: 2026-03-04 05:06:07 UTC is 1772600767000 ms after the epoch.
T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
T0_MS, T0_ISO = "/Date(1772600767000)/", "2026-03-04T05:06:07"


@pytest.fixture
def frozen(cloudpayments_sandbox_keys: dict[int, bytes]) -> Iterator[tuple[Sandbox,
                                                                          CloudPaymentsClient]]:
    """A sandbox whose clock stands still at :data:`T0`, and a client wired to it."""
    sandbox = sandbox_of(create_sandbox_app(keys=cloudpayments_sandbox_keys,
                                            clock=VirtualClock(T0, frozen=True)))
    with CloudPaymentsClient(sandbox.public_id, sandbox.api_secret, base_url="http://sandbox",
                             transport=httpx.WSGITransport(app=sandbox.app)) as client:
        yield sandbox, client
    sandbox.close()


def test_transaction_model_fields_and_formats(
    frozen: tuple[Sandbox, CloudPaymentsClient],
) -> None:
    sandbox, client = frozen
    tx = client.charge(Decimal("10.50"), ip_address=IP, invoice_id="A-1", description="Tea",
                       json_data={"basket": [1, 2], "price": Decimal("0.10")},
                       email="buyer@example.com", account_id="user-7",
                       cryptogram=sandbox.make_cryptogram("4000000000003055", "11/29"))
    assert isinstance(tx, Transaction)
    rrn = tx.raw["Rrn"]
    assert isinstance(rrn, str) and len(rrn) == 12 and rrn.isdigit()
    assert tx.rrn == rrn
    assert tx.raw == {
        # who and what (docs/gateway.md §3.4)
        "ReasonCode": 0, "PublicId": sandbox.public_id, "TerminalUrl": "http://sandbox.local",
        "TransactionId": 1_000_001, "Type": 0, "TestMode": True, "GatewayName": "Test",
        # money: exact decimals, RUB is CurrencyCode 0
        "Amount": Decimal("10.50"), "Currency": "RUB", "CurrencyCode": 0,
        "PaymentAmount": Decimal("10.50"), "PaymentCurrency": "RUB", "PaymentCurrencyCode": 0,
        "TotalFee": Decimal("0.00"), "Refunded": False, "PayoutAmount": None,
        "PayoutDate": None, "PayoutDateIso": None, "VatAboveTotalFee": None,
        "ProcessorAndPartnerFee": None, "VatWithinProcessorFee": None,
        # the shop's fields, JsonData echoed as JSON text
        "InvoiceId": "A-1", "AccountId": "user-7", "Email": "buyer@example.com",
        "Description": "Tea", "JsonData": '{"basket":[1,2],"price":0.10}', "Name": None,
        # where the offline table places the test range 203.0.113.0/24
        "IpAddress": IP, "IpCountry": "KZ", "IpCity": "Алматы", "IpRegion": "Алматы",
        "IpDistrict": None, "IpLatitude": Decimal("43.25667"),
        "IpLongitude": Decimal("76.92861"), "PaymentMethod": "Card",
        # a one-stage payment is created, authorized and confirmed at the frozen now
        "CreatedDate": T0_MS, "CreatedDateIso": T0_ISO, "AuthDate": T0_MS,
        "AuthDateIso": T0_ISO, "ConfirmDate": T0_MS, "ConfirmDateIso": T0_ISO,
        "AuthCode": "A1B2C3", "Rrn": rrn, "OriginalTransactionId": None,
        "FallBackScenarioDeclinedTransactionId": None,
        # the card as the gateway shows it: never the number
        "CardFirstSix": "400000", "CardLastFour": "3055", "CardExpDate": "11/29",
        "CardType": "Visa", "CardTypeCode": 0, "CardProduct": "Visa Classic",
        "CardCategory": None,
        "Issuer": "CloudPayments", "IssuerBankCountry": "RU", "EscrowAccumulationId": None,
        # outcome
        "Status": "Completed", "StatusCode": 3, "Reason": "Approved",
        "CardHolderMessage": "Оплата успешно проведена", "CultureName": "ru-RU",
        "Token": None, "SubscriptionId": None, "AndroidPay": False, "WalletType": "",
    }


def test_model_of_a_two_stage_payment_by_token_and_its_refund(
    frozen: tuple[Sandbox, CloudPaymentsClient],
) -> None:
    sandbox, client = frozen
    first = client.charge(Decimal("5"), ip_address=IP, account_id="user-7", save_card=True,
                          cryptogram=sandbox.make_cryptogram("5205000000003055", "01/30"),
                          culture_name="en-US")
    assert isinstance(first, Transaction) and first.raw["Token"].startswith("tk_")
    assert (first.raw["CardType"], first.raw["CardTypeCode"]) == ("Mastercard", 1)
    assert first.raw["CardHolderMessage"] == "Payment approved"
    held = client.auth_token(Decimal("3.00"), token=first.raw["Token"], account_id="user-7",
                             currency="USD", tr_initiator_code=1, invoice_id="B-2")
    assert {k: held.raw[k] for k in (
        "Status", "StatusCode", "Currency", "CurrencyCode", "Amount", "AuthDate", "ConfirmDate",
        "ConfirmDateIso", "TrInitiatorCode", "Token", "CardLastFour", "AuthCode")} == {
        "Status": "Authorized", "StatusCode": 2, "Currency": "USD", "CurrencyCode": 1,
        "Amount": Decimal("3.00"), "AuthDate": T0_MS, "ConfirmDate": None,
        "ConfirmDateIso": None, "TrInitiatorCode": 1, "Token": first.raw["Token"],
        "CardLastFour": "3055", "AuthCode": "A1B2C3"}
    client.confirm(held.transaction_id, Decimal("2.00"))
    client.refund(held.transaction_id, Decimal("0.50"))
    payment = client.find_payment("B-2")  # v1: payments only
    refund = client.find_operation("B-2")  # v2: the latest operation, here the refund
    assert {k: payment.raw[k] for k in ("Status", "StatusCode", "Amount", "Refunded")} == {
        "Status": "Completed", "StatusCode": 3, "Amount": Decimal("2.00"), "Refunded": True}
    assert {k: refund.raw[k] for k in (
        "Type", "Amount", "Currency", "OriginalTransactionId", "Status", "StatusCode",
        "Refunded", "CardLastFour", "Token")} == {
        "Type": 1, "Amount": Decimal("0.50"), "Currency": "USD",
        "OriginalTransactionId": held.transaction_id, "Status": "Completed", "StatusCode": 3,
        "Refunded": False, "CardLastFour": "3055", "Token": None}
    assert "TrInitiatorCode" not in refund.raw  # only token payments carry it
    assert "PaymentScheduled" not in refund.raw
    assert (payment.tr_initiator_code, payment.payment_scheduled) == (TrInitiator.CARDHOLDER,
                                                                      False)


def test_the_sandbox_never_keeps_the_card_number(cloudpayments_client: CloudPaymentsClient,
                                                 cloudpayments_sandbox: Sandbox,
                                                 tmp_path: Path) -> None:
    _pay(cloudpayments_client, cloudpayments_sandbox, "4000000000003055", save_card=True,
         account_id="a")
    store = Store(tmp_path / "s.sqlite3")
    store.write_all(cloudpayments_sandbox.state)
    store.close()
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())  # the database and its WAL
    assert b"4000000000003055" not in blob and b"400000" in blob
    assert "4000000000003055" not in repr(cloudpayments_sandbox.state)


# ----------------------------------------------------------------------------- cryptograms


@pytest.mark.parametrize("fmt", ["01", "02", "cloudcard", "cloudcard-ios"])
def test_every_packet_format_pays(fmt: str, cloudpayments_client: CloudPaymentsClient,
                                  cloudpayments_sandbox: Sandbox) -> None:
    packet = cloudpayments_sandbox.make_cryptogram("4000000000003055", format=fmt)
    tx = cloudpayments_client.charge(Decimal("1"), ip_address=IP, cryptogram=packet)
    assert isinstance(tx, Transaction) and tx.card_last_four == "3055"


def test_find_answers_the_latest_attempt_of_an_invoice(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    # A payer declined, then approved on retry, then declined again, all for one invoice:
    # v1 and v2 find answer the latest each time, not the first nor the approved one.
    def attempt(number: str) -> int:
        packet = cloudpayments_sandbox.make_cryptogram(number)
        try:
            tx = cloudpayments_client.charge(Decimal("10"), ip_address=IP, cryptogram=packet,
                                             invoice_id="L-1")
        except PaymentDeclined as exc:
            assert isinstance(exc.transaction, Transaction)
            return exc.transaction.transaction_id
        assert isinstance(tx, Transaction)
        return tx.transaction_id

    declined = attempt("4000056655665556")
    approved = attempt("4000000000003055")
    for find in (cloudpayments_client.find_payment, cloudpayments_client.find_operation):
        found = find("L-1")
        assert (found.transaction_id, found.status) == (approved, TransactionStatus.COMPLETED)
    again = attempt("4000056655665556")
    assert len({declined, approved, again}) == 3
    for find in (cloudpayments_client.find_payment, cloudpayments_client.find_operation):
        found = find("L-1")
        assert (found.transaction_id, found.status) == (again, TransactionStatus.DECLINED)


def _declined_with(client: CloudPaymentsClient, packet: str) -> int:
    with pytest.raises(PaymentDeclined) as exc:
        client.charge(Decimal("1"), ip_address=IP, cryptogram=packet)
    return exc.value.reason_code


def test_packet_for_another_public_id_is_declined(cloudpayments_client: CloudPaymentsClient,
                                                  cloudpayments_sandbox: Sandbox) -> None:
    packet = cloudpayments_sandbox.make_cryptogram("4000000000003055",
                                                   public_id="test_api_00000000000000000000002")
    assert _declined_with(cloudpayments_client, packet) == 5003


def test_expired_card_is_declined_by_the_virtual_clock(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    now = cloudpayments_sandbox.now()
    this_month = f"{now.month:02d}/{now.year % 100:02d}"
    valid = cloudpayments_sandbox.make_cryptogram("4000000000003055", this_month)
    assert isinstance(cloudpayments_client.charge(Decimal("1"), ip_address=IP, cryptogram=valid),
                      Transaction)
    cloudpayments_sandbox.advance(timedelta(days=32))
    assert _declined_with(cloudpayments_client, valid) == 5054


def test_unknown_key_version_and_bad_packets_are_declined(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    other, _ = cryptogram.generate_key_pair(1024)
    foreign = cryptogram.build("4000000000003055", "12/35", "123", cloudpayments_sandbox.public_id,
                               key=cryptogram.load_private_key(other).public_key(), key_version=7)
    assert _declined_with(cloudpayments_client, foreign) == 5030
    wrong_key = cryptogram.build("4000000000003055", "12/35", "123",
                                 cloudpayments_sandbox.public_id, key_version=4)  # published key
    assert _declined_with(cloudpayments_client, wrong_key) == 5030
    assert _declined_with(cloudpayments_client, "01not-a-packet") == 5030
    luhn_bad = cloudpayments_sandbox.make_cryptogram("4000000000003056")
    assert _declined_with(cloudpayments_client, luhn_bad) == 5014
    listed = cloudpayments_client.list_payments(cloudpayments_sandbox.now().date())
    assert [t.reason_code for t in listed] == [5030, 5030, 5030, 5014]
    assert listed[0].card_last_four == "3055"  # from the packet's clear header


@pytest.mark.parametrize("fmt", ["03", "02-cvv"])
def test_no_cvv_only_packet_pays(
    fmt: str, cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    # Which field takes a CVV-only packet is UNCONFIRMED (docs/gateway.md §1.6): as a
    # CardCryptogramPacket none pays, whatever its format or padding.
    packet = cloudpayments_sandbox.make_cryptogram("4000000000003055", cvv="123", format=fmt)
    assert cryptogram.decrypt(packet, cloudpayments_sandbox.keys).card_number is None
    assert _declined_with(cloudpayments_client, packet) == 5030


def test_missing_fields_are_request_errors(cloudpayments_client: CloudPaymentsClient,
                                           cloudpayments_sandbox: Sandbox) -> None:
    http = cloudpayments_client._http
    answer = http.post("/payments/cards/charge", json={"IpAddress": IP}).json()
    assert answer == {"Success": False, "Message": "Amount is required"}
    answer = http.post("/payments/cards/charge", json={"Amount": 1, "IpAddress": IP}).json()
    assert answer["Message"] == "CardCryptogramPacket is required"
    answer = http.post("/payments/cards/charge", json={"Amount": "1.001", "IpAddress": IP,
                                                       "CardCryptogramPacket": "x"}).json()
    assert answer["Success"] is False and answer["Message"].startswith("Amount is invalid")
    assert cloudpayments_sandbox.state.transactions == {}


def test_form_bodies_and_case_insensitive_paths(cloudpayments_client: CloudPaymentsClient,
                                                cloudpayments_sandbox: Sandbox) -> None:
    http = cloudpayments_client._http
    answer = http.post("/Payments/Cards/Charge", data={
        "amount": "12.30", "ipaddress": IP, "CardCryptogramPacket":
        cloudpayments_sandbox.make_cryptogram("2202000000003055"), "SaveCard": "true",
        "JsonData": '{"a": 1}'}).json()
    assert answer["Success"] is True and answer["Model"]["Amount"] == 12.3
    assert answer["Model"]["CardType"] == "МИР" and answer["Model"]["Token"]


def test_numbers_too_large_to_write_out_are_refused(cloudpayments_client: CloudPaymentsClient,
                                                    cloudpayments_sandbox: Sandbox) -> None:
    http = cloudpayments_client._http
    packet = cloudpayments_sandbox.make_cryptogram("4000000000003055")
    for field in ('"InvoiceId": 1e100000000', '"JsonData": {"n": 1e-50000000}',
                  '"Description": NaN'):
        body = f'{{"Amount": 1, "IpAddress": "{IP}", "CardCryptogramPacket": "{packet}", {field}}}'
        answer = http.post("/payments/cards/charge", content=body,
                           headers={"Content-Type": "application/json"})
        assert answer.status_code == 400 and answer.json()["Success"] is False
        assert len(answer.content) < 200
    assert cloudpayments_sandbox.state.transactions == {}


# ----------------------------------------------------------------------------- two stages


def test_auth_confirm_partial_once(cloudpayments_client: CloudPaymentsClient,
                                   cloudpayments_sandbox: Sandbox) -> None:
    tx = cloudpayments_client.auth(Decimal("100"), ip_address=IP,
                                   cryptogram=cloudpayments_sandbox.make_cryptogram(
        "4000000000003055"))
    assert isinstance(tx, Transaction) and tx.status is TransactionStatus.AUTHORIZED
    assert tx.status_code == 2 and tx.confirm_at is None
    with pytest.raises(RequestRejectedError):
        cloudpayments_client.confirm(tx.transaction_id, Decimal("100.01"))
    with pytest.raises(RequestRejectedError):
        cloudpayments_client.refund(tx.transaction_id, Decimal("1"))
    with pytest.raises(RequestRejectedError):  # refused before the payment changes
        cloudpayments_client.confirm(tx.transaction_id, Decimal("60"), json_data="{\"a\": NaN}")
    assert cloudpayments_client.get_payment(tx.transaction_id).status is (
        TransactionStatus.AUTHORIZED)
    cloudpayments_client.confirm(tx.transaction_id, Decimal("60"))
    done = cloudpayments_client.get_payment(tx.transaction_id)
    assert done.status is TransactionStatus.COMPLETED and done.amount == Decimal("60.00")
    with pytest.raises(RequestRejectedError):
        cloudpayments_client.confirm(tx.transaction_id, Decimal("10"))
    with pytest.raises(RequestRejectedError):
        cloudpayments_client.void(tx.transaction_id)


def test_void_authorized_only(cloudpayments_client: CloudPaymentsClient,
                              cloudpayments_sandbox: Sandbox) -> None:
    held = cloudpayments_client.auth(Decimal("5"), ip_address=IP,
                                     cryptogram=cloudpayments_sandbox.make_cryptogram(
        "4000000000003055"))
    cloudpayments_client.void(held.transaction_id)
    assert cloudpayments_client.get_payment(held.transaction_id).status == "Cancelled"
    with pytest.raises(RequestRejectedError):
        cloudpayments_client.confirm(held.transaction_id, Decimal("5"))
    paid = _pay(cloudpayments_client, cloudpayments_sandbox, "4000000000003055")
    with pytest.raises(RequestRejectedError):
        cloudpayments_client.void(paid.transaction_id)
    with pytest.raises(RequestRejectedError, match="not found"):
        cloudpayments_client.void(999)


def test_authorizations_are_cancelled_after_seven_days(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    held = cloudpayments_client.auth(Decimal("5"), ip_address=IP,
                                     cryptogram=cloudpayments_sandbox.make_cryptogram(
        "4000000000003055"))
    cloudpayments_sandbox.advance(timedelta(days=6, hours=23))
    assert cloudpayments_client.get_payment(held.transaction_id).status == "Authorized"
    cloudpayments_sandbox.advance(timedelta(hours=2))
    assert cloudpayments_client.get_payment(held.transaction_id).status == "Cancelled"


def test_optional_auto_confirm_after_n_days(cloudpayments_client: CloudPaymentsClient,
                                            cloudpayments_sandbox: Sandbox) -> None:
    cloudpayments_sandbox.settings.auto_confirm_after = timedelta(days=2)
    held = cloudpayments_client.auth(Decimal("5"), ip_address=IP,
                                     cryptogram=cloudpayments_sandbox.make_cryptogram(
        "4000000000003055"))
    cloudpayments_sandbox.advance(timedelta(days=3))
    done = cloudpayments_client.get_payment(held.transaction_id)
    assert done.status is TransactionStatus.COMPLETED and done.confirm_at is not None


# ----------------------------------------------------------------------------- refunds


def test_refunds_partial_several_never_above_amount(cloudpayments_client: CloudPaymentsClient,
                                                    cloudpayments_sandbox: Sandbox) -> None:
    paid = _pay(cloudpayments_client, cloudpayments_sandbox, "4000000000003055",
                amount=Decimal("100"), invoice_id="R-1")
    first = cloudpayments_client.refund(paid.transaction_id, Decimal("30"))
    second = cloudpayments_client.refund(paid.transaction_id, Decimal("70"))
    assert len({first.transaction_id, second.transaction_id, paid.transaction_id}) == 3
    with pytest.raises(RequestRejectedError):
        cloudpayments_client.refund(paid.transaction_id, Decimal("0.01"))
    refund = cloudpayments_client.get_payment(first.transaction_id)
    assert refund.type == 1 and refund.original_transaction_id == paid.transaction_id
    assert refund.amount == Decimal("30.00")
    # Both answer one transaction, the latest match (docs/gateway.md §3.5): v2 sees the
    # refunds, v1 the payments only.
    latest = cloudpayments_client.find_operation("R-1")
    assert latest.transaction_id == second.transaction_id and latest.type == 1
    assert cloudpayments_client.find_payment("R-1").transaction_id == paid.transaction_id
    http = cloudpayments_client._http
    for path in ("/payments/find", "/v2/payments/find"):
        answer = http.post(path, json={"InvoiceId": "R-1"}).json()
        assert isinstance(answer["Model"], dict), path
    assert http.post("/v2/payments/find", json={"InvoiceId": "nope"}).json() == {
        "Success": False, "Message": "Not found"}
    assert cloudpayments_client.get_payment(paid.transaction_id).refunded is True


def test_no_refund_after_one_year(cloudpayments_client: CloudPaymentsClient,
                                  cloudpayments_sandbox: Sandbox) -> None:
    paid = _pay(cloudpayments_client, cloudpayments_sandbox, "4000000000003055")
    cloudpayments_sandbox.advance(timedelta(days=366))
    with pytest.raises(RequestRejectedError, match="one year"):
        cloudpayments_client.refund(paid.transaction_id, Decimal("1"))


def test_declined_payments_cannot_be_refunded(cloudpayments_client: CloudPaymentsClient,
                                              cloudpayments_sandbox: Sandbox) -> None:
    with pytest.raises(PaymentDeclined) as exc:
        _pay(cloudpayments_client, cloudpayments_sandbox, "4000056655665556")
    with pytest.raises(RequestRejectedError):
        cloudpayments_client.refund(exc.value.transaction.transaction_id, Decimal("1"))


# ----------------------------------------------------------------------------- tokens


def test_token_rules(cloudpayments_client: CloudPaymentsClient,
                     cloudpayments_sandbox: Sandbox) -> None:
    plain = _pay(cloudpayments_client, cloudpayments_sandbox, "4000000000003055")
    assert plain.raw["Token"] is None  # no SaveCard, default setting
    saved = _pay(cloudpayments_client, cloudpayments_sandbox, "5205000000003055",
                 save_card=True, account_id="acc-9")
    token = saved.raw["Token"]
    with pytest.raises(RequestRejectedError, match="AccountId"):
        cloudpayments_client.charge_token(Decimal("1"), account_id="someone-else", token=token,
                                         tr_initiator_code=TrInitiator.CARDHOLDER)
    with pytest.raises(RequestRejectedError, match="Token not found"):
        cloudpayments_client.charge_token(Decimal("1"), account_id="acc-9", token="tk_nope",
                                         tr_initiator_code=TrInitiator.CARDHOLDER)
    held = cloudpayments_client.auth_token(Decimal("2"), account_id="acc-9", token=token,
                                           tr_initiator_code=0, payment_scheduled=True)
    assert held.status is TransactionStatus.AUTHORIZED and held.raw["TrInitiatorCode"] == 0
    http = cloudpayments_client._http
    answer = http.post("/payments/tokens/charge",
                       json={"Amount": 1, "Token": token, "TrInitiatorCode": 1}).json()
    assert answer == {"Success": False, "Message": "AccountId is required"}
    tokens = cloudpayments_client.list_tokens()
    assert [(t.account_id, t.card_mask) for t in tokens] == [("acc-9", "520500******3055")]


def test_always_save_cards_setting(cloudpayments_client: CloudPaymentsClient,
                                   cloudpayments_sandbox: Sandbox) -> None:
    cloudpayments_sandbox.settings.save_cards = SaveCards.ALWAYS
    tx = _pay(cloudpayments_client, cloudpayments_sandbox, "4000000000003055")
    assert tx.raw["Token"]


@pytest.mark.parametrize("setting,save_card,saved", [
    (SaveCards.OFF, True, False),
    (SaveCards.OFF, False, False),
    (SaveCards.ON_REQUEST, True, True),
    (SaveCards.ON_REQUEST, False, False),
    (SaveCards.ALWAYS, False, True),
])
def test_the_save_cards_options(cloudpayments_client: CloudPaymentsClient,
                                cloudpayments_sandbox: Sandbox, setting: SaveCards,
                                save_card: bool, saved: bool) -> None:
    assert SandboxSettings().save_cards is SaveCards.ON_REQUEST  # the documented default
    cloudpayments_sandbox.settings.save_cards = setting
    tx = _pay(cloudpayments_client, cloudpayments_sandbox, "4000000000003055",
              save_card=save_card, account_id="acc-1")
    assert bool(tx.token) is saved
    assert bool(cloudpayments_client.list_tokens()) is saved


# ----------------------------------------------------------------------------- lookups


def test_get_find_and_lists(cloudpayments_client: CloudPaymentsClient,
                            cloudpayments_sandbox: Sandbox) -> None:
    start = cloudpayments_sandbox.now()
    first = _pay(cloudpayments_client, cloudpayments_sandbox, "4000000000003055", invoice_id="F")
    with pytest.raises(PaymentDeclined):
        _pay(cloudpayments_client, cloudpayments_sandbox, "4000056655665556", invoice_id="F")
    with pytest.raises(RequestRejectedError, match="Not found"):
        cloudpayments_client.find_payment("missing")
    latest = cloudpayments_client.find_payment("F")
    assert latest.transaction_id == first.transaction_id + 1
    assert latest.status is TransactionStatus.DECLINED
    end = cloudpayments_sandbox.now() + timedelta(seconds=1)
    every = cloudpayments_client.list_payments_v2(start - timedelta(seconds=1), end)
    assert [t.transaction_id for t in every] == [first.transaction_id, first.transaction_id + 1]
    only = cloudpayments_client.list_payments_v2(start - timedelta(seconds=1), end,
                                                 statuses=["Declined"])
    assert [t.status for t in only] == [TransactionStatus.DECLINED]
    assert cloudpayments_client.list_payments_v2(start, end, page=2) == []
    day = cloudpayments_client.list_payments(start.date(), timezone="UTC")
    assert len(day) == 2
    assert cloudpayments_client.test()
