"""Tests for checkout_kit.reasons: one table, enum derived from it."""

from __future__ import annotations

import re

from checkout_kit.reasons import REASONS, ReasonCode, RetryClass, reason_for


def test_enum_mirrors_table() -> None:
    assert {int(member) for member in ReasonCode} == set(REASONS)
    for member in ReasonCode:
        words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", REASONS[member].name).upper()
        assert member.name.removeprefix("CHECK_") == words
    assert ReasonCode(5051) is ReasonCode.INSUFFICIENT_FUNDS
    assert ReasonCode(3005) is ReasonCode.CHECK_FORMAT_ERROR
    assert ReasonCode(5030) is ReasonCode.FORMAT_ERROR


def test_messages_and_retry_classes() -> None:
    funds = REASONS[5051]
    assert funds.message() == "Недостаточно средств на карте"
    assert funds.message("en-US") == "Insufficient funds on the card"
    assert funds.retry is RetryClass.TEMPORARY
    assert REASONS[5005].retry is RetryClass.NEVER
    assert REASONS[5206].message() == "3-D Secure авторизация не пройдена"


def test_unknown_code_gets_generic_row() -> None:
    row = reason_for(5999)
    assert row.code == 5999 and row.message()
