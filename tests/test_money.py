"""Tests for checkout_kit.money: Decimal only, currency-aware."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checkout_kit.errors import MoneyError
from checkout_kit.money import CURRENCIES, format_amount, parse_amount, quantize


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("100", "100.00"),
        ("0.01", "0.01"),
        (Decimal("10.5"), "10.50"),
        (7, "7.00"),
        (" 1.20 ", "1.20"),
    ],
)
def test_parse_and_format(value: object, expected: str) -> None:
    assert format_amount(parse_amount(value)) == expected


@pytest.mark.parametrize(
    "value",
    [
        0.1, True, "1.001", "-1", "0", "abc", "NaN", "Infinity", "1e30", None, [1],
        "1e1000000", "-1e1000000", Decimal("1e999999999"), "1" * 65, Decimal("sNaN"),
    ],
)
def test_bad_amounts_raise_money_error(value: object) -> None:
    with pytest.raises(MoneyError):
        parse_amount(value)


def test_zero_allowed_on_request_and_unknown_currency_refused() -> None:
    assert parse_amount("0", allow_zero=True) == Decimal("0.00")
    with pytest.raises(MoneyError):
        parse_amount("1", "XYZ")
    assert set(CURRENCIES) >= {"RUB", "USD", "EUR", "KZT", "UZS", "BYN"}


def test_quantize_refuses_unrepresentable_values() -> None:
    for value in (Decimal("NaN"), Decimal("Infinity"), Decimal("1e999999")):
        with pytest.raises(MoneyError):
            quantize(value)


def test_quantize_rounds_half_up() -> None:
    assert quantize(Decimal("0.005")) == Decimal("0.01")
    assert quantize(Decimal("2.675")) == Decimal("2.68")  # the float trap: 2.675 -> 2.67


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2))
def test_round_trip_is_exact(amount: Decimal) -> None:
    assert parse_amount(format_amount(amount)) == amount
