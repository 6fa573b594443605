"""Blinker signals for a payment's life (blinker ships with Flask).

Each is sent with the Flask app as the sender and ``payment`` (the ledger's
snapshot after the change) and ``old_status`` as keyword arguments::

    from checkout_kit.shop import signals

    @signals.payment_succeeded.connect_via(app)
    def ship(app, payment, old_status, **extra):
        ...

``payment_refunded`` is also sent for a partial refund (the status stays
``succeeded``; ``payment.refunded_amount`` grows), with ``amount`` set.

Money that moved without settling the payment sends a problem signal, once per
problem, with ``payment`` and ``problem`` (a
:class:`~checkout_kit.ledger.store.PaymentProblem`: ``kind``,
``gateway_transaction_id``, ``amount``, ``currency``, ``detail``):
``payment_duplicate`` for a second charge on a paid payment (a widget paid in two tabs:
refund one), ``payment_mismatch`` for a transaction of another amount, currency,
account or scheme on the payment's invoice (never settled), and ``payment_problem`` for
every kind (``paid_after_cancel`` included). ``flask checkout payments --problems``
lists them.

Notifications from the gateway send ``notification_received`` and the signal of their
type (``notification_pay``... :data:`BY_NOTIFICATION`), once per notification (never
for a duplicate), after the ledger committed, with ``type``, ``notification`` (the
typed :class:`~checkout_kit.notifications.Notification`, ``Receipt`` included),
``fields`` (every field as text), ``payment`` (the ledger snapshot after it, or
``None``), ``code`` (the answer) and ``record`` (the audit row)::

    @signals.notification_refund.connect_via(app)
    def refunded(app, notification, payment, **extra):
        ...
"""

from __future__ import annotations

from blinker import Namespace, Signal

__all__ = [
    "BY_NOTIFICATION",
    "BY_PROBLEM",
    "BY_STATUS",
    "notification_cancel",
    "notification_check",
    "notification_confirm",
    "notification_fail",
    "notification_pay",
    "notification_receipt",
    "notification_received",
    "notification_recurrent",
    "notification_refund",
    "payment_authorized",
    "payment_cancelled",
    "payment_created",
    "payment_duplicate",
    "payment_failed",
    "payment_mismatch",
    "payment_problem",
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
payment_duplicate: Signal = _signals.signal("checkout-kit.payment-duplicate")
payment_mismatch: Signal = _signals.signal("checkout-kit.payment-mismatch")
payment_problem: Signal = _signals.signal("checkout-kit.payment-problem")

#: The signal of each problem kind, sent before ``payment_problem``.
BY_PROBLEM: dict[str, Signal] = {
    "duplicate": payment_duplicate,
    "mismatch": payment_mismatch,
}

#: The signal a ledger status change sends (statuses without one send nothing).
BY_STATUS: dict[str, Signal] = {
    "created": payment_created,
    "authorized": payment_authorized,
    "succeeded": payment_succeeded,
    "failed": payment_failed,
    "refunded": payment_refunded,
    "cancelled": payment_cancelled,
}

notification_received: Signal = _signals.signal("checkout-kit.notification-received")
notification_check: Signal = _signals.signal("checkout-kit.notification-check")
notification_pay: Signal = _signals.signal("checkout-kit.notification-pay")
notification_fail: Signal = _signals.signal("checkout-kit.notification-fail")
notification_confirm: Signal = _signals.signal("checkout-kit.notification-confirm")
notification_refund: Signal = _signals.signal("checkout-kit.notification-refund")
notification_cancel: Signal = _signals.signal("checkout-kit.notification-cancel")
notification_recurrent: Signal = _signals.signal("checkout-kit.notification-recurrent")
notification_receipt: Signal = _signals.signal("checkout-kit.notification-receipt")

#: The signal of each notification type (webhooks.WEBHOOK_TYPES).
BY_NOTIFICATION: dict[str, Signal] = {
    "Check": notification_check,
    "Pay": notification_pay,
    "Fail": notification_fail,
    "Confirm": notification_confirm,
    "Refund": notification_refund,
    "Cancel": notification_cancel,
    "Recurrent": notification_recurrent,
    "Receipt": notification_receipt,
}
