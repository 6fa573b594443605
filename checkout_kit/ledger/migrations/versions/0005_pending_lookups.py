"""Pending lookups: when the pending page last had the gateway asked about a payment.

Revision ID: 0005_pending_lookups
Revises: 0004_audit_retention
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_pending_lookups"
down_revision: str | None = "0004_audit_retention"
branch_labels: str | None = None
depends_on: str | None = None

# Written out, as in 0001: a migration records the schema at its revision.
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "checkout_payment_lookups",
        sa.Column("payment_id", sa.String(40), nullable=False),
        sa.Column("looked_up_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["checkout_payments.id"], ondelete="CASCADE",
            name="fk_checkout_payment_lookups_payment_id_checkout_payments",
        ),
        sa.PrimaryKeyConstraint("payment_id", name="pk_checkout_payment_lookups"),
    )


def downgrade() -> None:
    op.drop_table("checkout_payment_lookups")
