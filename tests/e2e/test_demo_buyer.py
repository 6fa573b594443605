"""The demo (``checkout-kit demo``) as a buyer uses it, in Chromium, by labels and
button texts: the card form with and without 3-D Secure, declines, a double-click
on Pay, and the widget.

Every request that reaches the demo's server is recorded (URL, headers, body) and
checked: no card number or CVV is among them. Each payment is then compared with
the sandbox's own transaction list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask

from checkout_kit.ledger import PaymentStatus
from checkout_kit.shop.demo import create_demo_app
from checkout_kit.shop.state import state

from .buyer import (
    ENGLISH,
    Recorder,
    assert_no_card_data,
    axe_source,
    axe_violations,
    pay_button,
    pay_with_card,
)
from .conftest import serve

CVV = "739"
NO_3DS = "4000 0000 0000 3055"
WITH_3DS = "5555 5555 5555 4444"
INSUFFICIENT_FUNDS = "4000 0566 5566 5556"  # docs/sandbox.md: declined 5051, no 3-D Secure


@dataclass
class Demo:
    url: str
    app: Flask
    recorder: Recorder

    def transactions(self, payment_id: str) -> list[dict[str, Any]]:
        """The sandbox's transactions for this payment's invoice."""
        invoice = state(self.app).ledger.get(payment_id).invoice_id
        rows = httpx.get(f"{self.url}/sandbox/_sandbox/transactions", timeout=10).json()
        return [row for row in rows if row.get("InvoiceId") == invoice]

    def status(self, payment_id: str) -> PaymentStatus:
        return state(self.app).ledger.get(payment_id).status


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder: Path = tmp_path_factory.mktemp("demo-buyer")
    app = create_demo_app(folder)
    # Around the whole server: the shop and the sandbox mounted beside it.
    recorder = Recorder(app.wsgi_app)
    app.wsgi_app = recorder  # type: ignore[method-assign]
    server = serve(app)
    yield Demo(server.url, app, recorder)
    server.stop()
    state(app).client.close()
    state(app).ledger.engine.dispose()


@pytest.fixture
def buyer(browser: Any, demo: Demo) -> Iterator[Any]:
    """An English-speaking buyer's tab; the requests it causes are checked at the end."""
    context = browser.new_context(extra_http_headers=ENGLISH, locale="en-US")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    mark = demo.recorder.mark()
    yield tab
    context.close()
    assert errors == []
    tab.checked_cards = getattr(tab, "checked_cards", [])
    for card in tab.checked_cards:
        assert_no_card_data(demo.recorder.since(mark), card, CVV)


def start(page: Any, demo: Demo, mode: str) -> str:
    """From the shop's page to the payment page; returns the payment id."""
    page.goto(demo.url + "/")
    page.get_by_label("Card form (checkout script)" if mode == "form" else "Payment widget").check()
    page.get_by_label("One stage (charge)").check()
    page.get_by_role("button", name="Pay", exact=True).click()
    page.wait_for_url(f"**/checkout/pay/*/{mode}")
    return str(page.url.split("/")[-2])


def typed(page: Any, card: str) -> None:
    pay_with_card(page, card.replace(" ", ""), cvv=CVV)
    page.checked_cards = [*getattr(page, "checked_cards", []), card]


def heading(page: Any) -> str:
    return str(page.get_by_role("heading", level=1).text_content()).strip()


def one_completed_charge(demo: Demo, payment_id: str) -> dict[str, Any]:
    rows = demo.transactions(payment_id)
    assert [row["Status"] for row in rows] == ["Completed"], rows
    assert Decimal(str(rows[0]["Amount"])) == Decimal("1490.00")
    payment = state(demo.app).ledger.get(payment_id)
    assert str(payment.gateway_transaction_id) == str(rows[0]["TransactionId"])
    return rows[0]


# --------------------------------------------------------------------------- form mode


@pytest.mark.parametrize("press", ["click", "dblclick"])
def test_form_card_without_3ds(buyer: Any, demo: Demo, press: str) -> None:
    """A card without 3-D Secure; a double-click on Pay still charges once."""
    payment_id = start(buyer, demo, "form")
    typed(buyer, NO_3DS)
    getattr(pay_button(buyer), press)()
    buyer.wait_for_url(f"**/checkout/payments/{payment_id}")
    assert heading(buyer) == "Payment successful"
    assert demo.status(payment_id) is PaymentStatus.SUCCEEDED
    one_completed_charge(demo, payment_id)
    posts = [s for s in demo.recorder.requests
             if s.method == "POST" and s.path == f"/checkout/pay/{payment_id}/form"]
    # The page script disables Pay in the submit handler itself, before the cryptogram
    # is made, so the second click of a double-click lands on a disabled button and
    # the browser posts the form once (the server's claim would hold a second anyway).
    assert len(posts) == 1


def at_the_bank(page: Any, demo: Demo, card: str) -> str:
    """Pay with a 3-D Secure card up to the bank's page; returns the payment id."""
    payment_id = start(page, demo, "form")
    typed(page, card)
    pay_button(page).click()
    page.wait_for_url("**/sandbox/acs")
    assert demo.status(payment_id) is PaymentStatus.AWAITING_3DS
    return payment_id


def test_form_3ds_confirmed_at_the_bank(buyer: Any, demo: Demo) -> None:
    payment_id = at_the_bank(buyer, demo, WITH_3DS)
    buyer.get_by_label("One-time code (any value)").fill("1234")
    buyer.get_by_role("button", name="Confirm").click()
    buyer.wait_for_url(f"**/checkout/payments/{payment_id}")
    assert heading(buyer) == "Payment successful"
    assert demo.status(payment_id) is PaymentStatus.SUCCEEDED
    one_completed_charge(demo, payment_id)


def test_form_3ds_declined_at_the_bank(buyer: Any, demo: Demo) -> None:
    payment_id = at_the_bank(buyer, demo, WITH_3DS)
    buyer.get_by_role("button", name="Decline").click()
    buyer.wait_for_url(f"**/checkout/payments/{payment_id}")
    assert heading(buyer) == "Payment failed"
    assert buyer.get_by_role("link", name="Try another card").is_visible()
    assert demo.status(payment_id) is PaymentStatus.FAILED
    assert [row["Status"] for row in demo.transactions(payment_id)] == ["Declined"]


def test_form_insufficient_funds_then_another_card(buyer: Any, demo: Demo) -> None:
    payment_id = start(buyer, demo, "form")
    typed(buyer, INSUFFICIENT_FUNDS)
    pay_button(buyer).click()
    # The form again, with the bank's word for the buyer.
    alert = buyer.get_by_role("alert")
    alert.wait_for()
    assert "funds" in str(alert.text_content()).lower() or "средств" in str(alert.text_content())
    assert demo.status(payment_id) is PaymentStatus.FAILED
    typed(buyer, NO_3DS)
    pay_button(buyer).click()
    buyer.wait_for_url(f"**/checkout/payments/{payment_id}")
    assert heading(buyer) == "Payment successful"
    statuses = [row["Status"] for row in demo.transactions(payment_id)]
    assert statuses == ["Declined", "Completed"]


# --------------------------------------------------------------------------- widget mode


def widget_pay(page: Any, card: str) -> Any:
    frame = page.frame_locator("iframe[title=CloudPayments]")
    frame.get_by_label("Card number").fill(card)
    frame.get_by_label("Expiry date").fill("12/30")
    frame.get_by_label("CVV/CVC").fill(CVV)
    frame.get_by_role("button", name=re.compile(r"^Pay")).click()
    page.checked_cards = [*getattr(page, "checked_cards", []), card]
    return frame


def test_widget_success(buyer: Any, demo: Demo) -> None:
    payment_id = start(buyer, demo, "widget")
    widget_pay(buyer, NO_3DS)
    buyer.wait_for_url(f"**/checkout/payments/{payment_id}")
    assert heading(buyer) == "Payment successful"
    assert demo.status(payment_id) is PaymentStatus.SUCCEEDED
    one_completed_charge(demo, payment_id)


def test_widget_decline_then_success(buyer: Any, demo: Demo) -> None:
    payment_id = start(buyer, demo, "widget")
    frame = widget_pay(buyer, INSUFFICIENT_FUNDS)
    frame.get_by_role("heading", name="Payment failed").wait_for()
    frame.get_by_role("button", name="Try again").click()
    widget_pay(buyer, NO_3DS)
    buyer.wait_for_url(f"**/checkout/payments/{payment_id}")
    assert heading(buyer) == "Payment successful"
    assert demo.status(payment_id) is PaymentStatus.SUCCEEDED
    statuses = [row["Status"] for row in demo.transactions(payment_id)]
    assert statuses == ["Declined", "Completed"]
    completed = demo.transactions(payment_id)[1]
    assert str(state(demo.app).ledger.get(payment_id).gateway_transaction_id) == str(
        completed["TransactionId"])


# --------------------------------------------------------------------------- accessibility


@pytest.fixture
def axe_tab(browser: Any) -> Iterator[Any]:
    # The pages' policy refuses injected scripts; axe needs to be one.
    context = browser.new_context(extra_http_headers=ENGLISH, locale="en-US", bypass_csp=True)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_no_serious_accessibility_violations(axe_tab: Any, demo: Demo) -> None:
    source = axe_source()
    assert source is not None
    page = axe_tab
    found: dict[str, list[dict[str, Any]]] = {}
    payment_id = start(page, demo, "form")
    found["form"] = axe_violations(page, source)
    typed(page, WITH_3DS)
    # Our 3-D Secure page posts itself to the bank at once; hold its script back to
    # look at it as a browser without JavaScript shows it.
    page.route("**/checkout/assets/checkout_kit.js", lambda route: route.abort())
    pay_button(page).click()
    page.get_by_role("button", name="Continue to your bank").wait_for()
    found["3-D Secure (ours)"] = axe_violations(page, source)
    page.unroute("**/checkout/assets/checkout_kit.js")
    page.get_by_role("button", name="Continue to your bank").click()
    page.wait_for_url("**/sandbox/acs")
    found["3-D Secure (the bank)"] = axe_violations(page, source)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"**/checkout/payments/{payment_id}")
    found["result: success"] = axe_violations(page, source)
    failed = start(page, demo, "form")
    typed(page, INSUFFICIENT_FUNDS)
    pay_button(page).click()
    page.get_by_role("alert").wait_for()
    found["form with a decline"] = axe_violations(page, source)
    page.goto(f"{demo.url}/checkout/payments/{failed}")
    found["result: failure"] = axe_violations(page, source)
    page.goto(demo.url + "/")
    found["demo shop"] = axe_violations(page, source)
    # The ledger with its buttons, a hold, an unfolded history and a red message.
    page.goto(demo.url + "/ledger")
    page.locator(f"[data-payment='{failed}'] summary").click()
    page.locator(f"[data-payment='{payment_id}'] input[name=amount]").fill("99999")
    page.locator(f"[data-payment='{payment_id}'] button[data-action=refund]").click()
    page.locator("#demo-message").wait_for()
    found["ledger"] = axe_violations(page, source)
    assert {name: v for name, v in found.items() if v} == {}
