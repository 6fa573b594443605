"""The sandbox's request parameters: strict JSON bodies and values that cannot blow up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checkout_kit.jsoncodec import MAX_NUMBER_EXPONENT
from checkout_kit.sandbox.rules.params import (
    Params,
    RequestError,
    iso,
    parse_bool,
    read_json,
    url_problem,
)


@pytest.mark.parametrize("text", [
    '{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}', '[1, {"b": [NaN]}]',
    '{"a": 1e50000000}', '{"a": 1e-50000000}', '{"a": -1E+401}',
    '{"a": 1e9999999999999999999999999}', '{"a": 0.' + "0" * 500 + '1}',
    '{"a": ' + "[" * 40 + "]" * 40 + "}", b'{"a": "\xff"}',
])
def test_read_json_refuses_non_json_constants_numbers_out_of_range_and_bad_bytes(
    text: str | bytes,
) -> None:
    with pytest.raises(RequestError) as caught:
        read_json(text)
    assert caught.value.status == 400
    assert caught.value.message.startswith("The request body is not valid JSON (")


@pytest.mark.parametrize("text,expected", [
    ('{"a": 1.50}', Decimal("1.50")),
    ('{"a": 1e400}', Decimal("1e400")),
    ('{"a": -2.5e-400}', Decimal("-2.5e-400")),
    ('{"a": "NaN"}', "NaN"),
    ('{"a": 7}', 7),
    ('{"a": "\\ud83d\\ude00"}', "\U0001f600"),  # a surrogate pair is one character
])
def test_read_json_keeps_numbers_in_range_exact(text: str, expected: object) -> None:
    value = read_json(text)["a"]
    assert value == expected and type(value) is type(expected)


def test_numbers_in_range_stay_short_when_written_out() -> None:
    widest = read_json(f'{{"a": 9.9e{MAX_NUMBER_EXPONENT}}}')["a"]
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


def test_text_that_is_not_unicode_is_refused_where_it_would_be_kept() -> None:
    # valid JSON, but the escapes make lone surrogates, which no answer could carry
    params = Params(read_json('{"T": "\\ud800", "J": ["x", {"\\udc00": 1}],'
                              ' "S": "{\\"a\\": \\"\\\\udc00\\"}"}'))
    for name, read in (("T", params.text), ("J", params.json_value), ("S", params.json_value)):
        with pytest.raises(RequestError, match=f"{name} is invalid"):
            read(name)


def test_text_that_is_not_unicode_may_be_replaced_where_it_is_only_compared() -> None:
    params = Params(read_json('{"MD": "a\\ud800b"}'))
    with pytest.raises(RequestError, match="MD is invalid"):
        params.text("MD")
    assert params.required_text("MD", replace_invalid=True) == "a\ufffdb"


def test_json_value_reads_json_text_with_the_codec() -> None:
    assert Params({"JsonData": '{"a": 0.10}'}).json_value("JsonData") == {"a": Decimal("0.10")}
    with pytest.raises(RequestError, match="JsonData is not valid JSON"):
        Params({"JsonData": '{"a": NaN}'}).json_value("JsonData")


@pytest.mark.parametrize("value,expected", [
    (True, True), (False, False), ("true", True), ("TRUE", True), (" 1 ", True), ("on", True),
    ("yes", True), ("false", False), ("0", False), ("off", False), ("No", False), ("", False),
    (1, True), (0, False),
])
def test_parse_bool(value: object, expected: bool) -> None:
    assert parse_bool(value) is expected
    assert Params({"SaveCard": value}).flag("SaveCard") is expected


@pytest.mark.parametrize("value", ["maybe", "2", "tru", Decimal("0.5")])
def test_parse_bool_refuses_other_values(value: object) -> None:
    with pytest.raises(ValueError):
        parse_bool(value)
    with pytest.raises(RequestError, match="SaveCard is invalid"):
        Params({"SaveCard": value}).flag("SaveCard")


@pytest.mark.parametrize("url", [
    "http://shop.test/cp", "https://shop.test:8443/cp?x=1", "http://127.0.0.1/",
    "https://пример.рф/оплата",
])
def test_url_problem_accepts_absolute_http_urls(url: str) -> None:
    assert url_problem(url, "Address") is None


@pytest.mark.parametrize("url,problem", [
    ("ftp://shop.test/", "Address must be an absolute http(s) URL"),
    ("/relative", "Address must be an absolute http(s) URL"),
    ("http:///nohost", "Address must be an absolute http(s) URL"),
    ("http://shop.test/a b", "Address must not contain whitespace or control characters"),
    ("http://shop.test/\x1f", "Address must not contain whitespace or control characters"),
    ("http://xn--a/", "Address has an invalid host name"),
    ("http://shop.test:99999/", "Address is not a valid URL"),
    ("http://[::1/", "Address is not a valid URL"),
    ("http://shop.test:0/", "Address has an invalid port"),
    ("http://" + "a" * 64 + ".test/", "Address has an invalid host name"),
    ("http://shop.test/" + "a" * 2000, "Address is too long"),
])
def test_url_problem_says_what_is_wrong(url: str, problem: str) -> None:
    assert url_problem(url, "Address") == problem
    with pytest.raises(RequestError) as caught:
        Params({"Address": url}).url("Address")
    assert caught.value.message == problem


@given(st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=3)),
                                               timezone(timedelta(hours=-11, minutes=-30))])))
def test_iso_is_utc_to_the_second(value: datetime) -> None:
    assert iso(value) == value.astimezone(UTC).isoformat(timespec="seconds")[:19]


def test_iso_of_years_below_1000_is_not_padded() -> None:
    assert iso(datetime(999, 5, 6, 7, 8, 9, tzinfo=UTC)) == "999-05-06T07:08:09"
