"""The one-port demo in Chromium: the widget mode through the mounted sandbox, the
ledger page's buttons, and a 3-D Secure form payment whose bank page is on the
shop's own origin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from checkout_kit.ledger import PaymentStatus
from checkout_kit.shop.demo import create_demo_app
from checkout_kit.shop.state import state

from .conftest import serve


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Flask]]:
    folder: Path = tmp_path_factory.mktemp("demo")
    app = create_demo_app(folder)
    server = serve(app)
    yield server.url, app
    server.stop()
    state(app).client.close()
    state(app).ledger.engine.dispose()


def buy(page: Any, url: str, mode: str, scheme: str = "charge") -> str:
    page.goto(url + "/")
    page.check(f"input[name=mode][value={mode}]")
    page.check(f"input[name=scheme][value={scheme}]")
    page.click("#demo-pay")
    page.wait_for_url(f"**/checkout/pay/*/{mode}")
    return str(page.url.split("/")[-2])


def test_widget_mode_learns_the_result_from_the_gateway(page: Any,
                                                        demo: tuple[str, Flask]) -> None:
    url, app = demo
    payment_id = buy(page, url, "widget", "auth")
    frame = page.frame_locator("iframe[title=CloudPayments]")
    frame.locator("#card-number").fill("4000 0000 0000 3055")
    frame.locator("#card-exp").fill("12/30")
    frame.locator("#card-cvv").fill("123")
    frame.locator("#pay").click()
    page.wait_for_url(f"**/checkout/payments/{payment_id}")
    assert page.get_attribute("h1", "data-result") == "success"
    assert state(app).ledger.get(payment_id).status is PaymentStatus.AUTHORIZED
    page.goto(url + "/ledger")
    page.click(f"[data-payment='{payment_id}'] button[data-action=confirm]")
    page.wait_for_selector("#demo-message")
    assert "confirm: ok" in page.text_content("#demo-message")
    assert page.get_attribute(f"[data-payment='{payment_id}']", "data-status") == "succeeded"
    assert page.page_errors == []


def test_form_mode_with_3ds_on_the_mounted_bank_page(page: Any, demo: tuple[str, Flask]) -> None:
    url, app = demo
    payment_id = buy(page, url, "form")
    page.type("#ck-number", "5555555555554444")
    assert page.text_content("#ck-brand") == "Mastercard"
    page.type("#ck-exp", "0731")
    page.type("#ck-cvv", "321")
    page.click("#ck-pay")
    page.wait_for_url(f"{url}/sandbox/acs")
    page.click("button[value=confirm]")
    page.wait_for_url(f"**/checkout/payments/{payment_id}")
    assert page.get_attribute("h1", "data-result") == "success"
    page.goto(url + "/ledger")
    page.click(f"[data-payment='{payment_id}'] button[data-action=refund]")
    page.wait_for_selector("#demo-message")
    assert state(app).ledger.get(payment_id).status is PaymentStatus.REFUNDED
    assert page.page_errors == []
