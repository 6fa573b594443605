"""How sandbox records look on the wire: API models and notification fields.

Field names, formats and constants follow reference §3.4, §3.5 and §5.4. Test-mode
constants (``TestMode: true``, ``GatewayName "Test"``, ``Issuer "CloudPayments"``,
``AuthCode "A1B2C3"``) come from the Docs examples (reference §8).
"""

from __future__ import annotations

import json
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any

from ...reasons import reason_for
from .params import JSONObject, iso, ms_date
from .records import STATUS_CODES, Order, Subscription, TokenRecord, Transaction, TxType

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
    "transaction_json",
    "transaction_model",
]

AUTH_CODE = "A1B2C3"
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


# A JSON string literal exactly as the sandbox's encoder writes one (non-ASCII kept):
# the function json's encoder itself calls for that.
_quote = encode_basestring


def _json(value: str | int | None) -> str:
    """A text, integer or null field of a model, as JSON."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return _quote(value)
    return str(int(value))


def _stamps(value: datetime | None) -> tuple[str, str]:
    """``/Date(ms)/`` and ISO text of one instant, as JSON values."""
    return _json(ms_date(value)), _json(iso(value))


def transaction_model(tx: Transaction, terminal_url: str) -> JSONObject:
    """The transaction model of reference §3.4 (every listed field present)."""
    return JSONObject(transaction_json(tx, terminal_url))


def transaction_json(tx: Transaction, terminal_url: str) -> str:
    """:func:`transaction_model` as the JSON text the API sends.

    Written field by field from the record, constant runs as literal text: every
    payment answer carries this model, and building a dict of its 70 fields only to
    encode it again costs about as much as the rest of the HTTP layer.
    """
    reason = reason_for(tx.reason_code)
    currency = _quote(tx.currency)
    currency_code = _json(CURRENCY_CODES.get(tx.currency))
    amount = format(tx.amount, "f") if tx.amount.is_finite() else "null"
    created, created_iso = _stamps(tx.created)
    # Under a frozen clock a payment is authorized at the instant it is created.
    auth, auth_iso = (
        (created, created_iso) if tx.auth_date == tx.created else _stamps(tx.auth_date)
    )
    # A one-stage payment is confirmed at the instant it is authorized.
    confirm, confirm_iso = (
        (auth, auth_iso) if tx.confirm_date is tx.auth_date else _stamps(tx.confirm_date)
    )
    card = tx.card
    card_fields = (
        f'"CardFirstSix":{_quote(card.first_six)},"CardLastFour":{_quote(card.last_four)},'
        f'"CardExpDate":{_quote(card.exp_date)},"CardType":{_quote(card.card_type)},'
        f'"CardTypeCode":{int(card.card_type_code)},"CardProduct":null,"CardCategory":null,'
        f'"EscrowAccumulationId":null,"IssuerBankCountry":"RU","Issuer":{_quote(ISSUER)}'
        if card else
        '"CardFirstSix":null,"CardLastFour":null,"CardExpDate":null,"CardType":null,'
        '"CardTypeCode":null,"CardProduct":null,"CardCategory":null,'
        '"EscrowAccumulationId":null,"IssuerBankCountry":null,"Issuer":null'
    )
    initiator = (
        "" if tx.tr_initiator_code is None else f',"TrInitiatorCode":{int(tx.tr_initiator_code)}'
    )
    return (
        f'{{"ReasonCode":{int(tx.reason_code)},"PublicId":{_quote(tx.public_id)},'
        f'"TerminalUrl":{_quote(terminal_url)},"TransactionId":{int(tx.id)},'
        f'"Amount":{amount},"Currency":{currency},"CurrencyCode":{currency_code},'
        f'"PaymentAmount":{amount},"PaymentCurrency":{currency},'
        f'"PaymentCurrencyCode":{currency_code},'
        f'"InvoiceId":{_json(tx.invoice_id)},"AccountId":{_json(tx.account_id)},'
        f'"Email":{_json(tx.email)},"Description":{_json(tx.description)},'
        f'"JsonData":{_json(_json_text(tx.json_data))},'
        f'"CreatedDate":{created},"PayoutDate":null,"PayoutDateIso":null,"PayoutAmount":null,'
        f'"CreatedDateIso":{created_iso},"AuthDate":{auth},"AuthDateIso":{auth_iso},'
        f'"ConfirmDate":{confirm},"ConfirmDateIso":{confirm_iso},'
        f'"AuthCode":{_quote(AUTH_CODE) if tx.auth_date is not None else "null"},'
        f'"TestMode":true,"Rrn":null,'
        f'"OriginalTransactionId":{_json(tx.original_transaction_id)},'
        f'"FallBackScenarioDeclinedTransactionId":null,"IpAddress":{_json(tx.ip_address)},'
        f'"IpCountry":null,"IpCity":null,"IpRegion":null,"IpDistrict":null,'
        f'"IpLatitude":null,"IpLongitude":null,{card_fields},'
        f'"Status":{_quote(tx.status)},"StatusCode":{int(STATUS_CODES[tx.status])},'
        f'"CultureName":{_quote(tx.culture_name or "ru-RU")},"Reason":{_quote(reason.name)},'
        f'"CardHolderMessage":{_quote(reason.message(tx.culture_name))},'
        f'"Type":{int(tx.type)},"Refunded":{"true" if tx.refunded > 0 else "false"},'
        f'"Name":{_json(tx.name)},"Token":{_json(tx.token)},'
        f'"SubscriptionId":{_json(tx.subscription_id)},'
        f'"GatewayName":{_quote(GATEWAY_NAME)},"AndroidPay":false,"WalletType":"",'
        f'"TotalFee":0.00,"VatAboveTotalFee":null,"ProcessorAndPartnerFee":null,'
        f'"VatWithinProcessorFee":null{initiator}}}'
    )


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
