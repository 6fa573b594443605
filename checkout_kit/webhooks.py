"""Receiving gateway notifications: the framework-free core of a webhook endpoint.

Pure: no Flask, no network, no database. A web framework hands :func:`receive` the
request's method, its raw bytes (the body of a POST, the raw query string of a GET) and
its headers; :func:`receive` checks the HMAC over exactly those bytes and parses them,
and :func:`answer` / :func:`answer_error` give the JSON reply. The Flask extension wires
these into routes; anything else (a plain WSGI app, a worker reading a queue) can too.

Also here, because they are pure decisions a receiver needs:

* :func:`check_decision` and :class:`CheckRules`: what to answer a ``Check``
  (docs/gateway.md §5.3) given the shop's own record of the payment;
* :func:`sender_address` / :class:`SenderCheck`: the optional sender-IP allow-list,
  proxy-aware (docs/gateway.md §5.1). The HMAC stays the authority;
* :func:`notification_key`: the identity under which a receiver applies a
  notification exactly once, however often the gateway delivers it.

Realistic signed notifications to send in tests are in :mod:`checkout_kit.testing`.

Every failure of :func:`receive` is a :class:`~checkout_kit.errors.NotificationError`
(:class:`~checkout_kit.errors.SignatureVerificationError` or
:class:`~checkout_kit.errors.MalformedNotificationError`), never a bare exception.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol, TypeVar

from . import jsoncodec
from .errors import (
    InvalidRequestError,
    JSONCodecError,
    MalformedNotificationError,
    NotificationError,
    SignatureVerificationError,
)
from .notifications import (
    CheckCode,
    Notification,
    NotificationType,
    codec_for,
    format_value,
    header_value,
    parse_notification,
    receipt_key,
    verify,
)

__all__ = [
    "CLOSED_STATUSES",
    "GATEWAY_NETWORKS",
    "MAX_BODY_BYTES",
    "RECEIPT",
    "REJECT_CODE",
    "REJECT_STATUS",
    "WEBHOOK_TYPES",
    "ChargeOperation",
    "CheckRule",
    "CheckRules",
    "PaymentSnapshot",
    "Received",
    "SenderCheck",
    "UnownedCheckRule",
    "answer",
    "answer_error",
    "canonical_type",
    "check_decision",
    "delivery_encoding",
    "notification_key",
    "owns",
    "parse_networks",
    "payment_mismatch",
    "read_answer",
    "receive",
    "sender_address",
    "settlement_mismatch",
]

logger = logging.getLogger("checkout_kit.webhooks")

#: The ``Receipt`` notification of the online cash register (docs/gateway.md §10). Its
#: fields are UNCONFIRMED: it is parsed like every type, all its fields optional and all
#: kept as text in ``fields`` as well.
RECEIPT = NotificationType.RECEIPT.value
#: Every notification type a receiver can be configured for.
WEBHOOK_TYPES: tuple[str, ...] = tuple(t.value for t in NotificationType)

#: Largest body (or query string) accepted. A notification is a few hundred bytes; even
#: a ``Data`` object carrying a receipt stays far below this.
MAX_BODY_BYTES = 1 << 20

#: The code answered to a notification that was not accepted (bad signature, unreadable
#: body, a Check rule that failed). For ``Check`` it declines the payment as "cannot be
#: accepted" (reason 3008) rather than as a format error; for every other type any
#: non-zero code makes the gateway deliver again later, which is what a receiver whose
#: secret or code is being fixed wants (docs/gateway.md §5.1, §5.3).
REJECT_CODE = CheckCode.NOT_ACCEPTED

#: The HTTP status of the answer to a refused notification (its body is still JSON
#: ``{"code": 13}``): 401 for a signature that is missing or wrong, 400 for a body that
#: cannot be read. The gateway treats any non-2xx answer as a failed delivery and
#: retries the notification later (docs/gateway.md §5.1); a ``Check`` answered this way
#: is declined as unavailable (3006) rather than not accepted (3008), docs/gateway.md §5.3.
REJECT_STATUS: dict[type[NotificationError], int] = {
    SignatureVerificationError: 401,
    MalformedNotificationError: 400,
}


# --------------------------------------------------------------------------- receiving


@dataclass(frozen=True)
class Received:
    """A notification whose signature was checked and whose body was read.

    ``notification`` is the typed :class:`~checkout_kit.notifications.Notification`
    (``Receipt`` included; ``None`` only for a ``Received`` made by hand). ``fields`` holds
    every decoded field as text (kept out of the ``repr``: it carries e-mails, names
    and tokens).
    """

    type: str
    method: str
    encoding: str
    fields: Mapping[str, str] = field(repr=False)
    notification: Notification | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple[str, str, str]:
        """:func:`notification_key` of this notification."""
        return notification_key(self)


def _charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a ``Content-Type`` value, if any."""
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').strip()
    return None


def delivery_encoding(method: str, content_type: str | None, configured: str) -> str:
    """The text encoding of a delivery: a POST body's declared charset (``content_type``)
    when there is one, else ``configured``, the encoding set for the notification type.
    :func:`receive` verifies and reads in it; an unknown charset raises
    :class:`~checkout_kit.errors.MalformedNotificationError`."""
    declared = _charset(content_type) if method == "POST" else None
    name = declared or configured
    try:
        codec_for(name)
    except ValueError:
        raise MalformedNotificationError(f"unsupported charset {name[:32]!r}") from None
    return name


def receive(
    method: str,
    raw: bytes,
    headers: Mapping[str, str],
    secret: str | bytes,
    *,
    expected_type: NotificationType | str,
    encoding: str = "utf-8",
    require_both: bool = False,
    require_content_hmac: bool = True,
) -> Received:
    """Verify and parse one delivery of a notification of ``expected_type``.

    ``raw`` is the request body exactly as received for a POST, or the raw query
    string (the bytes after ``?``, not re-encoded) for a GET. ``headers`` must give
    ``Content-HMAC`` (any case) and, for a POST, ``Content-Type``; an
    ``X-Content-HMAC`` sent too must match as well. ``encoding`` is the one configured
    for this type at the gateway; a POST's declared ``charset`` overrides it.
    ``require_both`` insists on both HMAC headers; ``require_content_hmac=False`` is
    the explicit opt-out that takes ``X-Content-HMAC`` alone (docs/notifications.md:
    it covers the decoded text only, so a re-encoded body still matches it).

    The HMAC is checked over the exact bytes, in constant time, before anything is
    parsed; a field name repeated in the body is refused. Raises
    :class:`~checkout_kit.errors.SignatureVerificationError` or
    :class:`~checkout_kit.errors.MalformedNotificationError`.
    """
    verb = method.strip().upper()
    if verb not in ("GET", "POST"):
        raise MalformedNotificationError(f"notifications come as GET or POST, not {verb[:16]!r}")
    try:
        name = canonical_type(str(expected_type))
    except ValueError as exc:
        raise MalformedNotificationError(str(exc)) from None
    kind = NotificationType(name)
    if len(raw) > MAX_BODY_BYTES:
        raise MalformedNotificationError(f"the notification is over {MAX_BODY_BYTES} bytes")
    content_type = header_value(headers, "Content-Type") if verb == "POST" else None
    text_encoding = delivery_encoding(verb, content_type, encoding)
    verify(raw, headers, secret, encoding=text_encoding, require_both=require_both,
           require_content_hmac=require_content_hmac)
    # A deeply nested Data value is refused by jsoncodec (its depth limit) as malformed.
    parsed = parse_notification(kind, raw, encoding=text_encoding, content_type=content_type)
    return Received(kind.value, verb, text_encoding, parsed.fields, parsed)


def canonical_type(name: str) -> str:
    """The member of :data:`WEBHOOK_TYPES` named ``name`` in any case; ``ValueError``."""
    wanted = name.strip().lower()
    for candidate in WEBHOOK_TYPES:
        if candidate.lower() == wanted:
            return candidate
    raise ValueError(f"unknown notification type {name[:32]!r}; one of {WEBHOOK_TYPES}")


def answer(code: int) -> tuple[int, bytes]:
    """The HTTP reply to a notification: status 200 and JSON ``{"code": N}``.

    The gateway reads only the JSON code (docs/gateway.md §5.3): ``0`` registers the
    notification (or accepts a Check); anything else declines a Check and makes the
    other types be delivered again. Refusals carry a JSON code too (:func:`answer_error`),
    never an HTML page.
    """
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"a notification answer code is an int, not {type(code).__name__}")
    return 200, jsoncodec.dumps_bytes({"code": int(code)})


def read_answer(body: bytes) -> int | None:
    """The ``code`` of a receiver's answer as the gateway reads it, or ``None`` when the
    answer is not JSON ``{"code": N}`` (for a Check that is reason 3005)."""
    try:
        parsed = jsoncodec.loads(body)
    except JSONCodecError:
        return None
    code = parsed.get("code") if isinstance(parsed, dict) else None
    if isinstance(code, str) and code.strip().lstrip("-").isdigit():
        return int(code)
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def answer_error(error: NotificationError, *, type: str | None = None) -> tuple[int, bytes]:
    """The answer to a notification :func:`receive` refused: JSON ``{"code": 13}``
    (:data:`REJECT_CODE`) with a 4xx status from :data:`REJECT_STATUS` (401 for a bad
    signature, 400 for an unreadable body), logging why (the failing header or field,
    never the body). The gateway delivers such a notification again later."""
    detail = getattr(error, "header", None) or getattr(error, "field", None)
    logger.warning(
        "notification %s refused: %s (%s)",
        type or "?",
        error.__class__.__name__,
        detail or "-",
    )
    status = next((code for kind, code in REJECT_STATUS.items() if isinstance(error, kind)), 400)
    return status, answer(REJECT_CODE)[1]


def notification_key(received: Received | Notification) -> tuple[str, str, str]:
    """``(type, id, qualifier)``: apply each notification once under this key.

    * card transactions: ``(type, TransactionId, "")``;
    * ``Refund``: ``(Refund, TransactionId of the refund, OperationType)``, so a refund
      and a card payout under the same number stay apart;
    * ``Recurrent``: ``(Recurrent, subscription Id, Status + counters + last date)``: a
      subscription goes Active → PastDue → Active, and each change is a new event;
    * ``Receipt``: ``(Receipt, *receipt_key)``: the fiscal document (FiscalSign, else
      DocumentNumber with the register), since a payment's refunds each get a receipt
      under one TransactionId (:func:`checkout_kit.notifications.receipt_key`).
    """
    n = received.notification if isinstance(received, Received) else received
    if n is None:
        assert isinstance(received, Received)
        fields = received.fields
        if received.type == NotificationType.RECEIPT:
            return (received.type, *receipt_key(fields))
        ident = fields.get("TransactionId", "").strip() or fields.get("DocumentNumber", "").strip()
        return (received.type, ident, fields.get("Type", "").strip())
    if n.type is NotificationType.RECURRENT:
        last = "" if n.last_transaction_date is None else format_value(n.last_transaction_date)
        counters = f"{n.successful_transactions_number}/{n.failed_transactions_number}"
        return (n.type.value, str(n.id), f"{n.status}:{counters}:{last}")
    if n.type is NotificationType.RECEIPT:
        return (n.type.value, *receipt_key(n.fields))
    operation = (n.operation_type or "Refund") if n.type is NotificationType.REFUND else ""
    return (n.type.value, str(n.transaction_id), operation)


# --------------------------------------------------------------------------- Check


class PaymentSnapshot(Protocol):
    """What the Check decision needs to know of the shop's own payment record."""

    @property
    def invoice_id(self) -> str: ...
    @property
    def account_id(self) -> str | None: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def currency(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def expires_at(self) -> datetime | None: ...


#: Payment statuses (any case) that take no further payment: answered 13.
CLOSED_STATUSES = frozenset(
    {"paid", "succeeded", "completed", "authorized", "confirmed", "cancelled", "canceled",
     "voided", "refunded", "partially_refunded"}
)


def _aware(moment: datetime) -> datetime:
    # A naive expiry stored by a shop is read as UTC, the gateway's own clock.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class ChargeOperation(Protocol):
    """What :func:`owns` needs to know of a charge: a notification (``Check``, ``Pay``,
    ``Fail``) or a gateway :class:`~checkout_kit.models.Transaction`."""

    @property
    def transaction_id(self) -> int | None: ...
    @property
    def subscription_id(self) -> str | None: ...
    @property
    def tr_initiator_code(self) -> int | None: ...


def owns(
    operation: ChargeOperation,
    payment: PaymentSnapshot | None,
    *,
    payment_transaction_id: int | None = None,
    payment_subscription_id: str | None = None,
    closed_statuses: frozenset[str] = CLOSED_STATUSES,
) -> bool:
    """Whether a charge found by its ``InvoiceId`` is ``payment``'s own: the one rule
    (docs/gateway.md §5.3) the Check decision, the notification inbox and the ledger's
    lookups share.

    Not the payment's, though it names the payment's invoice:

    * a charge of the subscription the payment started (it carries
      ``SubscriptionId``) once the payment is closed (``closed_statuses``: paid,
      refunded, cancelled). A subscription's charges name the invoice of the payment
      that started it (docs/gateway.md §3.5), and that first payment's own ``Pay``
      carries the ``SubscriptionId`` too: while the payment is open, the charge is its
      first one. ``payment_subscription_id``, when the record knows it (``""``: the
      payment started none), tells that subscription's charges from another
      subscription's start on the same invoice (a recurrent widget paid in a second
      tab, or after the order was cancelled), which is the payment's: money to give
      back. Not known (``None``), any subscription's charge on a closed payment is
      taken for the subscription's;
    * a token charge (it carries ``TrInitiatorCode``): the ledger charges cryptograms
      only, so a token charge is one the shop made with the client.

    ``payment_transaction_id``: the payment's own gateway transaction, when known; that
    transaction is the payment's whatever it carries. ``None`` ``payment``: not owned.
    A charge that is not owned is never a second charge nor a mismatch of the payment.
    """
    if payment is None:
        return False
    if payment_transaction_id is not None and (
            operation.transaction_id == payment_transaction_id):
        return True
    if operation.tr_initiator_code is not None:
        return False
    if operation.subscription_id:
        if payment.status.strip().lower() not in closed_statuses:
            return True
        if payment_subscription_id is not None:
            return operation.subscription_id != payment_subscription_id
        return False
    return True


def check_decision(
    notification: Notification,
    payment: PaymentSnapshot | None,
    *,
    now: datetime,
    closed_statuses: frozenset[str] = CLOSED_STATUSES,
) -> CheckCode:
    """The default answer to a Check (docs/gateway.md §5.3), first failing test wins.

    ``payment`` is the shop's record found by the notification's ``InvoiceId`` (``None``
    when there is none): no record → 10; another ``AccountId`` → 11; another amount or
    currency → 12; already paid or cancelled (``closed_statuses``) → 13; past
    ``expires_at`` at ``now`` → 20; otherwise 0.
    """
    if payment is None:
        return CheckCode.INVALID_INVOICE_ID
    mismatch = payment_mismatch(notification, payment)
    if mismatch is not None:
        return mismatch
    if payment.status.strip().lower() in closed_statuses:
        return CheckCode.NOT_ACCEPTED
    if payment.expires_at is not None and _aware(now) >= _aware(payment.expires_at):
        return CheckCode.EXPIRED
    return CheckCode.ACCEPT


def payment_mismatch(
    notification: Notification, payment: PaymentSnapshot, *, partial: bool = False,
    status: str | None = None, scheme: str | None = None,
) -> CheckCode | None:
    """Whether a notification does not belong to ``payment``: :func:`settlement_mismatch`
    on its account, amount, currency and (given ``status``: a Pay's) Status against the
    payment's ``scheme``."""
    return settlement_mismatch(
        payment, amount=notification.amount, currency=notification.currency,
        account_id=notification.account_id, status=status, partial=partial, scheme=scheme)


def settlement_mismatch(
    payment: PaymentSnapshot,
    *,
    amount: Decimal | None,
    currency: str | None,
    account_id: str | None,
    status: str | None = None,
    scheme: str | None = None,
    partial: bool = False,
    capture: bool = False,
) -> CheckCode | None:
    """The one rule for whether a gateway transaction may settle ``payment``
    (docs/gateway.md §5.4): ``None`` when it may, else the code that says why not.

    * ``INVALID_ACCOUNT_ID``: the payment has an account and the transaction names
      another (or none, unless ``partial``);
    * ``INVALID_AMOUNT``: another currency (a notification of a capture or refund may
      leave it out: ``partial``), or another amount, exactly, as ``Decimal`` (with
      ``partial``: more than the payment's, as a capture or refund may be less);
    * ``NOT_ACCEPTED``: the scheme differs, told by the transaction's ``status`` when
      given: ``Authorized`` money is only held, so it never pays a one-stage payment
      (``scheme`` ``"charge"``), nor does a ``Cancelled`` (voided) hold settle one,
      and ``Completed`` pays a two-stage payment (``"auth"``) only as the ``capture``
      of its own hold. The scheme is passed, not read from
      ``payment`` (:class:`PaymentSnapshot` has none): a ``status`` without a
      ``scheme`` raises :class:`~checkout_kit.errors.InvalidRequestError`, as the rule
      would otherwise be skipped without a word.

    The amount is the payment's as recorded, never the gateway's: a browser builds the
    widget's charge and may change it, and a shop that wants another amount records
    another payment. Every path that settles a payment (the pages' calls, the
    notification inbox, refresh, reconcile) asks this rule first."""
    if status is not None and scheme is None:
        raise InvalidRequestError("a status is held to the payment's scheme: pass scheme",
                                  "scheme")
    # A capture, refund or cancel names its transaction, which is checked apart; the
    # gateway may leave their AccountId out (docs/gateway.md §5.4).
    told_account = account_id is not None or not partial
    if payment.account_id is not None and told_account and account_id != payment.account_id:
        return CheckCode.INVALID_ACCOUNT_ID
    named = currency is not None or not partial
    if named and (currency or "").strip().upper() != payment.currency.upper():
        return CheckCode.INVALID_AMOUNT
    if amount is None or (amount > payment.amount if partial else amount != payment.amount):
        return CheckCode.INVALID_AMOUNT
    told = (status or "").strip().lower()
    if scheme == "charge" and told in ("authorized", "cancelled"):
        # Cancelled is a voided hold (only an authorization is voided or expires): a
        # two-stage operation, so a tampered widget's, never a one-stage payment's.
        return CheckCode.NOT_ACCEPTED
    if scheme == "auth" and told == "completed" and not capture:
        return CheckCode.NOT_ACCEPTED
    return None


_CHECK_CODES = frozenset(int(code) for code in CheckCode)

#: A shop rule: ``None`` or ``0`` lets the payment through, a :class:`CheckCode` declines.
CheckRule = Callable[[Notification, PaymentSnapshot], "int | None"]
_R = TypeVar("_R", bound=CheckRule)
#: A shop rule for a payment the shop's record does not hold (a subscription's charge,
#: a token charge made with the client, another channel's payment): same answers.
UnownedCheckRule = Callable[[Notification], "int | None"]
_U = TypeVar("_U", bound=UnownedCheckRule)


class CheckRules:
    """The Check decision: :func:`check_decision`, then the shop's own rules in order.

    ::

        checks = CheckRules()

        @checks.rule
        def no_weekend_tickets(notification, payment):
            return CheckCode.NOT_ACCEPTED if is_sold_out(payment.invoice_id) else None

    A Check for a payment the record does not own (no record for its ``InvoiceId``, or
    a charge :func:`owns` says is not the record's: a subscription's recurrent charge, a
    token charge) is not the record's to decline (docs/gateway.md §5.3): it goes to the
    :meth:`unowned_rule` rules instead, and with none, or none declining, it is
    answered ``unowned_default``. Accepting is opt-in: by default (``None``) such a
    Check is answered as :func:`check_decision` answers it (10 with no record), as it
    always was. The Flask extension, whose ledger records every payment of its own,
    sets ``unowned_default=CheckCode.ACCEPT``::

        checks = CheckRules(unowned_default=CheckCode.ACCEPT)

    A rule that raises, or returns anything but ``None``, an ``int`` that is a
    :class:`CheckCode`, answers ``on_error`` (13, "the payment cannot be accepted", by
    default): a broken rule must decline, not accept, and must not turn into an HTTP
    500, which the gateway would record as "unavailable". The failure is logged with
    the rule's name and the transaction id, never the notification's fields.
    """

    def __init__(
        self, *, on_error: CheckCode = CheckCode.NOT_ACCEPTED,
        unowned_default: CheckCode | None = None,
    ) -> None:
        self.on_error = on_error
        #: the answer to a Check of a payment the record does not own, once its rules
        #: let it through (``None``: :func:`check_decision`'s answer)
        self.unowned_default = unowned_default
        self._rules: list[CheckRule] = []
        self._unowned: list[UnownedCheckRule] = []

    def rule(self, fn: _R) -> _R:
        """Decorator: add ``fn`` as the last rule."""
        self._rules.append(fn)
        return fn

    def unowned_rule(self, fn: _U) -> _U:
        """Decorator: add ``fn(notification)`` as the last rule for Checks of payments
        the record does not own."""
        self._unowned.append(fn)
        return fn

    @property
    def rules(self) -> tuple[CheckRule, ...]:
        """The registered rules, in the order they run."""
        return tuple(self._rules)

    @property
    def unowned_rules(self) -> tuple[UnownedCheckRule, ...]:
        """The rules for payments the record does not own, in the order they run."""
        return tuple(self._unowned)

    def decide(
        self,
        notification: Notification,
        payment: PaymentSnapshot | None,
        *,
        now: datetime,
        closed_statuses: frozenset[str] = CLOSED_STATUSES,
    ) -> CheckCode:
        """The code to answer: the first non-zero of the default decision and the rules
        (for a payment the record does not own: of the :meth:`unowned_rule` rules, then
        ``unowned_default``)."""
        # A record that keeps them (the ledger's Payment) tells its own transaction and
        # subscription; PaymentSnapshot does not require them.
        if not owns(notification, payment, closed_statuses=closed_statuses,
                    payment_transaction_id=getattr(payment, "gateway_transaction_id", None),
                    payment_subscription_id=getattr(payment, "known_subscription", None)):
            code = self._first_decline(
                [(rule, (notification,)) for rule in self._unowned], notification)
            if code is not CheckCode.ACCEPT:
                return code
            if self.unowned_default is not None:
                return self.unowned_default
            # Not opted in: the record's answer, as check_decision gives it.
            return check_decision(notification, payment, now=now,
                                  closed_statuses=closed_statuses)
        assert payment is not None  # owns() owns nothing without a record
        code = check_decision(notification, payment, now=now, closed_statuses=closed_statuses)
        if code is not CheckCode.ACCEPT:
            return code
        return self._first_decline(
            [(rule, (notification, payment)) for rule in self._rules], notification)

    def _first_decline(
        self, calls: list[tuple[Callable[..., object], tuple[object, ...]]],
        notification: Notification,
    ) -> CheckCode:
        for rule, args in calls:
            name = getattr(rule, "__qualname__", repr(rule))
            try:
                result = rule(*args)
            except Exception as exc:  # a shop rule's bug must decline, never crash the endpoint
                logger.error(
                    "Check rule %s raised %s for transaction %s; answering %d",
                    name, exc.__class__.__name__, notification.transaction_id, self.on_error,
                )
                return self.on_error
            if result is None:
                continue
            if isinstance(result, bool) or not isinstance(result, int) or (
                result not in _CHECK_CODES
            ):
                # ``False`` would otherwise read as 0 and accept the payment.
                logger.error(
                    "Check rule %s returned %r for transaction %s; answering %d",
                    name, result, notification.transaction_id, self.on_error,
                )
                return self.on_error
            if result != CheckCode.ACCEPT:
                return CheckCode(result)
        return CheckCode.ACCEPT


# --------------------------------------------------------------------------- sender IP

#: The gateway's published sender networks (docs/gateway.md §5.1). They have changed
#: before, so they are a default for :class:`SenderCheck`, not a hard-coded truth.
GATEWAY_NETWORKS: tuple[str, ...] = (
    "185.98.81.0/28",
    "87.251.91.160/27",
    "46.46.175.96/27",
    "46.46.168.160/27",
    "162.55.174.97/32",
    "91.216.178.243/32",
)

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[_Network, ...]:
    """CIDR ranges from configuration; ``ValueError`` naming the first bad one."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not a CIDR range: {cidr[:64]!r}") from None
    return tuple(networks)


def _address(text: str) -> _Address | None:
    """An address as proxies write it: bare, ``[v6]:port`` or ``v4:port``."""
    value = text.strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def sender_address(
    remote_addr: str | None, forwarded_for: str | None, proxy_hops: int = 0
) -> _Address | None:
    """The address the notification came from, or ``None`` when it cannot be known.

    With ``proxy_hops == 0`` that is ``remote_addr`` and ``X-Forwarded-For`` is ignored
    (anyone can send one). Behind ``proxy_hops`` proxies of one's own, each appending
    the address it saw, it is the ``proxy_hops``-th entry from the right of
    ``X-Forwarded-For`` (several headers joined with ``,``); the entries further left
    were written by the sender and are not trusted. Fewer entries than hops → ``None``.
    """
    if proxy_hops < 0:
        raise ValueError("proxy_hops cannot be negative")
    if proxy_hops == 0:
        return _address(remote_addr) if remote_addr else None
    entries = [e for e in (forwarded_for or "").split(",") if e.strip()]
    if len(entries) < proxy_hops:
        return None
    return _address(entries[-proxy_hops])


@dataclass(frozen=True)
class SenderCheck:
    """The optional sender-IP allow-list. Off by default: the HMAC is the authority,
    and the gateway's addresses change (docs/gateway.md §5.1)."""

    enabled: bool = False
    networks: tuple[_Network, ...] = parse_networks(GATEWAY_NETWORKS)
    proxy_hops: int = 0

    @classmethod
    def from_config(
        cls, cidrs: Iterable[str] | None = None, *, enabled: bool = True, proxy_hops: int = 0
    ) -> SenderCheck:
        """From configuration values (``cidrs`` defaults to :data:`GATEWAY_NETWORKS`)."""
        if proxy_hops < 0:
            raise ValueError("proxy_hops cannot be negative")
        networks = parse_networks(GATEWAY_NETWORKS if cidrs is None else cidrs)
        return cls(enabled=enabled, networks=networks, proxy_hops=proxy_hops)

    def allows(self, remote_addr: str | None, forwarded_for: str | None = None) -> bool:
        """Whether a request from ``remote_addr`` (with that ``X-Forwarded-For``) may
        deliver notifications: always when disabled; otherwise when the sender's
        address is known and inside one of ``networks``."""
        if not self.enabled:
            return True
        address = sender_address(remote_addr, forwarded_for, self.proxy_hops)
        return address is not None and any(address in net for net in self.networks)
