"""Tests for checkout_kit.money: Decimal only, currency-aware."""

from __future__ import annotations

from decimal import Decimal

import pytest
from babel.numbers import format_currency
from hypothesis import given
from hypothesis import strategies as st

from checkout_kit.errors import MoneyError
from checkout_kit.money import (
    CURRENCIES,
    display_amount,
    format_amount,
    parse_amount,
    quantize,
)

NBSP = "\u00a0"


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


# --------------------------------------------------------------------------- display


def test_display_in_the_readers_locale_is_babels_with_cldr_currency_spacing() -> None:
    price = Decimal("1490.00")
    ru, en = display_amount(price, "RUB", "ru"), display_amount(price, "RUB", "en")
    # Babel's own output in Russian, no-break spaces included.
    assert ru == format_currency(price, "RUB", locale="ru") == f"1{NBSP}490,00{NBSP}₽"
    # In English Babel writes "RUB1,490.00"; CLDR (and the browsers' Intl.NumberFormat,
    # which the widget uses) put a no-break space after a currency code.
    assert format_currency(price, "RUB", locale="en") == "RUB1,490.00"
    assert en == f"RUB{NBSP}1,490.00"
    # A currency sign is no code: no space.
    assert display_amount(price, "USD", "en-US") == "$1,490.00"
    assert display_amount(price, "EUR", "ru") == f"1{NBSP}490,00{NBSP}€"
    # A pattern that has its own space gets no second one (pt_BR: "¤ #,##0.00").
    assert display_amount(price, "RUB", "pt_BR") == f"RUB{NBSP}1.490,00"


def test_display_never_hides_kopecks() -> None:
    # CLDR gives BYR no decimals; the gateway takes two for it, so two are shown.
    assert format_currency(Decimal("1490.50"), "BYR", locale="ru") == f"1{NBSP}490{NBSP}BYR"
    assert display_amount(Decimal("1490.50"), "BYR", "ru") == f"1{NBSP}490,50{NBSP}BYR"
    assert display_amount(Decimal("0.5"), "RUB", "en") == f"RUB{NBSP}0.50"


def test_display_in_an_unknown_language_is_the_gateways_form() -> None:
    assert display_amount(Decimal("1490"), "RUB", "xx") == f"1490.00{NBSP}RUB"
    with pytest.raises(MoneyError):
        display_amount(Decimal("1"), "XYZ", "ru")
