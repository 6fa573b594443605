"""The extension's card form in Chromium: pay without and with 3-D Secure.

The shop runs on one origin, the sandbox on another (as CloudPayments does in
production). Every request the browser makes is recorded: the card number and the
CVV never leave the page; the shop receives only the cryptogram, the name and the
e-mail.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from flask import Flask

from checkout_kit.ledger import PaymentStatus, upgrade
from checkout_kit.shop import CheckoutKit
from checkout_kit.shop.state import KitState, state

from .buyer import Recorder
from .conftest import LiveSandbox, Server, serve

NO_3DS = "4000000000003055"
WITH_3DS = "4242424242424242"
CVV = "987"


@dataclass
class LiveShop:
    url: str
    app: Flask
    kit: CheckoutKit
    recorder: Recorder
    server: Server

    @property
    def state(self) -> KitState:
        return state(self.app)

    def stop(self) -> None:
        self.server.stop()
        self.state.client.close()
        self.state.ledger.engine.dispose()

    def create(self, invoice: str, **kw: Any) -> Any:
        with self.app.test_request_context(base_url=self.url):
            return self.kit.create_payment(invoice_id=invoice, amount="321.00",
                                           description="E2E order", **kw)


def start_shop(live_sandbox: LiveSandbox, folder: Path, **config: Any) -> LiveShop:
    app = Flask("e2e_checkout_shop", instance_path=str(folder))
    app.config.update(
        SECRET_KEY="e2e secret",
        CHECKOUT_KIT_PUBLIC_ID=live_sandbox.sandbox.public_id,
        CHECKOUT_KIT_API_SECRET=live_sandbox.sandbox.api_secret,
        CHECKOUT_KIT_SANDBOX=True,
        CHECKOUT_KIT_SANDBOX_URL=live_sandbox.url,
        **config,
    )
    kit = CheckoutKit(app)
    upgrade(state(app).settings.database_url)
    recorder = Recorder(app.wsgi_app)
    app.wsgi_app = recorder  # type: ignore[method-assign]
    server = serve(app)
    return LiveShop(server.url, app, kit, recorder, server)


@pytest.fixture(scope="module")
def live_shop(live_sandbox: LiveSandbox, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[LiveShop]:
    shop = start_shop(live_sandbox, tmp_path_factory.mktemp("shop"))
    yield shop
    shop.stop()


@pytest.fixture(scope="module")
def framed_shop(live_sandbox: LiveSandbox, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[LiveShop]:
    shop = start_shop(live_sandbox, tmp_path_factory.mktemp("framed"),
                      CHECKOUT_KIT_THREEDS_IFRAME=True)
    yield shop
    shop.stop()


def watch(page: Any) -> list[Any]:
    """Every request the page makes, to any host; CSP violations fail the page."""
    seen: list[Any] = []
    page.csp_errors = []

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            page.csp_errors.append(message.text)

    page.on("request", lambda request: seen.append(request))
    page.on("console", on_console)
    return seen


def assert_no_card_data(requests: list[Any], shop: LiveShop, card: str) -> None:
    spaced = " ".join(card[i:i + 4] for i in range(0, len(card), 4))
    for request in requests:
        blob = request.url + (request.post_data or "")
        assert card not in blob and spaced not in blob, request.url
    pay_posts = [seen.body for seen in shop.recorder.requests
                 if seen.method == "POST" and seen.path.startswith("/checkout/pay/")]
    assert pay_posts, "the form was never posted"
    for body in pay_posts:
        fields = dict(parse_qsl(body.decode("ascii"), keep_blank_values=True))
        assert set(fields) == {"csrf_token", "cryptogram", "name", "email"}
        assert CVV not in fields.values() and card not in body.decode("ascii")
    for seen in shop.recorder.requests:
        assert card.encode() not in seen.body and card not in seen.path + seen.query


def fill_card(page: Any, card: str) -> None:
    page.type("#ck-number", card)
    page.type("#ck-exp", "1230")
    page.type("#ck-cvv", CVV)
    page.fill("#ck-name", "IVAN PETROV")


def test_pay_in_form_mode_without_3ds(page: Any, live_shop: LiveShop) -> None:
    payment = live_shop.create("e2e-no-3ds")
    requests = watch(page)
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(payment.checkout_url + "/form", wait_until="load")
    page.type("#ck-number", NO_3DS)
    assert page.input_value("#ck-number") == "4000 0000 0000 3055"
    assert page.text_content("#ck-brand") == "Visa"
    assert page.text_content("#ck-cvv-label") == "CVV"
    # A phone-sized viewport: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.type("#ck-exp", "1230")
    assert page.input_value("#ck-exp") == "12/30"
    page.type("#ck-cvv", CVV)
    page.fill("#ck-name", "IVAN PETROV")
    page.click("#ck-pay")
    page.wait_for_url(f"**/checkout/payments/{payment.id}")
    assert page.get_attribute("h1", "data-result") == "success"
    assert live_shop.state.ledger.get(payment.id).status is PaymentStatus.SUCCEEDED
    assert_no_card_data(requests, live_shop, NO_3DS)
    assert page.page_errors == [] and page.csp_errors == []


def test_pay_in_form_mode_with_3ds_confirmed_at_the_bank(page: Any, live_shop: LiveShop,
                                                         live_sandbox: LiveSandbox) -> None:
    payment = live_shop.create("e2e-3ds")
    requests = watch(page)
    page.goto(payment.checkout_url + "/form")
    fill_card(page, WITH_3DS)
    page.click("#ck-pay")
    # Our page posts PaReq, MD and TermUrl to the bank on its own.
    page.wait_for_url(f"{live_sandbox.url}/acs")
    assert live_shop.state.ledger.get(payment.id).status is PaymentStatus.AWAITING_3DS
    page.click("button[value=confirm]")
    page.wait_for_url(f"**/checkout/payments/{payment.id}")
    assert page.get_attribute("h1", "data-result") == "success"
    stored = live_shop.state.ledger.get(payment.id)
    assert stored.status is PaymentStatus.SUCCEEDED
    assert [a.operation for a in live_shop.state.ledger.attempts(payment.id)] == [
        "charge", "post3ds"]
    assert_no_card_data(requests, live_shop, WITH_3DS)
    assert page.page_errors == [] and page.csp_errors == []


def test_live_errors_in_the_page_language(page: Any, live_shop: LiveShop) -> None:
    payment = live_shop.create("e2e-errors")
    page.context.set_extra_http_headers({"Accept-Language": "en-US,en;q=0.9"})
    page.goto(payment.checkout_url + "/form")
    page.type("#ck-number", "4242 4242 4242 4241")
    page.click("#ck-exp")  # blur: the error shows in place
    assert page.text_content("#ck-error-cardNumber") == "The card number has a mistake"
    page.fill("#ck-number", "")
    page.type("#ck-number", "2200000000000004")
    assert page.text_content("#ck-brand") == "MIR"
    assert page.text_content("#ck-cvv-label") == "CVP2"
    assert page.text_content("#ck-error-cardNumber") == ""
    page.click("#ck-pay")  # expiry and CVV empty: nothing is sent
    assert page.text_content("#ck-error-expDateMonthYear") == "Enter the expiry date"
    assert page.text_content("#ck-error-cvv") == "Enter the security code"
    assert live_shop.state.ledger.get(payment.id).status is PaymentStatus.CREATED


def test_the_policy_is_enforced_and_watched(page: Any, live_shop: LiveShop) -> None:
    payment = live_shop.create("e2e-csp")
    watch(page)
    page.goto(payment.checkout_url + "/form")
    page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.__injected = 1'; document.body.appendChild(s); }""")
    page.wait_for_timeout(200)
    assert page.evaluate("window.__injected") is None
    assert any("script-src" in e for e in page.csp_errors)


def test_3ds_in_a_frame_then_the_whole_window_goes_to_the_result(
        page: Any, framed_shop: LiveShop) -> None:
    payment = framed_shop.create("e2e-framed")
    requests = watch(page)
    page.goto(payment.checkout_url + "/form")
    fill_card(page, WITH_3DS)
    page.click("#ck-pay")
    bank = page.frame_locator("#ck-acs-frame")
    bank.locator("button[value=confirm]").click()
    page.wait_for_url(f"**/checkout/payments/{payment.id}")
    assert page.get_attribute("h1", "data-result") == "success"
    assert framed_shop.state.ledger.get(payment.id).status is PaymentStatus.SUCCEEDED
    assert_no_card_data(requests, framed_shop, WITH_3DS)
    assert page.page_errors == [] and page.csp_errors == []
