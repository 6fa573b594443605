"""PaymentService against the in-process sandbox: paying, 3-D Secure, two-stage,
refunds, lost answers and reconciliation, double submits, bad input."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkout_kit import jsoncodec
from checkout_kit.client import CloudPaymentsClient
from checkout_kit.errors import (
    AuthenticationError,
    InvalidRequestError,
    InvalidTransitionError,
    MoneyError,
    PaymentConflictError,
    PaymentDeclined,
    PaymentNotFoundError,
    ThreeDSError,
    UnknownOutcomeError,
)
from checkout_kit.ledger import Ledger, PaymentService, PaymentStatus
from checkout_kit.ledger.service import PayOutcome
from checkout_kit.ledger.store import Payment, Unit
from checkout_kit.models import ThreeDSChallenge
from checkout_kit.pytest_plugin import SANDBOX_BASE_URL
from checkout_kit.sandbox import Sandbox

from .conftest import Changes, Clock, Recorder, charges, together

Card = Callable[[str], str]

NO_3DS = "4000 0000 0000 3055"
WITH_3DS = "4242 4242 4242 4242"
NSF = "4000 0566 5566 5556"  # insufficient funds, no 3-D Secure
NSF_3DS = "4012 8888 8888 1881"  # insufficient funds after 3-D Secure
IP = "203.0.113.7"
CHARGE = "/payments/cards/charge"
POST3DS = "/payments/cards/post3ds"


def _snapshot(service: PaymentService, payment_id: str) -> tuple[Any, ...]:
    ledger = service.ledger
    return (ledger.get(payment_id), ledger.attempts(payment_id), ledger.history(payment_id))


def _new(service: PaymentService, invoice: str = "inv-1", amount: str = "100.00",
         scheme: str = "charge") -> str:
    return service.create_payment(
        invoice_id=invoice, amount=amount, currency="RUB",
        description=f"Order {invoice}", scheme=scheme,
                                  email="payer@example.com").id


def _statuses(service: PaymentService, payment_id: str) -> list[str]:
    return [e.new_status.value for e in service.ledger.history(payment_id)]


# --- paying ---------------------------------------------------------------------------------


def test_a_charge_without_3ds_succeeds(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder,
    changes: Changes,
) -> None:
    pid = _new(service)
    outcome = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP, name="JANE DOE")
    assert outcome.kind == "succeeded" and outcome.challenge is None
    payment = outcome.payment
    assert payment.status is PaymentStatus.SUCCEEDED and payment == service.get(pid)
    (tx,) = charges(cloudpayments_sandbox, "inv-1")
    assert payment.gateway_transaction_id == tx.id and str(tx.status) == "Completed"
    assert tx.amount == Decimal("100.00") and tx.email == "payer@example.com"
    assert payment.test_mode is True
    (attempt,) = service.ledger.attempts(pid)
    assert (attempt.operation, attempt.outcome, attempt.amount) == (
        "charge", "succeeded", Decimal("100.00"))
    assert recorder.request_ids == [attempt.request_id]
    assert _statuses(service, pid) == ["created", "processing", "succeeded"]
    assert changes.calls == [(pid, "created", "processing"), (pid, "processing", "succeeded")]


def test_paying_again_after_success_charges_nothing(
    service: PaymentService, card: Card, recorder: Recorder
) -> None:
    pid = _new(service)
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    again = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert again.kind == "already_paid" and again.payment.status is PaymentStatus.SUCCEEDED
    assert recorder.count(CHARGE) == 1


def test_insufficient_funds_is_declined_and_may_be_retried(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox
) -> None:
    pid = _new(service)
    declined = service.pay(pid, cryptogram=card(NSF), ip_address=IP)
    assert declined.kind == "declined" and declined.reason_code == 5051
    assert declined.cardholder_message == "Недостаточно средств на карте"
    assert declined.payment.status is PaymentStatus.FAILED
    assert declined.payment.reason_code == 5051
    retried = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert retried.kind == "succeeded"
    assert retried.payment.reason_code is None and retried.payment.cardholder_message is None
    assert [a.outcome for a in service.ledger.attempts(pid)] == ["declined", "succeeded"]
    assert sorted(str(t.status) for t in charges(cloudpayments_sandbox, "inv-1")) == [
        "Completed", "Declined"]
    assert _statuses(service, pid) == [
        "created", "processing", "failed", "processing", "succeeded"]


def test_3ds_then_complete_then_replays_call_post3ds_once(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder
) -> None:
    pid = _new(service)
    outcome = service.pay(pid, cryptogram=card(WITH_3DS), ip_address=IP)
    assert outcome.kind == "three_ds" and outcome.challenge is not None
    assert outcome.payment.status is PaymentStatus.AWAITING_3DS
    md = outcome.challenge.md
    assert md == str(outcome.payment.gateway_transaction_id)
    pa_res = cloudpayments_sandbox.pa_res_for(outcome.challenge.transaction_id)

    # The bank's post arrives four times at once (reloads, double submits).
    results: list[PayOutcome] = together(
        4, lambda _n: service.complete_3ds(pid, md=md, pa_res=pa_res))
    assert recorder.count(POST3DS) == 1
    assert sorted(r.kind for r in results).count("succeeded") >= 1
    assert {r.kind for r in results} <= {"succeeded", "in_progress"}
    later = service.complete_3ds(pid, md=int(md), pa_res=pa_res)
    assert later.kind == "succeeded" and recorder.count(POST3DS) == 1
    assert service.get(pid).status is PaymentStatus.SUCCEEDED
    assert [a.operation for a in service.ledger.attempts(pid)] == ["charge", "post3ds"]
    assert _statuses(service, pid) == [
        "created", "processing", "awaiting_3ds", "processing", "succeeded"]


def test_3ds_md_must_match_the_payment(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder
) -> None:
    pid = _new(service)
    outcome = service.pay(pid, cryptogram=card(WITH_3DS), ip_address=IP)
    assert outcome.challenge is not None
    before = _snapshot(service, pid)
    pa_res = cloudpayments_sandbox.pa_res_for(outcome.challenge.transaction_id)
    for md in ("999", "", "  ", True, None):
        with pytest.raises(ThreeDSError) as info:
            service.complete_3ds(pid, md=md, pa_res=pa_res)  # type: ignore[arg-type]
        assert info.value.code in ("wrong_transaction", "bad_md")
    with pytest.raises(InvalidRequestError):
        service.complete_3ds(pid, md=outcome.challenge.md, pa_res="")
    fresh = _new(service, "inv-2")
    with pytest.raises(ThreeDSError):  # no transaction yet
        service.complete_3ds(fresh, md=outcome.challenge.md, pa_res=pa_res)
    assert _snapshot(service, pid) == before
    assert recorder.count(POST3DS) == 0


@pytest.mark.parametrize(("number", "answer", "code"), [
    (WITH_3DS, "decline", 5206), (NSF_3DS, "confirm", 5051),
])
def test_3ds_declines(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox,
    number: str, answer: str, code: int,
) -> None:
    pid = _new(service)
    outcome = service.pay(pid, cryptogram=card(number), ip_address=IP)
    assert outcome.challenge is not None
    tx_id = outcome.challenge.transaction_id
    result = service.complete_3ds(pid, md=tx_id,
                                  pa_res=cloudpayments_sandbox.pa_res_for(tx_id, answer))
    assert result.kind == "declined" and result.reason_code == code
    assert result.payment.status is PaymentStatus.FAILED
    replay = service.complete_3ds(pid, md=tx_id, pa_res=cloudpayments_sandbox.pa_res_for(tx_id))
    assert replay.kind == "declined" and replay.reason_code == code


def test_double_submit_from_8_threads_charges_once(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder
) -> None:
    pid = _new(service)
    packets = [card(NO_3DS) for _ in range(8)]
    results: list[PayOutcome] = together(
        8, lambda n: service.pay(pid, cryptogram=packets[n], ip_address=IP))
    kinds = sorted(r.kind for r in results)
    assert kinds.count("succeeded") == 1, kinds
    assert set(kinds) <= {"succeeded", "in_progress", "already_paid"}
    assert len(charges(cloudpayments_sandbox)) == 1
    assert recorder.count(CHARGE) == 1
    assert len(service.ledger.attempts(pid)) == 1


def test_the_attempts_unique_key_backs_the_row_lock(
    service: PaymentService, card: Card, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were the lock ever to let a second claim through, its attempt row would collide
    # with the first's (payment_id, number): the claim is rolled back, nothing is sent.
    pid = _new(service)
    before = _snapshot(service, pid)

    def collide(self: Unit, *args: Any, **kwargs: Any) -> None:
        raise sa.exc.IntegrityError("INSERT", {}, Exception("duplicate (payment_id, number)"))

    monkeypatch.setattr(Unit, "add_attempt", collide)
    outcome = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert outcome.kind == "in_progress"
    assert _snapshot(service, pid) == before
    assert recorder.paths == []


# --- two-stage ------------------------------------------------------------------------------


def test_auth_then_confirm(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox
) -> None:
    pid = _new(service, scheme="auth")
    outcome = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert outcome.kind == "authorized" and outcome.payment.status is PaymentStatus.AUTHORIZED
    (tx,) = charges(cloudpayments_sandbox)
    assert str(tx.status) == "Authorized"
    with pytest.raises(PaymentConflictError):
        service.confirm(pid, "100.01")
    confirmed = service.confirm(pid, "60.00")
    assert confirmed.status is PaymentStatus.SUCCEEDED and confirmed.amount == Decimal("60.00")
    assert str(tx.status) == "Completed" and tx.amount == Decimal("60.00")
    with pytest.raises(InvalidTransitionError):
        service.confirm(pid)
    with pytest.raises(PaymentConflictError):
        service.refund(pid, "60.01")
    assert service.refund(pid).status is PaymentStatus.REFUNDED


def test_auth_then_void(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox
) -> None:
    pid = _new(service, scheme="auth")
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    voided = service.void(pid)
    assert voided.status is PaymentStatus.CANCELLED
    (tx,) = charges(cloudpayments_sandbox)
    assert str(tx.status) == "Cancelled"
    for call in (service.void, service.confirm, service.refund):
        with pytest.raises(InvalidTransitionError):
            call(pid)
    with pytest.raises(InvalidTransitionError):
        service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)


def test_confirm_and_void_are_for_two_stage_payments_only(
    service: PaymentService, card: Card, recorder: Recorder
) -> None:
    pid = _new(service)
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    before = _snapshot(service, pid)
    for call in (service.void, service.confirm):
        with pytest.raises(PaymentConflictError):
            call(pid)
    unpaid = _new(service, "inv-2", scheme="auth")
    with pytest.raises(InvalidTransitionError):
        service.confirm(unpaid)
    with pytest.raises(InvalidTransitionError):
        service.void(unpaid)
    assert _snapshot(service, pid) == before
    assert recorder.paths == [CHARGE]


def test_an_authorization_the_gateway_cancelled_is_settled_by_refresh(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox
) -> None:
    pid = _new(service, scheme="auth")
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert service.refresh(pid).status is PaymentStatus.AUTHORIZED
    cloudpayments_sandbox.advance(timedelta(days=8))  # authorizations expire after 7 days
    assert service.refresh(pid).status is PaymentStatus.CANCELLED


# --- refunds --------------------------------------------------------------------------------


def test_partial_refunds_add_up_and_never_exceed(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder
) -> None:
    pid = _new(service)
    with pytest.raises(InvalidTransitionError):
        service.refund(pid)  # nothing paid yet
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert service.refund(pid, "30.00").refunded_amount == Decimal("30.00")
    second = service.refund(pid, Decimal("30"))
    assert second.refunded_amount == Decimal("60.00")
    assert second.status is PaymentStatus.SUCCEEDED
    assert second.refundable_amount == Decimal("40.00")
    before = _snapshot(service, pid)
    with pytest.raises(PaymentConflictError) as info:
        service.refund(pid, "40.01")
    assert info.value.payment_id == pid
    for bad in ("0", "-5", "1.001", "abc", 5.0):
        with pytest.raises(MoneyError):
            service.refund(pid, bad)  # type: ignore[arg-type]
    assert _snapshot(service, pid) == before
    last = service.refund(pid)
    assert last.status is PaymentStatus.REFUNDED and last.refunded_amount == Decimal("100.00")
    with pytest.raises(InvalidTransitionError):
        service.refund(pid, "0.01")
    (tx,) = charges(cloudpayments_sandbox)
    assert tx.refunded == Decimal("100.00")
    assert recorder.count("/payments/refund") == 3
    assert [a.amount for a in service.ledger.attempts(pid) if a.operation == "refund"] == [
        Decimal("30.00"), Decimal("30.00"), Decimal("40.00")]


def test_concurrent_refunds_never_exceed_the_amount(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox
) -> None:
    pid = _new(service)
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    results = together(6, lambda _n: service.refund(pid, "40.00"))
    done = [r for r in results if isinstance(r, Payment)]
    refused = [r for r in results if isinstance(r, PaymentConflictError | InvalidTransitionError)]
    payment = service.get(pid)
    assert len(done) + len(refused) == 6
    assert payment.refunded_amount == Decimal("40.00") * len(done) <= payment.amount
    (tx,) = charges(cloudpayments_sandbox)
    assert tx.refunded == payment.refunded_amount


# --- lost answers and reconciliation ---------------------------------------------------------


def _drop_charge(how: str, recorder: Recorder, sandbox: Sandbox) -> None:
    """Lose the charge's answer after the sandbox processed it."""
    if how == "transport":
        recorder.drop_after.add(CHARGE)
    else:
        sandbox.faults.add("drop", path=CHARGE, times=None)


def _heal(recorder: Recorder, sandbox: Sandbox) -> None:
    recorder.drop_after.clear()
    recorder.fail_before.clear()
    sandbox.faults.clear()


@pytest.mark.parametrize("how", ["transport", "sandbox_fault"])
def test_a_lost_answer_leaves_unknown_and_reconcile_settles_it(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder,
    changes: Changes, how: str,
) -> None:
    pid = _new(service)
    _drop_charge(how, recorder, cloudpayments_sandbox)
    outcome = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert outcome.kind == "unknown" and outcome.payment.status is PaymentStatus.UNKNOWN
    (attempt,) = service.ledger.attempts(pid)
    assert attempt.outcome == "unknown"
    # The client retried once with the same X-Request-ID: the sandbox replayed, not charged.
    assert recorder.count(CHARGE) == 2
    assert set(recorder.request_ids) == {attempt.request_id}
    assert len(charges(cloudpayments_sandbox)) == 1
    # A payer clicking again while it is unknown charges nothing.
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "unknown"
    assert recorder.count(CHARGE) == 2
    _heal(recorder, cloudpayments_sandbox)
    (settled,) = service.reconcile()
    assert settled.status is PaymentStatus.SUCCEEDED
    assert settled.gateway_transaction_id == charges(cloudpayments_sandbox)[0].id
    assert [a.outcome for a in service.ledger.attempts(pid)] == ["reconciled"]
    assert _statuses(service, pid) == ["created", "processing", "unknown", "succeeded"]
    assert changes.calls[-1] == (pid, "unknown", "succeeded")
    assert service.reconcile() == []


@pytest.mark.parametrize("how", ["transport", "sandbox_fault"])
def test_an_unknown_payment_the_gateway_never_saw_fails_after_the_grace_period(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder,
    clock: Clock, how: str,
) -> None:
    pid = _new(service)
    if how == "transport":
        recorder.fail_before.add(CHARGE)
    else:  # a 5xx without processing: the client cannot know that nothing happened
        cloudpayments_sandbox.faults.add("status", path=CHARGE, times=None, status=503)
    outcome = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert outcome.kind == "unknown"
    _heal(recorder, cloudpayments_sandbox)
    # Not found, but too young to call failed: the gateway may still be working on it.
    assert [p.status for p in service.reconcile()] == [PaymentStatus.UNKNOWN]
    clock.advance(service.stale_after)
    assert [p.status for p in service.reconcile()] == [PaymentStatus.FAILED]
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "succeeded"
    assert len(charges(cloudpayments_sandbox)) == 1


def test_a_lost_post3ds_answer_is_reconciled(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder
) -> None:
    pid = _new(service)
    outcome = service.pay(pid, cryptogram=card(WITH_3DS), ip_address=IP)
    assert outcome.challenge is not None
    tx_id = outcome.challenge.transaction_id
    recorder.drop_after.add(POST3DS)
    lost = service.complete_3ds(pid, md=tx_id, pa_res=cloudpayments_sandbox.pa_res_for(tx_id))
    assert lost.kind == "unknown"
    replay = service.complete_3ds(pid, md=tx_id, pa_res=cloudpayments_sandbox.pa_res_for(tx_id))
    assert replay.kind == "unknown"
    _heal(recorder, cloudpayments_sandbox)
    assert service.refresh(pid).status is PaymentStatus.SUCCEEDED
    assert service.complete_3ds(
        pid, md=tx_id, pa_res=cloudpayments_sandbox.pa_res_for(tx_id)).kind == "succeeded"
    assert recorder.count(POST3DS) == 2  # the client's own retry, same request id


def test_a_lost_confirm_answer_is_reconciled(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder
) -> None:
    pid = _new(service, scheme="auth")
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    recorder.drop_after.add("/payments/confirm")
    with pytest.raises(UnknownOutcomeError):
        service.confirm(pid, "60.00")
    assert service.get(pid).status is PaymentStatus.UNKNOWN
    _heal(recorder, cloudpayments_sandbox)
    settled = service.refresh(pid)
    assert settled.status is PaymentStatus.SUCCEEDED
    assert settled.amount == Decimal("60.00")  # what was captured
    assert [a.outcome for a in service.ledger.attempts(pid)] == ["authorized", "reconciled"]


def test_refresh_leaves_a_payment_alone_while_a_call_is_in_flight(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder,
    clock: Clock,
) -> None:
    pid = _new(service, scheme="auth")
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)

    def reconcile_meanwhile() -> None:
        # While the confirm's answer travels, a refresh must not even ask...
        calls = len(recorder.paths)
        assert service.refresh(pid).status is PaymentStatus.AUTHORIZED
        assert len(recorder.paths) == calls
        # ...unless the call is so old its worker is taken to be dead.
        clock.advance(service.stale_after)
        assert service.refresh(pid).status is PaymentStatus.SUCCEEDED

    recorder.meanwhile["/payments/confirm"] = reconcile_meanwhile
    confirmed = service.confirm(pid, "70.00")
    # The worker's answer came after reconciliation settled the payment: kept, completed.
    assert confirmed.status is PaymentStatus.SUCCEEDED and confirmed.amount == Decimal("70.00")
    # The lookup settled the confirm: its late answer does not finish it again.
    assert [a.outcome for a in service.ledger.attempts(pid)] == ["authorized", "reconciled"]
    assert _statuses(service, pid) == [
        "created", "processing", "authorized", "succeeded"]


@pytest.mark.parametrize(("number", "status"), [(NO_3DS, "succeeded"), (NSF, "failed")])
def test_a_payment_made_through_the_widget_is_found_by_refresh(
    service: PaymentService, card: Card, client: CloudPaymentsClient, recorder: Recorder,
    number: str, status: str,
) -> None:
    pid = _new(service)
    assert service.refresh(pid).status is PaymentStatus.CREATED  # not paid yet
    # checkout.js pays from the browser: the gateway has it, the ledger does not.
    with contextlib.suppress(PaymentDeclined):
        client.charge("100.00", ip_address=IP, cryptogram=card(number), invoice_id="inv-1")
    refreshed = service.refresh(pid)
    assert refreshed.status is PaymentStatus(status)
    assert refreshed.gateway_transaction_id is not None
    assert _statuses(service, pid) == ["created", "processing", status]
    assert service.ledger.attempts(pid) == []


def test_a_lost_refund_answer_blocks_refunds_until_reconciled(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder
) -> None:
    pid = _new(service)
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    service.refund(pid, "10.00")
    recorder.drop_after.add("/payments/refund")
    with pytest.raises(UnknownOutcomeError):
        service.refund(pid, "30.00")
    payment = service.get(pid)
    assert payment.status is PaymentStatus.SUCCEEDED and payment.refunded_amount == 10
    _heal(recorder, cloudpayments_sandbox)
    with pytest.raises(PaymentConflictError, match="reconcile"):
        service.refund(pid, "1.00")
    (settled,) = service.reconcile()
    assert settled.refunded_amount == Decimal("40.00")
    assert service.refund(pid).status is PaymentStatus.REFUNDED
    (tx,) = charges(cloudpayments_sandbox)
    assert tx.refunded == Decimal("100.00")


def test_a_lost_refund_is_reconciled_from_every_page_of_the_period(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder
) -> None:
    # /v2/payments/find answers only the latest operation of an invoice, so the refunds
    # are summed from /v2/payments/list; here they fill more than one page of 100, and
    # another payment's refund in the same period is not counted.
    other = _new(service, "inv-other")
    service.pay(other, cryptogram=card(NO_3DS), ip_address=IP)
    service.refund(other, "50.00")
    pid = _new(service, amount="200.00")
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    tx_id = service.get(pid).gateway_transaction_id
    assert tx_id is not None
    for _ in range(100):  # refunds the ledger never saw (made from the merchant account)
        service.client.refund(tx_id, "1.00")
    recorder.drop_after.add("/payments/refund")
    with pytest.raises(UnknownOutcomeError):
        service.refund(pid, "30.00")
    _heal(recorder, cloudpayments_sandbox)
    (settled,) = service.reconcile()
    assert settled.refunded_amount == Decimal("130.00")
    assert service.client.find_operation("inv-1").original_transaction_id == tx_id


def test_refunds_are_read_up_to_now_not_a_year_ahead(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder,
    clock: Clock,
) -> None:
    pid = _new(service)
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    clock.advance(timedelta(days=3))
    recorder.drop_after.add("/payments/refund")
    with pytest.raises(UnknownOutcomeError):
        service.refund(pid, "30.00")
    _heal(recorder, cloudpayments_sandbox)
    (settled,) = service.reconcile()
    assert settled.refunded_amount == Decimal("30.00")
    (body,) = [b for p, b in zip(recorder.paths, recorder.bodies, strict=True)
               if p == "/v2/payments/list"]
    period = jsoncodec.loads(body)
    end = datetime.fromisoformat(period["CreatedDateLte"])
    assert clock.now < end <= clock.now + timedelta(hours=1)  # now, with the clocks' margin


def test_refunds_the_ledger_knows_are_not_asked_for(
    service: PaymentService, card: Card, recorder: Recorder
) -> None:
    # No refund call of ours is open: every refund is counted already; no call.
    pid = _new(service)
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    service.refund(pid, "10.00")
    payment = service.get(pid)
    assert payment.gateway_transaction_id is not None
    tx = service.client.get_payment(payment.gateway_transaction_id)
    asked = len(recorder.paths)
    assert service._gateway_refunds(payment, tx) is None
    assert len(recorder.paths) == asked


def test_a_stale_claim_of_a_dead_worker_is_settled(
    service: PaymentService, ledger: Ledger, clock: Clock, recorder: Recorder
) -> None:
    pid = _new(service)
    with ledger.update(pid) as unit:  # a worker claims it, then dies before the call
        unit.transition("processing")
        unit.add_attempt("charge", amount=unit.payment.amount)
    assert [p.status for p in service.reconcile()] == [PaymentStatus.PROCESSING]
    assert recorder.paths == []  # a live claim is not even looked up
    clock.advance(service.stale_after)
    assert [p.status for p in service.reconcile()] == [PaymentStatus.FAILED]


def test_reconcile_goes_on_when_one_lookup_fails(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder,
    caplog: pytest.LogCaptureFixture, clock: Clock,
) -> None:
    first = _new(service, "inv-1")
    clock.advance(timedelta(seconds=1))  # reconcile takes the oldest first
    second = _new(service, "inv-2")
    recorder.drop_after.add(CHARGE)
    for pid in (first, second):
        assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "unknown"
    recorder.drop_after.clear()
    cloudpayments_sandbox.faults.add("status", path="/payments/find", times=2, status=500)
    with caplog.at_level(logging.WARNING, "checkout_kit.ledger.service"):
        settled = service.reconcile()
    assert [p.id for p in settled] == [second]
    assert "not refreshed" in caplog.text
    assert service.get(first).status is PaymentStatus.UNKNOWN
    assert [p.id for p in service.reconcile()] == [first]


# --- bad input and refused requests ------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"cryptogram": ""}, {"cryptogram": None}, {"ip_address": ""}, {"ip_address": 17},
    {"name": ""}, {"email": ""},
])
def test_bad_pay_arguments_change_nothing(
    service: PaymentService, card: Card, recorder: Recorder, kwargs: dict[str, Any]
) -> None:
    pid = _new(service)
    before = _snapshot(service, pid)
    args: dict[str, Any] = {"cryptogram": card(NO_3DS), "ip_address": IP, **kwargs}
    with pytest.raises(InvalidRequestError):
        service.pay(pid, **args)
    assert _snapshot(service, pid) == before
    assert recorder.paths == []


def test_unknown_payment_ids(service: PaymentService, card: Card) -> None:
    for call in (service.confirm, service.void, service.refund, service.refresh, service.get):
        with pytest.raises(PaymentNotFoundError):
            call("pay_nope")
    with pytest.raises(PaymentNotFoundError):
        service.pay("pay_nope", cryptogram=card(NO_3DS), ip_address=IP)
    with pytest.raises(PaymentNotFoundError):
        service.complete_3ds("pay_nope", md="1", pa_res="x")


def test_a_garbage_cryptogram_is_the_gateways_decline(
    service: PaymentService, recorder: Recorder
) -> None:
    pid = _new(service)
    outcome = service.pay(pid, cryptogram="not a packet", ip_address=IP)
    assert outcome.kind == "declined" and outcome.reason_code == 5030
    assert outcome.payment.status is PaymentStatus.FAILED


def test_refused_credentials_fail_the_attempt_and_raise(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox
) -> None:
    pid = _new(service)
    wrong = CloudPaymentsClient(
        cloudpayments_sandbox.public_id, "wrong-secret", base_url=SANDBOX_BASE_URL,
        transport=httpx.WSGITransport(app=cloudpayments_sandbox.app),
    )
    bad = PaymentService(service.ledger, wrong)
    with pytest.raises(AuthenticationError):
        bad.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    payment = service.get(pid)
    assert payment.status is PaymentStatus.FAILED
    assert [a.outcome for a in service.ledger.attempts(pid)] == ["error"]
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "succeeded"
    wrong.close()


def test_a_failing_hook_does_not_undo_the_change(
    ledger: Ledger, client: CloudPaymentsClient, card: Card, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(*_args: Any) -> None:
        raise RuntimeError("signal receiver broke")

    service = PaymentService(ledger, client, on_change=hook)
    pid = _new(service)
    with caplog.at_level(logging.ERROR, "checkout_kit.ledger.service"):
        assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "succeeded"
    assert "on_change hook failed" in caplog.text
    assert service.get(pid).status is PaymentStatus.SUCCEEDED


def test_create_payment_through_the_service(service: PaymentService) -> None:
    first = service.create_payment(
        invoice_id="inv-9", amount="10", currency="RUB", description="Nine", metadata={"k": "v"})
    assert service.create_payment(
        invoice_id="inv-9", amount="10.00", currency="RUB",
        description="Nine", metadata={"k": "v"}) == first
    with pytest.raises(PaymentConflictError):
        service.create_payment(invoice_id="inv-9", amount="11", currency="RUB", description="Nine")
    assert "PaymentService(" in repr(service)


def test_cancel_an_unpaid_payment(service: PaymentService, card: Card, recorder: Recorder) -> None:
    pid = _new(service)
    assert service.cancel(pid).status is PaymentStatus.CANCELLED
    with pytest.raises(InvalidTransitionError):
        service.cancel(pid)
    declined = _new(service, "inv-2")
    service.pay(declined, cryptogram=card(NSF), ip_address=IP)
    assert service.cancel(declined).status is PaymentStatus.CANCELLED
    paid = _new(service, "inv-3")
    service.pay(paid, cryptogram=card(NO_3DS), ip_address=IP)
    with pytest.raises(InvalidTransitionError):
        service.cancel(paid)
    assert recorder.paths == [CHARGE, CHARGE]


def test_an_abandoned_3ds_challenge_may_be_paid_again_later(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, clock: Clock,
    recorder: Recorder,
) -> None:
    pid = _new(service)
    first = service.pay(pid, cryptogram=card(WITH_3DS), ip_address=IP)
    assert first.challenge is not None
    # Soon after, a second click is the same attempt: nothing is sent.
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "in_progress"
    assert recorder.count(CHARGE) == 1
    clock.advance(service.stale_after)
    second = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert second.kind == "succeeded"
    # The old challenge can no longer finish through us.
    old = first.challenge.transaction_id
    with pytest.raises(ThreeDSError):
        service.complete_3ds(pid, md=old, pa_res=cloudpayments_sandbox.pa_res_for(old))
    assert recorder.count(POST3DS) == 0
    completed = [t for t in charges(cloudpayments_sandbox) if str(t.status) == "Completed"]
    assert len(completed) == 1


def test_an_accepted_answer_in_an_odd_status_is_not_guessed(
    ledger: Ledger, card: Card
) -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"Success": True, "Message": None, "Model": {
            "TransactionId": 4242, "Amount": 100, "Currency": "RUB",
            "Status": "AwaitingAuthentication", "ReasonCode": 0,
        }})

    odd = CloudPaymentsClient("pk_odd", "secret", transport=httpx.MockTransport(gateway))
    service = PaymentService(ledger, odd)
    pid = _new(service)
    outcome = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert outcome.kind == "unknown"
    assert outcome.payment.gateway_transaction_id == 4242
    (attempt,) = ledger.attempts(pid)
    assert attempt.outcome == "unknown" and "AwaitingAuthentication" in (attempt.error or "")
    odd.close()


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(asks=st.lists(st.integers(min_value=1, max_value=6000), min_size=1, max_size=6))
def test_property_refunds_add_up_and_never_exceed(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, asks: list[int]
) -> None:
    pid = service.create_payment(
        invoice_id=f"prop-{len(charges(cloudpayments_sandbox))}", amount="50.00",
                                 currency="RUB", description="property").id
    service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    accepted = Decimal(0)
    for cents in asks:
        amount = Decimal(cents).scaleb(-2)
        try:
            payment = service.refund(pid, amount)
        except (PaymentConflictError, InvalidTransitionError):
            assert accepted + amount > Decimal("50.00")
        else:
            accepted += amount
            assert payment.refunded_amount == accepted
    payment = service.get(pid)
    assert payment.refunded_amount == accepted <= payment.amount
    assert (payment.status is PaymentStatus.REFUNDED) == (accepted == payment.amount)
    (tx,) = [t for t in charges(cloudpayments_sandbox) if t.id == payment.gateway_transaction_id]
    assert tx.refunded == accepted


@pytest.mark.parametrize("delta", [timedelta(0), timedelta(seconds=-1)])
def test_stale_after_must_be_positive(
    ledger: Ledger, client: CloudPaymentsClient, delta: timedelta
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        PaymentService(ledger, client, stale_after=delta)
    assert info.value.field == "stale_after"


# --- a new card attempt after an earlier transaction ----------------------------------------


def test_a_lost_retry_after_a_decline_is_settled_from_the_new_charge(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder,
) -> None:
    # The retry's charge went through at the gateway but its answer was lost: the
    # payment still holds the declined transaction, which must not settle it failed
    # (the payer would pay a third time for a charge already taken).
    pid = _new(service)
    declined = service.pay(pid, cryptogram=card(NSF), ip_address=IP)
    old = declined.payment.gateway_transaction_id
    recorder.drop_after.add(CHARGE)
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "unknown"
    _heal(recorder, cloudpayments_sandbox)
    settled = service.refresh(pid)  # at once, as the result page does
    (completed,) = [t for t in charges(cloudpayments_sandbox, "inv-1")
                    if str(t.status) == "Completed"]
    assert settled.status is PaymentStatus.SUCCEEDED
    assert settled.gateway_transaction_id == completed.id != old
    assert settled.reason_code is None


def test_a_retry_that_never_reached_the_gateway_is_not_settled_from_the_old_decline(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder,
    clock: Clock,
) -> None:
    pid = _new(service)
    service.pay(pid, cryptogram=card(NSF), ip_address=IP)
    recorder.fail_before.add(CHARGE)
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "unknown"
    _heal(recorder, cloudpayments_sandbox)
    # The gateway's latest operation for the invoice is the old decline: it says
    # nothing about the new charge, which may still be on its way.
    assert service.refresh(pid).status is PaymentStatus.UNKNOWN
    clock.advance(service.stale_after)
    failed = service.refresh(pid)
    assert failed.status is PaymentStatus.FAILED
    assert service.ledger.history(pid)[-1].note == "reconciled: unknown to the gateway"


def test_a_lost_retry_after_an_abandoned_challenge_never_goes_back_to_it(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox, recorder: Recorder,
    clock: Clock,
) -> None:
    pid = _new(service)
    first = service.pay(pid, cryptogram=card(WITH_3DS), ip_address=IP)
    assert first.challenge is not None
    clock.advance(service.stale_after)
    recorder.fail_before.add(CHARGE)
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "unknown"
    _heal(recorder, cloudpayments_sandbox)
    assert service.refresh(pid).status is PaymentStatus.UNKNOWN
    clock.advance(service.stale_after)
    assert service.refresh(pid).status is PaymentStatus.FAILED
    assert _statuses(service, pid) == [
        "created", "processing", "awaiting_3ds", "processing", "unknown", "failed"]


def test_a_stale_claim_after_a_challenge_is_not_settled_from_the_old_transaction(
    service: PaymentService, ledger: Ledger, card: Card, clock: Clock,
) -> None:
    pid = _new(service)
    assert service.pay(pid, cryptogram=card(WITH_3DS), ip_address=IP).kind == "three_ds"
    clock.advance(service.stale_after)
    with ledger.update(pid) as unit:  # a retry's worker claims it, then dies
        unit.transition("processing")
        unit.add_attempt("charge", amount=unit.payment.amount)
    clock.advance(service.stale_after)
    assert service.refresh(pid).status is PaymentStatus.FAILED


def test_a_failed_payment_paid_again_through_the_widget_is_settled_by_refresh(
    service: PaymentService, card: Card, client: CloudPaymentsClient,
) -> None:
    pid = _new(service)
    service.pay(pid, cryptogram=card(NSF), ip_address=IP)
    assert service.refresh(pid).status is PaymentStatus.FAILED  # the same decline
    client.charge("100.00", ip_address=IP, cryptogram=card(NO_3DS), invoice_id="inv-1")
    paid = service.refresh(pid)
    assert paid.status is PaymentStatus.SUCCEEDED
    assert _statuses(service, pid)[-2:] == ["processing", "succeeded"]


def test_a_widget_retry_of_a_failed_payment_is_followed_by_its_own_transaction(
    service: PaymentService, card: Card, client: CloudPaymentsClient,
    cloudpayments_sandbox: Sandbox,
) -> None:
    # After a form decline the payer pays in the widget with 3-D Secure: later
    # refreshes follow the widget's transaction, not the declined attempt's.
    pid = _new(service)
    service.pay(pid, cryptogram=card(NSF), ip_address=IP)
    challenge = client.charge("100.00", ip_address=IP, cryptogram=card(WITH_3DS),
                              invoice_id="inv-1")
    assert service.refresh(pid).status is PaymentStatus.AWAITING_3DS
    assert isinstance(challenge, ThreeDSChallenge)
    client.post3ds(challenge.transaction_id,
                   cloudpayments_sandbox.pa_res_for(challenge.transaction_id))
    done = service.refresh(pid)
    assert done.status is PaymentStatus.SUCCEEDED
    assert done.gateway_transaction_id == challenge.transaction_id
