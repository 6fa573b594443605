"""Blinker signals for a payment's life (blinker ships with Flask).

Each is sent with the Flask app as the sender and ``payment`` (the ledger's
snapshot after the change) and ``old_status`` as keyword arguments::

    from checkout_kit.shop import signals

    @signals.payment_succeeded.connect_via(app)
    def ship(app, payment, old_status, **extra):
        ...

``payment_refunded`` is also sent for a partial refund (the status stays
``succeeded``; ``payment.refunded_amount`` grows), with ``amount`` set.
"""

from __future__ import annotations

from blinker import Namespace, Signal

__all__ = [
    "BY_STATUS",
    "payment_authorized",
    "payment_cancelled",
    "payment_created",
    "payment_failed",
    "payment_refunded",
    "payment_succeeded",
]

_signals = Namespace()

payment_created: Signal = _signals.signal("checkout-kit.payment-created")
payment_authorized: Signal = _signals.signal("checkout-kit.payment-authorized")
payment_succeeded: Signal = _signals.signal("checkout-kit.payment-succeeded")
payment_failed: Signal = _signals.signal("checkout-kit.payment-failed")
payment_refunded: Signal = _signals.signal("checkout-kit.payment-refunded")
payment_cancelled: Signal = _signals.signal("checkout-kit.payment-cancelled")

#: The signal a ledger status change sends (statuses without one send nothing).
BY_STATUS: dict[str, Signal] = {
    "created": payment_created,
    "authorized": payment_authorized,
    "succeeded": payment_succeeded,
    "failed": payment_failed,
    "refunded": payment_refunded,
    "cancelled": payment_cancelled,
}
