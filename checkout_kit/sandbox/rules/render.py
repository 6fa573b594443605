"""How sandbox records look on the wire: API models and notification fields, as dicts.

Field names, formats and constants follow docs/gateway.md §3.4, §3.5 and §5.4.
Test-mode constants (``TestMode: true``, ``GatewayName "Test"``, ``Issuer
"CloudPayments"``, ``AuthCode "A1B2C3"``) come from the Docs examples (§8). The web
layer hands these dicts to :mod:`checkout_kit.jsoncodec`; the brand names
(``CardType``) come from :mod:`checkout_kit.cards` and the currency numbers
(``CurrencyCode``) from :mod:`checkout_kit.money`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from ... import jsoncodec
from ...cards import UNKNOWN_CARD_TYPE, Brand
from ...models import Interval, SubscriptionStatus
from ...money import CURRENCY_CODES
from ...notifications import NotificationType
from ...reasons import reason_for
from .geo import locate
from .params import iso, ms_date
from .records import Order, Subscription, TokenRecord, Transaction, TxStatus, TxType

__all__ = [
    "INTERVAL_CODES",
    "STATUS_CODES",
    "SUBSCRIPTION_STATUS_CODES",
    "card_type_for",
    "order_model",
    "subscription_fields",
    "subscription_model",
    "token_model",
    "transaction_fields",
    "transaction_model",
]

AUTH_CODE = "A1B2C3"
GATEWAY_NAME = "Test"
ISSUER = "CloudPayments"
NO_FEE = Decimal("0.00")
#: ``PaymentMethod`` of a card payment (the widget's name for cards, §6.1; the
#: gateway's value for cards is UNCONFIRMED, its example is ``T-Pay``).
CARD_PAYMENT_METHOD = "Card"
#: ``CardProduct`` by ``CardType``: the sandbox's test cards are each brand's basic
#: product (the gateway's product names are UNCONFIRMED).
CARD_PRODUCTS: dict[str, str] = {
    "Visa": "Visa Classic",
    "Mastercard": "Mastercard Standard",
    "Maestro": "Maestro",
    "МИР": "MIR Classic",
}
#: Fields a notification type adds to the common ones, of those the sandbox fills
#: (docs/gateway.md §5.4: ``CardId`` and ``CardProduct`` in Check and Pay, ``Rrn``
#: in Pay, Fail, Confirm and Cancel...).
TYPE_FIELDS: dict[NotificationType, tuple[str, ...]] = {
    NotificationType.CHECK: ("CardId", "CardProduct"),
    NotificationType.PAY: ("CardId", "CardProduct", "Rrn"),
    NotificationType.FAIL: ("CardId", "Rrn"),
    NotificationType.CONFIRM: ("Rrn",),
}

#: The only fields docs/gateway.md §5.4 lists for Cancel: no card, no ``Ip*``, no
#: ``PaymentMethod`` (a Cancel is about an authorization, not a new card operation).
CANCEL_FIELDS: tuple[str, ...] = (
    "TransactionId", "Amount", "DateTime", "InvoiceId", "AccountId", "Email", "Data", "Rrn",
)

#: ``StatusCode`` of each transaction status (2, 3, 5 observed; 1 and 4 UNCONFIRMED).
STATUS_CODES: dict[TxStatus, int] = {
    TxStatus.AWAITING_AUTHENTICATION: 1,
    TxStatus.AUTHORIZED: 2,
    TxStatus.COMPLETED: 3,
    TxStatus.CANCELLED: 4,
    TxStatus.DECLINED: 5,
}
#: ``IntervalCode`` (the Docs example pairs 2 with ``Day``; the rest UNCONFIRMED).
INTERVAL_CODES: dict[str, int] = {Interval.WEEK: 0, Interval.MONTH: 1, Interval.DAY: 2}
#: ``StatusCode`` of each subscription status (UNCONFIRMED).
SUBSCRIPTION_STATUS_CODES: dict[str, int] = {
    SubscriptionStatus.ACTIVE: 0, SubscriptionStatus.PAST_DUE: 1, SubscriptionStatus.CANCELLED: 2,
    SubscriptionStatus.REJECTED: 3, SubscriptionStatus.EXPIRED: 4,
}
ORDER_STATUS_CODES: dict[str, int] = {"Created": 0, "Paid": 2, "Cancelled": 3}


def card_type_for(brand: Brand | None) -> tuple[str, int]:
    """``(CardType, CardTypeCode)`` of a brand (``("Unknown", -1)`` for none)."""
    return brand.gateway_type if brand is not None else UNKNOWN_CARD_TYPE


def json_text(value: Any) -> str | None:
    """A JSON field the gateway echoes as JSON *text* (``JsonData``, ``Data``)."""
    if value is None or isinstance(value, str):
        return value
    return jsoncodec.dumps(value)


def _location(tx: Transaction) -> dict[str, Any]:
    """The ``Ip*`` fields of ``tx`` (from the offline table of :mod:`.geo`)."""
    place = locate(tx.ip_address)
    if place is None:
        return dict.fromkeys(("IpCountry", "IpCity", "IpRegion", "IpDistrict",
                              "IpLatitude", "IpLongitude"))
    return {"IpCountry": place.country, "IpCity": place.city, "IpRegion": place.region,
            "IpDistrict": place.district, "IpLatitude": place.latitude,
            "IpLongitude": place.longitude}


def card_product(tx: Transaction) -> str | None:
    """``CardProduct`` of the card ``tx`` was paid with."""
    return CARD_PRODUCTS.get(tx.card.card_type) if tx.card else None


def _outcome(tx: Transaction) -> dict[str, Any]:
    """``ReasonCode``, ``Reason`` and ``CardHolderMessage``. A payment waiting for 3-D
    Secure has no outcome yet: all three are ``null`` (never "Approved", code 0, or
    "payment completed"; docs/gateway.md §3.4)."""
    if tx.status is TxStatus.AWAITING_AUTHENTICATION:
        return {"ReasonCode": None, "Reason": None, "CardHolderMessage": None}
    reason = reason_for(tx.reason_code)
    return {"ReasonCode": tx.reason_code, "Reason": reason.name,
            "CardHolderMessage": reason.message(tx.culture_name)}


def transaction_model(tx: Transaction, terminal_url: str) -> dict[str, Any]:
    """The transaction model of docs/gateway.md §3.4 (every listed field present)."""
    outcome = _outcome(tx)
    card = tx.card
    model: dict[str, Any] = {
        "ReasonCode": outcome["ReasonCode"],
        "PublicId": tx.public_id,
        "TerminalUrl": terminal_url,
        "TransactionId": tx.id,
        "Amount": tx.amount,
        "Currency": tx.currency,
        "CurrencyCode": CURRENCY_CODES.get(tx.currency),
        "PaymentAmount": tx.amount,
        "PaymentCurrency": tx.currency,
        "PaymentCurrencyCode": CURRENCY_CODES.get(tx.currency),
        "InvoiceId": tx.invoice_id,
        "AccountId": tx.account_id,
        "Email": tx.email,
        "Description": tx.description,
        "JsonData": json_text(tx.json_data),
        "CreatedDate": ms_date(tx.created),
        "PayoutDate": None,
        "PayoutDateIso": None,
        "PayoutAmount": None,
        "CreatedDateIso": iso(tx.created),
        "AuthDate": ms_date(tx.auth_date),
        "AuthDateIso": iso(tx.auth_date),
        "ConfirmDate": ms_date(tx.confirm_date),
        "ConfirmDateIso": iso(tx.confirm_date),
        "AuthCode": AUTH_CODE if tx.auth_date is not None else None,
        "TestMode": True,
        "Rrn": tx.rrn,
        "OriginalTransactionId": tx.original_transaction_id,
        "FallBackScenarioDeclinedTransactionId": None,
        "IpAddress": tx.ip_address,
        **_location(tx),
        "CardFirstSix": card.first_six if card else None,
        "CardLastFour": card.last_four if card else None,
        "CardExpDate": card.exp_date if card else None,
        "CardType": card.card_type if card else None,
        "CardTypeCode": card.card_type_code if card else None,
        "CardProduct": card_product(tx),
        "CardCategory": None,
        "EscrowAccumulationId": None,
        "IssuerBankCountry": "RU" if card else None,
        "Issuer": ISSUER if card else None,
        "Status": tx.status.value,
        "StatusCode": STATUS_CODES[tx.status],
        "CultureName": tx.culture_name or "ru-RU",
        "Reason": outcome["Reason"],
        "CardHolderMessage": outcome["CardHolderMessage"],
        "Type": int(tx.type),
        "Refunded": tx.refunded > 0,
        "Name": tx.name,
        "Token": tx.token,
        "SubscriptionId": tx.subscription_id,
        "GatewayName": GATEWAY_NAME,
        "AndroidPay": False,
        "WalletType": "",
        "TotalFee": NO_FEE,
        "VatAboveTotalFee": None,
        "ProcessorAndPartnerFee": None,
        "VatWithinProcessorFee": None,
        "PaymentMethod": CARD_PAYMENT_METHOD if card else None,
    }
    model.update(_token_payment(tx))
    return model


def _token_payment(tx: Transaction) -> dict[str, Any]:
    """``TrInitiatorCode`` and ``PaymentScheduled``, which only token payments carry."""
    if tx.tr_initiator_code is None:
        return {}
    return {"TrInitiatorCode": tx.tr_initiator_code,
            "PaymentScheduled": 1 if tx.payment_scheduled else 0}


def _text_number(value: Decimal | None) -> str | None:
    # Notification values are text; a Decimal would be written with two decimals.
    return None if value is None else str(value)


def transaction_fields(
    tx: Transaction, when: datetime, kind: NotificationType | None = None
) -> dict[str, object]:
    """The fields of a ``kind`` notification about ``tx`` (docs/gateway.md §5.4): those
    common to Check, Pay, Fail, Confirm and Cancel, and those ``kind`` adds
    (:data:`TYPE_FIELDS`); Cancel carries only :data:`CANCEL_FIELDS`."""
    if kind is NotificationType.CANCEL:
        every = transaction_fields(tx, when, None)
        every["Rrn"] = tx.rrn
        return {name: every[name] for name in CANCEL_FIELDS}
    card = tx.card
    location = _location(tx)
    for key in ("IpLatitude", "IpLongitude"):
        location[key] = _text_number(location[key])
    extra = {"CardId": card.card_id if card else None, "CardProduct": card_product(tx),
             "Rrn": tx.rrn}
    return {
        "TransactionId": tx.id,
        "Amount": tx.amount,
        "Currency": tx.currency,
        "PaymentAmount": tx.amount,
        "PaymentCurrency": tx.currency,
        "DateTime": when,
        "CardFirstSix": card.first_six if card else None,
        "CardLastFour": card.last_four if card else None,
        "CardType": card.card_type if card else None,
        "CardExpDate": card.exp_date if card else None,
        "TestMode": True,
        "Status": tx.status.value,
        "OperationType": "Refund" if tx.type is TxType.REFUND else "Payment",
        "InvoiceId": tx.invoice_id,
        "AccountId": tx.account_id,
        "SubscriptionId": tx.subscription_id,
        "Name": tx.name,
        "Email": tx.email,
        "IpAddress": tx.ip_address,
        **location,
        "Issuer": ISSUER if card else None,
        "IssuerBankCountry": "RU" if card else None,
        "Description": tx.description,
        "Data": json_text(tx.json_data),
        "PaymentMethod": CARD_PAYMENT_METHOD if card else None,
        **_token_payment(tx),
        **{name: extra[name] for name in (TYPE_FIELDS.get(kind, ()) if kind else ())},
    }


def token_model(record: TokenRecord) -> dict[str, Any]:
    """One row of ``/payments/tokens/list``."""
    return {
        "Token": record.token,
        "AccountId": record.account_id,
        "CardMask": record.card.mask,
        "ExpirationDateMonth": record.card.exp_month,
        "ExpirationDateYear": record.card.exp_year,
    }


def _subscription_common(sub: Subscription) -> dict[str, Any]:
    return {
        "Id": sub.id,
        "AccountId": sub.account_id,
        "Description": sub.description,
        "Email": sub.email,
        "Amount": sub.amount,
        "Currency": sub.currency,
        "RequireConfirmation": sub.require_confirmation,
        "Interval": sub.interval,
        "Period": sub.period,
        "MaxPeriods": sub.max_periods,
        "Status": sub.status,
        "SuccessfulTransactionsNumber": sub.successful,
        "FailedTransactionsNumber": sub.failed,
    }


def subscription_model(sub: Subscription) -> dict[str, Any]:
    """The subscription model of docs/gateway.md §3.5."""
    return {
        **_subscription_common(sub),
        "CurrencyCode": CURRENCY_CODES.get(sub.currency),
        "StartDate": ms_date(sub.start_date),
        "StartDateIso": iso(sub.start_date),
        "IntervalCode": INTERVAL_CODES[sub.interval],
        "CultureName": sub.culture_name or "ru-RU",
        "StatusCode": SUBSCRIPTION_STATUS_CODES[sub.status],
        "LastTransactionDate": ms_date(sub.last_transaction_date),
        "LastTransactionDateIso": iso(sub.last_transaction_date),
        "NextTransactionDate": ms_date(sub.next_transaction_date),
        "NextTransactionDateIso": iso(sub.next_transaction_date),
        "Receipt": sub.receipt,
        "FailoverSchemeId": None,
    }


def subscription_fields(sub: Subscription) -> dict[str, object]:
    """Fields of a Recurrent notification (docs/gateway.md §5.4)."""
    return {
        **_subscription_common(sub),
        "StartDate": sub.start_date,
        "LastTransactionDate": sub.last_transaction_date,
        "NextTransactionDate": sub.next_transaction_date,
    }


def order_model(order: Order) -> dict[str, Any]:
    """The order model of docs/gateway.md §3.5."""
    return {
        "Id": order.id,
        "Number": order.number,
        "Amount": order.amount,
        "Currency": order.currency,
        "CurrencyCode": CURRENCY_CODES.get(order.currency),
        "Email": order.email,
        "Phone": order.phone,
        "Description": order.description,
        "RequireConfirmation": order.require_confirmation,
        "Url": order.url,
        "CultureName": order.culture_name or "ru-RU",
        "CreatedDate": ms_date(order.created),
        "CreatedDateIso": iso(order.created),
        "PaymentDate": ms_date(order.payment_date),
        "PaymentDateIso": iso(order.payment_date),
        "StatusCode": ORDER_STATUS_CODES.get(order.status, 0),
        "Status": order.status,
        "InternalId": order.number,
    }
