"""Paying through the gateway with the ledger as the record: :class:`PaymentService`.

The rules it keeps (``docs/ledger.md`` explains them):

* A payment is *claimed* before any gateway call: in one transaction under the
  payment's row lock, its status moves to ``processing`` (``pay``, ``complete_3ds``)
  or a ``pending`` attempt is recorded (``confirm``, ``void``, ``refund``), with a
  fresh ``X-Request-ID``. A second caller finds the claim and never calls the gateway.
  The client re-sends that same request id on its own retries, so a retried call is
  answered by the gateway without a second charge.
* The gateway's answer is recorded in a second transaction. An
  :class:`~checkout_kit.errors.UnknownOutcomeError` makes the payment ``unknown`` (a
  refund: an ``unknown`` attempt), never ``failed``; :meth:`PaymentService.refresh` and
  :meth:`PaymentService.reconcile` settle it from the gateway's own record.
* Status changes go through :mod:`.states` only; ``on_change`` hooks run after commit.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn, Unpack, overload

import sqlalchemy as sa

from ..errors import (
    AuthenticationError,
    CheckoutKitError,
    GatewayError,
    InvalidRequestError,
    InvalidTransitionError,
    PaymentConflictError,
    PaymentDeclined,
    PaymentExpiredError,
    RequestRejectedError,
    ThreeDSError,
    UnknownOutcomeError,
)
from ..models import ThreeDSChallenge, Transaction, TransactionStatus
from ..money import parse_amount
from ..notifications import CheckCode
from ..webhooks import settlement_mismatch
from .requests import PaymentFields, PaymentRequest
from .states import PAID, PENDING, PaymentStatus, can_transition
from .store import Ledger, Payment, PaymentAttempt, PaymentProblem, Unit, charge_columns

if TYPE_CHECKING:
    from ..client import CloudPaymentsClient

__all__ = ["OutcomeKind", "PayOutcome", "PaymentService"]

log = logging.getLogger(__name__)

#: How loud a charge, auth or post3ds the gateway refused (or that never left) is
#: logged, first match: refused credentials or a request the gateway rejects stop
#: every payment until someone acts; a connection or a 5xx passes by itself.
_REFUSAL_LEVELS: tuple[tuple[type[CheckoutKitError], int], ...] = (
    (AuthenticationError, logging.ERROR),
    (RequestRejectedError, logging.ERROR),
    (InvalidRequestError, logging.ERROR),
    (CheckoutKitError, logging.WARNING),
)

S = PaymentStatus

OutcomeKind = Literal[
    "succeeded", "authorized", "three_ds", "declined", "unknown", "in_progress", "already_paid",
    "cancelled"
]

ChangeHook = Callable[[Payment, PaymentStatus, PaymentStatus], None]
ProblemHook = Callable[[Payment, PaymentProblem], None]

#: The gateway's transaction status -> the ledger status it means.
_FROM_GATEWAY: Final[dict[str, PaymentStatus]] = {
    TransactionStatus.AWAITING_AUTHENTICATION: S.AWAITING_3DS,
    TransactionStatus.AUTHORIZED: S.AUTHORIZED,
    TransactionStatus.COMPLETED: S.SUCCEEDED,
    TransactionStatus.CANCELLED: S.CANCELLED,
    TransactionStatus.DECLINED: S.FAILED,
}

#: What a payment's status says when a request is repeated (a replayed 3-D Secure
#: return, a second "Pay" click after the first finished).
_STORED: Final[dict[PaymentStatus, OutcomeKind]] = {
    S.SUCCEEDED: "succeeded",
    S.REFUNDED: "succeeded",
    S.AUTHORIZED: "authorized",
    S.FAILED: "declined",
    S.UNKNOWN: "unknown",
    S.PROCESSING: "in_progress",
    S.AWAITING_3DS: "in_progress",
    S.CANCELLED: "cancelled",
}

#: The gateway statuses of a transaction that took or holds money.
_MONEY_MOVED: Final = frozenset({TransactionStatus.COMPLETED, TransactionStatus.AUTHORIZED})
#: Statuses :meth:`PaymentService.refresh` always asks the gateway about.
_ASKED: Final = frozenset({S.CREATED, S.FAILED, S.UNKNOWN, S.AWAITING_3DS, S.AUTHORIZED})
#: Attempt operations that start a new payment at the gateway (the scheme's call).
_CARD_ATTEMPTS: Final = ("charge", "auth")
#: Attempt operations that hold a claim on a settled payment while ``pending``.
_AFTER_PAYMENT: Final = ("confirm", "void", "refund")
#: How long after a payment refunds can come (the gateway's one year, docs/gateway.md
#: §3.5, and a day of margin for time zones).
_REFUND_WINDOW: Final = timedelta(days=366)
#: Operations per page of ``/v2/payments/list`` (docs/gateway.md §3.5).
_LIST_PAGE_SIZE: Final = 100
#: How much wider than the moments it looks between a ``/v2/payments/list`` window is
#: asked for: the two clocks may disagree, and the list's bounds are whole seconds.
_LIST_MARGIN: Final = timedelta(hours=1)


@dataclass(frozen=True)
class PayOutcome:
    """What :meth:`PaymentService.pay` or :meth:`~PaymentService.complete_3ds` did.

    ``kind``: ``succeeded``, ``authorized`` (two-stage), ``three_ds`` (send the payer
    to ``challenge.acs_url`` with ``PaReq``, ``MD`` and the caller's TermUrl), ``declined``
    (``reason_code``, ``cardholder_message``), ``unknown`` (the gateway's answer was
    lost; reconcile settles it), ``in_progress`` (another request holds the payment),
    ``already_paid``, ``cancelled`` (the shop cancelled the payment while the call was on
    its way: money it took anyway is recorded as a problem for the shop to give back).
    """

    kind: OutcomeKind
    payment: Payment
    challenge: ThreeDSChallenge | None = None
    reason_code: int | None = None
    cardholder_message: str | None = None


#: A claimed payment and the attempt recorded for the call about to be made.
_Claimed = tuple[Payment, PaymentAttempt]


def _stored_outcome(payment: Payment) -> PayOutcome:
    kind = _STORED[payment.status]
    if kind == "declined":
        return PayOutcome(kind, payment, reason_code=payment.reason_code,
                          cardholder_message=payment.cardholder_message)
    return PayOutcome(kind, payment)


def _text_arg(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"{name} must be a non-empty string", name)
    return value


class PaymentService:
    """Payments through :class:`~checkout_kit.client.CloudPaymentsClient`, recorded in
    a :class:`~checkout_kit.ledger.store.Ledger`.

    ``clock`` (aware UTC) decides when a claim is stale; it defaults to the ledger's.
    ``on_change(payment, old_status, new_status)`` is called after each committed
    status change (exceptions it raises are logged, not propagated: the change is
    already recorded). ``stale_after``: a ``processing`` claim or a ``pending``
    attempt older than this is taken to belong to a worker that died; a payment the
    gateway has never heard of is settled ``failed`` only once its last attempt is
    this old (the gateway may still be working on a call we gave up on); a 3-D Secure
    challenge this old may be given up for a new attempt. It must exceed the client's
    worst-case call (:attr:`CloudPaymentsClient.worst_case_seconds`: every attempt's
    timeout and every wait before a retry), or a live worker's call would be taken
    over and its answer would come after the takeover
    (:class:`~checkout_kit.errors.InvalidRequestError` otherwise, and for a client whose
    calls have no limit; ``TypeError`` for a client without ``worst_case_seconds``). The default, 10
    minutes, is twice the gateway's own response timeout (docs/gateway.md §3.1) and
    above the client's defaults (5 minutes at worst).
    ``on_problem(payment, problem)`` is called after commit for each
    :class:`~checkout_kit.ledger.store.PaymentProblem` recorded (a second charge, a
    transaction that does not match the payment).
    """

    def __init__(
        self,
        ledger: Ledger,
        client: CloudPaymentsClient,
        *,
        clock: Callable[[], datetime] | None = None,
        on_change: ChangeHook | None = None,
        stale_after: timedelta = timedelta(minutes=10),
        on_problem: ProblemHook | None = None,
    ) -> None:
        if stale_after <= timedelta(0):
            raise InvalidRequestError("stale_after must be positive", "stale_after")
        worst = getattr(client, "worst_case_seconds", None)
        if isinstance(worst, bool) or not isinstance(worst, int | float):
            # A client of one's own (a wrapper, a fake) must say how long a call may
            # take; without it no stale_after is known to be safe.
            raise TypeError(
                f"the client ({type(client).__name__}) must have a worst_case_seconds "
                "attribute: the longest one call may take, in seconds (see "
                "CloudPaymentsClient.worst_case_seconds)")
        if not math.isfinite(worst) or stale_after.total_seconds() <= worst:
            # An unlimited call (math.inf: a phase of the http_client's timeout is None)
            # is never safe to take over.
            shown = "unlimited" if not math.isfinite(worst) else timedelta(seconds=worst)
            raise InvalidRequestError(
                f"stale_after ({stale_after}) must exceed the client's worst-case call "
                f"({shown}: the limit of an attempt x (retries + 1) plus the waits "
                "before retries)", "stale_after")
        self.ledger = ledger
        self.client = client
        self._clock = clock or ledger.now
        self._on_change = on_change
        self._on_problem = on_problem
        self.stale_after = stale_after

    def __repr__(self) -> str:
        return f"PaymentService({self.ledger!r}, {self.client!r})"

    # --- creating ---------------------------------------------------------------------

    @overload
    def create_payment(self, request: PaymentRequest, /) -> Payment: ...

    @overload
    def create_payment(self, /, **fields: Unpack[PaymentFields]) -> Payment: ...

    def create_payment(self, request: PaymentRequest | None = None, /,
                       **fields: Any) -> Payment:
        """Record a payment to be made: ``request`` or its fields
        (:meth:`Ledger.create_payment`)."""
        return self.ledger.create_payment(PaymentRequest.of(request, fields))

    def get(self, payment_id: str) -> Payment:
        """The payment (``PaymentNotFoundError`` if there is none)."""
        return self.ledger.get(payment_id)

    # --- paying -----------------------------------------------------------------------

    def pay(
        self,
        payment_id: str,
        *,
        cryptogram: str,
        ip_address: str,
        name: str | None = None,
        email: str | None = None,
    ) -> PayOutcome:
        """Pay a ``created`` or ``failed`` payment with a card cryptogram.

        The payment is claimed (``processing``) before the gateway is called, so a
        concurrent or repeated call returns ``in_progress`` (or ``already_paid``) and
        never charges. A payment waiting for 3-D Secure answers ``in_progress`` too,
        until its challenge is ``stale_after`` old: then the payer may pay again. The
        amount, currency and invoice come from the ledger.
        A payment past its ``expires_at`` raises
        :class:`~checkout_kit.errors.PaymentExpiredError` and is not charged (the Check
        notification, which would refuse it at the gateway, may not be configured).
        A cancelled payment raises
        :class:`~checkout_kit.errors.InvalidTransitionError`. Gateway errors other than
        a decline or an unknown outcome (credentials refused, request rejected, no
        connection) leave the payment ``failed`` and are raised.
        """
        _text_arg(cryptogram, "cryptogram")
        _text_arg(ip_address, "ip_address")
        for label, value in (("name", name), ("email", email)):
            if value is not None:
                _text_arg(value, label)

        def take(unit: Unit) -> PayOutcome | _Claimed:
            payment = unit.payment
            if payment.status in PAID:
                return PayOutcome("already_paid", payment)
            if payment.status is S.AWAITING_3DS and self._abandoned(unit):
                pass  # the payer left the bank's page long ago and is trying again
            elif payment.status is S.CANCELLED:
                # Nothing more can happen to it: paying it is the caller's mistake.
                raise InvalidTransitionError(payment.status.value, S.PROCESSING.value)
            elif payment.status not in (S.CREATED, S.FAILED):
                # processing / awaiting_3ds: another request holds it; unknown: reconcile
                # first.
                return _stored_outcome(payment)
            if payment.expired(self._clock()):
                assert payment.expires_at is not None
                raise PaymentExpiredError(payment.id, payment.expires_at)
            unit.transition(S.PROCESSING, note=f"{payment.scheme} sent",
                            reason_code=None, cardholder_message=None)
            attempt = unit.add_attempt(payment.scheme, amount=payment.amount)
            if email is not None and payment.email is None:
                unit.update(email=email)
            return unit.payment, attempt

        claimed = self._claim(payment_id, take)
        if isinstance(claimed, PayOutcome):
            return claimed
        payment, attempt = claimed
        # The scheme ("charge" or "auth") is also the client's method name.
        call = self.client.charge if payment.scheme == "charge" else self.client.auth
        try:
            result = call(
                payment.amount, currency=payment.currency, ip_address=ip_address,
                cryptogram=cryptogram, name=name, invoice_id=payment.invoice_id,
                description=payment.description, account_id=payment.account_id,
                email=email or payment.email, request_id=attempt.request_id,
            )
        except BaseException as exc:
            return self._payment_failed(payment.id, attempt, exc)
        return self._payment_answered(payment.id, attempt, result)

    def _abandoned(self, unit: Unit) -> bool:
        """Whether the locked payment's 3-D Secure challenge is older than ``stale_after``.

        How long the gateway keeps an unanswered challenge waiting is not documented
        (the sandbox declines it after 20 minutes, docs/gateway.md §4); after
        ``stale_after`` the payer may start again. The old transaction can no longer
        be finished through us: :meth:`complete_3ds` accepts only the MD of the
        payment's latest transaction.

        The challenge is as old as the ledger's knowledge of it: the payment moved to
        ``awaiting_3ds`` (``updated_at``) after our attempt, or without one when a
        lookup found the widget's challenge (seed 404010)."""
        return self._clock() - unit.payment.updated_at >= self.stale_after

    def complete_3ds(self, payment_id: str, *, md: str | int, pa_res: str) -> PayOutcome:
        """Finish 3-D Secure with the ``MD`` and ``PaRes`` the bank posted to TermUrl.

        ``md`` must be the payment's gateway transaction id
        (:class:`~checkout_kit.errors.ThreeDSError` ``wrong_transaction`` otherwise).
        ``post3ds`` is called once: a replayed post (a reload, a double submit) gets
        the stored outcome without a gateway call.
        """
        _text_arg(pa_res, "pa_res")
        md_text = str(md).strip() if isinstance(md, str | int) and not isinstance(md, bool) else ""
        if not md_text:
            raise ThreeDSError("bad_md", "MD is required")

        def take(unit: Unit) -> PayOutcome | _Claimed:
            payment = unit.payment
            if payment.gateway_transaction_id is None or md_text != str(
                    payment.gateway_transaction_id):
                raise ThreeDSError("wrong_transaction",
                                   "MD does not match the payment's transaction")
            if payment.status is S.CANCELLED:
                raise InvalidTransitionError(payment.status.value, S.PROCESSING.value)
            if payment.status is not S.AWAITING_3DS:
                return _stored_outcome(payment)
            unit.transition(S.PROCESSING, note="post3ds sent")
            return unit.payment, unit.add_attempt("post3ds", amount=payment.amount)

        claimed = self._claim(payment_id, take)
        if isinstance(claimed, PayOutcome):
            return claimed
        payment, attempt = claimed
        assert payment.gateway_transaction_id is not None
        try:
            result = self.client.post3ds(
                payment.gateway_transaction_id, pa_res, request_id=attempt.request_id
            )
        except BaseException as exc:
            return self._payment_failed(payment.id, attempt, exc)
        return self._payment_answered(payment.id, attempt, result)

    def challenge_refused(self, payment_id: str, transaction_id: int) -> Payment:
        """The gateway's bank page for challenge ``transaction_id`` was refused (its
        ``AcsUrl`` is not one a payer's browser may post to), so the challenge can
        never be answered. Left ``awaiting_3ds``, the payment would answer
        ``in_progress`` to every new card until ``stale_after``; it is ``failed`` now
        (nothing was charged: the transaction waits for an authentication that cannot
        come), and the payer may try another card at once. Only the live challenge is
        failed; a later answer from the gateway still settles the payment (a success
        is never thrown away)."""
        with self._unit(payment_id) as unit:
            current = unit.payment
            if current.status is S.AWAITING_3DS and (
                    current.gateway_transaction_id == transaction_id):
                unit.transition(S.FAILED, note="3-D Secure: the gateway's bank page URL "
                                "was refused", reason_code=None, cardholder_message=None)
            return unit.payment

    def _payment_answered(
        self, payment_id: str, attempt: PaymentAttempt,
        result: Transaction | ThreeDSChallenge,
    ) -> PayOutcome:
        """Record an accepted charge/auth/post3ds (done, or 3-D Secure asked)."""
        with self._unit(payment_id) as unit:
            if isinstance(result, ThreeDSChallenge):
                unit.finish_attempt(attempt, "three_ds",
                                    gateway_transaction_id=result.transaction_id)
                payment = self._settle(unit, S.AWAITING_3DS, "3-D Secure asked",
                                       gateway_transaction_id=result.transaction_id)
                if payment.status is not S.AWAITING_3DS or (
                        payment.gateway_transaction_id != result.transaction_id):
                    # Settled meanwhile, or waiting on another (the live) challenge:
                    # this one was abandoned, and its bank page would be refused.
                    return _stored_outcome(payment)
                return PayOutcome("three_ds", payment, challenge=result)
            status = _FROM_GATEWAY.get(str(result.status))
            if status not in (S.SUCCEEDED, S.AUTHORIZED):
                # An accepted answer in a status an accepted payment cannot have: not
                # guessed at, left for a lookup to settle.
                payment = self._unknown(
                    unit, attempt, f"gateway: {result.status}",
                    f"accepted in status {result.status}",
                    gateway_transaction_id=result.transaction_id)
                return _stored_outcome(payment)
            outcome = "authorized" if status is S.AUTHORIZED else "succeeded"
            if unit.already_settled_by(result.transaction_id):
                # A stalled call's answer about the transaction a lookup or a
                # notification settled the payment with meanwhile (perhaps captured in
                # part since): nothing new.
                unit.finish_attempt(attempt, outcome,
                                    gateway_transaction_id=result.transaction_id)
                return _stored_outcome(unit.payment)
            code = self._mismatch(unit, result)
            if code is not None:
                # Our call sent the ledger's amount, and the gateway answered with a
                # transaction of another: money moved, but not as this payment says.
                # That transaction never pays it, and asking again would get the same
                # answer forever, so the payment fails (the payer sees a final page
                # and may pay again) and the problem recorded by _mismatch tells the
                # shop to refund the transaction (payment_mismatch).
                unit.finish_attempt(attempt, "mismatch",
                                    gateway_transaction_id=result.transaction_id,
                                    error=f"the answer does not match the payment "
                                          f"(check code {int(code)})")
                payment = self._settle(unit, S.FAILED, _mismatch_note(result, code),
                                       reason_code=_MISMATCH_REASON[code])
                return _stored_outcome(payment)
            unit.finish_attempt(attempt, outcome, gateway_transaction_id=result.transaction_id)
            payment = self._settle(unit, status, f"gateway: {result.status}",
                                   **charge_columns(result))
        return _stored_outcome(payment)

    def _payment_failed(
        self, payment_id: str, attempt: PaymentAttempt, exc: BaseException
    ) -> PayOutcome:
        """Record a charge/auth/post3ds that raised; re-raise what is not an outcome."""
        with self._unit(payment_id) as unit:
            if isinstance(exc, PaymentDeclined):
                tx_id = exc.transaction.transaction_id if isinstance(
                    exc.transaction, Transaction) else unit.payment.gateway_transaction_id
                code = int(exc.reason_code)
                log.info("payment %s: %s declined %d", payment_id, attempt.operation, code)
                unit.finish_attempt(attempt, "declined", gateway_transaction_id=tx_id,
                                    reason_code=code, error=exc.message)
                payment = self._settle(
                    unit, S.FAILED, f"declined {code}", gateway_transaction_id=tx_id,
                    reason_code=code, cardholder_message=exc.cardholder_message,
                )
                return _stored_outcome(payment)
            if isinstance(exc, GatewayError | InvalidRequestError) and not isinstance(
                    exc, UnknownOutcomeError):
                # Refused before anything was processed (or not sent at all).
                outcome = "rejected" if isinstance(exc, RequestRejectedError) else "error"
                level = next(level for kind, level in _REFUSAL_LEVELS if isinstance(exc, kind))
                log.log(level, "payment %s: %s %s: %s (request id %s)", payment_id,
                        attempt.operation, outcome, exc.message, attempt.request_id)
                unit.finish_attempt(attempt, outcome, error=exc.message)
                self._settle(unit, S.FAILED, f"{outcome}: {exc.message}")
            else:
                # UnknownOutcomeError, or anything unforeseen after the call may have
                # left: the payment may exist at the gateway.
                message = exc.message if isinstance(exc, CheckoutKitError) else repr(exc)
                payment = self._unknown(unit, attempt, "outcome unknown", message[:2000])
                if isinstance(exc, UnknownOutcomeError):
                    if payment.status is S.UNKNOWN:  # else settled: _unknown said so
                        log.warning("payment %s: outcome unknown (request id %s)",
                                    payment.id, attempt.request_id)
                    return _stored_outcome(payment)
        raise exc

    def _unknown(
        self, unit: Unit, attempt: PaymentAttempt, note: str, error: str, **columns: Any
    ) -> Payment:
        """Record that a charge/auth/post3ds ended without an answer we can settle by.

        Normally the claim is still ours: the attempt and the payment become
        ``unknown``. If a lookup took the call for a dead worker's and settled the
        payment ``failed`` meanwhile (the gateway had no charge then, or only a
        decline), that guess is withdrawn: the call was alive, and the gateway may have
        charged after the lookup looked. The attempt is reopened (``unknown``) and the
        payment moves ``failed`` -> ``unknown``, so that the payer is told ``unknown``,
        not ``declined``, nobody charges it again before it is settled, and reconcile
        asks the gateway once more (docs/ledger.md, "Takeovers")."""
        if unit.finish_attempt(attempt, "unknown", error=error, **columns):
            return self._settle(unit, S.UNKNOWN, note, **columns)
        current = unit.payment
        if current.status is S.FAILED and unit.reopen_attempt(attempt, error):
            log.warning("payment %s: the %s taken over as dead ended without an answer "
                        "(request id %s): unknown again", current.id, attempt.operation,
                        attempt.request_id)
            return unit.transition(S.UNKNOWN, note=f"{note} after a takeover",
                                   reason_code=None, cardholder_message=None, **columns)
        # Settled by an answer or the gateway's own record (paid, cancelled, failed by
        # a transaction of its own): that is the word; nothing is guessed over it.
        log.warning("payment %s: %s without an answer after it was settled as %s; kept",
                    current.id, attempt.operation, current.status.value)
        return current

    def _settle(
        self, unit: Unit, status: PaymentStatus, note: str, **columns: Any
    ) -> Payment:
        """Move a claimed (``processing``) payment to ``status``. If the claim was
        taken over meanwhile (reconcile found the worker stale and settled it), the
        payment is left as the ledger already holds it, except that a success is never
        thrown away: the payer's money was taken or held, so it settles a payment that
        was given up as ``failed`` (or found ``unknown``), and one already paid by
        another transaction records the second charge as a ``duplicate``."""
        current = unit.payment
        if current.status is S.PROCESSING:
            return unit.transition(status, note=note, **columns)
        tx_id = columns.get("gateway_transaction_id")
        if status in (S.SUCCEEDED, S.AUTHORIZED):
            return self._late_success(unit, status, note, **columns)
        if current.status is status and columns and (
                tx_id is None or tx_id == current.gateway_transaction_id):
            # The gateway's notification settled it the same way, by the same
            # transaction, while our call was on its way: the answer completes the row
            # (token, message...). Another transaction in the same status is a stale
            # worker's (an abandoned 3-D Secure challenge, an earlier decline): taking
            # its id would make the live attempt's answers look foreign.
            return unit.update(**columns)
        log.warning("payment %s: answer (%s, transaction %s) after it was settled as %s "
                    "(transaction %s); kept as is", current.id, status.value, tx_id,
                    current.status.value, current.gateway_transaction_id)
        return current

    def _late_success(
        self, unit: Unit, status: PaymentStatus, note: str, **columns: Any
    ) -> Payment:
        """A charge's success that comes after the payment left ``processing``."""
        current = unit.payment
        tx_id = columns.get("gateway_transaction_id")
        if unit.record_extra_charge(tx_id, amount=current.amount, currency=current.currency,
                                    source=note) is not None:
            return unit.payment
        if current.status is S.CANCELLED or unit.settled_by_charge():
            return unit.update(**columns) if current.status is status else current
        log.warning("payment %s: a success after it was settled as %s: the success counts",
                    current.id, current.status.value)
        if current.status in (S.CREATED, S.FAILED):
            unit.transition(S.PROCESSING, note="a late answer: the charge went through")
        return unit.transition(status, note=f"{note} (late answer)", reason_code=None,
                               cardholder_message=None, **columns)

    # --- after the payment ------------------------------------------------------------

    def confirm(self, payment_id: str, amount: Decimal | int | str | None = None) -> Payment:
        """Capture an ``authorized`` (two-stage) payment, fully or for a smaller
        ``amount`` (which then becomes the payment's amount)."""
        with self._unit(payment_id) as unit:
            payment = self._claim_after(unit, "confirm", S.SUCCEEDED)
            exact = payment.amount if amount is None else parse_amount(amount, payment.currency)
            if exact > payment.amount:
                raise PaymentConflictError(
                    f"cannot confirm {exact} of an authorization for {payment.amount}", payment.id
                )
            attempt = unit.add_attempt("confirm", amount=exact)
        assert payment.gateway_transaction_id is not None
        try:
            self.client.confirm(payment.gateway_transaction_id, exact,
                                request_id=attempt.request_id)
        except BaseException as exc:
            self._after_failed(payment.id, attempt, exc, unknown_status=S.UNKNOWN)
        return self._after_done(payment_id, attempt, S.SUCCEEDED, f"confirmed {exact}",
                                amount=exact)

    def void(self, payment_id: str) -> Payment:
        """Cancel an ``authorized`` (two-stage) payment: the hold is released."""
        with self._unit(payment_id) as unit:
            payment = self._claim_after(unit, "void", S.CANCELLED)
            attempt = unit.add_attempt("void")
        assert payment.gateway_transaction_id is not None
        try:
            self.client.void(payment.gateway_transaction_id, request_id=attempt.request_id)
        except BaseException as exc:
            self._after_failed(payment.id, attempt, exc, unknown_status=S.UNKNOWN)
        return self._after_done(payment_id, attempt, S.CANCELLED, "voided")

    def cancel(self, payment_id: str) -> Payment:
        """Give up on a payment nobody has paid (``created`` or ``failed``): no gateway
        call. A held two-stage payment is released with :meth:`void` instead."""
        with self._unit(payment_id) as unit:
            if unit.payment.status not in (S.CREATED, S.FAILED):
                raise InvalidTransitionError(unit.payment.status.value, S.CANCELLED.value)
            return unit.cancel_unpaid()

    def refund(self, payment_id: str, amount: Decimal | int | str | None = None) -> Payment:
        """Refund a ``succeeded`` payment, in full (``amount=None``: what is left) or in
        part. Partial refunds add up in ``refunded_amount``; the one that reaches the
        amount makes the payment ``refunded``. More than is left raises
        :class:`~checkout_kit.errors.PaymentConflictError`, and so does a refund while
        an earlier one's outcome is unknown (reconcile first)."""
        with self._unit(payment_id) as unit:
            payment = self._claim_after(unit, "refund", S.REFUNDED)
            left = payment.refundable_amount
            exact = left if amount is None else parse_amount(amount, payment.currency)
            if exact > left:
                raise PaymentConflictError(
                    f"cannot refund {exact}: {left} of {payment.amount} is left to refund",
                    payment.id,
                )
            attempt = unit.add_attempt("refund", amount=exact)
        assert payment.gateway_transaction_id is not None
        try:
            refund = self.client.refund(payment.gateway_transaction_id, exact,
                                        request_id=attempt.request_id)
        except BaseException as exc:
            self._after_failed(payment.id, attempt, exc, unknown_status=None)
        with self._unit(payment_id) as unit:
            # A lookup that took the call for a dead worker's may have counted this
            # refund already (from the gateway's list): the refunds table knows.
            unit.finish_attempt(attempt, "succeeded",
                                gateway_transaction_id=refund.transaction_id)
            self._count_refund(unit, refund.transaction_id, exact, "call",
                               f"refunded {exact}")
            return unit.payment

    @staticmethod
    def _count_refund(unit: Unit, tx_id: int, amount: Decimal, source: str, note: str) -> None:
        """Count a refund the gateway made; one that cannot fit the payment (the
        ledger's refunds and the gateway's disagree) is recorded as a problem, never an
        error after the money moved."""
        if unit.payment.status is not S.SUCCEEDED:
            if not unit.refund_counted(tx_id):
                unit.record_problem("mismatch", transaction_id=tx_id, amount=amount,
                                    currency=unit.payment.currency,
                                    detail=f"refund {tx_id} of {amount} in status "
                                           f"{unit.payment.status.value}")
            return
        try:
            unit.count_refund(tx_id, amount, source=source, note=note)
        except PaymentConflictError as exc:
            unit.record_problem("mismatch", transaction_id=tx_id, amount=amount,
                                currency=unit.payment.currency, detail=exc.message)

    def _after_done(
        self, payment_id: str, attempt: PaymentAttempt, target: PaymentStatus, note: str,
        **columns: Any,
    ) -> Payment:
        """Record a confirm or void the gateway accepted. The status is normally still
        ``authorized``; if a lookup already moved it to ``target``, only the columns
        are brought up to date."""
        with self._unit(payment_id) as unit:
            unit.finish_attempt(attempt, "succeeded")
            if unit.payment.status is target:
                return unit.update(**columns) if columns else unit.payment
            return unit.transition(target, note=note, **columns)

    def _claim_after(self, unit: Unit, operation: str, target: PaymentStatus) -> Payment:
        """Check that ``operation`` may start on the locked payment: the state machine
        allows ``target``, the scheme fits, no other operation is pending or unknown."""
        payment = unit.payment
        if operation in ("confirm", "void") and payment.scheme != "auth":
            raise PaymentConflictError(
                f"{operation} is for two-stage (auth) payments; {payment.id} is one-stage",
                payment.id,
            )
        # confirm and void act on a hold, refund on taken money: the status must be that
        # one (created -> cancelled is allowed by the table, but is cancel(), not void).
        needed = S.SUCCEEDED if operation == "refund" else S.AUTHORIZED
        if payment.status is not needed:
            raise InvalidTransitionError(payment.status.value, target.value)
        busy = [a for a in unit.attempts() if a.open
                and a.operation in _AFTER_PAYMENT]
        if busy:
            raise PaymentConflictError(
                f"a {busy[0].operation} of {payment.id} is {busy[0].outcome}"
                + (": reconcile first" if busy[0].outcome == "unknown" else ""),
                payment.id,
            )
        if payment.gateway_transaction_id is None:
            raise PaymentConflictError(f"{payment.id} has no gateway transaction", payment.id)
        return payment

    def _after_failed(
        self, payment_id: str, attempt: PaymentAttempt, exc: BaseException,
        *, unknown_status: PaymentStatus | None,
    ) -> NoReturn:
        """Record a confirm/void/refund that raised, then re-raise. A lost answer makes
        the payment ``unknown_status`` (``None``: the status stays; the attempt is
        ``unknown`` and blocks further refunds until reconciled). An attempt a lookup
        settled (``reconciled``) while the call was on its way is opened again: the
        gateway may have acted after the lookup looked."""
        with self._unit(payment_id) as unit:
            known = isinstance(exc, GatewayError | InvalidRequestError) and not isinstance(
                exc, UnknownOutcomeError)
            if known:
                outcome = "rejected" if isinstance(exc, RequestRejectedError) else "error"
                unit.finish_attempt(attempt, outcome, error=str(exc)[:2000])
            else:
                error = str(exc)[:2000] or repr(exc)
                if not unit.finish_attempt(attempt, "unknown", error=error):
                    # A lookup took the call for a dead worker's and settled it
                    # (reconciled) before the call ended: the gateway may have acted
                    # after it looked (a refund made then is in no count). Open again,
                    # the attempt keeps the payment in reconcile's list and refuses a
                    # second refund until a lookup has read the gateway's refunds.
                    if not unit.reopen_attempt(attempt, error):
                        raise exc  # answered meanwhile: that answer stands
                    log.warning("payment %s: the %s taken over as dead ended without an "
                                "answer (request id %s): unknown again", payment_id,
                                attempt.operation, attempt.request_id)
                if unknown_status is not None and can_transition(
                        unit.payment.status, unknown_status):
                    unit.transition(unknown_status, note=f"{attempt.operation}: outcome unknown")
        raise exc

    # --- settling from the gateway's record -------------------------------------------

    def refresh(self, payment_id: str) -> Payment:
        """Ask the gateway about the payment and settle what the ledger does not know:
        ``unknown``, ``awaiting_3ds``, a stale ``processing`` claim, an ``authorized``
        payment the gateway confirmed or cancelled itself, refunds whose answer was
        lost, and a ``created`` or ``failed`` payment the payer paid (or tried again)
        through the gateway's widget (found by its invoice). Other payments, and
        payments with a call in flight, are returned as they are, without a call.

        Only the latest card attempt's transaction counts: a transaction of an
        earlier attempt (a decline, an abandoned 3-D Secure challenge) never settles
        a payment whose new charge has no answer yet. Such a payment is settled
        ``failed`` only once that charge is ``stale_after`` old and the gateway's
        latest operation for the invoice is still not a new one. A decline found by
        invoice while that charge is open answers only for itself: the invoice's
        operations (:meth:`_money_on_invoice`) say whether our charge took money."""
        payment = self.ledger.get(payment_id)
        attempts = self.ledger.attempts(payment_id)
        stale = self._stale(attempts)
        if any(a.outcome == "pending" for a in attempts) and not stale:
            return payment  # a worker is talking to the gateway about it right now
        # Calls whose answer we lack: lost (unknown), or left pending by a dead worker.
        open_calls = [a for a in attempts if a.open]
        open_after = [a for a in open_calls if a.operation in _AFTER_PAYMENT]
        asks = payment.status in _ASKED or bool(open_after)
        if payment.status is S.PROCESSING:
            asks = stale
        if not asks:
            return payment
        tx, by_invoice = self._lookup(payment, attempts)
        if by_invoice and tx is not None and tx.status == TransactionStatus.DECLINED and (
                payment.status in (S.UNKNOWN, S.PROCESSING) and not stale):
            # The invoice's latest operation is a decline we have not seen: ours, or
            # one from before our charge that the gateway may not have taken yet.
            # Either way it can wait until the charge has ended at the gateway.
            return payment
        # Not the payment's by the settlement rule: another amount, currency or account,
        # or a two-stage operation (a hold, a voided one) on a one-stage payment.
        foreign = tx is not None and settlement_mismatch(
            payment, amount=tx.amount, currency=tx.currency, account_id=tx.account_id,
            status=None if tx.status is None else str(tx.status), scheme=payment.scheme,
            capture=payment.scheme == "auth") is not None
        passed_over: Transaction | None = None
        if by_invoice and tx is not None and stale and payment.status in (
                S.UNKNOWN, S.PROCESSING) and (tx.status == TransactionStatus.DECLINED or foreign):
            # The charge has ended, and the invoice's latest operation is a decline, or
            # a transaction that is not the payment's (another tab's tampered widget).
            # /payments/find answers only that latest operation, so it answers for its
            # own transaction only: ours may have taken the money before it, or been
            # declined. The invoice's operations since our charge say whether one of
            # them took or holds money; if none did, nothing was taken and the payment
            # is failed: by the decline when it is the payment's (its amount, currency,
            # account), else as a charge the gateway took nothing for (seeds 100760,
            # 306633).
            money = self._money_on_invoice(payment, attempts)
            if money is not None:
                tx = money
            elif foreign:
                passed_over, tx = tx, None
        refunds = self._gateway_refunds(payment, tx) if any(
            a.operation == "refund" for a in open_after) else None
        with self._unit(payment_id) as unit:
            if unit.payment.version != payment.version or unit.attempts() != attempts:
                return unit.payment  # someone acted while we asked: theirs is newer
            if passed_over is not None:
                self._mismatch(unit, passed_over)  # money that moved is still the shop's to see
            if refunds is not None:
                # A ledger upgraded from 0002 may have counted some of them without
                # naming them (0002's lookups kept no transaction): in the unit that
                # counts the others, those are marked counted first, so that only what
                # the ledger has not counted yet is added (docs/ledger.md, "Upgrading").
                unit.absorb_unnamed_refunds(refunds)
            current = self._settle_from(unit, tx, refunds, stale, by_invoice)
            if current.status not in (S.UNKNOWN, S.PROCESSING):
                for attempt in open_calls:
                    if attempt.operation == "refund" and refunds is None:
                        # The gateway's refunds could not be read (its transaction
                        # has no time to ask from): the refund's outcome is still not
                        # known, so its attempt stays open, and so does the block on
                        # another refund.
                        continue
                    unit.finish_attempt(attempt, "reconciled")
            return current

    def _stale(self, attempts: list[PaymentAttempt]) -> bool:
        """Whether the last attempt is older than ``stale_after`` (or there is none)."""
        return not attempts or self._clock() - attempts[-1].created_at >= self.stale_after

    def _mismatch(self, unit: Unit, tx: Transaction) -> CheckCode | None:
        """Apply the one settlement rule (webhooks.settlement_mismatch) to ``tx``; a
        transaction that does not match is recorded (once) and signalled."""
        payment = unit.payment
        # The payment's own hold (its transaction, not one found by invoice) may be
        # captured in part, as a Confirm notification says (docs/gateway.md §5.4).
        # Whatever the ledger's status: a hold captured in the back office while our own
        # call about it (post3ds, confirm) was stalled is still the payment's own hold.
        capture = payment.scheme == "auth" and (
            tx.transaction_id == payment.gateway_transaction_id)
        partial = capture
        if not capture and _unseen_hold_captured(unit, tx):
            # A hold the ledger never saw (our auth's answer lost, or the widget's, its
            # Pay not in yet) captured in the back office before reconcile asked: the
            # invoice's latest operation is then that hold, Completed. It counts as the
            # capture of the payment's own hold, but at the payment's amount exactly
            # (not partial): with no id to prove it ours, only an exact match does; a
            # capture for less stays a mismatch for the shop to look at.
            capture = True
        # A capture of the own hold is held to the hold (partial: no more than it),
        # whoever made it: our confirm call whose answer we lack, or the back office
        # meanwhile (seed 402298); the gateway's amount is what was taken.
        code = settlement_mismatch(
            payment, amount=tx.amount, currency=tx.currency, account_id=tx.account_id,
            status=None if tx.status is None else str(tx.status), scheme=payment.scheme,
            partial=partial, capture=capture)
        if code is None:
            return None
        if str(tx.status) not in _MONEY_MOVED:
            # A decline or a cancelled hold took nothing: nothing for the shop to
            # refund, so no problem (the inbox records one only for a Pay, likewise).
            log.info("payment %s: transaction %s (%s) does not match it (code %d)",
                     payment.id, tx.transaction_id, tx.status, int(code))
            return code
        unit.record_problem(
            "mismatch", transaction_id=tx.transaction_id, amount=tx.amount,
            currency=tx.currency,
            detail=f"transaction {tx.transaction_id} ({tx.status}, {tx.amount} "
                   f"{tx.currency}) is not this payment's ({payment.amount} "
                   f"{payment.currency}, {payment.scheme}): check code {int(code)}")
        log.warning("payment %s: transaction %s does not match it (code %d); not settled",
                    payment.id, tx.transaction_id, int(code))
        return code

    def _settle_from(
        self, unit: Unit, tx: Transaction | None,
        refunds: list[tuple[int, Decimal]] | None, stale: bool, by_invoice: bool,
    ) -> Payment:
        """Bring the locked payment in line with the gateway's transaction ``tx`` (found
        by ``by_invoice``, else by the latest attempt's transaction id) and its refund
        operations ``refunds`` (``None``: not asked). A transaction that does not match
        the payment settles nothing; when it is the latest attempt's own, an
        ``unknown`` payment is failed, as the call's answer would have failed it."""
        current = unit.payment
        if tx is None:
            if current.status in (S.UNKNOWN, S.PROCESSING) and stale:
                return unit.transition(S.FAILED, note="reconciled: unknown to the gateway")
            return current
        code = self._mismatch(unit, tx)
        if code is not None:
            if current.status in (S.UNKNOWN, S.PROCESSING) and not by_invoice:
                # The latest attempt's own transaction (found by its id) is not this
                # payment's: asking again would get the same answer forever. As when
                # the call's answer says so (_payment_answered): failed, and the
                # problem, if money moved, tells the shop to refund it.
                return unit.transition(S.FAILED, note=f"reconciled: {_mismatch_note(tx, code)}",
                                       reason_code=_MISMATCH_REASON[code])
            # Found by invoice: perhaps the payer's browser's charge, not ours, which
            # may still come; the payment stays as it is, the problem recorded.
            return unit.payment
        if str(tx.status) in _MONEY_MOVED and unit.record_extra_charge(
                tx.transaction_id, amount=tx.amount, currency=tx.currency,
                source="reconciled") is not None:
            return unit.payment  # money beside the payment's own: the shop gives it back
        target = _FROM_GATEWAY.get(str(tx.status))
        if current.status in (S.CREATED, S.FAILED) and target is not None and (
                not can_transition(current.status, target)
                and can_transition(S.PROCESSING, target)):
            # Paid (or tried again) between the payer's browser and the gateway (the
            # checkout.js widget): the gateway had it before we did. Through
            # processing, as the table says, but only when the target is reachable
            # from there and not directly: a widget hold found already voided goes
            # created -> cancelled, and a payment is never left processing with no
            # call in flight (nothing would ever move it on).
            current = unit.transition(S.PROCESSING, note="paid at the gateway without us")
        columns = charge_columns(tx)
        captured = current.scheme == "auth" and (
            current.status in (S.AUTHORIZED, S.UNKNOWN)
            or tx.transaction_id == current.gateway_transaction_id)
        if target is S.SUCCEEDED and captured:
            # A capture of the payment's own hold (the rule above allowed no other), by
            # our confirm call or the back office: what the gateway took is the amount,
            # as a Confirm notification would say.
            columns["amount"] = tx.amount
        if target is S.FAILED:
            columns.update(reason_code=int(tx.reason_code or 0) or None,
                           cardholder_message=tx.cardholder_message)
        if target is not None and target is not current.status and can_transition(
                current.status, target):
            current = unit.transition(target, note=f"reconciled: gateway says {tx.status}",
                                      **columns)
        for refund_id, amount in refunds or ():
            if unit.payment.status is not S.SUCCEEDED:
                break
            self._count_refund(unit, refund_id, amount, "lookup",
                               f"reconciled: refund {refund_id} of {amount}")
        return unit.payment

    def reconcile(self) -> list[Payment]:
        """:meth:`refresh` every payment that is ``unknown``, ``processing`` or
        ``awaiting_3ds``, or has an operation whose outcome is unknown. Returns the
        refreshed payments. A payment the gateway cannot be asked about now (no
        connection...) is logged and left for the next run."""
        settled: list[Payment] = []
        for payment_id in self.ledger.ids_to_reconcile(PENDING):
            try:
                settled.append(self.refresh(payment_id))
            except GatewayError as exc:
                log.warning("reconcile: payment %s not refreshed: %s", payment_id, exc)
        return settled

    def _lookup(
        self, payment: Payment, attempts: list[PaymentAttempt]
    ) -> tuple[Transaction | None, bool]:
        """The gateway's record of the payment's latest attempt, and whether it was
        found by invoice. ``None``: the gateway has none, or only a transaction this
        payment already had before (an earlier attempt's decline or challenge, or the
        one a ``failed`` payment ended with), which tells nothing about the latest
        attempt. A transaction that took or holds money is returned even so.

        By transaction id when the latest attempt has one; else the invoice's latest
        operation (``/payments/find``, docs/gateway.md §3.5)."""
        tx_id, superseded = _latest_transaction(payment, attempts)
        if tx_id is not None:
            tx = self.client.get_payment(tx_id)
            if tx.invoice_id is not None and tx.invoice_id != payment.invoice_id:
                # Not the payment's, though its id is: a gateway (a sandbox whose state
                # was replaced) that issued the id again. It settles nothing here.
                log.warning("payment %s: transaction %s names invoice %r, not %r; "
                            "not the payment's", payment.id, tx_id, tx.invoice_id,
                            payment.invoice_id)
                return None, False
            return tx, False
        try:
            tx = self.client.find_payment(payment.invoice_id)
        except RequestRejectedError:
            # find answers Success:false, "Not found" when the invoice has no payment.
            return None, True
        if tx.transaction_id in superseded and str(tx.status) not in _MONEY_MOVED:
            # An earlier attempt's decline or abandoned challenge. A success is never
            # superseded: it is money taken (a late answer we gave up on, a charge in a
            # second tab), and it settles the payment or is recorded as a duplicate.
            return None, True
        if not payment.owns(tx):
            # The invoice's latest operation is a charge that only names it (a
            # subscription's, a token charge of the shop's, docs/gateway.md §3.5): it
            # tells nothing of this payment, and settles or contradicts nothing.
            log.info("payment %s: transaction %s on its invoice is not its own; ignored",
                     payment.id, tx.transaction_id)
            return None, True
        return tx, True

    def _money_on_invoice(
        self, payment: Payment, attempts: list[PaymentAttempt]
    ) -> Transaction | None:
        """The payment's own transaction on its invoice that took or holds money
        (``Completed``, ``Authorized``) since its latest card attempt began, read from
        ``/v2/payments/list`` page by page (docs/gateway.md §3.5), or ``None``. The
        latest such one if there are several: a second charge is then recorded as a
        duplicate by whatever reports it. Only charges the payment owns (webhooks.owns),
        that fit it (the settlement rule, a capture in part allowed for a two-stage
        payment) and that the ledger has not already told apart (a problem names them)
        count."""
        starts = [a.created_at for a in attempts if a.operation in _CARD_ATTEMPTS]
        if not starts:
            return None
        # Money the ledger already told apart from the payment (a problem names it: a
        # tampered widget's charge of another amount...) is not what our charge took
        # (seed 407084).
        told_apart = {p.gateway_transaction_id for p in self.ledger.problems(payment.id)}
        found: Transaction | None = None
        for op in self._operations(starts[-1] - _LIST_MARGIN,
                                   max(self._clock(), starts[-1]) + _LIST_MARGIN):
            if (op.invoice_id == payment.invoice_id and str(op.status) in _MONEY_MOVED
                    # a payment (type 0), not a refund of one
                    and not op.type and op.original_transaction_id is None
                    and op.transaction_id not in told_apart and payment.owns(op)
                    # what our charge could have taken: the payment's amount (a hold
                    # captured in part, for a two-stage one), currency and account
                    and settlement_mismatch(
                        payment, amount=op.amount, currency=op.currency,
                        account_id=op.account_id, status=str(op.status),
                        scheme=payment.scheme, partial=payment.scheme == "auth",
                        capture=payment.scheme == "auth") is None):
                found = op
        return found

    def _operations(self, start: datetime, end: datetime) -> Iterator[Transaction]:
        """The gateway's operations from ``start`` to ``end`` (``/v2/payments/list``,
        docs/gateway.md §3.5), read a page at a time as the caller goes on."""
        page = 1
        while True:
            rows = self.client.list_payments_v2(start, end, page=page)
            yield from rows
            if len(rows) < _LIST_PAGE_SIZE:
                return
            page += 1

    def _gateway_refunds(
        self, payment: Payment, tx: Transaction | None
    ) -> list[tuple[int, Decimal]] | None:
        """The gateway's completed refund operations of the payment, ``(transaction,
        amount)`` each (``None``: nothing to ask, or it cannot be told now).

        Asked only while a refund call of ours is in flight or unknown: otherwise every
        refund is already counted (our calls' answers, Refund notifications). Since
        ``/v2/payments/find`` answers only the latest operation of an invoice
        (docs/gateway.md §3.5), they are read from ``/v2/payments/list``, page by page,
        from the payment to now (plus a margin for the two clocks and the list's whole
        seconds; a year at most), stopping once they add up to the payment. Which of
        them the ledger counted already, the refunds table says."""
        if not any(a.operation == "refund" and a.open
                   for a in self.ledger.attempts(payment.id)):
            return None
        if tx is None or tx.created_at is None:
            return None  # no payment at the gateway, or one we cannot place in time
        start = tx.created_at
        # Our clock may trail the gateway's: never ask for less than the margin.
        end = min(start + _REFUND_WINDOW, max(self._clock(), start) + _LIST_MARGIN)
        found: list[tuple[int, Decimal]] = []
        total = Decimal(0)
        for op in self._operations(start, end):
            if op.original_transaction_id == tx.transaction_id and (
                    op.status == TransactionStatus.COMPLETED):
                found.append((op.transaction_id, op.amount))
                total += op.amount
                if total >= tx.amount:
                    break  # all of it is refunded: no later page can add to it
        return found

    # --- hooks ------------------------------------------------------------------------

    def _claim(
        self, payment_id: str, take: Callable[[Unit], PayOutcome | _Claimed]
    ) -> PayOutcome | _Claimed:
        """Run ``take`` (which claims the payment, or says why not) in one locked unit.
        Should two claims ever get past the row lock (a database whose locks are weaker
        than we think), the unique ``(payment_id, number)`` of the attempts refuses the
        second one's attempt, which then answers ``in_progress`` and calls nothing."""
        try:
            with self._unit(payment_id) as unit:
                return take(unit)
        except sa.exc.IntegrityError:
            log.warning("payment %s: claim refused by the attempts' unique key", payment_id)
            return PayOutcome("in_progress", self.ledger.get(payment_id))

    @contextmanager
    def _unit(self, payment_id: str) -> Iterator[Unit]:
        """:meth:`Ledger.update`, then the ``on_change`` and ``on_problem`` hooks once
        it committed."""
        with self.ledger.update(payment_id) as unit:
            yield unit
        if self._on_change is not None:
            for payment, old, new in unit.changes:
                try:
                    self._on_change(payment, old, new)
                except Exception:
                    log.exception("on_change hook failed for payment %s (%s -> %s)",
                                  payment.id, old.value, new.value)
        if self._on_problem is not None:
            for payment, problem in unit.problems:
                try:
                    self._on_problem(payment, problem)
                except Exception:
                    log.exception("on_problem hook failed for payment %s (%s)",
                                  payment.id, problem.kind)


def _latest_transaction(
    payment: Payment, attempts: list[PaymentAttempt]
) -> tuple[int | None, frozenset[int]]:
    """The gateway transaction of the payment's latest card attempt (``None``: it is
    to be found by invoice), and the transactions known from before it.

    A new charge of a ``failed`` payment (or of an abandoned 3-D Secure challenge)
    leaves the payment's ``gateway_transaction_id`` at the old transaction until the
    answer comes; while that charge is open (``pending`` or ``unknown``) the old
    transaction says nothing about it. Once the charge is settled (its answer, a
    notification, a reconcile, a widget payment found later), the payment's own id
    is the latest word. A ``created`` or ``failed`` payment is looked for by invoice:
    the payer may have paid through the widget, which we hear of only from the gateway.
    """
    known = {a.gateway_transaction_id for a in attempts if a.gateway_transaction_id}
    if payment.gateway_transaction_id is not None:
        known.add(payment.gateway_transaction_id)
    if payment.status in (S.CREATED, S.FAILED):
        return None, frozenset(known)
    starts = [i for i, a in enumerate(attempts) if a.operation in _CARD_ATTEMPTS]
    if not starts or not attempts[starts[-1]].open:
        return payment.gateway_transaction_id, frozenset()
    # The latest charge/auth is open: only a transaction it (or a post3ds after it)
    # recorded is its own; any other id we hold is older.
    ours = [a.gateway_transaction_id for a in attempts[starts[-1]:]
            if a.gateway_transaction_id is not None]
    return (ours[-1] if ours else None), frozenset(known - set(ours))


#: The reason code a payment fails with when the transaction of its own call does not
#: match it: the decline the gateway gives for the same Check code (docs/gateway.md §5.3).
_MISMATCH_REASON: Final[dict[CheckCode, int]] = {
    CheckCode.INVALID_INVOICE_ID: 3001,
    CheckCode.INVALID_ACCOUNT_ID: 3002,
    CheckCode.INVALID_AMOUNT: 3003,
    CheckCode.NOT_ACCEPTED: 3008,
    CheckCode.EXPIRED: 3004,
    CheckCode.ACCEPT: 3008,  # never a mismatch; here so that the lookup is total
}


def _mismatch_note(tx: Transaction, code: CheckCode) -> str:
    return (f"transaction {tx.transaction_id} ({tx.status}, {tx.amount} {tx.currency}) does "
            f"not match the payment (check code {int(code)}): not paid by it")


def _unseen_hold_captured(unit: Unit, tx: Transaction) -> bool:
    """Whether ``tx`` (found by invoice) may be the capture of a hold of the locked
    payment's that the ledger never saw held: the answer to our ``auth`` call was lost,
    or the payer's widget made the hold and the back office captured it before its
    ``Pay`` reached us (seeds 21483, 303887). A two-stage payment not settled yet,
    ``tx`` ``Completed``, owned by the payment (webhooks.owns: no subscription's, no
    token charge) and no transaction any of its attempts knew, while no card call of
    ours but an ``auth`` with no transaction yet is open (a widget hold made minutes
    before our form's auth is the payer's money as much as ours). With no id to prove
    it the payment's, the
    one settlement rule then holds it to the payment's amount exactly, with its
    currency and account."""
    payment = unit.payment
    if payment.scheme != "auth" or payment.status in PAID or payment.status is S.CANCELLED \
            or str(tx.status) != TransactionStatus.COMPLETED or not payment.owns(tx):
        return False
    attempts = unit.attempts()
    # A transaction any attempt of the payment already knew is an earlier one's.
    if tx.transaction_id in {a.gateway_transaction_id for a in attempts}:
        return False
    starts = [a for a in attempts if a.operation in _CARD_ATTEMPTS]
    if not starts or not starts[-1].open:
        return True
    # While a card call of ours is open, only its own hold (an auth whose answer was
    # lost) or the payer's widget hold may be this one, made before or after it: a
    # post3ds is about the transaction it names.
    latest = starts[-1]
    return latest.operation == "auth" and latest.gateway_transaction_id is None
