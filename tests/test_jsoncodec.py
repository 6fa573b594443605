"""The one JSON codec: exact decimals out and in, strict reading."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checkout_kit import jsoncodec
from checkout_kit.errors import JSONCodecError, MoneyError


def test_decimals_keep_their_digits() -> None:
    assert jsoncodec.dumps({"Amount": Decimal("0.10"), "Big": Decimal("1E+2")}) == (
        '{"Amount":0.10,"Big":100}'
    )
    assert jsoncodec.loads('{"Amount":0.10}') == {"Amount": Decimal("0.10")}
    assert isinstance(jsoncodec.loads("[7]")[0], int)


def test_text_and_dates() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert jsoncodec.dumps(["ж\"\n", moment, date(2026, 1, 2), None, True, False]) == (
        '["ж\\"\\n","2026-01-02T03:04:05+00:00","2026-01-02",null,true,false]'
    )


@pytest.mark.parametrize(
    ("value", "error", "code"),
    [
        (0.1, MoneyError, None),
        (Decimal("NaN"), JSONCodecError, "non_finite"),
        (Decimal("Infinity"), JSONCodecError, "non_finite"),
        (datetime(2026, 1, 1), JSONCodecError, "naive_datetime"),
        ("\ud800", JSONCodecError, "encoding"),
        (Decimal("1E+100000"), JSONCodecError, "number_range"),
        (Decimal("0E-1000"), JSONCodecError, "number_range"),
        (Decimal("1" * 401), JSONCodecError, "number_range"),
    ],
)
def test_refused_values(value: object, error: type[Exception], code: str | None) -> None:
    with pytest.raises(error) as caught:
        jsoncodec.dumps_bytes({"x": value})
    if code is not None:
        assert getattr(caught.value, "code", None) == code


def test_wrong_types_are_type_errors() -> None:
    with pytest.raises(TypeError):
        jsoncodec.dumps({1: "a"})
    with pytest.raises(TypeError):
        jsoncodec.dumps({"a": {1, 2}})


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("NaN", "constant"),
        ('{"a": Infinity}', "constant"),
        ("[-Infinity]", "constant"),
        ("[1e1000000]", "number_range"),
        ("[1e-401]", "number_range"),
        ("1" * 401, "number_range"),
        ("[" * 33 + "]" * 33, "too_deep"),
        ("{", "not_json"),
        ("", "not_json"),
        (b"\xff\xfe[]", "encoding"),
        ('{"a":1} x', "not_json"),
        ('{"Amount":1,"Amount":1000}', "duplicate_key"),
        ('[{"a":{"b":1,"b":1}}]', "duplicate_key"),
    ],
)
def test_strict_reading(text: str | bytes, code: str) -> None:
    with pytest.raises(JSONCodecError) as caught:
        jsoncodec.loads(text)
    assert caught.value.code == code


def test_depth_limit_is_exact() -> None:
    assert jsoncodec.loads("[" * 32 + "]" * 32) is not None
    nested: list[object] = []
    for _ in range(jsoncodec.MAX_DEPTH):
        nested = [nested]
    with pytest.raises(JSONCodecError):
        jsoncodec.dumps(nested)


def test_utf8_bom_is_read() -> None:
    assert jsoncodec.loads("\ufeff[1]".encode()) == [1]


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False, places=2,
                  min_value=-10**12, max_value=10**12)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _plain(value: object) -> object:
    """``value`` with every Decimal as the float json would give: the reference shape."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@given(_values)
def test_round_trip_and_agreement_with_json(value: object) -> None:
    text = jsoncodec.dumps(value)
    assert jsoncodec.loads(text) == value
    assert jsoncodec.loads(text.encode("utf-8")) == value
    # What the standard library reads from our text is the same data.
    assert _plain(json.loads(text)) == _plain(value)


def test_script_safe_text_cannot_end_a_script_element() -> None:
    value = {"k": "</script><b>&\u2028ж😀"}
    text = jsoncodec.dumps_for_script(value)
    assert text.isascii()
    assert not set("<>&") & set(text) and "\u2028" not in text
    assert json.loads(text) == value == jsoncodec.loads(text)


@given(_values)
def test_what_is_written_is_read_back(value: object) -> None:
    assert jsoncodec.loads(jsoncodec.dumps_for_script(value)) == value
