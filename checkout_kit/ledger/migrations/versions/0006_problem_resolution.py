"""Problem resolution: when the shop dealt with a payment problem (NULL: still open).

Revision ID: 0006_problem_resolution
Revises: 0005_pending_lookups
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_problem_resolution"
down_revision: str | None = "0005_pending_lookups"
branch_labels: str | None = None
depends_on: str | None = None

# Written out, as in 0001: a migration records the schema at its revision.
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    # A plain ADD COLUMN (nullable, no default): SQLite does it in place, without the
    # table copy a batch operation would make.
    op.add_column("checkout_payment_problems", sa.Column("resolved_at", _TIME, nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN: SQLite 3.35 and later, PostgreSQL.
    op.drop_column("checkout_payment_problems", "resolved_at")
