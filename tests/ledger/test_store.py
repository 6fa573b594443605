"""The Ledger store: creating, reading, locking and the append-only history, on SQLite
and (with CHECKOUT_KIT_TEST_DATABASE_URL) PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkout_kit.errors import (
    InvalidRequestError,
    InvalidTransitionError,
    JSONCodecError,
    MoneyError,
    PaymentConflictError,
    PaymentNotFoundError,
    ProblemNotFoundError,
)
from checkout_kit.ledger import Ledger, PaymentStatus, ProblemKind
from checkout_kit.ledger.schema import attempts, events, payments
from checkout_kit.ledger.store import mask_email

from .conftest import Clock, together

BASE: dict[str, Any] = {
    "invoice_id": "inv-1", "amount": "100.00", "currency": "RUB", "description": "Order 1",
}


def _counts(ledger: Ledger) -> tuple[int, int, int]:
    with ledger.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (payments, attempts, events)
        )


def test_create_and_read_back(ledger: Ledger, clock: Clock) -> None:
    payment = ledger.create_payment(
        **BASE, account_id="user-7", email="jane@example.com", scheme="auth",
        success_url="https://shop.test/ok", fail_url="https://shop.test/fail",
        metadata={"order": 17, "price": Decimal("99.90"), "items": ["a", "b"]},
    )
    assert payment.id.startswith("pay_") and len(payment.id) >= 20
    assert payment.status is PaymentStatus.CREATED
    assert payment.amount == Decimal("100.00") and str(payment.amount) == "100.00"
    assert payment.refunded_amount == 0
    assert payment.metadata == {"order": 17, "price": Decimal("99.90"), "items": ["a", "b"]}
    assert payment.created_at == clock.now and payment.created_at.tzinfo is not None
    assert ledger.get(payment.id) == payment
    assert ledger.get_by_invoice("inv-1") == payment
    assert [e.new_status for e in ledger.history(payment.id)] == [PaymentStatus.CREATED]
    assert ledger.attempts(payment.id) == []


@pytest.mark.parametrize("amount", ["0.01", "99999999999.99", "12345678901.23", "1"])
def test_amounts_are_exact(ledger: Ledger, amount: str) -> None:
    payment = ledger.create_payment(**{**BASE, "amount": amount})
    stored = ledger.get(payment.id).amount
    assert stored == Decimal(amount) and isinstance(stored, Decimal)
    assert stored.as_tuple().exponent == -2


def test_the_currency_decides_the_decimals(ledger: Ledger) -> None:
    payment = ledger.create_payment(**{**BASE, "currency": "usd"})
    assert payment.currency == "USD"
    with pytest.raises(MoneyError):
        ledger.create_payment(**{**BASE, "invoice_id": "x", "amount": "1.001"})


def test_same_invoice_same_data_is_the_same_payment(ledger: Ledger) -> None:
    first = ledger.create_payment(**BASE, metadata={"a": 1})
    again = ledger.create_payment(**{**BASE, "amount": Decimal("100")}, metadata={"a": 1})
    assert again == first
    assert _counts(ledger) == (1, 0, 1)


@pytest.mark.parametrize("change", [
    {"amount": "100.01"}, {"currency": "USD"}, {"description": "other"},
    {"scheme": "auth"}, {"email": "a@b.c"}, {"metadata": {"a": 2}}, {"account_id": "u"},
])
def test_same_invoice_other_data_is_a_conflict(ledger: Ledger, change: dict[str, Any]) -> None:
    first = ledger.create_payment(**BASE, metadata={"a": 1})
    with pytest.raises(PaymentConflictError) as info:
        ledger.create_payment(**{**BASE, "metadata": {"a": 1}, **change})
    assert info.value.payment_id == first.id
    assert _counts(ledger) == (1, 0, 1)


BAD_INPUT: list[tuple[dict[str, Any], type[Exception], str | None]] = [
    ({"invoice_id": ""}, InvalidRequestError, "invoice_id"),
    ({"invoice_id": "  "}, InvalidRequestError, "invoice_id"),
    ({"invoice_id": 17}, InvalidRequestError, "invoice_id"),
    ({"invoice_id": "x" * 256}, InvalidRequestError, "invoice_id"),
    ({"invoice_id": "a\x00b"}, InvalidRequestError, "invoice_id"),
    ({"description": ""}, InvalidRequestError, "description"),
    ({"amount": 10.5}, MoneyError, None),
    ({"amount": "-1"}, MoneyError, None),
    ({"amount": "0"}, MoneyError, None),
    ({"amount": "NaN"}, MoneyError, None),
    ({"amount": "1e30"}, MoneyError, None),
    ({"amount": "abc"}, MoneyError, None),
    ({"currency": "XXX"}, MoneyError, None),
    ({"currency": None}, InvalidRequestError, "currency"),
    ({"scheme": "twostage"}, InvalidRequestError, "scheme"),
    ({"email": "not-an-address"}, InvalidRequestError, "email"),
    ({"account_id": ""}, InvalidRequestError, "account_id"),
    ({"success_url": "x" * 3000}, InvalidRequestError, "success_url"),
    ({"success_url": "javascript:alert(document.cookie)"}, InvalidRequestError, "success_url"),
    ({"fail_url": "data:text/html,<script>alert(1)</script>"}, InvalidRequestError,
     "fail_url"),
    ({"fail_url": "//evil.example/cart"}, InvalidRequestError, "fail_url"),
    ({"metadata": {"price": 1.5}}, MoneyError, None),
    ({"metadata": {"n": Decimal("NaN")}}, JSONCodecError, None),
]


@pytest.mark.parametrize(("change", "error", "field"), BAD_INPUT)
def test_bad_input_raises_a_typed_error_and_stores_nothing(
    ledger: Ledger, change: dict[str, Any], error: type[Exception], field: str | None
) -> None:
    with pytest.raises(error) as info:
        ledger.create_payment(**{**BASE, **change})
    if field is not None:
        assert getattr(info.value, "field", None) == field
    assert _counts(ledger) == (0, 0, 0)


def test_not_found(ledger: Ledger) -> None:
    for call in (ledger.get, ledger.history, ledger.attempts):
        with pytest.raises(PaymentNotFoundError) as info:
            call("pay_missing")
        assert info.value.payment_id == "pay_missing"
    with pytest.raises(PaymentNotFoundError):
        ledger.get_by_invoice("nope")
    with pytest.raises(PaymentNotFoundError):
        ledger.transition("pay_missing", "processing")


def test_transitions_append_history_and_bump_the_version(ledger: Ledger, clock: Clock) -> None:
    payment = ledger.create_payment(**BASE)
    clock.advance(timedelta(seconds=5))
    moved = ledger.transition(payment.id, PaymentStatus.PROCESSING, note="claimed")
    clock.advance(timedelta(seconds=5))
    done = ledger.transition(payment.id, "succeeded", gateway_transaction_id=1000001)
    assert (moved.version, done.version) == (2, 3)
    assert done.updated_at == clock.now and done.created_at == payment.created_at
    assert done.gateway_transaction_id == 1000001
    history = ledger.history(payment.id)
    assert [(e.old_status, e.new_status) for e in history] == [
        (None, "created"), ("created", "processing"), ("processing", "succeeded")]
    assert history[1].note == "claimed"
    assert [e.created_at for e in history] == [
        payment.created_at, payment.created_at + timedelta(seconds=5), clock.now]


def test_a_forbidden_transition_changes_nothing(ledger: Ledger) -> None:
    payment = ledger.create_payment(**BASE)
    with pytest.raises(InvalidTransitionError) as info:
        ledger.transition(payment.id, "succeeded", gateway_transaction_id=5)
    assert (info.value.old, info.value.new) == ("created", "succeeded")
    assert ledger.get(payment.id) == payment
    assert len(ledger.history(payment.id)) == 1


def test_an_error_inside_a_unit_rolls_everything_back(ledger: Ledger) -> None:
    payment = ledger.create_payment(**BASE)
    with pytest.raises(RuntimeError), ledger.update(payment.id) as unit:
        unit.transition("processing")
        unit.add_attempt("charge", amount=payment.amount)
        raise RuntimeError("crash before commit")
    assert ledger.get(payment.id) == payment
    assert ledger.attempts(payment.id) == []
    assert len(ledger.history(payment.id)) == 1


def test_only_some_columns_may_change(ledger: Ledger) -> None:
    payment = ledger.create_payment(**BASE)
    for column in ("invoice_id", "currency", "scheme", "id", "version"):
        with pytest.raises(TypeError), ledger.update(payment.id) as unit:
            unit.update(**{column: "x"})
    assert ledger.get(payment.id) == payment


def test_the_database_refuses_refunds_beyond_the_amount(ledger: Ledger) -> None:
    payment = ledger.create_payment(**BASE)
    with pytest.raises(sa.exc.IntegrityError), ledger.update(payment.id) as unit:
        unit.update(refunded_amount=Decimal("100.01"))
    assert ledger.get(payment.id).refunded_amount == 0


def test_attempt_numbers_and_request_ids_are_unique(ledger: Ledger) -> None:
    payment = ledger.create_payment(**BASE)
    with ledger.update(payment.id) as unit:
        first = unit.add_attempt("charge", amount=payment.amount)
        second = unit.add_attempt("charge", amount=payment.amount)
        unit.finish_attempt(first, "declined", reason_code=5051)
    assert (first.number, second.number) == (1, 2)
    assert first.request_id != second.request_id
    stored = ledger.attempts(payment.id)
    assert [(a.number, a.outcome, a.reason_code) for a in stored] == [
        (1, "declined", 5051), (2, "pending", None)]
    with pytest.raises(sa.exc.IntegrityError), ledger.update(payment.id) as unit:
        unit.add_attempt("charge", request_id=first.request_id)


def test_list_payments(ledger: Ledger, clock: Clock) -> None:
    ids = []
    for n in range(5):
        clock.advance(timedelta(minutes=1))
        ids.append(ledger.create_payment(**{**BASE, "invoice_id": f"inv-{n}"}).id)
    ledger.transition(ids[1], "processing")
    ledger.transition(ids[3], "cancelled")
    assert [p.id for p in ledger.list_payments()] == ids[::-1]
    assert [p.id for p in ledger.list_payments(limit=2, offset=1)] == [ids[3], ids[2]]
    assert [p.id for p in ledger.list_payments("processing")] == [ids[1]]
    both = ledger.list_payments(frozenset({PaymentStatus.PROCESSING, PaymentStatus.CANCELLED}))
    assert [p.id for p in both] == [ids[3], ids[1]]
    assert ledger.ids_to_reconcile({PaymentStatus.PROCESSING}) == [ids[1]]
    with pytest.raises(InvalidRequestError):
        ledger.list_payments("paid")
    with pytest.raises(InvalidRequestError):
        ledger.list_payments(limit=0)


def test_repr_masks_email_and_token(ledger: Ledger) -> None:
    payment = ledger.create_payment(**BASE, email="jane.doe@example.com")
    with ledger.update(payment.id) as unit:
        unit.update(token="tk_255c9a6a7fd2b3c3b3e8b3b8e9f102c3")
    text = repr(ledger.get(payment.id))
    assert "jane.doe" not in text and "j***@example.com" in text
    assert "tk_255c9a6a7fd2b3c3b3e8b3b8e9f102c3" not in text
    assert mask_email("nobody") == "***"


def test_the_clock_must_be_aware(migrated_url: str) -> None:
    ledger = Ledger(migrated_url, clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        ledger.create_payment(**BASE)
    ledger.engine.dispose()
    aware = Ledger(migrated_url, clock=lambda: datetime(2026, 1, 1, 3, tzinfo=UTC))
    assert aware.create_payment(**BASE).created_at == datetime(2026, 1, 1, 3, tzinfo=UTC)
    aware.engine.dispose()


def test_concurrent_creates_of_one_invoice_make_one_payment(ledger: Ledger) -> None:
    results = together(6, lambda _n: ledger.create_payment(**BASE))
    assert len({p.id for p in results}) == 1 and len(results) == 6
    assert _counts(ledger) == (1, 0, 1)


def test_concurrent_transitions_under_the_row_lock(ledger: Ledger) -> None:
    # Eight workers try to claim the same payment; the lock lets exactly one win.
    payment = ledger.create_payment(**BASE)

    def claim(n: int) -> int:
        with ledger.update(payment.id) as unit:
            if unit.payment.status is PaymentStatus.CREATED:
                unit.transition("processing", note=f"worker {n}")
                unit.add_attempt("charge", amount=payment.amount)
                return n
            unit.transition("processing")  # forbidden: processing -> processing
        raise AssertionError("unreachable")

    results = together(8, claim)
    wins = [r for r in results if isinstance(r, int)]
    losses = [r for r in results if isinstance(r, InvalidTransitionError)]
    assert len(wins) == 1 and len(losses) == 7
    assert len(ledger.attempts(payment.id)) == 1
    assert [e.new_status for e in ledger.history(payment.id)] == ["created", "processing"]
    assert ledger.get(payment.id).version == 2


def test_reads_do_not_wait_for_a_unit(ledger: Ledger) -> None:
    # Pages only read: they must not queue behind a payment's lock (on SQLite, the
    # write lock a unit's BEGIN IMMEDIATE takes) and they see the last commit.
    payment = ledger.create_payment(**BASE)
    read: list[Any] = []

    def reads() -> None:
        read.extend((ledger.get(payment.id), ledger.get_by_invoice(BASE["invoice_id"]),
                     ledger.history(payment.id), ledger.attempts(payment.id)))

    with ledger.update(payment.id) as unit:
        unit.update(token="tk_1")
        reader = threading.Thread(target=reads)
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive(), "a read waited for the unit's lock"
    assert read[0] == read[1] == payment and read[0].token is None
    assert len(read[2]) == 1 and read[3] == []
    assert ledger.get(payment.id).token == "tk_1"


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cents=st.integers(min_value=1, max_value=9_999_999_999_999))
def test_any_amount_round_trips_exactly(ledger: Ledger, cents: int) -> None:
    amount = Decimal(cents).scaleb(-2)
    payment = ledger.create_payment(**{**BASE, "invoice_id": f"rt-{cents}", "amount": amount})
    assert ledger.get(payment.id).amount == amount
    with ledger.update(payment.id) as unit:
        unit.update(refunded_amount=amount)
    assert ledger.get(payment.id).refunded_amount == amount


def test_a_lookup_is_claimed_once_per_interval_across_ledgers(
        ledger: Ledger, migrated_url: str, clock: Clock) -> None:
    # Two app instances on one database: the pending page of either asks the gateway
    # at most once per interval for one payment.
    other = Ledger(migrated_url, clock=clock)
    try:
        payment = ledger.create_payment(**BASE)
        second = ledger.create_payment(**{**BASE, "invoice_id": "inv-2"})
        every = timedelta(seconds=10)
        assert ledger.claim_lookup(payment.id, every) is True
        assert other.claim_lookup(payment.id, every) is False
        assert ledger.claim_lookup(payment.id, every) is False
        assert other.claim_lookup(second.id, every) is True  # per payment
        clock.advance(timedelta(seconds=9))
        assert other.claim_lookup(payment.id, every) is False
        clock.advance(timedelta(seconds=1))
        assert other.claim_lookup(payment.id, every) is True
        assert ledger.claim_lookup(payment.id, every) is False
        with pytest.raises(PaymentNotFoundError):
            ledger.claim_lookup("pay_missing", every)
    finally:
        other.engine.dispose()


def test_concurrent_claims_give_one_lookup(ledger: Ledger, migrated_url: str,
                                           clock: Clock) -> None:
    payment = ledger.create_payment(**BASE)
    ledgers = [Ledger(migrated_url, clock=clock) for _ in range(4)]
    try:
        results = together(4, lambda n: ledgers[n].claim_lookup(payment.id,
                                                               timedelta(seconds=10)))
        assert sorted(results) == [False, False, False, True]
    finally:
        for lg in ledgers:
            lg.engine.dispose()


# --- problems: the open list and its resolution (review of issue 14) ---------------------------


def test_payments_with_problems_pages_filters_and_resolves(ledger: Ledger, clock: Clock) -> None:
    made = []
    for number in range(3):
        payment = ledger.create_payment(**{**BASE, "invoice_id": f"inv-{number}"})
        with ledger.update(payment.id) as unit:
            for tx in (10 * number + 1, 10 * number + 2):
                unit.record_problem("duplicate", transaction_id=tx, amount=Decimal("1.00"),
                                    currency="RUB", detail="second charge")
        made.append(payment)
        clock.advance(timedelta(seconds=1))
    page = ledger.payments_with_problems(limit=2)
    assert page.more and [p.id for p, _ in page.payments] == [made[2].id, made[1].id]
    assert [q.gateway_transaction_id for q in page.payments[0][1]] == [22, 21]
    assert all(q.kind is ProblemKind.DUPLICATE for _, qs in page.payments for q in qs)
    rest = ledger.payments_with_problems(limit=2, offset=2)
    assert not rest.more and [p.id for p, _ in rest.payments] == [made[0].id]
    assert ledger.payments_with_problems(status="succeeded").payments == []
    for problem in ledger.problems(made[0].id):
        resolved = ledger.resolve_problem(problem.id, note="refunded")
        assert resolved.resolved_at is not None
    assert [p.id for p, _ in ledger.payments_with_problems().payments] == [
        made[2].id, made[1].id]
    assert len(ledger.payments_with_problems(include_resolved=True).payments) == 3
    assert ledger.problems(made[0].id, open_only=True) == []
    with pytest.raises(ProblemNotFoundError):
        ledger.resolve_problem(10**9)
    for beyond in (2**63, -(2**63) - 1, 10**30):  # past any column: still "not found"
        with pytest.raises(ProblemNotFoundError):
            ledger.resolve_problem(beyond)
    # An unknown kind is refused before any write.
    with pytest.raises(ValueError), ledger.update(made[0].id) as unit:
        unit.record_problem("oops", transaction_id=1, amount=None, currency=None,
                                detail="x")


def test_claim_lookup_does_not_read_the_payment_again(ledger: Ledger, clock: Clock) -> None:
    # Review finding: the pending page has the payment; every claim re-read it.
    payment = ledger.create_payment(**BASE)
    every = timedelta(seconds=5)
    assert ledger.claim_lookup(payment.id, every) is True  # the first: checks it exists
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sa.event.listen(ledger.engine, "before_cursor_execute", seen)
    try:
        assert ledger.claim_lookup(payment.id, every) is False
        clock.advance(every)
        assert ledger.claim_lookup(payment.id, every) is True
    finally:
        sa.event.remove(ledger.engine, "before_cursor_execute", seen)
    assert statements and not [s for s in statements if "FROM checkout_payments" in s]
