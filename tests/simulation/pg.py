"""PostgreSQL for the simulation: the ledger tests' per-test schema, reused.

Under pytest ``tests/`` is on ``sys.path`` (``ledger.conftest``); under
``python -m tests.simulation`` the repository root is (``tests.ledger.conftest``).
"""

from __future__ import annotations

try:
    from tests.ledger.conftest import PG_URL, fresh_schema
except ImportError:  # pragma: no cover - depends on how we were started
    from ledger.conftest import PG_URL, fresh_schema  # type: ignore[no-redef]

__all__ = ["PG_URL", "fresh_schema"]
