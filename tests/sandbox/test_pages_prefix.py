"""The sandbox's own pages under a prefix (a sandbox mounted in a shop, or behind a
proxy that sets ``SCRIPT_NAME``): links keep it, and the favicon is served. The
same in Chromium, link by link: tests/e2e/test_sandbox_prefix.py."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from checkout_kit.sandbox import Sandbox
from checkout_kit.sandbox.web.controls import type_name
from checkout_kit.sandbox.web.icon import FAVICON_SVG
from checkout_kit.sandbox.web.security import TOKEN_COOKIE
from checkout_kit.shop import mount_sandbox

PREFIXED = "http://127.0.0.1:5000/sandbox/"
_TARGET = re.compile(r'\b(?:href|src|action|data-url)="([^"]*)"')


def _targets(html: str) -> list[str]:
    return _TARGET.findall(html)


@pytest.mark.parametrize("path", ["/", "/_sandbox/"])
def test_every_link_of_a_page_keeps_the_prefix(cloudpayments_sandbox: Sandbox,
                                               path: str) -> None:
    html = cloudpayments_sandbox.app.test_client().get(path, base_url=PREFIXED).get_data(
        as_text=True)
    found = _targets(html)
    assert len(found) >= 9
    # Paths, or whole URLs (the script tags shown to copy), all under the prefix.
    assert [t for t in found if not t.startswith(("/sandbox/", PREFIXED))] == []


def test_home_page_shows_the_prefixed_api_and_script_urls(
    cloudpayments_sandbox: Sandbox,
) -> None:
    html = cloudpayments_sandbox.app.test_client().get("/", base_url=PREFIXED).get_data(
        as_text=True)
    assert '<code data-field="base-url">http://127.0.0.1:5000/sandbox</code>' in html
    for script in ("checkout.js", "bundles/cloudpayments.js"):
        assert f'&lt;script src="{PREFIXED}{script}"&gt;' in html, script
    for path in ("/sandbox/_sandbox/", "/sandbox/_sandbox/transactions", "/sandbox/checkout.js",
                 "/sandbox/bundles/cloudpayments.js", "/sandbox/payments/publickey",
                 "/sandbox/home.js", "/sandbox/_sandbox/test-order", "/sandbox/favicon.ico"):
        assert f'="{path}"' in html, path


def test_test_order_page_is_under_the_prefix(cloudpayments_sandbox: Sandbox) -> None:
    web = cloudpayments_sandbox.app.test_client()
    url = web.post("/_sandbox/test-order", json={}, base_url=PREFIXED).get_json()["Model"]["Url"]
    assert url.startswith(PREFIXED + "d/")
    page = web.get(url.removeprefix(PREFIXED), base_url=PREFIXED)
    assert page.status_code == 200
    assert 'action="/sandbox/d/' in page.get_data(as_text=True)


def test_token_cookie_path_is_the_controls_under_the_prefix(
    cloudpayments_sandbox: Sandbox,
) -> None:
    token = cloudpayments_sandbox.settings.control_token = "t0ken-for-the-tests-0001"
    web = cloudpayments_sandbox.app.test_client()
    answer = web.get(f"/_sandbox/?token={token}", base_url=PREFIXED)
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"{TOKEN_COOKIE}=") and "Path=/sandbox/_sandbox/;" in cookie
    at_root = web.get(f"/_sandbox/?token={token}").headers["Set-Cookie"]
    assert "Path=/_sandbox/;" in at_root


@pytest.mark.parametrize("value, name", [(0, "Payment"), (1, "Refund"), (2, "Card payout"),
                                         (7, "7")])
def test_inspector_type_names(value: int, name: str) -> None:
    assert type_name(value) == name


def test_inspector_is_a_page_for_phones_in_english(cloudpayments_sandbox: Sandbox) -> None:
    answer = cloudpayments_sandbox.app.test_client().get("/_sandbox/")
    html = answer.get_data(as_text=True)
    assert '<html lang="en">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "img-src 'self'" in answer.headers["Content-Security-Policy"]


def test_favicon_is_served_and_named_by_every_page(cloudpayments_sandbox: Sandbox) -> None:
    web = cloudpayments_sandbox.app.test_client()
    icon = web.get("/favicon.ico", base_url=PREFIXED)
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert icon.data == FAVICON_SVG and icon.headers["ETag"]
    assert web.get("/favicon.ico", headers={"If-None-Match": icon.headers["ETag"]}
                   ).status_code == 304
    order = web.post("/_sandbox/test-order", json={}).get_json()["Model"]["Url"]
    for path in ("/", "/_sandbox/", "/widget/frame", "/widget/3ds/success/1000001",
                 order.removeprefix("http://localhost")):
        html = web.get(path, base_url=PREFIXED).get_data(as_text=True)
        assert '<link rel="icon" href="/sandbox/favicon.ico"' in html, path


def _shop(with_icon: bool) -> Flask:
    app = Flask("favicon_shop")

    @app.get("/")
    def index() -> str:
        return "shop"

    if with_icon:
        @app.get("/favicon.ico")
        def favicon() -> str:
            return "the shop's own icon"

    mount_sandbox(app, state_path=None, notify=False)
    return app


def test_a_mounted_sandbox_serves_the_favicon_of_a_shop_that_has_none() -> None:
    web = _shop(with_icon=False).test_client()
    answer = web.get("/favicon.ico")
    assert answer.status_code == 200 and answer.data == FAVICON_SVG
    assert web.get("/").get_data(as_text=True) == "shop"


def test_a_shops_own_favicon_is_kept() -> None:
    web = _shop(with_icon=True).test_client()
    assert web.get("/favicon.ico").get_data(as_text=True) == "the shop's own icon"
    assert web.get("/sandbox/favicon.ico").data == FAVICON_SVG
