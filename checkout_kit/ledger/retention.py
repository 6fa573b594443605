"""Audit retention: after a retention period a notification's body is kept masked.

The audit log (``checkout_notifications``) keeps each notification request's raw bytes
so that it can be checked again or replayed. Those bytes carry the payer's e-mail,
name, IP address and card token. Once a notification is older than the shop's retention
period (``CHECKOUT_KIT_NOTIFICATION_RETENTION_DAYS``, ``flask checkout notifications
purge``), :func:`purge_notifications` replaces its body by :func:`mask_body`'s copy and
sets ``purged_at``; :func:`mask_error` hides what its ``error`` quotes. The row itself
stays: its ``key``, ``outcome`` and
``checkout_notification_keys`` row are what keep a late redelivery from being applied
twice, and the masked copy keeps every field that key is made of
(:func:`checkout_kit.webhooks.notification_key`), so it still reads as the same
notification. A purged row cannot be replayed: its signature no longer matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Final
from urllib.parse import quote_plus, unquote_plus, unquote_to_bytes

import sqlalchemy as sa

from .. import jsoncodec
from ..errors import InvalidRequestError, JSONCodecError
from ..models import mask_token
from .schema import notifications
from .store import Ledger, mask_email

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "HIDDEN",
    "KEPT_FIELDS",
    "mask_body",
    "mask_error",
    "purge_notifications",
]

#: The retention period when the shop sets none.
DEFAULT_RETENTION_DAYS: Final = 90

#: What a hidden value becomes: empty, as a field sent without a value, so that the
#: masked copy still parses as a notification (``Data`` must be JSON, ``IpLatitude`` a
#: number...).
HIDDEN: Final = ""

#: Fields kept as sent: identifiers, amounts, statuses and dates, everything
#: :func:`~checkout_kit.webhooks.notification_key` reads, and the card's first six and
#: last four digits (which PCI DSS allows to be shown). Every other field's value is
#: hidden (emptied), the payer's name, IP address, ``Data``, descriptions and card
#: expiry and id included; an ``Email`` (and an ``AccountId`` that is one) is masked,
#: a ``Token`` shortened, so that the copy still tells whose notification it was.
KEPT_FIELDS: Final = frozenset({
    "TransactionId", "PaymentTransactionId", "Amount", "Currency", "PaymentAmount",
    "PaymentCurrency", "DateTime", "CardFirstSix", "CardLastFour", "CardType", "TestMode",
    "InvoiceId", "SubscriptionId", "Status", "OperationType", "GatewayName", "AuthCode",
    "Rrn", "Reason", "ReasonCode", "CardProduct", "IssuerBankCountry", "PaymentMethod",
    "TrInitiatorCode", "PaymentScheduled",
    # Recurrent
    "Id", "RequireConfirmation", "StartDate", "Interval", "Period", "MaxPeriods",
    "SuccessfulTransactionsNumber", "FailedTransactionsNumber", "LastTransactionDate",
    "NextTransactionDate",
    # Receipt (its fields are UNCONFIRMED, docs/gateway.md §10)
    "DocumentNumber", "SessionNumber", "FiscalSign", "DeviceNumber", "RegNumber",
    "FiscalNumber", "Inn", "Type", "Ofd",
})


def _account(value: str) -> str:
    # The shop's own customer id, unless it is an e-mail address.
    return (mask_email(value) or HIDDEN) if "@" in value else value


def _email(value: str) -> str:
    return mask_email(value) or HIDDEN


def _token(value: str) -> str:
    return mask_token(value) or HIDDEN


#: Fields masked rather than hidden.
_MASKERS: Final[Mapping[str, Callable[[str], str]]] = {
    "Email": _email, "AccountId": _account, "Token": _token,
}
#: A field name as the gateway writes them; a part with any other name (a name made
#: of a value, in a forged body) is left out, and so is a bare word.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def _masked_value(name: str, value: str) -> str:
    if name in KEPT_FIELDS:
        return value
    masker = _MASKERS.get(name)
    return HIDDEN if masker is None else masker(value)


def _text(raw: bytes) -> tuple[str, str]:
    """A percent-decoded form value and its codec: UTF-8, else Windows-1251 (the
    gateway's two encodings); a value neither can read is hidden anyway."""
    decoded = unquote_to_bytes(raw.replace(b"+", b" "))
    for codec in ("utf-8", "cp1251"):
        try:
            return decoded.decode(codec), codec
        except UnicodeDecodeError:
            continue
    return HIDDEN, "utf-8"  # 0x98 is no Windows-1251 character


def _mask_form(body: bytes) -> bytes:
    parts: list[bytes] = []
    for part in body.split(b"&"):
        if not part:
            continue
        raw_name, sep, raw_value = part.partition(b"=")
        name = unquote_plus(raw_name.decode("ascii", errors="replace"))
        if not _NAME.fullmatch(name):
            continue
        if name in KEPT_FIELDS:
            parts.append(part)  # as sent, byte for byte
        elif sep:
            value, codec = _text(raw_value)
            # In the body's own encoding, like the fields kept as sent.
            masked = quote_plus(_masked_value(name, value), safe="*@", encoding=codec,
                                errors="replace")
            parts.append(raw_name + b"=" + masked.encode("ascii"))
        # A bare word (no "=") that is no field of ours is left out too.
    return b"&".join(parts)


def _mask_json(body: bytes) -> bytes:
    """The masked copy of a JSON body; empty when the body is no JSON object, or when
    its masked copy cannot be written back (a kept number out of range, ``1e400``, or
    text with a lone surrogate, ``"\\ud800"``: anyone can send such a body to a
    notification route, and it must never stop a purge)."""
    try:
        parsed = jsoncodec.loads(body)
    except JSONCodecError:
        return b""
    if not isinstance(parsed, dict):
        return b""
    masked: dict[str, Any] = {}
    for name, value in parsed.items():
        if not _NAME.fullmatch(name):
            continue
        if name in KEPT_FIELDS:
            masked[name] = value
        elif isinstance(value, str):
            masked[name] = _masked_value(name, value)
        else:
            masked[name] = HIDDEN
    try:
        return jsoncodec.dumps_bytes(masked)
    except (ValueError, TypeError):  # JSONCodecError (and MoneyError) are ValueErrors
        return b""


def mask_body(body: bytes, content_type: str | None = None) -> bytes:
    """A copy of a notification body (or GET query string) with the payer's data
    masked: :data:`KEPT_FIELDS` as sent, ``Email`` (and an e-mail ``AccountId``) as
    ``j***@example.com``, ``Token`` shortened, every other value emptied, and parts
    whose name is no field name left out. A JSON body (``content_type`` says so) stays
    JSON; one that is not a JSON object becomes empty.
    """
    if content_type and "json" in content_type.lower():
        return _mask_json(body)
    return _mask_form(body)


def _content_type(headers_json: str) -> str | None:
    try:
        headers = jsoncodec.loads(headers_json)
    except JSONCodecError:
        return None
    if not isinstance(headers, dict):
        return None
    value = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    return value if isinstance(value, str) else None


#: A value the error text quotes (``repr`` of a field name or value from the body).
_QUOTED: Final = re.compile(r"'(?:[^'\\]|\\.)*'" + r'|"(?:[^"\\]|\\.)*"')
_EMAIL_LIKE: Final = re.compile(r"[^\s'\"<>@]+@[^\s'\"<>@]+")


def mask_error(error: str | None) -> str | None:
    """The audit row's ``error`` as a purge leaves it: every quoted value and every
    e-mail address is hidden. A refused body's error quotes what the sender chose (a
    repeated field's name can be anything, an e-mail too), and the masked body no
    longer holds it either; the sentence stays, so the row still tells why."""
    if error is None:
        return None
    return _EMAIL_LIKE.sub("***", _QUOTED.sub("'***'", error))


def purge_notifications(ledger: Ledger, *, older_than: timedelta, batch: int = 500) -> int:
    """Mask the body of every notification received more than ``older_than`` ago (by
    the ledger's clock) and not purged yet; returns how many were masked.

    Works in transactions of ``batch`` rows, so a large log never holds the database
    long; safe to run from two places at once (a row is purged once). Raises
    :class:`~checkout_kit.errors.InvalidRequestError` (``field="older_than"``) for a
    negative period."""
    if older_than < timedelta(0):
        raise InvalidRequestError("older_than must not be negative", "older_than")
    now = ledger.now()
    cutoff = now - older_than
    purged = 0
    while True:
        with ledger.engine.begin() as conn:
            rows = conn.execute(
                sa.select(notifications.c.id, notifications.c.body, notifications.c.headers,
                          notifications.c.error)
                .where(notifications.c.received_at < cutoff,
                       notifications.c.purged_at.is_(None))
                .order_by(notifications.c.id).limit(batch)
            ).mappings().all()
            for row in rows:
                masked = mask_body(bytes(row["body"]), _content_type(row["headers"]))
                purged += conn.execute(
                    notifications.update()
                    .where(notifications.c.id == row["id"], notifications.c.purged_at.is_(None))
                    .values(body=masked, error=mask_error(row["error"]), purged_at=now)
                ).rowcount
        if len(rows) < batch:
            return purged
