"""Notifications: the audit log, the applied keys, and a payment's expiry.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

# Written out, as in 0001: a migration records the schema at its revision.
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("checkout_payments") as batch:
        batch.add_column(sa.Column("expires_at", _TIME, nullable=True))
    op.create_table(
        "checkout_notifications",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("remote_addr", sa.String(64), nullable=True),
        sa.Column("signature_valid", sa.Boolean, nullable=False),
        sa.Column("applied", sa.Boolean, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("code", sa.Integer, nullable=True),
        sa.Column("key", sa.String(600), nullable=True),
        sa.Column("payment_id", sa.String(40), nullable=True),
        sa.Column("replay_of", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("received_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_checkout_notifications"),
    )
    op.create_index("ix_checkout_notifications_type", "checkout_notifications", ["type"])
    op.create_index(
        "ix_checkout_notifications_payment_id", "checkout_notifications", ["payment_id"]
    )
    op.create_table(
        "checkout_notification_keys",
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("ident", sa.String(255), nullable=False),
        sa.Column("qualifier", sa.String(320), nullable=False),
        sa.Column("notification_id", sa.Integer, nullable=False),
        sa.Column("code", sa.Integer, nullable=False),
        sa.Column("applied_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"], ["checkout_notifications.id"], ondelete="CASCADE",
            name="fk_checkout_notification_keys_notification_id",
        ),
        sa.PrimaryKeyConstraint(
            "type", "ident", "qualifier", name="pk_checkout_notification_keys"
        ),
    )


def downgrade() -> None:
    op.drop_table("checkout_notification_keys")
    op.drop_table("checkout_notifications")
    with op.batch_alter_table("checkout_payments") as batch:
        batch.drop_column("expires_at")
