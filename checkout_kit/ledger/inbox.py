"""Gateway notifications in the ledger: the audit log, and applying each one once.

:class:`Inbox` is the only writer of ``checkout_notifications`` (one row per request
that reached the shop, forged ones included, with the raw bytes) and of
``checkout_notification_keys`` (one row per notification applied, keyed by
:func:`checkout_kit.webhooks.notification_key`), but for
:func:`checkout_kit.ledger.retention.purge_notifications`, which masks old bodies.

Applying happens in one transaction: under the payment's row lock (found by
``InvoiceId``, else by transaction id), the key is looked up; if it is there the
delivery is a duplicate and changes nothing; otherwise the effect is made through the
state machine, the key is inserted and the audit row says what happened. Where there
is no payment to lock (an unknown invoice, ``Recurrent``, ``Receipt``), the key's
primary key is what refuses the second of two concurrent deliveries.

The effects (docs/gateway.md §5.1, §5.4):

===========  ===========================================================================
``Check``    decided by the caller's ``decide`` (the default: webhooks.check_decision);
             the code is stored, so a repeated Check gets the same answer
``Pay``      ``created|failed -> processing -> succeeded`` (``authorized`` for a
             two-stage payment); a payment already succeeded is left alone (no-op);
             one already paid by another transaction records a ``duplicate`` problem
             (outcome ``payment_duplicate``: the shop refunds one); a charge the
             payment does not own (webhooks.owns: a subscription's, a token charge)
             is ``recorded`` with a note, for ``Fail`` too
``Fail``     a pending payment becomes ``failed`` with the reason; after a ``Pay`` it is
             only noted in the history: it never undoes a payment, nor does the Fail of
             an earlier attempt (an abandoned 3-D Secure challenge) fail the live one
``Confirm``  ``authorized -> succeeded`` with the captured amount
``Cancel``   ``authorized -> cancelled``
``Refund``   ``refunded_amount`` grows (``refunded`` once it is all); a refund counted
             before (the refunds table holds its transaction) is not counted twice;
             while a refund call of ours is in flight, or before the ledger has
             settled the payment (a delayed Pay or Confirm, a lost confirm answer:
             ``authorized``, ``unknown``, ``created``...), it is ``deferred``: answered
             non-zero, so that the gateway delivers it again (up to 100 times over
             about two days, docs/gateway.md §5.1). A Refund of a transaction provably
             not the payment's (the payment is settled on another) is a ``mismatch``
others       recorded only (``Recurrent``, ``Receipt``)
===========  ===========================================================================

Every payment-bound notification is checked against the payment first, by the one
settlement rule (webhooks.settlement_mismatch: account, amount, currency, and a Pay's
Status against the scheme) and, for ``Confirm``, ``Cancel`` and ``Refund``, its
transaction. A notification that does not match changes nothing and is recorded as
``mismatch``; a Pay that does not match is also a payment problem (money moved).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from .. import jsoncodec
from ..errors import PaymentConflictError, PaymentNotFoundError
from ..notifications import CheckCode, Notification, NotificationType
from ..webhooks import REJECT_CODE, Received, payment_mismatch
from .schema import notification_keys, notifications
from .states import FINAL, PAID, PaymentStatus
from .store import Ledger, Payment, PaymentProblem, ProblemKind, Unit, charge_columns

__all__ = [
    "OUTCOMES",
    "Applied",
    "CheckDecider",
    "Inbox",
    "NotificationRecord",
]

log = logging.getLogger(__name__)

S = PaymentStatus
T = NotificationType

#: What became of a delivery (``checkout_notifications.outcome``).
OUTCOMES: Final = {
    "received": "stored, not (yet) looked at",
    "refused": "not accepted: bad signature, unreadable body or sender not allowed",
    "applied": "applied to the ledger (a status or amount changed, or a history note)",
    "decided": "a Check answered from the ledger and the shop's rules",
    "recorded": "nothing to change in the ledger (Recurrent, Receipt, an already settled "
                "payment)",
    "duplicate": "applied before under the same key: acknowledged, changed nothing",
    "payment_duplicate": "a second payment for a payment already paid: recorded as a "
                         "problem for the shop to refund",
    "mismatch": "account, amount, currency or transaction differ from the payment",
    "unknown_payment": "no payment in the ledger for it",
    "deferred": "a Refund the ledger cannot count yet (a refund call of our own in "
                "flight, or the payment not settled yet): answered non-zero, so that the "
                "gateway delivers it again",
    "error": "failed inside the shop; the gateway will deliver it again",
}

#: ``decide(notification, payment_or_None) -> code`` for a Check.
CheckDecider = Callable[[Notification, Payment | None], int]

#: Types that change nothing in the ledger: they are recorded only.
_RECORDED_ONLY: Final = frozenset({T.RECURRENT, T.RECEIPT})
#: Payment operations whose lost (``unknown``) attempt a card notification settles.
_CARD_CALLS: Final = frozenset({"charge", "auth", "post3ds"})


@dataclass(frozen=True)
class NotificationRecord:
    """One row of the audit log. ``body`` is the raw bytes (the query string of a GET);
    ``headers`` the ones that matter (HMAC, content type, forwarding). Once
    ``purged_at`` is set the body is a masked copy (:mod:`.retention`)."""

    id: int
    type: str
    method: str
    body: bytes = field(repr=False)
    headers: Mapping[str, str] = field(repr=False)
    remote_addr: str | None = field(repr=False)
    signature_valid: bool
    applied: bool
    outcome: str
    code: int | None
    key: str | None
    payment_id: str | None
    replay_of: int | None
    error: str | None
    received_at: datetime
    purged_at: datetime | None = None

    @classmethod
    def _from_row(cls, row: RowMapping) -> NotificationRecord:
        data = dict(row)
        data["body"] = bytes(data["body"])
        data["headers"] = jsoncodec.loads(data["headers"])
        return cls(**data)


@dataclass(frozen=True)
class Applied:
    """What :meth:`Inbox.apply` did. ``code`` is the answer for the gateway.
    ``changes`` are the payment's status changes ``(payment, old, new)``, committed;
    ``refunded`` the amount a Refund added (also when the status stayed)."""

    record: NotificationRecord
    code: int
    payment: Payment | None = None
    changes: tuple[tuple[Payment, PaymentStatus, PaymentStatus], ...] = ()
    refunded: Decimal | None = None
    #: problems recorded (a duplicate or mismatched payment), committed
    problems: tuple[tuple[Payment, PaymentProblem], ...] = ()

    @property
    def duplicate(self) -> bool:
        """Whether this delivery repeated one applied before."""
        return self.record.outcome == "duplicate"

    @property
    def applied(self) -> bool:
        """Whether this delivery was the one applied (a duplicate is not)."""
        return self.record.applied


@dataclass
class _Effect:
    outcome: str
    code: int = 0
    error: str | None = None
    refunded: Decimal | None = None

    @property
    def consumes_key(self) -> bool:
        # Only what was acted on is "applied once"; a mismatch or an unknown payment may
        # be replayed once the shop fixed its side.
        return self.outcome in ("applied", "decided", "recorded", "payment_duplicate")


def _key_text(key: tuple[str, str, str]) -> str:
    return ":".join(key)


#: Lengths of the key columns (``checkout_notification_keys``).
_KEY_LIMITS: Final = (20, 255, 320)


def _stored_key(key: tuple[str, str, str]) -> tuple[str, str, str]:
    """The key as stored: a part longer than its column (or holding a NUL, which
    PostgreSQL's text cannot) is replaced by its SHA-256, so that an unusual but signed
    identifier still has one key, never a database error."""
    parts = []
    for part, limit in zip(key, _KEY_LIMITS, strict=True):
        if len(part) > limit or "\x00" in part:
            part = "sha256:" + hashlib.sha256(part.encode("utf-8")).hexdigest()
        parts.append(part[:limit])
    return parts[0], parts[1], parts[2]


def _clean(text: str | None, limit: int = 2000) -> str | None:
    # PostgreSQL's text cannot hold NUL; an error message may quote received bytes.
    return None if text is None else text.replace("\x00", "\\x00")[:limit]


class Inbox:
    """The notification log and the exactly-once application over a :class:`Ledger`."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def __repr__(self) -> str:
        return f"Inbox({self.ledger!r})"

    # --- the audit log ----------------------------------------------------------------

    def record(
        self,
        *,
        type: str,
        method: str,
        body: bytes,
        headers: Mapping[str, str],
        remote_addr: str | None,
        signature_valid: bool,
        outcome: str = "received",
        code: int | None = None,
        error: str | None = None,
        replay_of: int | None = None,
    ) -> NotificationRecord:
        """Store one request as it arrived, in its own transaction (so that it is kept
        whatever happens next)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        values = {
            "type": type[:20], "method": method[:10], "body": bytes(body),
            "headers": jsoncodec.dumps(dict(headers)),
            "remote_addr": _clean(remote_addr, 64),
            "signature_valid": signature_valid, "applied": False, "outcome": outcome,
            "code": code, "key": None, "payment_id": None, "replay_of": replay_of,
            "error": _clean(error), "received_at": self.ledger.now(),
        }
        with self.ledger.engine.begin() as conn:
            new_id = conn.execute(notifications.insert().values(**values)).inserted_primary_key
            assert new_id is not None
            return self._read(conn, int(new_id[0]))

    def get(self, record_id: int) -> NotificationRecord:
        """One audit row (``LookupError`` when there is none)."""
        with self.ledger.engine.connect() as conn:
            return self._read(conn, record_id)

    def list(
        self, *, type: str | None = None, payment_id: str | None = None, limit: int = 100
    ) -> list[NotificationRecord]:
        """Audit rows, newest first, optionally of one type or one payment."""
        query = sa.select(notifications).order_by(notifications.c.id.desc()).limit(limit)
        if type is not None:
            query = query.where(sa.func.lower(notifications.c.type) == type.lower())
        if payment_id is not None:
            query = query.where(notifications.c.payment_id == payment_id)
        with self.ledger.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [NotificationRecord._from_row(row) for row in rows]

    def applied_count(self, key: tuple[str, str, str]) -> int:
        """How many times ``key`` was applied (0 or 1: the key is a primary key)."""
        with self.ledger.engine.connect() as conn:
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(notification_keys)
                .where(*self._key_filter(_stored_key(key)))).scalar_one())

    def mark(self, record_id: int, *, outcome: str, error: str | None = None,
             code: int | None = None) -> NotificationRecord:
        """Set a stored row's outcome (a delivery that failed inside the shop)."""
        with self.ledger.engine.begin() as conn:
            conn.execute(notifications.update().where(notifications.c.id == record_id).values(
                outcome=outcome, code=code, error=_clean(error)))
            return self._read(conn, record_id)

    # --- applying ---------------------------------------------------------------------

    def apply(self, record_id: int, received: Received, decide: CheckDecider) -> Applied:
        """Apply a verified notification (stored as ``record_id``) exactly once."""
        key = _stored_key(received.key)
        payment = self._payment_for(received)
        try:
            with self._transaction(payment) as (conn, unit):
                stored = conn.execute(
                    sa.select(notification_keys.c.code).where(*self._key_filter(key))
                ).scalar_one_or_none()
                current = unit.payment if unit is not None else None
                if stored is not None:
                    effect = _Effect("duplicate", code=int(stored))
                else:
                    effect = self._effect(received, unit, current, decide)
                    if effect.consumes_key:
                        conn.execute(notification_keys.insert().values(
                            type=key[0], ident=key[1], qualifier=key[2],
                            notification_id=record_id, code=effect.code,
                            applied_at=self.ledger.now()))
                if unit is not None:
                    current = unit.payment
                record = self._finish(conn, record_id, key, effect, current)
                changes = tuple(unit.changes) if unit is not None else ()
                problems = tuple(unit.problems) if unit is not None else ()
        except sa.exc.IntegrityError:
            # A concurrent delivery of the same notification inserted the key first
            # (possible only where no payment row was there to lock).
            with self.ledger.engine.begin() as conn:
                stored = conn.execute(
                    sa.select(notification_keys.c.code).where(*self._key_filter(key))
                ).scalar_one_or_none()
                if stored is None:
                    raise
                effect = _Effect("duplicate", code=int(stored))
                record = self._finish(conn, record_id, key, effect, payment)
            return Applied(record, effect.code, payment)
        return Applied(record, effect.code, current, changes, effect.refunded, problems)

    @contextmanager
    def _transaction(
        self, payment: Payment | None
    ) -> Iterator[tuple[Connection, Unit | None]]:
        if payment is None:
            with self.ledger.engine.begin() as conn:
                yield conn, None
            return
        with self.ledger.update(payment.id) as unit:
            yield unit.connection, unit

    def _finish(self, conn: Connection, record_id: int, key: tuple[str, str, str],
                effect: _Effect, payment: Payment | None) -> NotificationRecord:
        if effect.error is not None:
            log.warning("notification %s (%s): %s", record_id, effect.outcome, effect.error)
        conn.execute(notifications.update().where(notifications.c.id == record_id).values(
            applied=effect.consumes_key, outcome=effect.outcome, code=effect.code,
            key=_key_text(key)[:600], payment_id=None if payment is None else payment.id,
            error=_clean(effect.error)))
        return self._read(conn, record_id)

    def _payment_for(self, received: Received) -> Payment | None:
        """The ledger payment a notification is about: by ``InvoiceId``, else by the
        gateway transaction (for a Refund: the refunded payment's)."""
        n = received.notification
        if n is None or n.type in _RECORDED_ONLY:
            return None
        if n.invoice_id:
            try:
                return self.ledger.get_by_invoice(n.invoice_id)
            except PaymentNotFoundError:
                return None
        tx = n.payment_transaction_id if n.type is T.REFUND else n.transaction_id
        return None if tx is None else self.ledger.find_by_transaction(tx)

    def _effect(self, received: Received, unit: Unit | None, payment: Payment | None,
                decide: CheckDecider) -> _Effect:
        n = received.notification
        if n is None or n.type in _RECORDED_ONLY:
            return _Effect("recorded")
        if n.type is T.CHECK:
            return _Effect("decided", code=int(decide(n, payment)))
        if unit is None or payment is None:
            return _Effect("unknown_payment", error=f"no payment for invoice {n.invoice_id!r}"
                           f" / transaction {n.transaction_id}")
        if n.type in (T.PAY, T.FAIL) and not payment.owns(n):
            # A subscription's recurrent charge (it names the invoice of the payment
            # that started it) or a token charge of the shop's: money moved, but not
            # for this payment, which it neither pays twice nor contradicts.
            unit.note(f"{n.type.value} notification {n.transaction_id} of a charge not the "
                      f"payment's own (SubscriptionId {n.subscription_id or '-'}"
                      f"{'' if n.tr_initiator_code is None else ', a token charge'})")
            return _Effect("recorded")
        if n.type is T.PAY and unit.already_settled_by(n.transaction_id):
            return _Effect("recorded")
        partial = n.type in (T.CONFIRM, T.REFUND, T.CANCEL)
        mismatch = payment_mismatch(n, payment, partial=partial,
                                    status=n.status if n.type is T.PAY else None,
                                    scheme=payment.scheme)
        if mismatch is not None:
            what = {CheckCode.INVALID_ACCOUNT_ID: "account",
                    CheckCode.INVALID_AMOUNT: "amount/currency"}.get(mismatch, "scheme")
            error = f"{n.type.value}: another {what} than payment {payment.id}" + (
                f" (Status={n.status}, {payment.scheme} payment)" if what == "scheme" else "")
            if n.type is T.PAY and n.transaction_id is not None:
                # Money moved on our invoice, but not as the payment says: the shop sees it.
                unit.record_problem("mismatch", transaction_id=n.transaction_id,
                                    amount=n.amount, currency=n.currency,
                                    detail=f"{error} (Pay {n.transaction_id}, {n.amount} "
                                           f"{n.currency}, Status {n.status})")
            return _Effect("mismatch", error=error)
        handler = _HANDLERS[n.type]
        return handler(unit, n)

    # --- internals --------------------------------------------------------------------

    @staticmethod
    def _key_filter(key: tuple[str, str, str]) -> tuple[Any, ...]:
        return (notification_keys.c.type == key[0], notification_keys.c.ident == key[1],
                notification_keys.c.qualifier == key[2])

    @staticmethod
    def _read(conn: Connection, record_id: int) -> NotificationRecord:
        row = conn.execute(
            sa.select(notifications).where(notifications.c.id == record_id)
        ).mappings().one_or_none()
        if row is None:
            raise LookupError(f"no notification {record_id}")
        return NotificationRecord._from_row(row)


# --------------------------------------------------------------------------- effects


def _settle_lost_calls(unit: Unit) -> None:
    # A charge whose answer was lost is settled by the notification: reconcile need
    # not ask about it any more.
    for attempt in unit.attempts(outcome="unknown"):
        if attempt.operation in _CARD_CALLS:
            unit.finish_attempt(attempt, "reconciled")


def _pay(unit: Unit, n: Notification) -> _Effect:
    payment = unit.payment
    # The payment's scheme decides what Pay means (its Status was held to it by the
    # settlement rule, docs/gateway.md §5.4).
    target = S.AUTHORIZED if payment.scheme == "auth" else S.SUCCEEDED
    extra = unit.record_extra_charge(n.transaction_id, amount=n.amount, currency=n.currency,
                                     source=f"Pay notification {n.transaction_id}")
    if extra is ProblemKind.DUPLICATE:
        # A widget open in two tabs, paid twice: the payer is owed one back.
        return _Effect("payment_duplicate", error=f"payment {payment.id}: {n.transaction_id} "
                                                  f"is a second charge")
    if extra is ProblemKind.PAID_AFTER_CANCEL:
        return _Effect("applied", error=f"payment {payment.id} is cancelled; Pay "
                                        f"{n.transaction_id} took the money")
    if extra is ProblemKind.MISMATCH:
        # Told apart before (a lookup found it did not fit): the shop refunds it.
        return _Effect("mismatch", error=f"Pay {n.transaction_id} was told apart from "
                                         f"payment {payment.id}: not paid by it")
    if payment.status is S.CANCELLED or unit.settled_by_charge():
        return _Effect("recorded")  # the page (or an earlier notification) got there first
    if payment.status in (S.CREATED, S.FAILED):
        unit.transition(S.PROCESSING, note="Pay notification: paid at the gateway")
    unit.transition(target, note=f"Pay notification {n.transaction_id}", reason_code=None,
                    cardholder_message=None, **charge_columns(n))
    _settle_lost_calls(unit)
    return _Effect("applied")


def _fail(unit: Unit, n: Notification) -> _Effect:
    payment = unit.payment
    reason = f"{n.reason_code} {n.reason or ''}".strip()
    if payment.status is S.CANCELLED or unit.settled_by_charge():
        # A decline of another attempt (or a backup acquirer's) never undoes a payment.
        unit.note(f"Fail notification {n.transaction_id} ({reason}) after the payment")
        return _Effect("applied")
    if payment.status in (S.PROCESSING, S.UNKNOWN) and (
            payment.gateway_transaction_id != n.transaction_id) and any(
            a.operation in _CARD_CALLS and a.open for a in unit.attempts()):
        # Our charge is on its way, or its answer was lost: its transaction is not known,
        # so this decline may be another tab's (the widget, another card) while ours
        # took the money. It answers for itself only: our call's answer, its Pay, or
        # reconcile (which reads the invoice's operations) settles the payment, as
        # refresh does with a decline it finds by invoice.
        unit.note(f"Fail notification {n.transaction_id} ({reason}) while a charge of "
                  f"ours is open: not taken as its outcome")
        return _Effect("applied")
    if payment.status is S.FAILED:
        return _Effect("recorded")
    earlier = (payment.gateway_transaction_id == n.transaction_id
               if payment.status in (S.PROCESSING, S.UNKNOWN)
               # The live challenge is the payment's transaction: a Fail of another one
               # is an abandoned challenge's (the gateway gives up on it later).
               else payment.status is S.AWAITING_3DS
               and payment.gateway_transaction_id != n.transaction_id)
    if earlier:
        # The payer is already trying again (its answer may be lost: unknown); this is
        # the earlier attempt's decline, which says nothing of the new charge.
        unit.note(f"Fail notification {n.transaction_id} ({reason}) of an earlier attempt")
        return _Effect("applied")
    if payment.status is S.CREATED:
        unit.transition(S.PROCESSING, note="Fail notification: declined at the gateway")
    columns = charge_columns(n)
    if n.card_holder_message:
        columns["cardholder_message"] = n.card_holder_message
    unit.transition(S.FAILED, note=f"Fail notification {n.transaction_id}: {reason}",
                    reason_code=n.reason_code, **columns)
    _settle_lost_calls(unit)
    return _Effect("applied")


def _other_transaction(unit: Unit, tx: int | None, n: Notification) -> _Effect | None:
    payment = unit.payment
    if tx is None or payment.gateway_transaction_id != tx:
        return _Effect("mismatch", error=f"{n.type.value} for transaction {tx}; payment "
                                         f"{payment.id} is {payment.gateway_transaction_id}")
    return None


def _confirm(unit: Unit, n: Notification) -> _Effect:
    not_yet = _not_yet(unit, n, frozenset({S.AUTHORIZED, S.UNKNOWN, S.SUCCEEDED}))
    if not_yet is not None:
        return not_yet
    payment = unit.payment
    if payment.status is S.SUCCEEDED or payment.status is S.REFUNDED:
        return _Effect("recorded")  # our own confirm call recorded it already
    if payment.status not in (S.AUTHORIZED, S.UNKNOWN):
        unit.note(f"Confirm notification in status {payment.status.value}")
        return _Effect("applied", error=f"Confirm for payment {payment.id} in status "
                                        f"{payment.status.value}")
    unit.transition(S.SUCCEEDED, note=f"Confirm notification: {n.amount} captured",
                    amount=n.amount)
    return _Effect("applied")


def _cancel(unit: Unit, n: Notification) -> _Effect:
    not_yet = _not_yet(unit, n, frozenset({S.AUTHORIZED, S.UNKNOWN, S.AWAITING_3DS}))
    if not_yet is not None:
        return not_yet
    payment = unit.payment
    if payment.status is S.CANCELLED:
        return _Effect("recorded")
    if payment.status not in (S.AUTHORIZED, S.UNKNOWN, S.AWAITING_3DS):
        unit.note(f"Cancel notification in status {payment.status.value}")
        return _Effect("applied", error=f"Cancel for payment {payment.id} in status "
                                        f"{payment.status.value}")
    unit.transition(S.CANCELLED, note="Cancel notification")
    return _Effect("applied")


#: Statuses in which a payment's transaction is settled for good: a Refund of another
#: transaction is then provably not of this payment.
_SETTLED: Final = PAID | {S.CANCELLED}


def _not_yet(unit: Unit, n: Notification, ready: frozenset[S]) -> _Effect | None:
    """A Refund, Cancel or Confirm the ledger cannot apply yet, because it has not
    settled the payment on the transaction it is about (a delayed Pay or Confirm, our
    own call still in flight, a lost answer): deferred, answered non-zero, so that the
    gateway delivers it again once it has (docs/gateway.md §5.1). ``ready``: the
    statuses in which the handler can apply it to the payment's own transaction.

    One about a transaction that is provably not the payment's (it is settled on
    another, or cancelled, or the transaction is one the ledger already refused for it,
    as a problem to refund or a mismatched answer) is a ``mismatch`` answered 0:
    deferring it would only repeat it to the end of the gateway's retries."""
    payment = unit.payment
    # A Refund names the refunded transaction apart; a Cancel or Confirm is its own.
    tx = n.payment_transaction_id if n.type is T.REFUND else n.transaction_id
    if tx is None or payment.gateway_transaction_id != tx:
        if tx is None or payment.status in _SETTLED or unit.settled_by_charge() or (
                tx in unit.refused_transactions()):
            # Paid (or held, or voided) by another transaction: this one is a second
            # charge (recorded as a duplicate problem), a subscription's or a token
            # charge's, never this payment's.
            return _other_transaction(unit, tx, n)
        # Not settled yet (created, processing, awaiting_3ds, failed, unknown): the
        # transaction may be the one a delayed Pay or a lookup settles it on.
        return _Effect("deferred", code=int(REJECT_CODE),
                       error=f"{n.type.value} of transaction {tx} before payment "
                             f"{payment.id} is settled ({payment.status.value}); deliver "
                             f"again")
    if payment.status in ready or payment.status in FINAL:
        return None  # applied by the handler, or noted (a final status takes nothing)
    # The payment's own transaction, in a status the ledger has not settled yet (a
    # delayed Confirm before a Refund, a call of ours in flight): its own report comes
    # first, then this.
    return _Effect("deferred", code=int(REJECT_CODE),
                   error=f"{n.type.value} of transaction {tx} while payment {payment.id} "
                         f"is {payment.status.value}; deliver again once it is settled")


def _refund(unit: Unit, n: Notification) -> _Effect:
    not_yet = _not_yet(unit, n, frozenset({S.SUCCEEDED}))
    if not_yet is not None:
        return not_yet
    assert n.amount is not None  # payment_mismatch refused a notification without one
    assert n.transaction_id is not None  # the key of every card notification
    if unit.refund_counted(n.transaction_id):
        return _Effect("recorded")  # our refund call's answer, or a lookup, counted it
    if any(a.operation == "refund" and a.open for a in unit.attempts()):
        # It may be our own call's refund, whose transaction we learn only from the
        # answer: count it now and the answer would count it again. Answered non-zero,
        # it comes again (docs/gateway.md §5.1) once the call has ended and the
        # refunds table tells ours from a back office's.
        return _Effect("deferred", code=int(REJECT_CODE),
                       error="a refund call of ours is in flight or unknown; deliver again")
    payment = unit.payment
    if payment.status is not S.SUCCEEDED:
        # refunded or cancelled: final, nothing more to count (a refund beyond the
        # payment would be refused by count_refund anyway).
        unit.note(f"Refund notification {n.transaction_id} in status {payment.status.value}")
        return _Effect("applied", error=f"Refund for payment {payment.id} in status "
                                        f"{payment.status.value}")
    try:
        unit.count_refund(n.transaction_id, n.amount, source="notification",
                          note=f"Refund notification {n.transaction_id}: {n.amount} refunded")
    except PaymentConflictError as exc:
        return _Effect("mismatch", error=exc.message)
    return _Effect("applied", refunded=n.amount)


_HANDLERS: Final[dict[NotificationType, Callable[[Unit, Notification], _Effect]]] = {
    T.PAY: _pay,
    T.FAIL: _fail,
    T.CONFIRM: _confirm,
    T.CANCEL: _cancel,
    T.REFUND: _refund,
}
