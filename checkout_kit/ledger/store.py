"""The ledger: payments, their gateway attempts and their status history in SQL.

:class:`Ledger` is the only writer of the tables in :mod:`.schema`. Reads return
frozen snapshots (:class:`Payment`, :class:`PaymentAttempt`, :class:`PaymentEvent`).
Every write to a payment happens inside :meth:`Ledger.update`, a transaction that
holds the payment's row lock (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite every
ledger transaction starts with ``BEGIN IMMEDIATE``, which takes the database's write
lock up front), and every status change inside it passes
:func:`~checkout_kit.ledger.states.check_transition` and appends a history row.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Protocol, Unpack, overload

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from .. import jsoncodec
from ..errors import (
    InvalidRequestError,
    PaymentConflictError,
    PaymentNotFoundError,
    ProblemNotFoundError,
)
from ..models import INT64_MAX, INT64_MIN, mask_token
from ..money import MAX_AMOUNT
from ..webhooks import ChargeOperation, owns
from .requests import SCHEMES, PaymentFields, PaymentRequest, checked_text
from .schema import attempts, events, lookups, metadata, payments, problems, refunds
from .states import PAID, PaymentStatus, check_transition

__all__ = [
    "SCHEMES",
    "Ledger",
    "Payment",
    "PaymentAttempt",
    "PaymentEvent",
    "PaymentProblem",
    "ProblemKind",
    "ProblemPage",
    "Unit",
    "create_ledger_engine",
    "mask_email",
    "prepare_engine",
]

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _new_payment_id() -> str:
    # 128 random bits, URL-safe: the id appears in the shop's payment page URLs.
    return "pay_" + secrets.token_urlsafe(16)


def mask_email(email: str | None) -> str | None:
    """An e-mail address shortened for reprs and logs (``j***@example.com``)."""
    if email is None:
        return None
    local, at, domain = email.rpartition("@")
    if not at:
        return "***"
    return (local[:1] or "") + "***@" + domain


@dataclass(frozen=True, repr=False)
class Payment:
    """A snapshot of one payment row. ``metadata`` is the shop's JSON value as given."""

    id: str
    invoice_id: str
    account_id: str | None
    email: str | None
    description: str
    amount: Decimal
    currency: str
    scheme: str
    status: PaymentStatus
    gateway_transaction_id: int | None
    token: str | None
    test_mode: bool
    metadata: Any
    success_url: str | None
    fail_url: str | None
    refunded_amount: Decimal
    reason_code: int | None
    cardholder_message: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    expires_at: datetime | None = None
    #: The subscription the payment's own charge started (a recurrent widget's), as its
    #: Pay or a lookup named it (revision 0007); ``None``: none named (see
    #: :attr:`known_subscription`).
    subscription_id: str | None = None

    @property
    def known_subscription(self) -> str | None:
        """The subscription the payment started, as far as the ledger can tell: the one
        its charge named; ``""`` (none) when nothing of its own was ever charged (a
        payment cancelled before anyone paid starts none); ``None`` when it is not known
        (paid by a call whose answer names no subscription, or recorded before revision
        0007), and :func:`checkout_kit.webhooks.owns` then takes a subscription's charge
        on its invoice for the subscription's."""
        if self.subscription_id is not None:
            return self.subscription_id
        return "" if self.gateway_transaction_id is None else None

    def owns(self, operation: ChargeOperation) -> bool:
        """Whether a charge found by this payment's invoice (a notification, a gateway
        transaction) is the payment's own: :func:`checkout_kit.webhooks.owns`, with what
        the ledger knows of its transaction and the subscription it started."""
        return owns(operation, self, payment_transaction_id=self.gateway_transaction_id,
                    payment_subscription_id=self.known_subscription)

    def expired(self, now: datetime) -> bool:
        """Whether ``expires_at`` has come at ``now``: the payment is not charged any
        more (by our calls; the gateway refuses it only where Check is configured)."""
        return self.expires_at is not None and now >= self.expires_at

    @property
    def refundable_amount(self) -> Decimal:
        """What may still be refunded (zero unless the payment succeeded)."""
        if self.status is not PaymentStatus.SUCCEEDED:
            return Decimal(0).quantize(self.amount)
        return self.amount - self.refunded_amount

    def __repr__(self) -> str:
        return (
            f"Payment(id={self.id!r}, invoice_id={self.invoice_id!r}, status={self.status.value!r},"
            f" amount={self.amount!s} {self.currency}, refunded={self.refunded_amount!s},"
            f" scheme={self.scheme!r}, transaction={self.gateway_transaction_id!r},"
            f" email={mask_email(self.email)!r}, token={mask_token(self.token)!r},"
            f" version={self.version})"
        )

    @classmethod
    def _from_row(cls, row: RowMapping | Mapping[str, Any]) -> Payment:
        data = dict(row)
        data["status"] = PaymentStatus(data["status"])
        text = data["metadata"]
        data["metadata"] = None if text is None else jsoncodec.loads(text)
        return cls(**data)


@dataclass(frozen=True)
class PaymentAttempt:
    """One gateway call made for a payment.

    ``operation``: ``charge``, ``auth``, ``post3ds``, ``confirm``, ``void`` or ``refund``.
    ``outcome``: ``pending`` (sent or about to be), ``succeeded``, ``authorized``,
    ``three_ds``, ``declined``, ``rejected`` (refused before processing), ``error``
    (not sent), ``mismatch`` (answered with a transaction that is not the payment's:
    another amount, currency, account or scheme), ``unknown`` (may or may not have
    happened) or ``reconciled`` (was unknown; a lookup settled the payment).
    """

    id: int
    payment_id: str
    number: int
    operation: str
    request_id: str
    amount: Decimal | None
    outcome: str
    gateway_transaction_id: int | None
    reason_code: int | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None

    @property
    def open(self) -> bool:
        """Whether its answer is not in: ``pending`` (on its way) or ``unknown`` (lost).
        Until a lookup settles it, the gateway may have acted on it or may still."""
        return self.outcome in _OPEN_OUTCOMES


@dataclass(frozen=True)
class PaymentEvent:
    """One status change in the append-only history (``old_status`` is ``None`` for
    the creation)."""

    id: int
    payment_id: str
    old_status: PaymentStatus | None
    new_status: PaymentStatus
    note: str | None
    created_at: datetime


class ProblemKind(enum.StrEnum):
    """What kind of money moved without settling a payment."""

    DUPLICATE = "duplicate"
    """A second charge on the payment's invoice: refund it."""
    MISMATCH = "mismatch"
    """Another amount, currency, account or scheme than the payment's."""
    PAID_AFTER_CANCEL = "paid_after_cancel"
    """A charge that arrived after the payment was cancelled."""


@dataclass(frozen=True)
class PaymentProblem:
    """Money the ledger saw move but did not settle the payment with (see
    :data:`~checkout_kit.ledger.schema.problems`): ``kind`` is a :class:`ProblemKind`.
    ``resolved_at`` is set once the shop has dealt with it
    (:meth:`Ledger.resolve_problem`); until then the problem is open."""

    id: int
    payment_id: str
    kind: ProblemKind
    gateway_transaction_id: int | None
    amount: Decimal | None
    currency: str | None
    detail: str | None
    created_at: datetime
    resolved_at: datetime | None = None

    @classmethod
    def _from_row(cls, row: RowMapping, prefix: str = "") -> PaymentProblem:
        data = {f.name: row[prefix + f.name] for f in fields(cls)}
        data["kind"] = ProblemKind(data["kind"])
        return cls(**data)


@dataclass(frozen=True)
class ProblemPage:
    """One page of :meth:`Ledger.payments_with_problems`: each payment with its
    problems (newest first), and whether more payments follow this page."""

    payments: list[tuple[Payment, list[PaymentProblem]]]
    more: bool


def _event(row: RowMapping) -> PaymentEvent:
    old = row["old_status"]
    return PaymentEvent(
        id=row["id"], payment_id=row["payment_id"],
        old_status=None if old is None else PaymentStatus(old),
        new_status=PaymentStatus(row["new_status"]), note=row["note"],
        created_at=row["created_at"],
    )


#: Payment columns a caller of :meth:`Unit.update` may change (never id, invoice,
#: currency, scheme: those are the payment; status goes through transition).
_MUTABLE: Final = frozenset({
    "amount",  # a partial confirmation captures less than was authorized
    "gateway_transaction_id", "token", "test_mode", "refunded_amount", "reason_code",
    "cardholder_message", "account_id", "email", "subscription_id",
})
#: The longest ``SubscriptionId`` the payments table keeps (schema.payments).
_SUBSCRIPTION_ID_LENGTH: Final = 64
#: Attempt columns :meth:`Unit.finish_attempt` may set.
_ATTEMPT_RESULT: Final = frozenset({"gateway_transaction_id", "reason_code", "error"})
#: The history note of the shop's giving up on an unpaid payment (Unit.cancel_unpaid).
_CANCELLED_UNPAID: Final = "cancelled before payment"
#: Attempt outcomes whose answer is not in (PaymentAttempt.open).
_OPEN_OUTCOMES: Final = ("pending", "unknown")


class ReportedCharge(ChargeOperation, Protocol):
    """A charge as the gateway reports it: a card notification or a
    :class:`~checkout_kit.models.Transaction`."""

    @property
    def test_mode(self) -> bool | None: ...
    @property
    def token(self) -> str | None: ...


def charge_columns(charge: ReportedCharge) -> dict[str, Any]:
    """The payment columns a charge of its own tells: its transaction, test mode,
    card token, and the subscription it started (a recurrent widget's; kept where the
    column holds it, so that a forged-looking id never turns a record into a 500)."""
    columns: dict[str, Any] = {"gateway_transaction_id": charge.transaction_id}
    if charge.test_mode is not None:
        columns["test_mode"] = charge.test_mode
    if charge.token:
        columns["token"] = charge.token
    if charge.subscription_id and len(charge.subscription_id) <= _SUBSCRIPTION_ID_LENGTH:
        columns["subscription_id"] = charge.subscription_id
    return columns


def create_ledger_engine(url: str | sa.URL) -> Engine:
    """An engine for ``url`` set up for the ledger (see :func:`prepare_engine`)."""
    engine = sa.create_engine(url)
    prepare_engine(engine)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's begin event, not the driver, say when a transaction starts.
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA busy_timeout = 30000")
    dbapi_connection.execute("PRAGMA foreign_keys = ON")


#: The execution option of the ledger's read-only connections (:meth:`Ledger._reading`).
_READ_ONLY: Final = "checkout_kit_read_only"


def _sqlite_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(_READ_ONLY):
        # A read needs no write lock, nor a BEGIN: each SELECT runs in SQLite's own
        # autocommit transaction (one consistent snapshot, the shared lock only), so
        # readers neither wait for each other nor for a unit.
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def prepare_engine(engine: Engine) -> Engine:
    """Make SQLite transactions take the write lock at ``BEGIN`` (``BEGIN IMMEDIATE``).

    With SQLite's default deferred ``BEGIN``, two transactions may both read a
    payment and then race for the lock; ``IMMEDIATE`` makes the second wait before it
    reads, which is the row lock SQLite cannot give. The ledger's read-only
    connections (which never write) send no ``BEGIN``, so pages that only read do not
    queue behind each other. Other databases are left alone.
    Connections the engine already pooled keep their settings, so prepare an engine
    before its first use. Safe to call twice.
    """
    if engine.dialect.name != "sqlite" or sa.event.contains(engine, "begin", _sqlite_begin):
        return engine
    sa.event.listen(engine, "connect", _sqlite_connect)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


class Unit:
    """One ledger transaction on one payment, holding its row lock.

    Obtained from :meth:`Ledger.update`; valid only inside its ``with`` block.
    ``payment`` is kept current after each change; ``changes`` lists the status
    changes made (``(payment, old, new)``), for hooks to run after the commit.
    """

    def __init__(self, ledger: Ledger, conn: Connection, payment: Payment) -> None:
        self._ledger = ledger
        self._conn = conn
        self.payment = payment
        self.changes: list[tuple[Payment, PaymentStatus, PaymentStatus]] = []
        #: problems recorded in this unit (a repeat of one recorded before is not)
        self.problems: list[tuple[Payment, PaymentProblem]] = []

    def transition(
        self, new: PaymentStatus | str, *, note: str | None = None, **changes: Any
    ) -> Payment:
        """Move the payment to ``new`` (checked against the state machine), set the
        given columns, and append the change to the history."""
        old = self.payment.status
        status = check_transition(old, new)
        payment = self._write(status=status.value, **changes)
        self._conn.execute(events.insert().values(
            payment_id=payment.id, old_status=old.value, new_status=status.value,
            note=note, created_at=payment.updated_at,
        ))
        self.changes.append((payment, old, status))
        return payment

    def update(self, **changes: Any) -> Payment:
        """Set columns that are not the status (``refunded_amount``, ``token``...)."""
        return self._write(**changes)

    def note(self, text: str) -> None:
        """Append ``text`` to the history without a status change (``old_status`` and
        ``new_status`` are both the current one): something happened that the status
        does not show, such as a Fail notification after the payment succeeded."""
        status = self.payment.status.value
        self._conn.execute(events.insert().values(
            payment_id=self.payment.id, old_status=status, new_status=status,
            note=text, created_at=self._ledger.now(),
        ))

    def record_problem(
        self, kind: ProblemKind | str, *, transaction_id: int | None, amount: Decimal | None,
        currency: str | None, detail: str,
    ) -> PaymentProblem | None:
        """Record money that moved without settling the payment, once per ``(kind,
        transaction)``, with a history note; ``None`` when it was recorded before (even
        if it was resolved since: it is the same money)."""
        kind = ProblemKind(kind)  # an unknown kind is a bug: ValueError before any write
        found = self._conn.execute(sa.select(problems.c.id).where(
            problems.c.payment_id == self.payment.id, problems.c.kind == kind,
            problems.c.gateway_transaction_id == transaction_id)).first()
        if found is not None:
            return None
        # What a notification claims is kept only where the columns can hold it: a
        # forged-looking amount or currency must not turn a record into a 500.
        fits = amount is not None and amount.is_finite() and abs(amount) <= MAX_AMOUNT and (
            amount == amount.quantize(Decimal("0.01")))
        values: dict[str, Any] = {
            "payment_id": self.payment.id, "kind": kind.value,
            "gateway_transaction_id": transaction_id, "amount": amount if fits else None,
            "currency": currency if currency and len(currency) <= 3 else None,
            "detail": detail.replace("\x00", "")[:2000], "created_at": self._ledger.now()}
        new_id = self._conn.execute(problems.insert().values(**values)).inserted_primary_key
        assert new_id is not None
        self.note(f"{kind}: {detail}")
        problem = PaymentProblem(id=int(new_id[0]), **{**values, "kind": kind})
        self.problems.append((self.payment, problem))
        return problem

    def record_extra_charge(
        self, transaction_id: int | None, *, amount: Decimal | None, currency: str | None,
        source: str,
    ) -> ProblemKind | None:
        """The one rule for a charge's success reported after the payment is settled
        (its answer, a Pay notification, a lookup): money the shop must give back is
        recorded as a problem, and its kind returned. ``None``: the success is not extra
        (the payment is not settled yet, or it is the payment's own transaction), and
        the caller settles or keeps the payment as usual.

        - Paid, held or refunded by another transaction: a ``duplicate`` (a widget in two
          tabs).
        - Cancelled after its own charge or hold took money (voided, expired): any other
          success is a ``duplicate`` of it too; a success of the own transaction is a
          late report of the hold that was voided (two-stage), or money taken after the
          cancel.
        - Cancelled before anything of its own took money (never paid, or declined):
          ``paid_after_cancel``.
        - Whatever the payment's status, a transaction the ledger has already told apart
          from it (:meth:`told_apart`): the kind it was told apart as, recorded nothing
          new. A transaction the shop was asked to refund never pays the payment too.
        """
        told = self.told_apart(transaction_id)
        if told is not None:
            return told  # recorded already: it never settles the payment, by any path
        payment = self.payment
        own = payment.gateway_transaction_id
        kind: ProblemKind | None = None
        if self.settled_by_charge():
            if own is not None and transaction_id is not None and own != transaction_id:
                kind = ProblemKind.DUPLICATE
        elif payment.status is PaymentStatus.CANCELLED:
            if own is not None and own == transaction_id and payment.scheme == "auth":
                kind = None  # the Pay of the hold that was voided since
            elif own is not None and own != transaction_id and self._cancelled_hold():
                kind = ProblemKind.DUPLICATE
            else:
                # Nothing of the payment's own took money (never paid, or its own
                # transaction was a decline) before the cancel.
                kind = ProblemKind.PAID_AFTER_CANCEL
        if kind is None:
            return None
        detail = (f"{source}: a second charge {transaction_id}; the payment was paid by "
                  f"{own}: refund one" if kind is ProblemKind.DUPLICATE else
                  f"{source}: charge {transaction_id} succeeded after the payment was "
                  f"cancelled")
        self.record_problem(kind, transaction_id=transaction_id, amount=amount,
                            currency=currency, detail=detail)
        return kind

    def settled_by_charge(self) -> bool:
        """Whether a charge or hold of the payment's own has settled it: it is held,
        paid or refunded, or ``unknown`` only because a confirm or void of that
        transaction lost its answer (the money was taken or held before). Another
        transaction's Pay or Fail then never settles it again."""
        payment = self.payment
        if payment.status in PAID:
            return True
        return payment.status is PaymentStatus.UNKNOWN and (
            payment.gateway_transaction_id is not None) and any(
            a.operation in ("confirm", "void") and a.open for a in self.attempts())

    def refused_transactions(self) -> frozenset[int]:
        """Transactions the ledger has already told apart from the payment: those its
        problems name (a second charge, a mismatch, a charge after a cancel: money the
        shop is asked to refund) and those its own calls were answered with that did
        not match it (attempt outcome ``mismatch``). None of them ever settles it."""
        named = self._conn.execute(sa.select(problems.c.gateway_transaction_id).where(
            problems.c.payment_id == self.payment.id,
            problems.c.gateway_transaction_id.is_not(None))).scalars().all()
        refused = (a.gateway_transaction_id for a in self.attempts()
                   if a.outcome == "mismatch" and a.gateway_transaction_id is not None)
        return frozenset(int(t) for t in named) | frozenset(refused)

    def told_apart(self, transaction_id: int | None) -> ProblemKind | None:
        """How the ledger has already told ``transaction_id`` apart from the payment: the
        kind of the problem that names it, ``mismatch`` for an answer of ours that did not
        match it (attempt outcome ``mismatch``); ``None`` if it has not."""
        if transaction_id is None:
            return None
        kind = self._conn.execute(sa.select(problems.c.kind).where(
            problems.c.payment_id == self.payment.id,
            problems.c.gateway_transaction_id == transaction_id).limit(1)).scalar()
        if kind is not None:
            return ProblemKind(kind)
        # The problems were just asked: only our mismatched answers are left to look at.
        if any(a.outcome == "mismatch" and a.gateway_transaction_id == transaction_id
               for a in self.attempts()):
            return ProblemKind.MISMATCH
        return None

    def already_settled_by(self, transaction_id: int | None) -> bool:
        """Whether ``transaction_id`` is the one that already settled the payment: a
        late or repeated report of it (its Pay, our call's answer) says what it was when
        it was made (a hold of the full amount, captured in part since), not something
        new, and changes nothing. Held to the payment's amount now, it would read as a
        mismatch."""
        return transaction_id is not None and (
            transaction_id == self.payment.gateway_transaction_id) and self.settled_by_charge()

    def cancel_unpaid(self) -> Payment:
        """The shop gives up on the locked payment, which nobody has paid (``created``
        or ``failed``)."""
        return self.transition(PaymentStatus.CANCELLED, note=_CANCELLED_UNPAID)

    def _cancelled_hold(self) -> bool:
        """Whether the cancelled payment's own transaction held money before it was
        cancelled: it was cancelled by the gateway's word (a hold voided or expired,
        whether the ledger saw it held or a lookup found it already voided), not by the
        shop giving up on it unpaid (:meth:`cancel_unpaid`, after a decline)."""
        note = self._conn.execute(
            sa.select(events.c.note).where(
                events.c.payment_id == self.payment.id,
                events.c.new_status == PaymentStatus.CANCELLED.value)
            .order_by(events.c.id.desc()).limit(1)).scalar()
        return note != _CANCELLED_UNPAID

    def refund_counted(self, transaction_id: int) -> bool:
        """Whether the refund transaction is already in ``refunded_amount``."""
        return self._conn.execute(sa.select(refunds.c.payment_id).where(
            refunds.c.transaction_id == transaction_id)).first() is not None

    def count_refund(
        self, transaction_id: int, amount: Decimal, *, source: str, note: str
    ) -> bool:
        """Add one refund of the locked ``succeeded`` payment to ``refunded_amount``
        (``refunded`` once it is all), unless that refund transaction was counted
        before, by whichever path: the refunds table's key is the transaction, so a
        refund reported by our call's answer, a notification and a lookup counts once.
        Returns whether it was counted now. More than is left raises
        :class:`~checkout_kit.errors.PaymentConflictError`, before anything changed."""
        if self.refund_counted(transaction_id):
            return False
        payment = self.payment
        total = payment.refunded_amount + amount
        if amount <= 0 or total > payment.amount:
            raise PaymentConflictError(
                f"a refund of {amount} would make {total} refunded of {payment.amount}",
                payment.id)
        self._conn.execute(refunds.insert().values(
            transaction_id=transaction_id, payment_id=payment.id, amount=amount,
            source=source, created_at=self._ledger.now()))
        if total == payment.amount:
            self.transition(PaymentStatus.REFUNDED, note=note, refunded_amount=total)
        else:
            self.update(refunded_amount=total)
            self.note(note)
        return True

    def absorb_unnamed_refunds(self, listed: Sequence[tuple[int, Decimal]]) -> list[int]:
        """Mark as counted the gateway's refunds (``listed``: ``(transaction, amount)``
        of the locked payment) that ``refunded_amount`` holds without naming them, and
        return their transactions.

        Since 0003 every refund counted has its row, so ``refunded_amount`` is the sum of
        the rows' amounts and nothing is absorbed. A ledger upgraded from 0002 may hold
        more: 0002's lookups counted refunds (back-office ones included) from the
        gateway's list and kept no transaction. That unnamed remainder is matched with
        the oldest listed refunds the table does not know (the gateway's transaction
        ids grow with time, and those refunds came before the upgrade), which get a
        ``baseline`` row and add nothing; the others are left to be counted. A row
        without an amount (a Refund notification 0003 could not read) takes the listed
        amount of its transaction."""
        known = dict(self._conn.execute(sa.select(
            refunds.c.transaction_id, refunds.c.amount).where(
            refunds.c.payment_id == self.payment.id)).all())
        listed_amount = dict(listed)
        named = Decimal(0)
        for transaction_id, amount in known.items():
            if amount is None:
                amount = listed_amount.get(transaction_id)
            named += amount or Decimal(0)
        unnamed = self.payment.refunded_amount - named
        absorbed: list[int] = []
        for transaction_id, amount in sorted(listed):
            if transaction_id in known or amount <= 0:
                continue
            if amount > unnamed:
                break  # the oldest unknown ones only: a newer one is a new refund
            self._conn.execute(refunds.insert().values(
                transaction_id=transaction_id, payment_id=self.payment.id, amount=amount,
                source="baseline", created_at=self._ledger.now()))
            known[transaction_id] = amount
            unnamed -= amount
            absorbed.append(transaction_id)
        return absorbed

    @property
    def connection(self) -> Connection:
        """The unit's connection, for other ledger tables written in the same
        transaction (the notification log)."""
        return self._conn

    def _write(self, **changes: Any) -> Payment:
        bad = set(changes) - _MUTABLE - {"status"}
        if bad:
            raise TypeError(f"not changeable through the ledger: {', '.join(sorted(bad))}")
        current = self.payment
        values = {**changes, "updated_at": self._ledger.now(), "version": current.version + 1}
        result = self._conn.execute(
            payments.update()
            .where(payments.c.id == current.id, payments.c.version == current.version)
            .values(**values)
        )
        # The row is locked, so the version cannot have moved; checked all the same,
        # because a lost update here would be a lost payment.
        if result.rowcount != 1:
            raise RuntimeError(f"payment {current.id} changed under its row lock")
        self.payment = self._ledger._read(self._conn, current.id)
        return self.payment

    def add_attempt(
        self, operation: str, *, amount: Decimal | None = None, request_id: str | None = None
    ) -> PaymentAttempt:
        """Record a gateway call about to be made, with a fresh ``X-Request-ID``."""
        number = self._conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(attempts.c.number), 0))
            .where(attempts.c.payment_id == self.payment.id)
        ).scalar_one() + 1
        values = {
            "payment_id": self.payment.id, "number": number, "operation": operation,
            "request_id": request_id or self._ledger.new_request_id(),
            "amount": amount, "outcome": "pending", "created_at": self._ledger.now(),
        }
        new_id = self._conn.execute(attempts.insert().values(**values)).inserted_primary_key
        assert new_id is not None
        return PaymentAttempt(id=new_id[0], gateway_transaction_id=None, reason_code=None,
                              error=None, finished_at=None, **values)

    def finish_attempt(self, attempt: PaymentAttempt, outcome: str, **result: Any) -> bool:
        """Record a call's outcome (``gateway_transaction_id``, ``reason_code``, ``error``).

        Only an open attempt (``pending`` or ``unknown``) is finished: one a lookup
        already settled (``reconciled``) or answered keeps its outcome, so that a late
        answer cannot finish it, and count its money, a second time. Returns whether it
        was finished now."""
        bad = set(result) - _ATTEMPT_RESULT
        if bad:
            raise TypeError(f"not an attempt result: {', '.join(sorted(bad))}")
        done = self._conn.execute(
            attempts.update()
            .where(attempts.c.id == attempt.id, attempts.c.outcome.in_(_OPEN_OUTCOMES))
            .values(outcome=outcome, finished_at=self._ledger.now(), **result)
        )
        return bool(done.rowcount)

    def reopen_attempt(self, attempt: PaymentAttempt, error: str) -> bool:
        """Make an attempt a lookup settled (``reconciled``) ``unknown`` again, with
        ``error``: its call ended after the lookup without an answer, so the gateway may
        have acted after the lookup looked. An open attempt keeps the payment in the
        next reconcile run (:meth:`Ledger.ids_to_reconcile`) until a lookup settles it
        again. Only a ``reconciled`` attempt is reopened (an answered one keeps its
        outcome). Returns whether it was reopened."""
        done = self._conn.execute(
            attempts.update()
            .where(attempts.c.id == attempt.id, attempts.c.outcome == "reconciled")
            .values(outcome="unknown", finished_at=self._ledger.now(), error=error)
        )
        return bool(done.rowcount)

    def attempts(self, *, outcome: str | None = None) -> list[PaymentAttempt]:
        """This payment's attempts (optionally with one outcome), oldest first."""
        return self._ledger._attempts(self._conn, self.payment.id, outcome)


class Ledger:
    """The payment ledger on a SQLAlchemy engine (or a database URL).

    The schema must exist: run :func:`checkout_kit.ledger.upgrade` first (``flask
    checkout db upgrade`` does). ``clock`` returns aware UTC datetimes; ``id_factory``
    and ``request_id_factory`` make payment ids and ``X-Request-ID`` values (tests
    inject them).
    """

    def __init__(
        self,
        url_or_engine: str | sa.URL | Engine,
        *,
        clock: Clock | None = None,
        id_factory: Callable[[], str] | None = None,
        request_id_factory: Callable[[], str] | None = None,
    ) -> None:
        if isinstance(url_or_engine, Engine):
            self.engine = prepare_engine(url_or_engine)
        else:
            self.engine = create_ledger_engine(url_or_engine)
        self._clock = clock or _utcnow
        self._new_id = id_factory or _new_payment_id
        self._new_request_id = request_id_factory or (lambda: secrets.token_hex(16))

    def __repr__(self) -> str:
        return f"Ledger({self.engine.url.render_as_string(hide_password=True)!r})"

    def now(self) -> datetime:
        """The ledger's clock (aware UTC)."""
        value = self._clock()
        if value.tzinfo is None:
            raise ValueError("the ledger's clock must return aware datetimes")
        return value.astimezone(UTC)

    def new_request_id(self) -> str:
        """A fresh ``X-Request-ID`` for a gateway call."""
        return self._new_request_id()

    # --- creating ---------------------------------------------------------------------

    @overload
    def create_payment(self, request: PaymentRequest, /) -> Payment: ...

    @overload
    def create_payment(self, /, **fields: Unpack[PaymentFields]) -> Payment: ...

    def create_payment(self, request: PaymentRequest | None = None, /,
                       **fields: Any) -> Payment:
        """Record a new payment in status ``created``: ``request``, or one made from its
        fields (:class:`~checkout_kit.ledger.requests.PaymentRequest`, which checks
        them; bad ones raise ``InvalidRequestError`` or ``MoneyError`` and record
        nothing).

        The same ``invoice_id`` with the same data returns the payment already
        recorded (a double-clicked "Pay" creates one payment); with other data it
        raises :class:`~checkout_kit.errors.PaymentConflictError`.
        """
        request = PaymentRequest.of(request, fields)
        values = self._new_values(request)
        try:
            with self.engine.begin() as conn:
                existing = self._find_invoice(conn, values["invoice_id"])
                if existing is None:
                    conn.execute(payments.insert().values(**values))
                    conn.execute(events.insert().values(
                        payment_id=values["id"], old_status=None,
                        new_status=PaymentStatus.CREATED.value, note="created",
                        created_at=values["created_at"],
                    ))
                    return self._read(conn, values["id"])
        except sa.exc.IntegrityError:
            # Another worker recorded this invoice between our look and our insert.
            with self.engine.begin() as conn:
                existing = self._find_invoice(conn, values["invoice_id"])
            if existing is None:
                raise
        return self._same_or_conflict(existing, values)

    def _new_values(self, request: PaymentRequest) -> dict[str, Any]:
        now = self.now()
        return {
            "id": self._new_id(), "invoice_id": request.invoice_id,
            "account_id": request.account_id, "email": request.email,
            "description": request.description, "amount": request.amount,
            "currency": request.currency, "scheme": request.scheme,
            "status": PaymentStatus.CREATED.value, "gateway_transaction_id": None,
            "token": None, "test_mode": False, "metadata": request.metadata_json,
            "success_url": request.success_url, "fail_url": request.fail_url,
            "refunded_amount": Decimal(0), "reason_code": None, "cardholder_message": None,
            "created_at": now, "updated_at": now, "version": 1,
            "expires_at": request.expires_at,
        }

    @staticmethod
    def _same_or_conflict(existing: Payment, values: Mapping[str, Any]) -> Payment:
        given = dict(values)
        given["metadata"] = None if values["metadata"] is None else jsoncodec.loads(
            values["metadata"])
        differs = [
            name for name in ("amount", "currency", "description", "account_id", "email",
                              "scheme", "success_url", "fail_url", "metadata", "expires_at")
            if getattr(existing, name) != given[name]
        ]
        if differs:
            raise PaymentConflictError(
                f"invoice {existing.invoice_id!r} is already recorded with another "
                f"{', '.join(differs)}", existing.id,
            )
        return existing

    # --- reading ----------------------------------------------------------------------

    def get(self, payment_id: str) -> Payment:
        """The payment; raises :class:`~checkout_kit.errors.PaymentNotFoundError`."""
        with self._reading() as conn:
            return self._read(conn, payment_id)

    def get_by_invoice(self, invoice_id: str) -> Payment:
        """The payment for ``invoice_id``; raises ``PaymentNotFoundError``."""
        with self._reading() as conn:
            found = self._find_invoice(conn, invoice_id)
        if found is None:
            raise PaymentNotFoundError(invoice_id, f"no payment for invoice {invoice_id!r}")
        return found

    def find_by_transaction(self, transaction_id: int) -> Payment | None:
        """The payment whose latest gateway transaction is ``transaction_id``, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(payments).where(payments.c.gateway_transaction_id == transaction_id)
                .order_by(payments.c.created_at.desc()).limit(1)
            ).mappings().one_or_none()
        return None if row is None else Payment._from_row(row)

    def transaction_ids(self) -> set[int]:
        """Every gateway transaction id the ledger holds: payments', attempts',
        refunds' and problems'. Empty while the schema is not there yet."""
        if not sa.inspect(self.engine).has_table(payments.name):
            return set()
        columns = (payments.c.gateway_transaction_id, attempts.c.gateway_transaction_id,
                   refunds.c.transaction_id, problems.c.gateway_transaction_id)
        union = sa.union(*(sa.select(column.label("id")).where(column.is_not(None))
                           for column in columns))
        with self.engine.connect() as conn:
            return {int(value) for value in conn.execute(union).scalars()}

    def erase(self) -> int:
        """Delete every payment with everything recorded about it, and every stored
        notification; the schema (and any table not the ledger's) stays. Returns how
        many rows went. For a sandbox's reset: a ledger of real payments is never
        erased by checkout_kit."""
        removed = 0
        if not sa.inspect(self.engine).has_table(payments.name):
            return 0
        with self.engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):  # children first
                removed += conn.execute(table.delete()).rowcount
        return removed

    def list_payments(
        self,
        status: PaymentStatus | str | frozenset[PaymentStatus] | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Payment]:
        """Payments, newest first; ``status`` filters by one status or a set of them."""
        if not isinstance(limit, int) or not 0 < limit <= 10_000:
            raise InvalidRequestError("limit must be 1..10000", "limit")
        if not isinstance(offset, int) or offset < 0:
            raise InvalidRequestError("offset must be >= 0", "offset")
        query = sa.select(payments).order_by(payments.c.created_at.desc(), payments.c.id)
        if status is not None:
            wanted = {status} if isinstance(status, str) else set(status)
            try:
                names = sorted(PaymentStatus(s).value for s in wanted)
            except ValueError:
                raise InvalidRequestError(f"unknown status in {status!r}", "status") from None
            query = query.where(payments.c.status.in_(names))
        with self._reading() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
        return [Payment._from_row(row) for row in rows]

    def ids_to_reconcile(self, statuses: Iterable[PaymentStatus]) -> list[str]:
        """Ids of payments in one of ``statuses`` or with a ``pending`` or ``unknown``
        attempt (a refund whose answer was lost leaves the payment ``succeeded`` and
        such an attempt), oldest first."""
        open_ids = sa.select(attempts.c.payment_id).where(
            attempts.c.outcome.in_(_OPEN_OUTCOMES))
        query = sa.select(payments.c.id).where(
            payments.c.status.in_(sorted(PaymentStatus(s).value for s in statuses))
            | payments.c.id.in_(open_ids)
        ).order_by(payments.c.created_at, payments.c.id)
        with self._reading() as conn:
            return list(conn.execute(query).scalars())

    def history(self, payment_id: str) -> list[PaymentEvent]:
        """The payment's status changes, oldest first (creation included)."""
        with self._reading() as conn:
            self._read(conn, payment_id)
            rows = conn.execute(
                sa.select(events).where(events.c.payment_id == payment_id).order_by(events.c.id)
            ).mappings().all()
        return [_event(row) for row in rows]

    def problems(self, payment_id: str | None = None, *, limit: int = 1000,
                 open_only: bool = False) -> list[PaymentProblem]:
        """Recorded problems (duplicates, mismatches...), newest first; of one payment
        or of all; with ``open_only`` only those not resolved yet."""
        query = sa.select(problems).order_by(problems.c.id.desc()).limit(limit)
        if payment_id is not None:
            query = query.where(problems.c.payment_id == payment_id)
        if open_only:
            query = query.where(problems.c.resolved_at.is_(None))
        with self._reading() as conn:
            rows = conn.execute(query).mappings().all()
        return [PaymentProblem._from_row(row) for row in rows]

    def payments_with_problems(
        self,
        status: PaymentStatus | str | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
        include_resolved: bool = False,
    ) -> ProblemPage:
        """Payments with open problems (``include_resolved``: with any), newest payment
        first, each with its problems, newest first; ``status`` filters the payments.

        One query: a page of ``limit`` payments from ``offset`` (one more is read to
        tell whether :attr:`ProblemPage.more` payments follow), joined to their
        problems."""
        if not isinstance(limit, int) or not 0 < limit <= 10_000:
            raise InvalidRequestError("limit must be 1..10000", "limit")
        if not isinstance(offset, int) or offset < 0:
            raise InvalidRequestError("offset must be >= 0", "offset")
        shown = sa.true() if include_resolved else problems.c.resolved_at.is_(None)
        page = (sa.select(payments.c.id).where(sa.exists().where(
                    problems.c.payment_id == payments.c.id, shown))
                .order_by(payments.c.created_at.desc(), payments.c.id))
        if status is not None:
            try:
                page = page.where(payments.c.status == PaymentStatus(status).value)
            except ValueError:
                raise InvalidRequestError(f"unknown status {status!r}", "status") from None
        ids = page.limit(limit + 1).offset(offset).subquery()
        labelled = [c.label(f"problem_{c.name}") for c in problems.c]
        query = (sa.select(payments, *labelled)
                 .join(problems, problems.c.payment_id == payments.c.id)
                 .where(payments.c.id.in_(sa.select(ids.c.id)), shown)
                 .order_by(payments.c.created_at.desc(), payments.c.id, problems.c.id.desc()))
        with self._reading() as conn:
            rows = conn.execute(query).mappings().all()
        found: dict[str, tuple[Payment, list[PaymentProblem]]] = {}
        for row in rows:
            if row["id"] not in found:
                payment_row = {c.name: row[c.name] for c in payments.c}
                found[row["id"]] = (Payment._from_row(payment_row), [])
            found[row["id"]][1].append(PaymentProblem._from_row(row, "problem_"))
        listed = list(found.values())
        return ProblemPage(payments=listed[:limit], more=len(listed) > limit)

    def resolve_problem(self, problem_id: int, *, note: str | None = None) -> PaymentProblem:
        """Mark a problem resolved (the second charge refunded, the mismatch looked
        into): it leaves the open list, and the payment's history says so, with
        ``note``. Resolving a resolved problem changes nothing and returns it. Raises
        :class:`~checkout_kit.errors.ProblemNotFoundError` for an unknown id."""
        if note is not None:
            note = checked_text(note, "note", 500)
        if isinstance(problem_id, bool) or not isinstance(problem_id, int) or not (
                INT64_MIN <= problem_id <= INT64_MAX):
            # Beyond the id column no problem can be: not found, not a driver's
            # OverflowError.
            raise ProblemNotFoundError(problem_id)
        with self._problem_unit(problem_id) as (unit, problem):
            if problem.resolved_at is not None:
                return problem
            now = self.now()
            unit._conn.execute(problems.update().where(problems.c.id == problem_id)
                               .values(resolved_at=now))
            unit.note(f"{problem.kind} problem {problem_id} resolved"
                      + (f": {note}" if note else ""))
            return replace(problem, resolved_at=now)

    @contextmanager
    def _problem_unit(self, problem_id: int) -> Iterator[tuple[Unit, PaymentProblem]]:
        """The problem and its payment's :meth:`update` unit (the payment's row lock)."""
        with self._reading() as conn:
            row = conn.execute(sa.select(problems.c.payment_id)
                               .where(problems.c.id == problem_id)).first()
        if row is None:
            raise ProblemNotFoundError(problem_id)
        with self.update(str(row[0])) as unit:
            found = unit._conn.execute(sa.select(problems).where(problems.c.id == problem_id)
                                       ).mappings().one()
            yield unit, PaymentProblem._from_row(found)

    def attempts(self, payment_id: str) -> list[PaymentAttempt]:
        """The payment's gateway calls, oldest first."""
        with self._reading() as conn:
            self._read(conn, payment_id)
            return self._attempts(conn, payment_id, None)

    def claim_lookup(self, payment_id: str, every: timedelta) -> bool:
        """Whether the caller may ask the gateway about ``payment_id`` now: ``True`` at
        most once per ``every`` (by the ledger's clock), however many app instances
        share the database. Claiming records the moment; the pending page calls it
        before each lookup, so a page reloading every few seconds does not make a
        gateway call each time. Raises ``PaymentNotFoundError`` for an unknown id."""
        now = self.now()
        with self.engine.begin() as conn:
            # The payment is read only the first time: a lookups row exists only for an
            # existing payment (its foreign key cascades), so the hot path of a page
            # reloading every few seconds makes no read of the payment it already has.
            claimed = conn.execute(
                lookups.update()
                .where(lookups.c.payment_id == payment_id,
                       lookups.c.looked_up_at <= now - every)
                .values(looked_up_at=now)
            ).rowcount
            if claimed:
                return True
            if conn.execute(sa.select(lookups.c.payment_id)
                            .where(lookups.c.payment_id == payment_id)).first():
                return False  # claimed less than ``every`` ago
            self._read(conn, payment_id)  # PaymentNotFoundError before the first insert
            try:
                with conn.begin_nested():  # another instance may insert it first
                    conn.execute(lookups.insert().values(payment_id=payment_id,
                                                         looked_up_at=now))
            except sa.exc.IntegrityError:
                return False
            return True

    # --- writing ----------------------------------------------------------------------

    @contextmanager
    def update(self, payment_id: str) -> Iterator[Unit]:
        """A transaction holding ``payment_id``'s row lock; commits when the block ends,
        rolls back (nothing changed) when it raises."""
        with self.engine.begin() as conn:
            yield Unit(self, conn, self._read(conn, payment_id, lock=True))

    def transition(
        self, payment_id: str, new: PaymentStatus | str, *, note: str | None = None,
        **changes: Any,
    ) -> Payment:
        """Change one payment's status (and columns) in its own transaction."""
        with self.update(payment_id) as unit:
            return unit.transition(new, note=note, **changes)

    # --- internals --------------------------------------------------------------------

    def _reading(self) -> Connection:
        """A connection for reads only (no ``BEGIN`` on SQLite: each statement is its
        own snapshot). The reads that make two statements (:meth:`history`,
        :meth:`attempts`) first check the payment exists, then read append-only rows,
        so they need no snapshot across both."""
        return self.engine.connect().execution_options(**{_READ_ONLY: True})

    def _read(self, conn: Connection, payment_id: str, *, lock: bool = False) -> Payment:
        if not isinstance(payment_id, str):
            raise PaymentNotFoundError(repr(payment_id))
        query = _BY_ID_LOCKED if lock else _BY_ID
        row = conn.execute(query, {"payment_id": payment_id}).mappings().one_or_none()
        if row is None:
            raise PaymentNotFoundError(payment_id)
        return Payment._from_row(row)

    @staticmethod
    def _find_invoice(conn: Connection, invoice_id: str) -> Payment | None:
        row = conn.execute(
            sa.select(payments).where(payments.c.invoice_id == invoice_id)
        ).mappings().one_or_none()
        return None if row is None else Payment._from_row(row)

    @staticmethod
    def _attempts(conn: Connection, payment_id: str, outcome: str | None) -> list[PaymentAttempt]:
        query = sa.select(attempts).where(attempts.c.payment_id == payment_id)
        if outcome is not None:
            query = query.where(attempts.c.outcome == outcome)
        rows = conn.execute(query.order_by(attempts.c.number)).mappings().all()
        names = [f.name for f in fields(PaymentAttempt)]
        return [PaymentAttempt(**{name: row[name] for name in names}) for row in rows]


#: One payment by id, built once: SQLAlchemy memoizes a statement object's cache key,
#: so reusing it saves the key walk that a new ``select`` pays on every read (half
#: the cost of a ledger read on SQLite).
_BY_ID: Final = sa.select(payments).where(payments.c.id == sa.bindparam("payment_id"))
_BY_ID_LOCKED: Final = _BY_ID.with_for_update()  # SQLite compiles this away: BEGIN IMMEDIATE
