"""The checkout_kit error tree.

Every exception the library raises on purpose derives from :class:`CheckoutKitError`
and carries the facts as attributes, so callers branch on types and fields, never
on message text. Messages never contain a full card number or a CVV.

::

    CheckoutKitError
    ├── CardError                    invalid card data given to the Python API
    ├── MoneyError                   amounts that are floats, negative, or too precise
    ├── InvalidRequestError          other bad arguments to the client or the ledger (``field``)
    ├── JSONCodecError               JSON that cannot be written or read exactly (``code``)
    ├── CryptogramError              card packets
    │   ├── MalformedPacketError     cannot be parsed (``code`` says why)
    │   ├── UnknownKeyVersionError   no key registered for the packet's version
    │   └── DecryptionError          the private key does not open the packet
    ├── ThreeDSError                 a PaReq, PaRes or MD that does not fit (``code``)
    ├── LedgerError                  the payment ledger (checkout_kit.ledger)
    │   ├── PaymentNotFoundError     no payment with that id (``payment_id``)
    │   ├── InvalidTransitionError   a status change the state machine forbids (``old``, ``new``)
    │   ├── PaymentConflictError     an invoice reused with other data, an amount exceeded
    │   ├── PaymentExpiredError      paying after the payment's ``expires_at``
    │   └── MigrationError           a schema migration left broken references (rolled back)
    ├── NotificationError            gateway notifications (webhooks)
    │   ├── SignatureVerificationError
    │   └── MalformedNotificationError
    └── GatewayError                 talking to the CloudPayments API
        ├── APIConnectionError       nothing was sent, or a safe call failed to connect
        ├── AuthenticationError      HTTP 401
        ├── RateLimitError           HTTP 429 after the retries
        ├── ServerError              HTTP 5xx after the retries
        ├── RequestRejectedError     ``Success: false`` with a ``Message``
        ├── PaymentDeclined          the transaction was declined (``reason_code``)
        └── UnknownOutcomeError      a mutating call whose result is not known
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = [
    "APIConnectionError",
    "AuthenticationError",
    "CardError",
    "CheckoutKitError",
    "CryptogramError",
    "DecryptionError",
    "GatewayError",
    "InvalidRequestError",
    "InvalidTransitionError",
    "JSONCodecError",
    "LedgerError",
    "MalformedNotificationError",
    "MalformedPacketError",
    "MigrationError",
    "MoneyError",
    "NotificationError",
    "NotificationPurgedError",
    "PaymentConflictError",
    "PaymentDeclined",
    "PaymentExpiredError",
    "PaymentNotFoundError",
    "ProblemNotFoundError",
    "RateLimitError",
    "RequestRejectedError",
    "ServerError",
    "SignatureVerificationError",
    "ThreeDSError",
    "UnknownKeyVersionError",
    "UnknownOutcomeError",
]


class CheckoutKitError(Exception):
    """Base class of every error checkout_kit raises on purpose."""

    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CardError(CheckoutKitError, ValueError):
    """Card data is not acceptable.

    ``errors`` maps a checkout.js field name (``cardNumber``, ``cvv``, ...) to its
    checkout.js code (``CardNumber_Invalid``, ...).
    """

    def __init__(self, errors: Mapping[str, str], message: str | None = None) -> None:
        self.errors: dict[str, str] = dict(errors)
        super().__init__(
            message or "invalid card data: " + ", ".join(f"{k}={v}" for k, v in self.errors.items())
        )


class MoneyError(CheckoutKitError, ValueError):
    """An amount is not acceptable (a float, negative, or finer than the currency allows)."""


class InvalidRequestError(CheckoutKitError, ValueError):
    """An argument given to :class:`~checkout_kit.client.CloudPaymentsClient` or to the
    ledger (:mod:`checkout_kit.ledger`) is not acceptable (an empty id, a ``request_id``
    that cannot be a header, a naive datetime...). Raised before anything is sent or
    stored. ``field`` names the argument
    (``transaction_id``, ``request_id``...), or is ``None`` when no single one is at
    fault. Amounts are :class:`MoneyError`; an argument of the wrong type or an
    unknown keyword stays a ``TypeError``, as in any Python call."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class JSONCodecError(CheckoutKitError, ValueError):
    """JSON that :mod:`checkout_kit.jsoncodec` will not write or read.

    ``code`` says why: ``not_json``, ``encoding`` (bytes that are not UTF-8),
    ``constant`` (``NaN``, ``Infinity``), ``number_range``, ``too_deep``,
    ``non_finite`` (a non-finite ``Decimal`` to write) or ``naive_datetime``."""

    def __init__(self, message: str, code: str) -> None:
        self.code = code
        super().__init__(message)


class CryptogramError(CheckoutKitError, ValueError):
    """A card cryptogram packet could not be built, read or opened.

    ``code`` is a stable machine-readable reason, for example ``bad_length``.
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class MalformedPacketError(CryptogramError):
    """The packet is not in any known layout.

    Codes: ``empty``, ``bad_length``, ``bad_base64``, ``unknown_marker``,
    ``bad_header``, ``bad_expiry``, ``bad_json``.
    """


class UnknownKeyVersionError(CryptogramError):
    """No key is registered for the packet's key version."""

    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__("unknown_key_version", f"no key registered for key version {version:02d}")


class DecryptionError(CryptogramError):
    """The private key could not open the packet, or its plaintext is not a card packet."""


class ThreeDSError(CheckoutKitError, ValueError):
    """A PaReq, PaRes or MD could not be read or does not belong where it was sent.

    ``code``: ``bad_pareq``, ``bad_pares``, ``bad_signature``, ``wrong_transaction``
    or ``bad_md``.
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class LedgerError(CheckoutKitError):
    """The payment ledger refused an operation; nothing was changed."""


class PaymentNotFoundError(LedgerError, LookupError):
    """No payment has this id (or invoice id)."""

    def __init__(self, payment_id: str, message: str | None = None) -> None:
        self.payment_id = payment_id
        super().__init__(message or f"no payment {payment_id!r}")


class ProblemNotFoundError(LedgerError, LookupError):
    """No recorded payment problem has this id."""

    def __init__(self, problem_id: object) -> None:
        self.problem_id = problem_id
        super().__init__(f"no payment problem {problem_id!r}")


class InvalidTransitionError(LedgerError):
    """The payment state machine forbids moving from ``old`` to ``new``."""

    def __init__(self, old: str, new: str, message: str | None = None) -> None:
        self.old = old
        self.new = new
        super().__init__(message or f"a payment cannot go from {old} to {new}")


class PaymentConflictError(LedgerError):
    """The operation contradicts what the ledger holds: an ``invoice_id`` reused with
    other data, a refund or confirmation above the amount, a refund while another
    refund's outcome is unknown. ``payment_id`` names the payment when there is one."""

    def __init__(self, message: str, payment_id: str | None = None) -> None:
        self.payment_id = payment_id
        super().__init__(message)


class PaymentExpiredError(LedgerError):
    """The payment's ``expires_at`` has passed: it is not charged any more (the shop
    records a new payment if it still wants the money). ``payment_id``, ``expires_at``."""

    def __init__(self, payment_id: str, expires_at: datetime) -> None:
        self.payment_id = payment_id
        self.expires_at = expires_at
        super().__init__(f"payment {payment_id!r} expired at {expires_at.isoformat()}")


class MigrationError(LedgerError):
    """A migration of the ledger's schema would have left rows of its tables referring
    to rows that are not there; it was rolled back. ``violations`` name what it broke:
    ``(table, parent table, foreign key index)`` as SQLite's ``foreign_key_check`` says."""

    def __init__(self, violations: list[tuple[Any, ...]]) -> None:
        self.violations = violations
        super().__init__(f"the migration would break foreign keys, so it was rolled back: "
                         f"{violations[:5]}")


class NotificationError(CheckoutKitError):
    """A gateway notification could not be accepted."""


class NotificationPurgedError(NotificationError, LookupError):
    """Only the masked copy of this audit-log notification is left (purged after the
    retention period): it cannot be checked or replayed again."""

    def __init__(self, record_id: int, purged_at: datetime) -> None:
        self.record_id = record_id
        self.purged_at = purged_at
        super().__init__(f"notification {record_id} was purged on {purged_at:%Y-%m-%d}: "
                         "only a masked copy is kept")


class SignatureVerificationError(NotificationError):
    """The notification's HMAC headers are missing or do not match.

    ``header`` names the header that failed, or is ``None`` when none was sent.
    """

    def __init__(self, message: str, header: str | None = None) -> None:
        self.header = header
        super().__init__(message)


class MalformedNotificationError(NotificationError):
    """The notification body cannot be decoded or lacks required fields."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class GatewayError(CheckoutKitError):
    """A call to the CloudPayments API failed.

    ``request_id`` is the ``X-Request-ID`` that was sent (for mutating calls), so a
    caller can retry the same operation safely or reconcile it later.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.request_id = request_id
        self.endpoint = endpoint
        super().__init__(message)


class APIConnectionError(GatewayError):
    """The API could not be reached, and the call is known not to have taken effect
    (or it was a read-only call, for which it does not matter)."""


class AuthenticationError(GatewayError):
    """HTTP 401: the Public ID / API secret pair was refused."""


class RateLimitError(GatewayError):
    """HTTP 429 persisted through every retry."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class ServerError(GatewayError):
    """HTTP 5xx persisted through every retry of a call that is safe to report as failed."""


class RequestRejectedError(GatewayError):
    """The API answered ``Success: false`` with a ``Message``: the request itself was
    refused (a missing field, an unknown transaction...). Nothing was charged."""

    def __init__(self, message: str, *, model: Any = None, **kw: Any) -> None:
        self.model = model
        super().__init__(message, **kw)


class PaymentDeclined(GatewayError):
    """The gateway processed the payment and declined it.

    ``reason_code`` is the gateway's ``ReasonCode`` (``5051`` for insufficient funds),
    ``reason`` its name, ``cardholder_message`` the text to show the payer, and
    ``transaction`` the typed transaction model.
    """

    def __init__(
        self,
        message: str,
        *,
        reason_code: int,
        reason: str | None = None,
        cardholder_message: str | None = None,
        transaction: Any = None,
        **kw: Any,
    ) -> None:
        self.reason_code = reason_code
        self.reason = reason
        self.cardholder_message = cardholder_message
        self.transaction = transaction
        super().__init__(message, **kw)


class UnknownOutcomeError(GatewayError):
    """A mutating call was (or may have been) sent, and its result is not known after
    every retry. The payment may or may not exist: reconcile with
    ``find_payment(invoice_id)`` / ``get_payment(transaction_id)`` or repeat the call
    with the same ``request_id`` (the gateway answers a repeated ``X-Request-ID`` with
    the stored result for one hour)."""
