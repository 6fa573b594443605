"""Gateway notifications (webhooks): signing, verification and typed parsing.

Pure: no Flask, no network. The sandbox uses :func:`sign` and :func:`encode_body` to
send notifications; a shop uses :func:`verify` and :func:`parse_notification` to
receive them.

Signatures (docs/gateway.md §5.2). Every notification carries two headers, each
``base64(HMAC-SHA256(key=API secret, message))``:

* ``Content-HMAC`` over the raw bytes as sent (the POST body, or the query string of
  a GET delivery);
* ``X-Content-HMAC`` over the URL-decoded text: the *whole* raw string with ``+``
  turned into a space and then percent-decoded, as UTF-8 bytes. It is never a
  re-join of parsed fields. For a Windows-1251 body the percent-decoded bytes are
  read as Windows-1251 before being hashed as UTF-8 (the gateway's own wording is
  "UTF-8 bytes of the message"; the Windows-1251 case is UNCONFIRMED).

:func:`verify` reads the raw bytes, not a parsed form, and compares in constant time.
It requires ``Content-HMAC``: ``X-Content-HMAC`` covers only the decoded text, which
many raw bodies share (``Email=a%26TransactionId%3D7`` and ``Email=a&TransactionId=7``
decode alike), so alone it does not prove which fields were sent. A receiver may opt
out (``require_content_hmac=False``); a field name repeated in a body is refused either
way (:func:`parse_fields`).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes, urlencode

from . import jsoncodec
from .errors import MalformedNotificationError, SignatureVerificationError
from .models import INT64_MAX, INT64_MIN, mask_token

__all__ = [
    "CHECK_FORMAT_ERROR",
    "CHECK_REASONS",
    "CHECK_UNAVAILABLE",
    "CHECK_UNREACHABLE",
    "HEADER_DECODED",
    "HEADER_RAW",
    "MAX_ATTEMPTS",
    "RETRY_SCHEDULE",
    "CheckCode",
    "Notification",
    "NotificationType",
    "check_reason",
    "codec_for",
    "encode_body",
    "format_value",
    "header_value",
    "parse_fields",
    "parse_notification",
    "receipt_key",
    "sign",
    "url_decode",
    "verify",
]

HEADER_RAW = "Content-HMAC"
HEADER_DECODED = "X-Content-HMAC"

#: Minutes between delivery attempts (docs/gateway.md §5.1: 1, 2, 5, 10, 30 minutes); the
#: last interval repeats until :data:`MAX_ATTEMPTS` attempts were made.
RETRY_SCHEDULE: tuple[int, ...] = (1, 2, 5, 10, 30)
MAX_ATTEMPTS = 100


class NotificationType(enum.StrEnum):
    """The notification types the gateway sends (docs/gateway.md §5.1)."""

    CHECK = "Check"
    PAY = "Pay"
    FAIL = "Fail"
    CONFIRM = "Confirm"
    REFUND = "Refund"
    RECURRENT = "Recurrent"
    CANCEL = "Cancel"
    #: the online cash register's receipt (docs/gateway.md §10; its fields are
    #: UNCONFIRMED: every one is optional, and all are kept as text in ``fields``)
    RECEIPT = "Receipt"

    @classmethod
    def parse(cls, value: str) -> NotificationType:
        """Case-insensitive lookup (``"pay"`` → :attr:`PAY`); ``ValueError`` otherwise."""
        for member in cls:
            if member.value.lower() == value.strip().lower():
                return member
        raise ValueError(f"unknown notification type {value[:32]!r}")


class CheckCode(enum.IntEnum):
    """The codes a shop may answer to a Check notification (docs/gateway.md §5.3)."""

    ACCEPT = 0
    INVALID_INVOICE_ID = 10
    INVALID_ACCOUNT_ID = 11
    INVALID_AMOUNT = 12
    NOT_ACCEPTED = 13
    EXPIRED = 20


#: Check answer code -> the ``ReasonCode`` the payment is declined with.
CHECK_REASONS: dict[int, int] = {
    CheckCode.INVALID_INVOICE_ID: 3001,
    CheckCode.INVALID_ACCOUNT_ID: 3002,
    CheckCode.INVALID_AMOUNT: 3003,
    CheckCode.NOT_ACCEPTED: 3008,
    CheckCode.EXPIRED: 3004,
}
#: Any other code (or an answer that is not ``{"code": N}`` JSON).
CHECK_FORMAT_ERROR = 3005
#: The shop answered with an HTTP error status (404, 504, 508...).
CHECK_UNAVAILABLE = 3006
#: The shop could not be reached at all (connection refused, timeout).
CHECK_UNREACHABLE = 3007


def check_reason(code: int | None) -> int | None:
    """The decline reason for a Check answer: ``None`` for 0 (accept), 3005 for
    unknown codes and for ``None`` (no readable code)."""
    if code == CheckCode.ACCEPT:
        return None
    if code is None:
        return CHECK_FORMAT_ERROR
    return CHECK_REASONS.get(code, CHECK_FORMAT_ERROR)


# --------------------------------------------------------------------------- encodings

#: Gateway encoding names (``/site/notifications/{Type}/update``) and Python codecs.
_CODECS: dict[str, str] = {
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "windows1251": "cp1251",
    "windows-1251": "cp1251",
    "cp1251": "cp1251",
}


def codec_for(encoding: str) -> str:
    """The Python codec for a gateway encoding name (``UTF8``, ``Windows1251``) or a
    codec name; ``ValueError`` for anything else."""
    try:
        return _CODECS[encoding.strip().lower()]
    except KeyError:
        raise ValueError(f"unsupported notification encoding {encoding[:32]!r}") from None


# --------------------------------------------------------------------------- signatures


def _hmac_b64(secret: str | bytes, message: bytes) -> str:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode("ascii")


def url_decode(message: bytes, encoding: str = "utf-8") -> str:
    """The whole ``message`` with ``+`` → space, then percent-decoded and read as
    ``encoding``. Raises ``UnicodeDecodeError`` when the bytes are not in ``encoding``."""
    return unquote_to_bytes(message.replace(b"+", b" ")).decode(codec_for(encoding))


def sign(message: bytes, secret: str | bytes, *, encoding: str = "utf-8") -> dict[str, str]:
    """Both signature headers for ``message`` (the raw body or query string)."""
    return {
        HEADER_RAW: _hmac_b64(secret, message),
        HEADER_DECODED: _hmac_b64(secret, url_decode(message, encoding).encode("utf-8")),
    }


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` in ``headers`` whatever its case (HTTP header names
    are case-insensitive; a plain dict of a framework's headers may not be)."""
    value = headers.get(name)
    if value is not None:
        return value
    lower = name.lower()
    for key, val in headers.items():
        if key.lower() == lower:
            return val
    return None


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(
        expected.encode("ascii"), given.strip().encode("utf-8", errors="replace")
    )


def verify(
    raw: bytes,
    headers: Mapping[str, str],
    secret: str | bytes,
    *,
    encoding: str = "utf-8",
    require_both: bool = False,
    require_content_hmac: bool = True,
) -> None:
    """Check the HMAC headers of a notification; return ``None`` or raise.

    ``raw`` is the request body exactly as received (or the raw query string of a
    GET delivery), read before any form parsing. ``Content-HMAC`` (over those bytes)
    must be present; with ``require_content_hmac=False`` (an explicit opt-out) either
    header will do, and with ``require_both`` both must be there. Every header present
    must match. Raises :class:`~checkout_kit.errors.SignatureVerificationError` whose
    ``header`` names the failing header (``None`` when none was sent).
    """
    given_raw = header_value(headers, HEADER_RAW)
    given_decoded = header_value(headers, HEADER_DECODED)
    if given_raw is None and given_decoded is None:
        raise SignatureVerificationError("the notification carries no HMAC header")
    if given_raw is None and require_content_hmac:
        # X-Content-HMAC alone: a body re-encoded to say something else still matches.
        raise SignatureVerificationError(f"{HEADER_RAW} is missing", HEADER_RAW)
    if require_both:
        missing = HEADER_RAW if given_raw is None else HEADER_DECODED
        if given_raw is None or given_decoded is None:
            raise SignatureVerificationError(f"{missing} is missing", missing)
    if given_raw is not None and not _same(_hmac_b64(secret, raw), given_raw):
        raise SignatureVerificationError(f"{HEADER_RAW} does not match", HEADER_RAW)
    if given_decoded is not None:
        try:
            decoded = url_decode(raw, encoding).encode("utf-8")
        except UnicodeDecodeError:
            raise SignatureVerificationError(
                f"the body is not valid {encoding}", HEADER_DECODED
            ) from None
        if not _same(_hmac_b64(secret, decoded), given_decoded):
            raise SignatureVerificationError(f"{HEADER_DECODED} does not match", HEADER_DECODED)


# --------------------------------------------------------------------------- bodies

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def format_value(value: object) -> str:
    """A field value as the gateway writes it: amounts with two decimals, dates as
    ``yyyy-MM-dd HH:mm:ss`` UTC, booleans ``1``/``0``, objects as JSON
    (:func:`checkout_kit.jsoncodec.dumps`: decimals as exact numbers)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime(DATETIME_FORMAT)
    if isinstance(value, dict | list):
        return jsoncodec.dumps(value)
    return str(value)


def encode_body(fields: Mapping[str, object], encoding: str = "utf-8") -> bytes:
    """``fields`` form-URL-encoded in ``encoding`` (``None`` values are left out).

    Characters that ``encoding`` cannot represent are sent as ``?``, as a
    Windows-1251 sender does."""
    pairs = [(k, format_value(v)) for k, v in fields.items() if v is not None]
    return urlencode(pairs, encoding=codec_for(encoding), errors="replace").encode("ascii")


def parse_fields(
    raw: bytes, *, encoding: str = "utf-8", content_type: str | None = None
) -> dict[str, str]:
    """Decode a notification body (or GET query string) into its fields.

    Form-URL-encoded in ``encoding`` by default; a JSON object when ``content_type``
    says JSON (that delivery format is UNCONFIRMED). A field name sent twice is refused
    (no reader may pick one of two values: the gateway sends each field once, and a
    repeat is how a re-encoded body smuggles a second ``TransactionId``). Raises
    :class:`~checkout_kit.errors.MalformedNotificationError` (``field`` names a
    repeated field).
    """
    codec = codec_for(encoding)
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        raise MalformedNotificationError(f"the body is not valid {encoding}") from None
    if content_type and "json" in content_type.lower():
        try:
            obj = jsoncodec.loads(text)
        except ValueError:
            raise MalformedNotificationError("the body is not valid JSON") from None
        if not isinstance(obj, dict):
            raise MalformedNotificationError("the JSON body is not an object")
        return {
            str(k): (v if isinstance(v, str) else format_value(v))
            for k, v in obj.items()
            if v is not None
        }
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding=codec, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise MalformedNotificationError(f"the body is not valid {encoding}") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise MalformedNotificationError(f"{name[:64]!r} is sent more than once",
                                             name[:64])
        fields[name] = value
    return fields


# --------------------------------------------------------------------------- typed values


#: The range of the ledger's BIGINT columns (a signed 64-bit integer).


def _to_int(text: str) -> int:
    value = Decimal(text)
    # An id beyond 64 bits is not the gateway's (and would not fit the ledger's BIGINT
    # columns); checking the exponent first keeps ``1E9999999`` from being written out
    # digit by digit, the range check then refuses 19 digits above 2**63 - 1.
    if not value.is_finite() or value.adjusted() > 18 or value != value.to_integral_value():
        raise ValueError("not an integer id")
    number = int(value)
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError("not a 64-bit integer id")
    return number


def _to_decimal(text: str) -> Decimal:
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError(text)
    return value


def _to_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(text)


def _to_datetime(text: str) -> datetime:
    cleaned = text.strip().replace("T", " ").removesuffix("Z")
    for fmt in (DATETIME_FORMAT, "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(cleaned, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    # Anything else must be ISO 8601; a value without an offset is UTC, as the
    # gateway's DateTime is, and offsets are converted so every datetime is UTC.
    parsed = datetime.fromisoformat(text.strip())
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _to_json(text: str) -> Any:
    return jsoncodec.loads(text) if text.strip() else None


def _to_json_or_text(text: str) -> Any:
    # A field whose shape is UNCONFIRMED (the receipt of a Receipt notification): the
    # decoded JSON when it is JSON, else the text as sent, never an error.
    try:
        return _to_json(text)
    except ValueError:
        return text


_Converter = Callable[[str], Any]

#: attribute -> (wire name, converter). One table for every notification type.
_FIELDS: dict[str, tuple[str, _Converter]] = {
    "transaction_id": ("TransactionId", _to_int),
    "payment_transaction_id": ("PaymentTransactionId", _to_int),
    "amount": ("Amount", _to_decimal),
    "currency": ("Currency", str),
    "payment_amount": ("PaymentAmount", _to_decimal),
    "payment_currency": ("PaymentCurrency", str),
    "date_time": ("DateTime", _to_datetime),
    "card_first_six": ("CardFirstSix", str),
    "card_last_four": ("CardLastFour", str),
    "card_type": ("CardType", str),
    "card_exp_date": ("CardExpDate", str),
    "test_mode": ("TestMode", _to_bool),
    "invoice_id": ("InvoiceId", str),
    "account_id": ("AccountId", str),
    "subscription_id": ("SubscriptionId", str),
    "name": ("Name", str),
    "email": ("Email", str),
    "ip_address": ("IpAddress", str),
    "description": ("Description", str),
    "data": ("Data", _to_json),
    "status": ("Status", str),
    "operation_type": ("OperationType", str),
    "gateway_name": ("GatewayName", str),
    "auth_code": ("AuthCode", str),
    "token": ("Token", str),
    "rrn": ("Rrn", str),
    "reason": ("Reason", str),
    "reason_code": ("ReasonCode", _to_int),
    "card_holder_message": ("CardHolderMessage", str),
    "card_id": ("CardId", str),
    "card_product": ("CardProduct", str),
    "issuer": ("Issuer", str),
    "issuer_bank_country": ("IssuerBankCountry", str),
    "payment_method": ("PaymentMethod", str),
    "ip_country": ("IpCountry", str),
    "ip_city": ("IpCity", str),
    "ip_region": ("IpRegion", str),
    "ip_district": ("IpDistrict", str),
    "ip_latitude": ("IpLatitude", _to_decimal),
    "ip_longitude": ("IpLongitude", _to_decimal),
    "tr_initiator_code": ("TrInitiatorCode", _to_int),
    "payment_scheduled": ("PaymentScheduled", _to_bool),
    # Receipt
    "document_number": ("DocumentNumber", str),
    "session_number": ("SessionNumber", str),
    "fiscal_sign": ("FiscalSign", str),
    "device_number": ("DeviceNumber", str),
    "reg_number": ("RegNumber", str),
    "inn": ("Inn", str),
    "receipt_type": ("Type", str),
    "ofd": ("Ofd", str),
    "url": ("Url", str),
    "qr_code_url": ("QrCodeUrl", str),
    "receipt": ("Receipt", _to_json_or_text),
    # Recurrent
    "id": ("Id", str),
    "require_confirmation": ("RequireConfirmation", _to_bool),
    "start_date": ("StartDate", _to_datetime),
    "interval": ("Interval", str),
    "period": ("Period", _to_int),
    "max_periods": ("MaxPeriods", _to_int),
    "successful_transactions_number": ("SuccessfulTransactionsNumber", _to_int),
    "failed_transactions_number": ("FailedTransactionsNumber", _to_int),
    "last_transaction_date": ("LastTransactionDate", _to_datetime),
    "next_transaction_date": ("NextTransactionDate", _to_datetime),
}

_TRANSACTION_REQUIRED = ("TransactionId", "Amount")
#: Fields without which a notification of that type means nothing.
_REQUIRED: dict[NotificationType, tuple[str, ...]] = {
    NotificationType.CHECK: _TRANSACTION_REQUIRED,
    NotificationType.PAY: _TRANSACTION_REQUIRED,
    NotificationType.FAIL: _TRANSACTION_REQUIRED,
    NotificationType.CONFIRM: _TRANSACTION_REQUIRED,
    NotificationType.CANCEL: _TRANSACTION_REQUIRED,
    NotificationType.REFUND: (*_TRANSACTION_REQUIRED, "PaymentTransactionId"),
    NotificationType.RECURRENT: ("Id", "Status"),
    NotificationType.RECEIPT: (),
}
#: Types whose fields are UNCONFIRMED: a value of another shape is kept as text only.
_LENIENT = frozenset({NotificationType.RECEIPT})
#: Types that need at least one of these fields (the first one present is their id).
_REQUIRED_ONE_OF: dict[NotificationType, tuple[str, ...]] = {
    NotificationType.RECEIPT: ("TransactionId", "DocumentNumber"),
}


def _hidden(value: object) -> str:
    return "…"


#: Attributes a repr shows only masked: the token shortened; the payer's e-mail, name,
#: IP address and where it places them, ``Data`` (which may hold a phone or an
#: address) and the receipt (the buyer's contacts), not at all.
_REPR_MASKS: dict[str, Callable[[Any], Any]] = {
    "token": mask_token,
    "email": _hidden,
    "name": _hidden,
    "ip_address": _hidden,
    "ip_region": _hidden,
    "ip_city": _hidden,
    "ip_district": _hidden,
    "ip_latitude": _hidden,
    "ip_longitude": _hidden,
    "data": _hidden,
    "receipt": _hidden,
}


@dataclass(frozen=True, repr=False)
class Notification:
    """A parsed notification. ``fields`` keeps every raw field as text; the typed
    attributes are ``None`` when the field was absent or empty. The repr masks the
    token and hides the e-mail, name, IP address and ``Data``."""

    type: NotificationType
    fields: Mapping[str, str] = field(repr=False)
    transaction_id: int | None = None
    payment_transaction_id: int | None = None
    amount: Decimal | None = None
    currency: str | None = None
    payment_amount: Decimal | None = None
    payment_currency: str | None = None
    date_time: datetime | None = None
    card_first_six: str | None = None
    card_last_four: str | None = None
    card_type: str | None = None
    card_exp_date: str | None = None
    test_mode: bool | None = None
    invoice_id: str | None = None
    account_id: str | None = None
    subscription_id: str | None = None
    name: str | None = None
    email: str | None = None
    ip_address: str | None = None
    description: str | None = None
    data: Any = None
    status: str | None = None
    operation_type: str | None = None
    gateway_name: str | None = None
    auth_code: str | None = None
    token: str | None = None
    rrn: str | None = None
    reason: str | None = None
    reason_code: int | None = None
    card_holder_message: str | None = None
    card_id: str | None = None
    card_product: str | None = None
    issuer: str | None = None
    issuer_bank_country: str | None = None
    payment_method: str | None = None
    ip_country: str | None = None
    ip_city: str | None = None
    ip_region: str | None = None
    ip_district: str | None = None
    ip_latitude: Decimal | None = None
    ip_longitude: Decimal | None = None
    tr_initiator_code: int | None = None
    payment_scheduled: bool | None = None
    document_number: str | None = None
    session_number: str | None = None
    fiscal_sign: str | None = None
    device_number: str | None = None
    reg_number: str | None = None
    inn: str | None = None
    receipt_type: str | None = None
    ofd: str | None = None
    url: str | None = None
    qr_code_url: str | None = None
    receipt: Any = None
    id: str | None = None
    require_confirmation: bool | None = None
    start_date: datetime | None = None
    interval: str | None = None
    period: int | None = None
    max_periods: int | None = None
    successful_transactions_number: int | None = None
    failed_transactions_number: int | None = None
    last_transaction_date: datetime | None = None
    next_transaction_date: datetime | None = None

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            if not item.repr:
                continue
            value = getattr(self, item.name)
            mask = _REPR_MASKS.get(item.name)
            if mask is not None and value is not None:
                value = mask(value)
            shown.append(f"{item.name}={value!r}")
        return f"Notification({', '.join(shown)})"

    @property
    def dedupe_key(self) -> tuple[str, str]:
        """``(type, TransactionId)`` — ``(type, Id:Status)`` for Recurrent,
        ``(type, document:qualifier)`` of :func:`receipt_key` for Receipt — so a receiver
        applies each event once however often it is delivered."""
        if self.type is NotificationType.RECURRENT:
            return (self.type.value, f"{self.id}:{self.status}")
        if self.type is NotificationType.RECEIPT:
            return (self.type.value, ":".join(receipt_key(self.fields)))
        return (self.type.value, str(self.transaction_id))

    @property
    def receipt_id(self) -> str | None:
        """A Receipt's id: its ``TransactionId``, else its ``DocumentNumber``, as sent
        (free text: the Receipt's fields are UNCONFIRMED)."""
        for name in ("TransactionId", "DocumentNumber"):
            text = self.fields.get(name, "").strip()
            if text:
                return text
        return None


#: A fiscal document's register, in the order tried: any one of them with the
#: ``DocumentNumber`` names the document (the Receipt's fields are UNCONFIRMED,
#: docs/gateway.md §10).
_RECEIPT_REGISTER_FIELDS = ("RegNumber", "FiscalNumber", "DeviceNumber")


def receipt_key(fields: Mapping[str, str]) -> tuple[str, str]:
    """``(document, qualifier)``: the identity of the fiscal document a ``Receipt``
    notification carries, so that each document is applied once however often it is
    delivered.

    A payment's partial refunds each get their own receipt under the payment's
    ``TransactionId`` and the same ``Type``, so the fiscal document decides: its
    ``FiscalSign`` (with ``RegNumber`` when sent), else ``DocumentNumber`` with the
    register (``RegNumber``, ``FiscalNumber`` or ``DeviceNumber``). Only when neither is
    sent does it fall back to ``TransactionId`` (else ``DocumentNumber``) with ``Type``
    (docs/gateway.md §10). The qualifier names the scheme, so that keys of two schemes
    never meet."""
    def text(name: str) -> str:
        return fields.get(name, "").strip()

    fiscal_sign = text("FiscalSign")
    if fiscal_sign:
        return (fiscal_sign, f"FiscalSign:{text('RegNumber')}")
    document = text("DocumentNumber")
    register = next((text(n) for n in _RECEIPT_REGISTER_FIELDS if text(n)), "")
    if document and register:
        return (document, f"Document:{register}")
    return (text("TransactionId") or document, f"Type:{text('Type')}")


def parse_notification(
    type: NotificationType | str,
    raw: bytes | Mapping[str, str],
    *,
    encoding: str = "utf-8",
    content_type: str | None = None,
) -> Notification:
    """Parse a notification of ``type`` from its raw body (or already-decoded fields).

    Amounts become ``Decimal``, dates aware UTC ``datetime``, ``Data`` parsed JSON.
    Raises :class:`~checkout_kit.errors.MalformedNotificationError` (with ``field``)
    for a missing required field or a value of the wrong shape.
    """
    try:
        kind = type if isinstance(type, NotificationType) else NotificationType.parse(type)
    except ValueError as exc:
        raise MalformedNotificationError(str(exc)) from None
    fields = (
        parse_fields(raw, encoding=encoding, content_type=content_type)
        if isinstance(raw, bytes)
        else dict(raw)
    )
    for name in _REQUIRED[kind]:
        if not fields.get(name, "").strip():
            raise MalformedNotificationError(f"{name} is required", name)
    one_of = _REQUIRED_ONE_OF.get(kind, ())
    if one_of and not any(fields.get(name, "").strip() for name in one_of):
        raise MalformedNotificationError(
            f"a {kind.value} needs {' or '.join(one_of)}", one_of[0])
    # A Receipt's fields are UNCONFIRMED (docs/gateway.md §10): one of an unexpected
    # shape stays text in ``fields`` (its typed attribute None) instead of refusing it.
    lenient = kind in _LENIENT
    values: dict[str, Any] = {}
    for attr, (wire, convert) in _FIELDS.items():
        text = fields.get(wire)
        if text is None or text == "":
            continue
        try:
            values[attr] = convert(text)
        except (ValueError, ArithmeticError, InvalidOperation):
            if lenient:
                continue
            raise MalformedNotificationError(f"{wire} is not valid", wire) from None
    return Notification(type=kind, fields=fields, **values)
