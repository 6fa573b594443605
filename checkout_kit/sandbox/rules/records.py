"""The sandbox's state: its records as dataclasses, held in memory.

Card data is kept as the gateway shows it (first six, last four, expiry, brand);
the sandbox never stores a card number or a CVV.

:class:`SandboxState` also remembers which records changed since the last
:meth:`~SandboxState.take_changes`, so that persistence
(:mod:`checkout_kit.sandbox.store`) writes those and nothing else. Every change to a
record goes with a :meth:`~SandboxState.touch` of it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from ...models import TransactionStatus as TxStatus
from ...models import mask_email, mask_ip, mask_name, mask_phone, mask_token
from .masking import mask_meta, mask_text, masked_repr

__all__ = [
    "COLLECTIONS",
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
    #: the gateway's id of the card (the same card, the same id: ``CardId``)
    card_id: str | None = None

    @property
    def exp_date(self) -> str:
        """``MM/YY``."""
        return f"{self.exp_month:02d}/{self.exp_year % 100:02d}"

    @property
    def mask(self) -> str:
        """``424242******4242`` (middle length assumes 16 digits, like the gateway)."""
        return f"{self.first_six}******{self.last_four}"


@masked_repr(email=mask_email, name=mask_name, ip_address=mask_ip, token=mask_token,
             json_data=mask_text, pa_req=mask_text, three_ds_callback_id=mask_token)
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
    payment_scheduled: bool | None = None
    #: the acquirer's reference, given when the card network was asked
    rrn: str | None = None
    #: why the sandbox declined it, for the inspector (never sent to clients)
    detail: str | None = None


@masked_repr(token=mask_token)
@dataclass
class TokenRecord:
    """A saved card."""

    token: str
    public_id: str
    account_id: str | None
    card: CardInfo
    created: datetime
    token_reason: int = 0


@masked_repr(token=mask_token, email=mask_email, receipt=mask_text)
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
    #: the InvoiceId of the payment that started it (a widget payment's), which its
    #: charges carry (docs/gateway.md §3.5); ``None`` for one created through the API
    invoice_id: str | None = None
    #: until when a worker is charging it (Subscriptions.due); ``None`` otherwise
    charging_until: datetime | None = None


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
    #: until when a ``sending`` delivery is its claimer's (Outbox.claim_due)
    claimed_until: datetime | None = None


@masked_repr(body=mask_text)
@dataclass
class StoredResponse:
    """A response kept for ``X-Request-ID`` replay."""

    status: int
    body: str
    headers: dict[str, str]
    created: datetime


# --------------------------------------------------------------------------- state


def _mask_token_keys(records: Mapping[str, Any]) -> str:
    # The saved cards are keyed by their token: mask the keys, as the records do.
    return repr({mask_token(k): v for k, v in records.items()})


#: Record class -> (its collection in :class:`SandboxState`, the field that is its key).
_PLACES: dict[type[Any], tuple[str, str]] = {
    Transaction: ("transactions", "id"),
    TokenRecord: ("tokens", "token"),
    Subscription: ("subscriptions", "id"),
    Order: ("orders", "id"),
    NotificationSetting: ("notification_settings", "type"),
    Delivery: ("deliveries", "id"),
}
#: Collection -> the class of its records (``idempotency`` is keyed by request id).
COLLECTIONS: dict[str, type[Any]] = {
    **{collection: cls for cls, (collection, _) in _PLACES.items()},
    "idempotency": StoredResponse,
}


@masked_repr(meta=mask_meta, tokens=_mask_token_keys)
@dataclass
class SandboxState:
    """Everything the sandbox remembers, and which of it changed."""

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
    #: ``(collection, key)`` of each record changed (or removed) since the last
    #: :meth:`take_changes`; ``("meta", "meta")`` for :attr:`meta`.
    changed: set[tuple[str, Any]] = field(default_factory=set, repr=False, compare=False)

    def next_id(self, counter: str) -> int:
        """Take the next value of a counter in :attr:`meta`."""
        value = int(self.meta[counter])
        self.meta[counter] = value + 1
        self.changed.add(("meta", "meta"))
        return value

    def touch(self, record: Any) -> None:
        """Note that ``record`` (a transaction, token, subscription, order, notification
        setting or delivery, new or changed) must be written."""
        collection, key = _PLACES[type(record)]
        self.changed.add((collection, getattr(record, key)))

    def add(self, record: Any) -> None:
        """Store a new record in its collection and :meth:`touch` it."""
        collection, field_name = _PLACES[type(record)]
        key = getattr(record, field_name)
        getattr(self, collection)[key] = record
        self.changed.add((collection, key))

    def remember_response(self, key: str, response: StoredResponse) -> None:
        """Keep an answer for ``X-Request-ID`` replay."""
        self.idempotency[key] = response
        self.changed.add(("idempotency", key))

    def forget_response(self, key: str) -> None:
        """Drop a replayable answer (its time is over)."""
        self.idempotency.pop(key, None)
        self.changed.add(("idempotency", key))

    def clear_records(self) -> int:
        """Remove every record but the notification settings (the counters in
        :attr:`meta` stay too); returns how many."""
        removed = 0
        for collection in COLLECTIONS.keys() - {"notification_settings"}:
            records: dict[Any, Any] = getattr(self, collection)
            self.changed.update((collection, key) for key in records)
            removed += len(records)
            records.clear()
        return removed

    def take_changes(self) -> set[tuple[str, Any]]:
        """The changes noted so far, which are forgotten here (see :meth:`restore_changes`)."""
        changes, self.changed = self.changed, set()
        return changes

    def restore_changes(self, changes: set[tuple[str, Any]]) -> None:
        """Put back changes that could not be written, to be written with the next ones."""
        self.changed |= changes
