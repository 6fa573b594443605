"""The extension's notification routes: raw bytes, signatures, JSON answers, the Check
decision and shop rules, exactly once, the sender-IP check, CSRF, the CLI."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask_wtf import CSRFProtect

from checkout_kit import webhooks
from checkout_kit.ledger import PaymentStatus
from checkout_kit.notifications import CheckCode
from checkout_kit.pytest_plugin import send_notification
from checkout_kit.shop import signals
from checkout_kit.shop.config import ConfigurationError
from checkout_kit.shop.notification_routes import notification_path, replay

from .conftest import NO_3DS, Shop, make_shop

BASE = "/checkout/notifications"


def _fields(payment: Any, **extra: str) -> dict[str, str]:
    return {"InvoiceId": payment.invoice_id, "Amount": str(payment.amount),
            "Currency": payment.currency, **extra}


def _send(shop: Shop, kind: str, fields: dict[str, str], **kw: Any) -> Any:
    return send_notification(shop.client, kind, path=f"{BASE}/{kind.lower()}",
                             fields=fields, **kw)


@pytest.mark.parametrize("kind", webhooks.WEBHOOK_TYPES)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_every_type_has_a_route_taking_get_and_post(shop: Shop, kind: str, method: str) -> None:
    assert notification_path(kind) == f"/notifications/{kind.lower()}"
    sent = _send(shop, kind, {}, method=method)
    assert sent.response.mimetype == "application/json"
    # Everything is acknowledged: a Check of an invoice the ledger does not hold too.
    assert (sent.status_code, sent.code) == (200, 0)
    (row,) = shop.state.inbox.list()
    assert row.type == kind and row.method == method and row.signature_valid


@pytest.mark.parametrize("case", ["unsigned", "wrong secret", "tampered"])
def test_a_forged_notification_gets_401_json_and_is_logged_without_its_body(
        shop: Shop, case: str, caplog: pytest.LogCaptureFixture) -> None:
    payment = shop.create()
    fields = _fields(payment, Email="secret-buyer@example.com")
    kw: dict[str, Any] = {
        "unsigned": {"headers": {"Content-HMAC": "", "X-Content-HMAC": ""}},
        "wrong secret": {"secret": "not the api secret"},
        "tampered": {"headers": {"Content-HMAC": "AAAA", "X-Content-HMAC": "AAAA"}},
    }[case]
    with caplog.at_level(logging.INFO):
        sent = _send(shop, "Pay", fields, **kw)
    assert (sent.status_code, sent.response.get_json()) == (401, {"code": 13})
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.CREATED
    assert "secret-buyer" not in caplog.text and "refused" in caplog.text
    (row,) = shop.state.inbox.list()
    assert (row.signature_valid, row.applied, row.outcome) == (False, False, "refused")
    assert b"secret-buyer" in row.body  # kept in the audit log, never in the log file


def test_a_signed_but_unreadable_notification_gets_400(shop: Shop) -> None:
    sent = _send(shop, "Pay", {"TransactionId": "not a number"})
    assert (sent.status_code, sent.code) == (400, 13)
    (row,) = shop.state.inbox.list()
    assert row.signature_valid and row.outcome == "refused" and "TransactionId" in row.error


def test_other_methods_and_huge_bodies_are_answered_json(shop: Shop) -> None:
    put = shop.client.put(f"{BASE}/pay", data=b"x=1")
    assert (put.status_code, put.get_json()) == (405, {"code": 13})
    huge = shop.client.post(f"{BASE}/pay", data=b"x" * (webhooks.MAX_BODY_BYTES + 1),
                            content_type="application/x-www-form-urlencoded")
    assert (huge.status_code, huge.get_json()) == (413, {"code": 13})
    assert [r.outcome for r in shop.state.inbox.list()] == ["refused", "refused"]


def test_an_internal_error_answers_json(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    payment = shop.create()

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(shop.state.inbox, "apply", broken)
    sent = _send(shop, "Pay", _fields(payment))
    assert (sent.status_code, sent.code) == (500, 13)
    (row,) = shop.state.inbox.list()
    assert row.outcome == "error" and "database on fire" in (row.error or "")
    monkeypatch.setattr(shop.state.inbox, "record", broken)
    assert _send(shop, "Pay", _fields(payment)).response.get_json() == {"code": 13}


# --------------------------------------------------------------------------- Check


def test_check_answers_from_the_ledger(shop: Shop) -> None:
    now = datetime.now(UTC)
    ok = shop.create("c-ok", account_id="user@example.com")
    assert _send(shop, "Check", _fields(ok)).code == 0
    assert _send(shop, "Check", _fields(ok, InvoiceId="nope")).code == 0  # not the ledger's
    assert _send(shop, "Check", _fields(ok, AccountId="mallory")).code == 11
    assert _send(shop, "Check", _fields(ok, Amount="99.99")).code == 12
    assert _send(shop, "Check", _fields(ok, Currency="USD")).code == 12
    expired = shop.create("c-old", expires_at=now - timedelta(minutes=1))
    assert _send(shop, "Check", _fields(expired)).code == 20
    paid = shop.create("c-paid")
    shop.pay(paid.id, NO_3DS)
    assert _send(shop, "Check", _fields(paid)).code == 13
    assert shop.state.ledger.get(ok.id).status is PaymentStatus.CREATED  # Check changes nothing


def test_a_repeated_check_gets_the_first_answer(shop: Shop) -> None:
    payment = shop.create()
    fields = _fields(payment, TransactionId="42")
    assert _send(shop, "Check", fields).code == 0
    shop.pay(payment.id, NO_3DS)  # paid meanwhile: a new Check would answer 13
    again = _send(shop, "Check", fields)
    assert again.code == 0
    assert shop.state.inbox.list()[0].outcome == "duplicate"


def test_shop_rules_decline_and_a_crashing_rule_declines_without_a_500(
        shop: Shop, caplog: pytest.LogCaptureFixture) -> None:
    sold_out = shop.create("sold-out")
    broken = shop.create("broken")
    fine = shop.create("fine")

    @shop.kit.check_rule
    def stock(notification: Any, payment: Any) -> int | None:
        return CheckCode.NOT_ACCEPTED if payment.invoice_id == "sold-out" else None

    @shop.kit.checks.rule
    def flaky(notification: Any, payment: Any) -> int | None:
        if payment.invoice_id == "broken":
            raise KeyError("stock service down")
        return None

    assert _send(shop, "Check", _fields(sold_out)).code == 13
    with caplog.at_level(logging.ERROR):
        crashed = _send(shop, "Check", _fields(broken))
    assert (crashed.status_code, crashed.code) == (200, 13)
    assert "flaky" in caplog.text and "KeyError" in caplog.text
    assert _send(shop, "Check", _fields(fine)).code == 0


# --------------------------------------------------------------------------- applying


def test_pay_after_the_page_succeeded_is_a_no_op_and_a_late_fail_does_not_undo_it(
        shop: Shop) -> None:
    payment = shop.create()
    shop.pay(payment.id, NO_3DS)
    paid = shop.state.ledger.get(payment.id)
    assert paid.status is PaymentStatus.SUCCEEDED
    tx = str(paid.gateway_transaction_id)
    heard: list[str] = []
    signals.payment_succeeded.connect(lambda *_a, **_k: heard.append("succeeded"),
                                      shop.app, weak=False)
    assert _send(shop, "Pay", _fields(payment, TransactionId=tx)).code == 0
    assert shop.state.ledger.get(payment.id) == paid and heard == []
    assert shop.state.inbox.list()[0].outcome == "recorded"
    fail = _send(shop, "Fail", _fields(payment, TransactionId="999", ReasonCode="5051"))
    assert fail.code == 0
    after = shop.state.ledger.get(payment.id)
    assert after.status is PaymentStatus.SUCCEEDED and after.version == paid.version
    last = shop.state.ledger.history(payment.id)[-1]
    assert last.old_status == last.new_status == PaymentStatus.SUCCEEDED
    assert "Fail notification 999" in (last.note or "")


def test_a_notification_that_does_not_match_the_payment_changes_nothing(shop: Shop) -> None:
    payment = shop.create(account_id="user@example.com")
    for wrong in ({"Amount": "1.00"}, {"Currency": "EUR"}, {"AccountId": "mallory"}):
        sent = _send(shop, "Pay", {**_fields(payment, AccountId="user@example.com"), **wrong})
        assert sent.code == 0  # acknowledged: delivering it again would not fix it
        row = shop.state.inbox.list()[0]
        assert (row.outcome, row.applied, row.payment_id) == ("mismatch", False, payment.id)
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.CREATED
    unknown = _send(shop, "Pay", _fields(payment, InvoiceId="nobody"))
    assert unknown.code == 0 and shop.state.inbox.list()[0].outcome == "unknown_payment"


@pytest.mark.parametrize(("scheme", "status", "settled"), [
    ("charge", "Completed", "succeeded"), ("auth", "Authorized", "authorized"),
    ("charge", "", "succeeded"), ("auth", "", "authorized"),  # no Status: the scheme
])
def test_a_pay_notification_settles_by_the_payments_scheme(
        shop: Shop, scheme: str, status: str, settled: str) -> None:
    payment = shop.create(scheme=scheme)
    assert _send(shop, "Pay", _fields(payment, TransactionId="123", Status=status)).code == 0
    assert shop.state.inbox.list()[0].outcome == "applied"
    assert str(shop.state.ledger.get(payment.id).status) == settled


@pytest.mark.parametrize(("scheme", "status"), [("charge", "Authorized"), ("auth", "Completed")])
def test_a_pay_notification_of_the_other_scheme_is_a_mismatch(
        shop: Shop, scheme: str, status: str) -> None:
    # A one-stage payment cannot be held, nor a two-stage one taken by Pay: acknowledged,
    # logged, not applied.
    payment = shop.create(scheme=scheme)
    sent = _send(shop, "Pay", _fields(payment, TransactionId="123", Status=status))
    assert sent.code == 0
    row = shop.state.inbox.list()[0]
    assert (row.outcome, row.applied) == ("mismatch", False)
    assert status in (row.error or "")
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.CREATED


def test_a_widget_pay_notification_settles_the_pending_page(shop: Shop) -> None:
    payment = shop.create()
    page = shop.client.get(f"/checkout/payments/{payment.id}")
    assert 'data-result="pending"' in page.text
    got: list[Any] = []
    signals.notification_pay.connect(lambda _app, **kw: got.append(kw), shop.app, weak=False)
    assert _send(shop, "Pay", _fields(payment, TransactionId="123", Token="tk_x")).code == 0
    stored = shop.state.ledger.get(payment.id)
    assert (stored.status, stored.gateway_transaction_id, stored.token) == (
        PaymentStatus.SUCCEEDED, 123, "tk_x")
    assert 'data-result="success"' in shop.client.get(f"/checkout/payments/{payment.id}").text
    (kw,) = got
    assert kw["type"] == "Pay" and kw["payment"].status == "succeeded" and kw["code"] == 0
    assert kw["notification"].transaction_id == 123


# --------------------------------------------------------------------------- senders, CSRF


def test_the_sender_ip_check_is_off_by_default_and_honours_proxy_hops(
        tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    shop = make_shop(tmp_path, cloudpayments_sandbox_keys, CHECKOUT_KIT_NOTIFICATION_IP_CHECK=True,
                     CHECKOUT_KIT_NOTIFICATION_NETWORKS=["203.0.113.0/24"],
                     CHECKOUT_KIT_NOTIFICATION_PROXY_HOPS=1)
    payment = shop.create()
    behind = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}  # the proxy saw 203.0.113.9
    assert _send(shop, "Check", _fields(payment), remote_addr="10.0.0.1",
                 headers=behind).code == 0
    spoofed = {"X-Forwarded-For": "203.0.113.9, 198.51.100.1"}  # the sender wrote the first
    refused = _send(shop, "Check", _fields(payment), remote_addr="10.0.0.1", headers=spoofed)
    assert (refused.status_code, refused.code) == (403, 13)
    assert shop.state.inbox.list()[0].error.startswith("sender address")
    # Off by default: any address (the HMAC is the authority).
    (tmp_path / "b").mkdir()
    other = make_shop(tmp_path / "b", cloudpayments_sandbox_keys)
    assert _send(other, "Check", _fields(other.create()), remote_addr="192.0.2.1").code == 0


def test_bad_sender_settings_fail_at_start_up(
        tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    from checkout_kit.shop.config import ConfigurationError

    for key, value in (("NETWORKS", ["300.1.1.1/8"]), ("NETWORKS", "185.98.81.0/28"),
                       ("PROXY_HOPS", -1), ("IP_CHECK", "yes")):
        with pytest.raises(ConfigurationError, match=f"CHECKOUT_KIT_NOTIFICATION_{key}"):
            make_shop(tmp_path, cloudpayments_sandbox_keys,
                      **{f"CHECKOUT_KIT_NOTIFICATION_{key}": value})


def test_the_routes_are_exempt_from_flask_wtf_csrf(
        tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    from flask import Flask

    from checkout_kit.ledger import upgrade
    from checkout_kit.shop import CheckoutKit
    from checkout_kit.shop.state import state

    app = Flask("csrf_shop", instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="s", CHECKOUT_KIT_PUBLIC_ID="pk",
                      CHECKOUT_KIT_API_SECRET="secret",
                      CHECKOUT_KIT_DATABASE_URL=f"sqlite:///{tmp_path}/csrf.db")
    CSRFProtect(app)

    @app.post("/elsewhere")
    def elsewhere() -> str:
        return "ok"

    CheckoutKit(app)
    upgrade(state(app).settings.database_url)
    client = app.test_client()
    assert client.post("/elsewhere").status_code == 400  # CSRF is on
    sent = send_notification(client, "Recurrent", path=f"{BASE}/recurrent", secret="secret")
    assert (sent.status_code, sent.code) == (200, 0)
    state(app).ledger.engine.dispose()


# --------------------------------------------------------------------------- CLI


def test_cli_configure_sets_every_type_but_check_through_the_api(shop: Shop) -> None:
    runner = shop.app.test_cli_runner()
    result = runner.invoke(args=["checkout", "notifications", "configure",
                                 "--base-url", "https://shop.example/"])
    assert result.exit_code == 0, result.output
    assert "https://shop.example/checkout/notifications/pay" in result.output
    assert "Check" in result.output and "NOT SET" in result.output
    client = shop.state.client
    for kind in ("Pay", "Fail", "Confirm", "Refund", "Cancel", "Recurrent"):
        got = client.get_notification_settings(kind)
        assert got.is_enabled and got.address == (
            f"https://shop.example/checkout/notifications/{kind.lower()}")
        assert (got.http_method, got.encoding) == ("POST", "UTF8")
    assert not client.get_notification_settings("Check").is_enabled
    as_json = runner.invoke(args=["checkout", "notifications", "configure", "--json",
                                  "--base-url", "https://shop.example"])
    rows = [json.loads(line) for line in as_json.output.splitlines()]
    assert [r["set"] for r in rows if r["type"] == "Check"] == [False]
    bad = runner.invoke(args=["checkout", "notifications", "configure", "--base-url", "shop"])
    assert bad.exit_code != 0 and "http(s)" in bad.output


def test_cli_list_and_replay_keep_exactly_once(shop: Shop) -> None:
    payment = shop.create()
    _send(shop, "Pay", _fields(payment, TransactionId="77"))
    runner = shop.app.test_cli_runner()
    listed = runner.invoke(args=["checkout", "notifications", "list", "--json"])
    (row,) = [json.loads(line) for line in listed.output.splitlines()]
    assert (row["type"], row["outcome"], row["applied"], row["payment"]) == (
        "Pay", "applied", True, payment.id)
    version = shop.state.ledger.get(payment.id).version
    replayed = runner.invoke(args=["checkout", "notifications", "replay", str(row["id"])])
    assert replayed.exit_code == 0 and "outcome=duplicate" in replayed.output
    assert f"replay_of={row['id']}" in replayed.output
    assert shop.state.ledger.get(payment.id).version == version
    missing = runner.invoke(args=["checkout", "notifications", "replay", "9999"])
    assert missing.exit_code == 1 and "no notification 9999" in missing.output


def test_purge_masks_old_bodies_and_keeps_exactly_once(
        shop: Shop, now: list[datetime]) -> None:
    payment = shop.create()
    personal = {"Email": "ivan.petrov@example.com", "Name": "IVAN PETROV",
                "Token": "tk_4f2a9c8b7e6d5a4f3e2d1c0b9a8f7e6d", "IpAddress": "198.51.100.23"}
    fields = _fields(payment, TransactionId="700555", **personal)
    assert _send(shop, "Pay", fields).code == 0
    now[0] += timedelta(days=89)
    newer = _send(shop, "Pay", _fields(payment, TransactionId="700556", Email="x@example.com"))
    assert newer.code == 0
    runner = shop.app.test_cli_runner()
    now[0] += timedelta(days=2)  # the first is 91 days old: past the default 90
    purged = runner.invoke(args=["checkout", "notifications", "purge", "--json"])
    assert purged.exit_code == 0, purged.output
    assert json.loads(purged.output) == {"purged": 1, "older_than_days": 90}
    old, recent = sorted(shop.state.inbox.list(), key=lambda r: r.id)
    assert old.purged_at == now[0] and recent.purged_at is None
    for value in personal.values():
        assert value.encode() not in old.body
    assert b"TransactionId=700555" in old.body and b"x%40example.com" in recent.body
    assert old.key == recent.key.replace("700556", "700555")  # the key stays
    # Exactly once still holds: the gateway delivering it again changes nothing.
    assert _send(shop, "Pay", fields).code == 0
    assert shop.state.inbox.list(limit=1)[0].outcome == "duplicate"
    refused = runner.invoke(args=["checkout", "notifications", "replay", str(old.id)])
    assert refused.exit_code == 1 and "purged" in refused.output
    assert "Traceback" not in refused.output
    # A typed error, recognised by its type, not by a word in its message.
    from checkout_kit.errors import NotificationPurgedError
    with shop.app.app_context(), pytest.raises(NotificationPurgedError) as purged_exc:
        replay(shop.state, old.id)
    assert isinstance(purged_exc.value, LookupError)
    assert (purged_exc.value.record_id, purged_exc.value.purged_at) == (old.id, now[0])
    listed = runner.invoke(args=["checkout", "notifications", "list", "--json"])
    assert json.loads(listed.output.splitlines()[-1])["purged_at"] is not None
    # --older-than overrides the setting; a purged body is never purged again.
    again = runner.invoke(args=["checkout", "notifications", "purge", "--older-than", "1"])
    assert again.exit_code == 0 and again.output.startswith("1 notification(s)")  # 2 days old
    assert runner.invoke(args=["checkout", "notifications", "purge", "--older-than",
                               "0"]).exit_code == 2


def test_the_retention_setting_is_checked(tmp_path: Path,
                                          cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    shop = make_shop(tmp_path, cloudpayments_sandbox_keys,
                     CHECKOUT_KIT_NOTIFICATION_RETENTION_DAYS=30)
    try:
        assert shop.state.settings.notification_retention_days == 30
    finally:
        shop.state.ledger.engine.dispose()
        shop.state.client.close()
    with pytest.raises(ConfigurationError) as exc:
        make_shop(tmp_path, cloudpayments_sandbox_keys,
                  CHECKOUT_KIT_NOTIFICATION_RETENTION_DAYS=0)
    assert exc.value.key == "CHECKOUT_KIT_NOTIFICATION_RETENTION_DAYS"


def test_replay_applies_a_notification_that_came_before_its_payment(shop: Shop) -> None:
    # A Pay that found no payment is kept; once the payment is there, replay applies it.
    fields = {"InvoiceId": "late-1", "Amount": "100.00", "Currency": "RUB",
              "TransactionId": "501"}
    _send(shop, "Pay", fields)
    (early,) = shop.state.inbox.list()
    assert early.outcome == "unknown_payment"
    payment = shop.create("late-1")
    result = shop.app.test_cli_runner().invoke(
        args=["checkout", "notifications", "replay", str(early.id)])
    assert "outcome=applied" in result.output
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.SUCCEEDED


def test_an_app_hook_that_reads_the_form_first_makes_notifications_fail(
        tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    # What docs/notifications.md warns about: the body must reach the view unread.
    from flask import request

    shop = make_shop(tmp_path, cloudpayments_sandbox_keys)

    @shop.app.before_request
    def reads_the_form() -> None:
        request.form.get("anything")

    payment = shop.create()
    sent = _send(shop, "Pay", _fields(payment))  # signed right: 200 without the hook
    assert (sent.status_code, sent.code) == (401, 13)
    shop.state.ledger.engine.dispose()


def test_a_late_fail_of_the_declined_attempt_never_fails_a_retry_in_doubt(shop: Shop) -> None:
    # The retry's answer was lost (unknown); the gateway re-delivers the Fail of the
    # first, declined attempt: it is noted, the retry stays for reconcile to settle.
    from checkout_kit.errors import UnknownOutcomeError

    from .conftest import DECLINED

    payment = shop.create()
    shop.pay(payment.id, DECLINED)
    old = shop.state.ledger.get(payment.id).gateway_transaction_id
    client = shop.state.client

    def lost(*_a: Any, **_k: Any) -> Any:
        raise UnknownOutcomeError("the answer was lost")

    client.charge = lost  # type: ignore[method-assign]
    try:
        shop.pay(payment.id, NO_3DS)
    finally:
        del client.charge
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.UNKNOWN
    sent = _send(shop, "Fail", _fields(payment, TransactionId=str(old), ReasonCode="5051"))
    assert sent.code == 0
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.UNKNOWN
    assert "earlier attempt" in (shop.state.ledger.history(payment.id)[-1].note or "")


# --------------------------------------------------------------------------- forgery

#: The forgery by re-encoding (issue 14 §2), from tests/vectors/notification_signatures.json.
FORGED = [case for case in json.loads(
    (Path(__file__).parent.parent / "vectors" / "notification_signatures.json")
    .read_text("utf-8"))["cases"] if "attack" in case]


@pytest.mark.parametrize("case", FORGED, ids=lambda c: c["name"])
def test_a_re_encoded_refund_is_answered_4xx_json_and_changes_nothing(
        tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes],
        case: dict[str, Any]) -> None:
    config: dict[str, Any] = {"CHECKOUT_KIT_API_SECRET": case["receiver_secret"]}
    if case["decoded_hmac_allowed"]:
        config["CHECKOUT_KIT_NOTIFICATION_REQUIRE_CONTENT_HMAC"] = False
    shop = make_shop(tmp_path, cloudpayments_sandbox_keys, **config)
    try:
        sent = shop.client.post(f"{BASE}/refund", data=base64.b64decode(case["body_b64"]),
                                headers=case["headers"])
        status = 400 if "failing_field" in case else 401
        assert (sent.status_code, sent.get_json()) == (status, {"code": 13})
        (row,) = shop.state.inbox.list()
        assert (row.outcome, row.applied, row.key) == ("refused", False, None)
        assert shop.state.inbox.applied_count(("Refund", "777", "Refund")) == 0
    finally:
        shop.state.ledger.engine.dispose()
        shop.state.client.close()


def test_the_opt_out_key_must_be_a_bool(tmp_path: Path,
                                        cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    with pytest.raises(ConfigurationError) as exc:
        make_shop(tmp_path, cloudpayments_sandbox_keys,
                  CHECKOUT_KIT_NOTIFICATION_REQUIRE_CONTENT_HMAC="no")
    assert exc.value.key == "CHECKOUT_KIT_NOTIFICATION_REQUIRE_CONTENT_HMAC"
