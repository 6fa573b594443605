"""Orders and their payment page, the /_sandbox/ controls, SQLite persistence."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from checkout_kit.client import CloudPaymentsClient
from checkout_kit.errors import PaymentDeclined, RequestRejectedError
from checkout_kit.models import TransactionStatus
from checkout_kit.sandbox import Sandbox, create_sandbox_app, sandbox_of
from checkout_kit.sandbox.rules.settings import SaveCards


def test_orders_create_page_pay_and_cancel(cloudpayments_client: CloudPaymentsClient,
                                           cloudpayments_sandbox: Sandbox) -> None:
    order = cloudpayments_client.create_order(
        Decimal("1200.00"), description="Invoice for lamp", email="buyer@example.com",
        invoice_id="INV-7", account_id="buyer-7")
    assert order.status == "Created" and order.number == 1 and order.url
    path = urlsplit(order.url).path
    assert path == f"/d/{order.id}"
    web = cloudpayments_sandbox.app.test_client()
    page = web.get(path).get_data(as_text=True)
    assert "Invoice for lamp" in page and "1200.00 RUB" in page
    bad = web.post(f"{path}/pay", data={"cardNumber": "4000000000003056", "expDate": "12/35",
                                        "cvv": "123"})
    assert bad.status_code == 400
    paid = web.post(f"{path}/pay", data={"cardNumber": "4000 0000 0000 3055", "expDate": "12/35",
                                         "cvv": "123", "name": "CARD HOLDER"})
    assert "Payment approved" in paid.get_data(as_text=True)
    tx = cloudpayments_client.find_payment("INV-7")
    assert tx.status is TransactionStatus.COMPLETED and tx.account_id == "buyer-7"
    assert cloudpayments_sandbox.state.orders[order.id].status == "Paid"
    with pytest.raises(RequestRejectedError):
        cloudpayments_client.cancel_order(order.id)
    other = cloudpayments_client.create_order(Decimal("5"), description="x")
    cloudpayments_client.cancel_order(other.id)
    assert cloudpayments_sandbox.state.orders[other.id].status == "Cancelled"
    assert web.post(f"/d/{other.id}/pay", data={}).status_code == 409
    with pytest.raises(RequestRejectedError):
        cloudpayments_client.cancel_order("missing")


def test_order_page_with_3ds_card(cloudpayments_client: CloudPaymentsClient,
                                  cloudpayments_sandbox: Sandbox) -> None:
    order = cloudpayments_client.create_order(Decimal("3"), description="3ds",
                                              invoice_id="INV-3", require_confirmation=True)
    web = cloudpayments_sandbox.app.test_client()
    path = urlsplit(order.url or "").path
    to_bank = web.post(f"{path}/pay", data={"cardNumber": "4242424242424242",
                                            "expDate": "12/35", "cvv": "1"}).get_data(as_text=True)
    fields = {k: unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', to_bank)}
    bank = web.post("/acs", data=fields).get_data(as_text=True)
    form = {k: unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', bank)}
    back = web.post("/acs/complete", data={**form, "action": "confirm"}).get_data(as_text=True)
    term = unescape(re.search(r'action="([^"]+)"', back).group(1))  # type: ignore[union-attr]
    posted = {k: unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', back)}
    done = web.post(urlsplit(term).path, data=posted).get_data(as_text=True)
    assert "Payment approved" in done
    assert cloudpayments_client.find_payment("INV-3").status is TransactionStatus.AUTHORIZED


def test_clock_inspector_faults_and_settings(cloudpayments_sandbox: Sandbox,
                                             cloudpayments_client: CloudPaymentsClient) -> None:
    web = cloudpayments_sandbox.app.test_client()
    before = web.get("/_sandbox/clock").get_json()
    after = web.post("/_sandbox/clock/advance", json={"days": 2, "hours": 1}).get_json()
    assert after["offset_seconds"] - before["offset_seconds"] == pytest.approx(49 * 3600, abs=5)
    assert web.post("/_sandbox/clock/advance", json={"days": -1}).status_code == 400
    with pytest.raises(PaymentDeclined):
        cloudpayments_client.charge(
            Decimal("2"), ip_address="1.1.1.1",
            cryptogram=cloudpayments_sandbox.make_cryptogram("4000000000003056"))
    rows = web.get("/_sandbox/transactions").get_json()
    assert rows[0]["ReasonCode"] == 5014 and "Luhn" in rows[0]["SandboxDetail"]
    assert web.get(f"/_sandbox/transactions/{rows[0]['TransactionId']}").status_code == 200
    assert web.get("/_sandbox/transactions/1").status_code == 404
    html = web.get("/_sandbox/").get_data(as_text=True)
    assert "InvalidCardNumber" in html and "4000000000003056" not in html
    assert web.post("/_sandbox/faults", json={"kind": "status", "status": 503,
                                              "path": "/payments/get"}).status_code == 200
    assert web.post("/_sandbox/faults", json={"kind": "nope"}).status_code == 400
    assert len(web.get("/_sandbox/faults").get_json()) == 1
    assert web.delete("/_sandbox/faults").get_json() == []
    changed = web.post("/_sandbox/settings", json={"save_cards": "always",
                                                   "duplicate_notifications": True,
                                                   "auto_confirm_days": 3}).get_json()
    assert changed["save_cards"] == "always" and changed["auto_confirm_days"] == 3
    assert cloudpayments_sandbox.settings.duplicate_notifications is True
    assert web.post("/_sandbox/settings", json={"save_cards": "sometimes"}).status_code == 400
    assert web.post("/_sandbox/settings", json={"save_cards": "off"}).get_json()[
        "save_cards"] == "off"
    assert cloudpayments_sandbox.settings.save_cards is SaveCards.OFF
    for name in ("deliveries", "tokens", "subscriptions", "orders"):
        assert isinstance(web.get(f"/_sandbox/{name}").get_json(), list)
    assert web.post("/_sandbox/run", json={}).status_code == 200


@pytest.mark.parametrize("bad", [
    {"max_concurrent_requests": "many"}, {"max_concurrent_requests": 2.5},
    {"max_concurrent_requests": 0}, {"auth_expiry_days": "soon"}, {"auth_expiry_days": -1},
    {"auto_confirm_days": True}, {"deliver_immediately": "perhaps"}, {"site_name": ["x"]},
    {"allowed_hosts": "a.dev"}, {"save_cards": None},
])
def test_settings_change_all_or_nothing_with_our_own_messages(
    cloudpayments_sandbox: Sandbox, bad: dict[str, object],
) -> None:
    """A bad field is a 400 naming it, and the good fields before it are not applied."""
    web = cloudpayments_sandbox.app.test_client()
    before = web.get("/_sandbox/settings").get_json()
    answer = web.post("/_sandbox/settings", json={
        "save_cards": "always", "duplicate_notifications": True, "site_name": "Changed",
        **bad})
    assert answer.status_code == 400
    message = answer.get_json()["Message"]
    assert next(iter(bad)) in message
    for python_text in ("invalid literal", "could not convert", "decimal.", "<class"):
        assert python_text not in message
    assert web.get("/_sandbox/settings").get_json() == before


@pytest.mark.parametrize("path", ["/_sandbox/clock/advance", "/_sandbox/faults",
                                  "/_sandbox/settings"])
@pytest.mark.parametrize("body", [
    b"{", b'{"days": NaN}', b'{"days": 1e50000000}', b"[" * 10_000, b'{"a": ' * 100 + b"1",
    b"[1, 2]", b'{"\\ud800": 1}x',
], ids=["cut", "nan", "huge", "deep-list", "deep-object", "list", "trailing"])
def test_controls_answer_400_for_unreadable_bodies(path: str, body: bytes,
                                                   cloudpayments_sandbox: Sandbox) -> None:
    web = cloudpayments_sandbox.app.test_client()
    answer = web.post(path, data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.get_json()["Success"] is False


@pytest.mark.parametrize("fault", [{"kind": "status", "status": 503, "retry_after": "nan"},
                                   {"kind": "status", "status": 503, "retry_after": -1},
                                   {"kind": "status", "status": "1e400"}])
def test_fault_values_out_of_range_are_refused(fault: dict[str, object],
                                               cloudpayments_sandbox: Sandbox) -> None:
    web = cloudpayments_sandbox.app.test_client()
    assert web.post("/_sandbox/faults", json=fault).status_code == 400
    assert cloudpayments_sandbox.faults.list() == []


def test_state_survives_a_restart(tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes],
                                  ) -> None:
    path = tmp_path / "sandbox.sqlite3"
    app = create_sandbox_app(state_path=path)  # generates and keeps its own key
    sandbox = sandbox_of(app)
    http = httpx.Client(base_url="http://sb", transport=httpx.WSGITransport(app=app),
                        auth=(sandbox.public_id, sandbox.api_secret))
    packet = sandbox.make_cryptogram("4000000000003055")
    first = http.post("/payments/cards/auth", json={
        "Amount": "9.99", "IpAddress": "1.1.1.1", "CardCryptogramPacket": packet,
        "SaveCard": True, "AccountId": "p"}).json()["Model"]
    sandbox.advance(timedelta(hours=1))
    again = sandbox_of(create_sandbox_app(state_path=path))
    assert again.public_key_pem() == sandbox.public_key_pem()
    tx = again.state.transactions[first["TransactionId"]]
    assert tx.amount == Decimal("9.99") and tx.status == "Authorized"
    assert tx.card is not None and tx.card.last_four == "3055"
    assert list(again.state.tokens) == [first["Token"]]
    assert again.state.meta["next_transaction_id"] == first["TransactionId"] + 1
    again.advance(timedelta(days=7))
    assert again.state.transactions[first["TransactionId"]].status == "Cancelled"


@pytest.mark.parametrize("data", [
    {"$decimal": "oops"}, {"$datetime": "not a date"}, {"$decimal": "1.5"},
    {"a": [{"$datetime": "2020-01-01T00:00:00"}], "$$b": {"$": 1, "$$": 2}, "c": 1.25},
    [{"$decimal": "NaN"}],
], ids=["bad-decimal", "bad-datetime", "good-decimal", "nested", "list"])
def test_the_shops_json_with_tag_like_keys_survives_a_restart(
    tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes], data: object,
) -> None:
    path = tmp_path / "sandbox.sqlite3"
    app = create_sandbox_app(state_path=path, keys=cloudpayments_sandbox_keys)
    sandbox = sandbox_of(app)
    http = httpx.Client(base_url="http://sb", transport=httpx.WSGITransport(app=app),
                        auth=(sandbox.public_id, sandbox.api_secret))
    answer = http.post("/payments/cards/charge", json={
        "Amount": 1, "IpAddress": "1.1.1.1", "JsonData": data,
        "CardCryptogramPacket": sandbox.make_cryptogram("4000000000003055")}).json()
    assert answer["Success"] is True
    sent = sandbox.state.transactions[answer["Model"]["TransactionId"]].json_data
    again = sandbox_of(create_sandbox_app(state_path=path, keys=cloudpayments_sandbox_keys))
    assert again.state.transactions[answer["Model"]["TransactionId"]].json_data == sent
    assert json.dumps(sent, default=str) == json.dumps(
        json.loads(json.dumps(data), parse_float=Decimal), default=str)


def test_plugin_fixtures_are_wired(cloudpayments_sandbox: Sandbox,
                                   cloudpayments_client: CloudPaymentsClient,
                                   subscribe: Callable[..., None], shop: Any) -> None:
    assert cloudpayments_client.public_id == cloudpayments_sandbox.public_id
    assert cloudpayments_client.test()
    subscribe("Pay")
    cloudpayments_client.charge(Decimal("1"), ip_address="1.1.1.1",
                                cryptogram=cloudpayments_sandbox.make_cryptogram("4000000000003055"))
    assert len(shop.of("Pay")) == 1
