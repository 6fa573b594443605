"""Refunds counted once each, and the payments' problems (duplicates, mismatches).

Revision ID: 0003_refunds_and_problems
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs

import sqlalchemy as sa
from alembic import op

revision: str = "0003_refunds_and_problems"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

# Written out, as in 0001: a migration records the schema at its revision.
_TIME = sa.DateTime(timezone=True)
_AMOUNT = sa.Numeric(15, 2)


def _notified_amount(body: bytes | None) -> Decimal | None:
    """The ``Amount`` of a stored Refund notification's body (form-encoded or JSON), or
    ``None`` when it cannot be read. With the amount, a refund a notification counted is
    told apart from the ones 0002's lookups counted without naming them
    (``Unit.absorb_unnamed_refunds``)."""
    text = bytes(body or b"").decode("utf-8", "replace")
    try:
        data = json.loads(text, parse_float=Decimal)  # never through float
        value = data.get("Amount") if isinstance(data, dict) else None
    except ValueError:
        values = parse_qs(text).get("Amount")
        value = values[0] if values and len(values) == 1 else None
    try:
        amount = Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None
    if amount is None or not amount.is_finite() or amount <= 0 or (
            amount != amount.quantize(Decimal("0.01"))) or amount >= Decimal(10) ** 13:
        return None
    return amount


def upgrade() -> None:
    op.create_table(
        "checkout_payment_refunds",
        sa.Column("transaction_id", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("payment_id", sa.String(40), nullable=False),
        sa.Column("amount", _AMOUNT, nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["checkout_payments.id"], ondelete="CASCADE",
            name="fk_checkout_payment_refunds_payment_id_checkout_payments",
        ),
        sa.PrimaryKeyConstraint("transaction_id", name="pk_checkout_payment_refunds"),
    )
    op.create_index(
        "ix_checkout_payment_refunds_payment_id", "checkout_payment_refunds", ["payment_id"]
    )
    op.create_table(
        "checkout_payment_problems",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("payment_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("gateway_transaction_id", sa.BigInteger, nullable=True),
        sa.Column("amount", _AMOUNT, nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["checkout_payments.id"], ondelete="CASCADE",
            name="fk_checkout_payment_problems_payment_id_checkout_payments",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_checkout_payment_problems"),
        sa.UniqueConstraint(
            "payment_id", "kind", "gateway_transaction_id",
            name="uq_checkout_payment_problems_once",
        ),
    )
    op.create_index(
        "ix_checkout_payment_problems_payment_id", "checkout_payment_problems", ["payment_id"]
    )
    # Refunds already counted: those our own calls made (their transaction is on the
    # attempt) and those Refund notifications applied (the key's ident is the refund's
    # transaction). Counting them here keeps a later lookup from counting them again.
    # What 0002's lookups counted kept no transaction: refunded_amount less these rows'
    # amounts, matched with the gateway's list at the next lookup (absorb_unnamed_refunds).
    op.execute(
        "INSERT INTO checkout_payment_refunds "
        "(transaction_id, payment_id, amount, source, created_at) "
        "SELECT gateway_transaction_id, payment_id, amount, 'call', "
        "COALESCE(finished_at, created_at) FROM checkout_payment_attempts "
        "WHERE operation = 'refund' AND outcome = 'succeeded' "
        "AND gateway_transaction_id IS NOT NULL"
    )
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT k.ident, n.payment_id, k.applied_at, n.body "
        "FROM checkout_notification_keys k "
        "JOIN checkout_notifications n ON n.id = k.notification_id "
        "WHERE k.type = 'Refund' AND n.outcome = 'applied' AND n.payment_id IS NOT NULL"
    )).all()
    seen = set(bind.execute(sa.text(
        "SELECT transaction_id FROM checkout_payment_refunds")).scalars())
    for ident, payment_id, applied_at, body in rows:
        if not str(ident).isdigit() or int(ident) in seen:
            continue
        seen.add(int(ident))
        bind.execute(sa.text(
            "INSERT INTO checkout_payment_refunds "
            "(transaction_id, payment_id, amount, source, created_at) "
            "VALUES (:tx, :payment, :amount, 'notification', :at)"
            # Typed, as SQLite's driver takes no Decimal.
        ).bindparams(sa.bindparam("amount", type_=_AMOUNT)),
            {"tx": int(ident), "payment": payment_id, "amount": _notified_amount(body),
             "at": applied_at})


def downgrade() -> None:
    op.drop_table("checkout_payment_problems")
    op.drop_table("checkout_payment_refunds")
