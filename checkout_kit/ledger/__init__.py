"""The payment ledger: payments, gateway attempts and status history in SQL.

A Flask-free shell module on SQLAlchemy 2 (SQLite by default, PostgreSQL with the
``postgres`` extra). :class:`Ledger` stores, :class:`PaymentService` pays through the
gateway client, :mod:`.states` is the one state machine, :func:`upgrade` runs the
shipped Alembic migrations. See ``docs/ledger.md``.
"""

from __future__ import annotations

from .migrations import upgrade
from .requests import PaymentRequest
from .service import PaymentService, PayOutcome
from .states import TRANSITIONS, PaymentStatus, check_transition
from .store import (
    Ledger,
    Payment,
    PaymentAttempt,
    PaymentEvent,
    PaymentProblem,
    ProblemKind,
    ProblemPage,
)

__all__ = [
    "TRANSITIONS",
    "Ledger",
    "PayOutcome",
    "Payment",
    "PaymentAttempt",
    "PaymentEvent",
    "PaymentProblem",
    "PaymentRequest",
    "PaymentService",
    "PaymentStatus",
    "ProblemKind",
    "ProblemPage",
    "check_transition",
    "upgrade",
]
