"""The simulation as tests: the time-boxed run on each database, replay, and proof
that the invariants catch a ledger that goes wrong."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from checkout_kit.ledger.schema import payments

from . import invariants as inv
from .pg import BACKENDS, PG_URL
from .runner import (
    KNOWN_DEFECTS,
    RunResult,
    database,
    databases,
    env_seconds,
    replay_command,
    run_in_fresh_database,
    run_seed,
)
from .world import World


@pytest.fixture(params=BACKENDS)
def server_url(request: pytest.FixtureRequest) -> str | None:
    """``None`` for SQLite (a file per run), else the PostgreSQL server (a schema per run)."""
    return None if request.param == "sqlite" else PG_URL


def test_simulation_budget(server_url: str | None, tmp_path: Path) -> None:
    """Seeds S, S+1… (S: CHECKOUT_KIT_SIM_START, 0) for CHECKOUT_KIT_SIM_SECONDS (60 s,
    shared by the backends configured); fails on the first run with a violation not in
    KNOWN_DEFECTS."""
    backends = 2 if PG_URL else 1
    budget = env_seconds() / backends
    deadline = time.monotonic() + budget
    first = seed = int(os.environ.get("CHECKOUT_KIT_SIM_START", "0"))
    runs = 0
    with databases(server_url, tmp_path) as fresh:
        while time.monotonic() < deadline or runs == 0:
            with fresh() as url:
                result = run_seed(seed, url)
            _judge(result, server_url)
            seed, runs = seed + 1, runs + 1
    print(f"\nsimulation: {runs} schedules (seeds {first}..{seed - 1}) in {budget:.0f} s; "
          f"tolerated: {sorted(KNOWN_DEFECTS)}")


def _judge(result: RunResult, server_url: str | None) -> None:
    """Fail with the seed, the replay command and the history's tail."""
    failures = result.failures()
    if failures:
        tail = "\n".join(result.history[-60:])
        pytest.fail(
            f"seed {result.seed} broke invariants:\n  " + "\n  ".join(map(str, failures))
            + f"\nreplay: {replay_command(result.seed, server_url)}"
            + f"\n--- history (tail) ---\n{tail}",
            pytrace=False)


def test_one_seed_replays_the_same_history(tmp_path: Path) -> None:
    first = run_in_fresh_database(11, None, tmp_path, stop_on=None)
    again = run_in_fresh_database(11, None, tmp_path, stop_on=None)
    other = run_in_fresh_database(12, None, tmp_path, stop_on=None)
    assert len(first.history) > 100
    assert first.history == again.history
    assert [str(v) for v in first.violations] == [str(v) for v in again.violations]
    assert first.history != other.history


# ---------------------------------------------------------------- the invariants fire


def _write(world: World, in_status: str, **values: object) -> None:
    """Change the first payment in ``in_status`` behind the ledger's back."""
    ledger = world.instances[0].state.ledger
    for model in world.payments:
        if ledger.get(model.payment_id).status.value == in_status:
            with ledger.engine.begin() as conn:
                conn.execute(sa.update(payments).where(payments.c.id == model.payment_id)
                             .values(**values))
            world.corrupt = None  # once
            return


def _succeed_unpaid(world: World) -> None:
    _write(world, "created", status="succeeded")


def _refund_twice(world: World) -> None:
    ledger = world.instances[0].state.ledger
    for model in world.payments:
        payment = ledger.get(model.payment_id)
        if payment.status.value == "succeeded" and payment.refunded_amount > 0:
            _write(world, "succeeded", refunded_amount=min(
                payment.refunded_amount * 2, payment.amount))
            return


def _forget_refund(world: World) -> None:
    ledger = world.instances[0].state.ledger
    for model in world.payments:
        payment = ledger.get(model.payment_id)
        if payment.status.value == "succeeded" and payment.refunded_amount > 0:
            _write(world, "succeeded", refunded_amount=Decimal(0))
            return


def _fail_paid(world: World) -> None:
    if world.quiesced:  # earlier, a refresh may rightly heal it
        _write(world, "succeeded", status="failed")


def _other_amount(world: World) -> None:
    _write(world, "succeeded", amount=Decimal("1.00"))


@pytest.mark.parametrize(("corrupt", "invariant"), [
    (_succeed_unpaid, inv.PAID_MATCHES),
    (_other_amount, inv.PAID_MATCHES),
    (_refund_twice, inv.REFUNDS),
    (_forget_refund, inv.SETTLED),
    (_fail_paid, inv.SETTLED),
])
def test_a_broken_ledger_update_is_caught(
    corrupt: Callable[[World], None], invariant: str, tmp_path: Path
) -> None:
    """Each corruption, done once behind the ledger's back in some seed, is reported
    under its invariant as a new defect (never excused as a known one)."""
    for seed in range(40):
        with database(None, tmp_path) as url:
            result = run_seed(seed, url, corrupt=corrupt, stop_on=None)
        ours = [v for v in result.violations if v.invariant == invariant]
        if ours:
            assert any(v.defect == "new" for v in ours), ours
            assert result.failures(), "a new defect must fail the run"
            return
    pytest.fail(f"no seed exercised {corrupt.__name__}")


def test_a_500_and_a_crash_are_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An inbox that raises answers 500; the invariants report it, and the crash."""
    from checkout_kit.ledger.inbox import Inbox

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("broken inbox")

    monkeypatch.setattr(Inbox, "apply", broken)
    with database(None, tmp_path) as url:
        result = run_seed(3, url, stop_on=None)
    assert any(v.invariant == inv.ANSWERS and "500" in v.detail for v in result.violations)


def test_success_shown_as_failure_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service that tells the payer "declined" whatever the gateway did."""
    from checkout_kit.ledger import service as service_module
    from checkout_kit.ledger.service import PaymentService, PayOutcome

    real = PaymentService.pay

    def pay(self: PaymentService, payment_id: str, **kw: object) -> PayOutcome:
        outcome = real(self, payment_id, **kw)  # type: ignore[arg-type]
        return service_module.PayOutcome("declined", outcome.payment)

    monkeypatch.setattr(PaymentService, "pay", pay)
    for seed in range(10):
        with database(None, tmp_path) as url:
            result = run_seed(seed, url, stop_on=None)
        if any(v.invariant == inv.SHOWN for v in result.violations):
            return
    pytest.fail("no seed paid successfully through the form")


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="CHECKOUT_KIT_TEST_DATABASE_URL is not set")
def test_postgresql_and_sqlite_make_the_same_history(tmp_path: Path) -> None:
    on_sqlite = run_in_fresh_database(11, None, tmp_path, stop_on=None)
    with databases(PG_URL, tmp_path) as fresh, fresh() as url:
        on_postgresql = run_seed(11, url, stop_on=None)
    assert on_postgresql.history == on_sqlite.history
