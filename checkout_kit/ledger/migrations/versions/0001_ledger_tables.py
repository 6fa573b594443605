"""The ledger's tables: payments, their gateway attempts, their status history.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Written out rather than imported from checkout_kit.ledger.schema: a migration is a
# record of what the schema was at this revision, and must not follow later edits.
_AMOUNT = sa.Numeric(15, 2, asdecimal=True)
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "checkout_payments",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("invoice_id", sa.String(255), nullable=False),
        sa.Column("account_id", sa.String(255), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("amount", _AMOUNT, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("scheme", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("gateway_transaction_id", sa.BigInteger, nullable=True),
        sa.Column("token", sa.String(255), nullable=True),
        sa.Column("test_mode", sa.Boolean, nullable=False),
        sa.Column("metadata", sa.Text, nullable=True),
        sa.Column("success_url", sa.Text, nullable=True),
        sa.Column("fail_url", sa.Text, nullable=True),
        sa.Column("refunded_amount", _AMOUNT, nullable=False),
        sa.Column("reason_code", sa.Integer, nullable=True),
        sa.Column("cardholder_message", sa.Text, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.CheckConstraint("scheme IN ('charge', 'auth')", name="ck_checkout_payments_scheme"),
        sa.CheckConstraint("amount > 0", name="ck_checkout_payments_amount_positive"),
        sa.CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= amount",
            name="ck_checkout_payments_refunded_within_amount",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_checkout_payments"),
        sa.UniqueConstraint("invoice_id", name="uq_checkout_payments_invoice_id"),
    )
    op.create_index("ix_checkout_payments_status", "checkout_payments", ["status"])
    op.create_index(
        "ix_checkout_payments_gateway_transaction_id", "checkout_payments",
        ["gateway_transaction_id"],
    )
    op.create_table(
        "checkout_payment_attempts",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("payment_id", sa.String(40), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("operation", sa.String(20), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("amount", _AMOUNT, nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("gateway_transaction_id", sa.BigInteger, nullable=True),
        sa.Column("reason_code", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["checkout_payments.id"], ondelete="CASCADE",
            name="fk_checkout_payment_attempts_payment_id_checkout_payments",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_checkout_payment_attempts"),
        sa.UniqueConstraint(
            "payment_id", "number", name="uq_checkout_payment_attempts_payment_id_number"
        ),
        sa.UniqueConstraint("request_id", name="uq_checkout_payment_attempts_request_id"),
    )
    op.create_table(
        "checkout_payment_events",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("payment_id", sa.String(40), nullable=False),
        sa.Column("old_status", sa.String(20), nullable=True),
        sa.Column("new_status", sa.String(20), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["checkout_payments.id"], ondelete="CASCADE",
            name="fk_checkout_payment_events_payment_id_checkout_payments",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_checkout_payment_events"),
    )
    op.create_index(
        "ix_checkout_payment_events_payment_id", "checkout_payment_events", ["payment_id"]
    )


def downgrade() -> None:
    op.drop_table("checkout_payment_events")
    op.drop_table("checkout_payment_attempts")
    op.drop_table("checkout_payments")
