"""The shop's Python API, its signals and the ``flask checkout`` commands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from checkout_kit.errors import (
    InvalidRequestError,
    InvalidTransitionError,
    PaymentConflictError,
)
from checkout_kit.ledger import PaymentStatus
from checkout_kit.shop import signals

from .conftest import DECLINED, NO_3DS, Shop


@pytest.fixture
def received(shop: Shop) -> Iterator[list[tuple[str, str, str | None]]]:
    seen: list[tuple[str, str, str | None]] = []
    names = ("created", "authorized", "succeeded", "failed", "refunded", "cancelled")
    handlers = []
    for name in names:
        def handler(sender: Any, payment: Any, old_status: str | None, _name: str = name,
                    **extra: Any) -> None:
            assert sender is shop.app
            seen.append((_name, str(payment.status), old_status))
        getattr(signals, f"payment_{name}").connect(handler, sender=shop.app)
        handlers.append((name, handler))
    yield seen
    for name, handler in handlers:
        getattr(signals, f"payment_{name}").disconnect(handler)


def test_create_payment_gives_a_checkout_url(shop: Shop, received: list[Any]) -> None:
    payment = shop.create(amount="10.5", metadata={"order": 7})
    assert payment.checkout_url == f"http://localhost/checkout/pay/{payment.id}"
    assert payment.amount == Decimal("10.50") and payment.status is PaymentStatus.CREATED
    again = shop.create(amount="10.50", metadata={"order": 7})
    assert again.id == payment.id
    assert received == [("created", "created", None)]  # once, not for the repeat
    with pytest.raises(PaymentConflictError):
        shop.create(amount="11.00")


def test_two_stage_confirm_and_refunds_with_signals(shop: Shop, received: list[Any]) -> None:
    payment = shop.create(scheme="auth", amount="100.00")
    shop.pay(payment.id, NO_3DS)
    with shop.app.app_context():
        confirmed = shop.kit.confirm(payment, "80.00")
        assert confirmed.status is PaymentStatus.SUCCEEDED and confirmed.amount == Decimal("80")
        part = shop.kit.refund(payment.id, "30")
        assert part.status is PaymentStatus.SUCCEEDED
        assert part.refunded_amount == Decimal("30.00")
        rest = shop.kit.refund(payment.id)
        assert rest.status is PaymentStatus.REFUNDED
        with pytest.raises(InvalidTransitionError):
            shop.kit.refund(payment.id)
    assert [r[0] for r in received] == [
        "created", "authorized", "succeeded", "refunded", "refunded"]


def test_void_and_failure_signals(shop: Shop, received: list[Any]) -> None:
    held = shop.create("order-1", scheme="auth")
    shop.pay(held.id, NO_3DS)
    declined = shop.create("order-2")
    shop.pay(declined.id, DECLINED)
    with shop.app.app_context():
        assert shop.kit.void(held).status is PaymentStatus.CANCELLED
    assert [r[0] for r in received] == [
        "created", "authorized", "created", "failed", "cancelled"]


def test_reconcile_settles_a_widget_payment_found_only_by_invoice(shop: Shop) -> None:
    payment = shop.create()
    with shop.app.app_context():
        assert shop.kit.refresh(payment).status is PaymentStatus.CREATED
        shop.state.client.charge(payment.amount, ip_address="203.0.113.1", invoice_id="order-1",
                                 cryptogram=shop.sandbox.make_cryptogram(NO_3DS))
        assert shop.kit.refresh(payment).status is PaymentStatus.SUCCEEDED


# --------------------------------------------------------------------------- CLI


def cli(shop: Shop, *args: str) -> Any:
    return shop.app.test_cli_runner().invoke(args=["checkout", *args])


def test_cli_commands(shop: Shop) -> None:
    result = cli(shop, "create", "--invoice", "cli-1", "--amount", "99.90",
                 "--description", "From the CLI", "--scheme", "auth", "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    assert row["amount"] == "99.90" and row["checkout_url"].endswith(f"/pay/{row['id']}")
    shop.pay(row["id"], NO_3DS)
    confirm = cli(shop, "confirm", row["id"], "--amount", "50")
    assert confirm.exit_code == 0 and "status=succeeded" in confirm.output
    refund = cli(shop, "refund", row["id"], "--amount", "10", "--json")
    assert json.loads(refund.output)["refunded"] == "10.00"
    listing = cli(shop, "payments", "--history")
    assert row["id"] in listing.output and "new_status=authorized" in listing.output
    assert "0 payment(s)" in cli(shop, "reconcile").output
    bad = cli(shop, "void", row["id"])
    assert bad.exit_code == 1 and "InvalidTransitionError" in bad.output
    assert "Traceback" not in bad.output
    missing = cli(shop, "refund", "no-such-payment")
    assert missing.exit_code == 1 and "PaymentNotFoundError" in missing.output
    bad_amount = cli(shop, "refund", row["id"], "--amount", "lots")
    assert bad_amount.exit_code == 1 and "MoneyError" in bad_amount.output


@pytest.mark.parametrize("url", [
    "javascript:alert(document.cookie)", "JavaScript:alert(1)", " javascript:alert(1)",
    "vbscript:msgbox(1)", "data:text/html,<script>alert(1)</script>", "/thanks",
    "//evil.example/thanks", "ftp://shop.test/thanks", "https://shop.test/a b",
])
@pytest.mark.parametrize("field", ["success_url", "fail_url"])
def test_redirect_urls_must_be_http_urls(shop: Shop, received: list[Any], field: str,
                                         url: str) -> None:
    # The result pages link to them: a javascript: URL would run on the payment page.
    with pytest.raises(InvalidRequestError) as exc:
        shop.create("bad-url", **{field: url})
    assert exc.value.field == field
    assert shop.state.ledger.list_payments() == [] and received == []
    ok = shop.create("good-url", success_url="https://shop.test/thanks?order=1",
                     fail_url="http://localhost:5000/cart")
    assert ok.success_url == "https://shop.test/thanks?order=1"
    result = cli(shop, "create", "--invoice", "cli-bad", "--amount", "1",
                 "--description", "x", f"--{field.replace('_', '-')}", url.strip())
    assert result.exit_code == 1 and "InvalidRequestError" in result.output


def test_cli_db_upgrade(shop: Shop) -> None:
    result = cli(shop, "db", "upgrade")
    assert result.exit_code == 0 and "current version" in result.output
