"""The card form as a buyer sees it in Chromium, in Russian and English (issue 15 §5,
§6, §8): the expiry and CVV inputs stay level when a label wraps, the form stays
filled (masked) with a spinner and ``aria-busy`` while the charge runs, an expired
date is called expired, and the trust line leads back to the shop."""

from __future__ import annotations

from typing import Any

import pytest

from checkout_kit.ledger import PaymentStatus

from . import test_shop_form
from .buyer import axe_source, axe_violations
from .test_shop_form import LiveShop

#: A running shop of this module's own: test_shop_form's module-scoped fixture.
live_shop = test_shop_form.live_shop

EN = {"Accept-Language": "en-US,en;q=0.9"}
RU = {"Accept-Language": "ru-RU,ru;q=0.9"}
NO_3DS = "4000000000003055"
FAIL_URL = "https://shop.example/cart"


def tab(browser: Any, headers: dict[str, str], width: int = 375, **options: Any) -> Any:
    context = browser.new_context(extra_http_headers=headers,
                                  viewport={"width": width, "height": 800}, **options)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.page_errors = []
    page.on("pageerror", lambda exc: page.page_errors.append(str(exc)))
    return page


def top(page: Any, selector: str) -> float:
    return float(page.evaluate(f"document.querySelector('{selector}').getBoundingClientRect().top"))


def lines(page: Any, selector: str) -> int:
    """How many lines the element's text takes."""
    return int(page.evaluate(f"""() => {{
        const range = document.createRange();
        range.selectNodeContents(document.querySelector('{selector}'));
        return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
    }}"""))


@pytest.mark.parametrize("width", [320, 375, 1280])
@pytest.mark.parametrize("headers", [RU, EN], ids=["ru", "en"])
def test_expiry_and_cvv_inputs_stay_level(browser: Any, live_shop: LiveShop,
                                          headers: dict[str, str], width: int) -> None:
    payment = live_shop.create(f"level-{width}-{headers['Accept-Language'][:2]}")
    page = tab(browser, headers, width)
    page.goto(payment.checkout_url + "/form")
    if headers is RU and width == 375:
        # The case the layout is for: "Срок действия (ММ/ГГ)" wraps, "Код безопасности"
        # does not.
        assert lines(page, "label[for=ck-exp]") == 2
        assert lines(page, "label[for=ck-cvv]") == 1
    assert top(page, "#ck-exp") == top(page, "#ck-cvv")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.context.close()


def test_while_the_charge_runs_the_form_stays_filled_busy_and_accessible(
        browser: Any, live_shop: LiveShop) -> None:
    source = axe_source()
    assert source is not None
    payment = live_shop.create("waiting")
    # axe is an injected script, which the page's policy refuses.
    page = tab(browser, EN, bypass_csp=True)
    # The page's POST is held back: the browser keeps showing this document while a
    # posted form waits for its answer, and Playwright's own calls would wait for that
    # navigation to end. window.__post() lets it go.
    page.add_init_script("""(() => {
        const submit = HTMLFormElement.prototype.submit;
        HTMLFormElement.prototype.submit = function () {
            window.__post = () => submit.call(this);
        };
    })()""")
    page.goto(payment.checkout_url + "/form")
    page.type("#ck-number", NO_3DS)
    page.type("#ck-exp", "1230")
    page.type("#ck-cvv", "987")
    page.fill("#ck-name", "IVAN PETROV")
    page.click("#ck-pay")
    page.wait_for_function("typeof window.__post === 'function'")
    assert page.get_attribute("#ck-form", "aria-busy") == "true"
    assert page.input_value("#ck-cryptogram")  # the cryptogram is made
    assert page.is_visible("#ck-form") and page.is_visible("#ck-pay .ck-spinner")
    assert page.is_disabled("#ck-pay") and page.text_content("#ck-pay-label") == "Paying…"
    assert page.text_content("#ck-status") == "Paying…"
    # Filled as typed, the number masked: no empty inputs beside a brand badge, and no
    # card number left in the page once the cryptogram is made.
    assert page.input_value("#ck-number") == "•••• •••• •••• 3055"
    assert page.input_value("#ck-exp") == "12/30"
    assert len(page.input_value("#ck-cvv")) == 3
    assert page.text_content("#ck-brand") == "Visa"
    assert page.input_value("#ck-name") == "IVAN PETROV"
    for selector in ("#ck-number", "#ck-exp", "#ck-cvv", "#ck-name", "#ck-email"):
        assert page.evaluate(f"document.querySelector('{selector}').readOnly") is True
    assert NO_3DS not in page.content()
    assert axe_violations(page, source) == []
    page.evaluate("window.__post()")
    page.wait_for_url(f"**/checkout/payments/{payment.id}")
    assert page.get_attribute("h1", "data-result") == "success"
    assert live_shop.state.ledger.get(payment.id).status is PaymentStatus.SUCCEEDED
    assert page.page_errors == []
    page.context.close()


@pytest.mark.parametrize(("headers", "expired", "invalid"), [
    (EN, "The card has expired", "The expiry date is not valid"),
    (RU, "Срок действия карты истёк", "Некорректное значение года/месяца"),
], ids=["en", "ru"])
def test_an_expired_date_says_the_card_has_expired(
        browser: Any, live_shop: LiveShop, headers: dict[str, str], expired: str,
        invalid: str) -> None:
    payment = live_shop.create(f"expired-{headers['Accept-Language'][:2]}")
    page = tab(browser, headers)
    page.goto(payment.checkout_url + "/form")
    page.type("#ck-exp", "0120")
    page.click("#ck-cvv")  # blur: the error shows in place
    slot = "#ck-error-expDateMonthYear"
    assert page.text_content(slot) == expired
    # The code stays checkout.js's own (docs/gateway.md §2.7).
    assert page.get_attribute(slot, "data-code") == "ExpDateMonthYear_Invalid"
    page.fill("#ck-exp", "")
    page.type("#ck-exp", "1330")
    page.click("#ck-cvv")
    assert page.text_content(slot) == invalid
    page.fill("#ck-exp", "")
    page.type("#ck-exp", "0120")
    page.type("#ck-number", NO_3DS)
    page.type("#ck-cvv", "987")
    page.click("#ck-pay")  # nothing is sent for an expired card
    assert page.text_content(slot) == expired
    assert page.evaluate("document.activeElement.id") == "ck-exp"
    assert live_shop.state.ledger.get(payment.id).status is PaymentStatus.CREATED
    page.context.close()


@pytest.mark.parametrize(("headers", "back"), [(EN, "Back to the shop"),
                                               (RU, "Вернуться в магазин")], ids=["en", "ru"])
def test_the_trust_line_leads_back_to_the_shop_from_the_keyboard(
        browser: Any, live_shop: LiveShop, headers: dict[str, str], back: str) -> None:
    payment = live_shop.create(f"trust-{headers['Accept-Language'][:2]}", fail_url=FAIL_URL)
    page = tab(browser, headers)
    page.goto(payment.checkout_url + "/form")
    assert page.is_visible(".ck-trust") and page.is_visible("[data-brand=mir]")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.focus("#ck-pay")
    page.keyboard.press("Tab")
    focused = page.evaluate("[document.activeElement.textContent, document.activeElement.href]")
    assert focused == [back, FAIL_URL]
    page.context.close()
