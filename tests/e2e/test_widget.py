"""The sandbox's payment widget in Chromium: success, decline, 3-D Secure, recurrent,
both APIs, localisation and the postMessage boundary."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask, request

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips (fails under CHECKOUT_KIT_REQUIRE_BROWSER=1)
    expect = None

from checkout_kit import notifications
from checkout_kit.client import CloudPaymentsClient
from checkout_kit.models import Transaction, TransactionStatus

from .conftest import PUBLIC_ID, LiveSandbox, serve

EXPIRY = f"12/{(datetime.now(UTC).year + 3) % 100:02d}"
SUCCESS_CARD = "4000 0000 0000 3055"  # no 3-D Secure, approved
DECLINE_CARD = "4000 0566 5566 5556"  # no 3-D Secure, insufficient funds
THREE_DS_CARD = "4242 4242 4242 4242"  # 3-D Secure, approved once authenticated
INSUFFICIENT_FUNDS_RU = "Недостаточно средств на карте"

# Records every callback and the promise's result in window.__log / window.__result.
RECORDER = """
window.__log = [];
window.__result = undefined;
window.__record = (promise) => promise.then(
    (r) => { window.__result = r; },
    (e) => { window.__result = {rejected: e.name, message: e.message}; });
window.__callbacks = {
    onSuccess: (options) => __log.push(['onSuccess', options.invoiceId]),
    onFail: (reason, options) => __log.push(['onFail', reason, options.invoiceId]),
    onComplete: (result, options) => __log.push(['onComplete', result.success, result.code]),
};
"""


def open_shop(page: Any, shop: str) -> None:
    page.goto(f"{shop}/widget.html")
    page.evaluate(RECORDER)


def frame(page: Any) -> Any:
    return page.frame_locator("iframe[title=CloudPayments]")


def pay_with(page: Any, number: str, expiry: str = EXPIRY, cvv: str = "123") -> None:
    f = frame(page)
    f.locator("#card-number").fill(number)
    f.locator("#card-exp").fill(expiry)
    f.locator("#card-cvv").fill(cvv)
    f.locator("#pay").click()


def result(page: Any) -> dict[str, Any]:
    page.wait_for_function("window.__result !== undefined")
    value: dict[str, Any] = page.evaluate("window.__result")
    return value


def close_widget(page: Any) -> None:
    frame(page).locator("#done").click()
    page.wait_for_selector("[data-cp-widget]", state="detached")


def start(page: Any, **params: Any) -> None:
    intent = {
        "publicTerminalId": PUBLIC_ID, "amount": 150.5, "currency": "RUB",
        "paymentSchema": "Single", "description": "Order 1", "externalId": "order-1",
        **params,
    }
    page.evaluate("(p) => { window.__widget = new cp.CloudPayments(); "
                  "window.__widget.oncomplete = (r) => __log.push(['oncomplete', r.status]); "
                  "__record(window.__widget.start(p)); }", intent)


def legacy_pay(page: Any, kind: str = "charge", **options: Any) -> None:
    opts = {"publicId": PUBLIC_ID, "amount": 10, "currency": "RUB", "invoiceId": "inv-1",
            "description": "Legacy order", **options}
    # A block body: evaluate must not wait for the widget's promise.
    page.evaluate("([kind, o]) => { __record(new cp.CloudPayments({language: 'ru-RU'})"
                  ".pay(kind, o, __callbacks)); }", [kind, opts])


def transaction(live: LiveSandbox, transaction_id: int) -> Any:
    return live.sandbox.state.transactions[transaction_id]


# --------------------------------------------------------------------------- outcomes


def test_start_pays_and_resolves_with_the_widget_result(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    open_shop(page, shop)
    start(page, metadata={"orderId": 1}, receiptEmail="buyer@example.com")
    expect(frame(page).locator("#amount")).to_contain_text("150,50")
    pay_with(page, SUCCESS_CARD)
    got = result(page)
    assert got["type"] == "payment" and got["status"] == "success"
    assert got["data"]["ReasonCode"] == 0 and got["message"]
    tx = transaction(live_sandbox, got["data"]["transactionId"])
    assert tx.status.value == "Completed" and tx.amount == Decimal("150.50")
    assert (tx.invoice_id, tx.email, tx.json_data) == ("order-1", "buyer@example.com",
                                                        {"orderId": 1})
    assert tx.ip_address == "127.0.0.1"
    expect(frame(page).locator("#outcome-title")).to_have_text("Оплата прошла успешно")
    assert page.evaluate("__log") == [["oncomplete", "success"]]
    close_widget(page)
    assert page.page_errors == []


def test_decline_reports_reason_code_after_the_payer_closes(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    open_shop(page, shop)
    legacy_pay(page)
    pay_with(page, DECLINE_CARD)
    f = frame(page)
    f.locator("#outcome-message").wait_for()
    expect(f.locator("#outcome-message")).to_have_text(INSUFFICIENT_FUNDS_RU)
    assert f.locator("#retry").is_visible()
    page.wait_for_function("__log.length === 1")
    assert page.evaluate("__log") == [["onComplete", False, 5051]]
    assert page.evaluate("window.__result") is None  # settles when the payer closes
    close_widget(page)
    got = result(page)
    assert got == {"type": "error", "status": "fail", "message": INSUFFICIENT_FUNDS_RU,
                   "data": {"transactionId": got["data"]["transactionId"], "ReasonCode": 5051}}
    assert page.evaluate("__log")[1:] == [["onFail", INSUFFICIENT_FUNDS_RU, "inv-1"]]
    tx = transaction(live_sandbox, got["data"]["transactionId"])
    assert (tx.status.value, tx.reason_code) == ("Declined", 5051)


def test_retry_after_a_decline_can_succeed(page: Any, shop: str) -> None:
    open_shop(page, shop)
    legacy_pay(page)
    pay_with(page, DECLINE_CARD)
    frame(page).locator("#retry").click()
    pay_with(page, SUCCESS_CARD)
    got = result(page)
    assert got["status"] == "success"
    assert page.evaluate("__log") == [
        ["onComplete", False, 5051], ["onComplete", True, 0], ["onSuccess", "inv-1"]]


@pytest.mark.parametrize(("button", "status", "reason"), [
    ("confirm", "success", 0),
    ("decline", "fail", 5206),
])
def test_three_ds_inside_the_modal(
    page: Any, shop: str, live_sandbox: LiveSandbox, button: str, status: str, reason: int
) -> None:
    open_shop(page, shop)
    start(page)
    pay_with(page, THREE_DS_CARD)
    bank = frame(page).frame_locator("iframe[title='3-D Secure']")
    bank.locator(f"button[value={button}]").click()
    if status == "fail":
        frame(page).locator("#outcome-message").wait_for()
        close_widget(page)
    got = result(page)
    assert (got["status"], got["data"]["ReasonCode"]) == (status, reason)
    tx = transaction(live_sandbox, got["data"]["transactionId"])
    assert tx.status.value == ("Completed" if status == "success" else "Declined")
    if status == "fail":
        assert got["type"] == "error" and "3-D Secure" in got["message"]
        assert tx.reason_code == 5206


def test_older_auth_call_makes_a_two_stage_payment(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    open_shop(page, shop)
    page.evaluate("""(publicId) => { __record(new cp.CloudPayments().auth(
        {publicId, amount: '99.90', currency: 'RUB', invoiceId: 'auth-1'},
        (options) => __log.push(['onSuccess', options.invoiceId]),
        (reason) => __log.push(['onFail', reason]))); }""", PUBLIC_ID)
    pay_with(page, "5205 0000 0000 3055")
    got = result(page)
    assert got["status"] == "success"
    assert page.evaluate("__log") == [["onSuccess", "auth-1"]]
    tx = transaction(live_sandbox, got["data"]["transactionId"])
    assert (tx.status.value, tx.amount, tx.two_stage) == ("Authorized", Decimal("99.90"), True)


@contextmanager
def pay_notifications(live: LiveSandbox) -> Iterator[list[notifications.Notification]]:
    """Send the sandbox's Pay notifications to a recording shop endpoint; yields the
    list that the verified, parsed notifications are added to."""
    received: list[notifications.Notification] = []
    recorder = Flask("e2e_notifications")
    secret = live.sandbox.settings.api_secret

    @recorder.post("/notify/pay")
    def record() -> dict[str, int]:
        raw = request.get_data()
        notifications.verify(raw, dict(request.headers), secret, require_both=True)
        received.append(notifications.parse_notification("Pay", raw))
        return {"code": 0}

    server = serve(recorder)
    address = f"{server.url}/notify/pay"
    live.sandbox.configure_notification("Pay", address)
    try:
        yield received
    finally:
        live.sandbox.configure_notification("Pay", address, enabled=False)
        server.stop()


def wait_for(items: list[Any], count: int = 1) -> None:
    deadline = time.monotonic() + 10
    while len(items) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_widget_payment_sends_the_signed_pay_notification(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    """As for an API payment: a signed Pay notification carrying the page's
    externalId (InvoiceId) and metadata (Data) reaches the shop's address."""
    with pay_notifications(live_sandbox) as received:
        open_shop(page, shop)
        start(page, externalId="order-notify-7", metadata={"basket": [1, 2], "note": "ёж"})
        pay_with(page, SUCCESS_CARD)
        got = result(page)
        wait_for(received)
    (note,) = received
    assert note.transaction_id == got["data"]["transactionId"]
    assert note.fields["InvoiceId"] == "order-notify-7"
    assert json.loads(note.fields["Data"]) == {"basket": [1, 2], "note": "ёж"}
    assert note.amount == Decimal("150.50")
    assert note.token is None  # no tokenize: no token


# --------------------------------------------------------------------------- saved cards


@pytest.mark.parametrize("api", ["start", "legacy"])
def test_tokenize_saves_the_card(
    page: Any, shop: str, live_sandbox: LiveSandbox, api: str
) -> None:
    """tokenize (legacy: tokenize/saveCard) sends SaveCard: under the default "on
    request" setting the API answer and the Pay notification carry the token."""
    assert live_sandbox.sandbox.settings.save_cards == "on_request"
    account = f"saver-{api}"
    with pay_notifications(live_sandbox) as received:
        open_shop(page, shop)
        with page.expect_response(lambda r: "/payments/cards/" in r.url) as answer:
            if api == "start":
                start(page, tokenize=True, userInfo={"accountId": account})
            else:
                legacy_pay(page, accountId=account, tokenize=True)
            pay_with(page, SUCCESS_CARD)
        got = result(page)
        wait_for(received)
    model = answer.value.json()["Model"]
    token = model["Token"]
    assert token and token.startswith("tk_")
    assert model["TransactionId"] == got["data"]["transactionId"]
    (note,) = received
    assert note.token == token and note.account_id == account
    saved = live_sandbox.sandbox.state.tokens[token]
    assert saved.account_id == account
    assert "Token" not in json.dumps(got)  # the page's result carries no token


# --------------------------------------------------------------------------- cryptogram mode


def test_cryptogram_mode_hands_the_cryptogram_to_the_page_for_the_server_to_charge(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    """"The widget collects, the server charges": start({cryptogramMode: true})
    resolves with the cryptogram and pays nothing; the server charges it."""
    sandbox = live_sandbox.sandbox
    before = len(sandbox.state.transactions)
    open_shop(page, shop)
    payments: list[str] = []
    page.on("request", lambda r: payments.append(r.url) if "/payments/" in r.url else None)
    start(page, cryptogramMode=True, successRedirectUrl=f"{shop}/nowhere.html")
    pay_with(page, SUCCESS_CARD)
    got = result(page)
    page.wait_for_selector("[data-cp-widget]", state="detached")  # closed by itself
    assert got["type"] == "payment" and got["status"] == "success"
    packet = got["data"]["cryptogram"]
    assert isinstance(packet, str) and packet.startswith("01")
    assert "4000000000003055" not in json.dumps(got)
    assert payments == [] and len(sandbox.state.transactions) == before  # nothing paid
    assert page.url == f"{shop}/widget.html"  # no redirect: the page carries on
    assert page.evaluate("__log") == [["oncomplete", "success"]]
    with CloudPaymentsClient(sandbox.public_id, sandbox.api_secret,
                             base_url=live_sandbox.url) as client:
        tx = client.charge(Decimal("150.50"), ip_address="192.0.2.10", cryptogram=packet,
                           invoice_id="server-1")
    assert isinstance(tx, Transaction) and tx.status is TransactionStatus.COMPLETED
    assert (tx.card_first_six, tx.card_last_four) == ("400000", "3055")
    assert tx.ip_city == "Санкт-Петербург"
    assert page.page_errors == []


# --------------------------------------------------------------------------- recurrent


def subscription_of(live: LiveSandbox, transaction_id: int) -> Any:
    tx = transaction(live, transaction_id)
    assert tx.subscription_id, tx.detail
    return live.sandbox.state.subscriptions[tx.subscription_id]


def test_legacy_recurrent_creates_a_subscription(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    open_shop(page, shop)
    legacy_pay(page, accountId="user-legacy",
               data={"CloudPayments": {"recurrent": {"interval": "Month", "period": 1}}})
    pay_with(page, SUCCESS_CARD)
    sub = subscription_of(live_sandbox, result(page)["data"]["transactionId"])
    assert (sub.account_id, sub.interval, sub.period, sub.amount, sub.status) == (
        "user-legacy", "Month", 1, Decimal("10.00"), "Active")


def test_modern_recurrent_creates_a_subscription(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    open_shop(page, shop)
    start(page, paymentSchema="Single", metadata={"plan": "gold"},
          recurrent={"interval": "Week", "period": 2, "maxPeriods": 5},
          userInfo={"accountId": "user-modern", "firstName": "Ivan"})
    pay_with(page, SUCCESS_CARD)
    got = result(page)
    tx = transaction(live_sandbox, got["data"]["transactionId"])
    assert tx.json_data == {"plan": "gold", "CloudPayments": {
        "recurrent": {"interval": "Week", "period": 2, "maxPeriods": 5}}}
    sub = subscription_of(live_sandbox, got["data"]["transactionId"])
    assert (sub.account_id, sub.interval, sub.period, sub.max_periods) == (
        "user-modern", "Week", 2, 5)


# --------------------------------------------------------------------------- form, language


def test_english_form_and_validation_before_any_request(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    open_shop(page, shop)
    start(page, culture="en-US", amount=5, currency="USD")
    f = frame(page)
    expect(f.locator("#pay")).to_have_text("Pay $5.00")
    expect(f.locator("label[for=card-number]")).to_contain_text("Card number")
    count = len(live_sandbox.sandbox.state.transactions)
    pay_with(page, "4242 4242 4242 4241", expiry="13/30", cvv="1")
    expect(f.locator("[data-error=cardNumber]")).to_have_text("The card number is not valid")
    expect(f.locator("[data-error=expDateMonthYear]")).to_have_text("The month/year is not valid")
    expect(f.locator("[data-error=cvv]")).to_have_text("The CVV code is not valid")
    assert len(live_sandbox.sandbox.state.transactions) == count  # nothing was sent
    f.locator("#close").click()
    got = result(page)
    assert got == {"type": "cancel", "status": "cancel", "data": {}, "message": "Payment cancelled"}


def test_russian_validation_messages(page: Any, shop: str) -> None:
    open_shop(page, shop)
    start(page)
    pay_with(page, "", expiry="", cvv="")
    f = frame(page)
    expect(f.locator("[data-error=cardNumber]")).to_have_text("Введите номер карты")
    expect(f.locator("[data-error=cvv]")).to_have_text("Введите CVC код")


def test_legacy_cancel_calls_on_fail(page: Any, shop: str) -> None:
    open_shop(page, shop)
    legacy_pay(page)
    frame(page).locator("#close").click()
    assert result(page)["type"] == "cancel"
    assert page.evaluate("__log") == [["onFail", "User has cancelled", "inv-1"]]


def test_bad_parameters_are_refused(page: Any, shop: str) -> None:
    open_shop(page, shop)
    outcomes = page.evaluate("""async () => {
        const w = new cp.CloudPayments();
        const out = [];
        const base = {publicTerminalId: 'x', amount: 1, currency: 'RUB', paymentSchema: 'Single'};
        for (const p of [{}, {...base, amount: 0}, {...base, paymentSchema: 'Triple'},
                         {...base, recurrent: {interval: 'Month', period: 1}}]) {
            out.push(await w.start(p).then(() => 'resolved', (e) => e.name));
        }
        try { w.pay('refund', {publicId: 'x', amount: 1}); out.push('ok'); }
        catch (e) { out.push(e.name); }
        out.push(document.querySelectorAll('[data-cp-widget]').length);
        return out;
    }""")
    assert outcomes == ["TypeError"] * 5 + [0]


# --------------------------------------------------------------------------- postMessage boundary


def test_messages_from_other_windows_are_ignored(page: Any, shop: str) -> None:
    open_shop(page, shop)
    legacy_pay(page)
    frame(page).locator("#card-number").wait_for()
    # The shop page (or a script on it) forging the frame's messages.
    page.evaluate("""() => window.postMessage({cp: 'complete', result: {type: 'payment',
        status: 'success', data: {transactionId: 1, ReasonCode: 0}, message: 'forged'}}, '*')""")
    page.evaluate("() => window.postMessage({cp: 'close', result: null}, '*')")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__result") is None
    assert page.evaluate("__log") == []
    assert page.locator("[data-cp-widget]").count() == 1


def test_frame_answers_only_the_declared_origin(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    """A frame embedded by a page that is not the origin it was told about neither
    talks to that page nor accepts its payment intent."""
    page.goto(f"{shop}/blank.html")
    page.evaluate("""(src) => new Promise((resolve) => {
        window.__heard = [];
        window.addEventListener('message', (e) => __heard.push(e.data));
        const f = document.createElement('iframe');
        f.src = src;
        f.onload = () => {
            f.contentWindow.postMessage({cp: 'init', intent: {publicId: 'x', type: 'charge',
                amount: 1, currency: 'RUB', culture: 'en'}}, '*');
            setTimeout(resolve, 300);
        };
        document.body.appendChild(f);
    })""", f"{live_sandbox.url}/widget/frame?origin=http%3A%2F%2Fevil.example&lang=ru")
    assert page.evaluate("__heard") == []
    assert page.frame_locator("iframe").locator("#form").is_hidden()


@pytest.mark.parametrize("bad", [
    {"type": "../../_sandbox/settings"},
    {"type": "charge/../../../_sandbox/settings"},
    {"type": "refund"},
    {"publicId": ""},
    {"publicId": ["x"]},
    {"amount": 0},
    {"amount": -5},
    {"amount": float("inf")},
    {"amount": "abc"},
])
def test_frame_refuses_a_forged_intent(
    page: Any, shop: str, live_sandbox: LiveSandbox, bad: dict[str, Any]
) -> None:
    """Any page may embed the frame declaring its own origin; an intent whose type,
    publicId or amount is not what widget.js sends is refused before any request,
    so the frame can never be steered at the /_sandbox/ controls."""
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{shop}/blank.html")
    intent = {"publicId": PUBLIC_ID, "type": "charge", "amount": 1, "currency": "RUB",
              "culture": "en", **bad}
    page.evaluate("""([src, intent]) => new Promise((resolve) => {
        window.__heard = [];
        const f = document.createElement('iframe');
        f.src = src;
        window.addEventListener('message', (e) => {
            if (e.source !== f.contentWindow) return;
            __heard.push(e.data);
            if (e.data.cp === 'ready') f.contentWindow.postMessage({cp: 'init', intent}, '*');
            if (e.data.cp === 'complete') resolve();
        });
        document.body.appendChild(f);
    })""", [f"{live_sandbox.url}/widget/frame?origin={shop}&lang=en", intent])
    heard = page.evaluate("__heard")
    assert heard == [{"cp": "ready"}, {"cp": "complete", "result": {
        "type": "error", "status": "fail", "data": {},
        "message": "CloudPayments: invalid payment intent"}}]
    f = page.frame_locator("iframe")
    assert f.locator("#form").is_hidden()
    expect(f.locator("#waiting")).to_have_text("CloudPayments: invalid payment intent")
    page.wait_for_timeout(200)
    assert [u for u in requests if "/_sandbox/" in u or "/payments/" in u] == []


def test_widget_without_a_current_script_refuses_to_load(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    """Run where document.currentScript is null (eval), the widget cannot know the
    sandbox origin and throws instead of using the page's."""
    page.goto(f"{shop}/blank.html")
    outcome = page.evaluate("""async (url) => {
        const text = await (await fetch(url)).text();
        try { (0, eval)(text); return 'loaded'; } catch (e) { return e.message; }
    }""", f"{live_sandbox.url}/bundles/cloudpayments.js")
    assert "document.currentScript is unavailable" in outcome
    assert page.evaluate("typeof (window.cp && window.cp.CloudPayments)") == "undefined"
