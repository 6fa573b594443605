"""``CloudPaymentsClient``: the CloudPayments HTTP API over httpx (docs/gateway.md §3, §4, §1.7).

Results are typed values from :mod:`checkout_kit.models`; failures are the
:class:`~checkout_kit.errors.GatewayError` family. How each answer is surfaced:

=========================================  ===============================================
gateway answer                             what the client does
=========================================  ===============================================
``Success: true`` + transaction            returns ``Transaction``
``Success: false`` + ``AcsUrl``/``PaReq``  returns ``ThreeDSChallenge`` (``charge``/``auth``
                                           only; it is not an error)
transaction with ``Status: Declined``      raises ``PaymentDeclined`` with ``reason_code``,
(or ``Success: false``, ``ReasonCode≠0``)  ``reason``, ``cardholder_message``, ``transaction``
``Success: false`` + ``Message``           raises ``RequestRejectedError``
HTTP 401                                   raises ``AuthenticationError``
HTTP 429                                   retried (honouring ``Retry-After``), then
                                           ``RateLimitError``
HTTP 5xx, connection failures              retried with backoff and jitter, then
                                           ``ServerError`` / ``APIConnectionError``
...on a mutating call that may have        ``UnknownOutcomeError``
arrived, or an answer we cannot read
=========================================  ===============================================

Declines are exceptions, one way for every payment method (cryptogram, token, 3-D Secure
completion), so that code after ``charge(...)`` only ever sees money that moved. Read-only
calls (``get_payment``, ``find_payment``, lists) return declined transactions as data.

Idempotency: every mutating call sends ``X-Request-ID`` (the caller's ``request_id`` or a
generated one), the same on every retry; the gateway answers a repeated id with the stored
result for one hour. A mutating call is never sent without it. When such a call may have
reached the gateway and no definite answer came back, the client raises
:class:`~checkout_kit.errors.UnknownOutcomeError` instead of guessing: reconcile with
:meth:`CloudPaymentsClient.find_payment` or repeat the call with ``exc.request_id``.
"""

from __future__ import annotations

import base64
import email.utils
import http.cookiejar
import json
import logging
import random as _random
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from json.encoder import encode_basestring
from types import TracebackType
from typing import Any, NamedTuple, NoReturn, TypeVar

import httpx

from .errors import (
    APIConnectionError,
    AuthenticationError,
    GatewayError,
    InvalidRequestError,
    MoneyError,
    PaymentDeclined,
    RateLimitError,
    RequestRejectedError,
    ServerError,
    UnknownOutcomeError,
)
from .models import (
    CardToken,
    NotificationSettings,
    Order,
    PublicKeyInfo,
    Refund,
    Subscription,
    ThreeDSChallenge,
    Transaction,
    as_reason_code,
    is_three_ds_model,
)
from .money import parse_amount
from .reasons import reason_for

__all__ = [
    "DEFAULT_BASE_URL",
    "SUBSCRIPTION_FIELDS",
    "CloudPaymentsClient",
    "encode_json",
    "format_api_datetime",
]

DEFAULT_BASE_URL = "https://api.cloudpayments.ru"

log = logging.getLogger("checkout_kit.client")

_T = TypeVar("_T")

# Errors raised before a single byte of the request can have left this process: safe to
# retry even without a key, and a final one means "not sent".
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)
# Misconfiguration (bad URL scheme, a request httpx itself refuses): not sent, not retried.
_NEVER_SENT = (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL)

_DECODER = json.JSONDecoder(parse_float=Decimal)

_REQUEST_ID = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?")
_NOTIFICATION_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,31}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

#: snake_case keyword of :meth:`CloudPaymentsClient.update_subscription` -> API field.
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


# --- JSON with exact amounts ------------------------------------------------------------


# A JSON string literal, as json.dumps(text, ensure_ascii=False) writes it (the function
# json's encoder itself calls), without building an encoder per string.
_quote = encode_basestring


def encode_json(value: object) -> str:
    """JSON text in which every :class:`~decimal.Decimal` is written digit for digit.

    ``Decimal("0.10")`` becomes ``0.10``; nothing passes through a float. Floats are
    refused with :class:`~checkout_kit.errors.MoneyError` (money must not be a float, and
    we cannot tell money from other numbers in free-form data). Aware datetimes become
    ISO text with their offset; naive ones are refused.
    """
    if type(value) is dict:  # a request body: straight to the object branch below
        return _encode_object(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _quote(str(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidRequestError("cannot send a non-finite number")
        return format(value, "f")
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        raise MoneyError("floats are never sent to the gateway; use Decimal or int")
    if isinstance(value, datetime):
        return json.dumps(_aware(value).isoformat())
    if isinstance(value, date):
        return json.dumps(value.isoformat())
    if isinstance(value, Mapping):
        return _encode_object(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode_json(item) for item in value) + "]"
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def _encode_object(value: Mapping[Any, Any]) -> str:
    items = []
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"JSON object keys must be str, not {type(key).__name__}")
        # most values are plain text: quoted here rather than by a call per value
        text = _quote(item) if type(item) is str else encode_json(item)
        items.append(_quote(key) + ":" + text)
    return "{" + ",".join(items) + "}"


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


# --- the HTTP layer ---------------------------------------------------------------------


class _NoCookies(http.cookiejar.CookieJar):
    """A jar that keeps nothing. The API authenticates every call with Basic auth: a
    cookie set by a proxy or a load balancer must not be sent back, and reading one
    costs ``http.cookiejar`` tens of microseconds per answer."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


class _ViaClient(httpx.BaseTransport):
    """The default transport: an ``httpx.Client`` sends, with its connection pool, TLS
    settings and the proxies the environment names (httpx applies those only when it
    is given no transport)."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._client.send(request)


def _read(response: httpx.Response) -> bytes:
    """The body of an answer, read to the end (and the stream closed).

    ``Response.read`` passes it through a content decoder, a chunker and two generators
    (9 µs, against the RSA decryption a payment costs: benchmarks/bench_gateway.py); a
    body sent without ``Content-Encoding`` is the stream's own bytes, joined here.
    Anything else (encoded, already read, an async stream) is left to httpx."""
    stream = response.stream
    if response.is_stream_consumed or response.is_closed or not isinstance(
        stream, httpx.SyncByteStream
    ):
        return response.read()
    for key, _ in response.headers.raw:
        if key.lower() == b"content-encoding":
            return response.read()
    content = b"".join(stream)
    response.close()
    return content


def _new_request_id() -> str:
    """128 random bits as 32 hex digits: unique enough for the gateway's one-hour
    ``X-Request-ID`` window, and cheaper than a ``uuid.UUID`` object."""
    return secrets.token_hex(16)


def _basic_auth(public_id: str, api_secret: str) -> str:
    return "Basic " + base64.b64encode(f"{public_id}:{api_secret}".encode()).decode("ascii")


# --- the request context ---------------------------------------------------------------


class _Call(NamedTuple):  # a tuple: made on every call, at a fraction of a dataclass's cost
    """What the error paths need to know about one API call."""

    method: str
    path: str
    mutating: bool
    request_id: str | None

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"

    def kw(self, status_code: int | None = None) -> dict[str, Any]:
        return {"status_code": status_code, "request_id": self.request_id, "endpoint": self.path}


class _Envelope(NamedTuple):
    success: bool
    message: str | None
    model: Any
    status_code: int
    body: Mapping[str, Any]


class CloudPaymentsClient:
    """A client for the CloudPayments API (Basic auth ``public_id:api_secret``, JSON bodies).

    ``transport`` is the seam for tests: ``httpx.MockTransport(handler)`` or
    ``httpx.WSGITransport(app=create_sandbox_app(...))``. ``max_retries`` is the number of
    extra attempts after the first on connection failures, 429 and 5xx; the delay before
    retry *n* (from 0) is ``backoff * 2**n`` capped at ``max_backoff``, multiplied by a
    jitter factor in ``[0.5, 1)`` drawn from ``random`` (``Retry-After`` wins when sent,
    unless it exceeds ``max_retry_after``, in which case the call stops retrying).

    Declines raise :class:`~checkout_kit.errors.PaymentDeclined`; 3-D Secure is returned as
    :class:`~checkout_kit.models.ThreeDSChallenge`; see the module docstring for the rest.
    Usable as a context manager; :meth:`close` releases the connection pool.
    """

    def __init__(
        self,
        public_id: str,
        api_secret: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        request_id_factory: Callable[[], str] | None = None,
    ) -> None:
        if not isinstance(public_id, str) or not public_id:
            raise InvalidRequestError("public_id is required", "public_id")
        if not isinstance(api_secret, str) or not api_secret:
            raise InvalidRequestError("api_secret is required", "api_secret")
        if max_retries < 0 or backoff < 0 or timeout <= 0:
            raise InvalidRequestError("max_retries and backoff must be >= 0, timeout > 0")
        self.public_id = public_id
        self.base_url = base_url.rstrip("/")
        self._max_retries = max_retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._random = random
        self._new_request_id = request_id_factory or _new_request_id
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout),
            # Basic credentials never change: a static header, not an auth flow per call.
            headers={"Accept": "application/json", "User-Agent": "checkout_kit",
                     "Authorization": _basic_auth(public_id, api_secret)},
            cookies=_NoCookies(),
            follow_redirects=False,
        )
        # Requests are built here whole (the client's headers, Host and Content-Length),
        # so that httpx has nothing left to merge or work out per call, and a given
        # transport is called directly, as httpx.Client would call it, without the
        # client's per-request machinery (auth flows, cookies, redirects, event hooks),
        # none of which this API needs: each call is measured against an RSA decryption
        # (benchmarks/bench_gateway.py).
        self._headers = self._http.headers.raw
        self._transport = transport if transport is not None else _ViaClient(self._http)
        self._timeout = self._http.timeout.as_dict()
        self._urls: dict[str, tuple[httpx.URL, bytes]] = {}

    def __repr__(self) -> str:
        return f"CloudPaymentsClient(public_id={self.public_id!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        """Close the underlying connection pool (and the transport given to us)."""
        self._http.close()

    def __enter__(self) -> CloudPaymentsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- payments -------------------------------------------------------------------

    def test(self) -> str:
        """``POST /test``: check connectivity and credentials; returns the gateway's
        ``Message`` (a request guid)."""
        ctx = _Call("POST", "/test", mutating=False, request_id=None)
        return self._run(ctx, {}, _ok_message)

    def charge(
        self,
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
    ) -> Transaction | ThreeDSChallenge:
        """One-stage payment by cryptogram (``/payments/cards/charge``).

        Returns the ``Completed`` transaction, or a :class:`ThreeDSChallenge` when the
        card needs 3-D Secure (finish with :meth:`post3ds`). Raises
        :class:`~checkout_kit.errors.PaymentDeclined` on a decline.
        """
        return self._card_payment(
            "/payments/cards/charge", amount, currency, ip_address, cryptogram, name,
            invoice_id, description, account_id, email, payer, json_data, save_card,
            culture_name, payment_url, request_id,
        )

    def auth(
        self,
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
    ) -> Transaction | ThreeDSChallenge:
        """Two-stage payment by cryptogram (``/payments/cards/auth``): the money is held
        (``Authorized``) until :meth:`confirm` or :meth:`void`. Same results as
        :meth:`charge`."""
        return self._card_payment(
            "/payments/cards/auth", amount, currency, ip_address, cryptogram, name,
            invoice_id, description, account_id, email, payer, json_data, save_card,
            culture_name, payment_url, request_id,
        )

    def post3ds(
        self, transaction_id: int | str, pa_res: str, *, request_id: str | None = None
    ) -> Transaction:
        """Finish 3-D Secure (``/payments/cards/post3ds``) with ``MD`` and ``PaRes`` from
        the bank's POST to your ``TermUrl``. Raises ``PaymentDeclined`` (5206 when the
        authentication failed)."""
        if not isinstance(pa_res, str) or not pa_res:
            raise InvalidRequestError("pa_res is required", "pa_res")
        body = {"TransactionId": _transaction_id(transaction_id), "PaRes": pa_res}
        result = self._payment_call("/payments/cards/post3ds", body, request_id, allow_3ds=False)
        assert isinstance(result, Transaction)  # allow_3ds=False never yields a challenge
        return result

    def charge_token(
        self,
        amount: Decimal | int | str,
        *,
        currency: str = "RUB",
        account_id: str,
        token: str,
        tr_initiator_code: int = 1,
        payment_scheduled: bool = False,
        invoice_id: str | None = None,
        description: str | None = None,
        ip_address: str | None = None,
        email: str | None = None,
        payer: Mapping[str, Any] | None = None,
        json_data: Any = None,
        request_id: str | None = None,
    ) -> Transaction:
        """One-stage payment by saved-card token (``/payments/tokens/charge``).

        ``tr_initiator_code`` is 1 when the cardholder initiates, 0 for a
        merchant-initiated charge (then set ``payment_scheduled`` for scheduled ones).
        """
        return self._token_payment(
            "/payments/tokens/charge", amount, currency, account_id, token, tr_initiator_code,
            payment_scheduled, invoice_id, description, ip_address, email, payer, json_data,
            request_id,
        )

    def auth_token(
        self,
        amount: Decimal | int | str,
        *,
        currency: str = "RUB",
        account_id: str,
        token: str,
        tr_initiator_code: int = 1,
        payment_scheduled: bool = False,
        invoice_id: str | None = None,
        description: str | None = None,
        ip_address: str | None = None,
        email: str | None = None,
        payer: Mapping[str, Any] | None = None,
        json_data: Any = None,
        request_id: str | None = None,
    ) -> Transaction:
        """Two-stage payment by token (``/payments/tokens/auth``); see :meth:`charge_token`."""
        return self._token_payment(
            "/payments/tokens/auth", amount, currency, account_id, token, tr_initiator_code,
            payment_scheduled, invoice_id, description, ip_address, email, payer, json_data,
            request_id,
        )

    def confirm(
        self,
        transaction_id: int | str,
        amount: Decimal | int | str,
        *,
        json_data: Any = None,
        request_id: str | None = None,
    ) -> None:
        """Capture an ``Authorized`` payment, fully or partly (``/payments/confirm``)."""
        body = _compact({
            "TransactionId": _transaction_id(transaction_id),
            "Amount": parse_amount(amount),
            "JsonData": json_data,
        })
        self._mutate("/payments/confirm", body, request_id, _no_result)

    def void(self, transaction_id: int | str, *, request_id: str | None = None) -> None:
        """Cancel an ``Authorized`` payment (``/payments/void``)."""
        body = {"TransactionId": _transaction_id(transaction_id)}
        self._mutate("/payments/void", body, request_id, _no_result)

    def refund(
        self,
        transaction_id: int | str,
        amount: Decimal | int | str,
        *,
        json_data: Any = None,
        request_id: str | None = None,
    ) -> Refund:
        """Refund a ``Completed`` payment, fully or partly (``/payments/refund``); the
        refund has its own transaction id."""
        body = _compact({
            "TransactionId": _transaction_id(transaction_id),
            "Amount": parse_amount(amount),
            "JsonData": json_data,
        })
        return self._mutate("/payments/refund", body, request_id, _model(Refund.from_api))

    # --- lookups --------------------------------------------------------------------

    def get_payment(self, transaction_id: int | str) -> Transaction:
        """The transaction with this id (``/payments/get``), declined ones included."""
        body = {"TransactionId": _transaction_id(transaction_id)}
        return self._lookup("/payments/get", body, _model(Transaction.from_api))

    def find_payment(self, invoice_id: str) -> Transaction:
        """The latest payment for ``invoice_id`` (``/payments/find``). Raises
        :class:`~checkout_kit.errors.RequestRejectedError` (``Message`` ``"Not found"``)
        when there is none."""
        return self._lookup(
            "/payments/find", {"InvoiceId": _text(invoice_id, "invoice_id")},
            _model(Transaction.from_api),
        )

    def find_payments(self, invoice_id: str) -> list[Transaction]:
        """Every operation for ``invoice_id``, refunds and payouts included
        (``/v2/payments/find``)."""
        return self._lookup(
            "/v2/payments/find", {"InvoiceId": _text(invoice_id, "invoice_id")},
            _models(Transaction.from_api),
        )

    def list_payments(self, date: date | str, *, timezone: str | None = None) -> list[Transaction]:
        """The operations of one day (``/payments/list``)."""
        body = _compact({"Date": _day(date), "TimeZone": timezone})
        return self._lookup("/payments/list", body, _models(Transaction.from_api))

    def list_payments_v2(
        self,
        created_gte: datetime,
        created_lte: datetime,
        *,
        page: int = 1,
        statuses: Iterable[str] | None = None,
        timezone: str | None = None,
    ) -> list[Transaction]:
        """One page (100 operations, oldest first) of a period (``/v2/payments/list``)."""
        body = _compact({
            "CreatedDateGte": _period_bound(created_gte),
            "CreatedDateLte": _period_bound(created_lte),
            "PageNumber": _page(page),
            "TimeZone": timezone,
            "Statuses": None if statuses is None else [str(s) for s in statuses],
        })
        return self._lookup("/v2/payments/list", body, _models(Transaction.from_api))

    def list_tokens(self, page: int = 1) -> list[CardToken]:
        """One page of saved card tokens (``/payments/tokens/list``)."""
        return self._lookup(
            "/payments/tokens/list", {"PageNumber": _page(page)}, _models(CardToken.from_api)
        )

    # --- subscriptions --------------------------------------------------------------

    def create_subscription(
        self,
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
    ) -> Subscription:
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
        return self._mutate(
            "/subscriptions/create", body, request_id, _model(Subscription.from_api)
        )

    def get_subscription(self, id: str) -> Subscription:
        """One subscription (``/subscriptions/get``)."""
        return self._lookup(
            "/subscriptions/get", {"Id": _text(id, "id")}, _model(Subscription.from_api)
        )

    def find_subscriptions(self, account_id: str) -> list[Subscription]:
        """Every subscription of a payer (``/subscriptions/find``)."""
        return self._lookup(
            "/subscriptions/find", {"accountId": _text(account_id, "account_id")},
            _models(Subscription.from_api),
        )

    def update_subscription(
        self, id: str, *, request_id: str | None = None, **changes: Any
    ) -> Subscription:
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
        return self._mutate(
            "/subscriptions/update", body, request_id, _model(Subscription.from_api)
        )

    def cancel_subscription(self, id: str, *, request_id: str | None = None) -> None:
        """Cancel a subscription (``/subscriptions/cancel``)."""
        self._mutate("/subscriptions/cancel", {"Id": _text(id, "id")}, request_id, _no_result)

    # --- orders ---------------------------------------------------------------------

    def create_order(
        self,
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
    ) -> Order:
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
        return self._mutate("/orders/create", body, request_id, _model(Order.from_api))

    def cancel_order(self, id: str, *, request_id: str | None = None) -> None:
        """Cancel an unpaid invoice (``/orders/cancel``)."""
        self._mutate("/orders/cancel", {"Id": _text(id, "id")}, request_id, _no_result)

    # --- notification settings ------------------------------------------------------

    def get_notification_settings(self, type: str) -> NotificationSettings:
        """Settings of one notification type (``/site/notifications/{type}/get``)."""
        path = f"/site/notifications/{_notification_type(type)}/get"
        return self._lookup(path, {}, _model(NotificationSettings.from_api))

    def update_notification_settings(
        self,
        type: str,
        *,
        is_enabled: bool,
        address: str | None = None,
        http_method: str = "GET",
        encoding: str = "UTF8",
        format: str = "CloudPayments",
        request_id: str | None = None,
    ) -> None:
        """Change one notification type (``/site/notifications/{type}/update``)."""
        path = f"/site/notifications/{_notification_type(type)}/update"
        body = _compact({
            "IsEnabled": bool(is_enabled),
            "Address": address,
            "HttpMethod": http_method,
            "Encoding": encoding,
            "Format": format,
        })
        self._mutate(path, body, request_id, _no_result)

    def get_public_key(self) -> PublicKeyInfo:
        """The cryptogram key (``GET /payments/publickey`` → ``{Pem, Version}``)."""
        ctx = _Call("GET", "/payments/publickey", mutating=False, request_id=None)
        body, status = self._exchange(ctx, None)
        # The endpoint answers bare {Pem, Version} (docs/gateway.md §1.7); accept an envelope too.
        model = body.get("Model") if isinstance(body.get("Model"), Mapping) else body
        try:
            return PublicKeyInfo.from_api(model)
        except Exception as exc:
            self._malformed(ctx, f"public key: {exc}", status, exc)

    # --- payment helpers ------------------------------------------------------------

    def _card_payment(
        self,
        path: str,
        amount: Decimal | int | str,
        currency: str,
        ip_address: str,
        cryptogram: str,
        name: str | None,
        invoice_id: str | None,
        description: str | None,
        account_id: str | None,
        email: str | None,
        payer: Mapping[str, Any] | None,
        json_data: Any,
        save_card: bool | None,
        culture_name: str | None,
        payment_url: str | None,
        request_id: str | None,
    ) -> Transaction | ThreeDSChallenge:
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
        return self._payment_call(path, body, request_id, allow_3ds=True)

    def _token_payment(
        self,
        path: str,
        amount: Decimal | int | str,
        currency: str,
        account_id: str,
        token: str,
        tr_initiator_code: int,
        payment_scheduled: bool,
        invoice_id: str | None,
        description: str | None,
        ip_address: str | None,
        email: str | None,
        payer: Mapping[str, Any] | None,
        json_data: Any,
        request_id: str | None,
    ) -> Transaction:
        if tr_initiator_code not in (0, 1) or isinstance(tr_initiator_code, bool):
            raise InvalidRequestError("tr_initiator_code is 0 (merchant) or 1 (cardholder)",
                                      "tr_initiator_code")
        body = _compact({
            "Amount": parse_amount(amount, currency),
            "Currency": currency,
            "AccountId": _text(account_id, "account_id"),
            "Token": _text(token, "token"),
            "TrInitiatorCode": tr_initiator_code,
            "PaymentScheduled": 1 if payment_scheduled else 0,
            "InvoiceId": invoice_id,
            "Description": description,
            "IpAddress": ip_address,
            "Email": email,
            "Payer": payer,
            "JsonData": json_data,
        })
        result = self._payment_call(path, body, request_id, allow_3ds=False)
        assert isinstance(result, Transaction)  # allow_3ds=False never yields a challenge
        return result

    def _payment_call(
        self, path: str, body: Mapping[str, Any], request_id: str | None, *, allow_3ds: bool
    ) -> Transaction | ThreeDSChallenge:
        return self._mutate(
            path, body, request_id, lambda env, ctx: _payment_result(env, ctx, allow_3ds)
        )

    # --- the request machinery ------------------------------------------------------

    def _mutate(
        self,
        path: str,
        body: Mapping[str, Any],
        request_id: str | None,
        interpret: Callable[[_Envelope, _Call], _T],
    ) -> _T:
        rid = self._new_request_id() if request_id is None else request_id
        if not isinstance(rid, str) or not _REQUEST_ID.fullmatch(rid):
            raise InvalidRequestError("request_id must be 1-255 printable ASCII characters",
                                      "request_id")
        return self._run(_Call("POST", path, mutating=True, request_id=rid), body, interpret)

    def _lookup(
        self,
        path: str,
        body: Mapping[str, Any],
        interpret: Callable[[_Envelope, _Call], _T],
    ) -> _T:
        return self._run(_Call("POST", path, mutating=False, request_id=None), body, interpret)

    def _run(
        self, ctx: _Call, body: Any, interpret: Callable[[_Envelope, _Call], _T]
    ) -> _T:
        """Exchange, then interpret; an answer that cannot be interpreted is *unknown*
        for a mutating call (it did reach the gateway) and a server fault for a read."""
        data, status = self._exchange(ctx, body)
        try:
            return interpret(_envelope(data, status), ctx)
        except GatewayError:
            raise
        except Exception as exc:
            # Whatever reading the answer raises (ValueError, OSError from a date beyond
            # the platform's, RecursionError...), the call did reach the gateway.
            self._malformed(ctx, str(exc), status, exc)

    def _malformed(
        self, ctx: _Call, detail: str, status_code: int | None, cause: BaseException | None
    ) -> NoReturn:
        if ctx.mutating:
            raise UnknownOutcomeError(
                f"{ctx.endpoint}: the gateway's answer could not be understood ({detail}); "
                f"the outcome is unknown: reconcile, or repeat with request_id={ctx.request_id!r}",
                **ctx.kw(status_code),
            ) from cause
        raise ServerError(
            f"{ctx.endpoint}: malformed answer ({detail})", **ctx.kw(status_code)
        ) from cause

    def _url(self, path: str) -> tuple[httpx.URL, bytes]:
        """The absolute URL of an API path and its ``Host`` header (a short, fixed set
        of paths: parsed once each)."""
        known = self._urls.get(path)
        if known is None:
            url = httpx.URL(self.base_url + path)
            known = self._urls[path] = (url, url.netloc)
        return known

    def _request(self, ctx: _Call, body: Any) -> httpx.Request:
        url, host = self._url(ctx.path)
        headers = [(b"Host", host), *self._headers]
        content = b""
        if body is not None:
            content = encode_json(body).encode("utf-8")
            headers.append((b"Content-Type", b"application/json; charset=utf-8"))
        if ctx.request_id is not None:
            headers.append((b"X-Request-ID", ctx.request_id.encode("ascii")))
        if body is not None:
            headers.append((b"Content-Length", str(len(content)).encode("ascii")))
        return httpx.Request(ctx.method, url, headers=headers, stream=httpx.ByteStream(content),
                             extensions={"timeout": self._timeout})

    def _send(self, request: httpx.Request) -> tuple[httpx.Response, bytes]:
        """One attempt: the answer and its whole body, or an httpx error."""
        if self._http.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        response = self._transport.handle_request(request)
        try:
            return response, _read(response)
        except BaseException:
            response.close()
            raise

    def _exchange(self, ctx: _Call, body: Any) -> tuple[dict[str, Any], int]:
        """Send with retries; return the decoded JSON object of a non-5xx answer and
        its HTTP status."""
        request = self._request(ctx, body)

        maybe_sent = False  # some attempt may have reached the gateway
        failure: GatewayError | None = None
        attempts = self._max_retries + 1
        for attempt in range(attempts):
            delay: float | None = None  # the backoff, drawn only when a retry follows
            try:
                response, content = self._send(request)
            except _NEVER_SENT as exc:
                raise APIConnectionError(
                    f"{ctx.endpoint}: request not sent: {exc}", **ctx.kw()
                ) from exc
            except _NOT_SENT as exc:
                failure = APIConnectionError(
                    f"{ctx.endpoint}: could not connect: {type(exc).__name__}", **ctx.kw()
                )
                failure.__cause__ = exc
            except httpx.RequestError as exc:
                maybe_sent = True
                failure = APIConnectionError(
                    f"{ctx.endpoint}: connection failed after sending: {type(exc).__name__}",
                    **ctx.kw(),
                )
                failure.__cause__ = exc
            else:
                status = response.status_code
                if status == 401:
                    raise AuthenticationError(
                        f"{ctx.endpoint}: HTTP 401, the Public ID / API secret pair was refused",
                        **ctx.kw(401),
                    )
                if status < 500 and status != 429:
                    return self._decode(ctx, status, content)
                retry_after = _retry_after(response.headers.get("Retry-After"))
                if status == 429:
                    failure = RateLimitError(
                        f"{ctx.endpoint}: HTTP 429, too many concurrent requests",
                        retry_after=retry_after, **ctx.kw(429),
                    )
                else:
                    maybe_sent = True
                    failure = ServerError(f"{ctx.endpoint}: HTTP {status}", **ctx.kw(status))
                if retry_after is not None:
                    if retry_after > self._max_retry_after:
                        break  # the gateway asks for longer than we may block: stop now
                    delay = retry_after
            if attempt + 1 < attempts:
                if delay is None:
                    delay = self._delay(attempt)
                log.info(
                    "%s: %s; retry %d/%d in %.2fs (request id %s)", ctx.endpoint,
                    failure, attempt + 1, self._max_retries, delay, ctx.request_id,
                )
                self._sleep(delay)
        assert failure is not None
        if ctx.mutating and maybe_sent:
            raise UnknownOutcomeError(
                f"{ctx.endpoint}: no definite answer after {attempts} attempt(s) "
                f"(last: {failure.message}); the operation may or may not have happened: "
                f"reconcile, or repeat with request_id={ctx.request_id!r}",
                **ctx.kw(failure.status_code),
            ) from failure
        raise failure

    def _delay(self, attempt: int) -> float:
        base = min(self._max_backoff, self._backoff * (2**attempt))
        return float(base * (0.5 + 0.5 * self._random()))

    def _decode(self, ctx: _Call, status: int, content: bytes) -> tuple[dict[str, Any], int]:
        try:
            # json.loads(content, parse_float=Decimal), without a decoder per call
            data = _DECODER.decode(content.decode(json.detect_encoding(content), "surrogatepass"))
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            if 400 <= status < 500:
                # A 4xx without our envelope (a proxy, a wrong path): refused, not processed.
                raise RequestRejectedError(
                    f"{ctx.endpoint}: HTTP {status}", **ctx.kw(status)
                )
            self._malformed(ctx, f"HTTP {status}, not a JSON object", status, None)
        if 400 <= status < 500 and not isinstance(data.get("Success"), bool):
            raise RequestRejectedError(f"{ctx.endpoint}: HTTP {status}", **ctx.kw(status))
        if not 200 <= status < 500:
            self._malformed(ctx, f"unexpected HTTP {status}", status, None)
        return data, status


# --- interpreting answers ------------------------------------------------------------------


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
        body=data,
    )


def _rejected(env: _Envelope, ctx: _Call) -> NoReturn:
    raise RequestRejectedError(
        env.message or "the gateway refused the request without a message",
        model=env.model, **ctx.kw(env.status_code),
    )


def _ok_message(env: _Envelope, ctx: _Call) -> str:
    if not env.success:
        _rejected(env, ctx)
    return env.message or ""


def _no_result(env: _Envelope, ctx: _Call) -> None:
    if not env.success:
        _rejected(env, ctx)


def _model(build: Callable[[Any], _T]) -> Callable[[_Envelope, _Call], _T]:
    def interpret(env: _Envelope, ctx: _Call) -> _T:
        if not env.success:
            # Reads return declined transactions as data: a transaction model is the answer.
            if not ctx.mutating and isinstance(env.model, Mapping) and env.model:
                return build(env.model)
            _rejected(env, ctx)
        return build(env.model)

    return interpret


def _models(build: Callable[[Any], _T]) -> Callable[[_Envelope, _Call], list[_T]]:
    def interpret(env: _Envelope, ctx: _Call) -> list[_T]:
        if not env.success and not env.model:
            _rejected(env, ctx)
        if env.model is None:
            return []
        if isinstance(env.model, Mapping):
            return [build(env.model)]
        if not isinstance(env.model, list):
            raise ValueError("Model is neither a list nor an object")
        return [build(item) for item in env.model]

    return interpret


def _payment_result(env: _Envelope, ctx: _Call, allow_3ds: bool) -> Transaction | ThreeDSChallenge:
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
        if tx.is_declined or (not env.success and int(tx.reason_code) != 0):
            _declined(int(tx.reason_code), tx, model, ctx, env.status_code)
        if env.success:
            return tx
        raise ValueError(f"Success is false for a transaction in status {tx.status}")
    if not env.success and env.message:
        _rejected(env, ctx)
    raise ValueError("no transaction in the answer")


def _declined(
    code: int, tx: Transaction | None, model: Mapping[str, Any], ctx: _Call, status: int
) -> NoReturn:
    row = reason_for(code)
    reason_code = tx.reason_code if tx is not None else as_reason_code(code)
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


# --- argument checks ----------------------------------------------------------------------


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
