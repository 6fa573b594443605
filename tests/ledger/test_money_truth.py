"""Regression tests of issue 14, §1: each a way the ledger disagreed with the money
that moved (reproduced with the sandbox), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from checkout_kit.client import CloudPaymentsClient
from checkout_kit.errors import (
    InvalidRequestError,
    PaymentDeclined,
    PaymentExpiredError,
    UnknownOutcomeError,
)
from checkout_kit.ledger import Ledger, PaymentService, PaymentStatus
from checkout_kit.ledger.inbox import Applied, Inbox
from checkout_kit.ledger.states import PENDING
from checkout_kit.models import ThreeDSChallenge
from checkout_kit.pytest_plugin import SANDBOX_BASE_URL
from checkout_kit.sandbox import Sandbox
from checkout_kit.testing import build_notification, sample_fields
from checkout_kit.webhooks import receive

from .conftest import Clock, Recorder, charges

Card = Callable[[str], str]
S = PaymentStatus

NO_3DS = "4000 0000 0000 3055"
WITH_3DS = "4242 4242 4242 4242"
DECLINED = "4000 0566 5566 5556"  # declined 5051, no 3-D Secure
IP = "203.0.113.7"
CHARGE = "/payments/cards/charge"
AUTH = "/payments/cards/auth"
REFUND = "/payments/refund"


def _new(service: PaymentService, amount: str = "100.00", scheme: str = "charge",
         invoice: str = "inv-1", **kw: Any) -> str:
    return service.create_payment(
        invoice_id=invoice, amount=amount, currency="RUB",
        description=f"Order {invoice}", scheme=scheme,
                                  **kw).id


def _deliver(inbox: Inbox, sandbox: Sandbox, kind: str, fields: dict[str, str]) -> Applied:
    """A signed notification, verified and applied as the shop's route would."""
    sent = build_notification(kind, sample_fields(kind, fields), sandbox.api_secret)
    received = receive("POST", sent.body, sent.headers, sandbox.api_secret, expected_type=kind)
    record = inbox.record(type=kind, method="POST", body=sent.body, headers={},
                          remote_addr=None, signature_valid=True)
    return inbox.apply(record.id, received, lambda _n, _p: 0)


# --- 1. every path settles by the one rule ------------------------------------------------------


def test_refresh_never_settles_on_a_charge_of_another_amount(
    service: PaymentService, card: Card, client: CloudPaymentsClient,
) -> None:
    pid = _new(service, "1490.00")
    # The widget's charge is built in the payer's browser: 1.00 on our invoice.
    client.charge("1.00", ip_address=IP, cryptogram=card(NO_3DS), invoice_id="inv-1")
    for _ in range(2):  # a second look records nothing new
        refreshed = service.refresh(pid)
        assert refreshed.status is S.CREATED and refreshed.amount == Decimal("1490.00")
        assert refreshed.gateway_transaction_id is None
    (problem,) = service.ledger.problems(pid)
    assert (problem.kind, problem.amount) == ("mismatch", Decimal("1.00"))


def test_a_mismatch_is_signalled_once(
    ledger: Ledger, card: Card, client: CloudPaymentsClient, clock: Clock,
) -> None:
    seen: list[tuple[str, str]] = []
    service = PaymentService(ledger, client, clock=clock,
                             on_problem=lambda p, problem: seen.append((p.id, problem.kind)))
    pid = _new(service, "1490.00")
    client.charge("1.00", ip_address=IP, cryptogram=card(NO_3DS), invoice_id="inv-1")
    service.refresh(pid)
    service.reconcile()
    service.refresh(pid)
    assert seen == [(pid, "mismatch")]
    assert [e.note for e in ledger.history(pid)][-1].startswith("mismatch: transaction")


def test_refresh_never_overwrites_an_auth_payments_amount(
    service: PaymentService, card: Card, client: CloudPaymentsClient, recorder: Recorder,
) -> None:
    pid = _new(service, scheme="auth")
    recorder.drop_after.add(AUTH)
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "unknown"
    recorder.drop_after.clear()
    # The invoice's latest operation is now someone's one-stage charge of 1.00.
    client.charge("1.00", ip_address=IP, cryptogram=card(NO_3DS), invoice_id="inv-1")
    refreshed = service.refresh(pid)
    assert refreshed.status is S.UNKNOWN  # not guessed: reported as unknown
    assert refreshed.amount == Decimal("100.00")
    assert [p.kind for p in service.ledger.problems(pid)] == ["mismatch"]


def test_a_held_transaction_never_settles_a_one_stage_payment(
    service: PaymentService, card: Card, client: CloudPaymentsClient,
) -> None:
    pid = _new(service)
    client.auth("100.00", ip_address=IP, cryptogram=card(NO_3DS), invoice_id="inv-1")
    assert service.refresh(pid).status is S.CREATED
    assert [p.kind for p in service.ledger.problems(pid)] == ["mismatch"]


def _tampered(client: CloudPaymentsClient, monkeypatch: pytest.MonkeyPatch,
              amount: str = "1.00") -> list[int]:
    """Make every charge the gateway answers, and every lookup of it, say ``amount``."""
    seen: list[int] = []
    real_charge, real_get, real_find = client.charge, client.get_payment, client.find_payment

    def charge(*args: Any, **kwargs: Any) -> Any:
        answer = real_charge(*args, **kwargs)
        if isinstance(answer, ThreeDSChallenge):
            return answer
        seen.append(answer.transaction_id)
        return replace(answer, amount=Decimal(amount))

    def get_payment(tx_id: int, **kwargs: Any) -> Any:
        found = real_get(tx_id, **kwargs)
        return replace(found, amount=Decimal(amount)) if tx_id in seen else found

    def find_payment(invoice_id: str, **kwargs: Any) -> Any:
        found = real_find(invoice_id, **kwargs)
        return replace(found, amount=Decimal(amount)) if found.transaction_id in seen else found

    monkeypatch.setattr(client, "charge", charge)
    monkeypatch.setattr(client, "get_payment", get_payment)
    monkeypatch.setattr(client, "find_payment", find_payment)
    return seen


def test_a_mismatched_answer_to_our_own_call_ends_the_payment(
    ledger: Ledger, card: Card, client: CloudPaymentsClient, clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Regression (review of issue 14 §1.1): the answer of another amount left the
    # payment unknown forever: every reconcile asked again, the pending page reloaded.
    problems: list[str] = []
    service = PaymentService(ledger, client, clock=clock,
                             on_problem=lambda _p, problem: problems.append(problem.kind))
    seen = _tampered(client, monkeypatch)
    pid = _new(service)
    outcome = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert outcome.kind == "declined" and outcome.reason_code == 3003  # a final page
    payment = service.get(pid)
    assert payment.status is S.FAILED and payment.gateway_transaction_id is None
    (problem,) = ledger.problems(pid)
    assert (problem.kind, problem.gateway_transaction_id) == ("mismatch", seen[0])
    assert [a.outcome for a in ledger.attempts(pid)] == ["mismatch"]
    assert pid not in ledger.ids_to_reconcile(PENDING)  # reconcile asks no more
    assert service.refresh(pid).status is S.FAILED
    service.reconcile()
    assert problems == ["mismatch"]  # the shop is told once to refund it


def test_a_payment_left_unknown_by_a_mismatched_answer_is_failed_by_refresh(
    ledger: Ledger, service: PaymentService, card: Card, client: CloudPaymentsClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the old code left behind: the attempt unknown with the answer's transaction.
    # Looked up by that id it is the call's own, and definite: the payment ends.
    seen = _tampered(client, monkeypatch)
    pid = _new(service)
    answer = client.charge("100.00", ip_address=IP, cryptogram=card(NO_3DS),
                           invoice_id="inv-1")
    with ledger.update(pid) as unit:
        unit.transition(S.PROCESSING)
        attempt = unit.add_attempt("charge", amount=unit.payment.amount)
        unit.finish_attempt(attempt, "unknown", gateway_transaction_id=answer.transaction_id,
                            error="the answer does not match the payment")
        unit.transition(S.UNKNOWN, note="answer does not match the payment")
    refreshed = service.refresh(pid)
    assert (refreshed.status, refreshed.reason_code) == (S.FAILED, 3003)
    assert [a.outcome for a in ledger.attempts(pid)] == ["reconciled"]
    assert [(p.kind, p.gateway_transaction_id) for p in ledger.problems(pid)] == [
        ("mismatch", seen[0])]
    assert service.reconcile() == []


def test_a_mismatched_decline_records_no_problem(
    ledger: Ledger, card: Card, client: CloudPaymentsClient, clock: Clock,
) -> None:
    # Regression (review of issue 14 §1.1): a Declined transaction of another amount
    # was recorded as a mismatch problem and signalled, though no money moved.
    problems: list[str] = []
    service = PaymentService(ledger, client, clock=clock,
                             on_problem=lambda _p, problem: problems.append(problem.kind))
    pid = _new(service, "1490.00")
    with pytest.raises(PaymentDeclined):
        client.charge("1.00", ip_address=IP, cryptogram=card(DECLINED), invoice_id="inv-1")
    assert service.refresh(pid).status is S.CREATED
    assert ledger.problems(pid) == [] and problems == []


# --- 2. a gateway success is never thrown away --------------------------------------------------


def test_a_late_success_after_a_stale_takeover_is_kept(
    service: PaymentService, card: Card, recorder: Recorder, clock: Clock,
    cloudpayments_sandbox: Sandbox,
) -> None:
    pid = _new(service)

    def take_over() -> None:
        # Our charge is slow; a refresh takes the worker for dead before the gateway
        # has anything on the invoice.
        clock.advance(service.stale_after)
        assert service.refresh(pid).status is S.FAILED

    recorder.before[CHARGE] = take_over
    outcome = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    (tx,) = charges(cloudpayments_sandbox, "inv-1")
    assert outcome.kind == "succeeded"  # the payer was charged: never told "declined"
    assert outcome.payment.status is S.SUCCEEDED
    assert outcome.payment.gateway_transaction_id == tx.id
    assert service.refresh(pid).status is S.SUCCEEDED


def test_a_success_on_an_attempt_is_never_counted_as_superseded(
    service: PaymentService, card: Card, client: CloudPaymentsClient, ledger: Ledger,
) -> None:
    # What a late answer left before the fix: the payment failed, its attempt holding
    # the successful charge. Refresh must find that charge, not skip it as old.
    pid = _new(service)
    paid = client.charge("100.00", ip_address=IP, cryptogram=card(NO_3DS), invoice_id="inv-1")
    assert not isinstance(paid, ThreeDSChallenge)
    with ledger.update(pid) as unit:
        unit.transition(S.PROCESSING)
        attempt = unit.add_attempt("charge", amount=unit.payment.amount)
        unit.transition(S.FAILED, note="reconciled: unknown to the gateway")
        unit.finish_attempt(attempt, "succeeded", gateway_transaction_id=paid.transaction_id)
    refreshed = service.refresh(pid)
    assert refreshed.status is S.SUCCEEDED
    assert refreshed.gateway_transaction_id == paid.transaction_id


def test_stale_after_must_exceed_the_clients_worst_case_call(
    ledger: Ledger, cloudpayments_sandbox: Sandbox,
) -> None:
    with CloudPaymentsClient(cloudpayments_sandbox.public_id, cloudpayments_sandbox.api_secret,
                             base_url=SANDBOX_BASE_URL) as defaults:
        # 30 s x 4 attempts + 3 waits of up to 60 s (Retry-After): 5 minutes, which a
        # 5-minute stale_after would cut into.
        with pytest.raises(InvalidRequestError) as info:
            PaymentService(ledger, defaults, stale_after=timedelta(minutes=5))
        assert info.value.field == "stale_after"
        assert defaults.worst_case_seconds == 300
        assert PaymentService(ledger, defaults).stale_after > timedelta(minutes=5)


# --- 3. the Fail of an abandoned challenge ------------------------------------------------------


def test_the_fail_of_an_abandoned_challenge_does_not_fail_the_live_one(
    service: PaymentService, card: Card, clock: Clock, cloudpayments_sandbox: Sandbox,
) -> None:
    pid = _new(service)
    first = service.pay(pid, cryptogram=card(WITH_3DS), ip_address=IP).challenge
    clock.advance(service.stale_after)  # the payer left the bank's page, and comes back
    second = service.pay(pid, cryptogram=card(WITH_3DS), ip_address=IP).challenge
    assert first is not None and second is not None
    applied = _deliver(Inbox(service.ledger), cloudpayments_sandbox, "Fail", {
        "TransactionId": str(first.transaction_id), "InvoiceId": "inv-1",
        "Amount": "100.00", "Currency": "RUB", "ReasonCode": "5206"})
    assert applied.code == 0
    payment = service.get(pid)
    assert payment.status is S.AWAITING_3DS
    assert payment.gateway_transaction_id == second.transaction_id
    done = service.complete_3ds(pid, md=second.transaction_id,
                                pa_res=cloudpayments_sandbox.pa_res_for(second.transaction_id))
    assert done.kind == "succeeded"


def test_a_stale_workers_challenge_never_replaces_the_live_one(
    service: PaymentService, card: Card, recorder: Recorder, clock: Clock,
    cloudpayments_sandbox: Sandbox,
) -> None:
    # Regression (review of issue 14 §1.3, by another path): _settle updated the row
    # whenever the status was the same and not paid, so a stale worker's answer (its own,
    # abandoned challenge) overwrote the live challenge's transaction, and the payer's
    # return from the bank for the live one was refused as the wrong transaction.
    pid = _new(service)
    live: list[Any] = []

    def meanwhile() -> None:
        # Worker A's answer is slow: a refresh takes it over, the payer starts again.
        clock.advance(service.stale_after)
        assert service.refresh(pid).status is S.AWAITING_3DS
        clock.advance(service.stale_after)
        live.append(service.pay(pid, cryptogram=card(WITH_3DS), ip_address=IP))

    recorder.meanwhile[CHARGE] = meanwhile
    late = service.pay(pid, cryptogram=card(WITH_3DS), ip_address=IP)
    (second,) = live
    assert second.kind == "three_ds" and second.challenge is not None
    live_tx = second.challenge.transaction_id
    # The stale worker is not sent to the bank with its abandoned challenge.
    assert late.kind != "three_ds" and late.challenge is None
    payment = service.get(pid)
    assert (payment.status, payment.gateway_transaction_id) == (S.AWAITING_3DS, live_tx)
    done = service.complete_3ds(pid, md=live_tx,
                                pa_res=cloudpayments_sandbox.pa_res_for(live_tx))
    assert done.kind == "succeeded"


def test_settle_keeps_the_transaction_of_the_same_status(ledger: Ledger,
                                                         service: PaymentService) -> None:
    # The review's repro: a late answer for an awaiting_3ds payment carries another
    # (abandoned) challenge's transaction; it is logged and kept, for every status.
    pid = _new(service)
    with ledger.update(pid) as unit:
        unit.transition(S.PROCESSING)
        unit.transition(S.AWAITING_3DS, gateway_transaction_id=2)
        kept = service._settle(unit, S.AWAITING_3DS, "3-D Secure asked",
                               gateway_transaction_id=1)
    assert kept.gateway_transaction_id == 2 == service.get(pid).gateway_transaction_id


# --- 4. a Refund notification while our refund call is in flight ---------------------------------


def test_a_back_office_refund_during_our_refund_call_is_not_lost(
    service: PaymentService, card: Card, recorder: Recorder, client: CloudPaymentsClient,
    cloudpayments_sandbox: Sandbox,
) -> None:
    pid = _new(service)
    payment = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).payment
    tx_id = payment.gateway_transaction_id
    assert tx_id is not None
    inbox = Inbox(service.ledger)
    answers: list[Applied] = []
    refund_fields: dict[str, str] = {}

    def back_office_refund() -> None:
        # Someone refunds 20.00 in the gateway's back office; its notification arrives
        # while our call for 30.00 has no answer yet.
        done = client.refund(tx_id, "20.00")
        refund_fields.update({
            "TransactionId": str(done.transaction_id), "PaymentTransactionId": str(tx_id),
            "InvoiceId": "inv-1", "Amount": "20.00", "Currency": "RUB"})
        answers.append(_deliver(inbox, cloudpayments_sandbox, "Refund", refund_fields))

    recorder.before[REFUND] = back_office_refund
    assert service.refund(pid, "30.00").refunded_amount == Decimal("30.00")
    (first,) = answers
    assert first.code != 0  # so that the gateway delivers it again
    assert first.record.outcome == "deferred" and not first.applied
    again = _deliver(inbox, cloudpayments_sandbox, "Refund", refund_fields)
    assert again.code == 0 and again.applied
    assert service.get(pid).refunded_amount == Decimal("50.00")  # what the gateway has
    third = _deliver(inbox, cloudpayments_sandbox, "Refund", refund_fields)
    assert third.duplicate and service.get(pid).refunded_amount == Decimal("50.00")


def test_the_refund_notification_of_our_own_call_is_counted_once(
    service: PaymentService, card: Card, recorder: Recorder, cloudpayments_sandbox: Sandbox,
) -> None:
    pid = _new(service)
    tx_id = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).payment.gateway_transaction_id
    refunded = service.refund(pid, "30.00")
    (attempt,) = [a for a in service.ledger.attempts(pid) if a.operation == "refund"]
    applied = _deliver(Inbox(service.ledger), cloudpayments_sandbox, "Refund", {
        "TransactionId": str(attempt.gateway_transaction_id),
        "PaymentTransactionId": str(tx_id), "InvoiceId": "inv-1", "Amount": "30.00",
        "Currency": "RUB"})
    assert applied.code == 0 and applied.record.outcome == "recorded"
    assert service.get(pid).refunded_amount == refunded.refunded_amount == Decimal("30.00")


# --- 5. a late refund answer after a stale refresh -----------------------------------------------


@pytest.mark.parametrize("amount", ["30.00", None], ids=["partial", "full"])
def test_a_late_refund_answer_after_a_stale_refresh_is_counted_once(
    service: PaymentService, card: Card, recorder: Recorder, clock: Clock,
    amount: str | None,
) -> None:
    pid = _new(service)
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)

    def take_over() -> None:
        # The gateway refunded; our answer is slow, and a refresh takes the call for a
        # dead worker's and counts the refund from the gateway's list.
        clock.advance(service.stale_after)
        service.refresh(pid)

    recorder.meanwhile[REFUND] = take_over
    after = service.refund(pid, amount)
    expected = Decimal("30.00") if amount else Decimal("100.00")
    assert after.refunded_amount == expected
    assert after.status is (S.SUCCEEDED if amount else S.REFUNDED)
    (attempt,) = [a for a in service.ledger.attempts(pid) if a.operation == "refund"]
    assert attempt.outcome == "reconciled"  # never finished again


def test_a_late_refund_answer_counts_what_the_stale_refresh_could_not_see(
    service: PaymentService, card: Card, recorder: Recorder, clock: Clock,
) -> None:
    pid = _new(service)
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)

    def take_over() -> None:
        # Taken over before the gateway refunded: the list has nothing yet.
        clock.advance(service.stale_after)
        assert service.refresh(pid).refunded_amount == Decimal("0.00")

    recorder.before[REFUND] = take_over
    assert service.refund(pid, "30.00").refunded_amount == Decimal("30.00")


# --- 6. expires_at ------------------------------------------------------------------------------


def test_an_expired_payment_is_not_charged(
    service: PaymentService, card: Card, recorder: Recorder, clock: Clock,
) -> None:
    pid = _new(service, expires_at=clock.now + timedelta(minutes=30))
    clock.advance(timedelta(minutes=30))
    with pytest.raises(PaymentExpiredError) as info:
        service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert info.value.payment_id == pid
    assert recorder.count(CHARGE) == 0
    assert service.get(pid).status is S.CREATED


# --- 7. a second charge on one invoice ----------------------------------------------------------


def test_a_second_charge_is_a_duplicate_problem(
    service: PaymentService, card: Card, client: CloudPaymentsClient,
    cloudpayments_sandbox: Sandbox,
) -> None:
    pid = _new(service)
    first = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).payment
    # The widget in a second tab charges the invoice again.
    second = client.charge("100.00", ip_address=IP, cryptogram=card(NO_3DS), invoice_id="inv-1")
    assert not isinstance(second, ThreeDSChallenge)
    fields = {"TransactionId": str(second.transaction_id), "InvoiceId": "inv-1",
              "Amount": "100.00", "Currency": "RUB", "Status": "Completed"}
    inbox = Inbox(service.ledger)
    applied = _deliver(inbox, cloudpayments_sandbox, "Pay", fields)
    assert applied.code == 0 and applied.record.outcome == "payment_duplicate"
    assert [(p.kind, p.gateway_transaction_id) for _, p in applied.problems] == [
        ("duplicate", second.transaction_id)]
    assert _deliver(inbox, cloudpayments_sandbox, "Pay", fields).duplicate
    (problem,) = service.ledger.problems(pid)
    assert (problem.kind, problem.gateway_transaction_id) == ("duplicate", second.transaction_id)
    assert service.get(pid).gateway_transaction_id == first.gateway_transaction_id


def test_refresh_never_takes_a_token_charge_on_the_invoice_for_the_payments_own(
    service: PaymentService, card: Card, client: CloudPaymentsClient,
) -> None:
    # Regression (review of issue 14 §1.8): the lookup by invoice took any charge naming
    # the invoice. The ledger charges cryptograms only: a token charge (the shop's own,
    # a subscription's) on the invoice is not this payment's, whatever its amount.
    pid = _new(service, account_id="reader-1")
    saved = client.charge("1.00", ip_address=IP, cryptogram=card(NO_3DS),
                          account_id="reader-1", save_card=True)
    assert not isinstance(saved, ThreeDSChallenge) and saved.token
    client.charge_token("100.00", account_id="reader-1", token=saved.token,
                        tr_initiator_code=0, invoice_id="inv-1")
    for _ in range(2):
        refreshed = service.refresh(pid)
        assert (refreshed.status, refreshed.gateway_transaction_id) == (S.CREATED, None)
    assert service.ledger.problems(pid) == []


def test_a_capture_of_part_of_the_payments_own_hold_is_taken_by_refresh_as_by_confirm(
    service: PaymentService, card: Card, client: CloudPaymentsClient, recorder: Recorder,
) -> None:
    # The one rule on both paths: the back office captured 60.00 of our own hold (the
    # Confirm notification takes that amount); a refresh finds the same capture.
    pid = _new(service, scheme="auth")
    tx_id = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).payment.gateway_transaction_id
    assert tx_id is not None
    client.confirm(tx_id, "60.00")
    settled = service.refresh(pid)
    assert (settled.status, settled.amount) == (S.SUCCEEDED, Decimal("60.00"))
    assert service.ledger.problems(pid) == []


def test_a_hold_captured_while_our_post3ds_stalls_is_a_capture_not_a_mismatch(
    service: PaymentService, card: Card, client: CloudPaymentsClient, recorder: Recorder,
    clock: Clock, changes: Any, cloudpayments_sandbox: Sandbox,
) -> None:
    # Simulation seed 10912: our post3ds authorized the hold and then stalled; the back
    # office captured part of it; a refresh took the stalled worker for dead. The
    # captured transaction is the payment's own (found by its id): a capture, never a
    # "Completed for a two-stage payment" mismatch that fails a payment the payer paid.
    pid = _new(service, scheme="auth")
    challenge = service.pay(pid, cryptogram=card(WITH_3DS), ip_address=IP).challenge
    assert challenge is not None
    tx_id = challenge.transaction_id

    def meanwhile() -> None:
        client.confirm(tx_id, "60.00")
        clock.advance(service.stale_after)
        refreshed = service.refresh(pid)
        assert (refreshed.status, refreshed.amount) == (S.SUCCEEDED, Decimal("60.00"))

    recorder.meanwhile["/payments/cards/post3ds"] = meanwhile
    done = service.complete_3ds(pid, md=tx_id, pa_res=cloudpayments_sandbox.pa_res_for(tx_id))
    assert done.kind == "succeeded"
    payment = service.get(pid)
    assert (payment.status, payment.amount, payment.gateway_transaction_id) == (
        S.SUCCEEDED, Decimal("60.00"), tx_id)
    assert service.ledger.problems(pid) == []
    assert "failed" not in [new for _pid, _old, new in changes.calls]


def _recurrent_pay(service: PaymentService, sandbox: Sandbox, invoice: str, tx: int,
                   subscription: str) -> Applied:
    return _deliver(Inbox(service.ledger), sandbox, "Pay", {
        "InvoiceId": invoice, "Amount": "100.00", "Currency": "RUB", "Status": "Completed",
        "TransactionId": str(tx), "SubscriptionId": subscription})


def test_a_recurrent_widget_paid_in_two_tabs_is_a_duplicate(
    service: PaymentService, cloudpayments_sandbox: Sandbox,
) -> None:
    # Maintainer review B1: each tab's Pay carries the SubscriptionId it starts. The
    # first settles the payment and is remembered; the second is another subscription's
    # start on the invoice, money to give back. The subscription's own later charges
    # (same SubscriptionId) stay the subscription's.
    pid = _new(service)
    first = _recurrent_pay(service, cloudpayments_sandbox, "inv-1", 5000001, "sc_tab_one")
    assert first.record.outcome == "applied"
    assert service.get(pid).subscription_id == "sc_tab_one"
    second = _recurrent_pay(service, cloudpayments_sandbox, "inv-1", 5000002, "sc_tab_two")
    assert second.record.outcome == "payment_duplicate"
    assert [(p.kind.value, p.gateway_transaction_id)
            for p in service.ledger.problems(pid)] == [("duplicate", 5000002)]
    monthly = _recurrent_pay(service, cloudpayments_sandbox, "inv-1", 5000003, "sc_tab_one")
    assert monthly.record.outcome == "recorded"
    assert len(service.ledger.problems(pid)) == 1
    payment = service.get(pid)
    assert (payment.status, payment.gateway_transaction_id) == (S.SUCCEEDED, 5000001)


def test_a_recurrent_widget_paid_after_the_order_was_cancelled_is_reported(
    service: PaymentService, cloudpayments_sandbox: Sandbox,
) -> None:
    # Maintainer review B1: an order cancelled before anyone paid started no
    # subscription, so a charge naming one on its invoice is money taken after the cancel.
    pid = _new(service)
    assert service.cancel(pid).status is S.CANCELLED
    _recurrent_pay(service, cloudpayments_sandbox, "inv-1", 5000004, "sc_new")
    assert [p.kind.value for p in service.ledger.problems(pid)] == ["paid_after_cancel"]


def test_a_back_office_capture_while_our_confirm_is_unknown_is_the_capture(
    service: PaymentService, card: Card, client: CloudPaymentsClient, recorder: Recorder,
    clock: Clock, changes: Any,
) -> None:
    # Simulation seed 402298: the shop's confirm of 60.00 never reached the gateway, but
    # its outcome is unknown; the back office captured the whole hold meanwhile. The
    # lookup finds the payment's own hold Completed for 100.00: the capture that was
    # made (the gateway's record of what was taken), never a "mismatch" that fails a
    # payment whose money was taken.
    pid = _new(service, scheme="auth")
    tx_id = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).payment.gateway_transaction_id
    assert tx_id is not None
    recorder.fail_before.add("/payments/confirm")
    with pytest.raises(UnknownOutcomeError):
        service.confirm(pid, "60.00")
    recorder.fail_before.clear()
    assert service.get(pid).status is S.UNKNOWN
    client.confirm(tx_id, "100.00")  # the back office
    clock.advance(service.stale_after)
    settled = service.refresh(pid)
    assert (settled.status, settled.amount) == (S.SUCCEEDED, Decimal("100.00"))
    assert service.ledger.problems(pid) == []
    assert "failed" not in [new for _pid, _old, new in changes.calls]


# --- 4. mutation testing: branches no test reached before (issue 14 §4) --------------------


def test_refresh_leaves_alone_a_payment_someone_moved_while_it_asked(
    service: PaymentService, ledger: Ledger, clock: Clock, recorder: Recorder,
) -> None:
    # A charge whose answer was lost (unknown); long after, a refresh asks the gateway,
    # which has nothing on the invoice. While it asks, another instance settles the
    # payment failed and the payer tries again: a live claim, its call on its way. The
    # refresh's "nothing at the gateway" is about the old attempt, and must not fail
    # the new one (its call may take the money a moment later).
    pid = _new(service)
    with ledger.update(pid) as unit:
        unit.transition(S.PROCESSING)
        lost = unit.add_attempt("charge", amount=unit.payment.amount)
        unit.finish_attempt(lost, "unknown")
        unit.transition(S.UNKNOWN, note="outcome unknown")
    clock.advance(service.stale_after)

    def meanwhile() -> None:
        with ledger.update(pid) as unit:
            unit.transition(S.FAILED, note="another instance: unknown to the gateway")
            unit.finish_attempt(unit.attempts()[-1], "reconciled")
            unit.transition(S.PROCESSING)
            unit.add_attempt("charge", amount=unit.payment.amount)

    recorder.before["/payments/find"] = meanwhile
    refreshed = service.refresh(pid)
    assert recorder.count("/payments/find") == 1  # it did ask
    assert refreshed.status is S.PROCESSING
    assert service.get(pid).status is S.PROCESSING
    assert [a.outcome for a in ledger.attempts(pid)] == ["reconciled", "pending"]
