"""The sandbox's state: records as dataclasses, kept in memory, optionally in SQLite.

Card data is kept as the gateway shows it (first six, last four, expiry, brand);
the sandbox never stores a card number or a CVV.

Persistence writes every record as JSON into one SQLite table (``records``) after
each change; on start the file is read back. It is meant for a long-running
``checkout-kit sandbox`` that should survive a restart, not for concurrent writers.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sqlite3
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .masking import (
    mask_email,
    mask_ip,
    mask_meta,
    mask_name,
    mask_phone,
    mask_text,
    mask_token_keys,
    mask_token_text,
    masked_repr,
)

__all__ = [
    "Attempt",
    "CardInfo",
    "Delivery",
    "NotificationSetting",
    "Order",
    "SandboxState",
    "StoredResponse",
    "Subscription",
    "TokenRecord",
    "Transaction",
    "TxStatus",
    "TxType",
]


class TxStatus(enum.StrEnum):
    """Transaction statuses (docs/gateway.md §3.4)."""

    AWAITING_AUTHENTICATION = "AwaitingAuthentication"
    AUTHORIZED = "Authorized"
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"
    DECLINED = "Declined"


#: ``StatusCode`` of each status (2, 3, 5 observed; 1 and 4 UNCONFIRMED).
STATUS_CODES: dict[TxStatus, int] = {
    TxStatus.AWAITING_AUTHENTICATION: 1,
    TxStatus.AUTHORIZED: 2,
    TxStatus.COMPLETED: 3,
    TxStatus.CANCELLED: 4,
    TxStatus.DECLINED: 5,
}


class TxType(enum.IntEnum):
    """The transaction model's ``Type``."""

    PAYMENT = 0
    REFUND = 1
    CARD_PAYOUT = 2


@dataclass
class CardInfo:
    """What the gateway shows of a card (never the number or the CVV)."""

    first_six: str
    last_four: str
    exp_month: int
    exp_year: int
    card_type: str
    card_type_code: int

    @property
    def exp_date(self) -> str:
        """``MM/YY``."""
        return f"{self.exp_month:02d}/{self.exp_year % 100:02d}"

    @property
    def mask(self) -> str:
        """``424242******4242`` (middle length assumes 16 digits, like the gateway)."""
        return f"{self.first_six}******{self.last_four}"


@masked_repr(email=mask_email, name=mask_name, ip_address=mask_ip, token=mask_token_text,
             json_data=mask_text, pa_req=mask_text)
@dataclass
class Transaction:
    """A payment or a refund."""

    id: int
    public_id: str
    type: TxType
    amount: Decimal
    currency: str
    status: TxStatus
    created: datetime
    two_stage: bool = False
    card: CardInfo | None = None
    reason_code: int = 0
    invoice_id: str | None = None
    account_id: str | None = None
    email: str | None = None
    description: str | None = None
    name: str | None = None
    ip_address: str | None = None
    culture_name: str | None = None
    payment_url: str | None = None
    json_data: Any = None
    auth_date: datetime | None = None
    confirm_date: datetime | None = None
    auth_amount: Decimal | None = None
    refunded: Decimal = Decimal(0)
    original_transaction_id: int | None = None
    token: str | None = None
    save_card: bool = False
    subscription_id: str | None = None
    order_id: str | None = None
    pa_req: str | None = None
    three_ds_callback_id: str | None = None
    #: where ThreeDSCallback may redirect, fixed when the payment was made
    success_url: str | None = None
    fail_url: str | None = None
    #: the outcome waiting behind 3-D Secure: (ReasonCode, token outcome)
    pending_reason: int | None = None
    pending_token_reason: int | None = None
    post3ds_response: dict[str, Any] | None = None
    tr_initiator_code: int | None = None
    #: why the sandbox declined it, for the inspector (never sent to clients)
    detail: str | None = None


@masked_repr(token=mask_token_text)
@dataclass
class TokenRecord:
    """A saved card."""

    token: str
    public_id: str
    account_id: str | None
    card: CardInfo
    created: datetime
    token_reason: int = 0


@masked_repr(token=mask_token_text, email=mask_email, receipt=mask_text)
@dataclass
class Subscription:
    """A recurring payment."""

    id: str
    public_id: str
    account_id: str
    token: str
    description: str | None
    email: str | None
    amount: Decimal
    currency: str
    require_confirmation: bool
    start_date: datetime
    interval: str
    period: int
    max_periods: int | None
    culture_name: str | None
    status: str
    created: datetime
    successful: int = 0
    failed: int = 0
    last_transaction_date: datetime | None = None
    next_transaction_date: datetime | None = None
    receipt: Any = None


@masked_repr(email=mask_email, phone=mask_phone, json_data=mask_text)
@dataclass
class Order:
    """An invoice with a payment page."""

    id: str
    number: int
    public_id: str
    amount: Decimal
    currency: str
    description: str
    created: datetime
    status: str = "Created"
    email: str | None = None
    phone: str | None = None
    require_confirmation: bool = False
    invoice_id: str | None = None
    account_id: str | None = None
    culture_name: str | None = None
    json_data: Any = None
    success_redirect_url: str | None = None
    fail_redirect_url: str | None = None
    payment_date: datetime | None = None
    transaction_id: int | None = None
    url: str | None = None


@dataclass
class NotificationSetting:
    """``/site/notifications/{Type}`` settings."""

    type: str
    is_enabled: bool = False
    address: str | None = None
    http_method: str = "GET"
    encoding: str = "UTF8"
    format: str = "CloudPayments"


@dataclass
class Attempt:
    """One try to deliver a notification."""

    at: datetime
    ok: bool
    status_code: int | None = None
    error: str | None = None
    response: str | None = None


@masked_repr(body=mask_text)
@dataclass
class Delivery:
    """One notification to one address, with its attempts."""

    id: int
    type: str
    address: str
    http_method: str
    encoding: str
    body: str
    headers: dict[str, str]
    created: datetime
    state: str = "pending"  # pending | delivered | failed (gave up) | answered (Check)
    next_attempt_at: datetime | None = None
    attempts: list[Attempt] = field(default_factory=list)
    transaction_id: int | None = None
    subscription_id: str | None = None
    copy: int = 1


@masked_repr(body=mask_text)
@dataclass
class StoredResponse:
    """A response kept for ``X-Request-ID`` replay."""

    status: int
    body: str
    headers: dict[str, str]
    created: datetime


# --------------------------------------------------------------------------- codec

_COLLECTIONS: dict[str, type[Any]] = {
    "transactions": Transaction,
    "tokens": TokenRecord,
    "subscriptions": Subscription,
    "orders": Order,
    "notification_settings": NotificationSetting,
    "deliveries": Delivery,
    "idempotency": StoredResponse,
}


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, Mapping):  # dicts, and models kept as JSON text (wire.JSONObject)
        # A key of the shop's own JSON that starts with "$" gets one more, so that
        # {"$decimal": "oops"} in JsonData is never read back as one of the tags above.
        return {_escape(str(k)): _to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(v) for v in value]
    return value


def _from_plain(value: Any) -> Any:
    """Undo :func:`_to_plain` for values whose type is not declared (``Any``)."""
    if isinstance(value, dict):
        if set(value) == {"$decimal"}:
            return Decimal(value["$decimal"])
        if set(value) == {"$datetime"}:
            return datetime.fromisoformat(value["$datetime"])
        return {k[1:] if k[:2] == "$$" else k: _from_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    return value


def _escape(key: str) -> str:
    return "$" + key if key[:1] == "$" else key


def _decode(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(inner[0], value) if len(inner) == 1 else _from_plain(value)
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_decode(item, v) for v in value]
    if origin is dict:
        return _from_plain(value)
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            return _build(tp, value)
        if issubclass(tp, enum.Enum):
            return tp(value)
    return _from_plain(value)


def _build(cls: type[Any], data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: _decode(hints[k], v) for k, v in data.items() if k in names})


# --------------------------------------------------------------------------- state


@masked_repr(meta=mask_meta, tokens=mask_token_keys)
@dataclass
class SandboxState:
    """Everything the sandbox remembers."""

    transactions: dict[int, Transaction] = field(default_factory=dict)
    tokens: dict[str, TokenRecord] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    notification_settings: dict[str, NotificationSetting] = field(default_factory=dict)
    deliveries: dict[int, Delivery] = field(default_factory=dict)
    idempotency: dict[str, StoredResponse] = field(default_factory=dict)
    meta: dict[str, Any] = field(
        default_factory=lambda: {"next_transaction_id": 1_000_001, "next_delivery_id": 1,
                                 "next_order_number": 1}
    )

    def next_id(self, counter: str) -> int:
        """Take the next value of a counter in :attr:`meta`."""
        value = int(self.meta[counter])
        self.meta[counter] = value + 1
        return value

    # ------------------------------------------------------------------ SQLite

    def save(self, path: str | Path) -> None:
        """Write everything to the SQLite file at ``path`` (one transaction)."""
        with sqlite3.connect(path) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, key TEXT NOT NULL, "
                "data TEXT NOT NULL, PRIMARY KEY (kind, key))"
            )
            db.execute("DELETE FROM records")
            rows = [
                (kind, str(key), json.dumps(_to_plain(record)))
                for kind in _COLLECTIONS
                for key, record in getattr(self, kind).items()
            ]
            rows.append(("meta", "meta", json.dumps(_to_plain(self.meta))))
            db.executemany("INSERT INTO records (kind, key, data) VALUES (?, ?, ?)", rows)
        db.close()

    @classmethod
    def load(cls, path: str | Path) -> SandboxState:
        """Read a file written by :meth:`save`; an absent file gives an empty state."""
        state = cls()
        if not Path(path).exists():
            return state
        with sqlite3.connect(path) as db:
            try:
                rows = db.execute("SELECT kind, key, data FROM records").fetchall()
            except sqlite3.OperationalError:
                rows = []
        db.close()
        for kind, key, data in rows:
            plain = json.loads(data)
            if kind == "meta":
                state.meta.update(_from_plain(plain))
            elif kind in _COLLECTIONS:
                record = _build(_COLLECTIONS[kind], plain)
                store = getattr(state, kind)
                store[int(key) if kind in ("transactions", "deliveries") else key] = record
        return state
