"""The notification audit log and exactly-once application, on SQLite and PostgreSQL:
the same notification delivered 100 times in a row, and 100 times from 8 threads, is
applied once, and the ledger, the audit log and the signals agree."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from checkout_kit.ledger import PaymentStatus
from checkout_kit.ledger.inbox import Inbox
from checkout_kit.pytest_plugin import SANDBOX_API_SECRET, send_notification
from checkout_kit.shop import CheckoutKit, signals
from checkout_kit.shop.state import KitState, state

PAY = "/checkout/notifications/pay"


@pytest.fixture
def kit_app(migrated_url: str, tmp_path: Path) -> Iterator[Flask]:
    """A shop on the test database (no gateway needed: notifications come in)."""
    app = Flask("audit_shop", instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="s", TESTING=True, CHECKOUT_KIT_PUBLIC_ID="pk_test",
                      CHECKOUT_KIT_API_SECRET=SANDBOX_API_SECRET,
                      CHECKOUT_KIT_DATABASE_URL=migrated_url)
    CheckoutKit(app)
    yield app
    state(app).ledger.engine.dispose()
    state(app).client.close()


class Heard:
    """Signals received (thread-safe)."""

    def __init__(self, app: Flask) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        for name, signal in (("succeeded", signals.payment_succeeded),
                             ("pay", signals.notification_pay),
                             ("any", signals.notification_received)):
            signal.connect(self._receiver(name), sender=app, weak=False)

    def _receiver(self, name: str) -> Any:
        def receive(_sender: Any, **kw: Any) -> None:
            with self._lock:
                self.calls.append((name, kw))
        return receive

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.calls if n == name)


def _payment(app: Flask) -> Any:
    with app.test_request_context():
        return CheckoutKit().create_payment(invoice_id="A-1", amount="1500.00",
                                            description="Order A-1")


def _pay_fields(payment: Any) -> dict[str, str]:
    return {"TransactionId": "700100", "InvoiceId": payment.invoice_id, "Amount": "1500.00",
            "Currency": "RUB"}


def _agree(kit: KitState, payment_id: str, heard: Heard, deliveries: int) -> None:
    history = [str(e.new_status) for e in kit.ledger.history(payment_id)]
    assert history == ["created", "processing", "succeeded"]
    stored = kit.ledger.get(payment_id)
    assert stored.status is PaymentStatus.SUCCEEDED and stored.gateway_transaction_id == 700100
    log = kit.inbox.list(type="Pay", limit=1000)
    assert len(log) == deliveries
    assert sum(r.applied for r in log) == 1
    assert {r.outcome for r in log} == {"applied", "duplicate"}
    assert all(r.signature_valid and r.code == 0 and r.payment_id == payment_id for r in log)
    assert kit.inbox.applied_count(("Pay", "700100", "")) == 1
    assert (heard.count("succeeded"), heard.count("pay"), heard.count("any")) == (1, 1, 1)
    (pay_call,) = [kw for name, kw in heard.calls if name == "pay"]
    assert pay_call["record"].applied and pay_call["payment"].status == "succeeded"


def test_a_notification_delivered_100_times_in_a_row_is_applied_once(kit_app: Flask) -> None:
    heard = Heard(kit_app)
    payment = _payment(kit_app)
    client = kit_app.test_client()
    for _ in range(100):
        sent = send_notification(client, "Pay", path=PAY, fields=_pay_fields(payment))
        assert (sent.status_code, sent.code) == (200, 0)
    _agree(state(kit_app), payment.id, heard, 100)


def test_a_notification_delivered_100_times_from_8_threads_is_applied_once(
        kit_app: Flask) -> None:
    heard = Heard(kit_app)
    payment = _payment(kit_app)
    start = threading.Barrier(8)

    def deliver(n: int) -> tuple[int, int | None]:
        if n < 8:
            start.wait()  # the first eight leave together
        sent = send_notification(kit_app.test_client(), "Pay", path=PAY,
                                 fields=_pay_fields(payment))
        return sent.status_code, sent.code

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(deliver, range(100)))
    assert answers == [(200, 0)] * 100
    _agree(state(kit_app), payment.id, heard, 100)


def test_a_notification_without_a_payment_is_applied_once_under_its_key(
        kit_app: Flask) -> None:
    # No payment row to lock: the key's primary key refuses the second delivery.
    fields = {"Id": "sc_1", "Status": "Active", "SuccessfulTransactionsNumber": "3"}
    heard: list[Any] = []
    signals.notification_recurrent.connect(lambda _s, **kw: heard.append(kw), kit_app,
                                           weak=False)

    def deliver(_n: int) -> int | None:
        return send_notification(kit_app.test_client(), "Recurrent",
                                 path="/checkout/notifications/recurrent", fields=fields).code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(deliver, range(40))) == [0] * 40
    log = state(kit_app).inbox.list(type="Recurrent")
    assert len(log) == 40 and sum(r.applied for r in log) == 1 and len(heard) == 1


def test_the_audit_log_keeps_every_request_and_its_bytes(kit_app: Flask) -> None:
    payment = _payment(kit_app)
    client = kit_app.test_client()
    good = send_notification(client, "Pay", path=PAY, fields=_pay_fields(payment))
    forged = send_notification(client, "Pay", path=PAY, fields=_pay_fields(payment),
                               secret="another secret")
    assert (good.status_code, forged.status_code, forged.code) == (200, 401, 13)
    inbox: Inbox = state(kit_app).inbox
    refused, applied = inbox.list(type="Pay")
    assert not refused.signature_valid and not refused.applied and refused.outcome == "refused"
    assert "SignatureVerificationError" in (refused.error or "")
    assert applied.applied and applied.outcome == "applied"
    assert b"InvoiceId=A-1" in applied.body and applied.method == "POST"
    assert {h.lower() for h in applied.headers} >= {"content-hmac", "x-content-hmac",
                                                     "content-type"}
    assert applied.key == "Pay:700100:" and refused.key is None
    assert "user@example.com" not in repr(applied)  # the body stays out of reprs


def test_an_outlandish_signed_key_is_still_applied_once(kit_app: Flask) -> None:
    # A Receipt's identifiers are free text (UNCONFIRMED fields): too long for the key's
    # column, or holding a NUL, they are stored by their hash, never a database error.
    client = kit_app.test_client()
    for ident in ("9" * 400, "doc\x00ument"):
        # The fiscal document is the key (webhooks.notification_key): its fields are odd.
        fields = {"FiscalSign": ident, "RegNumber": "Income\x00" + "x" * 400}
        for _ in range(3):
            sent = send_notification(client, "Receipt", path="/checkout/notifications/receipt",
                                     fields=fields)
            assert (sent.status_code, sent.code) == (200, 0)
    log = state(kit_app).inbox.list(type="receipt")
    assert len(log) == 6 and sum(r.applied for r in log) == 2
    assert all(r.outcome in ("recorded", "duplicate") for r in log)
