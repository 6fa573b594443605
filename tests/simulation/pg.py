"""PostgreSQL for the simulation: the ledger tests' per-test schema, reused.

Under pytest ``tests/`` is on ``sys.path`` (``ledger.conftest``, the module pytest
loaded); under ``python -m tests.simulation`` the repository root is
(``tests.ledger.conftest``).
"""

from __future__ import annotations

try:
    from ledger.conftest import BACKENDS, PG_URL, fresh_schema
except ImportError:  # started as python -m tests.simulation
    from tests.ledger.conftest import (  # type: ignore[no-redef]
        BACKENDS,
        PG_URL,
        fresh_schema,
    )

__all__ = ["BACKENDS", "PG_URL", "fresh_schema"]
