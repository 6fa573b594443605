"""Alembic environment for the ledger: runs online on the engine that
:func:`checkout_kit.ledger.migrations.upgrade` puts in ``config.attributes``."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Engine

from checkout_kit.ledger.migrations import VERSION_TABLE
from checkout_kit.ledger.schema import metadata

config = context.config
engine = config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError(
        "the ledger's migrations run through checkout_kit.ledger.upgrade(url_or_engine)"
    )

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        compare_type=True,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
