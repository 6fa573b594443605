"""The sandbox's wire formats: strict JSON bodies and parameters that cannot blow up."""

from __future__ import annotations

from decimal import Decimal

import pytest

from checkout_kit.sandbox.wire import MAX_NUMBER_EXPONENT, Params, RequestError, loads


@pytest.mark.parametrize("text", [
    '{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}', '[1, {"b": [NaN]}]',
    '{"a": 1e50000000}', '{"a": 1e-50000000}', '{"a": -1E+401}',
    '{"a": 1e9999999999999999999999999}', '{"a": 0.' + "0" * 500 + '1}',
])
def test_loads_refuses_non_json_constants_and_numbers_out_of_range(text: str) -> None:
    with pytest.raises(RequestError) as caught:
        loads(text)
    assert caught.value.status == 400


@pytest.mark.parametrize("text,expected", [
    ('{"a": 1.50}', Decimal("1.50")),
    ('{"a": 1e400}', Decimal("1e400")),
    ('{"a": -2.5e-400}', Decimal("-2.5e-400")),
    ('{"a": "NaN"}', "NaN"),
])
def test_loads_keeps_numbers_in_range_exact(text: str, expected: object) -> None:
    assert loads(text)["a"] == expected


def test_numbers_in_range_stay_short_when_written_out() -> None:
    widest = loads(f'{{"a": 9.9e{MAX_NUMBER_EXPONENT}}}')["a"]
    assert len(Params({"a": widest}).text("a", max_length=1000) or "") < 500


@pytest.mark.parametrize("value", [
    Decimal("1e100000000"), Decimal("-1e-100000000"), Decimal("NaN"), Decimal("Infinity"),
])
def test_text_of_a_huge_or_non_finite_decimal_is_refused_before_writing_it(value: Decimal) -> None:
    with pytest.raises(RequestError) as caught:
        Params({"InvoiceId": value}).text("InvoiceId", max_length=255)
    assert caught.value.status == 400


def test_text_of_an_ordinary_decimal() -> None:
    assert Params({"InvoiceId": Decimal("1e3")}).text("InvoiceId") == "1000"
