"""Alembic environment for the ledger: runs online on the engine that
:func:`checkout_kit.ledger.migrations.upgrade` puts in ``config.attributes``."""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection, Engine

from checkout_kit.errors import MigrationError
from checkout_kit.ledger.migrations import VERSION_TABLE
from checkout_kit.ledger.schema import metadata

config = context.config
engine = config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError(
        "the ledger's migrations run through checkout_kit.ledger.upgrade(url_or_engine)"
    )


def _sqlite_foreign_keys(connection: Connection, on: bool | None) -> bool:
    """Read SQLite's ``foreign_keys`` setting and, when ``on`` is given, set it first.

    Batch mode rebuilds a table by copying it and dropping the old one; with foreign
    keys enforced (the ledger's own engine turns them on), that DROP deletes the rows
    of every ``ON DELETE CASCADE`` child: downgrading 0004 emptied the applied
    notification keys. The pragma is a no-op inside a transaction, so it goes to the
    driver's connection before the migration's transaction begins (as Alembic's batch
    documentation recommends)."""
    raw: Any = connection.connection.driver_connection
    if on is not None:
        raw.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")
    return bool(raw.execute("PRAGMA foreign_keys").fetchone()[0])


def _broken_references(connection: Connection) -> Counter[tuple[Any, ...]]:
    """The rows of the ledger's tables whose foreign keys point at nothing, by
    ``(table, parent, foreign key index)``: a rebuilt table's rows get new rowids."""
    present = set(sa.inspect(connection).get_table_names())
    found: Counter[tuple[Any, ...]] = Counter()
    for table in metadata.tables:
        if table in present:
            for row in connection.exec_driver_sql(f'PRAGMA foreign_key_check("{table}")'):
                found[(row[0], row[2], row[3])] += 1
    return found


with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    enforced = sqlite and _sqlite_foreign_keys(connection, None)
    if enforced:
        _sqlite_foreign_keys(connection, False)
    try:
        # Our transaction, not Alembic's: the foreign-key check below runs inside it, so
        # a migration that broke them is rolled back, not committed first.
        with connection.begin():
            context.configure(
                connection=connection,
                target_metadata=metadata,
                version_table=VERSION_TABLE,
                compare_type=True,
                # SQLite cannot ALTER most things: batch mode copies the table instead.
                render_as_batch=sqlite,
            )
            before = _broken_references(connection) if enforced else Counter()
            with context.begin_transaction():  # inside ours, Alembic begins nothing
                context.run_migrations()
            if enforced:
                # What the copies hold must still hold together, as enforcement would.
                # Only what the migration broke counts: rows the shop's own tables, or
                # an old ledger, held before are not the migration's to refuse.
                after = _broken_references(connection)
                if after - before:
                    raise MigrationError(sorted(after - before))
    finally:
        if enforced:
            # The connection goes back to the ledger's pool: as the ledger set it up.
            connection.rollback()
            _sqlite_foreign_keys(connection, True)
