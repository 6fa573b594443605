"""What PaymentService records when a gateway answer comes late, comes in an odd shape,
or does not come at all (issue 14 §4): statuses, history notes, attempts, problems and
the warnings an operator reads, on SQLite and PostgreSQL.

The "takeover" scenarios make the lookup run while our own call is on its way (the
Recorder's ``before``/``meanwhile`` hooks), as reconcile does when it takes a live
worker's call for a dead one's."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import pytest

from checkout_kit.client import CloudPaymentsClient
from checkout_kit.errors import (
    APIConnectionError,
    GatewayError,
    InvalidRequestError,
    InvalidTransitionError,
    PaymentConflictError,
    PaymentDeclined,
    RequestRejectedError,
    ThreeDSError,
    UnknownOutcomeError,
)
from checkout_kit.ledger import Ledger, PaymentService, PaymentStatus
from checkout_kit.ledger.inbox import Inbox
from checkout_kit.ledger.store import Payment
from checkout_kit.models import Transaction, TransactionStatus
from checkout_kit.sandbox import Sandbox

from .conftest import Clock, Recorder, charges
from .test_money_truth import _deliver

Card = Callable[[str], str]
S = PaymentStatus

NO_3DS = "4000 0000 0000 3055"
WITH_3DS = "4242 4242 4242 4242"
NSF = "4000 0566 5566 5556"  # declined 5051 (insufficient funds), no 3-D Secure
IP = "203.0.113.7"
CHARGE = "/payments/cards/charge"
AUTH = "/payments/cards/auth"
SERVICE_LOG = "checkout_kit.ledger.service"


def _new(service: PaymentService, scheme: str = "charge") -> str:
    return service.create_payment(
        invoice_id="inv-1", amount="100.00", currency="RUB",
        description="Order inv-1", scheme=scheme).id


def _notes(service: PaymentService, payment_id: str) -> list[tuple[str, str | None]]:
    return [(e.new_status.value, e.note) for e in service.ledger.history(payment_id)]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == SERVICE_LOG and r.levelno == logging.WARNING]


def _take_over(service: PaymentService, clock: Clock) -> None:
    """Reconcile as if our call's worker had died: its claim is ``stale_after`` old."""
    clock.advance(service.stale_after)
    service.reconcile()


def _widget_charge(client: CloudPaymentsClient, card: Card, number: str) -> None:
    """The payer pays the invoice from the browser (checkout.js): the gateway has it."""
    with contextlib.suppress(PaymentDeclined):
        client.charge("100.00", ip_address=IP, cryptogram=card(number), invoice_id="inv-1")


# --- challenge_refused ----------------------------------------------------------------


def test_a_refused_bank_page_fails_only_the_live_challenge_and_clears_the_old_decline(
    service: PaymentService, card: Card, client: CloudPaymentsClient,
) -> None:
    pid = _new(service)
    assert service.pay(pid, cryptogram=card(NSF), ip_address=IP).kind == "declined"
    # The payer tries again through the widget with a 3-D Secure card; the lookup finds
    # the challenge and keeps the earlier decline's columns (nothing cleared them).
    _widget_charge(client, card, WITH_3DS)
    waiting = service.refresh(pid)
    assert waiting.status is S.AWAITING_3DS and waiting.reason_code == 5051
    live = waiting.gateway_transaction_id
    assert live is not None
    # Another (abandoned) challenge's page says nothing about the live one.
    assert service.challenge_refused(pid, live + 1) == waiting
    failed = service.challenge_refused(pid, live)
    assert failed.status is S.FAILED
    # The payer is not shown the old decline's reason for a page that was refused.
    assert (failed.reason_code, failed.cardholder_message) == (None, None)
    assert _notes(service, pid)[-1] == (
        "failed", "3-D Secure: the gateway's bank page URL was refused")


# --- cancel ---------------------------------------------------------------------------


@pytest.mark.parametrize(("number", "status"), [(NO_3DS, "succeeded"), (WITH_3DS, "awaiting_3ds")])
def test_cancelling_a_paid_or_busy_payment_names_both_statuses(
    service: PaymentService, card: Card, number: str, status: str,
) -> None:
    pid = _new(service)
    service.pay(pid, cryptogram=card(number), ip_address=IP)
    with pytest.raises(InvalidTransitionError) as info:
        service.cancel(pid)
    assert (info.value.old, info.value.new) == (status, "cancelled")
    assert str(info.value) == f"a payment cannot go from {status} to cancelled"
    assert service.get(pid).status == status


# --- confirm / void / refund refused by the gateway -------------------------------------


def _hold(service: PaymentService, card: Card) -> str:
    pid = _new(service, scheme="auth")
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "authorized"
    return pid


def _paid(service: PaymentService, card: Card) -> str:
    pid = _new(service)
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "succeeded"
    return pid


@pytest.mark.parametrize(("operation", "make", "call"), [
    ("confirm", _hold, lambda s, pid: s.confirm(pid)),
    ("void", _hold, lambda s, pid: s.void(pid)),
    ("refund", _paid, lambda s, pid: s.refund(pid, "10.00")),
])
@pytest.mark.parametrize(("error", "outcome"), [
    (RequestRejectedError("Transaction not found", endpoint="x"), "rejected"),
    (APIConnectionError("connection refused"), "error"),
])
def test_a_refused_operation_after_payment_is_recorded_and_changes_nothing(
    service: PaymentService, card: Card, monkeypatch: pytest.MonkeyPatch,
    operation: str, make: Callable[[PaymentService, Card], str],
    call: Callable[[PaymentService, str], Any], error: GatewayError, outcome: str,
) -> None:
    pid = make(service, card)
    before = service.get(pid)
    history = service.ledger.history(pid)

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise error

    # Refused before anything was processed: known not to have happened.
    monkeypatch.setattr(service.client, operation, refuse)
    with pytest.raises(GatewayError) as info:
        call(service, pid)
    assert info.value is error
    last = service.ledger.attempts(pid)[-1]
    assert (last.operation, last.outcome, last.error) == (operation, outcome, error.message)
    # Not unknown: the payment keeps its status, and the next operation may start.
    assert service.get(pid).status is before.status
    assert service.ledger.history(pid) == history



@pytest.mark.parametrize(("error", "outcome", "stored"), [
    # Refused: known not to have happened.
    (RequestRejectedError("r" * 2500), "rejected", "r" * 2000),
    # Anything unforeseen: it may have happened, so the refund is unknown.
    (RuntimeError("u" * 2500), "unknown", "u" * 2000),
    (RuntimeError(), "unknown", "RuntimeError()"),  # no words of its own: its repr
])
def test_a_failed_refunds_error_is_kept_bounded_and_never_empty(
    service: PaymentService, card: Card, monkeypatch: pytest.MonkeyPatch,
    error: Exception, outcome: str, stored: str,
) -> None:
    pid = _paid(service, card)

    def refund(*_args: Any, **_kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(service.client, "refund", refund)
    with pytest.raises(type(error)) as info:
        service.refund(pid, "10.00")
    assert info.value is error
    last = service.ledger.attempts(pid)[-1]
    assert (last.operation, last.outcome, last.error) == ("refund", outcome, stored)
    assert service.get(pid).status is S.SUCCEEDED  # a refund never changes it unanswered


@pytest.mark.parametrize("operation", ["confirm", "void"])
def test_a_lost_answer_to_a_confirm_or_void_makes_the_hold_unknown_with_a_note(
    service: PaymentService, card: Card, recorder: Recorder, operation: str,
) -> None:
    pid = _hold(service, card)
    recorder.drop_after.add(f"/payments/{operation}")
    with pytest.raises(UnknownOutcomeError) as info:
        getattr(service, operation)(pid)
    assert _notes(service, pid)[-1] == ("unknown", f"{operation}: outcome unknown")
    last = service.ledger.attempts(pid)[-1]
    assert (last.operation, last.outcome, last.error) == (operation, "unknown", str(info.value))


def test_a_confirm_taken_over_as_dead_and_then_lost_is_open_again_on_a_paid_payment(
    service: PaymentService, card: Card, recorder: Recorder, clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pid = _hold(service, card)
    # The capture is made; while its answer travels a lookup settles the payment by it
    # (the confirm "reconciled"); then the answer is lost.
    recorder.meanwhile["/payments/confirm"] = lambda: _take_over(service, clock)
    recorder.drop_after.add("/payments/confirm")
    caplog.set_level(logging.WARNING, SERVICE_LOG)
    with pytest.raises(UnknownOutcomeError) as info:
        service.confirm(pid)
    # Paid stays paid (nothing goes back from succeeded to unknown)...
    assert service.get(pid).status is S.SUCCEEDED
    assert _notes(service, pid)[-1] == ("succeeded", "reconciled: gateway says Completed")
    # ...but the confirm is open again: the gateway may have acted after the lookup.
    confirm = service.ledger.attempts(pid)[-1]
    assert (confirm.operation, confirm.outcome, confirm.error) == (
        "confirm", "unknown", str(info.value))
    assert (f"payment {pid}: the confirm taken over as dead ended without an answer "
            f"(request id {confirm.request_id}): unknown again") in _warnings(caplog)


# --- an accepted answer in a status an accepted payment cannot have --------------------


@pytest.mark.parametrize("taken_over", [False, True])
def test_an_answer_in_an_odd_status_leaves_the_payment_unknown_on_its_transaction(
    service: PaymentService, card: Card, client: CloudPaymentsClient, recorder: Recorder,
    clock: Clock, monkeypatch: pytest.MonkeyPatch, taken_over: bool,
) -> None:
    pid = _new(service)
    answered: list[Transaction] = []
    real_charge = client.charge

    def charge(*args: Any, **kwargs: Any) -> Any:
        # Accepted, but "Cancelled": not guessed at, left for a lookup to settle.
        done = real_charge(*args, **kwargs)
        assert isinstance(done, Transaction)  # NO_3DS: no challenge
        answer = replace(done, status=TransactionStatus.CANCELLED)
        answered.append(answer)
        return answer

    monkeypatch.setattr(client, "charge", charge)
    if taken_over:
        # Before our charge reaches the gateway, a lookup finds nothing there and fails
        # the payment; the answer that then comes withdraws that guess.
        recorder.before[CHARGE] = lambda: _take_over(service, clock)
    outcome = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    (answer,) = answered
    assert outcome.kind == "unknown"
    payment = service.get(pid)
    assert payment.status is S.UNKNOWN
    # The transaction is kept, so that the lookup asks about it by its id.
    assert payment.gateway_transaction_id == answer.transaction_id
    expected = "gateway: Cancelled after a takeover" if taken_over else "gateway: Cancelled"
    assert _notes(service, pid)[-1] == ("unknown", expected)
    (attempt,) = service.ledger.attempts(pid)
    assert (attempt.outcome, attempt.error) == ("unknown", "accepted in status Cancelled")
    if not taken_over:
        # A reconciled attempt is only reopened; an open one is finished with the id.
        assert attempt.gateway_transaction_id == answer.transaction_id


# --- no answer after a takeover --------------------------------------------------------


def test_a_lost_answer_after_a_takeover_withdraws_the_failure_and_its_decline(
    service: PaymentService, card: Card, client: CloudPaymentsClient, recorder: Recorder,
    clock: Clock, caplog: pytest.LogCaptureFixture,
) -> None:
    pid = _new(service)

    def meanwhile() -> None:
        # A widget decline on the invoice, then a lookup that takes our call for a dead
        # worker's: the payment is failed by the decline. Our call is then sent and its
        # answer lost.
        _widget_charge(client, card, NSF)
        _take_over(service, clock)
        assert service.get(pid).reason_code == 5051
        recorder.fail_before.add(CHARGE)

    recorder.before[CHARGE] = meanwhile
    caplog.set_level(logging.WARNING, SERVICE_LOG)
    outcome = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert outcome.kind == "unknown"
    payment = service.get(pid)
    assert payment.status is S.UNKNOWN
    # Not declined: the payer must not be told so while the gateway may have charged.
    assert (payment.reason_code, payment.cardholder_message) == (None, None)
    assert _notes(service, pid)[-2:] == [
        ("failed", "reconciled: gateway says Declined"),
        ("unknown", "outcome unknown after a takeover")]
    (attempt,) = service.ledger.attempts(pid)
    assert attempt.outcome == "unknown"
    # The client's words for the lost answer, naming the request id to repeat it with.
    assert attempt.error is not None
    assert attempt.error.startswith(f"POST {CHARGE}: no definite answer")
    assert attempt.request_id in attempt.error
    assert (f"payment {pid}: the charge taken over as dead ended without an answer "
            f"(request id {attempt.request_id}): unknown again") in _warnings(caplog)


def test_a_lost_answer_after_the_lookup_found_the_charge_keeps_the_payment_paid(
    service: PaymentService, card: Card, recorder: Recorder, clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pid = _new(service)
    # Our charge took the money, and a lookup settled the payment by it while the answer
    # was on its way; then the answer was lost.
    recorder.meanwhile[CHARGE] = lambda: _take_over(service, clock)
    recorder.drop_after.add(CHARGE)
    caplog.set_level(logging.WARNING, SERVICE_LOG)
    outcome = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert outcome.kind == "succeeded"
    assert service.get(pid).status is S.SUCCEEDED
    assert [a.outcome for a in service.ledger.attempts(pid)] == ["reconciled"]
    assert (f"payment {pid}: charge without an answer after it was settled as succeeded; "
            "kept") in _warnings(caplog)


# --- a success after the payment was settled -------------------------------------------


def test_a_second_charge_answered_after_the_widget_paid_is_a_duplicate_to_refund(
    service: PaymentService, card: Card, client: CloudPaymentsClient, recorder: Recorder,
    clock: Clock, cloudpayments_sandbox: Sandbox,
) -> None:
    pid = _new(service)

    def meanwhile() -> None:
        # The widget's charge reaches the gateway first and a lookup settles by it.
        _widget_charge(client, card, NO_3DS)
        _take_over(service, clock)

    recorder.before[CHARGE] = meanwhile
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "succeeded"
    widget, ours = (tx.id for tx in charges(cloudpayments_sandbox, "inv-1"))
    payment = service.get(pid)
    assert payment.gateway_transaction_id == widget
    (problem,) = service.ledger.problems(pid)
    assert (problem.kind, problem.gateway_transaction_id, problem.amount, problem.currency) == (
        "duplicate", ours, payment.amount, "RUB")
    assert problem.detail == (f"gateway: Completed: a second charge {ours}; the payment was "
                              f"paid by {widget}: refund one")


def test_a_success_answered_after_a_lookup_failed_the_payment_counts(
    service: PaymentService, card: Card, client: CloudPaymentsClient, recorder: Recorder,
    clock: Clock, caplog: pytest.LogCaptureFixture, cloudpayments_sandbox: Sandbox,
) -> None:
    pid = _new(service)

    def meanwhile() -> None:
        # A widget decline, then a lookup that fails the payment by it before our
        # charge has reached the gateway.
        _widget_charge(client, card, NSF)
        _take_over(service, clock)
        assert service.get(pid).status is S.FAILED

    recorder.before[CHARGE] = meanwhile
    caplog.set_level(logging.WARNING, SERVICE_LOG)
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "succeeded"
    (ours,) = [tx.id for tx in charges(cloudpayments_sandbox, "inv-1")
               if str(tx.status) == "Completed"]
    payment = service.get(pid)
    assert (payment.status, payment.gateway_transaction_id) == (S.SUCCEEDED, ours)
    assert (payment.reason_code, payment.cardholder_message) == (None, None)
    assert _notes(service, pid)[-3:] == [
        ("failed", "reconciled: gateway says Declined"),
        ("processing", "a late answer: the charge went through"),
        ("succeeded", "gateway: Completed (late answer)")]
    assert (f"payment {pid}: a success after it was settled as failed: the success counts"
            in _warnings(caplog))
    assert service.ledger.problems(pid) == []


def test_the_answer_of_a_hold_voided_meanwhile_changes_nothing(
    service: PaymentService, card: Card, client: CloudPaymentsClient, recorder: Recorder,
    clock: Clock, cloudpayments_sandbox: Sandbox,
) -> None:
    pid = _new(service, scheme="auth")
    seen: list[Payment] = []

    def meanwhile() -> None:
        # Our hold is made, then voided in the back office, and a lookup cancels the
        # payment by it, all before our call's answer arrives.
        (hold,) = charges(cloudpayments_sandbox, "inv-1")
        client.void(hold.id)
        _take_over(service, clock)
        seen.append(service.get(pid))

    recorder.meanwhile[AUTH] = meanwhile
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "cancelled"
    (cancelled,) = seen
    assert cancelled.status is S.CANCELLED
    # Not written again, let alone moved back to authorized: the void stands.
    assert service.get(pid) == cancelled
    assert service.ledger.problems(pid) == []


# --- arguments and messages (ahead of the mutation run, which had not reached these) -----


class _FakeClient:
    """A client of one's own: only what PaymentService reads when it is built."""

    def __init__(self, worst: object) -> None:
        self.worst_case_seconds = worst


class _Bare:
    """A client of one's own without a word about how long a call may take."""


@pytest.mark.parametrize("client", [_FakeClient(True), _FakeClient("300"), _FakeClient(None),
                                    _Bare()])
def test_a_client_that_does_not_say_its_worst_case_is_refused_by_type_name(
    ledger: Ledger, client: object,
) -> None:
    with pytest.raises(TypeError) as info:
        PaymentService(ledger, cast(Any, client))
    assert str(info.value) == (
        f"the client ({type(client).__name__}) must have a worst_case_seconds attribute: the "
        "longest one call may take, in seconds (see CloudPaymentsClient.worst_case_seconds)")


@pytest.mark.parametrize(("worst", "stale_after", "message"), [
    (300, timedelta(0), "stale_after must be positive"),
    (300, timedelta(minutes=5), "stale_after (0:05:00) must exceed the client's worst-case "
     "call (0:05:00: the limit of an attempt x (retries + 1) plus the waits before retries)"),
    (math.inf, timedelta(days=1), "stale_after (1 day, 0:00:00) must exceed the client's "
     "worst-case call (unlimited: the limit of an attempt x (retries + 1) plus the waits "
     "before retries)"),
])
def test_a_stale_after_that_a_live_call_could_outlast_is_refused(
    ledger: Ledger, worst: float, stale_after: timedelta, message: str,
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        PaymentService(ledger, cast(Any, _FakeClient(worst)), stale_after=stale_after)
    assert (str(info.value), info.value.field) == (message, "stale_after")
    # Just above the worst case is enough.
    if math.isfinite(worst) and stale_after:
        assert PaymentService(ledger, cast(Any, _FakeClient(worst)),
                              stale_after=stale_after + timedelta(seconds=1))


@pytest.mark.parametrize(("field", "kwargs"), [
    ("cryptogram", {"cryptogram": "  "}),
    ("ip_address", {"ip_address": 7}),
    ("name", {"name": ""}),
    ("email", {"email": " "}),
])
def test_pay_names_the_argument_that_is_not_text_and_records_nothing(
    service: PaymentService, card: Card, recorder: Recorder, field: str,
    kwargs: dict[str, Any],
) -> None:
    pid = _new(service)
    args: dict[str, Any] = {"cryptogram": card(NO_3DS), "ip_address": IP, **kwargs}
    with pytest.raises(InvalidRequestError) as info:
        service.pay(pid, **args)
    assert (str(info.value), info.value.field) == (f"{field} must be a non-empty string", field)
    assert service.get(pid).status is S.CREATED and recorder.paths == []


@pytest.mark.parametrize("md", ["", "  ", True, None])
def test_complete_3ds_needs_an_md_and_a_pa_res(
    service: PaymentService, recorder: Recorder, md: Any,
) -> None:
    pid = _new(service)
    with pytest.raises(ThreeDSError) as info:
        service.complete_3ds(pid, md=md, pa_res="pares")
    assert (info.value.code, str(info.value)) == ("bad_md", "MD is required")
    with pytest.raises(InvalidRequestError) as refused:
        service.complete_3ds(pid, md="1", pa_res=" ")
    assert (str(refused.value), refused.value.field) == (
        "pa_res must be a non-empty string", "pa_res")
    assert recorder.paths == []


@pytest.mark.parametrize(("scheme", "number", "expected"), [
    ("charge", WITH_3DS, [("processing", "charge sent"), ("awaiting_3ds", "3-D Secure asked"),
                          ("processing", "post3ds sent"), ("succeeded", "gateway: Completed")]),
    ("auth", NO_3DS, [("processing", "auth sent"), ("authorized", "gateway: Authorized")]),
])
def test_the_history_says_what_was_sent_and_answered(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, scheme: str,
    number: str, expected: list[tuple[str, str]],
) -> None:
    pid = _new(service, scheme=scheme)
    outcome = service.pay(pid, cryptogram=card(number), ip_address=IP)
    if outcome.challenge is not None:
        tx_id = outcome.challenge.transaction_id
        service.complete_3ds(pid, md=tx_id, pa_res=cloudpayments_sandbox.pa_res_for(tx_id))
    assert _notes(service, pid)[1:] == expected


@pytest.mark.parametrize(("error", "outcome"), [
    (RequestRejectedError("Invalid cryptogram"), "rejected"),
    (APIConnectionError("connection refused"), "error"),
])
def test_a_charge_refused_before_processing_fails_the_payment_with_its_reason(
    service: PaymentService, card: Card, monkeypatch: pytest.MonkeyPatch,
    error: GatewayError, outcome: str,
) -> None:
    pid = _new(service)

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(service.client, "charge", refuse)
    with pytest.raises(GatewayError) as info:
        service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert info.value is error
    assert _notes(service, pid)[-1] == ("failed", f"{outcome}: {error.message}")
    (attempt,) = service.ledger.attempts(pid)
    assert (attempt.outcome, attempt.error) == (outcome, error.message)


def test_a_lost_charge_answer_is_logged_with_its_request_id(
    service: PaymentService, card: Card, recorder: Recorder, caplog: pytest.LogCaptureFixture,
) -> None:
    pid = _new(service)
    recorder.drop_after.add(CHARGE)
    caplog.set_level(logging.WARNING, SERVICE_LOG)
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "unknown"
    (attempt,) = service.ledger.attempts(pid)
    # The request id is what an operator repeats the call with, or asks the gateway by.
    assert _warnings(caplog) == [
        f"payment {pid}: outcome unknown (request id {attempt.request_id})"]
    assert _notes(service, pid)[-1] == ("unknown", "outcome unknown")


# --- complete_3ds, confirm/void answers, refunds that do not fit (mutation survivors) ----

POST3DS = "/payments/cards/post3ds"
CONFIRM = "/payments/confirm"
VOID = "/payments/void"


def _challenged(service: PaymentService, card: Card) -> tuple[str, str]:
    pid = _new(service)
    outcome = service.pay(pid, cryptogram=card(WITH_3DS), ip_address=IP)
    assert outcome.challenge is not None
    return pid, outcome.challenge.md


def test_a_bank_post_for_another_transaction_is_refused_saying_why(
    service: PaymentService, card: Card,
) -> None:
    pid, _md = _challenged(service, card)
    with pytest.raises(ThreeDSError) as info:
        service.complete_3ds(pid, md="999", pa_res="pares")
    assert (info.value.code, str(info.value)) == (
        "wrong_transaction", "MD does not match the payment's transaction")


def test_a_bank_post_for_a_cancelled_challenge_is_refused_naming_both_statuses(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder,
) -> None:
    pid, md = _challenged(service, card)
    with service.ledger.update(pid) as unit:
        unit.transition(S.CANCELLED, note="the challenge expired at the gateway")
    with pytest.raises(InvalidTransitionError) as info:
        service.complete_3ds(pid, md=md, pa_res=cloudpayments_sandbox.pa_res_for(int(md)))
    assert (info.value.old, info.value.new) == ("cancelled", "processing")
    assert recorder.count(POST3DS) == 0


def test_post3ds_goes_out_under_its_attempts_request_id_and_amount(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder,
) -> None:
    # The attempt's X-Request-ID is the one a retry (or a reconcile) reuses: the call
    # must carry it, not one of the client's own.
    pid, md = _challenged(service, card)
    service.complete_3ds(pid, md=md, pa_res=cloudpayments_sandbox.pa_res_for(int(md)))
    (attempt,) = [a for a in service.ledger.attempts(pid) if a.operation == "post3ds"]
    assert (attempt.amount, attempt.outcome) == (Decimal("100.00"), "succeeded")
    sent = [rid for path, rid in zip(recorder.paths, recorder.request_ids, strict=True)
            if path == POST3DS]
    assert sent == [attempt.request_id]


@pytest.mark.parametrize(("operation", "target", "note"), [
    ("confirm", S.SUCCEEDED, "confirmed 100.00"), ("void", S.CANCELLED, "voided")])
def test_an_accepted_confirm_or_void_closes_its_attempt_with_its_note(
    service: PaymentService, card: Card, operation: str, target: PaymentStatus, note: str,
) -> None:
    pid = _hold(service, card)
    payment = getattr(service, operation)(pid)
    assert payment.status is target
    assert _notes(service, pid)[-1] == (target.value, note)
    assert [a.outcome for a in service.ledger.attempts(pid)
            if a.operation == operation] == ["succeeded"]


@pytest.mark.parametrize("operation", ["confirm", "void"])
def test_an_answer_after_the_notification_settled_the_hold_only_brings_its_columns(
    service: PaymentService, card: Card, recorder: Recorder, cloudpayments_sandbox: Sandbox,
    operation: str,
) -> None:
    # The gateway's Confirm (Cancel) notification settled the hold while our call's
    # answer was on its way. The answer moves nothing again: a confirm brings its
    # amount, a void has nothing to bring and writes nothing.
    pid = _hold(service, card)
    tx = service.get(pid).gateway_transaction_id
    confirm = operation == "confirm"
    seen: list[Payment] = []

    def notified() -> None:
        _deliver(Inbox(service.ledger), cloudpayments_sandbox, "Confirm" if confirm else "Cancel",
                 {"TransactionId": str(tx), "Amount": "60.00" if confirm else "100.00",
                  "Currency": "RUB", "InvoiceId": "inv-1"})
        seen.append(service.get(pid))

    recorder.meanwhile[CONFIRM if confirm else VOID] = notified
    payment = service.confirm(pid, "60.00") if confirm else service.void(pid)
    (settled,) = seen
    target = S.SUCCEEDED if confirm else S.CANCELLED
    assert settled.status is target and payment.status is target
    assert [status for status, _ in _notes(service, pid)].count(target.value) == 1
    assert payment.amount == (Decimal("60.00") if confirm else Decimal("100.00"))
    assert payment.version == settled.version + (1 if confirm else 0)


def test_a_refund_the_payment_cannot_take_is_a_problem_not_an_error(
    service: PaymentService, card: Card,
) -> None:
    # The gateway refunded (money moved) while the ledger holds the payment in a status
    # that takes no refund: recorded for the shop to look at, once, never raised.
    pid = _hold(service, card)
    for _ in range(2):
        with service.ledger.update(pid) as unit:
            PaymentService._count_refund(unit, 777, Decimal("30.00"), "lookup", "reconciled")
    (problem,) = service.ledger.problems(pid)
    assert (problem.kind.value, problem.gateway_transaction_id, problem.amount,
            problem.currency, problem.detail) == (
        "mismatch", 777, Decimal("30.00"), "RUB", "refund 777 of 30.00 in status authorized")


def test_a_refund_counted_before_the_payment_was_all_refunded_is_no_problem(
    service: PaymentService, card: Card, recorder: Recorder,
) -> None:
    pid = _paid(service, card)
    assert service.refund(pid).status is S.REFUNDED
    (refund,) = [a for a in service.ledger.attempts(pid) if a.operation == "refund"]
    assert refund.gateway_transaction_id is not None
    with service.ledger.update(pid) as unit:  # the same refund, reported again
        PaymentService._count_refund(unit, refund.gateway_transaction_id, Decimal("100.00"),
                                     "lookup", "reconciled")
    assert service.ledger.problems(pid) == []


def test_a_widget_hold_on_a_one_stage_invoice_is_not_what_our_lost_charge_took(
    service: PaymentService, card: Card, client: CloudPaymentsClient, recorder: Recorder,
    clock: Clock,
) -> None:
    # Our charge was declined and its answer lost; the payer's other tab then held the
    # exact amount (a tampered, two-stage widget) and was declined once more, the
    # invoice's latest operation. A hold never pays a one-stage payment: nothing of ours
    # took money, so the payment is failed.
    pid = _new(service)
    recorder.drop_after.add(CHARGE)
    assert service.pay(pid, cryptogram=card(NSF), ip_address=IP).kind == "unknown"
    recorder.drop_after.clear()
    client.auth("100.00", ip_address=IP, cryptogram=card(NO_3DS), invoice_id="inv-1")
    with contextlib.suppress(PaymentDeclined):
        client.charge("100.00", ip_address=IP, cryptogram=card(NSF), invoice_id="inv-1")
    clock.advance(service.stale_after)
    service.reconcile()
    assert service.get(pid).status is S.FAILED


def test_a_refund_beyond_what_is_left_is_a_problem_naming_the_excess(
    service: PaymentService, card: Card,
) -> None:
    # The ledger counted 80.00 of refunds; the gateway reports another of 30.00 (the two
    # disagree): recorded for the shop with the reason, never raised after the money moved.
    pid = _paid(service, card)
    service.refund(pid, "80.00")
    with service.ledger.update(pid) as unit:
        PaymentService._count_refund(unit, 888, Decimal("30.00"), "lookup", "reconciled")
    (problem,) = service.ledger.problems(pid)
    assert (problem.kind.value, problem.gateway_transaction_id, problem.amount,
            problem.currency, problem.detail) == (
        "mismatch", 888, Decimal("30.00"), "RUB",
        "a refund of 30.00 would make 110.00 refunded of 100.00")
    assert service.get(pid).refunded_amount == Decimal("80.00")


def test_a_partial_confirm_goes_out_under_its_attempt_and_is_noted(
    service: PaymentService, card: Card, recorder: Recorder,
) -> None:
    pid = _hold(service, card)
    with pytest.raises(PaymentConflictError) as info:
        service.confirm(pid, "100.01")
    assert (str(info.value), info.value.payment_id) == (
        "cannot confirm 100.01 of an authorization for 100.00", pid)
    payment = service.confirm(pid, 60)
    assert (payment.status, payment.amount) == (S.SUCCEEDED, Decimal("60.00"))
    assert _notes(service, pid)[-1] == ("succeeded", "confirmed 60.00")
    (attempt,) = [a for a in service.ledger.attempts(pid) if a.operation == "confirm"]
    assert attempt.amount == Decimal("60.00")
    sent = [rid for path, rid in zip(recorder.paths, recorder.request_ids, strict=True)
            if path == CONFIRM]
    assert sent == [attempt.request_id]


@pytest.mark.parametrize("operation", ["void", "refund"])
def test_a_void_or_refund_goes_out_under_its_attempt_and_is_noted(
    service: PaymentService, card: Card, recorder: Recorder, operation: str,
) -> None:
    # The attempt's X-Request-ID is what a retry or a reconcile reuses: the call carries it.
    if operation == "void":
        pid = _hold(service, card)
        payment, path, note = service.void(pid), VOID, ("cancelled", "voided")
    else:
        pid = _paid(service, card)
        payment, path, note = service.refund(pid, 30), "/payments/refund", (
            "succeeded", "refunded 30.00")
        assert payment.refunded_amount == Decimal("30.00")
    (attempt,) = [a for a in service.ledger.attempts(pid) if a.operation == operation]
    assert attempt.outcome == "succeeded"
    assert _notes(service, pid)[-1] == note
    sent = [rid for p, rid in zip(recorder.paths, recorder.request_ids, strict=True)
            if p == path]
    assert sent == [attempt.request_id]


def test_a_refund_beyond_what_is_left_is_refused_before_any_call(
    service: PaymentService, card: Card, recorder: Recorder,
) -> None:
    pid = _paid(service, card)
    service.refund(pid, "70.00")
    with pytest.raises(PaymentConflictError) as info:
        service.refund(pid, "30.01")
    assert (str(info.value), info.value.payment_id) == (
        "cannot refund 30.01: 30.00 of 100.00 is left to refund", pid)
    assert recorder.count("/payments/refund") == 1


def test_operations_after_payment_are_refused_naming_why(
    service: PaymentService, card: Card, recorder: Recorder,
) -> None:
    one_stage = _paid(service, card)
    with pytest.raises(PaymentConflictError) as info:
        service.void(one_stage)
    assert (str(info.value), info.value.payment_id) == (
        f"void is for two-stage (auth) payments; {one_stage} is one-stage", one_stage)
    unpaid = service.create_payment(
        invoice_id="inv-2", amount="100.00", currency="RUB",
        description="Order inv-2", scheme="auth").id
    with pytest.raises(InvalidTransitionError) as transition:
        service.confirm(unpaid)
    assert (transition.value.old, transition.value.new) == ("created", "succeeded")
    held = service.create_payment(
        invoice_id="inv-3", amount="100.00", currency="RUB",
        description="Order inv-3", scheme="auth").id
    with service.ledger.update(held) as unit:  # held, as an odd record might say, no id
        unit.transition(S.PROCESSING)
        unit.transition(S.AUTHORIZED)
    with pytest.raises(PaymentConflictError) as info:
        service.confirm(held)
    assert (str(info.value), info.value.payment_id) == (
        f"{held} has no gateway transaction", held)
    recorder.drop_after.add("/payments/refund")
    with pytest.raises(UnknownOutcomeError):
        service.refund(one_stage, "10.00")
    recorder.drop_after.clear()
    with pytest.raises(PaymentConflictError) as info:
        service.refund(one_stage, "10.00")
    assert (str(info.value), info.value.payment_id) == (
        f"a refund of {one_stage} is unknown: reconcile first", one_stage)


def test_a_decline_records_its_transaction_code_and_message_on_the_attempt(
    service: PaymentService, card: Card,
) -> None:
    pid = _new(service)
    outcome = service.pay(pid, cryptogram=card(NSF), ip_address=IP)
    payment = outcome.payment
    assert (payment.status, payment.reason_code) == (S.FAILED, 5051)
    (attempt,) = service.ledger.attempts(pid)
    assert (attempt.outcome, attempt.gateway_transaction_id, attempt.reason_code) == (
        "declined", payment.gateway_transaction_id, 5051)
    assert attempt.gateway_transaction_id is not None and attempt.error
    assert _notes(service, pid)[-1] == ("failed", "declined 5051")


def test_an_unforeseen_failure_after_sending_is_unknown_with_its_repr(
    service: PaymentService, card: Card, client: CloudPaymentsClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Not one of ours: the charge may have left, so the payment is unknown and the
    # attempt keeps what the exception was (cut to 2000 characters), then it is raised.
    def broken(*args: Any, **kwargs: Any) -> Transaction:
        raise RuntimeError("x" * 3000)

    monkeypatch.setattr(client, "charge", broken)
    pid = _new(service)
    with pytest.raises(RuntimeError):
        service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert service.get(pid).status is S.UNKNOWN
    (attempt,) = service.ledger.attempts(pid)
    assert attempt.outcome == "unknown"
    assert attempt.error == repr(RuntimeError("x" * 3000))[:2000]


def test_the_pay_of_a_hold_told_apart_is_a_mismatch_naming_it(
    service: PaymentService, card: Card, client: CloudPaymentsClient,
    cloudpayments_sandbox: Sandbox,
) -> None:
    # The payer's widget held 100.00; the back office captured 60.00 of it before its
    # Pay came, and a lookup told that capture apart (no id proves it the payment's): a
    # mismatch to refund. The hold's late Pay must not pay the payment with it.
    pid = _new(service, scheme="auth")
    hold = client.auth("100.00", ip_address=IP, cryptogram=card(NO_3DS), invoice_id="inv-1")
    client.confirm(hold.transaction_id, "60.00")
    service.refresh(pid)
    assert [(p.kind.value, p.gateway_transaction_id) for p in service.ledger.problems(pid)] == [
        ("mismatch", hold.transaction_id)]
    applied = _deliver(Inbox(service.ledger), cloudpayments_sandbox, "Pay", {
        "TransactionId": str(hold.transaction_id), "Amount": "100.00", "Currency": "RUB",
        "InvoiceId": "inv-1", "Status": "Authorized"})
    assert (applied.record.outcome, applied.record.error) == (
        "mismatch", f"Pay {hold.transaction_id} was told apart from payment {pid}: "
                    "not paid by it")
    assert service.get(pid).status is S.CREATED
