"""The notification inbox driven directly: the audit rows it stores and reads back, the
keys it applies each notification once under, and the outcome, code, error, history
note and problem each kind of delivery leaves (issue 14 §4: the mutation pass over
ledger/inbox.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from checkout_kit.ledger import Ledger
from checkout_kit.ledger.inbox import Applied, CheckDecider, Inbox, _stored_key
from checkout_kit.ledger.schema import notifications, refunds
from checkout_kit.ledger.store import Payment
from checkout_kit.notifications import Notification
from checkout_kit.testing import build_notification, sample_fields
from checkout_kit.webhooks import Received, receive

from .conftest import Clock

SECRET = "inbox_records_secret"


def _store(inbox: Inbox, kind: str = "Pay", **kw: Any) -> int:
    values: dict[str, Any] = {"method": "POST", "body": b"", "headers": {},
                              "remote_addr": None, "signature_valid": True}
    values.update(kw)
    return inbox.record(type=kind, **values).id


def _received(kind: str, fields: Mapping[str, str]) -> Received:
    """A signed notification of ``kind`` (sample fields, ``fields`` over them), verified."""
    sent = build_notification(kind, sample_fields(kind, fields), SECRET)
    return receive("POST", sent.body, sent.headers, SECRET, expected_type=kind)


def _answer(code: int) -> CheckDecider:
    def decide(_n: Notification, _p: Payment | None) -> int:
        return code
    return decide


_ACCEPT: CheckDecider = _answer(0)


def _deliver(inbox: Inbox, kind: str, fields: Mapping[str, str],
             decide: CheckDecider = _ACCEPT) -> Applied:
    """Record and apply one delivery, as the shop's route does."""
    return inbox.apply(_store(inbox, kind), _received(kind, fields), decide)


def _payment(ledger: Ledger, invoice: str = "inv-1", amount: str = "1500.00",
             scheme: str = "charge") -> Payment:
    return ledger.create_payment(invoice_id=invoice, amount=amount, currency="RUB",
                                 description=f"Order {invoice}", account_id="user@example.com",
                                 scheme=scheme)


# --- the audit log ----------------------------------------------------------------------


def test_a_stored_request_reads_back_as_it_arrived(ledger: Ledger, clock: Clock) -> None:
    inbox = Inbox(ledger)
    first = _store(inbox, "Check")
    stored = inbox.record(
        type="Pay", method="GET", body=b"InvoiceId=A-1&Amount=1.00",
        headers={"Content-HMAC": "abc=", "X-Forwarded-For": "203.0.113.7"},
        remote_addr="198.51.100.4", signature_valid=False, outcome="refused", code=13,
        error="SignatureVerificationError: no match", replay_of=first)
    expected = {
        "type": "Pay", "method": "GET", "body": b"InvoiceId=A-1&Amount=1.00",
        "headers": {"Content-HMAC": "abc=", "X-Forwarded-For": "203.0.113.7"},
        "remote_addr": "198.51.100.4", "signature_valid": False, "applied": False,
        "outcome": "refused", "code": 13, "key": None, "payment_id": None,
        "replay_of": first, "error": "SignatureVerificationError: no match",
        "received_at": clock.now, "purged_at": None,
    }
    for record in (stored, inbox.get(stored.id)):
        assert {name: getattr(record, name) for name in expected} == expected
        assert type(record.body) is bytes and stored.id > first
    # The defaults: a request just received, valid, not looked at yet.
    plain = inbox.get(first)
    assert (plain.type, plain.outcome, plain.code, plain.error, plain.replay_of,
            plain.signature_valid, plain.applied) == (
        "Check", "received", None, None, None, True, False)


def test_a_record_with_an_unknown_outcome_is_refused_and_stores_nothing(
        ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    with pytest.raises(ValueError, match=r"^unknown outcome 'done'$"):
        _store(inbox, outcome="done")
    assert inbox.list() == []


def test_stored_text_is_cut_to_its_column_and_keeps_no_nul(ledger: Ledger) -> None:
    # The columns are VARCHAR(20), VARCHAR(10), VARCHAR(64): PostgreSQL refuses a longer
    # value, and its text cannot hold NUL, which a received header may carry.
    inbox = Inbox(ledger)
    record = inbox.record(type="T" * 25, method="M" * 12, body=b"", headers={},
                          remote_addr="\x00" + "a" * 70, signature_valid=False,
                          outcome="refused", error="e\x00" + "x" * 2100)
    assert record.type == "T" * 20 and record.method == "M" * 10
    assert record.remote_addr == "\\x00" + "a" * 60
    assert record.error is not None and len(record.error) == 2000
    assert record.error.startswith("e\\x00xx") and "\x00" not in record.error


def test_an_unknown_record_is_a_lookup_error(ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    _store(inbox)
    with pytest.raises(LookupError, match=r"^no notification 999$"):
        inbox.get(999)


def test_the_log_lists_newest_first_by_type_in_any_case(ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    pay1, fail, pay2 = _store(inbox, "Pay"), _store(inbox, "Fail"), _store(inbox, "Pay")
    assert [r.id for r in inbox.list()] == [pay2, fail, pay1]
    assert [r.id for r in inbox.list(type="pAY")] == [pay2, pay1]
    assert [r.id for r in inbox.list(type="Fail")] == [fail]
    assert [r.id for r in inbox.list(limit=2)] == [pay2, fail]
    assert inbox.list(type="Refund") == []


def test_the_log_lists_100_rows_unless_told(ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    row = {"type": "Pay", "method": "POST", "body": b"", "headers": "{}",
           "signature_valid": True, "applied": False, "outcome": "received",
           "received_at": ledger.now()}
    with ledger.engine.begin() as conn:  # one transaction: 101 commits would be slow
        conn.execute(notifications.insert(), [row] * 101)
    assert len(inbox.list()) == 100
    assert len(inbox.list(limit=101)) == 101


def test_the_log_lists_the_rows_of_one_payment(ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    a, b = _payment(ledger, "inv-a"), _payment(ledger, "inv-b")
    on_a = _deliver(inbox, "Pay", {"InvoiceId": "inv-a", "TransactionId": "501"})
    on_b = _deliver(inbox, "Pay", {"InvoiceId": "inv-b", "TransactionId": "502"})
    _store(inbox, "Pay")  # bound to no payment
    assert [r.id for r in inbox.list(payment_id=a.id)] == [on_a.record.id]
    assert [r.id for r in inbox.list(payment_id=b.id, type="pay")] == [on_b.record.id]


def test_a_delivery_marked_as_failed_keeps_its_code_and_cleaned_error(
        ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    failed, other = _store(inbox, "Pay"), _store(inbox, "Fail")
    marked = inbox.mark(failed, outcome="error", code=13, error="OperationalError: \x00")
    assert (marked.id, marked.outcome, marked.code, marked.error) == (
        failed, "error", 13, "OperationalError: \\x00")
    assert inbox.get(failed) == marked
    untouched = inbox.get(other)
    assert (untouched.outcome, untouched.code, untouched.error) == ("received", None, None)
    # Without a code or error, both are cleared.
    cleared = inbox.mark(failed, outcome="received")
    assert (cleared.outcome, cleared.code, cleared.error) == ("received", None, None)


# --- keys -------------------------------------------------------------------------------


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(("key", "stored"), [
    (("Pay", "1", ""), ("Pay", "1", "")),
    # At its column's length a part is kept as it is.
    (("T" * 20, "i" * 255, "q" * 320), ("T" * 20, "i" * 255, "q" * 320)),
    # One longer is replaced by its SHA-256 (cut to the column: the type's is 20).
    (("T" * 21, "i" * 256, "q" * 321),
     (_sha("T" * 21)[:20], _sha("i" * 256), _sha("q" * 321))),
    # A NUL, which PostgreSQL's text cannot hold, in a short part too.
    (("Pay", "1\x002", "ä\x00"), ("Pay", _sha("1\x002"), _sha("ä\x00"))),
    (("Refund", "é" * 256, "Refund"), ("Refund", _sha("é" * 256), "Refund")),
])
def test_a_key_part_too_long_or_holding_nul_is_stored_as_its_hash(
        key: tuple[str, str, str], stored: tuple[str, str, str]) -> None:
    assert _stored_key(key) == stored


def test_applied_count_matches_the_whole_key(ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    _payment(ledger)
    applied = _deliver(inbox, "Pay", {"InvoiceId": "inv-1", "TransactionId": "700"})
    assert applied.record.key == "Pay:700:"
    assert inbox.applied_count(("Pay", "700", "")) == 1
    for other in (("Fail", "700", ""), ("Pay", "701", ""), ("Pay", "700", "Refund")):
        assert inbox.applied_count(other) == 0
    # A key of another shape is an error, never a count of the parts it shares.
    with pytest.raises(ValueError, match="zip"):
        inbox.applied_count(("Pay", "700", "", "x"))  # type: ignore[arg-type]
    # A long key is counted as it was stored: by its hash.
    long = "7" * 300
    _deliver(inbox, "Recurrent", {"Id": long})
    (recurrent,) = inbox.list(type="Recurrent")
    assert recurrent.key is not None and recurrent.key.startswith(f"Recurrent:{_sha(long)}:")
    qualifier = recurrent.key.split(":", 3)[3]
    assert inbox.applied_count(("Recurrent", long, qualifier)) == 1


# --- applying: the audit row, the answer, the key -----------------------------------------


def _notes(ledger: Ledger, payment_id: str) -> list[str | None]:
    return [e.note for e in ledger.history(payment_id)]


class _Decider:
    """A Check decider answering ``code`` that remembers what it was asked about."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.asked: list[tuple[int | None, str | None]] = []

    def __call__(self, n: Notification, payment: Payment | None) -> int:
        self.asked.append((n.transaction_id, None if payment is None else payment.id))
        return self.code


def test_a_check_is_decided_once_and_a_repeat_gets_the_stored_code(ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    payment = _payment(ledger)
    decide = _Decider(11)
    first = _deliver(inbox, "Check", {"InvoiceId": "inv-1", "TransactionId": "900"}, decide)
    assert decide.asked == [(900, payment.id)]
    assert (first.code, first.applied, first.duplicate) == (11, True, False)
    assert first.payment is not None and first.payment.id == payment.id
    record = first.record
    assert (record.outcome, record.code, record.applied, record.key, record.payment_id,
            record.error) == ("decided", 11, True, "Check:900:", payment.id, None)
    # Delivered again, it is answered as stored, without asking the shop again.
    decide.code = 0
    again = _deliver(inbox, "Check", {"InvoiceId": "inv-1", "TransactionId": "900"}, decide)
    assert len(decide.asked) == 1
    assert (again.code, again.applied, again.duplicate) == (11, False, True)
    assert (again.record.outcome, again.record.code, again.record.applied,
            again.record.key, again.record.payment_id) == (
        "duplicate", 11, False, "Check:900:", payment.id)
    assert again.payment is not None and again.payment.id == payment.id


def test_a_check_of_an_unknown_invoice_is_decided_without_a_payment(ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    decide = _Decider(10)
    applied = _deliver(inbox, "Check", {"InvoiceId": "nope", "TransactionId": "901"}, decide)
    assert decide.asked == [(901, None)]
    assert (applied.code, applied.payment, applied.record.outcome, applied.record.code,
            applied.record.payment_id) == (10, None, "decided", 10, None)


class _LateLookup(Inbox):
    """An inbox whose first key lookup misses a key that is there: what a lookup sees
    when a concurrent delivery of the same notification commits just after it (possible
    on PostgreSQL; SQLite's BEGIN IMMEDIATE serializes the two)."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger)
        self.misses = 1

    def _key_filter(self, key: tuple[str, str, str]) -> tuple[Any, ...]:  # type: ignore[override]
        if self.misses:
            self.misses -= 1
            return (sa.false(),)
        return Inbox._key_filter(key)


def test_a_delivery_that_lost_the_race_for_its_key_is_a_duplicate_with_the_stored_code(
        ledger: Ledger) -> None:
    payment = _payment(ledger)
    fields = {"InvoiceId": "inv-1", "TransactionId": "902"}
    assert _deliver(Inbox(ledger), "Check", fields, _answer(12)).code == 12
    late = _LateLookup(ledger)
    applied = _deliver(late, "Check", fields, _answer(0))
    assert late.misses == 0
    assert (applied.code, applied.duplicate, applied.applied) == (12, True, False)
    assert applied.payment is not None and applied.payment.id == payment.id
    assert (applied.changes, applied.problems, applied.refunded) == ((), (), None)
    record = applied.record
    assert (record.outcome, record.code, record.applied, record.key, record.payment_id) == (
        "duplicate", 12, False, "Check:902:", payment.id)
    assert Inbox(ledger).applied_count(("Check", "902", "")) == 1


def test_an_integrity_error_not_of_the_key_is_raised_and_leaves_the_row_received(
        ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    record_id = _store(inbox, "Check")

    def broken(_n: Notification, _p: Payment | None) -> int:
        raise sa.exc.IntegrityError("INSERT ...", {}, Exception("another constraint"))

    with pytest.raises(sa.exc.IntegrityError, match="another constraint"):
        inbox.apply(record_id, _received("Check", {"InvoiceId": "nope"}), broken)
    assert inbox.get(record_id).outcome == "received"
    assert inbox.list(type="Check")[0].key is None


def test_a_notification_for_no_payment_is_logged_and_may_be_applied_later(
        ledger: Ledger, caplog: pytest.LogCaptureFixture) -> None:
    inbox = Inbox(ledger)
    fields = {"InvoiceId": "late-1", "TransactionId": "903"}
    with caplog.at_level(logging.WARNING, logger="checkout_kit.ledger.inbox"):
        applied = _deliver(inbox, "Pay", fields)
    why = "no payment for invoice 'late-1' / transaction 903"
    assert (applied.code, applied.applied, applied.payment) == (0, False, None)
    record = applied.record
    assert (record.outcome, record.code, record.error, record.key, record.payment_id) == (
        "unknown_payment", 0, why, "Pay:903:", None)
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("checkout_kit.ledger.inbox", "WARNING",
         f"notification {record.id} (unknown_payment): {why}")]
    assert inbox.applied_count(("Pay", "903", "")) == 0
    # Once the shop has the payment, the same notification (a replay) is applied.
    payment = _payment(ledger, "late-1")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="checkout_kit.ledger.inbox"):
        again = _deliver(inbox, "Pay", fields)
    assert caplog.records == []  # no error: nothing to warn about
    assert (again.record.outcome, again.record.applied, again.record.payment_id,
            again.record.error) == ("applied", True, payment.id, None)
    assert [(str(old), str(new)) for p, old, new in again.changes] == [
        ("created", "processing"), ("processing", "succeeded")]
    assert again.payment is not None and again.payment.status == "succeeded"


def test_a_notification_without_invoice_finds_its_payment_by_transaction(
        ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    payment = _payment(ledger)
    _deliver(inbox, "Pay", {"InvoiceId": "inv-1", "TransactionId": "904"})
    # A Fail names its own transaction; a Refund the refunded one, apart.
    fail = _deliver(inbox, "Fail", {"InvoiceId": "", "TransactionId": "904"})
    assert fail.record.payment_id == payment.id
    refund = _deliver(inbox, "Refund", {"InvoiceId": "", "TransactionId": "905",
                                        "PaymentTransactionId": "904", "Amount": "100.00"})
    assert (refund.record.outcome, refund.record.payment_id, refund.refunded) == (
        "applied", payment.id, Decimal("100.00"))
    # A Refund whose own number is the payment's is not found by it.
    other = _deliver(inbox, "Refund", {"InvoiceId": "", "TransactionId": "904",
                                       "PaymentTransactionId": "1", "Amount": "100.00"})
    assert (other.record.outcome, other.record.payment_id) == ("unknown_payment", None)


def test_a_notification_made_by_hand_without_a_typed_body_is_recorded_only(
        ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    _payment(ledger)
    received = Received("Pay", "POST", "utf-8", {"TransactionId": "906", "InvoiceId": "inv-1"})
    applied = inbox.apply(_store(inbox), received, _answer(0))
    record = applied.record
    assert (applied.code, applied.payment, record.outcome, record.applied, record.key,
            record.payment_id) == (0, None, "recorded", True, "Pay:906:", None)


def test_a_receipt_naming_a_payment_invoice_is_recorded_without_it(ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    payment = _payment(ledger, "1234567")
    applied = _deliver(inbox, "Receipt", {"InvoiceId": "1234567"})
    assert (applied.record.outcome, applied.record.applied, applied.record.payment_id,
            applied.payment) == ("recorded", True, None, None)
    assert ledger.get(payment.id).status == "created"


# --- the effects: outcome, answer, error, history note, problem ----------------------------


def _what(applied: Applied) -> tuple[str, int | None, str | None]:
    """``(outcome, code, error)`` of the audit row; the answer given is its code."""
    record = applied.record
    assert record.code == applied.code
    return record.outcome, record.code, record.error


def _pay(inbox: Inbox, tx: int, invoice: str = "inv-1", **fields: str) -> Applied:
    return _deliver(inbox, "Pay", {"InvoiceId": invoice, "TransactionId": str(tx), **fields})


def _paid(ledger: Ledger, scheme: str = "charge", tx: int = 100) -> tuple[Inbox, Payment]:
    """A payment paid (or, two-stage, held) by a Pay notification of ``tx``."""
    inbox = Inbox(ledger)
    payment = _payment(ledger, scheme=scheme)
    status = "Authorized" if scheme == "auth" else "Completed"
    assert _what(_pay(inbox, tx, Status=status)) == ("applied", 0, None)
    return inbox, ledger.get(payment.id)


@pytest.mark.parametrize(("fields", "what"), [
    ({"Amount": "1.00"}, "amount/currency"),
    ({"Currency": "USD"}, "amount/currency"),
    ({"AccountId": "other@example.com"}, "account"),
    ({"Status": "Authorized"}, "scheme"),
])
def test_a_pay_that_does_not_match_the_payment_is_a_problem_named_by_what_differs(
        ledger: Ledger, fields: dict[str, str], what: str) -> None:
    inbox = Inbox(ledger)
    payment = _payment(ledger)
    applied = _pay(inbox, 110, **fields)
    error = f"Pay: another {what} than payment {payment.id}" + (
        " (Status=Authorized, charge payment)" if what == "scheme" else "")
    assert _what(applied) == ("mismatch", 0, error)
    assert not applied.applied and applied.changes == ()
    amount = Decimal(fields.get("Amount", "1500.00"))
    currency = fields.get("Currency", "RUB")
    status = fields.get("Status", "Completed")
    ((_, problem),) = applied.problems
    assert (problem.kind, problem.gateway_transaction_id, problem.amount, problem.currency,
            problem.detail) == ("mismatch", 110, amount, currency,
                                f"{error} (Pay 110, {amount} {currency}, Status {status})")
    assert ledger.get(payment.id).status == "created"
    assert _notes(ledger, payment.id)[-1] == f"mismatch: {problem.detail}"


def test_a_fail_that_does_not_match_is_only_logged(ledger: Ledger) -> None:
    # A decline moved no money: nothing for the shop to give back.
    inbox = Inbox(ledger)
    payment = _payment(ledger)
    applied = _deliver(inbox, "Fail", {"InvoiceId": "inv-1", "TransactionId": "111",
                                       "Amount": "1.00"})
    assert _what(applied) == (
        "mismatch", 0, f"Fail: another amount/currency than payment {payment.id}")
    assert applied.problems == () and ledger.problems(payment.id) == []
    assert ledger.get(payment.id).status == "created"


def test_a_capture_or_refund_may_be_partial_and_leave_the_account_out(
        ledger: Ledger) -> None:
    inbox, payment = _paid(ledger, "auth")
    assert payment.status == "authorized"
    confirm = _deliver(inbox, "Confirm", {"InvoiceId": "inv-1", "TransactionId": "100",
                                          "Amount": "1000.00", "AccountId": ""})
    assert _what(confirm) == ("applied", 0, None)
    captured = ledger.get(payment.id)
    assert (captured.status, captured.amount) == ("succeeded", Decimal("1000.00"))
    assert _notes(ledger, payment.id)[-1] == "Confirm notification: 1000.00 captured"
    refund = _deliver(inbox, "Refund", {"InvoiceId": "inv-1", "TransactionId": "120",
                                        "PaymentTransactionId": "100", "Amount": "1001.00"})
    assert _what(refund) == (
        "mismatch", 0, f"Refund: another amount/currency than payment {payment.id}")


@pytest.mark.parametrize(("kind", "fields", "note"), [
    ("Pay", {"TrInitiatorCode": "0"},
     "Pay notification 130 of a charge not the payment's own (SubscriptionId -, a token "
     "charge)"),
    ("Pay", {"SubscriptionId": "sc_77"},
     "Pay notification 130 of a charge not the payment's own (SubscriptionId sc_77)"),
    ("Fail", {"SubscriptionId": "sc_77", "TrInitiatorCode": "1"},
     "Fail notification 130 of a charge not the payment's own (SubscriptionId sc_77, a "
     "token charge)"),
])
def test_a_charge_not_the_payments_own_is_recorded_with_a_note(
        ledger: Ledger, kind: str, fields: dict[str, str], note: str) -> None:
    # A subscription's charge (once the payment is paid) or a token charge of the shop
    # names the invoice: money moved, but not for this payment.
    inbox, payment = _paid(ledger)
    applied = _deliver(inbox, kind, {"InvoiceId": "inv-1", "TransactionId": "130",
                                     "Amount": "1.00", **fields})
    assert _what(applied) == ("recorded", 0, None)
    assert applied.applied and applied.problems == () and applied.changes == ()
    assert _notes(ledger, payment.id)[-1] == note
    assert ledger.get(payment.id).status == "succeeded"


def test_a_pay_of_the_transaction_that_settled_the_payment_is_recorded(
        ledger: Ledger) -> None:
    # Our own call's answer settled it first (no key of the Pay in the inbox).
    inbox = Inbox(ledger)
    payment = _payment(ledger)
    ledger.transition(payment.id, "processing")
    ledger.transition(payment.id, "succeeded", gateway_transaction_id=140)
    before = _notes(ledger, payment.id)
    applied = _pay(inbox, 140, Amount="1.00")  # even one the rule would refuse
    assert _what(applied) == ("recorded", 0, None)
    assert applied.problems == () and _notes(ledger, payment.id) == before


# --- Pay ----------------------------------------------------------------------------------


def _attempt(ledger: Ledger, payment_id: str, operation: str, outcome: str = "unknown") -> None:
    """A gateway call of ours (``pending``: in flight; ``unknown``: its answer lost)."""
    with ledger.update(payment_id) as unit:
        attempt = unit.add_attempt(operation)
        if outcome != "pending":
            assert unit.finish_attempt(attempt, outcome)


@pytest.mark.parametrize(("scheme", "status", "settled"), [
    ("charge", "Completed", "succeeded"), ("auth", "Authorized", "authorized")])
def test_a_pay_settles_the_payment_by_its_scheme_and_settles_our_lost_card_calls(
        ledger: Ledger, scheme: str, status: str, settled: str) -> None:
    inbox = Inbox(ledger)
    payment = _payment(ledger, scheme=scheme)
    for operation, outcome in (("charge", "unknown"), ("post3ds", "pending"),
                               ("confirm", "unknown")):
        _attempt(ledger, payment.id, operation, outcome)
    applied = _pay(inbox, 150, Status=status)
    assert _what(applied) == ("applied", 0, None)
    assert [(str(old), str(new)) for _, old, new in applied.changes] == [
        ("created", "processing"), ("processing", settled)]
    assert _notes(ledger, payment.id)[-2:] == [
        "Pay notification: paid at the gateway", "Pay notification 150"]
    paid = ledger.get(payment.id)
    assert (paid.status, paid.gateway_transaction_id, paid.token, paid.test_mode) == (
        settled, 150, "tk_0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d", True)
    # The charge whose answer was lost is settled; a call still in flight, or a lost
    # call of another kind, is not the notification's to settle.
    assert [(a.operation, a.outcome) for a in ledger.attempts(payment.id)] == [
        ("charge", "reconciled"), ("post3ds", "pending"), ("confirm", "unknown")]


def test_a_pay_after_a_decline_clears_the_decline(ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    payment = _payment(ledger)
    declined = _deliver(inbox, "Fail", {"InvoiceId": "inv-1", "TransactionId": "151",
                                        "CardHolderMessage": "Not enough money"})
    assert _what(declined) == ("applied", 0, None)
    failed = ledger.get(payment.id)
    assert (failed.status, failed.reason_code, failed.cardholder_message) == (
        "failed", 5051, "Not enough money")
    applied = _pay(inbox, 152)
    assert [(str(old), str(new)) for _, old, new in applied.changes] == [
        ("failed", "processing"), ("processing", "succeeded")]
    paid = ledger.get(payment.id)
    assert (paid.status, paid.reason_code, paid.cardholder_message,
            paid.gateway_transaction_id) == ("succeeded", None, None, 152)


def test_a_second_pay_is_a_duplicate_for_the_shop_to_refund(ledger: Ledger) -> None:
    inbox, payment = _paid(ledger)
    applied = _pay(inbox, 153)
    assert _what(applied) == (
        "payment_duplicate", 0, f"payment {payment.id}: 153 is a second charge")
    assert applied.applied and applied.changes == ()
    ((_, problem),) = applied.problems
    assert (problem.kind, problem.gateway_transaction_id, problem.amount,
            problem.currency) == ("duplicate", 153, Decimal("1500.00"), "RUB")
    # The detail says where the shop heard of it.
    assert problem.detail == ("Pay notification 153: a second charge 153; the payment was "
                              "paid by 100: refund one")
    assert ledger.get(payment.id).gateway_transaction_id == 100


def test_a_pay_after_the_shop_gave_up_on_the_payment_is_money_to_refund(
        ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    payment = _payment(ledger)
    with ledger.update(payment.id) as unit:
        unit.cancel_unpaid()
    applied = _pay(inbox, 154)
    assert _what(applied) == (
        "applied", 0, f"payment {payment.id} is cancelled; Pay 154 took the money")
    ((_, problem),) = applied.problems
    assert (problem.kind, problem.gateway_transaction_id, problem.detail) == (
        "paid_after_cancel", 154,
        "Pay notification 154: charge 154 succeeded after the payment was cancelled")
    assert applied.changes == () and ledger.get(payment.id).status == "cancelled"


def test_the_late_pay_of_a_hold_voided_since_is_recorded(ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    payment = _payment(ledger, scheme="auth")
    ledger.transition(payment.id, "processing")
    ledger.transition(payment.id, "authorized", gateway_transaction_id=155)
    ledger.transition(payment.id, "cancelled")
    before = _notes(ledger, payment.id)
    applied = _pay(inbox, 155, Status="Authorized")
    assert _what(applied) == ("recorded", 0, None)
    assert (applied.changes, applied.problems) == ((), ())
    assert _notes(ledger, payment.id) == before


# --- Fail ---------------------------------------------------------------------------------


def _fail(inbox: Inbox, tx: int, **fields: str) -> Applied:
    return _deliver(inbox, "Fail", {"InvoiceId": "inv-1", "TransactionId": str(tx), **fields})


@pytest.mark.parametrize(("fields", "reason"), [
    ({}, "5051 InsufficientFunds"), ({"Reason": ""}, "5051")])
def test_a_fail_declines_a_created_payment_with_its_reason(
        ledger: Ledger, fields: dict[str, str], reason: str) -> None:
    inbox = Inbox(ledger)
    payment = _payment(ledger)
    _attempt(ledger, payment.id, "charge")
    applied = _fail(inbox, 160, **fields)
    assert _what(applied) == ("applied", 0, None)
    assert _notes(ledger, payment.id)[-2:] == [
        "Fail notification: declined at the gateway", f"Fail notification 160: {reason}"]
    failed = ledger.get(payment.id)
    assert (failed.status, failed.reason_code, failed.gateway_transaction_id) == (
        "failed", 5051, 160)
    assert [a.outcome for a in ledger.attempts(payment.id)] == ["reconciled"]
    # Declined again: nothing more to say.
    assert _what(_fail(inbox, 161)) == ("recorded", 0, None)


def test_a_fail_never_undoes_a_paid_or_cancelled_payment(ledger: Ledger) -> None:
    inbox, payment = _paid(ledger)
    assert _what(_fail(inbox, 162)) == ("applied", 0, None)
    assert _notes(ledger, payment.id)[-1] == (
        "Fail notification 162 (5051 InsufficientFunds) after the payment")
    assert ledger.get(payment.id).status == "succeeded"
    other = _payment(ledger, "inv-2")
    with ledger.update(other.id) as unit:
        unit.cancel_unpaid()
    assert _what(_deliver(inbox, "Fail", {"InvoiceId": "inv-2", "TransactionId": "163"})) == (
        "applied", 0, None)
    assert _notes(ledger, other.id)[-1] == (
        "Fail notification 163 (5051 InsufficientFunds) after the payment")
    assert ledger.get(other.id).status == "cancelled"


@pytest.mark.parametrize(("operation", "outcome", "open_charge"), [
    ("charge", "pending", True), ("auth", "unknown", True), ("post3ds", "pending", True),
    ("refund", "pending", False), ("charge", "declined", False)])
def test_a_fail_while_our_charge_is_open_answers_for_itself_only(
        ledger: Ledger, operation: str, outcome: str, open_charge: bool) -> None:
    inbox = Inbox(ledger)
    payment = _payment(ledger)
    ledger.transition(payment.id, "processing")
    _attempt(ledger, payment.id, operation, outcome)
    assert _what(_fail(inbox, 164)) == ("applied", 0, None)
    if open_charge:
        assert _notes(ledger, payment.id)[-1] == (
            "Fail notification 164 (5051 InsufficientFunds) while a charge of ours is "
            "open: not taken as its outcome")
        assert ledger.get(payment.id).status == "processing"
    else:
        assert _notes(ledger, payment.id)[-1] == "Fail notification 164: 5051 InsufficientFunds"
        assert ledger.get(payment.id).status == "failed"


@pytest.mark.parametrize(("status", "own", "fail", "earlier"), [
    # Trying again (processing) on the transaction that failed: that one's decline.
    ("processing", 165, 165, True),
    ("processing", 165, 166, False),
    # A 3-D Secure challenge is live on its own transaction: another one's was abandoned.
    ("awaiting_3ds", 165, 166, True),
    ("awaiting_3ds", 165, 165, False),
])
def test_a_fail_of_an_earlier_attempt_is_only_noted(
        ledger: Ledger, status: str, own: int, fail: int, earlier: bool) -> None:
    inbox = Inbox(ledger)
    payment = _payment(ledger)
    ledger.transition(payment.id, "processing", gateway_transaction_id=own)
    if status != "processing":
        ledger.transition(payment.id, status)
    applied = _fail(inbox, fail)
    assert _what(applied) == ("applied", 0, None)
    if earlier:
        assert _notes(ledger, payment.id)[-1] == (
            f"Fail notification {fail} (5051 InsufficientFunds) of an earlier attempt")
        assert ledger.get(payment.id).status == status and applied.changes == ()
    else:
        assert _notes(ledger, payment.id)[-1] == (
            f"Fail notification {fail}: 5051 InsufficientFunds")
        assert [(str(old), str(new)) for _, old, new in applied.changes] == [
            (status, "failed")]


# --- Confirm, Cancel, and what comes before the payment is settled ------------------------


def _on(inbox: Inbox, kind: str, tx: int, **fields: str) -> Applied:
    """A Confirm or Cancel of ``tx`` (its own transaction) on inv-1."""
    return _deliver(inbox, kind, {"InvoiceId": "inv-1", "TransactionId": str(tx), **fields})


def _refund(inbox: Inbox, tx: int, of: int, amount: str) -> Applied:
    return _deliver(inbox, "Refund", {"InvoiceId": "inv-1", "TransactionId": str(tx),
                                      "PaymentTransactionId": str(of), "Amount": amount})


def test_a_confirm_captures_a_held_payment_once(ledger: Ledger) -> None:
    inbox, payment = _paid(ledger, "auth")
    applied = _on(inbox, "Confirm", 100)
    assert _what(applied) == ("applied", 0, None)
    assert [(str(old), str(new)) for _, old, new in applied.changes] == [
        ("authorized", "succeeded")]
    assert _notes(ledger, payment.id)[-1] == "Confirm notification: 1500.00 captured"
    assert _what(_on(inbox, "Confirm", 100)) == ("duplicate", 0, None)
    assert ledger.get(payment.id).status == "succeeded"


@pytest.mark.parametrize("status", ["succeeded", "refunded"])
def test_a_confirm_of_a_payment_already_captured_is_recorded(
        ledger: Ledger, status: str) -> None:
    inbox = Inbox(ledger)
    payment = _payment(ledger, scheme="auth")
    ledger.transition(payment.id, "processing")
    ledger.transition(payment.id, "authorized", gateway_transaction_id=101)
    ledger.transition(payment.id, "succeeded")
    if status == "refunded":
        ledger.transition(payment.id, "refunded")
    before = _notes(ledger, payment.id)
    assert _what(_on(inbox, "Confirm", 101)) == ("recorded", 0, None)
    assert _notes(ledger, payment.id) == before


def test_a_confirm_or_cancel_of_a_final_payment_is_noted_as_an_error(
        ledger: Ledger) -> None:
    inbox, payment = _paid(ledger, "auth")
    assert _what(_on(inbox, "Cancel", 100)) == ("applied", 0, None)
    assert (ledger.get(payment.id).status, _notes(ledger, payment.id)[-1]) == (
        "cancelled", "Cancel notification")
    assert _what(_on(inbox, "Confirm", 100)) == (
        "applied", 0, f"Confirm for payment {payment.id} in status cancelled")
    assert _notes(ledger, payment.id)[-1] == "Confirm notification in status cancelled"
    # A refunded payment is final too (a succeeded one may still be refunded: a Cancel
    # of its transaction then waits, see the deferred ones below).
    other = _payment(ledger, "inv-2")
    _pay(inbox, 201, invoice="inv-2")
    ledger.transition(other.id, "refunded")
    cancel = _deliver(inbox, "Cancel", {"InvoiceId": "inv-2", "TransactionId": "201"})
    assert _what(cancel) == ("applied", 0, f"Cancel for payment {other.id} in status refunded")
    assert _notes(ledger, other.id)[-1] == "Cancel notification in status refunded"
    assert ledger.get(other.id).status == "refunded"


@pytest.mark.parametrize("status", ["authorized", "awaiting_3ds", "unknown"])
def test_a_cancel_voids_a_hold_or_challenge_and_is_recorded_once_cancelled(
        ledger: Ledger, status: str) -> None:
    inbox = Inbox(ledger)
    payment = _payment(ledger, scheme="auth")
    ledger.transition(payment.id, "processing", gateway_transaction_id=102)
    ledger.transition(payment.id, status)
    applied = _on(inbox, "Cancel", 102)
    assert _what(applied) == ("applied", 0, None)
    assert [(str(old), str(new)) for _, old, new in applied.changes] == [
        (status, "cancelled")]
    assert _notes(ledger, payment.id)[-1] == "Cancel notification"
    # A Cancel after our own void recorded it: nothing to add.
    second = _payment(ledger, "inv-2", scheme="auth")
    ledger.transition(second.id, "processing", gateway_transaction_id=103)
    ledger.transition(second.id, "cancelled")
    before = _notes(ledger, second.id)
    again = _deliver(inbox, "Cancel", {"InvoiceId": "inv-2", "TransactionId": "103"})
    assert _what(again) == ("recorded", 0, None) and _notes(ledger, second.id) == before


@pytest.mark.parametrize("kind", ["Confirm", "Cancel"])
def test_a_confirm_or_cancel_of_the_own_transaction_in_flight_is_deferred(
        ledger: Ledger, kind: str) -> None:
    # Our call is on its way (processing): its answer comes first, then this.
    inbox = Inbox(ledger)
    payment = _payment(ledger, scheme="auth")
    ledger.transition(payment.id, "processing", gateway_transaction_id=104)
    applied = _on(inbox, kind, 104)
    assert _what(applied) == (
        "deferred", 13, f"{kind} of transaction 104 while payment {payment.id} is "
                        f"processing; deliver again once it is settled")
    assert not applied.applied and inbox.applied_count((kind, "104", "")) == 0
    assert ledger.get(payment.id).status == "processing"


def test_a_refund_before_the_payment_is_settled_is_deferred(ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    payment = _payment(ledger)
    applied = _refund(inbox, 300, 105, "100.00")
    assert _what(applied) == (
        "deferred", 13, f"Refund of transaction 105 before payment {payment.id} is settled "
                        f"(created); deliver again")
    assert not applied.applied and inbox.applied_count(("Refund", "300", "Refund")) == 0


def test_a_refund_of_a_transaction_provably_not_the_payments_is_a_mismatch(
        ledger: Ledger) -> None:
    inbox, payment = _paid(ledger)
    applied = _refund(inbox, 301, 999, "100.00")
    assert _what(applied) == (
        "mismatch", 0, f"Refund for transaction 999; payment {payment.id} is 100")
    # One the ledger refused (a mismatched Pay): the payment is not settled, but that
    # transaction never will settle it.
    inbox = Inbox(ledger)
    other = _payment(ledger, "inv-2")
    assert _pay(inbox, 302, invoice="inv-2", Amount="1.00").record.outcome == "mismatch"
    refund = _deliver(inbox, "Refund", {"InvoiceId": "inv-2", "TransactionId": "303",
                                        "PaymentTransactionId": "302", "Amount": "1.00"})
    assert _what(refund) == (
        "mismatch", 0, f"Refund for transaction 302; payment {other.id} is None")
    assert ledger.get(other.id).status == "created"
    # Cancelled (the shop gave up on it unpaid): no transaction will settle it any more.
    given_up = _payment(ledger, "inv-3")
    with ledger.update(given_up.id) as unit:
        unit.cancel_unpaid()
    late = _deliver(inbox, "Refund", {"InvoiceId": "inv-3", "TransactionId": "304",
                                      "PaymentTransactionId": "305", "Amount": "1.00"})
    assert _what(late) == (
        "mismatch", 0, f"Refund for transaction 305; payment {given_up.id} is None")


# --- Refund -------------------------------------------------------------------------------


def _sources(ledger: Ledger) -> list[tuple[int, str]]:
    with ledger.engine.connect() as conn:
        return [(int(t), s) for t, s in conn.execute(
            sa.select(refunds.c.transaction_id, refunds.c.source)
            .order_by(refunds.c.transaction_id))]


def test_refunds_are_counted_once_each_until_all_is_refunded(ledger: Ledger) -> None:
    inbox, payment = _paid(ledger)
    first = _refund(inbox, 310, 100, "1000.00")
    assert _what(first) == ("applied", 0, None)
    assert (first.refunded, first.changes) == (Decimal("1000.00"), ())
    assert _notes(ledger, payment.id)[-1] == "Refund notification 310: 1000.00 refunded"
    assert ledger.get(payment.id).refunded_amount == Decimal("1000.00")
    assert _sources(ledger) == [(310, "notification")]
    # More than is left: the error says by how much.
    over = _refund(inbox, 311, 100, "600.00")
    assert _what(over) == (
        "mismatch", 0, "a refund of 600.00 would make 1600.00 refunded of 1500.00")
    assert over.refunded is None
    rest = _refund(inbox, 312, 100, "500.00")
    assert rest.refunded == Decimal("500.00")
    assert [(str(old), str(new)) for _, old, new in rest.changes] == [
        ("succeeded", "refunded")]
    late = _refund(inbox, 313, 100, "1.00")
    assert _what(late) == (
        "applied", 0, f"Refund for payment {payment.id} in status refunded")
    assert late.refunded is None
    assert _notes(ledger, payment.id)[-1] == "Refund notification 313 in status refunded"


def test_a_refund_our_call_counted_is_recorded(ledger: Ledger) -> None:
    inbox, payment = _paid(ledger)
    with ledger.update(payment.id) as unit:
        unit.count_refund(320, Decimal("100.00"), source="call", note="our refund")
    applied = _refund(inbox, 320, 100, "100.00")
    assert _what(applied) == ("recorded", 0, None) and applied.refunded is None
    assert ledger.get(payment.id).refunded_amount == Decimal("100.00")


@pytest.mark.parametrize(("operation", "outcome", "deferred"), [
    ("refund", "pending", True), ("refund", "unknown", True),
    ("refund", "succeeded", False), ("confirm", "pending", False)])
def test_a_refund_while_our_refund_call_is_open_is_deferred(
        ledger: Ledger, operation: str, outcome: str, deferred: bool) -> None:
    # It may be our own call's refund: counted now, the answer would count it again.
    inbox, payment = _paid(ledger)
    _attempt(ledger, payment.id, operation, outcome)
    applied = _refund(inbox, 330, 100, "100.00")
    if deferred:
        assert _what(applied) == (
            "deferred", 13, "a refund call of ours is in flight or unknown; deliver again")
        assert ledger.get(payment.id).refunded_amount == Decimal("0.00")
    else:
        assert _what(applied) == ("applied", 0, None)
        assert ledger.get(payment.id).refunded_amount == Decimal("100.00")


def test_a_confirm_settles_a_capture_whose_answer_was_lost(ledger: Ledger) -> None:
    inbox = Inbox(ledger)
    payment = _payment(ledger, scheme="auth")
    ledger.transition(payment.id, "processing", gateway_transaction_id=106)
    ledger.transition(payment.id, "authorized")
    ledger.transition(payment.id, "unknown")  # our confirm call lost its answer
    applied = _on(inbox, "Confirm", 106, Amount="700.00")
    assert _what(applied) == ("applied", 0, None)
    assert [(str(old), str(new)) for _, old, new in applied.changes] == [
        ("unknown", "succeeded")]
    assert ledger.get(payment.id).amount == Decimal("700.00")
