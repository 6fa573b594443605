"""What refresh and reconcile find at the gateway, and what they leave for the shop to
read: the notes in a payment's history, the problems recorded, the log records. Each
test drives the service against the in-process sandbox and its back office (the
client's own calls, as the merchant's account would make them)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from checkout_kit.client import CloudPaymentsClient
from checkout_kit.errors import PaymentDeclined, UnknownOutcomeError
from checkout_kit.ledger import Ledger, PaymentService, PaymentStatus
from checkout_kit.ledger.schema import refunds as refunds_table
from checkout_kit.ledger.service import _latest_transaction, _unseen_hold_captured
from checkout_kit.ledger.store import PaymentAttempt, Unit
from checkout_kit.models import ThreeDSChallenge, Transaction, TransactionStatus
from checkout_kit.notifications import CheckCode
from checkout_kit.sandbox import Sandbox

from .conftest import Clock, Recorder, charges

Card = Callable[[str], str]
S = PaymentStatus

NO_3DS = "4000 0000 0000 3055"
DECLINED = "4000 0566 5566 5556"  # declined 5051, no 3-D Secure
IP = "203.0.113.7"
CHARGE = "/payments/cards/charge"
AUTH = "/payments/cards/auth"
REFUND = "/payments/refund"
LIST = "/v2/payments/list"
SERVICE_LOG = "checkout_kit.ledger.service"


def _new(service: PaymentService, amount: str = "100.00", scheme: str = "charge",
         invoice: str = "inv-1", **kw: Any) -> str:
    return service.create_payment(
        invoice_id=invoice, amount=amount, currency="RUB",
        description=f"Order {invoice}", scheme=scheme,
                                  **kw).id


def _notes(ledger: Ledger, payment_id: str) -> list[str | None]:
    return [e.note for e in ledger.history(payment_id)]


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == SERVICE_LOG and r.levelno == level]


def _pay_answer_lost(service: PaymentService, card: Card, recorder: Recorder, pid: str,
                     path: str) -> None:
    """Pay ``pid`` by card; the gateway takes the money, its answer (``path``) is lost."""
    recorder.drop_after.add(path)
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "unknown"
    recorder.drop_after.clear()


def _only_tx(sandbox: Sandbox, invoice: str = "inv-1") -> int:
    (tx,) = charges(sandbox, invoice)
    return int(tx.id)


# --- reconcile and claims: what an operator reads in the log ---------------------------------


def test_reconcile_logs_which_payment_it_could_not_refresh_and_why(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pid = _new(service)
    _pay_answer_lost(service, card, recorder, pid, CHARGE)
    cloudpayments_sandbox.faults.add("status", path="/payments/find", times=2, status=500)
    caplog.clear()
    with caplog.at_level(logging.WARNING, SERVICE_LOG):
        assert service.reconcile() == []
    (record,) = [r for r in caplog.records if r.name == SERVICE_LOG]
    (error,) = [a for a in record.args or () if isinstance(a, Exception)]
    assert record.getMessage() == f"reconcile: payment {pid} not refreshed: {error}"
    assert str(error)  # the gateway's error says what went wrong
    # The next run, with the gateway back, settles it from the gateway's record.
    (settled,) = service.reconcile()
    assert (settled.id, settled.status) == (pid, S.SUCCEEDED)


def test_a_claim_the_unique_key_refuses_answers_in_progress_with_the_payment(
    service: PaymentService, card: Card, recorder: Recorder, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pid = _new(service)

    def collide(self: Unit, *args: Any, **kwargs: Any) -> None:
        raise sa.exc.IntegrityError("INSERT", {}, Exception("duplicate (payment_id, number)"))

    monkeypatch.setattr(Unit, "add_attempt", collide)
    with caplog.at_level(logging.WARNING, SERVICE_LOG):
        outcome = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    # The page shows the payment as it stands: the caller polls it like any in_progress.
    assert outcome.kind == "in_progress"
    assert outcome.payment == service.get(pid) and outcome.payment.status is S.CREATED
    assert _messages(caplog, logging.WARNING) == [
        f"payment {pid}: claim refused by the attempts' unique key"]
    assert recorder.paths == []


# --- refunds whose answer was lost ------------------------------------------------------------


def test_a_lost_refund_and_a_back_office_one_that_complete_it_refund_the_payment(
    service: PaymentService, card: Card, recorder: Recorder, client: CloudPaymentsClient,
    ledger: Ledger,
) -> None:
    # 99.50 (ours, answer lost) + 0.50 (the back office): all of it, to the cent. Both
    # are counted from the gateway's list, as lookups, each with a note naming it.
    pid = _new(service)
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    tx_id = service.get(pid).gateway_transaction_id
    assert tx_id is not None
    recorder.drop_after.add(REFUND)
    with pytest.raises(UnknownOutcomeError):
        service.refund(pid, "99.50")
    recorder.drop_after.clear()
    rest = client.refund(tx_id, "0.50")
    settled = service.refresh(pid)
    assert (settled.status, settled.refunded_amount) == (S.REFUNDED, Decimal("100.00"))
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(refunds_table.c.transaction_id, refunds_table.c.amount,
                                      refunds_table.c.source)
                            .order_by(refunds_table.c.amount)).all()
    assert [(amount, source) for _tx, amount, source in rows] == [
        (Decimal("0.50"), "lookup"), (Decimal("99.50"), "lookup")]
    ours = next(tx for tx, amount, _source in rows if amount == Decimal("99.50"))
    assert rows[0][0] == rest.transaction_id
    assert _notes(ledger, pid)[-2:] == [f"reconciled: refund {ours} of 99.50",
                                        f"reconciled: refund {rest.transaction_id} of 0.50"]
    assert [a.outcome for a in ledger.attempts(pid) if a.operation == "refund"] == [
        "reconciled"]


def test_the_refund_lookup_stops_at_the_page_where_the_payment_is_all_refunded(
    service: PaymentService, card: Card, recorder: Recorder, client: CloudPaymentsClient,
) -> None:
    # The list is read page by page; once the refunds add up to the payment no later
    # page can add to them, so none is asked for. Here the payment and its two refunds
    # (ours, answer lost, and the back office's for the rest) are the first three
    # operations of a full first page.
    pid = _new(service)
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    tx_id = service.get(pid).gateway_transaction_id
    assert tx_id is not None
    recorder.drop_after.add(REFUND)
    with pytest.raises(UnknownOutcomeError):
        service.refund(pid, "60.00")
    recorder.drop_after.clear()
    client.refund(tx_id, "40.00")
    other = client.charge("150.00", ip_address=IP, cryptogram=card(NO_3DS),
                          invoice_id="inv-other")
    assert not isinstance(other, ThreeDSChallenge)
    for _ in range(97):  # the rest of page 1, and one on page 2: the back office's refunds
        client.refund(other.transaction_id, "1.00")
    asked = recorder.count(LIST)
    settled = service.refresh(pid)
    assert (settled.status, settled.refunded_amount) == (S.REFUNDED, Decimal("100.00"))
    assert recorder.count(LIST) - asked == 1


def test_a_refund_of_a_transaction_that_cannot_be_placed_in_time_is_not_counted(
    service: PaymentService, card: Card, recorder: Recorder, client: CloudPaymentsClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The list is asked from the payment's transaction on: a transaction without its
    # creation time (the gateway left it out) gives no period to ask, and nothing is
    # guessed: the refund is not counted, nothing is asked, and its outcome stays
    # unknown (it was closed as reconciled, uncounted: a refund lost for good).
    pid = _new(service)
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    recorder.drop_after.add(REFUND)
    with pytest.raises(UnknownOutcomeError):
        service.refund(pid, "30.00")
    recorder.drop_after.clear()
    real_get = client.get_payment

    def get_payment(tx_id: int, **kwargs: Any) -> Transaction:
        found = real_get(tx_id, **kwargs)
        return replace(found, created_at=None)

    monkeypatch.setattr(client, "get_payment", get_payment)
    payment = service.refresh(pid)
    assert (payment.status, payment.refunded_amount) == (S.SUCCEEDED, Decimal(0))
    assert recorder.count(LIST) == 0
    assert [a.outcome for a in service.ledger.attempts(pid) if a.operation == "refund"] == [
        "unknown"]


# --- money on the invoice behind its latest operation -----------------------------------------


def test_a_lost_charge_of_a_payment_with_an_account_is_found_behind_a_later_decline(
    service: PaymentService, card: Card, recorder: Recorder, client: CloudPaymentsClient,
    cloudpayments_sandbox: Sandbox, clock: Clock,
) -> None:
    # Our charge took the money but its answer was lost; then the payer's other tab was
    # declined on the same invoice, which /payments/find answers. The invoice's list
    # shows our charge (same amount, currency and account): the payment succeeded.
    pid = _new(service, account_id="reader-1")
    _pay_answer_lost(service, card, recorder, pid, CHARGE)
    ours = _only_tx(cloudpayments_sandbox)
    with pytest.raises(PaymentDeclined):
        client.charge("100.00", ip_address=IP, cryptogram=card(DECLINED), invoice_id="inv-1",
                      account_id="reader-1")
    clock.advance(service.stale_after)
    settled = service.refresh(pid)
    assert (settled.status, settled.gateway_transaction_id) == (S.SUCCEEDED, ours)
    assert service.ledger.problems(pid) == []


def test_a_lost_hold_captured_in_part_is_never_failed_by_a_later_decline(
    service: PaymentService, card: Card, recorder: Recorder, client: CloudPaymentsClient,
    cloudpayments_sandbox: Sandbox, clock: Clock,
) -> None:
    # Two-stage: our auth held 100.00 (answer lost), the back office captured 60.00 of
    # it, then another tab was declined on the invoice. A capture in part fits the hold,
    # so money was taken: the payment is not failed. With no id to prove the capture
    # ours, it is held to the amount exactly, and recorded for the shop to look at.
    pid = _new(service, scheme="auth")
    _pay_answer_lost(service, card, recorder, pid, AUTH)
    hold = _only_tx(cloudpayments_sandbox)
    client.confirm(hold, "60.00")
    with pytest.raises(PaymentDeclined):
        client.auth("100.00", ip_address=IP, cryptogram=card(DECLINED), invoice_id="inv-1")
    clock.advance(service.stale_after)
    payment = service.refresh(pid)
    assert payment.status is S.UNKNOWN
    assert [(p.kind, p.gateway_transaction_id, p.amount)
            for p in service.ledger.problems(pid)] == [("mismatch", hold, Decimal("60.00"))]


def test_a_charge_another_payment_told_apart_still_counts_for_this_one(
    service: PaymentService, card: Card, recorder: Recorder, ledger: Ledger,
    client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, clock: Clock,
) -> None:
    # The charges told apart from a payment are those its own problems name: another
    # payment's record says nothing about this one's money.
    other = _new(service, invoice="inv-other")
    pid = _new(service)
    _pay_answer_lost(service, card, recorder, pid, CHARGE)
    ours = _only_tx(cloudpayments_sandbox)
    with ledger.update(other) as unit:
        unit.record_problem("mismatch", transaction_id=ours, amount=Decimal("100.00"),
                            currency="RUB", detail="recorded against another payment")
    with pytest.raises(PaymentDeclined):
        client.charge("100.00", ip_address=IP, cryptogram=card(DECLINED), invoice_id="inv-1")
    clock.advance(service.stale_after)
    settled = service.refresh(pid)
    assert (settled.status, settled.gateway_transaction_id) == (S.SUCCEEDED, ours)


# --- what a transaction that does not match leaves behind ---------------------------------


def test_a_charge_of_another_amount_is_recorded_and_logged_with_its_particulars(
    service: PaymentService, card: Card, client: CloudPaymentsClient, ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pid = _new(service, "1490.00")
    widget = client.charge("1.00", ip_address=IP, cryptogram=card(NO_3DS), invoice_id="inv-1")
    assert not isinstance(widget, ThreeDSChallenge)
    tx = widget.transaction_id
    with caplog.at_level(logging.INFO, SERVICE_LOG):
        assert service.refresh(pid).status is S.CREATED
    code = int(CheckCode.INVALID_AMOUNT)
    detail = (f"transaction {tx} (Completed, 1.00 RUB) is not this payment's "
              f"(1490.00 RUB, charge): check code {code}")
    (problem,) = ledger.problems(pid)
    assert (problem.kind, problem.gateway_transaction_id, problem.amount, problem.currency,
            problem.detail) == ("mismatch", tx, Decimal("1.00"), "RUB", detail)
    assert _notes(ledger, pid)[-1] == f"mismatch: {detail}"
    assert _messages(caplog, logging.WARNING) == [
        f"payment {pid}: transaction {tx} does not match it (code {code}); not settled"]


def test_a_decline_of_another_amount_is_only_logged(
    service: PaymentService, card: Card, client: CloudPaymentsClient, ledger: Ledger,
    cloudpayments_sandbox: Sandbox, caplog: pytest.LogCaptureFixture,
) -> None:
    # A decline took nothing: nothing for the shop to refund, so no problem; the log
    # still says which transaction did not match and why.
    pid = _new(service, "1490.00")
    with pytest.raises(PaymentDeclined):
        client.charge("1.00", ip_address=IP, cryptogram=card(DECLINED), invoice_id="inv-1")
    tx = _only_tx(cloudpayments_sandbox)
    with caplog.at_level(logging.INFO, SERVICE_LOG):
        assert service.refresh(pid).status is S.CREATED
    assert ledger.problems(pid) == []
    assert _messages(caplog, logging.INFO) == [
        f"payment {pid}: transaction {tx} (Declined) does not match it "
        f"(code {int(CheckCode.INVALID_AMOUNT)})"]
    assert _messages(caplog, logging.WARNING) == []


# --- notes and columns of a payment settled by a lookup ---------------------------------------


def test_a_widget_payment_found_by_refresh_is_noted_as_paid_without_us(
    service: PaymentService, card: Card, client: CloudPaymentsClient, ledger: Ledger,
) -> None:
    pid = _new(service)
    widget = client.charge("100.00", ip_address=IP, cryptogram=card(NO_3DS),
                           invoice_id="inv-1")
    assert not isinstance(widget, ThreeDSChallenge)
    payment = service.refresh(pid)
    assert (payment.status, payment.gateway_transaction_id) == (
        S.SUCCEEDED, widget.transaction_id)
    assert [(e.new_status, e.note) for e in ledger.history(pid)][1:] == [
        (S.PROCESSING, "paid at the gateway without us"),
        (S.SUCCEEDED, "reconciled: gateway says Completed")]


def test_a_widget_decline_found_by_refresh_fails_the_payment_with_its_reason(
    service: PaymentService, card: Card, client: CloudPaymentsClient, ledger: Ledger,
    cloudpayments_sandbox: Sandbox,
) -> None:
    pid = _new(service)
    with pytest.raises(PaymentDeclined) as declined:
        client.charge("100.00", ip_address=IP, cryptogram=card(DECLINED), invoice_id="inv-1")
    payment = service.refresh(pid)
    assert (payment.status, payment.gateway_transaction_id) == (
        S.FAILED, _only_tx(cloudpayments_sandbox))
    # What the payer is shown comes from the gateway's decline: its code and message.
    assert payment.reason_code == 5051 == declined.value.reason_code
    assert payment.cardholder_message == declined.value.cardholder_message
    assert payment.cardholder_message
    assert _notes(ledger, pid)[-1] == "reconciled: gateway says Declined"


def test_a_lookup_of_our_own_call_that_does_not_match_fails_the_payment_with_a_note(
    service: PaymentService, card: Card, client: CloudPaymentsClient, ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The charge our call made (its id recorded, the payment left unknown) is looked
    # up by that id and reads 1.00: asking again would get the same answer forever. The
    # payment fails as the answer would have failed it, the note says which transaction.
    pid = _new(service)
    answer = client.charge("100.00", ip_address=IP, cryptogram=card(NO_3DS),
                           invoice_id="inv-1")
    assert not isinstance(answer, ThreeDSChallenge)
    tx = answer.transaction_id
    with ledger.update(pid) as unit:
        unit.transition(S.PROCESSING)
        attempt = unit.add_attempt("charge", amount=unit.payment.amount)
        unit.finish_attempt(attempt, "unknown", gateway_transaction_id=tx,
                            error="the answer was lost")
        unit.transition(S.UNKNOWN, note="answer lost")
    real_get = client.get_payment
    monkeypatch.setattr(client, "get_payment", lambda tx_id, **kw: replace(
        real_get(tx_id, **kw), amount=Decimal("1.00")))
    failed = service.refresh(pid)
    assert (failed.status, failed.reason_code) == (S.FAILED, 3003)
    assert _notes(ledger, pid)[-1] == (
        f"reconciled: transaction {tx} (Completed, 1.00 RUB) does not match the payment "
        f"(check code {int(CheckCode.INVALID_AMOUNT)}): not paid by it")


def test_a_token_charge_on_the_invoice_is_ignored_with_a_log_record(
    service: PaymentService, card: Card, client: CloudPaymentsClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A charge that only names the invoice (the shop's token charge) is not the
    # payment's: the lookup ignores it, and says so, naming both.
    pid = _new(service, account_id="reader-1")
    saved = client.charge("1.00", ip_address=IP, cryptogram=card(NO_3DS),
                          account_id="reader-1", save_card=True)
    assert not isinstance(saved, ThreeDSChallenge) and saved.token
    token_charge = client.charge_token("100.00", account_id="reader-1", token=saved.token,
                                       tr_initiator_code=0, invoice_id="inv-1")
    with caplog.at_level(logging.INFO, SERVICE_LOG):
        assert service.refresh(pid).status is S.CREATED
    assert _messages(caplog, logging.INFO) == [
        f"payment {pid}: transaction {token_charge.transaction_id} on its invoice is not its "
        "own; ignored"]


# --- which transaction a lookup asks about (_latest_transaction) -----------------------------

#: (payment status, payment's transaction, attempts as (operation, outcome, transaction))
#: -> (the transaction to look up by id, None: by invoice; the transactions known from
#: before the latest card attempt, which a lookup by invoice does not take for it)
LATEST = [
    pytest.param("created", None, [], None, set(), id="never-paid"),
    # A widget's decline found by a lookup (no attempt of ours) is still the payment's
    # old transaction: a lookup by invoice that finds it again learns nothing new.
    pytest.param("failed", 10, [], None, {10}, id="failed-by-the-widget"),
    pytest.param("failed", 11, [("charge", "declined", 10), ("charge", "declined", 11)],
                 None, {10, 11}, id="failed-twice"),
    # Settled: the payment's own transaction is the latest word, whatever came after.
    pytest.param("succeeded", 10, [("charge", "succeeded", 10), ("refund", "unknown", 20)],
                 10, set(), id="a-refund-is-no-card-attempt"),
    pytest.param("unknown", 10, [("charge", "succeeded", 10), ("confirm", "unknown", None)],
                 10, set(), id="no-open-card-attempt"),
    pytest.param("unknown", 11, [("charge", "declined", 10), ("auth", "three_ds", 11),
                                 ("post3ds", "unknown", None)],
                 11, set(), id="the-challenge-is-answered"),
    # The latest charge is open: only what it (and a post3ds after it) recorded is its.
    pytest.param("unknown", None, [("charge", "unknown", None)], None, set(),
                 id="a-lost-first-charge"),
    pytest.param("unknown", 10, [("charge", "declined", 10), ("charge", "unknown", None)],
                 None, {10}, id="a-lost-retry"),
    pytest.param("unknown", 11, [("charge", "declined", 10), ("charge", "declined", 11),
                                 ("charge", "unknown", 12), ("post3ds", "unknown", 13),
                                 ("post3ds", "pending", 14)],
                 14, {10, 11}, id="the-open-charges-latest-transaction"),
]


@pytest.mark.parametrize(("status", "own", "calls", "by_id", "known"), LATEST)
def test_a_lookup_asks_about_the_latest_card_attempts_transaction(
    service: PaymentService, clock: Clock, status: str, own: int | None,
    calls: list[tuple[str, str, int | None]], by_id: int | None, known: set[int],
) -> None:
    payment = replace(service.get(_new(service)), status=S(status),
                      gateway_transaction_id=own)
    attempts = [
        PaymentAttempt(id=n, payment_id=payment.id, number=n, operation=operation,
                       request_id=f"req-{n}", amount=payment.amount, outcome=outcome,
                       gateway_transaction_id=tx, reason_code=None, error=None,
                       created_at=clock.now, finished_at=None)
        for n, (operation, outcome, tx) in enumerate(calls, start=1)]
    assert _latest_transaction(payment, attempts) == (by_id, frozenset(known))


# --- a hold the ledger never saw, captured in the back office (_unseen_hold_captured) --------

_PATHS = {"created": [], "unknown": [S.PROCESSING, S.UNKNOWN],
          "authorized": [S.PROCESSING, S.AUTHORIZED], "cancelled": [S.CANCELLED]}
_AGO = {"now": timedelta(0), "margin": -timedelta(minutes=5),
        "before-margin": -timedelta(minutes=5, seconds=1)}

#: (scheme, status, attempts, the capture's status, its time relative to the latest
#: card attempt ("none": not given), whether an attempt knew its id) -> may it be the
#: capture of the payment's own hold?
UNSEEN = [
    pytest.param("auth", "unknown", [("auth", "unknown", None)], "Completed", "now", False,
                 True, id="our-lost-auth"),
    pytest.param("auth", "created", [], "Completed", "none", False, True,
                 id="the-widgets-hold-no-attempt"),
    pytest.param("auth", "unknown", [("auth", "unknown", None)], "Completed", "margin", False,
                 True, id="clock-margin"),
    pytest.param("auth", "unknown", [("auth", "unknown", None)], "Completed", "none", False,
                 True, id="time-not-given"),
    pytest.param("charge", "unknown", [("charge", "unknown", None)], "Completed", "now", False,
                 False, id="one-stage"),
    pytest.param("auth", "authorized", [("auth", "authorized", 10)], "Completed", "now",
                 False, False, id="already-held"),
    pytest.param("auth", "cancelled", [], "Completed", "now", False, False, id="cancelled"),
    pytest.param("auth", "unknown", [("auth", "unknown", None)], "Authorized", "now", False,
                 False, id="only-held"),
    pytest.param("auth", "unknown", [("auth", "unknown", None)], "Completed", "now", True,
                 False, id="an-attempt-knew-it"),
    pytest.param("auth", "unknown", [("auth", "unknown", 12)], "Completed", "now", False,
                 False, id="our-auth-named-another"),
    pytest.param("auth", "failed", [("auth", "declined", 10)], "Completed", "before-margin",
                 False, True, id="no-open-card-attempt"),
    # Only the latest card attempt counts: the earlier ones are closed.
    pytest.param("auth", "unknown", [("auth", "declined", 10), ("auth", "declined", 11),
                                     ("auth", "unknown", None)],
                 "Completed", "now", False, True, id="after-two-declines"),
    pytest.param("auth", "unknown", [("auth", "declined", 10), ("auth", "declined", 11),
                                     ("auth", "unknown", 12)],
                 "Completed", "now", False, False, id="after-two-declines-named"),
]


@pytest.mark.parametrize(("scheme", "status", "calls", "tx_status", "when", "known", "may"),
                         UNSEEN)
def test_a_capture_found_by_invoice_may_be_of_a_hold_the_ledger_never_saw(
    service: PaymentService, card: Card, client: CloudPaymentsClient, ledger: Ledger,
    clock: Clock, scheme: str, status: str, calls: list[tuple[str, str, int | None]],
    tx_status: str, when: str, known: bool, may: bool,
) -> None:
    pid = _new(service, scheme=scheme)
    found = client.charge("100.00", ip_address=IP, cryptogram=card(NO_3DS), invoice_id="inv-1")
    assert not isinstance(found, ThreeDSChallenge)
    with ledger.update(pid) as unit:
        if status == "failed":
            unit.transition(S.PROCESSING)
        for operation, outcome, tx in calls:
            attempt = unit.add_attempt(operation, amount=unit.payment.amount)
            if known and operation == "auth":
                tx = found.transaction_id
            unit.finish_attempt(attempt, outcome, gateway_transaction_id=tx)
        for step in _PATHS.get(status, [S.FAILED]):
            unit.transition(step, **({"gateway_transaction_id": 10}
                                     if step is S.AUTHORIZED else {}))
    latest = clock.now
    clock.advance(timedelta(minutes=1))  # the lookup comes later
    tx = replace(found, status=TransactionStatus(tx_status),
                 created_at=None if when == "none" else latest + _AGO[when])
    with ledger.update(pid) as unit:
        assert _unseen_hold_captured(unit, tx) is may


def test_refresh_leaves_alone_a_payment_whose_attempts_changed_while_it_asked(
    service: PaymentService, card: Card, client: CloudPaymentsClient, ledger: Ledger,
    recorder: Recorder,
) -> None:
    # The back office captured the hold; while a refresh asks the gateway about it, a
    # worker claims the payment for our own confirm (a pending attempt: the payment's
    # row is not written). That worker's answer settles it; the refresh, whose look was
    # taken before the claim, changes nothing.
    pid = _new(service, scheme="auth")
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "authorized"
    hold = service.get(pid).gateway_transaction_id
    assert hold is not None
    client.confirm(hold, "100.00")

    def meanwhile() -> None:
        with ledger.update(pid) as unit:
            unit.add_attempt("confirm", amount=unit.payment.amount)

    recorder.before["/payments/get"] = meanwhile
    refreshed = service.refresh(pid)
    assert recorder.count("/payments/get") == 1  # it did ask
    assert refreshed.status is S.AUTHORIZED and refreshed == service.get(pid)
    assert [(a.operation, a.outcome) for a in ledger.attempts(pid)] == [
        ("auth", "authorized"), ("confirm", "pending")]


def test_a_decline_without_a_reason_code_fails_the_payment_without_one(
    service: PaymentService, card: Card, client: CloudPaymentsClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No code is made up: the payer's page then shows the generic decline.
    pid = _new(service)
    with pytest.raises(PaymentDeclined):
        client.charge("100.00", ip_address=IP, cryptogram=card(DECLINED), invoice_id="inv-1")
    real_find = client.find_payment
    monkeypatch.setattr(client, "find_payment", lambda invoice_id, **kw: replace(
        real_find(invoice_id, **kw), reason_code=None))
    payment = service.refresh(pid)
    assert (payment.status, payment.reason_code) == (S.FAILED, None)
