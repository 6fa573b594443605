"""The notification routes' edges: the body limit exactly, the sender's own address,
and the keywords every signal of an applied notification carries (mutation survivors
of issue 14 §4)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from checkout_kit import webhooks
from checkout_kit.pytest_plugin import send_notification
from checkout_kit.shop import signals

from .conftest import Shop, make_shop

BASE = "/checkout/notifications"
LIMIT = webhooks.MAX_BODY_BYTES


def _fields(payment: Any, **extra: str) -> dict[str, str]:
    return {"InvoiceId": payment.invoice_id, "Amount": str(payment.amount),
            "Currency": payment.currency, **extra}


@pytest.mark.parametrize(("size", "status"), [(LIMIT, 401), (LIMIT + 1, 413)],
                         ids=["at-the-limit", "one-over"])
def test_a_post_body_at_the_limit_is_read_and_one_byte_more_is_not(
        shop: Shop, size: int, status: int) -> None:
    sized = shop.client.post(f"{BASE}/pay", data=b"x" * size,
                             content_type="application/x-www-form-urlencoded")
    assert (sized.status_code, sized.get_json()) == (status, {"code": 13})


@pytest.mark.parametrize(("size", "status"), [(LIMIT, 401), (LIMIT + 1, 413)],
                         ids=["at-the-limit", "one-over"])
def test_a_body_without_a_length_is_cut_at_the_limit(
        shop: Shop, size: int, status: int) -> None:
    # No Content-Length (a chunked upload): only reading tells the size.
    sent = shop.client.post(f"{BASE}/pay", input_stream=io.BytesIO(b"x" * size),
                            content_type="application/x-www-form-urlencoded",
                            headers={"Transfer-Encoding": "chunked"},
                            # as a server that de-chunks says it (gunicorn, werkzeug)
                            environ_overrides={"wsgi.input_terminated": True})
    assert (sent.status_code, sent.get_json()) == (status, {"code": 13})
    (row,) = shop.state.inbox.list()
    assert row.outcome == "refused"
    # At the limit it is read whole (then refused for its missing signature); over it,
    # nothing of it is kept.
    assert len(row.body) == (size if status == 401 else 0)


@pytest.mark.parametrize(("size", "status"), [(LIMIT, 401), (LIMIT + 1, 413)],
                         ids=["at-the-limit", "one-over"])
def test_a_get_query_at_the_limit_is_read_and_one_byte_more_is_not(
        shop: Shop, size: int, status: int) -> None:
    sent = shop.client.get(f"{BASE}/pay?" + "x" * (size - 2) + "=1")
    assert (sent.status_code, sent.get_json()) == (status, {"code": 13})


def test_the_sender_check_reads_the_senders_own_address(
        tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    shop = make_shop(tmp_path, cloudpayments_sandbox_keys, CHECKOUT_KIT_NOTIFICATION_IP_CHECK=True,
                     CHECKOUT_KIT_NOTIFICATION_NETWORKS=["203.0.113.0/24"])
    payment = shop.create()
    inside = send_notification(shop.client, "Check", path=f"{BASE}/check",
                               fields=_fields(payment), remote_addr="203.0.113.5")
    assert (inside.status_code, inside.code) == (200, 0)
    outside = send_notification(shop.client, "Check", path=f"{BASE}/check",
                                fields=_fields(payment), remote_addr="198.51.100.5")
    assert (outside.status_code, outside.code) == (403, 13)


def test_the_signals_of_an_applied_notification_carry_their_keywords(shop: Shop) -> None:
    payment = shop.create()
    got: dict[str, dict[str, Any]] = {}
    for name in ("payment_succeeded", "notification_received", "payment_refunded"):
        getattr(signals, name).connect(
            lambda _app, _name=name, **kw: got.__setitem__(_name, kw), shop.app, weak=False)
    sent = send_notification(shop.client, "Pay", path=f"{BASE}/pay",
                             fields=_fields(payment, TransactionId="321"))
    assert sent.code == 0
    paid = got["payment_succeeded"]
    last = shop.state.ledger.history(payment.id)[-1]
    assert (paid["payment"].id, paid["old_status"]) == (payment.id, str(last.old_status))
    told = got["notification_received"]
    assert told["fields"]["TransactionId"] == "321" and told["payment"].id == payment.id
    refund = send_notification(shop.client, "Refund", path=f"{BASE}/refund", fields={
        "TransactionId": "322", "PaymentTransactionId": "321", "Amount": "10.00",
        "InvoiceId": payment.invoice_id})
    assert refund.code == 0
    part = got["payment_refunded"]  # a partial refund keeps the status: no change event
    assert (part["payment"].id, part["old_status"], str(part["amount"])) == (
        payment.id, "succeeded", "10.00")
