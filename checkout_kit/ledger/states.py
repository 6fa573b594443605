"""The payment state machine: one table of allowed status changes.

Every status change in the ledger goes through :func:`check_transition`; nothing
writes a status without it. The table, not code paths, says what may happen::

    created ──► processing ──► succeeded ──► refunded
       │          │  ▲  │ │        ▲
       │          │  │  │ └► authorized ──► cancelled
       │          │  │  ▼          │
       │          │  awaiting_3ds  │
       │          ▼                ▼
       │        failed ◄─────► unknown (settled later by reconcile)
       ▼
    cancelled ◄── processing (a stale claim whose hold a lookup finds voided)

See ``docs/ledger.md`` for the full table and why each edge exists.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from ..errors import InvalidTransitionError

__all__ = [
    "FINAL",
    "PAID",
    "PENDING",
    "TRANSITIONS",
    "PaymentStatus",
    "can_transition",
    "check_transition",
]


class PaymentStatus(enum.StrEnum):
    """Where a payment stands in the ledger."""

    CREATED = "created"
    """Recorded, not yet sent to the gateway."""
    PROCESSING = "processing"
    """Claimed by one worker, which is talking to the gateway right now."""
    AWAITING_3DS = "awaiting_3ds"
    """The gateway asked for 3-D Secure; the payer is at the bank's page."""
    AUTHORIZED = "authorized"
    """Two-stage: the money is held until confirm or void."""
    SUCCEEDED = "succeeded"
    """The money is taken (partial refunds keep this status)."""
    FAILED = "failed"
    """Declined or refused; the payer may try again with another card."""
    CANCELLED = "cancelled"
    """Voided, expired at the gateway, or abandoned before paying."""
    REFUNDED = "refunded"
    """Refunded in full."""
    UNKNOWN = "unknown"
    """A gateway call's outcome is not known; :meth:`PaymentService.reconcile` settles it."""


S = PaymentStatus

#: ``old -> {new, ...}``: every status change the ledger allows. Anything else raises
#: :class:`~checkout_kit.errors.InvalidTransitionError`.
TRANSITIONS: Mapping[PaymentStatus, frozenset[PaymentStatus]] = {
    # A shop may cancel an order nobody has paid yet.
    S.CREATED: frozenset({S.PROCESSING, S.CANCELLED}),
    # The gateway's answer to charge/auth/post3ds, or no answer at all (unknown).
    # cancelled: a lookup of a stale claim finds its hold already voided (by the back
    # office, or expired), which no answer of the dead worker's call can undo.
    S.PROCESSING: frozenset(
        {S.AWAITING_3DS, S.AUTHORIZED, S.SUCCEEDED, S.FAILED, S.UNKNOWN, S.CANCELLED}
    ),
    # processing: complete_3ds claims the payment for post3ds. The others: what a lookup
    # finds when the bank's answer reached the gateway without us (checkout.js's
    # ThreeDSCallback), or when the payer never came back.
    S.AWAITING_3DS: frozenset(
        {S.PROCESSING, S.AUTHORIZED, S.SUCCEEDED, S.FAILED, S.CANCELLED}
    ),
    # confirm, void (or expiry at the gateway), and a confirm/void whose answer was lost.
    S.AUTHORIZED: frozenset({S.SUCCEEDED, S.CANCELLED, S.UNKNOWN}),
    # Only a full refund changes the status; partial ones grow refunded_amount.
    S.SUCCEEDED: frozenset({S.REFUNDED}),
    # The payer may retry with another card; the shop may give up on the order.
    # unknown: a lookup took a live call for a dead worker's and failed the payment
    # (the gateway had no charge yet); the call then ended without an answer, so the
    # gateway may have charged after all: not known, and settled by reconcile.
    S.FAILED: frozenset({S.PROCESSING, S.CANCELLED, S.UNKNOWN}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
    # Whatever the gateway turns out to hold. Never processing: a payment whose outcome
    # is unknown must not be charged again before it is settled.
    S.UNKNOWN: frozenset(
        {S.AWAITING_3DS, S.AUTHORIZED, S.SUCCEEDED, S.FAILED, S.CANCELLED}
    ),
}

#: Statuses a reconcile run asks the gateway about.
PENDING: frozenset[PaymentStatus] = frozenset(
    {S.PROCESSING, S.AWAITING_3DS, S.UNKNOWN}
)
#: Statuses in which a charge or hold of the payment's own took the payer's money.
PAID: frozenset[PaymentStatus] = frozenset({S.AUTHORIZED, S.SUCCEEDED, S.REFUNDED})
#: Statuses nothing leaves.
FINAL: frozenset[PaymentStatus] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def can_transition(old: PaymentStatus | str, new: PaymentStatus | str) -> bool:
    """Whether the table allows ``old -> new`` (unknown status names: no)."""
    try:
        return PaymentStatus(new) in TRANSITIONS[PaymentStatus(old)]
    except ValueError:
        return False


def check_transition(old: PaymentStatus | str, new: PaymentStatus | str) -> PaymentStatus:
    """Return ``new`` as a :class:`PaymentStatus` if ``old -> new`` is allowed; raise
    :class:`~checkout_kit.errors.InvalidTransitionError` otherwise (a change to the
    same status included: it would hide a lost update)."""
    if not can_transition(old, new):
        raise InvalidTransitionError(str(old), str(new))
    return PaymentStatus(new)
