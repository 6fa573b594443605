"""The shipped migrations create exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from checkout_kit.client import CloudPaymentsClient
from checkout_kit.errors import MigrationError, UnknownOutcomeError
from checkout_kit.ledger import Ledger, PaymentService, PaymentStatus, upgrade
from checkout_kit.ledger.migrations import (
    VERSION_TABLE,
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
)
from checkout_kit.ledger.schema import (
    attempts,
    metadata,
    notification_keys,
    notifications,
    payments,
    refunds,
)
from checkout_kit.models import Transaction

from .conftest import Clock, Recorder

LEDGER_TABLES = {"checkout_payments", "checkout_payment_attempts", "checkout_payment_events",
                 "checkout_notifications", "checkout_notification_keys",
                 "checkout_payment_refunds", "checkout_payment_problems",
                 "checkout_payment_lookups"}


def _diff(engine: sa.Engine) -> list[Any]:
    def ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        # Another application's tables may share the database; only ours are compared.
        return not (type_ == "table" and reflected and name not in LEDGER_TABLES)

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True, "compare_server_default": True,
            "version_table": VERSION_TABLE, "include_object": ours,
        })
        return list(compare_metadata(context, metadata))


def test_upgrade_of_an_empty_database_matches_the_models(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    try:
        assert current_revision(engine) is None
        upgrade(db_url)
        assert current_revision(engine) == head_revision()
        assert set(sa.inspect(engine).get_table_names()) >= LEDGER_TABLES
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_the_comparison_does_see_a_difference(db_url: str) -> None:
    # Guard against a comparison that could never fail: drop a column, expect a diff.
    upgrade(db_url)
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_checkout_payments_status")
        diff = _diff(engine)
        assert [d[0] for d in diff] == ["add_index"]
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_downgrade_removes_the_tables(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)
    engine = sa.create_engine(db_url)
    try:
        downgrade(engine)
        assert not LEDGER_TABLES & set(sa.inspect(engine).get_table_names())
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_a_ledger_on_the_migrated_schema_works(db_url: str) -> None:
    upgrade(db_url)
    ledger = Ledger(db_url)
    try:
        payment = ledger.create_payment(invoice_id="m-1", amount="1.00", currency="RUB",
                                        description="migrated")
        assert ledger.get(payment.id) == payment
    finally:
        ledger.engine.dispose()


def test_the_version_table_is_the_ledgers_own(db_url: str) -> None:
    # An application's own alembic_version table is left alone.
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32))")
            conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('app0042')")
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").all() == [
                ("app0042",)]
            assert conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").all() == [
                (head_revision(),)]
    finally:
        engine.dispose()


def test_upgrade_through_a_ledgers_own_engine(db_url: str) -> None:
    # The shop may hand the ledger's engine (SQLite: BEGIN IMMEDIATE) to upgrade().
    ledger = Ledger(db_url)
    try:
        upgrade(ledger.engine)
        assert current_revision(ledger.engine) == head_revision()
        assert ledger.list_payments() == []
    finally:
        ledger.engine.dispose()


def _succeeded_at_0002(
    conn: sa.Connection, *, invoice: str, tx: int, refunded: str, now: Any,
    refund_call: tuple[str, str, int | None],
) -> str:
    """A succeeded payment of 100.00 with one refund call, written as a ledger at 0002
    held it. Written with the columns 0002 has: today's Ledger reads columns of later
    revisions (0007's subscription_id) and cannot work on a 0002 schema."""
    payment_id = f"pay_{invoice}"
    conn.execute(payments.insert().values(
        id=payment_id, invoice_id=invoice, account_id=None, email=None,
        description="refunded at 0002", amount=Decimal("100.00"), currency="RUB",
        scheme="charge", status="succeeded", gateway_transaction_id=tx, token=None,
        test_mode=True, metadata=None, success_url=None, fail_url=None,
        refunded_amount=Decimal(refunded), reason_code=None, cardholder_message=None,
        created_at=now, updated_at=now, version=3, expires_at=None))
    amount, outcome, refund_tx = refund_call
    conn.execute(attempts.insert().values(
        payment_id=payment_id, number=1, operation="refund", request_id=f"rq-{invoice}",
        amount=Decimal(amount), outcome=outcome, gateway_transaction_id=refund_tx,
        reason_code=None, error=None, created_at=now, finished_at=now))
    return payment_id


def test_0003_counts_the_refunds_already_counted(db_url: str) -> None:
    # Refunds a ledger at 0002 counted (its own calls, Refund notifications) go into the
    # refunds table, so that a later lookup or notification does not count them again.
    upgrade(db_url, "0002")
    ledger = Ledger(db_url)
    try:
        with ledger.engine.begin() as conn:
            payment_id = _succeeded_at_0002(conn, invoice="m-1", tx=500, refunded="50.00",
                                            now=ledger.now(),
                                            refund_call=("30.00", "succeeded", 501))
            conn.execute(notifications.insert().values(
                id=7, type="Refund", method="POST", body=b"", headers="{}",
                signature_valid=True, applied=True, outcome="applied", payment_id=payment_id,
                received_at=ledger.now()))
            conn.execute(notification_keys.insert().values(
                type="Refund", ident="502", qualifier="Refund", notification_id=7, code=0,
                applied_at=ledger.now()))
            # A Refund notification whose body says its amount: 0003 keeps it, so that
            # the refund is not mistaken for one 0002's lookups counted unnamed.
            conn.execute(notifications.insert().values(
                id=8, type="Refund", method="POST", headers="{}", signature_valid=True,
                body=b"TransactionId=503&PaymentTransactionId=500&Amount=15.00",
                applied=True, outcome="applied", payment_id=payment_id,
                received_at=ledger.now()))
            conn.execute(notification_keys.insert().values(
                type="Refund", ident="503", qualifier="Refund", notification_id=8, code=0,
                applied_at=ledger.now()))
        upgrade(db_url)
        with ledger.engine.connect() as conn:
            rows = conn.execute(sa.select(refunds.c.transaction_id, refunds.c.amount,
                                          refunds.c.source)
                                .order_by(refunds.c.transaction_id)).all()
        assert [tuple(r) for r in rows] == [(501, Decimal("30.00"), "call"),
                                            (502, None, "notification"),
                                            (503, Decimal("15.00"), "notification")]
        with ledger.update(payment_id) as unit:
            assert unit.refund_counted(501) and unit.refund_counted(502)
            assert not unit.count_refund(502, Decimal("20.00"), source="notification",
                                         note="again")
            assert unit.payment.refunded_amount == Decimal("50.00")
    finally:
        ledger.engine.dispose()


#: Every revision whose upgrade or downgrade rebuilds a table in SQLite's batch mode
#: (copy, DROP, rename), and a child table whose rows an enforced ON DELETE CASCADE of
#: that DROP would delete.
BATCH_REVISIONS = [("0002", "checkout_payment_attempts"),
                   ("0004_audit_retention", "checkout_notification_keys")]


def _seed(ledger: Ledger) -> None:
    payment = ledger.create_payment(invoice_id="b-1", amount="1.00", currency="RUB",
                                    description="kept")
    with ledger.update(payment.id) as unit:
        unit.transition("processing")
        unit.add_attempt("charge")
    with ledger.engine.begin() as conn:
        conn.execute(notifications.insert().values(
            id=7, type="Pay", method="POST", body=b"x", headers="{}", signature_valid=True,
            applied=True, outcome="applied", received_at=ledger.now()))
        conn.execute(notification_keys.insert().values(
            type="Pay", ident="1", qualifier="", notification_id=7, code=0,
            applied_at=ledger.now()))


def _count(ledger: Ledger, table: str) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


@pytest.mark.parametrize(("revision", "child"), BATCH_REVISIONS)
def test_batch_migrations_through_the_ledgers_engine_keep_the_child_rows(
    db_url: str, revision: str, child: str
) -> None:
    # Regression: downgrading 0004 through Ledger(url).engine (SQLite with
    # foreign_keys=ON) copied and dropped checkout_notifications, and the DROP's
    # ON DELETE CASCADE emptied checkout_notification_keys: exactly-once was lost.
    ledger = Ledger(db_url)
    try:
        upgrade(ledger.engine)
        _seed(ledger)
        below = ScriptDirectory.from_config(alembic_config()).get_revision(
            revision).down_revision
        # Down through the batch revision and up again: both directions rebuild it.
        downgrade(ledger.engine, str(below))
        assert _count(ledger, child) == 1
        upgrade(ledger.engine)
        assert current_revision(ledger.engine) == head_revision()
        assert _count(ledger, child) == 1
        if ledger.engine.dialect.name == "sqlite":
            with ledger.engine.connect() as conn:
                # The ledger's connections still enforce foreign keys afterwards.
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    finally:
        ledger.engine.dispose()


def test_0003_refunds_counted_by_0002s_lookups_are_not_counted_again(
    db_url: str, clock: Clock, client: CloudPaymentsClient, recorder: Recorder,
    card: Callable[[str], str],
) -> None:
    # Regression: at 0002 an unknown refund call was closed `reconciled` (no transaction
    # kept) and refunded_amount set from the gateway's list, back-office refunds
    # included. After 0003 the next unknown refund's lookup counted them all again.
    upgrade(db_url, "0002")
    ledger = Ledger(db_url, clock=clock)
    try:
        charged = client.charge("100.00", ip_address="203.0.113.7",
                                cryptogram=card("4000 0000 0000 3055"), invoice_id="m-1")
        assert isinstance(charged, Transaction)
        tx = charged.transaction_id
        client.refund(tx, "30.00")  # our call, whose answer was lost at 0002
        client.refund(tx, "20.00")  # a refund made in the gateway's back office
        with ledger.engine.begin() as conn:
            # What 0002's refresh did: the list said 30 + 20, counted without names, and
            # the refund call closed `reconciled` with no transaction kept.
            payment_id = _succeeded_at_0002(conn, invoice="m-1", tx=tx, refunded="50.00",
                                            now=ledger.now(),
                                            refund_call=("30.00", "reconciled", None))
        upgrade(db_url)
        payment = ledger.get(payment_id)
        service = PaymentService(ledger, client, clock=clock)
        recorder.drop_after.add("/payments/refund")
        with pytest.raises(UnknownOutcomeError):
            service.refund(payment.id, "10.00")
        clock.advance(service.stale_after)
        for _ in range(2):  # a second lookup counts nothing either
            refreshed = service.refresh(payment.id)
            assert refreshed.refunded_amount == Decimal("60.00")  # the gateway's 30+20+10
            assert refreshed.status is PaymentStatus.SUCCEEDED
        assert ledger.problems(payment.id) == []
        with ledger.engine.connect() as conn:
            sources = dict(conn.execute(sa.select(refunds.c.amount, refunds.c.source)).all())
        assert sources == {Decimal("30.00"): "baseline", Decimal("20.00"): "baseline",
                           Decimal("10.00"): "lookup"}
    finally:
        ledger.engine.dispose()


def test_a_migration_that_breaks_foreign_keys_is_rolled_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Review m1: the foreign-key check ran after the migration had been committed, so a
    # ledger left with broken keys was also left at the new revision. The migration's
    # fault is stood in for by a step that leaves an orphan key row behind.
    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")
    run = MigrationContext.run_migrations

    def breaking(self: MigrationContext, **kw: Any) -> None:
        run(self, **kw)
        self.connection.execute(notification_keys.insert().values(  # type: ignore[union-attr]
            type="Pay", ident="1", qualifier="", notification_id=99, code=0,
            applied_at=ledger.now()))

    try:
        upgrade(ledger.engine)
        downgrade(ledger.engine, "0003_refunds_and_problems")
        monkeypatch.setattr(MigrationContext, "run_migrations", breaking)
        with pytest.raises(MigrationError) as caught:
            upgrade(ledger.engine)
        assert caught.value.violations == [
            ("checkout_notification_keys", "checkout_notifications", 0)]
        assert current_revision(ledger.engine) == "0003_refunds_and_problems"
        assert _count(ledger, "checkout_notification_keys") == 0
    finally:
        ledger.engine.dispose()


def test_references_broken_before_the_migration_do_not_stop_it(tmp_path: Path) -> None:
    # The shop's own tables share the database, and an old ledger may already hold an
    # orphan: neither is the migration's doing, and neither stops the ledger's upgrade.
    db = tmp_path / "shop.db"
    with contextlib.closing(sqlite3.connect(db)) as raw, raw:  # foreign keys off
        raw.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        raw.execute("CREATE TABLE lines (id INTEGER PRIMARY KEY,"
                    " order_id INTEGER REFERENCES orders(id))")
        raw.execute("INSERT INTO lines (order_id) VALUES (42)")
    ledger = Ledger(f"sqlite:///{db}")
    try:
        upgrade(ledger.engine, "0003_refunds_and_problems")
        with contextlib.closing(sqlite3.connect(db)) as raw, raw:
            raw.execute("INSERT INTO checkout_notification_keys (type, ident, qualifier,"
                        " notification_id, code, applied_at) VALUES"
                        " ('Pay', '1', '', 99, 0, '2026-01-01 00:00:00')")
        upgrade(ledger.engine)
        assert current_revision(ledger.engine) == head_revision()
    finally:
        ledger.engine.dispose()
