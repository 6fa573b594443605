"""checkout_kit.webhooks: the rules a receiver relies on, edge by edge.

Charsets, answers the gateway reads, error messages and log records an operator reads,
the ownership and settlement rules with every argument that changes them, the sender
check and the samples. Data-shaped cases live in tests/vectors/webhooks_rules.json.
"""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from checkout_kit import notifications as nt
from checkout_kit import testing
from checkout_kit import webhooks as wh
from checkout_kit.errors import (
    InvalidRequestError,
    MalformedNotificationError,
    NotificationError,
    NotificationPurgedError,
    SignatureVerificationError,
)
from checkout_kit.notifications import CheckCode

VECTORS = json.loads((Path(__file__).parent / "vectors" / "webhooks_rules.json")
                     .read_text("utf-8"))
SECRET = "sk_test_rules"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PAY = {"TransactionId": "42", "Amount": "1.00", "Name": "Иван"}


def _name(case: dict[str, Any]) -> str:
    return str(case["name"])


def _deliver(out: testing.OutgoingNotification, **options: Any) -> wh.Received:
    return wh.receive(out.method, out.body, out.headers, SECRET, expected_type=out.type,
                      **options)


# --------------------------------------------------------------------------- receiving


@pytest.mark.parametrize("case", VECTORS["charsets"], ids=_name)
def test_a_declared_charset_decides_how_the_body_is_read(case: dict[str, Any]) -> None:
    out = testing.build_notification("Pay", PAY, SECRET, method=case["method"],
                                encoding=case["body_encoding"])
    headers = {**out.headers, "Content-Type": case["content_type"]}
    deliver = lambda: wh.receive(  # noqa: E731
        case["method"], out.body, headers, SECRET, expected_type="Pay",
        encoding=case["configured"])
    if "error" in case:
        with pytest.raises(MalformedNotificationError) as exc:
            deliver()
        assert str(exc.value).startswith(case["error"])
        return
    received = deliver()
    assert received.encoding == case["encoding"]
    assert received.fields["Name"] == "Иван"


def test_a_delivery_is_read_as_utf8_unless_configured_otherwise() -> None:
    out = testing.build_notification("Pay", PAY, SECRET, method="GET")
    received = wh.receive("GET", out.body, out.headers, SECRET, expected_type="Pay")
    assert (received.type, received.method, received.encoding) == ("Pay", "GET", "utf-8")
    assert received.fields["Name"] == "Иван"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        # The method, type and charset come from the request: an error names at most a
        # bounded piece of them, so a huge value cannot flood the log.
        (lambda: wh.receive("M" * 40, b"", {}, SECRET, expected_type="Pay"),
         f"notifications come as GET or POST, not {'M' * 16!r}"),
        (lambda: wh.receive("POST", b"", {}, SECRET, expected_type="T" * 40),
         f"unknown notification type {'T' * 32!r}; one of {wh.WEBHOOK_TYPES}"),
        (lambda: wh.receive("POST", b"", {"Content-Type": "text/plain; charset=" + "c" * 40},
                            SECRET, expected_type="Pay"),
         f"unsupported charset {'c' * 32!r}"),
    ],
    ids=["method", "type", "charset"],
)
def test_a_refusal_names_a_bounded_piece_of_what_was_sent(call: Any, message: str) -> None:
    with pytest.raises(MalformedNotificationError) as exc:
        call()
    assert str(exc.value) == message


def test_a_body_of_exactly_the_limit_is_read() -> None:
    fields = {"TransactionId": "1", "Amount": "1.00", "Description": ""}
    room = wh.MAX_BODY_BYTES - len(nt.encode_body(fields, "utf-8"))
    out = testing.build_notification("Pay", {**fields, "Description": "a" * room}, SECRET)
    assert len(out.body) == wh.MAX_BODY_BYTES
    assert len(_deliver(out).fields["Description"]) == room


def test_require_both_refuses_a_delivery_with_one_signature() -> None:
    out = testing.build_notification("Pay", PAY, SECRET)
    only_raw = {k: v for k, v in out.headers.items() if k != "X-Content-HMAC"}
    assert wh.receive("POST", out.body, only_raw, SECRET, expected_type="Pay").type == "Pay"
    with pytest.raises(SignatureVerificationError) as exc:
        wh.receive("POST", out.body, only_raw, SECRET, expected_type="Pay", require_both=True)
    assert exc.value.header == "X-Content-HMAC"


# --------------------------------------------------------------------------- answers


def test_an_answer_code_of_another_type_is_refused_naming_the_type() -> None:
    with pytest.raises(TypeError, match=r"^a notification answer code is an int, not bool$"):
        wh.answer(True)
    with pytest.raises(TypeError, match=r"^a notification answer code is an int, not str$"):
        wh.answer("0")  # type: ignore[arg-type]


@pytest.mark.parametrize("case", VECTORS["answers"], ids=_name)
def test_read_answer_reads_the_code_as_the_gateway_does(case: dict[str, Any]) -> None:
    assert wh.read_answer(case["body"].encode("utf-8")) == case["code"]


@pytest.mark.parametrize(
    ("error", "kind", "status", "logged"),
    [
        (SignatureVerificationError("bad", "Content-HMAC"), "Pay", 401,
         "notification Pay refused: SignatureVerificationError (Content-HMAC)"),
        (MalformedNotificationError("missing", "Amount"), "Check", 400,
         "notification Check refused: MalformedNotificationError (Amount)"),
        (MalformedNotificationError("not valid utf-8"), None, 400,
         "notification ? refused: MalformedNotificationError (-)"),
        # Neither kind of REJECT_STATUS: an unreadable delivery all the same.
        (NotificationPurgedError(7, NOW), "Refund", 400,
         "notification Refund refused: NotificationPurgedError (-)"),
    ],
)
def test_answer_error_answers_13_and_logs_the_type_reason_and_culprit(
    error: NotificationError, kind: str | None, status: int, logged: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="checkout_kit.webhooks"):
        assert wh.answer_error(error, type=kind) == (status, b'{"code":13}')
    assert [r.getMessage() for r in caplog.records] == [logged]


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize("case", VECTORS["hand_keys"], ids=_name)
def test_a_received_made_by_hand_is_keyed_by_its_fields(case: dict[str, Any]) -> None:
    received = wh.Received(case["type"], "POST", "utf-8", case["fields"])
    assert wh.notification_key(received) == tuple(case["key"])


@pytest.mark.parametrize(
    ("last", "qualifier"),
    [({"LastTransactionDate": "2026-01-01 10:20:30"}, "PastDue:3/1:2026-01-01 10:20:30"),
     ({}, "PastDue:3/1:")],  # no charge yet: nothing after the counters
)
def test_a_subscription_key_spells_status_counters_and_last_charge(
    last: dict[str, str], qualifier: str
) -> None:
    fields = {"Id": "sc_9", "Status": "PastDue", "SuccessfulTransactionsNumber": "3",
              "FailedTransactionsNumber": "1", **last}
    out = testing.build_notification("Recurrent", fields, SECRET)
    assert _deliver(out).key == ("Recurrent", "sc_9", qualifier)


# --------------------------------------------------------------------------- Check


def _record(**changes: Any) -> Any:
    """A ledger-like payment record: unlike a bare PaymentSnapshot it knows its own
    gateway transaction and subscription (``None``: not known)."""
    return SimpleNamespace(**{
        "invoice_id": "1234567", "account_id": "user@example.com",
        "amount": Decimal("1500.00"), "currency": "RUB", "status": "pending",
        "expires_at": NOW + timedelta(minutes=1), "gateway_transaction_id": None,
        "known_subscription": None, **changes})


def _check(**overrides: str) -> nt.Notification:
    fields = testing.sample_fields("Check", {"TransactionId": "555", **overrides}, now=NOW)
    return nt.parse_notification("Check", fields)


def test_an_expiry_in_another_zone_is_compared_as_that_moment() -> None:
    moscow = timezone(timedelta(hours=3))
    # 14:30 in Moscow is 11:30 UTC: half an hour before NOW, so expired.
    expired = _record(expires_at=datetime(2026, 3, 1, 14, 30, tzinfo=moscow))
    assert wh.check_decision(_check(), expired, now=NOW) is CheckCode.EXPIRED
    # 15:30 in Moscow is 12:30 UTC: still open.
    open_ = _record(expires_at=datetime(2026, 3, 1, 15, 30, tzinfo=moscow))
    assert wh.check_decision(_check(), open_, now=NOW) is CheckCode.ACCEPT


def test_the_payments_own_transaction_is_its_own_whatever_it_carries() -> None:
    token = _check(TrInitiatorCode="1")
    assert wh.owns(token, _record(), payment_transaction_id=555)
    # Another transaction known as the payment's does not make a token charge its own.
    assert not wh.owns(token, _record(), payment_transaction_id=999)


@pytest.mark.parametrize(
    ("known", "owned"),
    [("sc_1", False),  # the subscription the payment started: its charges are not it
     ("sc_other", True),  # another subscription started on its invoice: money to return
     ("", True),  # the payment started none
     (None, False)],  # not known: taken for the subscription's
)
def test_a_closed_payment_owns_a_subscription_charge_only_of_another_subscription(
    known: str | None, owned: bool
) -> None:
    paid = _record(status="paid")
    assert wh.owns(_check(SubscriptionId="sc_1"), paid,
                   payment_subscription_id=known) is owned


def test_payment_mismatch_holds_the_notification_to_status_scheme_and_partial() -> None:
    payment = _record()
    whole = _check()
    assert wh.payment_mismatch(whole, payment) is None
    assert wh.payment_mismatch(whole, payment, status="Authorized", scheme="charge") is \
        CheckCode.NOT_ACCEPTED
    assert wh.payment_mismatch(whole, payment, status="Authorized", scheme="auth") is None
    less = _check(Amount="500.00")
    assert wh.payment_mismatch(less, payment) is CheckCode.INVALID_AMOUNT
    assert wh.payment_mismatch(less, payment, partial=True) is None


def test_a_status_without_a_scheme_is_refused_naming_the_scheme() -> None:
    with pytest.raises(InvalidRequestError) as exc:
        wh.settlement_mismatch(_record(), amount=Decimal("1500.00"), currency="RUB",
                               account_id="user@example.com", status="Completed")
    assert str(exc.value) == "a status is held to the payment's scheme: pass scheme"
    assert exc.value.field == "scheme"


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [("1500.00", None, None),  # a capture may leave its currency out
     ("1500.00", "rub", None),
     ("1500.00", "USD", CheckCode.INVALID_AMOUNT),  # but may not name another
     ("1500.00", "", CheckCode.INVALID_AMOUNT),
     ("1500", None, None),  # the whole amount, captured at once
     ("1500.01", None, CheckCode.INVALID_AMOUNT)],
)
def test_a_partial_settlement_names_no_other_currency_and_no_more_money(
    amount: str, currency: str | None, code: CheckCode | None
) -> None:
    assert wh.settlement_mismatch(_record(), amount=Decimal(amount), currency=currency,
                                  account_id=None, partial=True) is code


def test_decide_asks_the_record_for_its_own_transaction() -> None:
    # A token charge is not owned, unless it is the record's own transaction: then the
    # record's answer (closed: 13) is given, not the unowned default.
    checks = wh.CheckRules(unowned_default=CheckCode.ACCEPT)
    token = _check(TrInitiatorCode="1")
    paid = _record(status="paid")
    assert checks.decide(token, paid, now=NOW) is CheckCode.ACCEPT
    its_own = _record(status="paid", gateway_transaction_id=555)
    assert checks.decide(token, its_own, now=NOW) is CheckCode.NOT_ACCEPTED


def test_decide_asks_the_record_for_its_subscription() -> None:
    checks = wh.CheckRules(unowned_default=CheckCode.ACCEPT)
    recurrent = _check(SubscriptionId="sc_2")
    started_it = _record(status="paid", known_subscription="sc_2")
    assert checks.decide(recurrent, started_it, now=NOW) is CheckCode.ACCEPT
    # Another subscription than the payment's own: the payment's charge, and it is paid.
    started_another = _record(status="paid", known_subscription="sc_1")
    assert checks.decide(recurrent, started_another, now=NOW) is CheckCode.NOT_ACCEPTED


def test_decide_uses_the_callers_closed_statuses_throughout() -> None:
    shipped = _record(status="shipped")
    closed = frozenset({"shipped"})
    accepting = wh.CheckRules(unowned_default=CheckCode.ACCEPT)
    plain = wh.CheckRules()
    # Owned: the record is closed by the caller's own word.
    assert plain.decide(_check(), shipped, now=NOW, closed_statuses=closed) is \
        CheckCode.NOT_ACCEPTED
    assert plain.decide(_check(), shipped, now=NOW) is CheckCode.ACCEPT
    # A subscription's charge on a payment closed in the caller's words is not owned.
    recurrent = _check(SubscriptionId="sc_1")
    assert accepting.decide(recurrent, shipped, now=NOW, closed_statuses=closed) is \
        CheckCode.ACCEPT
    # Not owned and not opted in: check_decision's answer, with the same statuses.
    token = _check(TrInitiatorCode="1")
    assert plain.decide(token, shipped, now=NOW, closed_statuses=closed) is \
        CheckCode.NOT_ACCEPTED


def test_an_unowned_check_not_opted_in_is_judged_at_now() -> None:
    token = _check(TrInitiatorCode="1")
    lapsed = _record(expires_at=NOW - timedelta(seconds=1))
    assert wh.CheckRules().decide(token, lapsed, now=NOW) is CheckCode.EXPIRED
    assert wh.CheckRules().decide(token, lapsed, now=NOW - timedelta(minutes=1)) is \
        CheckCode.ACCEPT


class _SoldOut:
    """A rule that is an object, not a function: it has no ``__qualname__``."""

    def __init__(self, result: object) -> None:
        self.result = result

    def __call__(self, *args: object) -> object:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result

    def __repr__(self) -> str:
        return "<rule sold-out>"


@pytest.mark.parametrize("owned", [True, False], ids=["owned", "unowned"])
@pytest.mark.parametrize(
    ("result", "says"),
    [(LookupError("stock"), "raised LookupError"), ("13", "returned '13'")],
)
def test_a_broken_rule_is_logged_by_name_with_the_transaction(
    owned: bool, result: object, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> object:
        return _SoldOut(result)(*args)

    payment = _record() if owned else None
    with caplog.at_level(logging.ERROR, logger="checkout_kit.webhooks"):
        # A function is named by its qualified name, an object by its repr.
        for rule in (broken, _SoldOut(result)):
            checks = wh.CheckRules(on_error=CheckCode.EXPIRED)
            (checks.rule if owned else checks.unowned_rule)(rule)
            assert checks.decide(_check(), payment, now=NOW) is CheckCode.EXPIRED
    assert [r.getMessage() for r in caplog.records] == [
        f"Check rule {broken.__qualname__} {says} for transaction 555; answering 20",
        f"Check rule <rule sold-out> {says} for transaction 555; answering 20",
    ]


# --------------------------------------------------------------------------- sender IP


def test_a_range_written_with_host_bits_is_taken_as_its_network() -> None:
    (network,) = wh.parse_networks([" 185.98.81.5/28 "])
    assert str(network) == "185.98.81.0/28"


def test_a_bad_range_is_named_cut_to_64_characters() -> None:
    bad = "1" * 80
    with pytest.raises(ValueError) as exc:
        wh.parse_networks(["10.0.0.0/8", bad])
    assert str(exc.value) == f"not a CIDR range: {bad[:64]!r}"


def test_without_proxy_hops_the_forwarded_header_is_ignored_by_default() -> None:
    address = wh.sender_address("185.98.81.1", "6.6.6.6")
    assert str(address) == "185.98.81.1"


def test_negative_proxy_hops_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"^proxy_hops cannot be negative$"):
        wh.sender_address("185.98.81.1", None, -1)
    with pytest.raises(ValueError, match=r"^proxy_hops cannot be negative$"):
        wh.SenderCheck.from_config(proxy_hops=-1)


# --------------------------------------------------------------------------- sending


class _Extreme(random.Random):
    """An rng that always draws the lowest (or highest) value of the range asked for,
    read as ``random.Random.randrange`` reads its arguments."""

    def __init__(self, highest: bool) -> None:
        super().__init__(0)
        self.highest = highest

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        low, high = (0, start) if stop is None else (start, stop)
        return high - 1 if self.highest else low


@pytest.mark.parametrize(("highest", "transaction"),
                         [(False, "1000000000"), (True, "9999999999")])
def test_a_samples_transaction_id_has_ten_digits_like_the_gateways(
    highest: bool, transaction: str
) -> None:
    fields = testing.sample_fields("Pay", now=NOW, rng=_Extreme(highest))
    assert fields["TransactionId"] == transaction


def test_a_subscription_sample_has_no_transaction_nor_date() -> None:
    fields = testing.sample_fields("recurrent", now=NOW)
    assert "TransactionId" not in fields and "DateTime" not in fields
    assert fields["Status"] == "Active"


@pytest.mark.parametrize(
    ("address", "joined"),
    [("http://shop.test/cp/pay", "http://shop.test/cp/pay?"),
     ("http://shop.test/cp/pay?site=2", "http://shop.test/cp/pay?site=2&")],
)
def test_a_get_url_starts_or_extends_the_query(address: str, joined: str) -> None:
    out = testing.build_notification("Pay", PAY, SECRET, method="get")
    assert out.url(address) == joined + out.body.decode("ascii")


@pytest.mark.parametrize(
    ("options", "method", "encoding", "content_type"),
    [({}, "POST", "utf-8", "application/x-www-form-urlencoded; charset=utf-8"),
     ({"encoding": "windows-1251"}, "POST", "windows-1251",
      "application/x-www-form-urlencoded; charset=windows-1251"),
     # The gateway's own name for it: still labelled as browsers and servers know it.
     ({"encoding": "Windows1251"}, "POST", "Windows1251",
      "application/x-www-form-urlencoded; charset=windows-1251"),
     ({"encoding": "UTF8"}, "POST", "UTF8",
      "application/x-www-form-urlencoded; charset=utf-8"),
     ({"method": " get "}, "GET", "utf-8", None)],
)
def test_build_notification_labels_what_it_sends(
    options: dict[str, str], method: str, encoding: str, content_type: str | None
) -> None:
    out = testing.build_notification("Pay", PAY, SECRET, **options)
    assert (out.type, out.method, out.encoding) == ("Pay", method, encoding)
    assert out.headers.get("Content-Type") == content_type
    assert _deliver(out, encoding=encoding).fields["Name"] == "Иван"


def test_build_notification_names_a_bad_method_cut_to_16_characters() -> None:
    with pytest.raises(ValueError) as exc:
        testing.build_notification("Pay", PAY, SECRET, method="DELETE" * 5)
    assert str(exc.value) == f"notifications are sent as GET or POST, not {('DELETE' * 5)[:16]!r}"
