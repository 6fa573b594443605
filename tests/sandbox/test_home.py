"""The sandbox's home page, the scripts it serves, and the widget frame's language."""

from __future__ import annotations

import re
from html import unescape

import pytest

from checkout_kit.sandbox import (
    DEFAULT_SECRET,
    EXTRA_DECLINES,
    TEST_CARDS,
    Sandbox,
    create_sandbox_app,
    sandbox_of,
)
from checkout_kit.sandbox.web.home import card_rows


def _text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


def test_home_page_shows_credentials_links_scripts_and_cards(
    cloudpayments_sandbox: Sandbox,
) -> None:
    answer = cloudpayments_sandbox.app.test_client().get("/", base_url="http://127.0.0.1:8787")
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    html = answer.get_data(as_text=True)
    assert cloudpayments_sandbox.public_id in html
    assert cloudpayments_sandbox.api_secret == DEFAULT_SECRET and DEFAULT_SECRET in html
    assert "http://127.0.0.1:8787" in html
    for link in ('href="/_sandbox/"', 'href="/_sandbox/transactions"', 'href="/checkout.js"',
                 'href="/bundles/cloudpayments.js"', 'href="/payments/publickey"'):
        assert link in html, link
    assert 'id="create-order"' in html and 'src="/home.js"' in html
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]


def test_home_page_hides_a_secret_of_ones_own(cloudpayments_sandbox_keys: dict[int, bytes],
                                              ) -> None:
    app = create_sandbox_app(public_id="pk_own", api_secret="my-very-own-secret",
                             keys=cloudpayments_sandbox_keys)
    html = app.test_client().get("/").get_data(as_text=True)
    assert "pk_own" in html and "my-very-own-secret" not in html
    assert "not shown" in html


def test_an_exposed_sandbox_shows_no_secret(cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    """Even the published default: anyone on the network can read the home page."""
    app = create_sandbox_app(keys=cloudpayments_sandbox_keys, exposed=True)
    html = app.test_client().get("/").get_data(as_text=True)
    assert DEFAULT_SECRET not in html and "not shown" in html


def test_test_card_table_is_the_test_card_data(cloudpayments_sandbox: Sandbox) -> None:
    text = _text(cloudpayments_sandbox.app.test_client().get("/").get_data(as_text=True))
    cards, declines = card_rows()
    assert len(cards) == len(TEST_CARDS) and len(declines) == len(EXTRA_DECLINES)
    for number, card in [*TEST_CARDS.items(), *EXTRA_DECLINES.items()]:
        grouped = " ".join(number[i:i + 4] for i in range(0, 16, 4))
        assert grouped in text, number
        assert card.label.split(",")[0] in text
    rows = {row.number.replace(" ", ""): row for row in cards}
    assert rows["4242424242424242"].three_ds and rows["4242424242424242"].payment == "approved"
    assert rows["4000056655665556"].payment == "5051 InsufficientFunds"
    assert rows["4000056655665556"].token_payment == "—"
    assert rows["4111111111111111"].token_payment == "5051 InsufficientFunds"
    assert {row.payment for row in declines} >= {"5005 DoNotHonor", "5300 AntiFraud"}


def test_test_order_button_creates_an_order_with_a_payment_page(
    cloudpayments_sandbox: Sandbox,
) -> None:
    web = cloudpayments_sandbox.app.test_client()
    answer = web.post("/_sandbox/test-order", json={})
    envelope = answer.get_json()
    assert answer.status_code == 200 and envelope["Success"] is True
    url = envelope["Model"]["Url"]
    assert url.startswith("http://localhost/d/")
    (order,) = cloudpayments_sandbox.state.orders.values()
    assert str(order.amount) == "100.00" and order.status == "Created"
    page = web.get(url.removeprefix("http://localhost"))
    assert page.status_code == 200 and "100.00 RUB" in page.get_data(as_text=True)
    assert web.post("/_sandbox/test-order", data="{}").status_code == 415  # not JSON


def test_home_script_is_served(cloudpayments_sandbox: Sandbox) -> None:
    answer = cloudpayments_sandbox.app.test_client().get("/home.js")
    assert answer.status_code == 200 and answer.mimetype == "application/javascript"
    assert b"button.dataset.url" in answer.data and b"application/json" in answer.data
    page = cloudpayments_sandbox.app.test_client().get("/").get_data(as_text=True)
    assert 'data-url="/_sandbox/test-order"' in page  # where the button posts


@pytest.mark.parametrize("path", ["/static/js/checkout.js", "/static/js/widget.js",
                                  "/static/js/widget_frame.js", "/static/js/home.js"])
def test_no_unconfigured_copies_are_served(path: str, cloudpayments_sandbox: Sandbox) -> None:
    web = cloudpayments_sandbox.app.test_client()
    assert web.get(path).status_code == 404
    served = web.get("/checkout.js").get_data(as_text=True)
    assert "/*@config*/ null" not in served and '"key":{"pem"' in served


@pytest.mark.parametrize("query, accept, lang", [
    ("?lang=en", None, "en"), ("?lang=en-US", "ru", "en"), ("?lang=ru", "en-US,en", "ru"),
    ("", "en-GB,en;q=0.9", "en"), ("", "ru-RU,ru;q=0.9,en;q=0.8", "ru"),
    ("", "de-DE,de;q=0.9,en;q=0.5", "en"), ("", "de-DE", "ru"), ("", None, "ru"),
    ("?lang=de", "en", "en"), ("?lang=", "en", "en"),
])
def test_frame_follows_the_language_asked_for(query: str, accept: str | None, lang: str,
                                              cloudpayments_sandbox: Sandbox) -> None:
    headers = {"Accept-Language": accept} if accept else {}
    html = cloudpayments_sandbox.app.test_client().get(
        f"/widget/frame{query}", headers=headers).get_data(as_text=True)
    assert f'<html lang="{lang}">' in html


def test_an_app_made_without_a_sandbox_fixture_also_has_the_home_page(
    cloudpayments_sandbox_keys: dict[int, bytes],
) -> None:
    sandbox = sandbox_of(create_sandbox_app(keys=cloudpayments_sandbox_keys))
    assert sandbox.app.test_client().get("/").status_code == 200
