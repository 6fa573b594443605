"""The ``world`` fixture of the scripted-world tests (test_regressions.py,
test_attack2.py); their helpers are in :mod:`.scripted`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .runner import database
from .world import World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A world (seed 0) on a fresh SQLite ledger with no random faults: only the ones a
    test forces (``instance.transport.forced``)."""
    with database(None, tmp_path) as url:
        made = World(0, url, check=False)
        for instance in made.instances:
            instance.transport.enabled = frozenset()  # only forced faults
        yield made
        made.close()
