"""Subscriptions (recurring payments) on the virtual clock (docs/gateway.md §3.5, §6.2).

Schedule: charge *k* (from 0) is due at ``StartDate + k × Period × Interval``
(calendar months for ``Month``, clamped to the month's last day and always counted
from ``StartDate`` so that 31 January → 28/29 February → 31 March). A failed charge
is retried 24 hours later; three failures in a row reject the subscription.
``MaxPeriods`` successful charges expire it. Statuses move between ``Active``,
``PastDue``, ``Cancelled``, ``Rejected`` and ``Expired``; each change made by the
schedule (not by an API call) sends a Recurrent notification.

A payment whose ``JsonData`` holds ``cloudPayments.recurrent`` (any casing of
``cloudpayments``) with ``interval`` and ``period`` creates a subscription for its
``AccountId`` starting one period after the payment, as the widget expects.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ...errors import MoneyError
from ...models import Interval, SubscriptionStatus
from ...money import parse_amount
from ...notifications import NotificationType
from . import render
from .params import Params, PaymentRequest, RequestError
from .records import Subscription, TokenRecord, Transaction, TxStatus

if TYPE_CHECKING:
    from .terminal import Terminal

__all__ = ["Subscriptions", "add_interval"]

INTERVALS = {interval.value.lower(): interval for interval in Interval}
RETRY_AFTER = timedelta(hours=24)
MAX_FAILURES = 3
_LIVE = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)
#: How long a due charge is left to the worker that took it before another may.
CHARGE_LEASE = timedelta(minutes=5)


def add_interval(start: datetime, interval: str, count: int) -> datetime:
    """``start`` moved by ``count`` intervals (calendar months for ``Month``)."""
    if interval == Interval.DAY:
        return start + timedelta(days=count)
    if interval == Interval.WEEK:
        return start + timedelta(weeks=count)
    months = start.month - 1 + count
    year, month = start.year + months // 12, months % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def _interval(value: str | None) -> str:
    if value is None:
        raise RequestError("Interval is required")
    try:
        return INTERVALS[value.strip().lower()]
    except KeyError:
        raise RequestError("Interval must be Day, Week or Month") from None


class Subscriptions:
    """The subscription operations of one terminal."""

    def __init__(self, sandbox: Terminal) -> None:
        self.sandbox = sandbox

    @property
    def _store(self) -> dict[str, Subscription]:
        return self.sandbox.state.subscriptions

    def _get(self, sub_id: str) -> Subscription:
        sub = self._store.get(sub_id)
        if sub is None or sub.public_id != self.sandbox.public_id:
            raise RequestError("Subscription not found")
        return sub

    def _ok(self, sub: Subscription) -> dict[str, Any]:
        return {"Success": True, "Message": None, "Model": render.subscription_model(sub)}

    @staticmethod
    def _slot(sub: Subscription) -> datetime:
        return add_interval(sub.start_date, sub.interval, sub.successful * sub.period)

    # ------------------------------------------------------------------ API

    def create(self, p: Params) -> dict[str, Any]:
        """``/subscriptions/create``."""
        sb = self.sandbox
        token = p.required_text("Token", max_length=255)
        account_id = p.required_text("AccountId", max_length=255)
        currency = p.currency()
        amount = p.required_amount("Amount", currency)
        start = p.datetime("StartDate", required=True)
        interval = _interval(p.text("Interval", max_length=16))
        period = p.required_integer("Period", maximum=10_000)
        max_periods = p.integer("MaxPeriods", minimum=1, maximum=1_000_000)
        assert start is not None
        with sb.lock:
            record = sb.state.tokens.get(token)
            if record is None or record.public_id != sb.public_id:
                raise RequestError("Token not found")
            if start < sb.now() - timedelta(minutes=5):
                raise RequestError("StartDate must be in the future")
            sub = Subscription(
                id="sc_" + sb.random_hex(29), public_id=sb.public_id, account_id=account_id,
                token=token, description=p.text("Description"),
                email=p.text("Email", max_length=255), amount=amount, currency=currency,
                require_confirmation=p.flag("RequireConfirmation"), start_date=start,
                interval=interval, period=period, max_periods=max_periods,
                culture_name=p.text("CultureName", max_length=16), status=SubscriptionStatus.ACTIVE,
                created=sb.now(), next_transaction_date=start,
                receipt=p.json_value("CustomerReceipt"),
            )
            sb.state.add(sub)
            return self._ok(sub)

    def get(self, p: Params) -> dict[str, Any]:
        """``/subscriptions/get``."""
        with self.sandbox.lock:
            return self._ok(self._get(p.required_text("Id", max_length=64)))

    def find(self, p: Params) -> dict[str, Any]:
        """``/subscriptions/find`` by ``accountId``."""
        account_id = p.required_text("AccountId", max_length=255)
        with self.sandbox.lock:
            rows = [s for s in self._store.values()
                    if s.account_id == account_id and s.public_id == self.sandbox.public_id]
            return {"Success": True, "Message": None,
                    "Model": [render.subscription_model(s) for s in
                              sorted(rows, key=lambda s: s.created)]}

    def update(self, p: Params) -> dict[str, Any]:
        """``/subscriptions/update``; reactivates a finished or cancelled one."""
        sb = self.sandbox
        with sb.lock:
            sub = self._get(p.required_text("Id", max_length=64))
            currency = p.currency(default=sub.currency)
            amount = p.amount("Amount", currency, required=False)
            start = p.datetime("StartDate")
            interval = p.text("Interval", max_length=16)
            interval = None if interval is None else _interval(interval)
            period = p.integer("Period", minimum=1, maximum=10_000)
            max_periods = p.integer("MaxPeriods", minimum=1, maximum=1_000_000)
            # Every field is read (and refused) before the subscription changes at all.
            description = p.text("Description")
            email = p.text("Email", max_length=255)
            require_confirmation = p.flag("RequireConfirmation")
            culture_name = p.text("CultureName", max_length=16)
            receipt = p.json_value("CustomerReceipt")
            if "Description" in p:
                sub.description = description
            if "Email" in p:
                sub.email = email
            if "RequireConfirmation" in p:
                sub.require_confirmation = require_confirmation
            if "CultureName" in p:
                sub.culture_name = culture_name
            if "CustomerReceipt" in p:
                sub.receipt = receipt
            sub.currency = currency
            if amount is not None:
                sub.amount = amount
            if interval is not None:
                sub.interval = interval
            if period is not None:
                sub.period = period
            if max_periods is not None:
                sub.max_periods = max_periods
            if start is not None:
                # A new start date begins a new schedule.
                sub.start_date, sub.successful = start, 0
            if sub.status not in _LIVE:
                sub.status, sub.failed = SubscriptionStatus.ACTIVE, 0
            if sub.max_periods is not None and sub.successful >= sub.max_periods:
                sub.status, sub.next_transaction_date = SubscriptionStatus.EXPIRED, None
            else:
                sub.next_transaction_date = max(self._slot(sub), sb.now())
            sb.state.touch(sub)
            return self._ok(sub)

    def cancel(self, p: Params) -> dict[str, Any]:
        """``/subscriptions/cancel`` (no Recurrent notification: an API change)."""
        with self.sandbox.lock:
            sub = self._get(p.required_text("Id", max_length=64))
            sub.status, sub.next_transaction_date = SubscriptionStatus.CANCELLED, None
            self.sandbox.state.touch(sub)
        return {"Success": True, "Message": None}

    # ------------------------------------------------------------------ from a payment

    @staticmethod
    def instruction(json_data: Any) -> Mapping[str, Any] | None:
        """The ``cloudPayments.recurrent`` object of a payment's ``JsonData``."""
        if not isinstance(json_data, Mapping):
            return None
        for key, value in json_data.items():
            if str(key).lower() == "cloudpayments" and isinstance(value, Mapping):
                recurrent = next((v for k, v in value.items() if str(k).lower() == "recurrent"),
                                 None)
                if isinstance(recurrent, Mapping):
                    return recurrent
        return None

    def from_payment(self, tx: Transaction, recurrent: Mapping[str, Any]) -> None:
        """Create the subscription a widget payment asked for (lock held). Invalid
        instructions are noted on the transaction, never fail the payment."""
        sb = self.sandbox
        p = Params(recurrent)
        try:
            if not tx.account_id or not tx.token:
                raise RequestError("AccountId is required for a subscription")
            interval = _interval(p.text("interval", max_length=16))
            period = p.required_integer("period", maximum=10_000)
            max_periods = p.integer("maxPeriods", minimum=1, maximum=1_000_000)
            amount: Decimal = tx.amount
            if "amount" in p:
                amount = parse_amount(p.raw("amount"), tx.currency)
            start = p.datetime("startDate") or add_interval(tx.created, interval, period)
        except (RequestError, MoneyError) as exc:
            tx.detail = f"no subscription created: {exc}"
            return
        sub = Subscription(
            id="sc_" + sb.random_hex(29), public_id=sb.public_id, account_id=tx.account_id,
            token=tx.token, description=tx.description, email=tx.email, amount=amount,
            currency=tx.currency, require_confirmation=tx.two_stage, start_date=start,
            interval=interval, period=period, max_periods=max_periods,
            culture_name=tx.culture_name, status=SubscriptionStatus.ACTIVE, created=sb.now(),
            next_transaction_date=start,
            receipt=p.json_value("customerReceipt"), invoice_id=tx.invoice_id,
        )
        sb.state.add(sub)
        tx.subscription_id = sub.id

    # ------------------------------------------------------------------ schedule

    def due_times(self) -> list[datetime]:
        """When live subscriptions charge next (lock held)."""
        return [s.next_transaction_date for s in self._store.values()
                if s.status in _LIVE and s.next_transaction_date is not None]

    def due(self, now: datetime) -> list[str]:
        """The ids of the live subscriptions whose charge is due at ``now``, each
        claimed until :data:`CHARGE_LEASE` from now (a change that is written), so that
        another worker, in this process or another on the same state file, does not
        charge it too before :meth:`charged` moves it on."""
        with self.sandbox.lock:
            due = [s for s in self._store.values()
                   if s.status in _LIVE and s.next_transaction_date is not None
                   and s.next_transaction_date <= now
                   and (s.charging_until is None or s.charging_until <= now)]
            for sub in due:
                sub.charging_until = now + CHARGE_LEASE
                self.sandbox.state.touch(sub)
            return [s.id for s in due]

    def _set_status(self, sub: Subscription, status: SubscriptionStatus) -> None:
        if sub.status != status:
            sub.status = status
            self.sandbox.outbox.enqueue(
                NotificationType.RECURRENT, render.subscription_fields(sub),
                subscription_id=sub.id,
            )

    def charge_for(self, sub_id: str) -> tuple[Subscription, TokenRecord | None, PaymentRequest]:
        """The subscription, its saved card (``None`` when gone) and the payment its due
        charge makes (a token payment; hand its answer to :meth:`charged`)."""
        with self.sandbox.lock:
            sub = self._store[sub_id]
            # The charges of a subscription a payment started carry that payment's
            # InvoiceId (docs/gateway.md §3.5): a shop's ledger finds them on a payment
            # it owns, already paid, and must not take them for a second charge.
            req = PaymentRequest(
                amount=sub.amount, currency=sub.currency, account_id=sub.account_id,
                invoice_id=sub.invoice_id,
                email=sub.email, description=sub.description, culture_name=sub.culture_name,
            )
            return sub, self.sandbox.state.tokens.get(sub.token), req

    def charged(self, sub_id: str, envelope: Mapping[str, Any] | None) -> None:
        """Move a subscription on after its charge answered ``envelope`` (``None``: it
        could not be made)."""
        sb = self.sandbox
        with sb.lock:
            sub = self._store[sub_id]
            now = sb.now()
            sub.charging_until = None
            sub.last_transaction_date = now
            model = envelope.get("Model") if envelope else None
            status = model.get("Status") if isinstance(model, Mapping) else None
            if status in (TxStatus.AUTHORIZED, TxStatus.COMPLETED):
                sub.successful, sub.failed = sub.successful + 1, 0
                if sub.max_periods is not None and sub.successful >= sub.max_periods:
                    sub.next_transaction_date = None
                    self._set_status(sub, SubscriptionStatus.EXPIRED)
                else:
                    sub.next_transaction_date = self._slot(sub)
                    self._set_status(sub, SubscriptionStatus.ACTIVE)
            else:
                sub.failed += 1
                if sub.failed >= MAX_FAILURES:
                    sub.next_transaction_date = None
                    self._set_status(sub, SubscriptionStatus.REJECTED)
                else:
                    sub.next_transaction_date = now + RETRY_AFTER
                    self._set_status(sub, SubscriptionStatus.PAST_DUE)
            sb.state.touch(sub)
