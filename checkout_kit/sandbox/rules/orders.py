"""Orders (invoices with a payment link, docs/gateway.md §3.5).

``/orders/create`` answers with ``Url`` = ``<sandbox>/d/<Id>`` (the gateway's is
``https://orders.cloudpayments.ru/d/<Id>``); that page shows the order and takes a
test card (:mod:`checkout_kit.sandbox.web.orderpage`). A payment made from the page
carries the order's ``InvoiceId``, ``AccountId``, ``Email`` and ``JsonData`` and
marks the order ``Paid``.
"""

from __future__ import annotations

import string
from typing import TYPE_CHECKING, Any

from . import render
from .params import Params, RequestError
from .records import Order, Transaction

if TYPE_CHECKING:
    from .terminal import Terminal

__all__ = ["Orders"]

_ALPHABET = string.ascii_letters + string.digits


class Orders:
    """The order operations of one sandbox."""

    def __init__(self, sandbox: Terminal) -> None:
        self.sandbox = sandbox

    def _new_id(self) -> str:
        raw = self.sandbox.randbytes(16)
        return "".join(_ALPHABET[b % len(_ALPHABET)] for b in raw)

    def get(self, order_id: str) -> Order | None:
        """The order with ``order_id`` of this terminal, if any."""
        order = self.sandbox.state.orders.get(order_id)
        if order is None or order.public_id != self.sandbox.public_id:
            return None
        return order

    def create(self, p: Params, *, base_url: str = "http://localhost/") -> dict[str, Any]:
        """``/orders/create``."""
        sb = self.sandbox
        currency = p.currency()
        amount = p.required_amount("Amount", currency)
        description = p.required_text("Description")
        behavior = p.text("SubscriptionBehavior", max_length=32)
        if behavior is not None and behavior.lower() not in ("createweekly", "createmonthly"):
            raise RequestError("SubscriptionBehavior must be CreateWeekly or CreateMonthly")
        success_url, fail_url = p.url("SuccessRedirectUrl"), p.url("FailRedirectUrl")
        p.url("OfferUri")
        with sb.lock:
            order = Order(
                id=self._new_id(), number=sb.state.next_id("next_order_number"),
                public_id=sb.public_id, amount=amount, currency=currency,
                description=description, created=sb.now(),
                email=p.text("Email", max_length=255), phone=p.text("Phone", max_length=32),
                require_confirmation=p.flag("RequireConfirmation"),
                invoice_id=p.text("InvoiceId", max_length=255),
                account_id=p.text("AccountId", max_length=255),
                culture_name=p.text("CultureName", max_length=16),
                json_data=p.json_value("JsonData"),
                success_redirect_url=success_url, fail_redirect_url=fail_url,
            )
            order.url = f"{base_url.rstrip('/')}/d/{order.id}"
            sb.state.add(order)
            return {"Success": True, "Message": None, "Model": render.order_model(order)}

    def cancel(self, p: Params) -> dict[str, Any]:
        """``/orders/cancel``: an unpaid order only."""
        sb = self.sandbox
        with sb.lock:
            order = self.get(p.required_text("Id", max_length=64))
            if order is None:
                raise RequestError("Order not found")
            if order.status == "Paid":
                raise RequestError("A paid order cannot be cancelled")
            order.status = "Cancelled"
            sb.state.touch(order)
        return {"Success": True, "Message": None}

    def paid(self, tx: Transaction) -> None:
        """Mark the order behind ``tx`` as paid (lock held)."""
        order = self.get(tx.order_id) if tx.order_id else None
        if order is not None:
            order.status, order.payment_date, order.transaction_id = "Paid", tx.auth_date, tx.id
            self.sandbox.state.touch(order)
