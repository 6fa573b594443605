"""What the notification routes answer and record when a delivery is not taken: an
HTTP error raised while reading the request, a failure inside the shop, a refusal
before the ledger (method, size, sender), the audit row's signature flag for an
unreadable notification, and a replay's sender address."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

from checkout_kit import testing, webhooks
from checkout_kit.pytest_plugin import SANDBOX_API_SECRET, send_notification
from checkout_kit.shop import notification_routes as notifications
from checkout_kit.shop.notification_routes import replay

from .conftest import Shop, make_shop

BASE = "/checkout/notifications"
REJECTED = {"code": webhooks.REJECT_CODE}
LOGGER = "checkout_kit.shop.notification_routes"


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == level]


# --------------------------------------------------------------------------- HTTP errors


def test_a_body_over_the_apps_max_content_length_is_answered_413_json(
        tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    # Flask's own limit (below the kit's 1 MiB) raises while the view reads the body.
    shop = make_shop(tmp_path, cloudpayments_sandbox_keys, MAX_CONTENT_LENGTH=64)
    sent = send_notification(shop.client, "Pay", path=f"{BASE}/pay")
    assert (sent.status_code, sent.response.get_json()) == (413, REJECTED)
    assert sent.response.mimetype == "application/json"
    shop.state.ledger.engine.dispose()


@pytest.mark.parametrize(("error", "status"), [
    (RequestEntityTooLarge, 413),
    (BadRequest, 400),  # what werkzeug raises when the client disconnects mid-body
    (HTTPException, 400),  # no code of its own: the body was unreadable
], ids=["413", "400", "no code"])
def test_an_http_error_while_reading_is_answered_with_its_status_as_json(
        shop: Shop, monkeypatch: pytest.MonkeyPatch, error: type[HTTPException],
        status: int) -> None:
    def unreadable() -> bytes:
        raise error()

    monkeypatch.setattr(notifications, "_read_raw", unreadable)
    sent = send_notification(shop.client, "Refund", path=f"{BASE}/refund")
    assert (sent.status_code, sent.response.get_json()) == (status, REJECTED)
    assert sent.response.mimetype == "application/json"


@pytest.mark.parametrize("kind", ["Check", "Refund"])
def test_a_failure_inside_the_shop_is_answered_500_json_and_logged_with_the_kind(
        shop: Shop, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        kind: str) -> None:
    def audit_log_down(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("audit log down")

    monkeypatch.setattr(shop.state.inbox, "record", audit_log_down)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        sent = send_notification(shop.client, kind, path=f"{BASE}/{kind.lower()}")
    assert (sent.status_code, sent.response.get_json()) == (500, REJECTED)
    assert sent.response.mimetype == "application/json"
    # The operator's only trace of it: which route failed, and the traceback.
    (logged,) = _records(caplog, logging.ERROR)
    assert logged.getMessage() == f"notification {kind}: internal error"
    assert logged.exc_info is not None and isinstance(logged.exc_info[1], RuntimeError)


# --------------------------------------------------------------------------- refusals


def _method_not_allowed(shop: Shop, remote: str) -> Any:
    return shop.client.put(f"{BASE}/cancel", data=b"x=1",
                           environ_base={"REMOTE_ADDR": remote})


def _too_large(shop: Shop, remote: str) -> Any:
    return shop.client.post(f"{BASE}/cancel", data=b"x" * (webhooks.MAX_BODY_BYTES + 1),
                            content_type="application/x-www-form-urlencoded",
                            environ_base={"REMOTE_ADDR": remote})


def _foreign_sender(shop: Shop, remote: str) -> Any:
    return send_notification(shop.client, "Cancel", path=f"{BASE}/cancel",
                             remote_addr=remote).response


@pytest.mark.parametrize(("send", "remote", "method", "status", "why"), [
    (_method_not_allowed, "203.0.113.5", "PUT", 405, "method PUT not allowed"),
    (_too_large, "203.0.113.6", "POST", 413, "larger than webhooks.MAX_BODY_BYTES"),
    (_foreign_sender, "192.0.2.7", "POST", 403,
     "sender address not in CHECKOUT_KIT_NOTIFICATION_NETWORKS"),
], ids=["405", "413", "403"])
def test_a_refusal_is_logged_and_kept_in_the_audit_log_as_unsigned(
        tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes],
        caplog: pytest.LogCaptureFixture, send: Callable[[Shop, str], Any], remote: str,
        method: str, status: int, why: str) -> None:
    shop = make_shop(tmp_path, cloudpayments_sandbox_keys,
                     CHECKOUT_KIT_NOTIFICATION_IP_CHECK=True,
                     CHECKOUT_KIT_NOTIFICATION_NETWORKS=["203.0.113.0/24"])
    with caplog.at_level(logging.INFO, logger=LOGGER):
        response = send(shop, remote)
    assert (response.status_code, response.get_json()) == (status, REJECTED)
    (logged,) = _records(caplog, logging.WARNING)
    assert logged.getMessage() == f"notification Cancel refused: {why}"
    (row,) = shop.state.inbox.list()
    assert (row.type, row.method, row.remote_addr) == ("Cancel", method, remote)
    # Nothing was verified: the row never claims a signature, and says what was answered.
    assert (row.signature_valid, row.outcome, row.code, row.error) == (
        False, "refused", webhooks.REJECT_CODE, why)
    shop.state.ledger.engine.dispose()


# --------------------------------------------------------------------------- audit flag


def _unreadable(encoding: str = "utf-8", method: str = "POST") -> testing.OutgoingNotification:
    # TransactionId is not a number: signed right, unreadable.
    fields = testing.sample_fields("Pay", {"TransactionId": "not a number",
                                            "Name": "ИВАН ПЕТРОВ"})
    return testing.build_notification("Pay", fields, SANDBOX_API_SECRET, method=method,
                                       encoding=encoding)


def _deliver(shop: Shop, outgoing: testing.OutgoingNotification,
             headers: dict[str, str]) -> Any:
    sent = {**outgoing.headers, **headers}
    sent = {name: value for name, value in sent.items() if value}
    if outgoing.method == "GET":
        return shop.client.get(f"{BASE}/pay", query_string=outgoing.body.decode("ascii"),
                               headers=sent)
    return shop.client.post(f"{BASE}/pay", data=outgoing.body, headers=sent)


KLINGON = {"Content-Type": "application/x-www-form-urlencoded; charset=klingon"}
ONLY_DECODED = {"Content-HMAC": ""}


@pytest.mark.parametrize(("config", "encoding", "method", "headers", "valid"), [
    # An unknown charset is refused before verification; the flag is still computed.
    ({}, "utf-8", "POST", KLINGON, True),
    ({}, "utf-8", "POST", {**KLINGON, "Content-HMAC": "AAAA"}, False),
    # X-Content-HMAC alone is a valid signature only where the shop opted out.
    ({}, "utf-8", "POST", {**KLINGON, **ONLY_DECODED}, False),
    ({"CHECKOUT_KIT_NOTIFICATION_REQUIRE_CONTENT_HMAC": False}, "utf-8", "POST",
     {**KLINGON, **ONLY_DECODED}, True),
    # X-Content-HMAC covers the text decoded in the shop's configured encoding.
    ({"CHECKOUT_KIT_NOTIFICATION_ENCODING": "windows-1251"}, "windows-1251", "GET", {}, True),
    ({"CHECKOUT_KIT_NOTIFICATION_ENCODING": "windows-1251"}, "windows-1251", "POST",
     KLINGON, True),
    # Regression: a POST's declared charset wins over the configured encoding, as in
    # receive, which verified this one; it was flagged forged.
    ({}, "windows-1251", "POST", {}, True),
], ids=["charset", "charset, tampered", "decoded only", "decoded only, opted out",
        "cp1251 GET", "cp1251 charset", "declared cp1251"])
def test_an_unreadable_notifications_audit_row_says_whether_its_signature_held(
        tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes], config: dict[str, Any],
        encoding: str, method: str, headers: dict[str, str], valid: bool) -> None:
    shop = make_shop(tmp_path, cloudpayments_sandbox_keys, **config)
    response = _deliver(shop, _unreadable(encoding, method), headers)
    assert (response.status_code, response.get_json()) == (400, REJECTED)
    (row,) = shop.state.inbox.list()
    assert (row.outcome, row.signature_valid) == ("refused", valid)
    shop.state.ledger.engine.dispose()


@pytest.mark.parametrize(("fields", "headers", "status", "error"), [
    ({}, {"Content-HMAC": "AAAA"}, 401,
     "SignatureVerificationError: Content-HMAC does not match (Content-HMAC)"),
    ({}, {"Content-HMAC": "", "X-Content-HMAC": ""}, 401,
     "SignatureVerificationError: the notification carries no HMAC header"),
    ({"TransactionId": "not a number"}, {}, 400,
     "MalformedNotificationError: TransactionId is not valid (TransactionId)"),
    ({}, KLINGON, 400, "MalformedNotificationError: unsupported charset 'klingon'"),
], ids=["header", "no header", "field", "no field"])
def test_a_refused_notifications_audit_row_names_the_error_and_what_failed(
        shop: Shop, fields: dict[str, str], headers: dict[str, str], status: int,
        error: str) -> None:
    # The failing header or field is appended in parentheses, only when there is one.
    outgoing = testing.build_notification("Pay", testing.sample_fields("Pay", fields),
                                           SANDBOX_API_SECRET)
    response = _deliver(shop, outgoing, headers)
    assert (response.status_code, response.get_json()) == (status, REJECTED)
    (row,) = shop.state.inbox.list()
    assert (row.outcome, row.error) == ("refused", error)


# --------------------------------------------------------------------------- replay


def test_a_replay_keeps_the_sender_address_of_the_delivery_it_repeats(shop: Shop) -> None:
    send_notification(shop.client, "Recurrent", path=f"{BASE}/recurrent",
                      remote_addr="203.0.113.44")
    (first,) = shop.state.inbox.list()
    with shop.app.app_context():
        status, code, again = replay(shop.state, first.id)
    assert (status, code) == (200, 0)
    assert (again.replay_of, again.remote_addr) == (first.id, "203.0.113.44")
    assert shop.state.inbox.get(again.id).remote_addr == "203.0.113.44"
