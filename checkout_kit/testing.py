"""Realistic signed notifications, as the gateway sends them: for a shop's tests, the
pytest plugin (:func:`checkout_kit.pytest_plugin.send_notification`) and ``checkout-kit
webhook send``.

Pure: no Flask, no network. :func:`sample_fields` makes the fields of one event of a
type, :func:`build_notification` encodes and signs them (docs/gateway.md §5.1, §5.2).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .notifications import codec_for, encode_body, format_value, sign
from .webhooks import canonical_type

__all__ = ["SAMPLE_FIELDS", "OutgoingNotification", "build_notification", "sample_fields"]

_CARD = {
    "Amount": "1500.00", "Currency": "RUB", "PaymentAmount": "1500.00",
    "PaymentCurrency": "RUB", "CardFirstSix": "424242", "CardLastFour": "4242",
    "CardType": "Visa", "CardExpDate": "12/30", "TestMode": "1", "InvoiceId": "1234567",
    "AccountId": "user@example.com", "Email": "user@example.com", "Name": "IVAN PETROV",
    "IpAddress": "203.0.113.7", "IpCountry": "RU", "IpCity": "Москва",
    "IpRegion": "Москва", "IpDistrict": "Центральный федеральный округ",
    "Issuer": "Test Bank", "IssuerBankCountry": "RU",
    "Description": "Оплата заказа №1234567", "Data": '{"order":"1234567"}',
}

#: Realistic fields of each type (docs/gateway.md §5.4, §10), without ``TransactionId``
#: and ``DateTime``, which :func:`sample_fields` fills in for every send.
SAMPLE_FIELDS: dict[str, dict[str, str]] = {
    "Check": {**_CARD, "Status": "Completed", "OperationType": "Payment"},
    "Pay": {
        **_CARD, "Status": "Completed", "OperationType": "Payment", "GatewayName": "Test",
        "AuthCode": "A1B2C3", "Token": "tk_0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d",
        "TotalFee": "0", "Rrn": "123456789012",
    },
    "Fail": {
        **_CARD, "OperationType": "Payment", "Reason": "InsufficientFunds",
        "ReasonCode": "5051", "Rrn": "123456789012",
    },
    "Confirm": {
        **_CARD, "Status": "Completed", "AuthCode": "A1B2C3",
        "Token": "tk_0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d", "Rrn": "123456789012",
    },
    "Refund": {
        "PaymentTransactionId": "1000000", "Amount": "1500.00", "OperationType": "Refund",
        "InvoiceId": "1234567", "AccountId": "user@example.com", "Email": "user@example.com",
        "Data": '{"order":"1234567"}', "Rrn": "123456789012",
    },
    "Cancel": {
        "Amount": "1500.00", "InvoiceId": "1234567", "AccountId": "user@example.com",
        "Email": "user@example.com", "Data": '{"order":"1234567"}', "Rrn": "123456789012",
    },
    "Recurrent": {
        "Id": "sc_0a1b2c3d4e5f6a7b8c9d0e1f2a3b", "AccountId": "user@example.com",
        "Description": "Подписка на журнал", "Email": "user@example.com",
        "Amount": "299.00", "Currency": "RUB", "RequireConfirmation": "0",
        "StartDate": "2026-01-01 00:00:00", "Interval": "Month", "Period": "1",
        "Status": "Active", "SuccessfulTransactionsNumber": "1",
        "FailedTransactionsNumber": "0", "LastTransactionDate": "2026-01-01 00:00:00",
        "NextTransactionDate": "2026-02-01 00:00:00",
    },
    # UNCONFIRMED fields (docs/gateway.md §10).
    "Receipt": {
        "DocumentNumber": "1234", "SessionNumber": "12", "FiscalSign": "2746510553",
        "DeviceNumber": "0000000001234567", "RegNumber": "0000000012345678",
        "Inn": "7708806062", "Type": "Income", "Ofd": "Яндекс.ОФД",
        "Url": "https://receipts.example/r/1234", "QrCodeUrl": "https://receipts.example/q/1234",
        "Amount": "1500.00", "InvoiceId": "1234567", "AccountId": "user@example.com",
        "Receipt": '{"Items":[{"label":"Заказ №1234567","price":1500.00,"quantity":1,'
                   '"amount":1500.00,"vat":20}]}',
    },
}
#: Types whose fields carry no ``TransactionId``.
_WITHOUT_TRANSACTION = frozenset({"Recurrent"})


def sample_fields(
    type: str,
    overrides: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> dict[str, str]:
    """A realistic notification of ``type`` (any of :data:`WEBHOOK_TYPES`, any case).

    A fresh random ``TransactionId`` and ``DateTime`` of ``now`` (UTC) are filled in, so
    two samples are two events; ``overrides`` replace or add fields. Raises
    ``ValueError`` for an unknown type.
    """
    name = canonical_type(type)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    fields: dict[str, str] = {}
    if name not in _WITHOUT_TRANSACTION:
        fields["TransactionId"] = str((rng or random.SystemRandom()).randrange(10**9, 10**10))
    fields.update(SAMPLE_FIELDS[name])
    if name != "Recurrent":
        fields["DateTime"] = format_value(moment)
    fields.update(overrides or {})
    return fields


@dataclass(frozen=True)
class OutgoingNotification:
    """A signed notification ready to send, as the gateway would send it.

    ``body`` is the form-encoded text: the POST body, or the query string of a GET.
    """

    type: str
    method: str
    encoding: str
    body: bytes = field(repr=False)
    headers: Mapping[str, str] = field(repr=False)

    def url(self, address: str) -> str:
        """Where to send it: ``address`` itself for a POST, plus the query for a GET."""
        if self.method != "GET":
            return address
        return f"{address}{'&' if '?' in address else '?'}{self.body.decode('ascii')}"


def build_notification(
    type: str,
    fields: Mapping[str, object],
    secret: str | bytes,
    *,
    method: str = "POST",
    encoding: str = "utf-8",
) -> OutgoingNotification:
    """Encode ``fields`` in ``encoding`` and sign them (docs/gateway.md §5.1, §5.2).

    A POST carries ``Content-Type: application/x-www-form-urlencoded; charset=...``.
    ``ValueError`` for a method other than GET/POST or an unknown encoding.
    """
    verb = method.strip().upper()
    if verb not in ("GET", "POST"):
        raise ValueError(f"notifications are sent as GET or POST, not {method[:16]!r}")
    codec = codec_for(encoding)
    body = encode_body(fields, encoding)
    headers = dict(sign(body, secret, encoding=encoding))
    if verb == "POST":
        charset = "windows-1251" if codec == "cp1251" else codec
        headers["Content-Type"] = f"application/x-www-form-urlencoded; charset={charset}"
    return OutgoingNotification(type, verb, encoding, body, headers)

