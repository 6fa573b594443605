"""Regression tests of the adversarial review of the ledger's money flows: each a way the
ledger disagreed with the money that moved, reproduced with the sandbox, on SQLite and
PostgreSQL.

Each test states the defect and the behaviour expected. A defect still present is
marked ``xfail(strict=True, raises=AssertionError)``: the suite stays green while it
lasts, and the test fails loudly (XPASS) the moment a fix lands, so the marker is
removed with the fix. The shop-level findings are in ``tests/shop/test_attack_findings.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest

from checkout_kit.client import CloudPaymentsClient
from checkout_kit.errors import PaymentDeclined, UnknownOutcomeError
from checkout_kit.ledger import PaymentService, PaymentStatus
from checkout_kit.ledger.inbox import Applied, CheckDecider, Inbox
from checkout_kit.ledger.retention import mask_body
from checkout_kit.models import ThreeDSChallenge
from checkout_kit.notifications import CheckCode
from checkout_kit.sandbox import Sandbox
from checkout_kit.testing import build_notification, sample_fields
from checkout_kit.webhooks import CheckRules, receive

from .conftest import Clock, Recorder, charges

Card = Callable[[str], str]
S = PaymentStatus

NO_3DS = "4000 0000 0000 3055"
DECLINED = "4000 0566 5566 5556"  # 5051, no 3-D Secure
IP = "203.0.113.7"
CHARGE = "/payments/cards/charge"
AUTH = "/payments/cards/auth"
CONFIRM = "/payments/confirm"
REFUND = "/payments/refund"


def deliver(inbox: Inbox, sandbox: Sandbox, kind: str, fields: dict[str, str],
            decide: CheckDecider = lambda _n, _p: 0) -> Applied:
    """A signed notification, verified, recorded and applied as the shop's route would."""
    sent = build_notification(kind, sample_fields(kind, fields), sandbox.api_secret)
    received = receive("POST", sent.body, sent.headers, sandbox.api_secret, expected_type=kind)
    record = inbox.record(type=kind, method="POST", body=sent.body, headers={},
                          remote_addr=None, signature_valid=True)
    return inbox.apply(record.id, received, decide)


def refund_fields(refund_tx: int, of_tx: int, invoice_id: str, amount: str) -> dict[str, str]:
    """A Refund notification's fields: ``refund_tx`` refunds ``amount`` of ``of_tx``."""
    return {"TransactionId": str(refund_tx), "PaymentTransactionId": str(of_tx),
            "InvoiceId": invoice_id, "Amount": amount}


def payment_fields(tx: int, invoice_id: str, amount: str,
                   status: str = "Completed") -> dict[str, str]:
    """A Pay (or Confirm) notification's fields for transaction ``tx`` in RUB."""
    return {"TransactionId": str(tx), "InvoiceId": invoice_id, "Amount": amount,
            "Currency": "RUB", "Status": status}


def assert_reconciled_with_the_refund(service: PaymentService, pid: str,
                                      refund: Applied) -> None:
    """After reconcile the payment is succeeded and the 30.00 refund counted, or its
    Refund notification was answered non-zero (the gateway delivers it again)."""
    service.reconcile()
    payment = service.get(pid)
    assert payment.status is S.SUCCEEDED, payment
    assert payment.refunded_amount == Decimal("30.00") or refund.code != 0, (
        refund.code, refund.record.outcome, payment)


def gateway_refunded(sandbox: Sandbox, tx_id: int) -> Decimal:
    """What the gateway refunded of transaction ``tx_id``."""
    return sum((t.amount for t in sandbox.state.transactions.values()
                if int(t.type) != 0 and t.original_transaction_id == tx_id), Decimal(0))


# --- (1) a lost charge answer after a stale takeover ------------------------------------


def test_lost_answer_after_stale_takeover_is_not_a_decline(
    service: PaymentService, card: Card, recorder: Recorder, clock: Clock,
    cloudpayments_sandbox: Sandbox,
) -> None:
    """Defect 1. The charge call stalls past ``stale_after``; another instance's refresh
    takes the payment over (the gateway has no charge yet: failed); then the gateway
    charges and the answer is lost. Expected: the payer is not told 'declined' (the
    outcome is unknown, not guessed) and reconcile finds the charge: succeeded.
    On main: outcome 'declined', the payment 'failed' for good, the money taken."""
    pid = service.create_payment(
        invoice_id="inv-1", amount="100.00", currency="RUB", description="Order").id

    def take_over() -> None:
        clock.advance(service.stale_after)
        service.refresh(pid)  # another instance: the charge looks dead, the gateway has none

    recorder.before[CHARGE] = take_over
    recorder.drop_after.add(CHARGE)  # the gateway charges, the answer is lost
    outcome = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    (tx,) = charges(cloudpayments_sandbox, "inv-1")
    assert str(tx.status) == "Completed"  # the payer's money was taken
    recorder.drop_after.clear()
    service.reconcile()
    payment = service.get(pid)
    assert outcome.kind != "declined", outcome
    assert (payment.status, payment.gateway_transaction_id) == (S.SUCCEEDED, tx.id), payment


# --- (2) a lost refund answer after a stale takeover ------------------------------------


def _refund_taken_over_then_lost(service: PaymentService, card: Card, recorder: Recorder,
                                 clock: Clock) -> tuple[str, int]:
    """A paid payment whose refund of 30.00 stalls past ``stale_after``, is taken over
    by another instance's refresh (the gateway has no refund yet), then reaches the
    gateway with its answer lost. Returns (payment id, charge transaction id)."""
    pid = service.create_payment(
        invoice_id="inv-1", amount="100.00", currency="RUB", description="Order").id
    paid = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
    assert paid.kind == "succeeded" and paid.payment.gateway_transaction_id is not None

    def take_over() -> None:
        clock.advance(service.stale_after)
        service.refresh(pid)

    recorder.before[REFUND] = take_over
    recorder.drop_after.add(REFUND)
    with pytest.raises(UnknownOutcomeError):
        service.refund(pid, "30.00")
    recorder.drop_after.clear()
    return pid, paid.payment.gateway_transaction_id


def test_lost_refund_answer_after_stale_takeover_is_counted(
    service: PaymentService, card: Card, recorder: Recorder, clock: Clock,
    cloudpayments_sandbox: Sandbox,
) -> None:
    """Defect 2. Expected: reconcile ("reconcile first", as the refund's error says)
    counts the 30.00 the gateway refunded. On main: refunded stays 0.00."""
    pid, tx = _refund_taken_over_then_lost(service, card, recorder, clock)
    service.reconcile()
    assert gateway_refunded(cloudpayments_sandbox, tx) == Decimal("30.00")
    payment = service.get(pid)
    assert payment.refunded_amount == Decimal("30.00"), payment


def test_after_a_lost_refund_the_ledger_shows_it_before_the_shop_refunds_again(
    service: PaymentService, card: Card, recorder: Recorder, clock: Clock,
    cloudpayments_sandbox: Sandbox,
) -> None:
    """Defect 2, the shop's side. The shop got UnknownOutcomeError and reconciled; on
    main the ledger then said nothing was refunded, so the shop refunded again (gateway
    60.00, ledger 30.00). Expected: reconcile counts the lost refund, so the shop sees it
    before it decides, and a second refund it still makes is counted as the gateway
    counts it (no heuristic turns a deliberate refund into a no-op)."""
    pid, tx = _refund_taken_over_then_lost(service, card, recorder, clock)
    service.reconcile()
    assert service.get(pid).refunded_amount == Decimal("30.00")
    service.refund(pid, "30.00")
    assert gateway_refunded(cloudpayments_sandbox, tx) == Decimal("60.00")
    assert service.get(pid).refunded_amount == Decimal("60.00")


# --- (3) a decline from another tab after our charge's answer was lost ------------------


def test_a_later_decline_of_another_tab_does_not_fail_a_charged_payment(
    service: PaymentService, card: Card, client: CloudPaymentsClient, recorder: Recorder,
    clock: Clock, cloudpayments_sandbox: Sandbox,
) -> None:
    """Defect 3. Our charge's answer is lost (unknown) although the gateway took the
    money; in another tab the payer tries the widget with another card and is declined.
    Expected: once stale_after has passed reconcile settles the payment succeeded from
    our charge (or leaves it unknown), never failed. On main: 'failed', the charge
    marked reconciled, the payer told 'declined' while charged."""
    pid = service.create_payment(
        invoice_id="inv-1", amount="100.00", currency="RUB", description="Order").id
    recorder.drop_after.add(CHARGE)
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "unknown"
    recorder.drop_after.clear()
    with pytest.raises(PaymentDeclined):  # the widget in another tab, another card
        client.charge("100.00", ip_address=IP, cryptogram=card(DECLINED), invoice_id="inv-1")
    ours = [t for t in charges(cloudpayments_sandbox, "inv-1") if str(t.status) == "Completed"]
    assert len(ours) == 1  # the payer's money was taken by our charge
    clock.advance(service.stale_after)
    service.reconcile()
    payment = service.get(pid)
    assert payment.status in (S.SUCCEEDED, S.UNKNOWN), payment


# --- (4) a Refund notification before the ledger settled the payment --------------------


def test_refund_notification_before_a_delayed_pay_is_not_lost(
    service: PaymentService, card: Card, client: CloudPaymentsClient,
    cloudpayments_sandbox: Sandbox,
) -> None:
    """Defect 4. The payer pays through the widget, the back office refunds 30.00 at
    once, and the Pay notification (its first delivery failed) arrives after the
    Refund. Expected: the refund is counted, or the Refund answered non-zero so the
    gateway delivers it again. On main: answered 0 and lost."""
    pid = service.create_payment(
        invoice_id="inv-1", amount="100.00", currency="RUB", description="Order").id
    paid = client.charge("100.00", ip_address=IP, cryptogram=card(NO_3DS), invoice_id="inv-1")
    assert not isinstance(paid, ThreeDSChallenge)
    refund = client.refund(paid.transaction_id, "30.00")
    inbox = Inbox(service.ledger)
    first = deliver(inbox, cloudpayments_sandbox, "Refund", refund_fields(
        refund.transaction_id, paid.transaction_id, "inv-1", "30.00"))
    pay = deliver(inbox, cloudpayments_sandbox, "Pay", payment_fields(
        paid.transaction_id, "inv-1", "100.00"))
    assert pay.code == 0 and service.get(pid).status is S.SUCCEEDED
    assert_reconciled_with_the_refund(service, pid, first)


def test_refund_notification_before_a_delayed_confirm_is_not_lost(
    service: PaymentService, card: Card, client: CloudPaymentsClient,
    cloudpayments_sandbox: Sandbox,
) -> None:
    """Defect 4. Two-stage: held through our page, captured and partly refunded in the
    back office; the Confirm notification (first delivery failed) arrives after the
    Refund. Expected: the refund is counted, or the Refund answered non-zero. On main:
    answered 0 ('applied'), refunded 0.00."""
    pid = service.create_payment(
        invoice_id="inv-2", amount="100.00", currency="RUB", description="Order", scheme="auth").id
    held = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).payment
    tx = held.gateway_transaction_id
    assert tx is not None
    client.confirm(tx, "100.00")
    refund = client.refund(tx, "30.00")
    inbox = Inbox(service.ledger)
    first = deliver(inbox, cloudpayments_sandbox, "Refund", refund_fields(
        refund.transaction_id, tx, "inv-2", "30.00"))
    deliver(inbox, cloudpayments_sandbox, "Confirm", payment_fields(tx, "inv-2", "100.00"))
    assert_reconciled_with_the_refund(service, pid, first)


def test_refund_notification_while_unknown_is_not_lost(
    service: PaymentService, card: Card, client: CloudPaymentsClient, recorder: Recorder,
    cloudpayments_sandbox: Sandbox,
) -> None:
    """Defect 4. Our confirm's answer is lost (payment unknown); the back office refunds
    30.00 of the captured payment. Expected: once reconcile settles it succeeded, the
    refund is counted, or the Refund was answered non-zero. On main: answered 0, the
    payment succeeded with 0.00 refunded."""
    pid = service.create_payment(
        invoice_id="inv-1", amount="100.00", currency="RUB", description="Order", scheme="auth").id
    held = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).payment
    assert held.status is S.AUTHORIZED and held.gateway_transaction_id is not None
    tx = held.gateway_transaction_id
    recorder.drop_after.add(CONFIRM)
    with pytest.raises(UnknownOutcomeError):
        service.confirm(pid)
    recorder.drop_after.clear()
    assert service.get(pid).status is S.UNKNOWN
    refund = client.refund(tx, "30.00")  # the back office
    applied = deliver(Inbox(service.ledger), cloudpayments_sandbox, "Refund", refund_fields(
        refund.transaction_id, tx, "inv-1", "30.00"))
    assert_reconciled_with_the_refund(service, pid, applied)


def test_a_deferred_refund_is_counted_once_when_delivered_again(
    service: PaymentService, card: Card, client: CloudPaymentsClient,
    cloudpayments_sandbox: Sandbox,
) -> None:
    """Defect 4, the other half: the Refund deferred before the delayed Pay is counted
    once its redelivery comes after the Pay, and a further delivery changes nothing."""
    pid = service.create_payment(
        invoice_id="inv-1", amount="100.00", currency="RUB", description="Order").id
    paid = client.charge("100.00", ip_address=IP, cryptogram=card(NO_3DS), invoice_id="inv-1")
    assert not isinstance(paid, ThreeDSChallenge)
    refund = client.refund(paid.transaction_id, "30.00")
    inbox = Inbox(service.ledger)
    fields = refund_fields(refund.transaction_id, paid.transaction_id, "inv-1", "30.00")
    first = deliver(inbox, cloudpayments_sandbox, "Refund", fields)
    assert (first.code, first.record.outcome, first.applied) == (13, "deferred", False)
    deliver(inbox, cloudpayments_sandbox, "Pay", payment_fields(
        paid.transaction_id, "inv-1", "100.00"))
    again = deliver(inbox, cloudpayments_sandbox, "Refund", fields)
    assert (again.code, again.record.outcome) == (0, "applied"), again.record
    last = deliver(inbox, cloudpayments_sandbox, "Refund", fields)
    assert (last.code, last.record.outcome) == (0, "duplicate"), last.record
    assert service.get(pid).refunded_amount == Decimal("30.00")


def test_a_refund_of_another_transaction_than_a_settled_payments_is_not_deferred(
    service: PaymentService, card: Card, client: CloudPaymentsClient,
    cloudpayments_sandbox: Sandbox,
) -> None:
    """Defect 4's bound: a Refund of a transaction that is provably not the payment's
    (the payment is paid by another) is recorded as a mismatch and answered 0, not
    deferred to the end of the gateway's retries; nothing is counted."""
    pid = service.create_payment(
        invoice_id="inv-1", amount="100.00", currency="RUB", description="Order").id
    ours = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).payment
    assert ours.status is S.SUCCEEDED
    other = client.charge("100.00", ip_address=IP, cryptogram=card(NO_3DS), invoice_id="inv-1")
    assert not isinstance(other, ThreeDSChallenge)
    refund = client.refund(other.transaction_id, "100.00")
    applied = deliver(Inbox(service.ledger), cloudpayments_sandbox, "Refund", refund_fields(
        refund.transaction_id, other.transaction_id, "inv-1", "100.00"))
    assert (applied.code, applied.record.outcome) == (0, "mismatch"), applied.record
    assert service.get(pid).refunded_amount == Decimal("0")


def test_the_refund_of_a_transaction_recorded_as_a_problem_is_not_deferred(
    service: PaymentService, card: Card, client: CloudPaymentsClient,
    cloudpayments_sandbox: Sandbox,
) -> None:
    """Defect 4's bound, before the payment is settled: a tampered widget charged 50.00
    on the invoice of a 100.00 payment (its Pay recorded a mismatch problem: refund it).
    The shop's refund of it is not the payment's: recorded, answered 0, not deferred."""
    pid = service.create_payment(
        invoice_id="inv-1", amount="100.00", currency="RUB", description="Order").id
    wrong = client.charge("50.00", ip_address=IP, cryptogram=card(NO_3DS), invoice_id="inv-1")
    assert not isinstance(wrong, ThreeDSChallenge)
    inbox = Inbox(service.ledger)
    pay = deliver(inbox, cloudpayments_sandbox, "Pay", payment_fields(
        wrong.transaction_id, "inv-1", "50.00"))
    assert pay.record.outcome == "mismatch" and service.get(pid).status is S.CREATED
    refund = client.refund(wrong.transaction_id, "50.00")
    applied = deliver(inbox, cloudpayments_sandbox, "Refund", refund_fields(
        refund.transaction_id, wrong.transaction_id, "inv-1", "50.00"))
    assert (applied.code, applied.record.outcome) == (0, "mismatch"), applied.record
    assert service.get(pid).refunded_amount == Decimal("0")


# --- (5) a cancelled hold found by invoice -----------------------------------------------


@pytest.mark.parametrize("scheme", ["auth", "charge"])
def test_a_cancelled_hold_found_by_invoice_never_sticks_the_payment(
    service: PaymentService, card: Card, client: CloudPaymentsClient, clock: Clock,
    scheme: str,
) -> None:
    """Defect 5. A two-stage hold on the invoice made by the widget (the shop's own Dual
    widget for an auth payment, a tampered one for a charge payment) is voided. Expected:
    refresh and reconcile never leave the payment 'processing' with no call in flight;
    a charge payment can still be paid. On main: 'processing' for good."""
    pid = service.create_payment(
        invoice_id="inv-1", amount="100.00", currency="RUB", description="Order", scheme=scheme).id
    held = client.auth("100.00", ip_address=IP, cryptogram=card(NO_3DS), invoice_id="inv-1")
    assert not isinstance(held, ThreeDSChallenge)
    client.void(held.transaction_id)  # the back office releases it (or it expires)
    refreshed = service.refresh(pid)
    clock.advance(timedelta(hours=1))
    service.reconcile()
    after = service.get(pid)
    assert after.status is not S.PROCESSING, (refreshed, after)
    if scheme == "charge":  # the payer may still pay the order
        outcome = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP)
        assert outcome.kind == "succeeded", outcome


# --- (6) a lost auth answer, then a capture in the back office ---------------------------


def test_lost_auth_answer_then_back_office_capture_settles(
    service: PaymentService, card: Card, client: CloudPaymentsClient, recorder: Recorder,
    cloudpayments_sandbox: Sandbox,
) -> None:
    """Defect 6. The auth's answer is lost (unknown); the back office captures the hold
    in full before reconcile runs. Expected: reconcile settles the payment succeeded on
    that transaction with no problem recorded. On main: unknown forever, and a
    'mismatch' problem (signalled as money to hand back)."""
    pid = service.create_payment(
        invoice_id="inv-1", amount="100.00", currency="RUB", description="Order", scheme="auth").id
    recorder.drop_after.add(AUTH)
    assert service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).kind == "unknown"
    recorder.drop_after.clear()
    (tx,) = charges(cloudpayments_sandbox, "inv-1")
    client.confirm(tx.id, "100.00")  # the back office captures the hold in full
    for _ in range(2):
        service.reconcile()
    payment = service.get(pid)
    problems = service.ledger.problems(pid)
    assert (payment.status, payment.gateway_transaction_id) == (S.SUCCEEDED, tx.id), payment
    assert problems == [], problems


# --- (7) a subscription's Pay ------------------------------------------------------------


def test_a_subscriptions_charge_is_not_a_duplicate_to_refund(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox,
) -> None:
    """Defect 7. docs/gateway.md §5.3: a subscription's charges name the invoice of the
    payment that started it (so Check sends them to the unowned rules). Expected: their
    Pay notification is not a 'duplicate' of that payment and records no problem. On
    main: outcome payment_duplicate, a problem listed 'for the shop to refund'."""
    pid = service.create_payment(
        invoice_id="sub-1", amount="100.00", currency="RUB", description="Magazine").id
    first = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).payment
    assert first.status is S.SUCCEEDED and first.gateway_transaction_id is not None
    inbox = Inbox(service.ledger)
    fields = {**payment_fields(first.gateway_transaction_id + 1000, "sub-1", "100.00"),
              "SubscriptionId": "sc_8cf8a9338fb8ebf7202b08d09c938"}
    check = deliver(inbox, cloudpayments_sandbox, "Check", fields,
                    # The extension's rules: accepting an unowned Check is opt-in.
                    decide=lambda n, p: CheckRules(unowned_default=CheckCode.ACCEPT).decide(
                        n, p, now=service.ledger.now()))
    assert check.code == 0  # the Check treats it as a payment the ledger does not own
    applied = deliver(inbox, cloudpayments_sandbox, "Pay", fields)
    assert applied.record.outcome != "payment_duplicate", applied.record
    assert service.ledger.problems(pid) == []


# --- (8) a late Pay of the own hold after a partial capture ------------------------------


def test_a_late_pay_of_the_own_hold_after_a_partial_capture_is_no_problem(
    service: PaymentService, card: Card, cloudpayments_sandbox: Sandbox,
) -> None:
    """Defect 8. A two-stage payment is captured in part (60 of 100: its amount becomes
    60); its Pay notification, retried, then arrives with Status Authorized and 100.00.
    Expected: it is the payment's own transaction, recorded (or a duplicate), no problem.
    On main: a 'mismatch' problem, signalled as money that does not belong to it."""
    pid = service.create_payment(
        invoice_id="inv-1", amount="100.00", currency="RUB", description="Order", scheme="auth").id
    held = service.pay(pid, cryptogram=card(NO_3DS), ip_address=IP).payment
    assert held.status is S.AUTHORIZED and held.gateway_transaction_id is not None
    captured = service.confirm(pid, "60.00")
    assert (captured.status, captured.amount) == (S.SUCCEEDED, Decimal("60.00"))
    applied = deliver(Inbox(service.ledger), cloudpayments_sandbox, "Pay", payment_fields(
        held.gateway_transaction_id, "inv-1", "100.00", status="Authorized"))
    assert applied.code == 0
    assert service.ledger.problems(pid) == [], service.ledger.problems(pid)
    assert applied.record.outcome in ("recorded", "duplicate"), applied.record.outcome


# --- (9) a body the masking cannot write back --------------------------------------------


@pytest.mark.parametrize("body", [
    b'{"Amount": 1e400}',  # a kept field whose number cannot be written back
    b'{"TransactionId": 1, "Amount": -1e-399}',  # read back fine, written out too long
    b'{"Status": 1e400}',
    b'{"Email": "\\ud800@example.com"}',  # a lone surrogate cannot be written as UTF-8
    b'{"TransactionId": "\\udfff", "Name": "x"}',
])
def test_a_body_that_cannot_be_written_back_masks_to_empty(body: bytes) -> None:
    """Defect 9 (fixed in ledger/retention.py ``_mask_json``). Anyone can have such a
    body stored in the audit log (refused 401, bytes kept). Expected: its masked copy is
    empty, never an exception (which stopped every purge run). The whole purge is
    checked through the shop in tests/shop/test_attack_findings.py."""
    assert mask_body(body, "application/json") == b""
    assert mask_body(body, "application/json; charset=utf-8") == b""
