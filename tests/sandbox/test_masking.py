"""Reprs of the sandbox's records mask personal data and secrets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from checkout_kit.sandbox import Sandbox, SandboxSettings
from checkout_kit.sandbox.rules.masking import mask_text, masked_repr
from checkout_kit.sandbox.rules.params import PaymentRequest
from checkout_kit.sandbox.rules.records import (
    CardInfo,
    Delivery,
    Order,
    SandboxState,
    StoredResponse,
    Subscription,
    TokenRecord,
    Transaction,
    TxStatus,
    TxType,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
TOKEN = "tk_0123456789abcdef0123456789abc"
EMAIL = "ivan.petrov@example.com"
NAME = "Ivan Petrov"
PHONE = "+7 912 345-67-89"
IP = "203.0.113.77"
PERSONAL = (TOKEN, "ivan.petrov", "Petrov", "345-67", "203.0.113.77")


def _clean(text: str) -> None:
    for value in PERSONAL:
        assert value not in text, value


def test_sandbox_maskers() -> None:
    # The personal-data maskers are checkout_kit.models' (tests/test_models.py).
    assert mask_text("a=1&b=2") == "<7 hidden>"
    assert mask_text({"a": 1}) == "<1 hidden>"
    assert mask_text(7) == "<? hidden>"


def test_transaction_repr() -> None:
    tx = Transaction(1, "pk", TxType.PAYMENT, Decimal("10.00"), "RUB", TxStatus.COMPLETED, NOW,
                     email=EMAIL, name=NAME, ip_address=IP, token=TOKEN,
                     json_data={"phone": PHONE}, account_id="user-7",
                     three_ds_callback_id="cb0123456789abcdef0123456789abcd")
    text = repr(tx)
    _clean(text)
    assert "cb0123456789abcdef0123456789abcd" not in text  # it finishes the 3-D Secure step
    assert "email=i…@example.com" in text and "name=I… P…" in text
    assert "ip_address=203.0.*.*" in text and "token=tk_012…9abc" in text
    assert "amount=Decimal('10.00')" in text and "account_id='user-7'" in text
    assert "invoice_id=None" in text  # None stays None


def test_other_records() -> None:
    info = CardInfo("424242", "4242", 12, 2030, "Visa", 0)
    records = [
        TokenRecord(TOKEN, "pk", "user", info, NOW),
        Subscription("sc_1", "pk", "user", TOKEN, "d", EMAIL, Decimal(1), "RUB", False, NOW,
                     "Month", 1, None, None, "Active", NOW, receipt={"Phone": PHONE}),
        Order("o1", 1, "pk", Decimal(1), "RUB", "d", NOW, email=EMAIL, phone=PHONE,
              json_data={"name": NAME}),
        Delivery(1, "Pay", "http://shop.test", "POST", "UTF8",
                 f"Email={EMAIL}&Name={NAME}&IpAddress={IP}&Token={TOKEN}", {}, NOW),
        StoredResponse(200, f'{{"Email": "{EMAIL}", "Token": "{TOKEN}"}}', {}, NOW),
        PaymentRequest(Decimal(1), "RUB", email=EMAIL, name=NAME, ip_address=IP,
                       json_data={"x": PHONE}),
    ]
    for record in records:
        _clean(repr(record))


def test_state_and_settings_reprs_hold_no_secret(cloudpayments_sandbox: Sandbox) -> None:
    settings = SandboxSettings(api_secret="s3cr3t-value", control_token="tok3n-value-123456")
    text = repr(settings)
    assert "s3cr3t-value" not in text and "tok3n-value-123456" not in text
    assert "api_secret=***" in text
    state = SandboxState()
    state.meta["generated_keys"] = {"4": "-----BEGIN PRIVATE KEY-----\nMIIE"}
    assert "PRIVATE KEY" not in repr(state) and "generated_keys': '***'" in repr(state)


def test_state_of_a_real_payment(cloudpayments_sandbox: Sandbox) -> None:
    web = cloudpayments_sandbox.app.test_client()
    cloudpayments_sandbox.configure_notification("Pay", "http://shop.test/pay")
    web.post("/payments/cards/charge",
             auth=(cloudpayments_sandbox.public_id, cloudpayments_sandbox.api_secret),
             headers={"X-Request-ID": "r-1"},
             json={"Amount": 1, "IpAddress": IP, "Email": EMAIL, "Name": NAME,
                   "SaveCard": True, "AccountId": "u",
                   "CardCryptogramPacket": cloudpayments_sandbox.make_cryptogram(
                       "4000000000003055")})
    state = cloudpayments_sandbox.state
    assert state.tokens and state.deliveries and state.idempotency
    text = repr(state)
    for token in state.tokens:
        assert token not in text
    for value in (EMAIL, NAME, IP):
        assert value not in text


def test_masked_repr_refuses_unknown_fields() -> None:
    with pytest.raises(TypeError, match="no field"):
        @masked_repr(nope=mask_text)
        @dataclass
        class Record:
            value: str
