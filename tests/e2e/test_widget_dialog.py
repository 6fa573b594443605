"""The sandbox widget as a modal dialog, from the keyboard, in Chromium: focus moves
into it and stays there while it is open, Escape closes it, the close button is named
in the widget's language, focus comes back to the button that opened it, and axe
finds nothing serious on the page with the widget open or inside the widget.

The shop page is examples/browser/widget.html, on another origin than the sandbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips (fails under CHECKOUT_KIT_REQUIRE_BROWSER=1)
    expect = None

from .buyer import axe_source, axe_violations
from .conftest import PUBLIC_ID

CLOSE = {"ru-RU": "Закрыть", "en-US": "Close"}

# The page's Pay button, opening the widget in ``culture`` (the example page's own
# handler opens it in Russian: a copy of the button without it takes its place).
PAY_BUTTON_IN = """([culture, publicTerminalId]) => {
  window.__result = undefined;
  const old = document.getElementById('pay');
  const button = old.cloneNode(true);
  old.replaceWith(button);
  button.addEventListener('click', () => {
    new cp.CloudPayments().start({
      publicTerminalId, amount: 100, currency: 'RUB', paymentSchema: 'Single',
      description: 'Order 42', externalId: 'order-42', culture,
    }).then((r) => { window.__result = r; });
  });
}"""


def frame(page: Any) -> Any:
    return page.frame_locator("iframe[title=CloudPayments]")


def open_with_keyboard(page: Any, shop: str, culture: str) -> None:
    """Open the widget as a keyboard user does: focus the Pay button, press Enter."""
    page.goto(f"{shop}/widget.html")
    page.evaluate(PAY_BUTTON_IN, [culture, PUBLIC_ID])
    page.locator("#pay").focus()
    page.keyboard.press("Enter")
    expect(frame(page).locator("#card-number")).to_be_visible()


def focused(page: Any) -> str:
    """Where the keyboard focus is: ``page:<id>`` in the shop's page, ``frame:<id>``
    inside the widget (``<tag>`` for an element without an id)."""
    outer = page.evaluate("document.activeElement && (document.activeElement.id"
                          " || document.activeElement.tagName)")
    if outer != "IFRAME":
        return f"page:{outer}"
    inner = page.frame_locator("iframe[title=CloudPayments]").locator(":root").evaluate(
        "() => document.activeElement && (document.activeElement.id"
        " || document.activeElement.tagName)")
    return f"frame:{inner}"


@pytest.mark.parametrize("culture", ["ru-RU", "en-US"])
def test_focus_stays_in_the_widget_and_escape_returns_it_to_the_pay_button(
    page: Any, shop: str, culture: str
) -> None:
    open_with_keyboard(page, shop, culture)
    expect(frame(page).locator("#card-number")).to_be_focused()
    assert focused(page) == "frame:card-number"
    # The close button is named in the widget's language.
    expect(frame(page).get_by_role("button", name=CLOSE[culture], exact=True)).to_have_id(
        "close")
    # The page behind is out of reach while the dialog is open.
    dialog = page.get_by_role("dialog")
    expect(dialog).to_have_attribute("aria-modal", "true")
    assert page.evaluate("document.getElementById('pay').closest('[inert]') !== null")

    forward = []
    for _ in range(12):
        page.keyboard.press("Tab")
        forward.append(focused(page))
    backward = []
    for _ in range(12):
        page.keyboard.press("Shift+Tab")
        backward.append(focused(page))
    everything = forward + backward
    assert all(place.startswith("frame:") for place in everything), everything
    # Round and round the widget's own controls, both ways.
    cycle = ["frame:card-exp", "frame:card-cvv", "frame:pay", "frame:close",
             "frame:card-number"]
    assert forward[:10] == cycle * 2
    assert set(backward) == set(cycle)

    page.keyboard.press("Escape")
    page.wait_for_selector("[data-cp-widget]", state="detached")
    page.wait_for_function("window.__result !== undefined")
    assert page.evaluate("window.__result.type") == "cancel"
    assert focused(page) == "page:pay"
    assert page.evaluate("document.querySelector('[inert]')") is None
    assert page.page_errors == []


def test_the_close_button_closes_it_and_returns_focus(page: Any, shop: str) -> None:
    open_with_keyboard(page, shop, "ru-RU")
    page.keyboard.press("Shift+Tab")  # from the card number back to the close button
    assert focused(page) == "frame:close"
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-cp-widget]", state="detached")
    assert focused(page) == "page:pay"
    # Opened again, Escape in the page behind (focus on its backdrop) closes it too.
    page.keyboard.press("Enter")
    expect(frame(page).locator("#card-number")).to_be_focused()
    page.mouse.click(5, 5)  # the dark backdrop, outside the frame
    assert focused(page) == "page:BODY"
    page.keyboard.press("Escape")
    page.wait_for_selector("[data-cp-widget]", state="detached")
    assert focused(page) == "page:pay"
    assert page.page_errors == []


@pytest.fixture
def axe_tab(browser: Any) -> Iterator[Any]:
    # The widget frame's policy refuses injected scripts; axe needs to be one.
    context = browser.new_context(bypass_csp=True)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    pg.page_errors = []
    yield pg
    context.close()


@pytest.mark.parametrize("culture", ["ru-RU", "en-US"])
def test_no_serious_accessibility_violations_with_the_widget_open(
    axe_tab: Any, shop: str, culture: str
) -> None:
    source = axe_source()
    assert source is not None
    open_with_keyboard(axe_tab, shop, culture)
    inner = axe_tab.frame(url=lambda url: "/widget/frame" in url)
    found = {"widget frame": axe_violations(inner, source),
             "page with the widget open": axe_violations(axe_tab, source)}
    assert {name: v for name, v in found.items() if v} == {}
