"""The sandbox's home page and the widget frame opened directly, in Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips (fails under CHECKOUT_KIT_REQUIRE_BROWSER=1)
    expect = None

from .conftest import LiveSandbox

EXPIRY = f"12/{(datetime.now(UTC).year + 3) % 100:02d}"


def test_home_page_creates_a_test_order_that_a_test_card_pays(
    page: Any, live_sandbox: LiveSandbox
) -> None:
    page.goto(f"{live_sandbox.url}/")
    expect(page.locator("[data-field=public-id]")).to_have_text(live_sandbox.sandbox.public_id)
    expect(page.locator("#test-cards")).to_contain_text("4242 4242 4242 4242")
    page.locator("#create-order").click()
    page.wait_for_url(f"{live_sandbox.url}/d/*")
    expect(page.locator("[data-field=amount]")).to_have_text("100.00 RUB")
    page.locator("input[name=cardNumber]").fill("4000 0000 0000 3055")
    page.locator("input[name=expDate]").fill(EXPIRY)
    page.locator("input[name=cvv]").fill("123")
    page.locator("button[type=submit]").click()
    expect(page.locator("[data-field=message]")).to_have_text("Payment approved")
    expect(page.locator("[data-field=status]")).to_have_text("Paid")
    assert page.page_errors == []


@pytest.fixture
def localized(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(locale=request.param)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("localized, query, text", [
    ("en-US", "", "This page is opened by the payment widget."),
    ("ru-RU", "", "Эту страницу открывает платёжный виджет."),
    ("ru-RU", "?lang=en", "This page is opened by the payment widget."),
    ("en-GB", "?lang=ru", "Эту страницу открывает платёжный виджет."),
    ("de-DE", "", "Эту страницу открывает платёжный виджет."),
], indirect=["localized"])
def test_frame_opened_directly_speaks_the_language_asked_for(
    localized: Any, live_sandbox: LiveSandbox, query: str, text: str
) -> None:
    localized.goto(f"{live_sandbox.url}/widget/frame{query}")
    expect(localized.locator("#waiting")).to_have_text(text)
    expect(localized.locator("[data-t=sandbox]")).not_to_be_empty()
    lang = "en" if text.startswith("This") else "ru"
    assert localized.evaluate("document.documentElement.lang") == lang
