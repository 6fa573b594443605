"""The pytest plugin's ``send_notification`` against a tiny Flask app built on webhooks.receive."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request

from checkout_kit import webhooks as wh
from checkout_kit.errors import NotificationError
from checkout_kit.pytest_plugin import (
    GATEWAY_SENDER_ADDRESS,
    SANDBOX_API_SECRET,
    SentNotification,
    send_notification,
)


def make_shop(secret: str = SANDBOX_API_SECRET, encoding: str = "utf-8",
              senders: wh.SenderCheck | None = None) -> Flask:
    """A shop endpoint: the exact bytes into ``receive``, every answer JSON, each key once."""
    app = Flask(__name__)
    app.config["received"] = []
    applied: set[tuple[str, str, str]] = set()
    check = senders or wh.SenderCheck()

    @app.route("/cp/<kind>", methods=["GET", "POST"])
    def notify(kind: str) -> tuple[bytes, int, dict[str, str]]:
        if not check.allows(request.remote_addr, request.headers.get("X-Forwarded-For")):
            status, body = wh.answer(wh.REJECT_CODE)
        else:
            raw = request.get_data() if request.method == "POST" else request.query_string
            try:
                got = wh.receive(request.method, raw, request.headers, secret,
                                 expected_type=kind, encoding=encoding)
            except NotificationError as exc:
                status, body = wh.answer_error(exc, type=kind)
            else:
                if got.key not in applied:
                    applied.add(got.key)
                    app.config["received"].append(got)
                status, body = wh.answer(0)
        return body, status, {"Content-Type": "application/json"}

    return app


@pytest.mark.parametrize("kind", wh.WEBHOOK_TYPES)
def test_each_type_is_delivered_and_verified(kind: str) -> None:
    app = make_shop()
    sent = send_notification(app, kind, path=f"/cp/{kind}")
    assert (sent.status_code, sent.code) == (200, 0)
    (got,) = app.config["received"]
    assert got.type == kind and dict(got.fields) == dict(sent.fields)


def test_get_windows_1251_through_a_test_client_with_fields() -> None:
    app = make_shop(encoding="windows-1251")
    sent = send_notification(app.test_client(), "Pay", path="/cp/Pay", method="GET",
                             encoding="windows-1251",
                             fields={"TransactionId": "77", "Description": "Оплата + 5%"})
    assert sent.code == 0
    (got,) = app.config["received"]
    assert got.method == "GET" and got.encoding == "windows-1251"
    assert got.notification.transaction_id == 77
    assert got.fields["Description"] == "Оплата + 5%"


def test_duplicates_wrong_secrets_and_tampering_answer_json() -> None:
    app = make_shop()
    first = send_notification(app, "Pay", path="/cp/Pay", fields={"TransactionId": "5"})
    again = send_notification(app, "Pay", path="/cp/Pay", fields={"TransactionId": "5"})
    assert first.code == again.code == 0
    assert len(app.config["received"]) == 1  # the second delivery is the same event
    wrong = send_notification(app, "Pay", path="/cp/Pay", secret="other")
    tampered = send_notification(app, "Pay", path="/cp/Pay",
                                 headers={"X-Content-HMAC": "AAAA"})
    assert wrong.code == tampered.code == 13
    assert wrong.response.is_json and wrong.response.get_json() == {"code": 13}
    assert len(app.config["received"]) == 1


def test_remote_address_and_the_sender_check() -> None:
    app = make_shop(senders=wh.SenderCheck.from_config())
    assert send_notification(app, "Confirm", path="/cp/Confirm").code == 0
    outsider = send_notification(app, "Confirm", path="/cp/Confirm", remote_addr="6.6.6.6")
    assert outsider.code == 13
    assert GATEWAY_SENDER_ADDRESS == "185.98.81.1"


def test_the_fixture(cloudpayments_notify: Callable[..., SentNotification]) -> None:
    app = make_shop()
    assert cloudpayments_notify(app, "Refund", path="/cp/Refund").code == 0
    broken = cloudpayments_notify(app, "Fail", path="/cp/Fail", fields={"Amount": ""})
    assert broken.code == 13  # signed but without an Amount: refused, still as JSON
    assert [r.type for r in app.config["received"]] == ["Refund"]


def test_the_receiving_example_in_the_docs_works() -> None:
    text = (Path(__file__).parent.parent / "docs" / "notifications.md").read_text("utf-8")
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(code, "docs/notifications.md", "exec"), namespace)
    app, secret = namespace["app"], namespace["API_SECRET"]
    for method in ("POST", "GET", "POST"):
        sent = send_notification(app, "Pay", path="/cloudpayments/Pay", secret=secret,
                                 method=method, fields={"TransactionId": "9"})
        assert (sent.status_code, sent.code) == (200, 0)
        assert sent.response.headers["Content-Type"] == "application/json"
    assert namespace["seen"] == {("Pay", "9", "")}
    assert send_notification(app, "Pay", path="/cloudpayments/Pay").code == 13
