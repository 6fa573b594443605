"""Running schedules: one seed is one whole run (:func:`run_seed`), replayable.

A run builds a world on a fresh database, takes ``steps`` actions drawn by the seed,
checks the step invariants after each, then brings the world to quiescence (no more
faults, the clock past every deadline, every notification delivered until taken, one
reconcile) and checks the final invariants.

A payment that broke an invariant in a way :data:`KNOWN_DEFECTS` allows is *tainted*:
later findings about it are counted as consequences of that defect, not as new ones.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from checkout_kit.ledger import upgrade

from .actions import choose
from .invariants import Violation, check_final, check_step
from .world import World

#: Defects the harness still finds and tolerates, so that the budget test stays green
#: until their fixes land. Issue 14 §1's eight were ``D1``…``D8`` and those found beyond
#: them ``N…`` (each with a regression test in test_regressions.py or
#: tests/ledger/test_attack_findings.py); the fixed ones are gone from here. Remove each
#: entry when its fix is merged (``frozenset()`` once all are): every entry left here
#: hides a class of failures. invariants.RULES says how a violation is matched to each.
KNOWN_DEFECTS: frozenset[str] = frozenset()

#: Actions per schedule before quiescence.
STEPS = 60
#: The replay command printed for a failing seed.
REPLAY = "python -m tests.simulation --seeds 1 --start {seed} --history{db}"


@dataclass
class RunResult:
    seed: int
    history: list[str]
    #: every violation found (tolerated ones included)
    violations: list[Violation] = field(default_factory=list)
    steps: int = 0

    def failures(self, known: frozenset[str] = KNOWN_DEFECTS) -> list[Violation]:
        """Violations not excused by ``known`` (on a payment not already tainted)."""
        tainted: set[str | None] = set()
        failing: list[Violation] = []
        for violation in self.violations:
            if violation.invoice is not None and violation.invoice in tainted:
                continue
            if violation.defect in known:
                tainted.add(violation.invoice)
                continue
            failing.append(violation)
        return failing


def run_seed(seed: int, db_url: str, *, steps: int = STEPS,
             corrupt: Callable[[World], None] | None = None,
             stop_on: frozenset[str] | None = KNOWN_DEFECTS) -> RunResult:
    """One schedule. Stops at the first step whose violations are not all in
    ``stop_on`` (``None``: run to the end whatever happens)."""
    world = World(seed, db_url, corrupt=corrupt)
    result = RunResult(seed, world.history)
    try:
        for step in range(steps):
            action = choose(world)
            world.log(f"#{step} {action.name}")
            action.run(world)
            if world.corrupt is not None:
                world.corrupt(world)
            result.steps = step + 1
            found = check_step(world)
            _record(world, result, found)
            if _stop(result, stop_on):
                return result
        quiesce(world)
        world.quiesced = True
        if world.corrupt is not None:
            world.corrupt(world)
        _record(world, result, check_step(world))
        _record(world, result, check_final(world))
        return result
    finally:
        world.close()


def _record(world: World, result: RunResult, found: list[Violation]) -> None:
    seen = {(v.invariant, v.invoice, v.detail) for v in result.violations}
    for violation in found:
        if (violation.invariant, violation.invoice, violation.detail) in seen:
            continue
        world.log(f"VIOLATION {violation}")
        result.violations.append(violation)


def _stop(result: RunResult, stop_on: frozenset[str] | None) -> bool:
    return stop_on is not None and bool(result.failures(stop_on))


def quiesce(world: World) -> None:
    """No more faults; the payer leaves; the clock passes every claim's and challenge's
    deadline; every notification is delivered until the shop takes it (a few tries);
    one reconcile; the notifications that caused are delivered too."""
    world.log("quiesce")
    for instance in world.instances:
        instance.transport.enabled = frozenset()
    world.challenges.clear()
    world.advance(timedelta(minutes=25))
    _drain(world)
    with world.instances[0].context():
        world.log("A reconcile (final)")
        try:
            world.instances[0].kit.reconcile()
        except Exception as exc:  # judged by the invariants
            world.errors.append(("final reconcile", exc))
    _drain(world)


def _drain(world: World) -> None:
    for _ in range(4):
        waiting = [d for d in world.network if not d.taken]
        if not waiting:
            return
        for delivery in waiting:
            world.deliver(world.pick(world.instances), delivery)


# ---------------------------------------------------------------- databases


_TEMPLATES: dict[str, Path] = {}


@contextmanager
def sqlite_database(directory: Path) -> Iterator[str]:
    """A migrated SQLite ledger in ``directory``: a copy of one migrated per process."""
    if "sqlite" not in _TEMPLATES:
        template = Path(tempfile.mkdtemp(prefix="ck-sim-")) / "template.db"
        upgrade(f"sqlite:///{template}")
        _TEMPLATES["sqlite"] = template
    path = directory / "ledger.db"
    shutil.copyfile(_TEMPLATES["sqlite"], path)
    try:
        yield f"sqlite:///{path}"
    finally:
        path.unlink(missing_ok=True)


@contextmanager
def database(url: str | None, directory: Path) -> Iterator[str]:
    """A fresh, migrated ledger database: SQLite in ``directory`` (``url`` ``None`` or a
    sqlite URL), or a schema of its own on the PostgreSQL server at ``url``."""
    if url is None or url.startswith("sqlite"):
        with sqlite_database(directory) as made:
            yield made
        return
    from .pg import fresh_schema

    with fresh_schema(url) as made:
        upgrade(made)
        yield made


Fresh = Callable[[], AbstractContextManager[str]]


@contextmanager
def databases(url: str | None, directory: Path) -> Iterator[Fresh]:
    """A maker of fresh ledger databases, one per run: SQLite copies in ``directory``,
    or on PostgreSQL one migrated schema, emptied (``TRUNCATE … RESTART IDENTITY``)
    before each run: migrating a schema per run would take longer than the run."""
    if url is None or url.startswith("sqlite"):
        yield lambda: sqlite_database(directory)
        return
    from checkout_kit.ledger.schema import metadata

    from .pg import fresh_schema

    with fresh_schema(url) as made:
        upgrade(made)
        engine = sa.create_engine(made)
        tables = ", ".join(table.name for table in metadata.sorted_tables)

        @contextmanager
        def emptied() -> Iterator[str]:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
            yield made

        try:
            yield emptied
        finally:
            engine.dispose()


def run_in_fresh_database(seed: int, url: str | None, directory: Path, **kw: object
                          ) -> RunResult:
    with database(url, directory) as db_url:
        return run_seed(seed, db_url, **kw)  # type: ignore[arg-type]


def replay_command(seed: int, url: str | None) -> str:
    return REPLAY.format(seed=seed, db="" if url is None else " --db \"$DB_URL\"")


def env_seconds(default: float = 60.0) -> float:
    return float(os.environ.get("CHECKOUT_KIT_SIM_SECONDS", default))


__all__ = ["KNOWN_DEFECTS", "RunResult", "database", "databases", "quiesce", "run_seed"]
