"""The ledger's Alembic migrations, shipped in the package.

:func:`upgrade` brings a database to the newest schema (``flask checkout db upgrade``
calls it). The ledger keeps its own version table, ``checkout_kit_alembic_version``, so
that it lives beside an application's own Alembic history without touching it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

__all__ = [
    "VERSION_TABLE", "alembic_config", "current_revision", "downgrade", "head_revision",
    "schema_problem", "upgrade",
]

#: Alembic's version table for the ledger's migrations.
VERSION_TABLE = "checkout_kit_alembic_version"

_HERE = Path(__file__).resolve().parent


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic :class:`~alembic.config.Config` for the ledger's migrations (no ini
    file); ``engine`` is what ``env.py`` migrates."""
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.attributes["engine"] = engine
    return config


@contextmanager
def _engine(url_or_engine: str | sa.URL | Engine) -> Iterator[Engine]:
    """The engine given, or one made for the URL and disposed of afterwards."""
    if isinstance(url_or_engine, Engine):
        yield url_or_engine
        return
    engine = sa.create_engine(url_or_engine)
    try:
        yield engine
    finally:
        engine.dispose()


def upgrade(url_or_engine: str | sa.URL | Engine, revision: str = "head") -> None:
    """Create or upgrade the ledger's tables in the database (idempotent)."""
    with _engine(url_or_engine) as engine:
        command.upgrade(alembic_config(engine), revision)


def downgrade(url_or_engine: str | sa.URL | Engine, revision: str = "base") -> None:
    """Undo migrations down to ``revision`` (``base``: drop the ledger's tables)."""
    with _engine(url_or_engine) as engine:
        command.downgrade(alembic_config(engine), revision)


def current_revision(url_or_engine: str | sa.URL | Engine) -> str | None:
    """The revision the database is at (``None``: the ledger's tables are not there)."""
    with _engine(url_or_engine) as engine, engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head_revision() -> str:
    """The newest revision shipped."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def schema_problem(url_or_engine: str | sa.URL | Engine) -> str | None:
    """Why the ledger's tables cannot be used by this version of checkout_kit, with what
    to run; ``None`` when they are at :func:`head_revision`."""
    have, need = current_revision(url_or_engine), head_revision()
    if have == need:
        return None
    if have is None:
        return "the ledger's tables are not there: run flask checkout db upgrade"
    known = {script.revision for script in
             ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if have not in known:
        return (f"the ledger is at revision {have}, which this checkout_kit does not know "
                "(a newer version wrote it): upgrade checkout_kit")
    return (f"the ledger is at revision {have}, this checkout_kit needs {need}: run "
            "flask checkout db upgrade")
