"""How sandbox records look on the wire: API models and notification fields.

Field names, formats and constants follow reference §3.4, §3.5 and §5.4. Test-mode
constants (``TestMode: true``, ``GatewayName "Test"``, ``Issuer "CloudPayments"``,
``AuthCode "A1B2C3"``) come from the Docs examples (reference §8).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..reasons import reason_for
from .state import STATUS_CODES, Order, Subscription, TokenRecord, Transaction, TxType
from .wire import iso, ms_date

__all__ = [
    "CARD_TYPES",
    "CURRENCY_CODES",
    "INTERVAL_CODES",
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
_NO_FEE = Decimal("0.00")
GATEWAY_NAME = "Test"
ISSUER = "CloudPayments"

#: brand id (checkout_kit.cards) -> (CardType, CardTypeCode). Visa = 0 is observed;
#: the other codes are UNCONFIRMED.
CARD_TYPES: dict[str, tuple[str, int]] = {
    "visa": ("Visa", 0),
    "mastercard": ("Mastercard", 1),
    "maestro": ("Maestro", 2),
    "mir": ("МИР", 3),
    "jcb": ("JCB", 4),
    "american-express": ("AmericanExpress", 5),
    "diners-club": ("DinersClub", 6),
    "unionpay": ("UnionPay", 7),
    "discover": ("Discover", 8),
    "humo": ("Humo", 9),
    "uzcard": ("Uzcard", 10),
    "troy": ("Troy", 11),
}
UNKNOWN_CARD_TYPE = ("Unknown", -1)

#: ``CurrencyCode`` values; RUB = 0 is observed, the rest are UNCONFIRMED.
CURRENCY_CODES: dict[str, int] = {
    code: n
    for n, code in enumerate((
        "RUB", "USD", "EUR", "GBP", "UAH", "BYR", "KZT", "AZN", "CHF", "CZK", "CAD", "PLN",
        "SEK", "TRY", "CNY", "INR", "BRL", "ZAR", "UZS", "BGN", "GEL", "RON", "AUD", "HKD",
        "KGS", "AMD", "AED", "BYN", "BGL",
    ))
}

#: ``IntervalCode`` (the Docs example pairs 2 with ``Day``; the rest UNCONFIRMED).
INTERVAL_CODES: dict[str, int] = {"Week": 0, "Month": 1, "Day": 2}
SUBSCRIPTION_STATUS_CODES: dict[str, int] = {
    "Active": 0, "PastDue": 1, "Cancelled": 2, "Rejected": 3, "Expired": 4,
}
ORDER_STATUS_CODES: dict[str, int] = {"Created": 0, "Paid": 2, "Cancelled": 3}


def card_type_for(brand_id: str | None) -> tuple[str, int]:
    """``(CardType, CardTypeCode)`` of a brand id."""
    return CARD_TYPES.get(brand_id or "", UNKNOWN_CARD_TYPE)


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _stamps(value: datetime | None) -> tuple[str | None, str | None]:
    return ms_date(value), iso(value)


def transaction_model(tx: Transaction, terminal_url: str) -> dict[str, Any]:
    """The transaction model of reference §3.4 (every listed field present)."""
    reason = reason_for(tx.reason_code)
    currency_code = CURRENCY_CODES.get(tx.currency)
    created, created_iso = _stamps(tx.created)
    auth, auth_iso = _stamps(tx.auth_date)
    # A one-stage payment is confirmed at the instant it is authorized.
    confirm, confirm_iso = (
        (auth, auth_iso) if tx.confirm_date is tx.auth_date else _stamps(tx.confirm_date)
    )
    card = tx.card
    model: dict[str, Any] = {
        "ReasonCode": tx.reason_code,
        "PublicId": tx.public_id,
        "TerminalUrl": terminal_url,
        "TransactionId": tx.id,
        "Amount": tx.amount,
        "Currency": tx.currency,
        "CurrencyCode": currency_code,
        "PaymentAmount": tx.amount,
        "PaymentCurrency": tx.currency,
        "PaymentCurrencyCode": currency_code,
        "InvoiceId": tx.invoice_id,
        "AccountId": tx.account_id,
        "Email": tx.email,
        "Description": tx.description,
        "JsonData": _json_text(tx.json_data),
        "CreatedDate": created,
        "PayoutDate": None,
        "PayoutDateIso": None,
        "PayoutAmount": None,
        "CreatedDateIso": created_iso,
        "AuthDate": auth,
        "AuthDateIso": auth_iso,
        "ConfirmDate": confirm,
        "ConfirmDateIso": confirm_iso,
        "AuthCode": AUTH_CODE if tx.auth_date is not None else None,
        "TestMode": True,
        "Rrn": None,
        "OriginalTransactionId": tx.original_transaction_id,
        "FallBackScenarioDeclinedTransactionId": None,
        "IpAddress": tx.ip_address,
        "IpCountry": None,
        "IpCity": None,
        "IpRegion": None,
        "IpDistrict": None,
        "IpLatitude": None,
        "IpLongitude": None,
        "CardFirstSix": card.first_six if card else None,
        "CardLastFour": card.last_four if card else None,
        "CardExpDate": card.exp_date if card else None,
        "CardType": card.card_type if card else None,
        "CardTypeCode": card.card_type_code if card else None,
        "CardProduct": None,
        "CardCategory": None,
        "EscrowAccumulationId": None,
        "IssuerBankCountry": "RU" if card else None,
        "Issuer": ISSUER if card else None,
        "Status": tx.status.value,
        "StatusCode": STATUS_CODES[tx.status],
        "CultureName": tx.culture_name or "ru-RU",
        "Reason": reason.name,
        "CardHolderMessage": reason.message(tx.culture_name),
        "Type": int(tx.type),
        "Refunded": tx.refunded > 0,
        "Name": tx.name,
        "Token": tx.token,
        "SubscriptionId": tx.subscription_id,
        "GatewayName": GATEWAY_NAME,
        "AndroidPay": False,
        "WalletType": "",
        "TotalFee": _NO_FEE,
        "VatAboveTotalFee": None,
        "ProcessorAndPartnerFee": None,
        "VatWithinProcessorFee": None,
    }
    if tx.tr_initiator_code is not None:
        model["TrInitiatorCode"] = tx.tr_initiator_code
    return model


def transaction_fields(tx: Transaction, when: datetime) -> dict[str, object]:
    """Fields common to Check, Pay, Fail, Confirm and Cancel (reference §5.4)."""
    card = tx.card
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
        "Issuer": ISSUER if card else None,
        "IssuerBankCountry": "RU" if card else None,
        "Description": tx.description,
        "Data": _json_text(tx.json_data),
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
    """The subscription model of reference §3.5."""
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
    """Fields of a Recurrent notification (reference §5.4)."""
    return {
        **_subscription_common(sub),
        "StartDate": sub.start_date,
        "LastTransactionDate": sub.last_transaction_date,
        "NextTransactionDate": sub.next_transaction_date,
    }


def order_model(order: Order) -> dict[str, Any]:
    """The order model of reference §3.5."""
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
