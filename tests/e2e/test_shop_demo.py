"""The one-port demo in Chromium: the widget mode through the mounted sandbox, the
ledger page (the buttons a status allows, green and red messages, folded history, a
hold's deadline, pages), a 3-D Secure form payment whose bank page is on the shop's own
origin, and the shop page's test cards in Russian and English at 375 px."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from checkout_kit.ledger import PaymentStatus
from checkout_kit.sandbox import TEST_CARDS
from checkout_kit.shop.demo import LEDGER_PAGE_SIZE, create_demo_app
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
    assert page.text_content("#demo-message") == "Confirmed: RUB\u00a01,490.00 taken."
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


# --------------------------------------------------------------------------- the ledger page


def rgb(page: Any, selector: str, prop: str) -> tuple[int, ...]:
    value = page.eval_on_selector(selector, f"e => getComputedStyle(e).{prop}")
    return tuple(int(n) for n in re.findall(r"\d+", value)[:3])  # "rgb(6, 118, 71)"


def greenish(color: tuple[int, ...]) -> bool:
    # Green leads, red trails: the text (6, 118, 71) as well as its pale tint.
    red, green, blue = color
    return green > blue and green >= red + 8


def reddish(color: tuple[int, ...]) -> bool:
    red, green, blue = color
    return red >= green + 8 and red >= blue + 8


def visible_actions(page: Any, payment_id: str) -> list[str]:
    return [str(b.get_attribute("data-action"))
            for b in page.locator(f"[data-payment='{payment_id}'] button[data-action]").all()
            if b.is_visible()]


def test_the_ledger_page_in_chromium(browser: Any, demo: tuple[str, Flask]) -> None:
    url, app = demo
    context = browser.new_context(locale="en-US",
                                  extra_http_headers={"Accept-Language": "en-US,en;q=0.9"})
    context.set_default_timeout(15_000)
    page = context.new_page()
    payment_id = buy(page, url, "form", "auth")
    page.type("#ck-number", "4000000000003055")
    page.type("#ck-exp", "1230")
    page.type("#ck-cvv", "123")
    page.click("#ck-pay")
    page.wait_for_url(f"**/checkout/payments/{payment_id}")
    page.goto(url + "/ledger")
    row = f"[data-payment='{payment_id}']"
    # Funds held: only confirm and void, and when the hold ends.
    assert visible_actions(page, payment_id) == ["confirm", "void"]
    hold = page.locator(f"{row} .demo-hold")
    assert hold.is_visible() and "Hold ends by" in str(hold.text_content())
    # The history is folded until its summary is clicked.
    history = page.locator(f"{row} .demo-history li")
    assert history.count() == 3 and not history.first.is_visible()
    page.click(f"{row} .demo-history summary")
    assert history.first.is_visible() and history.last.is_visible()
    assert "processing → funds held" in str(history.last.text_content())
    # Done: green; then only a refund is left.
    page.click(f"{row} button[data-action=confirm]")
    page.wait_for_selector("#demo-message[data-kind=success]")
    assert greenish(rgb(page, "#demo-message", "color"))
    assert greenish(rgb(page, "#demo-message", "backgroundColor"))
    assert visible_actions(page, payment_id) == ["refund"]
    assert page.locator(f"{row} .demo-hold").count() == 0
    # Refused: red, in words.
    page.fill(f"{row} input[name=amount]", "5000")
    page.click(f"{row} button[data-action=refund]")
    page.wait_for_selector("#demo-message[data-kind=error]")
    assert page.text_content("#demo-message") == "At most RUB\u00a01,490.00 is left to refund."
    assert reddish(rgb(page, "#demo-message", "color"))
    assert reddish(rgb(page, "#demo-message", "backgroundColor"))
    assert page.get_attribute("#demo-message", "role") == "alert"
    assert state(app).ledger.get(payment_id).status is PaymentStatus.SUCCEEDED
    context.close()


def test_the_ledger_pages_in_chromium(browser: Any, tmp_path: Path) -> None:
    app = create_demo_app(tmp_path / "paged")
    ledger = state(app).ledger
    made = [ledger.create_payment(invoice_id=f"order-{n:02d}", amount="10.00", currency="RUB",
                                  description="Kettle").id for n in range(LEDGER_PAGE_SIZE + 2)]
    server = serve(app)
    context = browser.new_context(viewport={"width": 375, "height": 812})
    page = context.new_page()
    try:
        page.goto(server.url + "/ledger")
        first = page.locator("[data-payment]").evaluate_all(
            "els => els.map(e => e.dataset.payment)")
        assert len(first) == LEDGER_PAGE_SIZE
        assert page.locator("a[rel=prev]").count() == 0
        page.click("a[rel=next]")
        page.wait_for_url("**/ledger?page=2")
        second = page.locator("[data-payment]").evaluate_all(
            "els => els.map(e => e.dataset.payment)")
        assert sorted(first + second) == sorted(made)
        assert page.locator("a[rel=next]").count() == 0
        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits
        page.click("a[rel=prev]")
        page.wait_for_url("**/ledger")
        assert page.locator("[data-payment]").count() == LEDGER_PAGE_SIZE
    finally:
        context.close()
        server.stop()
        state(app).client.close()
        ledger.engine.dispose()


# --------------------------------------------------------------------------- the shop page


@pytest.mark.parametrize(("lang", "heading", "declined"), [
    ("ru", "Тестовые карты", "отказ: недостаточно средств на карте (5051)"),
    ("en", "Test cards", "declined: insufficient funds on the card (5051)"),
])
def test_the_test_cards_at_375_px(browser: Any, demo: tuple[str, Flask], lang: str,
                                  heading: str, declined: str) -> None:
    url, _app = demo
    context = browser.new_context(viewport={"width": 375, "height": 812},
                                  extra_http_headers={"Accept-Language": lang})
    page = context.new_page()
    page.goto(url + "/")
    assert page.get_attribute("html", "lang") == lang
    assert page.get_by_role("heading", name=heading).is_visible()
    numbers = page.locator("code.demo-number")
    assert numbers.count() == len(TEST_CARDS)
    line = float(page.eval_on_selector("code.demo-number",
                                       "e => parseFloat(getComputedStyle(e).lineHeight) || "
                                       "parseFloat(getComputedStyle(e).fontSize) * 1.5"))
    for code in numbers.all():
        assert re.fullmatch(r"\d{4} \d{4} \d{4} \d{4}", str(code.text_content()))
        box = code.bounding_box()
        assert box is not None and box["height"] < 1.6 * line  # one line, never wrapped
        assert box["x"] + box["width"] <= 375
    declines = page.locator("td.demo-declined")
    assert declines.count() == 6
    assert all(str(td.text_content()) == declined for td in declines.all())
    # Every cell fits the screen whole: nothing scrolls sideways, nothing is cut off.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for cell in page.locator(".demo-cards td").all():
        box = cell.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
        assert cell.evaluate("e => e.scrollWidth <= e.clientWidth")
    context.close()
