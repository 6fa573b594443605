"""``flask checkout payments --problems`` and ``resolve-problem`` (review of issue 14):
one query for the list, honest paging, and problems the shop can mark resolved."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from .conftest import Shop


def _with_problems(shop: Shop, count: int) -> list[Any]:
    """``count`` payments, each with one open duplicate (oldest first)."""
    made = []
    for number in range(count):
        payment = shop.create(invoice=f"order-{number}")
        with shop.state.ledger.update(payment.id) as unit:
            unit.record_problem("duplicate", transaction_id=1000 + number,
                                amount=Decimal("100.00"), currency="RUB",
                                detail="a second charge")
        made.append(payment)
    return made


def _rows(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines()]


def test_the_problem_list_is_one_query_whatever_the_number_of_payments(shop: Shop) -> None:
    made = _with_problems(shop, 5)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = shop.state.ledger.engine
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        listed = shop.app.test_cli_runner().invoke(
            args=["checkout", "payments", "--problems", "--json"])
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert listed.exit_code == 0, listed.output
    assert [r["id"] for r in _rows(listed.output) if "problem" not in r] == [
        p.id for p in reversed(made)]
    assert len(statements) == 1, statements


def test_the_problem_list_says_where_the_next_page_starts(shop: Shop) -> None:
    made = _with_problems(shop, 3)
    runner = shop.app.test_cli_runner()
    first = runner.invoke(args=["checkout", "payments", "--problems", "--limit", "2"])
    assert first.exit_code == 0, first.output
    assert "more payments with problems: --offset 2" in first.output
    second = runner.invoke(args=["checkout", "payments", "--problems", "--limit", "2",
                                 "--offset", "2", "--json"])
    assert second.exit_code == 0, second.output
    rows = _rows(second.output)
    assert [r["id"] for r in rows if "problem" not in r] == [made[0].id]
    assert "more" not in second.output


def test_a_resolved_problem_leaves_the_open_list(shop: Shop) -> None:
    first, second = _with_problems(shop, 2)
    runner = shop.app.test_cli_runner()
    listed = _rows(runner.invoke(
        args=["checkout", "payments", "--problems", "--json"]).output)
    problem_id = next(r["problem_id"] for r in listed if r.get("transaction") == 1000)
    done = runner.invoke(args=["checkout", "resolve-problem", str(problem_id), "--note",
                               "refunded the second charge", "--json"])
    assert done.exit_code == 0, done.output
    (row,) = _rows(done.output)
    assert row["payment"] == first.id and row["resolved_at"]
    open_now = _rows(runner.invoke(
        args=["checkout", "payments", "--problems", "--json"]).output)
    assert [r["id"] for r in open_now if "problem" not in r] == [second.id]
    everything = _rows(runner.invoke(
        args=["checkout", "payments", "--problems", "--resolved", "--json"]).output)
    assert [r["id"] for r in everything if "problem" not in r] == [second.id, first.id]
    notes = [e.note for e in shop.state.ledger.history(first.id)]
    assert any(n and "resolved: refunded the second charge" in n for n in notes)
    # Once more: nothing changes; an unknown id is a clear error, not a traceback.
    again = runner.invoke(args=["checkout", "resolve-problem", str(problem_id)])
    assert again.exit_code == 0 and row["resolved_at"] in again.output
    missing = runner.invoke(args=["checkout", "resolve-problem", "999999"])
    assert missing.exit_code == 1 and "ProblemNotFoundError" in missing.output
