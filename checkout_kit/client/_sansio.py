"""The client's sans-I/O core: everything but sending bytes and sleeping.

:class:`~checkout_kit.client.CloudPaymentsClient` (httpx.Client) and
:class:`~checkout_kit.client.AsyncCloudPaymentsClient` (httpx.AsyncClient) are thin
shells over this module, in the way httpx and Flask's ``sansio`` packages split their
sync and async halves. Written once here:

* the API operations: each public client method is an *operation* below, a function
  that checks its arguments and returns a :class:`Call` (path, body, whether it moves
  money, how to read the answer); the shells expose every operation as a method with
  the operation's signature and docstring;
* the request: headers, the JSON body (:mod:`checkout_kit.jsoncodec`), the
  ``X-Request-ID`` of mutating calls;
* the retry policy (:class:`Attempts`): which failures are retried, the backoff and its
  jitter, ``Retry-After``, and when an outcome is unknown;
* reading the answer: the envelope, declines, 3-D Secure, typed models.

A shell only builds the ``httpx.Request`` (``build_request``), sends it (``send``),
feeds the response or the transport error to :class:`Attempts` and sleeps when told to.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import http.cookiejar
import inspect
import logging
import math
import re
import secrets
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Generic, NamedTuple, NoReturn, TypeVar, cast

import httpx

from .. import jsoncodec
from ..errors import (
    APIConnectionError,
    AuthenticationError,
    GatewayError,
    InvalidRequestError,
    JSONCodecError,
    PaymentDeclined,
    RateLimitError,
    RequestRejectedError,
    ServerError,
    UnknownOutcomeError,
)
from ..models import (
    CardToken,
    NotificationSettings,
    Order,
    PublicKeyInfo,
    Refund,
    Subscription,
    ThreeDSChallenge,
    Transaction,
    TrInitiator,
    as_reason_code,
    is_three_ds_model,
)
from ..money import parse_amount
from ..reasons import reason_for

__all__ = [
    "DEFAULT_BASE_URL",
    "OPERATIONS",
    "SUBSCRIPTION_FIELDS",
    "Attempts",
    "Call",
    "ClientCore",
    "Done",
    "Retry",
    "format_api_datetime",
    "method_like",
]

DEFAULT_BASE_URL = "https://api.cloudpayments.ru"

log = logging.getLogger("checkout_kit.client")

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])
_O = TypeVar("_O", bound=Callable[..., "Call[Any]"])

# Errors raised before a single byte of the request can have left this process: safe to
# retry even without a key, and a final one means "not sent".
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)
# Misconfiguration (bad URL scheme, a request httpx itself refuses): not sent, not retried.
_NEVER_SENT = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)

_REQUEST_ID = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?")
_NOTIFICATION_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,31}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

#: snake_case keyword of ``update_subscription`` -> API field.
SUBSCRIPTION_FIELDS: dict[str, str] = {
    "description": "Description",
    "amount": "Amount",
    "currency": "Currency",
    "require_confirmation": "RequireConfirmation",
    "start_date": "StartDate",
    "interval": "Interval",
    "period": "Period",
    "max_periods": "MaxPeriods",
    "customer_receipt": "CustomerReceipt",
    "culture_name": "CultureName",
}


# --- calls and their context ---------------------------------------------------------------


class Context(NamedTuple):
    """What the error paths need to know about one API call in flight."""

    method: str
    path: str
    mutating: bool
    request_id: str | None

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"

    def kw(self, status_code: int | None = None) -> dict[str, Any]:
        return {"status_code": status_code, "request_id": self.request_id, "endpoint": self.path}


#: Reads a decoded answer (its JSON object and HTTP status) into a call's result.
Reader = Callable[[Mapping[str, Any], int, Context], _T]


@dataclass(frozen=True)
class Call(Generic[_T]):
    """One API operation, ready to send: made by an operation function, run by a shell.

    ``request_id`` is the caller's key for a mutating call (``None``: one is generated
    when the call starts); reads never send one.
    """

    path: str
    body: Any
    read: Reader[_T]
    mutating: bool
    request_id: str | None = None
    method: str = "POST"


@dataclass(frozen=True)
class Retry:
    """Sleep ``delay`` seconds, then send the same request again."""

    delay: float


@dataclass(frozen=True)
class Done(Generic[_T]):
    """The call is over; ``value`` is its result."""

    value: _T


# --- arguments -----------------------------------------------------------------------------


def format_api_datetime(value: datetime) -> str:
    """An aware datetime as UTC text without a suffix (``2030-04-15T00:00:00``).

    ``StartDate`` is documented as UTC and the Docs examples send it without an offset
    (a .NET server may read a ``Z`` suffix as local time); naive datetimes are refused.
    """
    return _aware(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _aware(value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequestError("datetimes sent to the gateway must be timezone-aware")
    return value


def _period_bound(value: datetime) -> str:
    # /v2/payments/list takes the bound with its offset ("2021-03-09T00:00:00+03:00").
    return _aware(value).isoformat(timespec="seconds")


def _day(value: date | str) -> str:
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and _DAY.fullmatch(value):
        try:
            date.fromisoformat(value)
        except ValueError:  # 2024-02-30
            pass
        else:
            return value
    raise InvalidRequestError(f"expected a date or 'yyyy-MM-dd', got {value!r}", "date")


def _compact(body: Mapping[str, Any]) -> dict[str, Any]:
    """Drop optional fields the caller left out (``None``)."""
    return {k: v for k, v in body.items() if v is not None}


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(f"{name} must be a non-empty string", name)
    return value


def _transaction_id(value: int | str) -> int:
    if isinstance(value, bool):
        raise InvalidRequestError("transaction_id must be an integer", "transaction_id")
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    raise InvalidRequestError("transaction_id must be a positive integer (the 3-D Secure MD)",
                              "transaction_id")


def _positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidRequestError(f"{name} must be a positive integer", name)
    return value


def _page(value: object) -> int:
    return _positive(value, "page")


def _notification_type(value: object) -> str:
    # It goes into the URL path: only a plain word may pass.
    if not isinstance(value, str) or not _NOTIFICATION_TYPE.fullmatch(value):
        raise InvalidRequestError(f"not a notification type: {value!r}", "type")
    return value


def _request_id(value: object) -> str:
    if not isinstance(value, str) or not _REQUEST_ID.fullmatch(value):
        raise InvalidRequestError("request_id must be 1-255 printable ASCII characters",
                                  "request_id")
    return value


def _encode(body: Any) -> bytes:
    """The request body as JSON bytes; data the codec will not write is a bad argument
    (a naive datetime, a non-finite number, nesting too deep). Floats stay MoneyError."""
    try:
        return jsoncodec.dumps_bytes(body)
    except JSONCodecError as exc:
        raise InvalidRequestError(f"the request cannot be sent as JSON: {exc.message}") from exc


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


# --- reading answers -----------------------------------------------------------------------


class _Envelope(NamedTuple):
    success: bool
    message: str | None
    model: Any
    status_code: int


def _envelope(data: Mapping[str, Any], status: int) -> _Envelope:
    success = data.get("Success")
    if not isinstance(success, bool):
        raise ValueError("no Success flag in the answer")
    message = data.get("Message")
    return _Envelope(
        success=success,
        message=message if isinstance(message, str) and message else None,
        model=data.get("Model"),
        status_code=status,
    )


def _rejected(env: _Envelope, ctx: Context) -> NoReturn:
    raise RequestRejectedError(
        env.message or "the gateway refused the request without a message",
        model=env.model, **ctx.kw(env.status_code),
    )


def _ok_message(data: Mapping[str, Any], status: int, ctx: Context) -> str:
    env = _envelope(data, status)
    if not env.success:
        _rejected(env, ctx)
    return env.message or ""


def _no_result(data: Mapping[str, Any], status: int, ctx: Context) -> None:
    env = _envelope(data, status)
    if not env.success:
        _rejected(env, ctx)


def _model(build: Callable[[Any], _T]) -> Reader[_T]:
    def read(data: Mapping[str, Any], status: int, ctx: Context) -> _T:
        env = _envelope(data, status)
        if not env.success:
            # Reads return declined transactions as data: a transaction model is the answer.
            if not ctx.mutating and isinstance(env.model, Mapping) and env.model:
                return build(env.model)
            _rejected(env, ctx)
        return build(env.model)

    return read


def _models(build: Callable[[Any], _T]) -> Reader[list[_T]]:
    def read(data: Mapping[str, Any], status: int, ctx: Context) -> list[_T]:
        env = _envelope(data, status)
        if not env.success and not env.model:
            _rejected(env, ctx)
        if env.model is None:
            return []
        if isinstance(env.model, Mapping):
            return [build(env.model)]
        if not isinstance(env.model, list):
            raise ValueError("Model is neither a list nor an object")
        return [build(item) for item in env.model]

    return read


def _public_key(data: Mapping[str, Any], status: int, ctx: Context) -> PublicKeyInfo:
    # The endpoint answers bare {Pem, Version} (docs/gateway.md §1.7); an envelope is
    # read too.
    model = data.get("Model")
    return PublicKeyInfo.from_api(model if isinstance(model, Mapping) else data)


def _payment(allow_3ds: bool) -> Reader[Transaction | ThreeDSChallenge]:
    def read(data: Mapping[str, Any], status: int, ctx: Context) -> Transaction | ThreeDSChallenge:
        return _payment_result(_envelope(data, status), ctx, allow_3ds)

    return read


def _transaction(data: Mapping[str, Any], status: int, ctx: Context) -> Transaction:
    result = _payment_result(_envelope(data, status), ctx, allow_3ds=False)
    assert isinstance(result, Transaction)  # allow_3ds=False never yields a challenge
    return result


def _payment_result(
    env: _Envelope, ctx: Context, allow_3ds: bool
) -> Transaction | ThreeDSChallenge:
    """docs/gateway.md §3.4: 3-D Secure, decline, request error or accepted, in that order."""
    model = env.model
    if not env.success and is_three_ds_model(model):
        if not allow_3ds:
            raise ValueError("unexpected 3-D Secure challenge")
        return ThreeDSChallenge.from_api(model)
    if isinstance(model, Mapping) and model.get("TransactionId") is not None:
        try:
            tx = Transaction.from_api(model)
        except ValueError:
            # A decline is definite even when the model is too thin to type in full.
            code = model.get("ReasonCode")
            if env.success or not isinstance(code, int) or isinstance(code, bool) or not code:
                raise
            _declined(code, None, model, ctx, env.status_code)
        code = int(tx.reason_code or 0)  # None: still in progress, no outcome
        if tx.is_declined or (not env.success and code != 0):
            _declined(code, tx, model, ctx, env.status_code)
        if env.success:
            return tx
        raise ValueError(f"Success is false for a transaction in status {tx.status}")
    if not env.success and env.message:
        _rejected(env, ctx)
    raise ValueError("no transaction in the answer")


def _declined(
    code: int, tx: Transaction | None, model: Mapping[str, Any], ctx: Context, status: int
) -> NoReturn:
    row = reason_for(code)
    reason_code = (tx.reason_code if tx is not None and tx.reason_code is not None
                   else as_reason_code(code))
    reason = (tx.reason if tx is not None else None) or model.get("Reason") or row.name
    message = (tx.cardholder_message if tx is not None else model.get("CardHolderMessage"))
    raise PaymentDeclined(
        f"{ctx.endpoint}: payment declined, {reason} ({code})",
        reason_code=reason_code,
        reason=str(reason),
        cardholder_message=str(message) if message else row.message_ru,
        transaction=tx,
        **ctx.kw(status),
    )


def _twin(operation: _O, name: str, path: str, doc: str) -> _O:
    """``operation`` sent to another ``path``: the two-stage twin of a one-stage
    payment takes the same arguments and reads the same answers."""

    @functools.wraps(operation)
    def twin(*args: Any, **kwargs: Any) -> Call[Any]:
        return replace(operation(*args, **kwargs), path=path)

    twin.__name__ = twin.__qualname__ = name
    twin.__doc__ = doc
    return cast(_O, twin)


# --- the operations: one function per client method ----------------------------------------
#
# Each checks its arguments (raising before anything is sent) and describes the call.
# Each shell exposes every function of OPERATIONS as a method of the same name,
# signature and docstring (tests/test_client_sansio.py keeps the two lists equal).


def test() -> Call[str]:
    """``POST /test``: check connectivity and credentials; returns the gateway's
    ``Message`` (a request guid)."""
    return Call("/test", {}, _ok_message, mutating=False)


def charge(
    amount: Decimal | int | str,
    *,
    currency: str = "RUB",
    ip_address: str,
    cryptogram: str,
    name: str | None = None,
    invoice_id: str | None = None,
    description: str | None = None,
    account_id: str | None = None,
    email: str | None = None,
    payer: Mapping[str, Any] | None = None,
    json_data: Any = None,
    save_card: bool | None = None,
    culture_name: str | None = None,
    payment_url: str | None = None,
    request_id: str | None = None,
) -> Call[Transaction | ThreeDSChallenge]:
    """One-stage payment by cryptogram (``/payments/cards/charge``).

    Returns the ``Completed`` transaction, or a :class:`ThreeDSChallenge` when the
    card needs 3-D Secure (finish with ``post3ds``). Raises
    :class:`~checkout_kit.errors.PaymentDeclined` on a decline.
    """
    body = _compact({
        "Amount": parse_amount(amount, currency),
        "Currency": currency,
        "IpAddress": _text(ip_address, "ip_address"),
        "CardCryptogramPacket": _text(cryptogram, "cryptogram"),
        "Name": name,
        "PaymentUrl": payment_url,
        "InvoiceId": invoice_id,
        "Description": description,
        "CultureName": culture_name,
        "AccountId": account_id,
        "Email": email,
        "Payer": payer,
        "JsonData": json_data,
        "SaveCard": save_card,
    })
    return Call("/payments/cards/charge", body, _payment(allow_3ds=True), True, request_id)


auth = _twin(
    charge, "auth", "/payments/cards/auth",
    """Two-stage payment by cryptogram (``/payments/cards/auth``): the money is held
    (``Authorized``) until ``confirm`` or ``void``. Same arguments and results as
    ``charge``.""",
)


def post3ds(
    transaction_id: int | str, pa_res: str, *, request_id: str | None = None
) -> Call[Transaction]:
    """Finish 3-D Secure (``/payments/cards/post3ds``) with ``MD`` and ``PaRes`` from
    the bank's POST to your ``TermUrl``. Raises ``PaymentDeclined`` (5206 when the
    authentication failed)."""
    if not isinstance(pa_res, str) or not pa_res:
        raise InvalidRequestError("pa_res is required", "pa_res")
    body = {"TransactionId": _transaction_id(transaction_id), "PaRes": pa_res}
    return Call("/payments/cards/post3ds", body, _transaction, True, request_id)


def charge_token(
    amount: Decimal | int | str,
    *,
    currency: str = "RUB",
    account_id: str,
    token: str,
    tr_initiator_code: TrInitiator | int,
    payment_scheduled: bool = False,
    invoice_id: str | None = None,
    description: str | None = None,
    ip_address: str | None = None,
    email: str | None = None,
    payer: Mapping[str, Any] | None = None,
    json_data: Any = None,
    request_id: str | None = None,
) -> Call[Transaction]:
    """One-stage payment by saved-card token (``/payments/tokens/charge``).

    ``tr_initiator_code`` is required, as by the gateway (docs/gateway.md §3.5):
    :attr:`TrInitiator.CARDHOLDER <checkout_kit.models.TrInitiator.CARDHOLDER>` when the
    payer is present and asked for this payment, :attr:`TrInitiator.MERCHANT
    <checkout_kit.models.TrInitiator.MERCHANT>` when the shop charges the saved card on
    its own; ``payment_scheduled`` marks a merchant-initiated charge that follows a
    schedule (a subscription, an instalment) and is refused with a cardholder one.
    """
    if isinstance(tr_initiator_code, bool) or tr_initiator_code not in (0, 1):
        raise InvalidRequestError(
            "tr_initiator_code is required: TrInitiator.MERCHANT (0) or "
            "TrInitiator.CARDHOLDER (1)", "tr_initiator_code")
    if payment_scheduled and tr_initiator_code == TrInitiator.CARDHOLDER:
        raise InvalidRequestError(
            "payment_scheduled is for merchant-initiated charges "
            "(tr_initiator_code=TrInitiator.MERCHANT)", "payment_scheduled")
    body = _compact({
        "Amount": parse_amount(amount, currency),
        "Currency": currency,
        "AccountId": _text(account_id, "account_id"),
        "Token": _text(token, "token"),
        "TrInitiatorCode": int(tr_initiator_code),
        "PaymentScheduled": 1 if payment_scheduled else 0,
        "InvoiceId": invoice_id,
        "Description": description,
        "IpAddress": ip_address,
        "Email": email,
        "Payer": payer,
        "JsonData": json_data,
    })
    # A token payment has no 3-D Secure step: a challenge in its answer is unknown.
    return Call("/payments/tokens/charge", body, _transaction, True, request_id)


auth_token = _twin(
    charge_token, "auth_token", "/payments/tokens/auth",
    """Two-stage payment by token (``/payments/tokens/auth``); see ``charge_token``.""",
)


def confirm(
    transaction_id: int | str,
    amount: Decimal | int | str,
    *,
    json_data: Any = None,
    request_id: str | None = None,
) -> Call[None]:
    """Capture an ``Authorized`` payment, fully or partly (``/payments/confirm``)."""
    body = _compact({
        "TransactionId": _transaction_id(transaction_id),
        "Amount": parse_amount(amount),
        "JsonData": json_data,
    })
    return Call("/payments/confirm", body, _no_result, True, request_id)


def void(transaction_id: int | str, *, request_id: str | None = None) -> Call[None]:
    """Cancel an ``Authorized`` payment (``/payments/void``)."""
    body = {"TransactionId": _transaction_id(transaction_id)}
    return Call("/payments/void", body, _no_result, True, request_id)


def refund(
    transaction_id: int | str,
    amount: Decimal | int | str,
    *,
    json_data: Any = None,
    request_id: str | None = None,
) -> Call[Refund]:
    """Refund a ``Completed`` payment, fully or partly (``/payments/refund``); the
    refund has its own transaction id."""
    body = _compact({
        "TransactionId": _transaction_id(transaction_id),
        "Amount": parse_amount(amount),
        "JsonData": json_data,
    })
    return Call("/payments/refund", body, _model(Refund.from_api), True, request_id)


def get_payment(transaction_id: int | str) -> Call[Transaction]:
    """The transaction with this id (``/payments/get``), declined ones included."""
    body = {"TransactionId": _transaction_id(transaction_id)}
    return Call("/payments/get", body, _model(Transaction.from_api), False)


def find_payment(invoice_id: str) -> Call[Transaction]:
    """The latest payment for ``invoice_id`` (``/payments/find``). Raises
    :class:`~checkout_kit.errors.RequestRejectedError` (``Message`` ``"Not found"``)
    when there is none."""
    body = {"InvoiceId": _text(invoice_id, "invoice_id")}
    return Call("/payments/find", body, _model(Transaction.from_api), False)


def find_operation(invoice_id: str) -> Call[Transaction]:
    """The latest operation for ``invoice_id``, refunds and payouts included
    (``/v2/payments/find``; ``find_payment`` looks at payments only). One transaction,
    as the gateway answers (docs/gateway.md §3.5); for every refund of a payment read
    ``list_payments_v2``. Raises :class:`~checkout_kit.errors.RequestRejectedError`
    (``Message`` ``"Not found"``) when there is none."""
    body = {"InvoiceId": _text(invoice_id, "invoice_id")}
    return Call("/v2/payments/find", body, _model(Transaction.from_api), False)


def find_payments(invoice_id: str) -> Call[list[Transaction]]:
    """Deprecated: renamed :func:`find_operation`. ``/v2/payments/find`` answers one
    transaction, the latest operation for ``invoice_id`` (docs/gateway.md §3.5), so this
    returns it as a one-item list; read ``list_payments_v2`` for every operation. Emits
    :class:`DeprecationWarning`."""
    warnings.warn(
        "find_payments() is deprecated: /v2/payments/find answers one transaction; use "
        "find_operation() for it, or list_payments_v2() for every operation",
        DeprecationWarning,
        stacklevel=3,  # the caller of the client's method, not the shell's wrapper
    )
    call = find_operation(invoice_id)
    read = call.read

    def read_one(data: Mapping[str, Any], status: int, ctx: Context) -> list[Transaction]:
        return [read(data, status, ctx)]

    return Call(call.path, call.body, read_one, call.mutating)


def list_payments(date: date | str, *, timezone: str | None = None) -> Call[list[Transaction]]:
    """The operations of one day (``/payments/list``)."""
    body = _compact({"Date": _day(date), "TimeZone": timezone})
    return Call("/payments/list", body, _models(Transaction.from_api), False)


def list_payments_v2(
    created_gte: datetime,
    created_lte: datetime,
    *,
    page: int = 1,
    statuses: Iterable[str] | None = None,
    timezone: str | None = None,
) -> Call[list[Transaction]]:
    """One page (100 operations, oldest first) of a period (``/v2/payments/list``)."""
    body = _compact({
        "CreatedDateGte": _period_bound(created_gte),
        "CreatedDateLte": _period_bound(created_lte),
        "PageNumber": _page(page),
        "TimeZone": timezone,
        "Statuses": None if statuses is None else [str(s) for s in statuses],
    })
    return Call("/v2/payments/list", body, _models(Transaction.from_api), False)


def list_tokens(page: int = 1) -> Call[list[CardToken]]:
    """One page of saved card tokens (``/payments/tokens/list``)."""
    body = {"PageNumber": _page(page)}
    return Call("/payments/tokens/list", body, _models(CardToken.from_api), False)


def create_subscription(
    *,
    token: str,
    account_id: str,
    amount: Decimal | int | str,
    currency: str = "RUB",
    description: str,
    email: str | None = None,
    require_confirmation: bool = False,
    start_date: datetime,
    interval: str,
    period: int,
    max_periods: int | None = None,
    customer_receipt: Mapping[str, Any] | None = None,
    culture_name: str | None = None,
    request_id: str | None = None,
) -> Call[Subscription]:
    """Create a recurring plan (``/subscriptions/create``); ``interval`` is ``Day``,
    ``Week`` or ``Month`` (:class:`~checkout_kit.models.Interval`)."""
    body = _compact({
        "Token": _text(token, "token"),
        "AccountId": _text(account_id, "account_id"),
        "Description": description,
        "Email": email,
        "Amount": parse_amount(amount, currency),
        "Currency": currency,
        "RequireConfirmation": bool(require_confirmation),
        "StartDate": format_api_datetime(start_date),
        "Interval": str(interval),
        "Period": _positive(period, "period"),
        "MaxPeriods": None if max_periods is None else _positive(max_periods, "max_periods"),
        "CustomerReceipt": customer_receipt,
        "CultureName": culture_name,
    })
    return Call("/subscriptions/create", body, _model(Subscription.from_api), True, request_id)


def get_subscription(id: str) -> Call[Subscription]:
    """One subscription (``/subscriptions/get``)."""
    body = {"Id": _text(id, "id")}
    return Call("/subscriptions/get", body, _model(Subscription.from_api), False)


def find_subscriptions(account_id: str) -> Call[list[Subscription]]:
    """Every subscription of a payer (``/subscriptions/find``)."""
    body = {"accountId": _text(account_id, "account_id")}
    return Call("/subscriptions/find", body, _models(Subscription.from_api), False)


def update_subscription(
    id: str, *, request_id: str | None = None, **changes: Any
) -> Call[Subscription]:
    """Change a subscription (``/subscriptions/update``). Keywords: ``description``,
    ``amount``, ``currency``, ``require_confirmation``, ``start_date``, ``interval``,
    ``period``, ``max_periods``, ``customer_receipt``, ``culture_name``. Updating a
    finished or cancelled subscription reactivates it (gateway rule)."""
    unknown = sorted(set(changes) - set(SUBSCRIPTION_FIELDS))
    if unknown:
        raise TypeError(f"update_subscription() got unknown fields: {', '.join(unknown)}")
    body: dict[str, Any] = {"Id": _text(id, "id")}
    for key, value in changes.items():
        if value is None:
            continue
        if key == "amount":
            value = parse_amount(value, changes.get("currency") or "RUB")
        elif key == "start_date":
            value = format_api_datetime(value)
        elif key in ("period", "max_periods"):
            value = _positive(value, key)
        body[SUBSCRIPTION_FIELDS[key]] = value
    return Call("/subscriptions/update", body, _model(Subscription.from_api), True, request_id)


def cancel_subscription(id: str, *, request_id: str | None = None) -> Call[None]:
    """Cancel a subscription (``/subscriptions/cancel``)."""
    return Call("/subscriptions/cancel", {"Id": _text(id, "id")}, _no_result, True, request_id)


def create_order(
    amount: Decimal | int | str,
    *,
    currency: str = "RUB",
    description: str,
    email: str | None = None,
    require_confirmation: bool | None = None,
    send_email: bool | None = None,
    invoice_id: str | None = None,
    account_id: str | None = None,
    offer_uri: str | None = None,
    phone: str | None = None,
    send_sms: bool | None = None,
    send_viber: bool | None = None,
    culture_name: str | None = None,
    subscription_behavior: str | None = None,
    success_redirect_url: str | None = None,
    fail_redirect_url: str | None = None,
    json_data: Any = None,
    request_id: str | None = None,
) -> Call[Order]:
    """Create an invoice with a payment link (``/orders/create``)."""
    body = _compact({
        "Amount": parse_amount(amount, currency),
        "Currency": currency,
        "Description": description,
        "Email": email,
        "RequireConfirmation": require_confirmation,
        "SendEmail": send_email,
        "InvoiceId": invoice_id,
        "AccountId": account_id,
        "OfferUri": offer_uri,
        "Phone": phone,
        "SendSms": send_sms,
        "SendViber": send_viber,
        "CultureName": culture_name,
        "SubscriptionBehavior": subscription_behavior,
        "SuccessRedirectUrl": success_redirect_url,
        "FailRedirectUrl": fail_redirect_url,
        "JsonData": json_data,
    })
    return Call("/orders/create", body, _model(Order.from_api), True, request_id)


def cancel_order(id: str, *, request_id: str | None = None) -> Call[None]:
    """Cancel an unpaid invoice (``/orders/cancel``)."""
    return Call("/orders/cancel", {"Id": _text(id, "id")}, _no_result, True, request_id)


def get_notification_settings(type: str) -> Call[NotificationSettings]:
    """Settings of one notification type (``/site/notifications/{type}/get``)."""
    path = f"/site/notifications/{_notification_type(type)}/get"
    return Call(path, {}, _model(NotificationSettings.from_api), False)


def update_notification_settings(
    type: str,
    *,
    is_enabled: bool,
    address: str | None = None,
    http_method: str = "GET",
    encoding: str = "UTF8",
    format: str = "CloudPayments",
    request_id: str | None = None,
) -> Call[None]:
    """Change one notification type (``/site/notifications/{type}/update``).

    ``Check`` cannot be changed through the API (docs/gateway.md §3.5): that raises
    :class:`~checkout_kit.errors.InvalidRequestError` before anything is sent; set it
    in the merchant account."""
    name = _notification_type(type)
    if name.lower() == "check":
        raise InvalidRequestError(
            "the Check notification's settings cannot be changed through the API; "
            "set them in the merchant account", "type")
    path = f"/site/notifications/{name}/update"
    body = _compact({
        "IsEnabled": bool(is_enabled),
        "Address": address,
        "HttpMethod": http_method,
        "Encoding": encoding,
        "Format": format,
    })
    return Call(path, body, _no_result, True, request_id)


def get_public_key() -> Call[PublicKeyInfo]:
    """The cryptogram key (``GET /payments/publickey`` → ``{Pem, Version}``)."""
    return Call("/payments/publickey", None, _public_key, False, method="GET")


#: Every operation, in the order docs/client.md lists the methods.
OPERATIONS: tuple[Callable[..., Call[Any]], ...] = (
    test, charge, auth, post3ds, charge_token, auth_token, confirm, void, refund,
    get_payment, find_payment, find_operation, find_payments, list_payments, list_payments_v2,
    list_tokens,
    create_subscription, get_subscription, find_subscriptions, update_subscription,
    cancel_subscription, create_order, cancel_order, get_notification_settings,
    update_notification_settings, get_public_key,
)


# --- the client's settings and one call's attempts ------------------------------------------


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Accept no cookie: the API authenticates every call with Basic auth, and a cookie
    set by a proxy or a load balancer must not be sent back."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


def _new_request_id() -> str:
    """128 random bits as 32 hex digits: unique within the gateway's one-hour
    ``X-Request-ID`` window."""
    return secrets.token_hex(16)


def worst_case_seconds(
    attempt_seconds: float, *, max_retries: int, max_backoff: float = 30.0,
    max_retry_after: float = 60.0,
) -> float:
    """The longest a call may take: ``max_retries + 1`` attempts of ``attempt_seconds``
    each and the longest wait before each retry (``Retry-After`` up to
    ``max_retry_after``, or the capped backoff); ``math.inf`` for unlimited attempts.
    The defaults are the clients' (a shop's settings check it before opening one)."""
    if not math.isfinite(attempt_seconds):
        return math.inf
    wait = max(max_retry_after, max_backoff)
    return attempt_seconds * (max_retries + 1) + wait * max_retries


class _UntilDeadline(dict[str, Any]):
    """A request's ``timeout`` extension whose every phase is cut to what is left
    before the attempt's deadline: httpcore looks a phase up (``get``) as it starts
    each operation, so a slow connect, write or read cannot take the attempt past it."""

    def __init__(self, phases: Mapping[str, Any], deadline: float) -> None:
        super().__init__(phases)
        self.phases = dict(phases)
        self.deadline = deadline

    def get(self, key: str, default: Any = None) -> Any:
        phase = self.phases.get(key, default)
        if not math.isfinite(self.deadline):
            return phase  # an http_client with an unlimited Timeout: nothing to cut
        # Never 0, which a socket takes as "do not block" rather than "time is up".
        left = max(self.deadline - time.monotonic(), 0.001)
        return left if phase is None else min(float(phase), left)

    def __getitem__(self, key: str) -> Any:
        return self.get(key)


def past_deadline(request: httpx.Request, deadline: float) -> None:
    """Raise ``httpx.ReadTimeout`` when the attempt's deadline has passed: the same
    path as any timeout after sending (retried; an unknown outcome for a mutating
    call)."""
    if time.monotonic() > deadline:
        raise httpx.ReadTimeout("the attempt ran past its deadline", request=request)


def read_within(chunks: Iterable[bytes], request: httpx.Request, deadline: float) -> bytes:
    """A streamed answer's body, read until ``deadline`` at the latest."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        past_deadline(request, deadline)
    return bytes(body)


class ClientCore:
    """A client's settings, shared by the sync and the async shell: how to build the
    ``httpx`` client, the retry policy and the request-id factory.

    The arguments are those of :class:`~checkout_kit.client.CloudPaymentsClient`, less
    ``transport`` and ``sleep``, which belong to a shell.
    """

    def __init__(
        self,
        public_id: str,
        api_secret: str,
        *,
        base_url: str,
        timeout: float,
        max_retries: int,
        backoff: float,
        max_backoff: float,
        max_retry_after: float,
        random: Callable[[], float],
        request_id_factory: Callable[[], str] | None,
    ) -> None:
        if not isinstance(public_id, str) or not public_id:
            raise InvalidRequestError("public_id is required", "public_id")
        if not isinstance(api_secret, str) or not api_secret:
            raise InvalidRequestError("api_secret is required", "api_secret")
        if min(max_retries, backoff, max_backoff, max_retry_after) < 0 or not (
                0 < timeout < math.inf):
            raise InvalidRequestError(
                "max_retries, backoff, max_backoff and max_retry_after must be >= 0, "
                "timeout > 0 and finite")
        self.public_id = public_id
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.timeout = timeout
        #: The most one attempt may take, in seconds (:meth:`use_http_client`).
        self.attempt_seconds = float(timeout)
        self.random = random
        self.new_request_id = request_id_factory or _new_request_id
        credentials = base64.b64encode(f"{public_id}:{api_secret}".encode()).decode("ascii")
        #: Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient``.
        self.http_options: dict[str, Any] = {
            "base_url": self.base_url,
            "timeout": httpx.Timeout(timeout),
            # Basic credentials never change: one client-wide header.
            "headers": {"Accept": "application/json", "User-Agent": "checkout_kit",
                        "Authorization": "Basic " + credentials},
            "cookies": http.cookiejar.CookieJar(policy=_NoCookies()),
            "follow_redirects": False,
        }

    def __repr__(self) -> str:
        return f"public_id={self.public_id!r}, base_url={self.base_url!r}"

    def use_http_client(self, http_client: httpx.Client | httpx.AsyncClient | None) -> None:
        """Take the limit of one attempt from the ``httpx`` client that sends it.

        Our own client's attempt is limited to ``timeout`` in all (:meth:`limit`). A
        client given to us keeps its own ``Timeout``; its phases (pool, connect, write,
        read) together are the attempt's limit, and with any phase unlimited (``None``)
        so is the attempt (:attr:`worst_case_seconds` is then infinite)."""
        if http_client is None:
            self.attempt_seconds = self.timeout
            return
        t = http_client.timeout
        phases = (t.pool, t.connect, t.write, t.read)
        self.attempt_seconds = math.inf if any(p is None for p in phases) else float(
            sum(p for p in phases if p is not None))

    @property
    def worst_case_seconds(self) -> float:
        """How long one call may take before it gives up: every attempt running to its
        limit (:meth:`use_http_client`), and the longest wait before each retry (a
        ``Retry-After`` up to ``max_retry_after``, or the capped backoff). Infinite when
        an attempt has no limit."""
        return worst_case_seconds(self.attempt_seconds, max_retries=self.max_retries,
                                  max_backoff=self.max_backoff,
                                  max_retry_after=self.max_retry_after)

    def limit(self, request: httpx.Request) -> float:
        """Start an attempt of ``request``: return its deadline (``time.monotonic``).

        ``httpx.Timeout`` limits each phase on its own (waiting for the pool, connecting,
        every write, every read), so one attempt could take several times the timeout,
        and an answer that drips in never ends. Every phase httpx's transport starts now
        waits at most for what is left before the deadline (the transport reads the
        request's ``timeout`` extension at each operation), and the shell stops reading
        the body once the deadline has passed (:func:`read_within`)."""
        deadline = time.monotonic() + self.attempt_seconds
        base = request.extensions.get("timeout")
        if isinstance(base, _UntilDeadline):
            base = base.phases
        request.extensions["timeout"] = _UntilDeadline(
            base if isinstance(base, Mapping) else {}, deadline)
        return deadline

    def start(self, call: Call[_T]) -> Attempts[_T]:
        """Begin a call: its key (a mutating call always has one) and its body, both
        checked before anything is sent."""
        request_id = None
        if call.mutating:
            request_id = _request_id(
                self.new_request_id() if call.request_id is None else call.request_id
            )
        ctx = Context(call.method, call.path, call.mutating, request_id)
        return Attempts(self, call, ctx)

    def delay(self, attempt: int) -> float:
        """The backoff before retry ``attempt`` (from 0), with its jitter."""
        base = min(self.max_backoff, self.backoff * (2**attempt))
        return float(base * (0.5 + 0.5 * self.random()))

    def request_options(self, attempts: Attempts[Any], *, own_client: bool) -> dict[str, Any]:
        """``build_request``'s arguments for ``attempts``. A client the shell made has
        the base URL and the headers already; one the caller gave (``http_client``) is
        theirs and left as it is, so each request carries the whole URL and our headers
        (``Authorization`` included)."""
        if own_client:
            return {"method": attempts.method, "url": attempts.path,
                    "content": attempts.content, "headers": attempts.headers}
        return {"method": attempts.method, "url": self.base_url + attempts.path,
                "content": attempts.content,
                "headers": {**self.http_options["headers"], **attempts.headers}}

    @staticmethod
    def check_http_client(http_client: object, transport: object) -> bool:
        """Whether the shell makes its own ``httpx`` client: not when ``http_client`` is
        given, which then excludes ``transport`` (that belongs in the given client)."""
        if http_client is not None and transport is not None:
            raise InvalidRequestError(
                "pass transport or http_client, not both (set the transport on the "
                "http_client)", "transport")
        return http_client is None


class Attempts(Generic[_T]):
    """The attempts of one call: the request to send, and after each attempt what to do.

    A shell sends :attr:`method` :attr:`path` with :attr:`headers` and :attr:`content`,
    then hands the response to :meth:`answered` or the transport error to
    :meth:`failed`; each returns :class:`Retry` (sleep, then send the same request
    again) or :class:`Done`, or raises the call's final error.
    """

    def __init__(self, core: ClientCore, call: Call[_T], ctx: Context) -> None:
        self._core = core
        self._call = call
        self.ctx = ctx
        self.method = call.method
        self.path = call.path
        self.content: bytes | None = None
        self.headers: dict[str, str] = {}
        if call.body is not None:
            self.content = _encode(call.body)
            self.headers["Content-Type"] = "application/json; charset=utf-8"
        if ctx.request_id is not None:
            self.headers["X-Request-ID"] = ctx.request_id
        self._attempt = 0
        self._maybe_sent = False  # some attempt may have reached the gateway
        self._failure: GatewayError | None = None

    def answered(self, response: httpx.Response, content: bytes | None = None) -> Retry | Done[_T]:
        """An answer came back: its body read (``response.content``), or ``content``
        when the shell read a streamed body itself (:func:`read_within`)."""
        ctx, status = self.ctx, response.status_code
        if content is None:
            content = response.content
        if status == 401:
            self._refused(AuthenticationError(
                f"{ctx.endpoint}: HTTP 401, the Public ID / API secret pair was refused",
                **ctx.kw(401),
            ))
        if status < 500 and status != 429:
            return Done(self._read(status, content))
        retry_after = _retry_after(response.headers.get("Retry-After"))
        if status == 429:
            self._failure = RateLimitError(
                f"{ctx.endpoint}: HTTP 429, too many concurrent requests",
                retry_after=retry_after, **ctx.kw(429),
            )
        else:
            self._maybe_sent = True
            self._failure = ServerError(f"{ctx.endpoint}: HTTP {status}", **ctx.kw(status))
        if retry_after is not None and retry_after > self._core.max_retry_after:
            self._attempt += 1
            self._give_up()  # the gateway asks for longer than we may block: stop now
        return self._next(retry_after)

    def failed(self, exc: httpx.RequestError) -> Retry:
        """Sending or reading failed with a transport error."""
        ctx = self.ctx
        if isinstance(exc, _NEVER_SENT):
            raise APIConnectionError(
                f"{ctx.endpoint}: request not sent: {exc}", **ctx.kw()
            ) from exc
        if isinstance(exc, _NOT_SENT):
            failure = APIConnectionError(
                f"{ctx.endpoint}: could not connect: {type(exc).__name__}", **ctx.kw()
            )
        else:
            self._maybe_sent = True
            failure = APIConnectionError(
                f"{ctx.endpoint}: connection failed after sending: {type(exc).__name__}",
                **ctx.kw(),
            )
        failure.__cause__ = exc
        self._failure = failure
        return self._next(None)

    def _next(self, delay: float | None) -> Retry:
        attempt = self._attempt
        self._attempt += 1
        if self._attempt > self._core.max_retries:
            self._give_up()
        if delay is None:
            delay = self._core.delay(attempt)
        log.info(
            "%s: %s; retry %d/%d in %.2fs (request id %s)", self.ctx.endpoint,
            self._failure, self._attempt, self._core.max_retries, delay, self.ctx.request_id,
        )
        return Retry(delay)

    def _refused(self, refusal: GatewayError) -> NoReturn:
        """This attempt was refused without the gateway's envelope (a 401, a proxy's
        4xx). That says nothing of an earlier attempt that may have reached the gateway:
        only the envelope is definitive, as the gateway replays the first answer to the
        same X-Request-ID. So after such an attempt the outcome stays unknown."""
        self._failure = refusal
        self._attempt += 1
        self._give_up()

    def _give_up(self) -> NoReturn:
        failure, ctx = self._failure, self.ctx
        assert failure is not None
        if ctx.mutating and self._maybe_sent:
            raise UnknownOutcomeError(
                f"{ctx.endpoint}: no definite answer after {self._attempt} attempt(s) "
                f"(last: {failure.message}); the operation may or may not have happened: "
                f"reconcile, or repeat with request_id={ctx.request_id!r}",
                **ctx.kw(failure.status_code),
            ) from failure
        raise failure

    def _read(self, status: int, content: bytes) -> _T:
        """Decode and interpret a non-5xx answer. One that cannot be read is *unknown*
        for a mutating call (it did reach the gateway) and a server fault for a read."""
        ctx = self.ctx
        try:
            data = jsoncodec.loads(content)
        except JSONCodecError:
            data = None
        if not isinstance(data, dict):
            if 400 <= status < 500:
                # A 4xx without our envelope (a proxy, a wrong path): refused, not processed.
                self._refused(RequestRejectedError(f"{ctx.endpoint}: HTTP {status}",
                                                   **ctx.kw(status)))
            self._malformed(f"HTTP {status}, not a JSON object", status, None)
        if 400 <= status < 500 and not isinstance(data.get("Success"), bool):
            self._refused(RequestRejectedError(f"{ctx.endpoint}: HTTP {status}",
                                               **ctx.kw(status)))
        if not 200 <= status < 500:
            self._malformed(f"unexpected HTTP {status}", status, None)
        try:
            return self._call.read(data, status, ctx)
        except GatewayError:
            raise
        except Exception as exc:
            # Whatever reading the answer raises (ValueError, OSError from a date beyond
            # the platform's, RecursionError...), the call did reach the gateway.
            self._malformed(str(exc), status, exc)

    def _malformed(self, detail: str, status: int, cause: BaseException | None) -> NoReturn:
        ctx = self.ctx
        if ctx.mutating:
            raise UnknownOutcomeError(
                f"{ctx.endpoint}: the gateway's answer could not be understood ({detail}); "
                f"the outcome is unknown: reconcile, or repeat with request_id={ctx.request_id!r}",
                **ctx.kw(status),
            ) from cause
        raise ServerError(
            f"{ctx.endpoint}: malformed answer ({detail})", **ctx.kw(status)
        ) from cause


def method_like(method: _F, operation: Callable[..., Call[Any]], owner: str) -> _F:
    """``method`` (a shell's wrapper of ``operation``) named, documented and signed as
    ``operation`` with ``self`` first and the call's result as its return type, so that
    ``help()`` and ``inspect.signature`` show the real method."""
    signature = inspect.signature(operation)
    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    returns = signature.return_annotation
    if isinstance(returns, str) and returns.startswith("Call[") and returns.endswith("]"):
        returns = returns[len("Call["):-1]
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self_parameter, *signature.parameters.values()], return_annotation=returns
    )
    method.__name__ = operation.__name__
    method.__qualname__ = f"{owner}.{operation.__name__}"
    method.__doc__ = operation.__doc__
    return method
