"""The test notifications: realistic fields per type, signed as the gateway signs."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from checkout_kit import testing
from checkout_kit import webhooks as wh
from checkout_kit.notifications import verify

SECRET = "sk_test_testing"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_sample_fields() -> None:
    one = testing.sample_fields("pay", now=NOW)
    two = testing.sample_fields("Pay", {"Amount": "1.00", "Extra": "x"}, now=NOW)
    assert one["TransactionId"] != two["TransactionId"]  # two samples, two events
    assert one["DateTime"] == "2026-03-01 12:00:00"
    assert (two["Amount"], two["Extra"]) == ("1.00", "x")
    assert "TransactionId" not in testing.sample_fields("Recurrent")
    assert set(testing.SAMPLE_FIELDS) == set(wh.WEBHOOK_TYPES)
    with pytest.raises(ValueError, match="unknown notification type"):
        testing.sample_fields("Payment")
    with pytest.raises(ValueError):
        testing.build_notification("Pay", one, SECRET, method="PUT")
    with pytest.raises(ValueError):
        testing.build_notification("Pay", one, SECRET, encoding="koi8-r")


@pytest.mark.parametrize("kind", wh.WEBHOOK_TYPES)
@pytest.mark.parametrize(("method", "encoding"), [("POST", "utf-8"), ("GET", "windows-1251")])
def test_every_type_is_signed_so_that_a_receiver_takes_it(kind: str, method: str,
                                                          encoding: str) -> None:
    fields = testing.sample_fields(kind, now=NOW, rng=random.Random(5))
    out = testing.build_notification(kind, fields, SECRET, method=method, encoding=encoding)
    assert (out.type, out.method, out.encoding) == (kind, method, encoding)
    verify(out.body, out.headers, SECRET, encoding=encoding)
    got = wh.receive(out.method, out.body, out.headers, SECRET, encoding=encoding,
                     expected_type=kind)
    assert got.fields == fields
    if method == "GET":
        assert out.url("https://shop.example/n?x=1") == \
            f"https://shop.example/n?x=1&{out.body.decode('ascii')}"
        assert "Content-Type" not in out.headers
    else:
        assert out.url("https://shop.example/n") == "https://shop.example/n"
        assert out.headers["Content-Type"] == \
            "application/x-www-form-urlencoded; charset=utf-8"
