"""The subscription a payment started: a recurrent widget's first charge names it.

Revision ID: 0007_payment_subscription
Revises: 0006_problem_resolution
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007_payment_subscription"
down_revision: str | None = "0006_problem_resolution"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (nullable, no default): SQLite does it in place. Payments from
    # before keep NULL: which subscription they started is not known, and webhooks.owns
    # then takes a subscription's charge on their invoice for the subscription's, as
    # before this revision.
    op.add_column("checkout_payments", sa.Column("subscription_id", sa.String(64),
                                                 nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN: SQLite 3.35 and later, PostgreSQL.
    op.drop_column("checkout_payments", "subscription_id")
