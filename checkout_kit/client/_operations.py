"""The API operations: one function per client method, each checking its arguments
(raising before anything is sent) and describing its call (a :class:`~._call.Call`: the
path, the body, whether it moves money, how :mod:`._answers` reads the answer).

Both shells expose every function of :data:`OPERATIONS` as a method of the same name,
signature and docstring (:func:`method_like`); the client's public constants
(:data:`DEFAULT_BASE_URL`, :data:`SUBSCRIPTION_FIELDS`, :func:`format_api_datetime`)
are here too.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar, cast

from ..errors import InvalidRequestError
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
)
from ..money import parse_amount
from . import _answers as read
from ._call import Call

__all__ = [
    "DEFAULT_BASE_URL",
    "OPERATIONS",
    "SUBSCRIPTION_FIELDS",
    "format_api_datetime",
    "method_like",
]

DEFAULT_BASE_URL = "https://api.cloudpayments.ru"

_F = TypeVar("_F", bound=Callable[..., Any])
_O = TypeVar("_O", bound=Callable[..., "Call[Any]"])

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
# signature and docstring (tests/test_client_operations.py keeps the two lists equal).


def test() -> Call[str]:
    """``POST /test``: check connectivity and credentials; returns the gateway's
    ``Message`` (a request guid)."""
    return Call("/test", {}, read.ok_message, mutating=False)


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
    return Call("/payments/cards/charge", body, read.payment(allow_3ds=True), True, request_id)


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
    return Call("/payments/cards/post3ds", body, read.transaction, True, request_id)


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
    return Call("/payments/tokens/charge", body, read.transaction, True, request_id)


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
    return Call("/payments/confirm", body, read.no_result, True, request_id)


def void(transaction_id: int | str, *, request_id: str | None = None) -> Call[None]:
    """Cancel an ``Authorized`` payment (``/payments/void``)."""
    body = {"TransactionId": _transaction_id(transaction_id)}
    return Call("/payments/void", body, read.no_result, True, request_id)


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
    return Call("/payments/refund", body, read.model(Refund.from_api), True, request_id)


def get_payment(transaction_id: int | str) -> Call[Transaction]:
    """The transaction with this id (``/payments/get``), declined ones included."""
    body = {"TransactionId": _transaction_id(transaction_id)}
    return Call("/payments/get", body, read.model(Transaction.from_api), False)


def find_payment(invoice_id: str) -> Call[Transaction]:
    """The latest payment for ``invoice_id`` (``/payments/find``). Raises
    :class:`~checkout_kit.errors.RequestRejectedError` (``Message`` ``"Not found"``)
    when there is none."""
    body = {"InvoiceId": _text(invoice_id, "invoice_id")}
    return Call("/payments/find", body, read.model(Transaction.from_api), False)


def find_operation(invoice_id: str) -> Call[Transaction]:
    """The latest operation for ``invoice_id``, refunds and payouts included
    (``/v2/payments/find``; ``find_payment`` looks at payments only). One transaction,
    as the gateway answers (docs/gateway.md §3.5); for every refund of a payment read
    ``list_payments_v2``. Raises :class:`~checkout_kit.errors.RequestRejectedError`
    (``Message`` ``"Not found"``) when there is none."""
    body = {"InvoiceId": _text(invoice_id, "invoice_id")}
    return Call("/v2/payments/find", body, read.model(Transaction.from_api), False)


def list_payments(date: date | str, *, timezone: str | None = None) -> Call[list[Transaction]]:
    """The operations of one day (``/payments/list``)."""
    body = _compact({"Date": _day(date), "TimeZone": timezone})
    return Call("/payments/list", body, read.models(Transaction.from_api), False)


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
    return Call("/v2/payments/list", body, read.models(Transaction.from_api), False)


def list_tokens(page: int = 1) -> Call[list[CardToken]]:
    """One page of saved card tokens (``/payments/tokens/list``)."""
    body = {"PageNumber": _page(page)}
    return Call("/payments/tokens/list", body, read.models(CardToken.from_api), False)


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
    return Call("/subscriptions/create", body, read.model(Subscription.from_api), True, request_id)


def get_subscription(id: str) -> Call[Subscription]:
    """One subscription (``/subscriptions/get``)."""
    body = {"Id": _text(id, "id")}
    return Call("/subscriptions/get", body, read.model(Subscription.from_api), False)


def find_subscriptions(account_id: str) -> Call[list[Subscription]]:
    """Every subscription of a payer (``/subscriptions/find``)."""
    body = {"accountId": _text(account_id, "account_id")}
    return Call("/subscriptions/find", body, read.models(Subscription.from_api), False)


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
    return Call("/subscriptions/update", body, read.model(Subscription.from_api), True, request_id)


def cancel_subscription(id: str, *, request_id: str | None = None) -> Call[None]:
    """Cancel a subscription (``/subscriptions/cancel``)."""
    return Call("/subscriptions/cancel", {"Id": _text(id, "id")}, read.no_result, True, request_id)


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
    return Call("/orders/create", body, read.model(Order.from_api), True, request_id)


def cancel_order(id: str, *, request_id: str | None = None) -> Call[None]:
    """Cancel an unpaid invoice (``/orders/cancel``)."""
    return Call("/orders/cancel", {"Id": _text(id, "id")}, read.no_result, True, request_id)


def get_notification_settings(type: str) -> Call[NotificationSettings]:
    """Settings of one notification type (``/site/notifications/{type}/get``)."""
    path = f"/site/notifications/{_notification_type(type)}/get"
    return Call(path, {}, read.model(NotificationSettings.from_api), False)


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
    return Call(path, body, read.no_result, True, request_id)


def get_public_key() -> Call[PublicKeyInfo]:
    """The cryptogram key (``GET /payments/publickey`` → ``{Pem, Version}``)."""
    return Call("/payments/publickey", None, read.public_key, False, method="GET")


#: Every operation, in the order docs/client.md lists the methods.
OPERATIONS: tuple[Callable[..., Call[Any]], ...] = (
    test, charge, auth, post3ds, charge_token, auth_token, confirm, void, refund,
    get_payment, find_payment, find_operation, list_payments, list_payments_v2, list_tokens,
    create_subscription, get_subscription, find_subscriptions, update_subscription,
    cancel_subscription, create_order, cancel_order, get_notification_settings,
    update_notification_settings, get_public_key,
)


# --- the operations as the shells' methods ------------------------------------------------


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
