"""The ledger's tables (SQLAlchemy Core).

The Alembic migrations in :mod:`checkout_kit.ledger.migrations` create exactly these
tables; ``tests/ledger/test_migrations.py`` checks that the two agree.

Amounts are ``NUMERIC(15, 2)``: exact on PostgreSQL, and exact on SQLite too within
:data:`checkout_kit.money.MAX_AMOUNT` (SQLAlchemy reads the stored value back through
its two-decimal text, and 13 digits fit a double exactly). Timestamps are UTC and come
back aware whatever the database keeps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "AMOUNT",
    "UTCDateTime",
    "attempts",
    "events",
    "lookups",
    "metadata",
    "notification_keys",
    "notifications",
    "payments",
    "problems",
    "refunds",
]

#: Names of constraints and indexes, so that migrations and models spell them alike.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A ``TIMESTAMP WITH TIME ZONE`` that accepts only aware datetimes and always
    returns aware UTC ones (SQLite keeps naive text: read back as UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the ledger stores aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: Exact money: 11 digits before the point, 2 after (see checkout_kit.money.MAX_AMOUNT).
AMOUNT = sa.Numeric(15, 2, asdecimal=True)

payments = sa.Table(
    "checkout_payments",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("invoice_id", sa.String(255), nullable=False, unique=True),
    sa.Column("account_id", sa.String(255)),
    sa.Column("email", sa.String(320)),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("amount", AMOUNT, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("scheme", sa.String(10), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("gateway_transaction_id", sa.BigInteger, index=True),
    sa.Column("token", sa.String(255)),
    sa.Column("test_mode", sa.Boolean, nullable=False, default=False),
    sa.Column("metadata", sa.Text),
    sa.Column("success_url", sa.Text),
    sa.Column("fail_url", sa.Text),
    sa.Column("refunded_amount", AMOUNT, nullable=False),
    sa.Column("reason_code", sa.Integer),
    sa.Column("cardholder_message", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # A Check after this moment is answered 20 (expired); None: the payment never expires.
    sa.Column("expires_at", UTCDateTime),
    # The subscription the payment's own charge started (a recurrent widget), from its
    # Pay or a lookup (revision 0007); NULL: none named. Its later charges name the
    # payment's invoice (Payment.known_subscription, webhooks.owns).
    sa.Column("subscription_id", sa.String(64)),
    sa.CheckConstraint("scheme IN ('charge', 'auth')", name="scheme"),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.CheckConstraint(
        "refunded_amount >= 0 AND refunded_amount <= amount", name="refunded_within_amount"
    ),
)

#: One row per gateway call the ledger makes (or is about to make). ``number`` counts a
#: payment's attempts; ``(payment_id, number)`` is unique, so two workers that both
#: believed they may start attempt *n* cannot both record it. ``request_id`` is the
#: ``X-Request-ID`` sent (and re-sent on retries).
attempts = sa.Table(
    "checkout_payment_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "payment_id", sa.String(40),
        sa.ForeignKey("checkout_payments.id", ondelete="CASCADE"), nullable=False,
    ),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("operation", sa.String(20), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False, unique=True),
    sa.Column("amount", AMOUNT),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("gateway_transaction_id", sa.BigInteger),
    sa.Column("reason_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.UniqueConstraint("payment_id", "number"),
)

#: Append-only: the ledger inserts status changes here and never updates or deletes them.
events = sa.Table(
    "checkout_payment_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "payment_id", sa.String(40),
        sa.ForeignKey("checkout_payments.id", ondelete="CASCADE"), nullable=False, index=True,
    ),
    sa.Column("old_status", sa.String(20)),
    sa.Column("new_status", sa.String(20), nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

#: When the gateway was last asked about a payment on behalf of its pending page: one
#: row per payment, so that every app instance sharing the database asks at most once
#: per interval (:meth:`checkout_kit.ledger.store.Ledger.claim_lookup`; revision
#: 0005_pending_lookups).
lookups = sa.Table(
    "checkout_payment_lookups",
    metadata,
    sa.Column(
        "payment_id", sa.String(40),
        sa.ForeignKey("checkout_payments.id", ondelete="CASCADE"), primary_key=True,
    ),
    sa.Column("looked_up_at", UTCDateTime, nullable=False),
)

#: The audit log: one row per notification request that reached the shop, forged ones
#: included, with the raw bytes exactly as received (the POST body, or the query string
#: of a GET), so that any of them can be checked again or replayed. After the retention
#: period the body is replaced by a masked copy and ``purged_at`` is set (revision
#: 0004_audit_retention; :mod:`checkout_kit.ledger.retention`).
notifications = sa.Table(
    "checkout_notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("type", sa.String(20), nullable=False, index=True),
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("headers", sa.Text, nullable=False),
    sa.Column("remote_addr", sa.String(64)),
    sa.Column("signature_valid", sa.Boolean, nullable=False),
    sa.Column("applied", sa.Boolean, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("code", sa.Integer),
    sa.Column("key", sa.String(600)),
    sa.Column("payment_id", sa.String(40), index=True),
    sa.Column("replay_of", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("purged_at", UTCDateTime),
)

#: One row per notification applied: its key (webhooks.notification_key) is the primary
#: key, so a second delivery of the same notification cannot be applied again, even by
#: two workers at once. ``code`` is what was answered (a Check's decision is repeated).
notification_keys = sa.Table(
    "checkout_notification_keys",
    metadata,
    sa.Column("type", sa.String(20), primary_key=True),
    sa.Column("ident", sa.String(255), primary_key=True),
    sa.Column("qualifier", sa.String(320), primary_key=True),
    sa.Column(
        "notification_id", sa.Integer,
        # Named here: the convention's name would pass PostgreSQL's 63 characters.
        sa.ForeignKey("checkout_notifications.id", ondelete="CASCADE",
                      name="fk_checkout_notification_keys_notification_id"), nullable=False,
    ),
    sa.Column("code", sa.Integer, nullable=False),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)

#: One row per refund transaction counted in a payment's ``refunded_amount``, whoever
#: told us first (our refund call's answer, a Refund notification, a lookup of the
#: gateway's list). The primary key is the refund's gateway transaction, so a refund is
#: counted once however many of those report it.
refunds = sa.Table(
    "checkout_payment_refunds",
    metadata,
    sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column(
        "payment_id", sa.String(40),
        sa.ForeignKey("checkout_payments.id", ondelete="CASCADE"), nullable=False, index=True,
    ),
    # NULL only for refunds counted before this table existed (see migration 0003).
    sa.Column("amount", AMOUNT),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

#: Money the ledger saw move but could not settle a payment with: a second charge on
#: one invoice (``duplicate``), a transaction whose amount, currency, account or scheme
#: is not the payment's (``mismatch``), a charge after the shop cancelled the payment
#: (``paid_after_cancel``). The shop decides (refund, ship...); ``flask checkout
#: payments --problems`` lists them. Unique per payment, kind and transaction, so a
#: lookup repeated every reconcile run records a problem once.
problems = sa.Table(
    "checkout_payment_problems",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "payment_id", sa.String(40),
        sa.ForeignKey("checkout_payments.id", ondelete="CASCADE"), nullable=False, index=True,
    ),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("gateway_transaction_id", sa.BigInteger),
    sa.Column("amount", AMOUNT),
    sa.Column("currency", sa.String(3)),
    sa.Column("detail", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # When the shop dealt with it (refunded the second charge...): NULL while open.
    sa.Column("resolved_at", UTCDateTime),
    # Named here: the convention's name would pass PostgreSQL's 63 characters.
    sa.UniqueConstraint("payment_id", "kind", "gateway_transaction_id",
                        name="uq_checkout_payment_problems_once"),
)
