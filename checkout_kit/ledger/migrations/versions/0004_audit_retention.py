"""Audit retention: a notification's body is masked after the retention period.

Revision ID: 0004_audit_retention
Revises: 0003_refunds_and_problems
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_audit_retention"
down_revision: str | None = "0003_refunds_and_problems"
branch_labels: str | None = None
depends_on: str | None = None

# Written out, as in 0001: a migration records the schema at its revision.
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("checkout_notifications") as batch:
        batch.add_column(sa.Column("purged_at", _TIME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkout_notifications") as batch:
        batch.drop_column("purged_at")
