"""checkout_kit.webhooks: receiving, answering, the Check decision, the IP check, keys."""

from __future__ import annotations

import base64
import json
import logging
import random
import urllib.parse
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checkout_kit import notifications as nt
from checkout_kit import testing
from checkout_kit import webhooks as wh
from checkout_kit.errors import (
    InvalidRequestError,
    MalformedNotificationError,
    NotificationError,
    SignatureVerificationError,
)
from checkout_kit.notifications import CheckCode

CASES = json.loads((Path(__file__).parent / "vectors" / "notification_signatures.json")
                   .read_text("utf-8"))["cases"]
VALID = [c for c in CASES if c["valid"]]
INVALID = [c for c in CASES if "failing_header" in c]
MALFORMED = [c for c in CASES if "failing_field" in c]
#: The forgery by re-encoding (issue 14 §2): a genuine Refund's X-Content-HMAC on other bytes.
FORGED = [c for c in CASES if "attack" in c]
SECRET = "sk_test_webhooks"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _raw(case: dict[str, Any]) -> bytes:
    return base64.b64decode(case["body_b64"])


def _opt_out(case: dict[str, Any]) -> dict[str, Any]:
    """The receiver's explicit opt-out of Content-HMAC, when the case makes it."""
    return {"require_content_hmac": False} if case["decoded_hmac_allowed"] else {}


def _typed(value: Any) -> Any:
    """A parsed attribute as the vectors write it."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# --------------------------------------------------------------------------- vectors


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_sign_and_url_decode_match_the_independent_vectors(case: dict[str, Any]) -> None:
    signed = case["signed_body"].encode("utf-8")
    assert nt.url_decode(signed, case["text_encoding"]) == case["decoded"]
    assert nt.sign(signed, case["secret"], encoding=case["text_encoding"]) == {
        "Content-HMAC": case["content_hmac"], "X-Content-HMAC": case["x_content_hmac"]}


@pytest.mark.parametrize("case", VALID, ids=lambda c: c["name"])
def test_valid_vectors_verify_and_parse(case: dict[str, Any]) -> None:
    raw, headers = _raw(case), case["headers"]
    nt.verify(raw, headers, case["receiver_secret"], encoding=case["text_encoding"],
              **_opt_out(case))
    content_type = headers.get("Content-Type") if case["method"] == "POST" else None
    parsed = nt.parse_notification(case["type"], raw, encoding=case["text_encoding"],
                                   content_type=content_type)
    assert dict(parsed.fields) == case["fields"]
    assert {k: _typed(getattr(parsed, k)) for k in case["typed"]} == case["typed"]


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c["name"])
def test_invalid_vectors_fail_verification_naming_the_header(case: dict[str, Any]) -> None:
    with pytest.raises(SignatureVerificationError) as exc:
        nt.verify(_raw(case), case["headers"], case["receiver_secret"],
                  encoding=case["text_encoding"], **_opt_out(case))
    assert exc.value.header == case["failing_header"]


@pytest.mark.parametrize("case", MALFORMED, ids=lambda c: c["name"])
def test_a_field_name_sent_twice_is_refused_though_signed(case: dict[str, Any]) -> None:
    raw, headers = _raw(case), case["headers"]
    nt.verify(raw, headers, case["receiver_secret"], encoding=case["text_encoding"],
              **_opt_out(case))
    with pytest.raises(MalformedNotificationError) as exc:
        nt.parse_notification(case["type"], raw, encoding=case["text_encoding"],
                              content_type=headers.get("Content-Type"))
    assert exc.value.field == case["failing_field"]


@pytest.mark.parametrize("case", FORGED, ids=lambda c: c["name"])
def test_a_re_encoded_refund_is_refused_not_applied_under_another_key(
        case: dict[str, Any]) -> None:
    raw, headers = _raw(case), case["headers"]
    genuine = case["signed_body"].encode("utf-8")
    # The forgery keeps the decoded text, so the genuine X-Content-HMAC matches it...
    assert raw != genuine and nt.url_decode(raw) == nt.url_decode(genuine)
    assert nt.sign(raw, case["secret"])["X-Content-HMAC"] == case["x_content_hmac"]
    # ...and read naively it names another refund: TransactionId 777, not 2001.
    assert dict(urllib.parse.parse_qsl(raw.decode()))["TransactionId"] == "777"
    with pytest.raises(NotificationError) as exc:
        wh.receive(case["method"], raw, headers, case["receiver_secret"],
                   expected_type=case["type"], encoding=case["encoding"], **_opt_out(case))
    if "failing_field" in case:
        assert isinstance(exc.value, MalformedNotificationError)
        assert exc.value.field == case["failing_field"]
        assert wh.answer_error(exc.value) == (400, b'{"code":13}')
    else:
        assert isinstance(exc.value, SignatureVerificationError)
        assert exc.value.header == case["failing_header"]
        assert wh.answer_error(exc.value) == (401, b'{"code":13}')


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_receive_gives_the_vector_verdict(case: dict[str, Any]) -> None:
    # ``encoding`` is what the shop configured; a POST's charset must override it.
    def run() -> wh.Received:
        return wh.receive(case["method"], _raw(case), case["headers"],
                          case["receiver_secret"], expected_type=case["type"],
                          encoding=case["encoding"], **_opt_out(case))
    if case["valid"]:
        received = run()
        assert received.type == case["type"]
        assert received.method == case["method"]
        assert dict(received.fields) == case["fields"]
        assert received.notification is not None
        assert {k: _typed(getattr(received.notification, k)) for k in case["typed"]} == \
            case["typed"]
    elif "failing_field" in case:
        with pytest.raises(MalformedNotificationError) as bad:
            run()
        assert bad.value.field == case["failing_field"]
        assert wh.answer_error(bad.value) == (400, b'{"code":13}')
    else:
        with pytest.raises(SignatureVerificationError) as exc:
            run()
        assert exc.value.header == case["failing_header"]
        assert wh.answer_error(exc.value) == (401, b'{"code":13}')


# --------------------------------------------------------------------------- receive


def _signed(fields: dict[str, str], *, method: str = "POST", encoding: str = "utf-8",
            kind: str = "Pay") -> testing.OutgoingNotification:
    return testing.build_notification(kind, fields, SECRET, method=method, encoding=encoding)


@pytest.mark.parametrize("kind", wh.WEBHOOK_TYPES)
@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("encoding", ["utf-8", "windows-1251"])
def test_every_sample_round_trips(kind: str, method: str, encoding: str) -> None:
    fields = testing.sample_fields(kind, now=NOW, rng=random.Random(7))
    out = _signed(fields, method=method, encoding=encoding, kind=kind)
    assert ("Content-Type" in out.headers) == (method == "POST")
    received = wh.receive(method.lower(), out.body, out.headers, SECRET,
                          expected_type=kind.upper(), encoding=encoding, require_both=True)
    assert received.type == kind
    assert dict(received.fields) == fields  # Cyrillic survives Windows-1251 too
    assert received.notification is not None  # Receipt is typed too
    assert received.notification.type == kind
    if kind == "Receipt":
        assert received.notification.receipt_type == fields["Type"]
        assert received.notification.receipt is not None
    elif kind != "Recurrent":
        assert received.notification.date_time == NOW
        assert received.notification.amount == Decimal(fields["Amount"])


def test_get_url_keeps_the_signed_bytes() -> None:
    out = _signed({"TransactionId": "1", "Amount": "1.00", "Name": "Иван"}, method="GET")
    url = out.url("http://shop.test/cp/pay?site=2")
    assert url == "http://shop.test/cp/pay?site=2&" + out.body.decode()
    assert _signed({"TransactionId": "1"}).url("http://x/") == "http://x/"


@pytest.mark.parametrize(
    ("method", "headers", "expected_type", "message"),
    [
        ("PUT", {}, "Pay", "GET or POST"),
        ("POST", {"Content-Type": "application/x-www-form-urlencoded; charset=koi8-r"},
         "Pay", "charset"),
        ("POST", {}, "Payment", "unknown notification type"),
    ],
)
def test_receive_refuses_before_verifying(
    method: str, headers: dict[str, str], expected_type: str, message: str
) -> None:
    out = _signed({"TransactionId": "1", "Amount": "1.00"})
    with pytest.raises(MalformedNotificationError, match=message):
        wh.receive(method, out.body, {**out.headers, **headers}, SECRET,
                   expected_type=expected_type)


def test_receive_refuses_an_oversized_body_and_a_signed_but_broken_one() -> None:
    big = b"a=" + b"x" * wh.MAX_BODY_BYTES
    with pytest.raises(MalformedNotificationError, match="bytes"):
        wh.receive("POST", big, nt.sign(big, SECRET), SECRET, expected_type="Pay")
    missing = _signed({"TransactionId": "1"})
    with pytest.raises(MalformedNotificationError) as exc:
        wh.receive("POST", missing.body, missing.headers, SECRET, expected_type="Pay")
    assert exc.value.field == "Amount"
    deep = _signed({"TransactionId": "1", "Amount": "1", "Data": "[" * 100_000})
    with pytest.raises(MalformedNotificationError) as exc:
        wh.receive("POST", deep.body, deep.headers, SECRET, expected_type="Pay")
    assert exc.value.field == "Data"
    receipt = _signed({"Type": "Income", "Amount": "1.00"}, kind="Receipt")
    with pytest.raises(MalformedNotificationError, match="Receipt"):
        wh.receive("POST", receipt.body, receipt.headers, SECRET, expected_type="Receipt")


def test_a_body_in_another_charset_than_declared_is_refused_not_misread() -> None:
    out = _signed({"TransactionId": "1", "Amount": "1.00", "Name": "Иван"},
                  encoding="windows-1251")
    headers = {**out.headers, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    with pytest.raises(NotificationError):
        wh.receive("POST", out.body, headers, SECRET, expected_type="Pay")


def test_answer_is_always_json_code() -> None:
    assert wh.answer(0) == (200, b'{"code":0}')
    assert wh.answer(CheckCode.EXPIRED) == (200, b'{"code":20}')
    with pytest.raises(TypeError):
        wh.answer(True)
    with pytest.raises(TypeError):
        wh.answer("0")  # type: ignore[arg-type]


def test_answer_error_logs_the_reason_but_not_the_body(caplog: pytest.LogCaptureFixture) -> None:
    out = _signed({"TransactionId": "1", "Amount": "1.00", "Email": "secret-buyer@example.com"})
    with caplog.at_level(logging.WARNING, logger="checkout_kit.webhooks"):
        try:
            wh.receive("POST", out.body, out.headers, "wrong", expected_type="Pay")
        except NotificationError as exc:
            assert wh.answer_error(exc, type="Pay") == (401, b'{"code":13}')
    assert "SignatureVerificationError" in caplog.text
    assert "Content-HMAC" in caplog.text
    assert "secret-buyer" not in caplog.text


# --------------------------------------------------------------------------- fuzzing

_HEADER_NAMES = st.sampled_from(
    ["Content-HMAC", "X-Content-HMAC", "content-hmac", "Content-Type", "X-Other"])
_TYPES = st.sampled_from([*wh.WEBHOOK_TYPES, "pay", "Payment", ""])
_CONTENT_TYPES = st.sampled_from([
    "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8",
    "application/x-www-form-urlencoded; charset=windows-1251", "application/json",
    "text/plain; charset=latin-1", "; charset=", "charset"])


def _answered(method: str, raw: bytes, headers: dict[str, str], secret: str,
              kind: str) -> dict[str, Any]:
    try:
        received = wh.receive(method, raw, headers, secret, expected_type=kind)
    except NotificationError as exc:
        status, body = wh.answer_error(exc)
        assert status == (401 if isinstance(exc, SignatureVerificationError) else 400)
    else:
        assert received.type.lower() == kind.lower()
        received.key  # noqa: B018 - computing the key must not fail either
        status, body = wh.answer(0)
        assert status == 200
    answer: dict[str, Any] = json.loads(body)
    return answer


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "post", "PUT", "", "G\u0117T"]),
    raw=st.binary(max_size=300),
    headers=st.dictionaries(_HEADER_NAMES | st.text(max_size=20),
                            st.text(max_size=60) | _CONTENT_TYPES, max_size=4),
    kind=_TYPES,
)
def test_arbitrary_deliveries_give_typed_errors_and_json(
    method: str, raw: bytes, headers: dict[str, str], kind: str
) -> None:
    assert set(_answered(method, raw, headers, SECRET, kind)) == {"code"}


_WIRE_NAMES = st.sampled_from(
    ["TransactionId", "Amount", "Currency", "DateTime", "TestMode", "Data", "ReasonCode",
     "PaymentTransactionId", "Id", "Status", "Period", "StartDate", "DocumentNumber",
     "InvoiceId", "OperationType"])


@settings(max_examples=300, deadline=None)
@given(
    fields=st.dictionaries(_WIRE_NAMES | st.text(max_size=8),
                           st.text(max_size=24) | st.from_regex(r"-?\d{1,6}(\.\d{1,3})?"),
                           max_size=8),
    method=st.sampled_from(["GET", "POST"]),
    encoding=st.sampled_from(["utf-8", "windows-1251"]),
    kind=_TYPES,
    json_body=st.booleans(),
)
def test_signed_arbitrary_fields_parse_or_fail_typed(
    fields: dict[str, str], method: str, encoding: str, kind: str, json_body: bool
) -> None:
    """Signed, so every delivery reaches the parser: still only typed errors."""
    if json_body and method == "POST":
        raw = json.dumps(fields, ensure_ascii=False).encode("utf-8")
        headers = {**nt.sign(raw, SECRET), "Content-Type": "application/json"}
    else:
        out = testing.build_notification("Pay", fields, SECRET, method=method, encoding=encoding)
        raw, headers = out.body, dict(out.headers)
    assert set(_answered(method, raw, headers, SECRET, kind)) == {"code"}


# --------------------------------------------------------------------------- keys


def _note(kind: str, **fields: str) -> wh.Received:
    out = _signed(fields, kind=kind)
    return wh.receive("POST", out.body, out.headers, SECRET, expected_type=kind)


def test_notification_key_identifies_one_event() -> None:
    pay = _note("Pay", TransactionId="0042", Amount="1.00")
    assert pay.key == ("Pay", "42", "")
    assert pay.notification is not None
    assert wh.notification_key(pay.notification) == pay.key
    assert _note("Pay", TransactionId="42", Amount="1.00", Email="x@y.z").key == pay.key
    assert _note("Check", TransactionId="42", Amount="1.00").key != pay.key
    refund = _note("Refund", TransactionId="43", PaymentTransactionId="42", Amount="1.00")
    assert refund.key == ("Refund", "43", "Refund")
    payout = _note("Refund", TransactionId="43", PaymentTransactionId="42", Amount="1.00",
                   OperationType="CardPayout")
    assert payout.key == ("Refund", "43", "CardPayout")


def test_refund_receipts_of_one_payment_have_two_keys() -> None:
    # notification_key and dedupe_key share receipt_key: the fiscal document decides.
    base = {"TransactionId": "42", "Type": "IncomeReturn", "Amount": "1.00",
            "RegNumber": "0000000001046735"}
    first = _note("Receipt", **base, DocumentNumber="7", FiscalSign="2778489032")
    second = _note("Receipt", **base, DocumentNumber="8", FiscalSign="1187342911")
    assert first.key != second.key
    assert first.key == ("Receipt", "2778489032", "FiscalSign:0000000001046735")
    assert _note("Receipt", **base, DocumentNumber="7", FiscalSign="2778489032").key == first.key
    by_hand = wh.Received("Receipt", "POST", "utf-8", {**base, "DocumentNumber": "8"})
    assert by_hand.key == ("Receipt", "8", "Document:0000000001046735")
    assert first.notification is not None
    assert first.key[1:] == tuple(first.notification.dedupe_key[1].split(":", 1))


def test_recurrent_keys_change_with_each_status_change() -> None:
    base = {"Id": "sc_1", "Status": "Active", "SuccessfulTransactionsNumber": "1",
            "FailedTransactionsNumber": "0", "LastTransactionDate": "2026-01-01 00:00:00"}
    first = _note("Recurrent", **base)
    past_due = _note("Recurrent", **{**base, "Status": "PastDue",
                                     "FailedTransactionsNumber": "1"})
    again = _note("Recurrent", **{**base, "SuccessfulTransactionsNumber": "2",
                                  "LastTransactionDate": "2026-02-01 00:00:00"})
    assert len({first.key, past_due.key, again.key}) == 3
    assert _note("Recurrent", **base).key == first.key


def test_receipt_keys() -> None:
    income = _note("Receipt", TransactionId="42", Type="Income", DocumentNumber="7")
    refund = _note("Receipt", TransactionId="42", Type="IncomeReturn", DocumentNumber="8")
    # No fiscal field: the fallback is TransactionId (else DocumentNumber) with Type.
    assert income.key == ("Receipt", "42", "Type:Income")
    assert refund.key != income.key
    assert _note("Receipt", DocumentNumber="9", Type="Income").key == (
        "Receipt", "9", "Type:Income")


# --------------------------------------------------------------------------- Check


@dataclass(frozen=True)
class Payment:
    invoice_id: str = "1234567"
    account_id: str | None = "user@example.com"
    amount: Decimal = Decimal("1500.00")
    currency: str = "RUB"
    status: str = "pending"
    expires_at: datetime | None = NOW + timedelta(minutes=1)


def _check(**overrides: str) -> nt.Notification:
    fields = testing.sample_fields("Check", overrides, now=NOW, rng=random.Random(1))
    return nt.parse_notification("Check", fields)


@pytest.mark.parametrize(
    ("payment", "fields", "code"),
    [
        (Payment(), {}, CheckCode.ACCEPT),
        (None, {}, CheckCode.INVALID_INVOICE_ID),
        (Payment(), {"AccountId": "other@example.com"}, CheckCode.INVALID_ACCOUNT_ID),
        (Payment(account_id=None), {"AccountId": "anyone"}, CheckCode.ACCEPT),
        (Payment(), {"Amount": "1499.99"}, CheckCode.INVALID_AMOUNT),
        (Payment(), {"Amount": "1500"}, CheckCode.ACCEPT),  # the same amount, written shorter
        (Payment(), {"Currency": "USD"}, CheckCode.INVALID_AMOUNT),
        (Payment(), {"Currency": "rub"}, CheckCode.ACCEPT),
        (Payment(), {"Currency": ""}, CheckCode.INVALID_AMOUNT),
        (Payment(status="Completed"), {}, CheckCode.NOT_ACCEPTED),
        (Payment(status="cancelled"), {}, CheckCode.NOT_ACCEPTED),
        (Payment(status="declined"), {}, CheckCode.ACCEPT),  # a Fail is not the end
        (Payment(expires_at=NOW), {}, CheckCode.EXPIRED),
        (Payment(expires_at=datetime(2026, 3, 1, 11, 59)), {}, CheckCode.EXPIRED),  # naive = UTC
        (Payment(expires_at=None), {}, CheckCode.ACCEPT),
        # the first failing test wins
        (Payment(status="paid", expires_at=NOW), {"Amount": "1"}, CheckCode.INVALID_AMOUNT),
        (Payment(status="paid", expires_at=NOW), {}, CheckCode.NOT_ACCEPTED),
    ],
)
def test_check_decision_table(payment: Payment | None, fields: dict[str, str],
                              code: CheckCode) -> None:
    assert wh.check_decision(_check(**fields), payment, now=NOW) is code


def test_check_rules_run_after_the_default_in_order(caplog: pytest.LogCaptureFixture) -> None:
    checks = wh.CheckRules()
    seen: list[str] = []

    @checks.rule
    def first(n: nt.Notification, p: wh.PaymentSnapshot) -> int | None:
        seen.append("first")
        return None

    @checks.rule
    def sold_out(n: nt.Notification, p: wh.PaymentSnapshot) -> int | None:
        seen.append("sold_out")
        return CheckCode.NOT_ACCEPTED if p.invoice_id == "sold" else 0

    @checks.rule
    def last(n: nt.Notification, p: wh.PaymentSnapshot) -> int | None:
        seen.append("last")
        return None

    assert checks.rules == (first, sold_out, last)
    assert checks.decide(_check(), Payment(), now=NOW) is CheckCode.ACCEPT
    assert seen == ["first", "sold_out", "last"]
    seen.clear()
    assert checks.decide(_check(), replace(Payment(), invoice_id="sold"), now=NOW) is \
        CheckCode.NOT_ACCEPTED
    assert seen == ["first", "sold_out"]
    seen.clear()
    # No record: not the record's payment, and not its rules' either (they take one);
    # without opting in, answered as check_decision answers it.
    assert checks.decide(_check(), None, now=NOW) is CheckCode.INVALID_INVOICE_ID
    assert checks.decide(_check(Amount="1"), Payment(), now=NOW) is CheckCode.INVALID_AMOUNT
    assert seen == []


def test_a_check_for_a_payment_the_record_does_not_own_goes_to_the_unowned_rules() -> None:
    # Regression (issue 14, §1.8): a subscription's charge, a token charge or another
    # channel's payment was declined with 10 (or 13: the subscription's first payment is
    # closed), and the gateway declined every recurrent charge.
    checks = wh.CheckRules(unowned_default=CheckCode.ACCEPT)
    assert checks.decide(_check(), None, now=NOW) is CheckCode.ACCEPT
    closed = replace(Payment(), status="succeeded")
    assert checks.decide(_check(SubscriptionId="sc_1"), closed, now=NOW) is CheckCode.ACCEPT
    assert checks.decide(_check(), closed, now=NOW) is CheckCode.NOT_ACCEPTED  # owned

    seen: list[str | None] = []

    @checks.unowned_rule
    def only_known_subscriptions(n: nt.Notification) -> int | None:
        seen.append(n.subscription_id)
        return None if n.subscription_id == "sc_1" else CheckCode.NOT_ACCEPTED

    assert checks.unowned_rules == (only_known_subscriptions,)
    assert checks.decide(_check(SubscriptionId="sc_1"), None, now=NOW) is CheckCode.ACCEPT
    assert checks.decide(_check(), None, now=NOW) is CheckCode.NOT_ACCEPTED
    assert checks.decide(_check(), Payment(), now=NOW) is CheckCode.ACCEPT  # owned: not asked
    assert seen == ["sc_1", None]


def test_accepting_an_unowned_check_is_opt_in() -> None:
    # Regression (review of issue 14 §1.8): CheckRules().decide(n, None) changed from
    # 10 to 0 for every user of the pure core, not only for the Flask extension.
    closed = replace(Payment(), status="succeeded")
    recurrent = _check(SubscriptionId="sc_1")
    plain = wh.CheckRules()
    assert plain.unowned_default is None
    assert plain.decide(_check(), None, now=NOW) is CheckCode.INVALID_INVOICE_ID
    assert plain.decide(_check(), None, now=NOW) is wh.check_decision(_check(), None, now=NOW)
    assert plain.decide(recurrent, closed, now=NOW) is wh.check_decision(
        recurrent, closed, now=NOW) is CheckCode.NOT_ACCEPTED
    accepting = wh.CheckRules(unowned_default=CheckCode.ACCEPT)
    assert accepting.decide(_check(), None, now=NOW) is CheckCode.ACCEPT
    assert accepting.decide(recurrent, closed, now=NOW) is CheckCode.ACCEPT
    # An unowned rule still declines before the default answers.
    accepting.unowned_rule(lambda n: CheckCode.NOT_ACCEPTED)
    assert accepting.decide(_check(), None, now=NOW) is CheckCode.NOT_ACCEPTED


def test_owns_tells_a_subscriptions_or_token_charge_from_the_payments_own() -> None:
    # Regression (review of issue 14 §1.8): a recurrent charge names the invoice of the
    # payment that started it; only the Check was told apart, not Pay or a lookup.
    open_ = Payment()
    paid = replace(Payment(), status="succeeded")
    assert wh.owns(_check(), open_) and wh.owns(_check(), paid)
    assert not wh.owns(_check(), None)
    recurrent = _check(SubscriptionId="sc_1")
    assert wh.owns(recurrent, open_)  # the first charge, which started the subscription
    assert not wh.owns(recurrent, paid)
    assert wh.owns(recurrent, paid, payment_transaction_id=recurrent.transaction_id)
    token = _check(TrInitiatorCode="1")
    assert not wh.owns(token, open_) and not wh.owns(token, paid)


def test_the_scheme_rule_is_not_skipped_for_a_snapshot_without_a_scheme() -> None:
    # Regression (review of issue 14): settlement_mismatch read getattr(payment,
    # "scheme", None), so a shop's own PaymentSnapshot silently skipped the rule.
    args = {"amount": Decimal("1500.00"), "currency": "RUB", "account_id": "user-1"}
    snapshot = replace(Payment(), account_id="user-1")
    assert wh.settlement_mismatch(snapshot, status="Authorized", scheme="charge",
                                  **args) is CheckCode.NOT_ACCEPTED
    assert wh.settlement_mismatch(snapshot, status="Completed", scheme="auth",
                                  **args) is CheckCode.NOT_ACCEPTED
    assert wh.settlement_mismatch(snapshot, status="Completed", scheme="charge",
                                  **args) is None
    with pytest.raises(InvalidRequestError):
        wh.settlement_mismatch(snapshot, status="Authorized", **args)


@pytest.mark.parametrize(
    ("result", "logged"),
    [(RuntimeError("db down for user@example.com"), "RuntimeError"),
     (False, "returned False"), (99, "returned 99"), ("0", "returned '0'")],
)
def test_a_broken_rule_declines_and_is_logged_without_the_body(
    result: object, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    checks = wh.CheckRules()

    @checks.rule
    def broken(n: nt.Notification, p: wh.PaymentSnapshot) -> Any:
        if isinstance(result, Exception):
            raise result
        return result

    notification = _check(Email="buyer-private@example.com")
    with caplog.at_level(logging.ERROR, logger="checkout_kit.webhooks"):
        assert checks.decide(notification, Payment(), now=NOW) is CheckCode.NOT_ACCEPTED
    assert logged in caplog.text
    assert "broken" in caplog.text
    assert str(notification.transaction_id) in caplog.text
    assert "buyer-private" not in caplog.text
    assert wh.CheckRules(on_error=CheckCode.EXPIRED).on_error is CheckCode.EXPIRED


# --------------------------------------------------------------------------- sender IP


@pytest.mark.parametrize(
    ("remote", "xff", "hops", "expected"),
    [
        ("185.98.81.1", None, 0, "185.98.81.1"),
        ("185.98.81.1", "6.6.6.6", 0, "185.98.81.1"),  # no proxy: the header is ignored
        ("10.0.0.2", "185.98.81.1", 1, "185.98.81.1"),
        ("10.0.0.2", "185.98.81.1, 10.0.0.1", 1, "10.0.0.1"),
        ("10.0.0.2", "185.98.81.1, 10.0.0.1", 2, "185.98.81.1"),
        # a forged entry to the left of what our proxy wrote is not believed
        ("10.0.0.2", "185.98.81.1, 6.6.6.6", 1, "6.6.6.6"),
        ("10.0.0.2", "185.98.81.1", 2, None),  # fewer entries than hops
        ("10.0.0.2", None, 1, None),
        ("10.0.0.2", " , ", 1, None),
        ("10.0.0.2", "185.98.81.1:443", 1, "185.98.81.1"),
        ("10.0.0.2", "[2001:db8::1]:443", 1, "2001:db8::1"),
        ("::ffff:185.98.81.1", None, 0, "185.98.81.1"),
        ("10.0.0.2", "unknown", 1, None),
        (None, None, 0, None),
        ("not an ip", None, 0, None),
    ],
)
def test_sender_address(remote: str | None, xff: str | None, hops: int,
                        expected: str | None) -> None:
    address = wh.sender_address(remote, xff, hops)
    assert (None if address is None else str(address)) == expected


def test_sender_check() -> None:
    assert wh.SenderCheck().allows("6.6.6.6")  # off by default
    default = wh.SenderCheck.from_config()
    assert default.allows("185.98.81.15") and default.allows("91.216.178.243")
    assert not default.allows("185.98.81.16")
    assert not default.allows(None)
    proxied = wh.SenderCheck.from_config(["203.0.113.0/24", " 2001:db8::/32"], proxy_hops=1)
    assert proxied.allows("10.0.0.2", "203.0.113.9")
    assert proxied.allows("10.0.0.2", "2001:db8::5")
    assert not proxied.allows("203.0.113.9")  # no header from our own proxy
    assert not proxied.allows("10.0.0.2", "203.0.113.9, 6.6.6.6")
    with pytest.raises(ValueError, match="CIDR"):
        wh.SenderCheck.from_config(["185.98.81.0/33"])
    with pytest.raises(ValueError):
        wh.SenderCheck.from_config(proxy_hops=-1)
    with pytest.raises(ValueError):
        wh.sender_address("1.2.3.4", None, -1)


# --------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class _Scheme(Payment):
    scheme: str = "charge"


@pytest.mark.parametrize(("payment", "given", "code"), [
    (_Scheme(), {}, None),
    (_Scheme(), {"amount": Decimal("1500")}, None),  # 1500 is 1500.00: Decimal, exactly
    (_Scheme(), {"amount": Decimal("1.00")}, CheckCode.INVALID_AMOUNT),
    (_Scheme(), {"amount": Decimal("1500.01")}, CheckCode.INVALID_AMOUNT),
    (_Scheme(), {"currency": "USD"}, CheckCode.INVALID_AMOUNT),
    (_Scheme(), {"account_id": "mallory"}, CheckCode.INVALID_ACCOUNT_ID),
    (_Scheme(), {"account_id": None}, CheckCode.INVALID_ACCOUNT_ID),
    (_Scheme(), {"account_id": None, "amount": Decimal("10"), "partial": True}, None),
    (_Scheme(), {"amount": Decimal("1600"), "partial": True}, CheckCode.INVALID_AMOUNT),
    (_Scheme(), {"status": "Authorized"}, CheckCode.NOT_ACCEPTED),
    # a voided hold is a two-stage operation: never a one-stage payment's (defect 5)
    (_Scheme(), {"status": "Cancelled"}, CheckCode.NOT_ACCEPTED),
    (_Scheme(scheme="auth"), {"status": "Cancelled"}, None),
    (_Scheme(scheme="auth"), {"status": "Authorized"}, None),
    (_Scheme(scheme="auth"), {"status": "Completed"}, CheckCode.NOT_ACCEPTED),
    (_Scheme(scheme="auth"), {"status": "Completed", "capture": True}, None),
    (replace(_Scheme(), account_id=None), {"account_id": "anyone"}, None),
])
def test_the_settlement_rule(payment: _Scheme, given: dict[str, Any],
                             code: CheckCode | None) -> None:
    # Regression (issue 14, §1.1): one rule for every path that settles a payment.
    args: dict[str, Any] = {"amount": Decimal("1500.00"), "currency": "RUB",
                            "account_id": "user@example.com", **given}
    if "status" in given:
        args["scheme"] = payment.scheme
    assert wh.settlement_mismatch(payment, **args) is code
