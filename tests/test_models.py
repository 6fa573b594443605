"""checkout_kit.models: parsing the gateway's models, dates, enums and safe reprs."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checkout_kit import models
from checkout_kit.models import (
    CardToken,
    Interval,
    NotificationSettings,
    Order,
    PublicKeyInfo,
    Refund,
    Subscription,
    SubscriptionStatus,
    ThreeDSChallenge,
    Transaction,
    TransactionStatus,
    TrInitiator,
    as_reason_code,
    is_three_ds_model,
    mask_email,
    mask_ip,
    mask_name,
    mask_phone,
    mask_token,
    parse_api_datetime,
)
from checkout_kit.reasons import ReasonCode

_DATA = json.loads(
    (Path(__file__).parent / "vectors" / "api_responses.json").read_text("utf-8"),
    parse_float=Decimal,
)
RESPONSES: dict[str, Any] = _DATA["responses"]
DATES: list[dict[str, Any]] = _DATA["dates"]


def model(name: str) -> dict[str, Any]:
    return dict(RESPONSES[name]["body"]["Model"])


# --- dates --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", DATES, ids=lambda c: repr(c["in"]))
def test_date_vectors(case: dict[str, Any]) -> None:
    if case.get("error"):
        with pytest.raises(ValueError):
            parse_api_datetime(case["in"])
        return
    parsed = parse_api_datetime(case["in"])
    if case["utc"] is None:
        assert parsed is None
    else:
        assert parsed is not None and parsed.tzinfo is not None
        assert parsed.isoformat() == case["utc"]


@given(st.integers(min_value=-(10**12), max_value=4 * 10**12))
def test_ms_dates_are_exact_to_the_millisecond(ms: int) -> None:
    parsed = parse_api_datetime(f"/Date({ms})/")
    assert parsed is not None
    assert (parsed - datetime(1970, 1, 1, tzinfo=UTC)) == timedelta(milliseconds=ms)


def test_datetimes_pass_through_as_utc() -> None:
    naive = datetime(2030, 1, 1, 12, 0)
    assert parse_api_datetime(naive) == naive.replace(tzinfo=UTC)
    moscow = datetime(2030, 1, 1, 15, 0, tzinfo=UTC) + timedelta(0)
    assert parse_api_datetime(moscow).tzinfo is UTC  # type: ignore[union-attr]


def test_ms_date_wins_over_its_iso_twin() -> None:
    # The order example's CreatedDateIso is Moscow time; /Date(ms)/ is the instant.
    order = Order.from_api(model("order_create"))
    assert order.created_at == datetime(2021, 11, 2, 6, 52, 10, 555000, tzinfo=UTC)
    tx_model = model("auth_accepted") | {"CreatedDate": None}
    assert Transaction.from_api(tx_model).created_at == datetime(
        2021, 10, 25, 8, 23, 44, tzinfo=UTC
    )


# --- transactions -------------------------------------------------------------------------


def test_transaction_from_docs_example() -> None:
    tx = Transaction.from_api(model("auth_accepted"))
    assert tx.transaction_id == 891510444
    assert tx.amount == Decimal("10.00") and str(tx.amount) == "10.00"
    assert tx.status is TransactionStatus.AUTHORIZED and tx.status_code == 2
    assert tx.reason_code is ReasonCode.APPROVED and not tx.is_declined
    assert tx.payment_amount == Decimal("10.00") and tx.payment_currency == "RUB"
    assert tx.auth_code == "A1B2C3" and tx.test_mode is True and tx.refunded is False
    assert tx.raw["CardCategory"] == "Visa Signature (Signature)"


def test_declined_transaction_carries_the_reason_row() -> None:
    tx = Transaction.from_api(model("charge_declined_5051"))
    assert tx.is_declined
    assert tx.reason_code == ReasonCode.INSUFFICIENT_FUNDS
    assert tx.reason_info.name == "InsufficientFunds"
    assert tx.reason_info.message("en-US") == "Insufficient funds on the card"


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"Status": "Refunding"}, "status", "Refunding"),
        ({"Status": "Completed"}, "status", TransactionStatus.COMPLETED),
        ({"ReasonCode": 7777}, "reason_code", 7777),
        ({"ReasonCode": "5051"}, "reason_code", ReasonCode.INSUFFICIENT_FUNDS),
        ({"ReasonCode": None}, "reason_code", 0),
        ({"Amount": 12.34}, "amount", Decimal("12.34")),
        ({"Amount": "0.1"}, "amount", Decimal("0.10")),
        ({"Amount": Decimal("1.005")}, "amount", Decimal("1.005")),  # never rounded away
        ({"Amount": 100, "Currency": "XYZ"}, "amount", Decimal("100")),
        ({"TestMode": "True"}, "test_mode", True),
        ({"TestMode": 0}, "test_mode", False),
        ({"TransactionId": "891510444"}, "transaction_id", 891510444),
        ({"TransactionId": "9223372036854775807"}, "transaction_id", 2**63 - 1),
        ({"JsonData": '{"a": [1, 2.50]}'}, "json_data", {"a": [1, Decimal("2.50")]}),
        ({"JsonData": "plain text"}, "json_data", "plain text"),
        ({"JsonData": '"quoted"'}, "json_data", '"quoted"'),
        ({"JsonData": ""}, "json_data", None),
        ({"JsonData": {"a": 1}}, "json_data", {"a": 1}),
    ],
)
def test_transaction_field_parsing(changes: dict[str, Any], field: str, expected: Any) -> None:
    got = getattr(Transaction.from_api(model("auth_accepted") | changes), field)
    assert got == expected and type(got) is type(expected)


def test_unknown_reason_code_gets_a_generic_row() -> None:
    tx = Transaction.from_api(model("auth_accepted") | {"ReasonCode": 7777})
    assert tx.reason_info.code == 7777 and tx.reason_info.name == "Reason7777"


@pytest.mark.parametrize(
    "changes",
    [
        {"TransactionId": None},
        {"TransactionId": "abc"},
        {"TransactionId": True},
        {"Amount": None},
        {"Amount": "ten"},
        {"Amount": "NaN"},
        {"Amount": True},
        {"TestMode": "maybe"},
        {"CreatedDate": "/Date(x)/"},
        {"ReasonCode": "x"},
        {"StatusCode": 2.5},
        {"Currency": ["RUB"]},
        {"CreatedDate": "/Date(99999999999999999999)/"},
        {"AuthDate": "/Date(-99999999999999999999)/"},
        {"CreatedDate": "/Date(" + "9" * 5000 + ")/"},
        {"TransactionId": Decimal("1e100000000")},
        {"TransactionId": Decimal("Infinity")},
        {"StatusCode": Decimal("NaN")},
        {"StatusCode": float("inf")},
        # Ids that do not fit the ledger's BIGINT columns (2**63 - 1 is the largest).
        {"TransactionId": 9999999999999999999},
        {"TransactionId": "9223372036854775808"},
        {"TransactionId": Decimal("9223372036854775808")},
        {"OriginalTransactionId": 2**63},
    ],
)
def test_malformed_transaction_raises_value_error(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Transaction.from_api(model("auth_accepted") | changes)


@pytest.mark.parametrize("not_a_model", [None, [], "x", 5])
def test_models_require_an_object(not_a_model: Any) -> None:
    for cls in (
        Transaction,
        ThreeDSChallenge,
        Refund,
        CardToken,
        Subscription,
        Order,
        NotificationSettings,
        PublicKeyInfo,
    ):
        with pytest.raises(ValueError):
            cls.from_api(not_a_model)


def test_as_reason_code() -> None:
    assert as_reason_code(5206) is ReasonCode.AUTHENTICATION_FAILED
    assert as_reason_code(3006) is ReasonCode.CHECK_UNAVAILABLE
    assert as_reason_code(12) == 12 and not isinstance(as_reason_code(12), ReasonCode)


# --- 3-D Secure ---------------------------------------------------------------------------


def test_three_ds_challenge() -> None:
    m = model("charge_3ds_required")
    assert is_three_ds_model(m)
    challenge = ThreeDSChallenge.from_api(m)
    assert challenge.transaction_id == 891463508 and challenge.md == "891463508"
    assert challenge.acs_url == "https://demo.cloudpayments.ru/acs"
    assert challenge.iframe_is_allowed is True and challenge.frame_height is None
    assert challenge.three_ds_callback_id == "7be4d37f0a434c0a8a7fc0e328368d7d"
    # The callback id finishes the 3-D Secure step: never whole in a repr.
    assert "7be4d37f0a434c0a8a7fc0e328368d7d" not in repr(challenge)
    assert "three_ds_callback_id='7be4" in repr(challenge)


@pytest.mark.parametrize(
    "changes", [{"AcsUrl": ""}, {"PaReq": None}, {"AcsUrl": 5}, {"TransactionId": None}]
)
def test_not_a_three_ds_model(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ThreeDSChallenge.from_api(model("charge_3ds_required") | changes)


def test_transaction_model_is_not_three_ds() -> None:
    assert not is_three_ds_model(model("charge_declined_5051"))
    assert not is_three_ds_model(None)


# --- subscriptions, orders, tokens, settings, key -----------------------------------------


def test_subscription() -> None:
    sub = Subscription.from_api(model("subscription_create"))
    assert sub.id == "sc_221da6421dc44dbd2cc3464f6f083"
    assert sub.status is SubscriptionStatus.ACTIVE and sub.interval is Interval.DAY
    assert sub.amount == Decimal("399.00") and sub.period == 5 and sub.max_periods is None
    assert sub.start_date == datetime(2021, 11, 2, 21, 0, tzinfo=UTC)
    assert sub.successful_transactions_number == 0 and sub.last_transaction_date is None


def test_subscription_unknown_enums_are_kept() -> None:
    sub = Subscription.from_api(
        model("subscription_create") | {"Interval": "Year", "Status": "Paused"}
    )
    assert sub.interval == "Year" and sub.status == "Paused"


def test_order() -> None:
    order = Order.from_api(model("order_create"))
    assert order.id == "gASGZVgUN21hcpPF" and order.number == 2130
    assert order.url == "https://orders.cloudpayments.ru/d/gASGZVgUN21hcpPF"
    assert order.amount == Decimal("10.00") and order.require_confirmation is True


def test_card_token_and_settings_and_key() -> None:
    token = CardToken.from_api(RESPONSES["list_tokens"]["body"]["Model"][0])
    assert token.exp_month == 12 and token.exp_year == 2030
    settings = NotificationSettings.from_api(model("notification_settings_pay"))
    assert settings.is_enabled and settings.http_method == "POST"
    key = PublicKeyInfo.from_api(RESPONSES["public_key"]["body"])
    assert key.version == 4 and key.pem.startswith("-----BEGIN PUBLIC KEY-----")
    with pytest.raises(ValueError):
        PublicKeyInfo.from_api({"Pem": "", "Version": 4})
    with pytest.raises(ValueError):
        CardToken.from_api({"AccountId": "a"})


# --- reprs keep secrets out ---------------------------------------------------------------


def test_reprs_leave_out_tokens_and_personal_data() -> None:
    tx = Transaction.from_api(
        model("auth_accepted") | {"Email": "payer@example.com", "JsonData": '{"phone": "+7999"}'}
    )
    text = repr(tx)
    for secret in (
        "0a0afb77-8f41-4de2-9524-1057f9695303",
        "payer@example.com",
        "CARDHOLDER NAME",
        "123.123.123.123",
        "+7999",
    ):
        assert secret not in text
    assert "891510444" in text and "411111" in text
    assert tx.token_hint == "0a0afb…5303"
    token = CardToken.from_api(RESPONSES["list_tokens"]["body"]["Model"][0])
    assert "tk_020a924486aa4df254331afa33f2a" not in repr(token)
    challenge = ThreeDSChallenge.from_api(model("charge_3ds_required"))
    assert challenge.pa_req not in repr(challenge)
    assert "BEGIN PUBLIC KEY" not in repr(PublicKeyInfo.from_api(RESPONSES["public_key"]["body"]))


@pytest.mark.parametrize(
    ("token", "hint"),
    [(None, None), ("short", "…"), ("tk_255c42192323f2e09ea17635302c3", "tk_255…02c3")],
)
def test_mask_token(token: str | None, hint: str | None) -> None:
    assert mask_token(token) == hint


@pytest.mark.parametrize(
    ("mask", "value", "shown"),
    [
        (mask_email, "payer@example.com", "p…@example.com"),
        (mask_email, "not an address", "…"),
        (mask_email, "@example.com", "…"),
        (mask_name, "CARDHOLDER NAME", "C… N…"),
        (mask_name, "   ", "…"),
        (mask_phone, "+7 (999) 123-45-67", "…67"),
        (mask_phone, "12345", "…"),
        (mask_ip, "203.0.113.7", "203.0.*.*"),
        (mask_ip, "2001:db8::1", "2001:0db8:…"),
        (mask_ip, "localhost", "…"),
    ],
)
def test_masks(mask: Callable[[str], str], value: str, shown: str) -> None:
    assert mask(value) == shown


PERSONAL = {"token", "email", "name", "phone", "ip_address"}
PUBLIC_DATACLASSES = [
    obj for name in models.__all__
    if dataclasses.is_dataclass(obj := getattr(models, name)) and isinstance(obj, type)
]


@pytest.mark.parametrize("cls", PUBLIC_DATACLASSES, ids=lambda c: c.__name__)
def test_every_personal_field_is_masked_or_left_out(cls: type[Any]) -> None:
    for item in dataclasses.fields(cls):
        if item.name in PERSONAL:
            assert not item.repr or item.metadata.get("mask"), f"{cls.__name__}.{item.name}"


PERSONAL_MODEL = {
    "Token": "tk_255c42192323f2e09ea17635302c3", "Email": "payer@example.com",
    "Name": "IVAN PETROV", "Phone": "+79991234567", "IpAddress": "198.51.100.23",
}
MODEL_OF = {
    Transaction: "auth_accepted", Subscription: "subscription_create", Order: "order_create",
}


@pytest.mark.parametrize("cls", [Transaction, Subscription, Order, CardToken],
                         ids=lambda c: c.__name__)
def test_reprs_show_personal_data_only_masked(cls: type[Any]) -> None:
    base = model(MODEL_OF[cls]) if cls in MODEL_OF else {"AccountId": "user_x"}
    obj = cls.from_api(base | PERSONAL_MODEL)
    text = repr(obj)
    for value in PERSONAL_MODEL.values():
        assert value not in text
    for item in dataclasses.fields(cls):
        mask = item.metadata.get("mask")
        if mask is not None:
            assert f"{item.name}={mask(getattr(obj, item.name))!r}" in text
    assert text.startswith(cls.__name__ + "(")


def test_models_are_hashable_and_comparable() -> None:
    a = Transaction.from_api(model("auth_accepted"))
    b = Transaction.from_api(model("auth_accepted"))
    assert a == b and hash(a) == hash(b)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.amount = Decimal(1)  # type: ignore[misc]


def test_equal_date_texts_give_equal_values() -> None:
    tx = Transaction.from_api(model("auth_accepted") | {
        "CreatedDate": "/Date(1635150224000)/", "AuthDate": "/Date(1635150224000)/",
        "ConfirmDate": " /Date(1635150224000)/", "PayoutDate": "", "PayoutDateIso": None,
    })
    when = datetime(2021, 10, 25, 8, 23, 44, tzinfo=UTC)
    assert tx.created_at == tx.auth_at == tx.confirm_at == when and tx.payout_at is None
    with pytest.raises(ValueError, match="not a date"):
        Transaction.from_api(model("auth_accepted") | {"CreatedDate": "/Date(1)/",
                                                       "AuthDate": "yesterday"})


def test_a_payment_waiting_for_3ds_has_no_outcome() -> None:
    model = {"TransactionId": 9, "Amount": 5, "Currency": "RUB",
             "Status": "AwaitingAuthentication", "StatusCode": 1,
             "ReasonCode": None, "Reason": None, "CardHolderMessage": None}
    tx = Transaction.from_api(model)
    assert tx.in_progress and tx.reason_code is None and tx.reason_info is None
    done = Transaction.from_api({**model, "Status": "Completed", "ReasonCode": None})
    assert done.reason_code == 0 and not done.in_progress  # a missing code on a result: 0


def test_initiator_and_gateway_filled_fields() -> None:
    tx = Transaction.from_api({
        "TransactionId": 9, "Amount": 5, "TrInitiatorCode": 0, "PaymentScheduled": 1,
        "Rrn": "000123456789", "CardProduct": "Visa Classic", "CardCategory": "Debit",
        "PaymentMethod": "Card", "IpCountry": "RU", "IpRegion": "Москва", "IpCity": "Москва",
        "IpDistrict": "Центральный федеральный округ", "IpLatitude": 55.75222,
        "IpLongitude": Decimal("37.61556")})
    assert tx.tr_initiator_code is TrInitiator.MERCHANT and tx.payment_scheduled is True
    assert (tx.rrn, tx.card_product, tx.card_category, tx.payment_method) == (
        "000123456789", "Visa Classic", "Debit", "Card")
    assert (tx.ip_latitude, tx.ip_longitude) == (Decimal("55.75222"), Decimal("37.61556"))
    assert "Москва" not in repr(tx) and "55.75" not in repr(tx)
    assert Transaction.from_api({"TransactionId": 9, "Amount": 5,
                                 "TrInitiatorCode": 7}).tr_initiator_code == 7  # newer: kept
