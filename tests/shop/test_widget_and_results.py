"""Widget mode: the page opens the widget with the ledger's data; the result comes
from the gateway's notifications (or an explicit refresh/reconcile), never from the
browser."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from checkout_kit import jsoncodec
from checkout_kit.errors import PaymentDeclined
from checkout_kit.jsoncodec import loads
from checkout_kit.ledger import PaymentStatus

from .conftest import DECLINED, NO_3DS, Shop


def page_data(html: str) -> dict:  # type: ignore[type-arg]
    raw = re.search(r'<script type="application/json" id="checkout-kit-data">(.*?)</script>',
                    html, re.S).group(1)  # type: ignore[union-attr]
    data = loads(raw)
    assert isinstance(data, dict)
    return data


def widget_pays(shop: Shop, payment: object, card: str) -> None:
    """What the widget's frame does: pay at the gateway, past the shop's server."""
    charge = shop.state.client.charge
    charge(payment.amount, ip_address="203.0.113.9",  # type: ignore[attr-defined]
           cryptogram=shop.sandbox.make_cryptogram(card), invoice_id=payment.invoice_id)  # type: ignore[attr-defined]


def test_widget_page_opens_with_the_ledger_data(shop: Shop) -> None:
    payment = shop.create(amount="1490.00", account_id="user-7", email="a@example.com",
                          scheme="auth", description="Kettle")
    response = shop.client.get(f"/checkout/pay/{payment.id}/widget",
                               headers={"Accept-Language": "en"})
    assert response.status_code == 200
    assert '<script src="/sandbox/bundles/cloudpayments.js"></script>' in response.text
    data = page_data(response.text)
    assert data["intent"] == {
        "publicTerminalId": shop.state.settings.public_id, "amount": Decimal("1490.00"),
        "currency": "RUB", "paymentSchema": "Dual", "description": "Kettle",
        "externalId": "order-1", "culture": "en-US",
        "userInfo": {"accountId": "user-7", "email": "a@example.com"},
    }
    assert data["resultUrl"] == f"/checkout/payments/{payment.id}"


def test_widget_result_is_pending_until_the_gateway_knows(notified_shop: Shop) -> None:
    shop = notified_shop
    payment = shop.create()
    pending = shop.client.get(f"/checkout/payments/{payment.id}")
    assert 'data-result="pending"' in pending.text
    assert '<meta http-equiv="refresh"' in pending.text
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.CREATED
    widget_pays(shop, payment, NO_3DS)
    done = shop.client.get(f"/checkout/payments/{payment.id}")
    assert 'data-result="success"' in done.text
    stored = shop.state.ledger.get(payment.id)
    assert stored.status is PaymentStatus.SUCCEEDED and stored.gateway_transaction_id


def test_widget_decline_is_learned_from_the_gateway(notified_shop: Shop) -> None:
    shop = notified_shop
    payment = shop.create()
    with pytest.raises(PaymentDeclined):
        widget_pays(shop, payment, DECLINED)
    page = shop.client.get(f"/checkout/payments/{payment.id}")
    assert 'data-result="failure"' in page.text
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.FAILED


def test_form_page_data_carries_brands_and_messages_in_the_page_language(shop: Shop) -> None:
    payment = shop.create()
    ru = page_data(shop.client.get(f"/checkout/pay/{payment.id}/form",
                                   headers={"Accept-Language": "ru-RU,ru;q=0.9"}).text)
    en = page_data(shop.client.get(f"/checkout/pay/{payment.id}/form",
                                   headers={"Accept-Language": "en-US,en;q=0.9"}).text)
    assert ru["messages"]["CardNumber_Invalid"] == "В номере карты допущены ошибки"
    assert en["messages"]["CardNumber_Invalid"] == "The card number has a mistake"
    assert set(ru["messages"]) == set(en["messages"]) and len(ru["messages"]) == 14
    assert {b["id"] for b in ru["brands"]} >= {"visa", "mastercard", "mir"}
    json.dumps(ru["brands"])  # plain data


def test_a_two_stage_payment_shows_held(shop: Shop) -> None:
    payment = shop.create(scheme="auth")
    response = shop.pay(payment.id, NO_3DS)
    page = shop.client.get(response.headers["Location"], headers={"Accept-Language": "en"})
    assert 'data-result="success"' in page.text and "held on your card" in page.text


def test_a_widget_retry_after_a_decline_is_found(notified_shop: Shop) -> None:
    shop = notified_shop
    payment = shop.create()
    with pytest.raises(PaymentDeclined):
        widget_pays(shop, payment, DECLINED)
    assert 'data-result="failure"' in shop.client.get(f"/checkout/payments/{payment.id}").text
    # "Try another card": the payer pays in the widget again.
    assert shop.client.get(f"/checkout/pay/{payment.id}/widget").status_code == 200
    widget_pays(shop, payment, NO_3DS)
    page = shop.client.get(f"/checkout/payments/{payment.id}")
    assert 'data-result="success"' in page.text
    stored = shop.state.ledger.get(payment.id)
    assert stored.status is PaymentStatus.SUCCEEDED
    statuses = [str(e.new_status) for e in shop.state.ledger.history(payment.id)]
    assert statuses == ["created", "processing", "failed", "processing", "succeeded"]
    # A failure page of a form decline stays a failure (the same transaction).
    other = shop.create("order-2")
    shop.pay(other.id, DECLINED)
    assert 'data-result="failure"' in shop.client.get(f"/checkout/payments/{other.id}").text
    assert shop.state.ledger.get(other.id).status is PaymentStatus.FAILED


def test_without_its_notification_a_widget_payment_stays_pending_until_refreshed(
        shop: Shop) -> None:
    # The payer's browser coming back proves nothing: the page asks nobody and waits.
    payment = shop.create()
    widget_pays(shop, payment, NO_3DS)
    for _ in range(2):
        page = shop.client.get(f"/checkout/payments/{payment.id}")
        assert 'data-result="pending"' in page.text
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.CREATED
    with shop.app.app_context():
        assert shop.kit.refresh(payment.id).status == "succeeded"
    assert 'data-result="success"' in shop.client.get(f"/checkout/payments/{payment.id}").text


def test_a_widget_retry_soon_after_a_form_decline_is_settled_by_one_refresh(
        shop: Shop) -> None:
    # The form's declined attempt is seconds old; the widget's payment is settled by
    # the same refresh that finds it, not left processing until reconcile.
    payment = shop.create()
    shop.pay(payment.id, DECLINED)
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.FAILED
    widget_pays(shop, payment, NO_3DS)
    with shop.app.app_context():
        assert shop.kit.refresh(payment.id).status == "succeeded"
    statuses = [str(e.new_status) for e in shop.state.ledger.history(payment.id)]
    assert statuses == ["created", "processing", "failed", "processing", "succeeded"]


def test_page_data_is_the_one_script_safe_json(shop: Shop) -> None:
    # The shop's own text (the description) goes into the page's JSON: it must not close
    # the <script> element, open a comment or break a line for an old JavaScript engine.
    hostile = "</script><script>alert(1)</script><!-- & --> \u2028\u2029 Чайник"
    payment = shop.create(description=hostile)
    response = shop.client.get(f"/checkout/pay/{payment.id}/widget")
    raw = re.search(r'id="checkout-kit-data">(.*?)</script>', response.text, re.S)
    assert raw is not None
    text = raw.group(1)
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"} and text.isascii()
    assert page_data(response.text)["intent"]["description"] == hostile
    assert text == jsoncodec.dumps_for_script(loads(text))


def test_the_pending_page_asks_the_gateway_once_per_interval(
        shop: Shop, now: list[datetime], monkeypatch: pytest.MonkeyPatch) -> None:
    # The page reloads every PENDING_REFRESH (3) seconds; a payment in flight is looked
    # up at the gateway at most once per PENDING_LOOKUP_INTERVAL (10) seconds.
    ledger = shop.state.ledger
    payment = shop.create()
    ledger.transition(payment.id, PaymentStatus.PROCESSING)
    ledger.transition(payment.id, PaymentStatus.UNKNOWN)
    asked: list[str] = []

    def refresh(payment_id: str) -> Any:
        asked.append(payment_id)
        return ledger.get(payment_id)  # the gateway still does not know

    monkeypatch.setattr(shop.state.service, "refresh", refresh)
    for _ in range(4):
        page = shop.client.get(f"/checkout/payments/{payment.id}")
        assert 'data-result="pending"' in page.text
        now[0] += timedelta(seconds=3)
    assert asked == [payment.id]  # at 0 s; not at 3, 6, 9 s
    now[0] += timedelta(seconds=1)  # 13 s: past the interval
    shop.client.get(f"/checkout/payments/{payment.id}")
    shop.client.get(f"/checkout/payments/{payment.id}")
    assert asked == [payment.id, payment.id]
