"""Sandbox models through the one JSON codec: random records, compared with ``json``.

The models are plain dicts written by :mod:`checkout_kit.jsoncodec`. For random
transactions, subscriptions and orders (made by their own constructors), the codec's
text must be exactly what the standard library's ``json`` writes for the same data
(with each ``Decimal`` written digit for digit), and reading it back, by the codec or
by ``json`` with ``parse_float=Decimal``, must give the same values, exactly.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from checkout_kit import jsoncodec
from checkout_kit.cards import BRANDS
from checkout_kit.money import CURRENCIES, CURRENCY_CODES
from checkout_kit.reasons import REASONS
from checkout_kit.sandbox.rules import render
from checkout_kit.sandbox.rules.records import (
    CardInfo,
    Order,
    Subscription,
    TokenRecord,
    Transaction,
    TxStatus,
    TxType,
)

_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
_OPTIONAL_TEXT = st.none() | _TEXT
_MONEY = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999999.99"), places=2)
_WHEN = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1),
                     timezones=st.just(UTC))
_JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | _TEXT
    | st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-10**9,
                  max_value=10**9),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)
_CARDS = st.builds(
    CardInfo,
    first_six=st.text("0123456789", min_size=6, max_size=6),
    last_four=st.text("0123456789", min_size=4, max_size=4),
    exp_month=st.integers(1, 12), exp_year=st.integers(2000, 2099),
    card_type=st.sampled_from([b.card_type for b in BRANDS]),
    card_type_code=st.sampled_from([b.card_type_code for b in BRANDS]),
)
_TRANSACTIONS = st.builds(
    Transaction,
    id=st.integers(1, 2**63 - 1), public_id=_TEXT, type=st.sampled_from(TxType),
    amount=_MONEY, currency=st.sampled_from(sorted(CURRENCIES)),
    status=st.sampled_from(TxStatus), created=_WHEN, two_stage=st.booleans(),
    card=st.none() | _CARDS,
    reason_code=st.sampled_from(sorted(REASONS)) | st.integers(0, 9999),
    invoice_id=_OPTIONAL_TEXT, account_id=_OPTIONAL_TEXT, email=_OPTIONAL_TEXT,
    description=_OPTIONAL_TEXT, name=_OPTIONAL_TEXT, ip_address=_OPTIONAL_TEXT,
    culture_name=st.sampled_from([None, "ru-RU", "en-US"]), json_data=_JSON,
    auth_date=st.none() | _WHEN, confirm_date=st.none() | _WHEN,
    refunded=_MONEY | st.just(Decimal(0)),
    original_transaction_id=st.none() | st.integers(1, 2**63 - 1),
    token=_OPTIONAL_TEXT, subscription_id=_OPTIONAL_TEXT,
    tr_initiator_code=st.sampled_from([None, 0, 1]),
)
_SUBSCRIPTIONS = st.builds(
    Subscription,
    id=_TEXT, public_id=_TEXT, account_id=_TEXT, token=_TEXT, description=_OPTIONAL_TEXT,
    email=_OPTIONAL_TEXT, amount=_MONEY, currency=st.sampled_from(sorted(CURRENCIES)),
    require_confirmation=st.booleans(), start_date=_WHEN,
    interval=st.sampled_from(sorted(render.INTERVAL_CODES)), period=st.integers(1, 10_000),
    max_periods=st.none() | st.integers(1, 1_000_000),
    culture_name=st.sampled_from([None, "ru-RU", "en-US"]),
    status=st.sampled_from(sorted(render.SUBSCRIPTION_STATUS_CODES)), created=_WHEN,
    successful=st.integers(0, 1000), failed=st.integers(0, 3),
    last_transaction_date=st.none() | _WHEN, next_transaction_date=st.none() | _WHEN,
    receipt=_JSON,
)
_ORDERS = st.builds(
    Order,
    id=_TEXT, number=st.integers(1, 10**9), public_id=_TEXT, amount=_MONEY,
    currency=st.sampled_from(sorted(CURRENCIES)), description=_TEXT, created=_WHEN,
    status=st.sampled_from(sorted(render.ORDER_STATUS_CODES)), email=_OPTIONAL_TEXT,
    phone=_OPTIONAL_TEXT, require_confirmation=st.booleans(), url=_OPTIONAL_TEXT,
    culture_name=st.sampled_from([None, "ru-RU", "en-US"]),
    payment_date=st.none() | _WHEN,
)


def _json_text(value: Any) -> str:
    """``value`` as the standard library writes it, each ``Decimal`` as its exact digits
    (``json`` cannot write one itself: it goes out as a placeholder string first)."""
    decimals: list[Decimal] = []
    mark = secrets.token_hex(8)  # no random text can forge it

    def swap(item: Any) -> Any:
        if isinstance(item, Decimal):
            decimals.append(item)
            return f"{mark}{len(decimals) - 1}{mark}"
        if isinstance(item, dict):
            return {key: swap(v) for key, v in item.items()}
        if isinstance(item, list):
            return [swap(v) for v in item]
        return item

    text = json.dumps(swap(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for index, number in enumerate(decimals):
        text = text.replace(f'"{mark}{index}{mark}"', format(number, "f"), 1)
    return text


def _exact(value: Any) -> Any:
    """``value`` with each number tagged by its type and digits: 1.50 is not 1.5."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Decimal | int):
        return (type(value).__name__, str(value))
    if isinstance(value, dict):
        return {key: _exact(v) for key, v in value.items()}
    return [_exact(v) for v in value]


def _same_through_both(model: dict[str, Any]) -> str:
    text = jsoncodec.dumps(model)
    assert text == _json_text(model)
    assert _exact(jsoncodec.loads(text)) == _exact(model)
    assert _exact(json.loads(text, parse_float=Decimal)) == _exact(model)
    return text


@given(_TRANSACTIONS)
def test_transaction_models_through_the_codec(tx: Transaction) -> None:
    model = render.transaction_model(tx, "http://sandbox.local")
    _same_through_both(model)
    assert model["Amount"] == tx.amount and model["CurrencyCode"] == CURRENCY_CODES[tx.currency]
    if tx.json_data is not None and not isinstance(tx.json_data, str):
        assert _exact(jsoncodec.loads(model["JsonData"])) == _exact(tx.json_data)
    fields = render.transaction_fields(tx, tx.created)
    assert fields["Amount"] == tx.amount


@given(_SUBSCRIPTIONS)
def test_subscription_models_through_the_codec(sub: Subscription) -> None:
    model = render.subscription_model(sub)
    _same_through_both(model)
    assert model["IntervalCode"] == render.INTERVAL_CODES[sub.interval]


@given(_ORDERS)
def test_order_models_through_the_codec(order: Order) -> None:
    model = render.order_model(order)
    _same_through_both(model)
    assert model["Amount"] == order.amount


@given(st.builds(TokenRecord, token=_TEXT, public_id=_TEXT, account_id=_OPTIONAL_TEXT,
                 card=_CARDS, created=_WHEN))
def test_token_models_through_the_codec(record: TokenRecord) -> None:
    _same_through_both(render.token_model(record))


def test_the_comparison_itself_can_fail() -> None:
    model = {"Amount": Decimal("1.50")}
    assert _exact(json.loads('{"Amount":1.5}', parse_float=Decimal)) != _exact(model)
    assert _json_text(model) == '{"Amount":1.50}' != json.dumps({"Amount": 1.5})
