"""The sandbox's wire formats: strict JSON bodies and parameters that cannot blow up."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checkout_kit.sandbox.rules.params import (
    MAX_NUMBER_EXPONENT,
    JSONObject,
    Params,
    RequestError,
    dumps,
    iso,
    loads,
)


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


def _encoded(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


_TEXT = st.text(st.characters(codec="utf-8"), max_size=20)


@given(st.dictionaries(_TEXT, st.one_of(st.none(), st.booleans(), _TEXT), max_size=6))
def test_flat_objects_are_written_as_json_writes_them(value: dict[str, Any]) -> None:
    assert dumps(value) == _encoded(value)


class _Dict(dict[Any, Any]):
    """A dict that dumps writes through the JSON encoder (its flat-object path takes
    plain dicts only)."""


@pytest.mark.parametrize("value", [
    {"Success": True, "Message": None, "Model": JSONObject('{"Amount":1.50}')},
    {"Success": False, "Message": "Нет \"такой\"\n\u2028\x00", "Model": None},
    {"Model": JSONObject("{}"), "Amount": Decimal("1.50"), "Deep": {"a": [Decimal("0.10")]}},
    {1: "a", "b": 2}, {"a": 1}, {"a": [1, "x"]}, {},
])
def test_flat_objects_are_written_as_the_encoder_writes_them(value: dict[Any, Any]) -> None:
    assert dumps(value) == dumps(_Dict(value))


@given(st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=3)),
                                               timezone(timedelta(hours=-11, minutes=-30))])))
def test_iso_is_utc_to_the_second(value: datetime) -> None:
    assert iso(value) == value.astimezone(UTC).isoformat(timespec="seconds")[:19]


def test_iso_of_years_below_1000_is_not_padded() -> None:
    assert iso(datetime(999, 5, 6, 7, 8, 9, tzinfo=UTC)) == "999-05-06T07:08:09"
