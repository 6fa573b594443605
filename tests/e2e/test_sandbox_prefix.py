"""The sandbox's own pages in Chromium, at the root of a standalone sandbox and mounted
under a shop's prefix (``mount_sandbox``): every link, script, form and fetch target
of the home page, the order page and the inspector answers and stays inside the
sandbox, the API base URL the home page shows works, the pages fit a phone's width,
pass axe, and no page logs an error (a missing favicon included).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask, Response

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips (fails under CHECKOUT_KIT_REQUIRE_BROWSER=1)
    expect = None

from checkout_kit import cryptogram
from checkout_kit.client import CloudPaymentsClient
from checkout_kit.sandbox import Sandbox, sandbox_of
from checkout_kit.shop import mount_sandbox

from .buyer import axe_source, axe_violations
from .conftest import PUBLIC_ID, LiveSandbox, serve

EXPIRY = f"12/{(datetime.now(UTC).year + 3) % 100:02d}"
NO_3DS = "4000 0000 0000 3055"
WITH_3DS = "4242 4242 4242 4242"
SHOP_PAGE = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>'
             '</head><body><main><h1>A shop with no favicon</h1></main></body></html>')

#: Every URL the page refers to, with the method a browser uses for it: links and
#: scripts (GET), forms (their method) and the button's fetch target (POST).
TARGETS = """() => {
  const out = [];
  for (const el of document.querySelectorAll('a[href]')) out.push(['a', 'GET', el.href]);
  for (const el of document.querySelectorAll('link[href], script[src], img[src], iframe[src]')) {
    out.push(['load', 'GET', el.href || el.src]);
  }
  // By attribute: a field named "action" (the bank page's buttons) shadows form.action.
  for (const el of document.querySelectorAll('form[action]')) {
    const method = (el.getAttribute('method') || 'GET').toUpperCase();
    out.push(['form', method, new URL(el.getAttribute('action'), location.href).href]);
  }
  for (const el of document.querySelectorAll('[data-url]')) {
    out.push(['fetch', 'POST', new URL(el.dataset.url, location.href).href]);
  }
  return out;
}"""


@dataclass
class Site:
    """Where a sandbox's pages are: ``base`` is its home page (ending in ``/``)."""

    name: str
    base: str
    sandbox: Sandbox


@pytest.fixture(scope="module")
def mounted() -> Iterator[tuple[str, Flask]]:
    """A shop of its own (no favicon) with the sandbox mounted at ``/sandbox``: its URL
    and the sandbox app."""
    app = Flask("prefixed_shop")

    @app.get("/")
    def index() -> Response:
        return Response(SHOP_PAGE, mimetype="text/html")

    sandbox_app = mount_sandbox(app, state_path=None, notify=False, public_id=PUBLIC_ID)
    server = serve(app)
    yield server.url, sandbox_app
    server.stop()


@pytest.fixture(params=["root", "prefix"])
def site(request: pytest.FixtureRequest, live_sandbox: LiveSandbox,
         mounted: tuple[str, Flask]) -> Site:
    if request.param == "root":
        return Site("root", live_sandbox.url + "/", live_sandbox.sandbox)
    url, sandbox_app = mounted
    return Site("prefix", url + "/sandbox/", sandbox_of(sandbox_app))


def watch(page: Any) -> list[str]:
    """Every failed answer and every console error of ``page`` from now on (Chromium
    logs a missing favicon as a console error, not as a page request)."""
    seen: list[str] = []
    page.on("response", lambda r: seen.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("console", lambda m: seen.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda exc: seen.append(f"pageerror: {exc}"))
    return seen


def targets(page: Any, site: Site) -> list[tuple[str, str, str]]:
    """The page's targets, each checked to be inside the sandbox."""
    found = [tuple(t) for t in page.evaluate(TARGETS)]
    outside = [t for t in found if not t[2].startswith(site.base)]
    assert outside == [], f"{page.url} links outside {site.base}"
    return found  # type: ignore[return-value]


def follow(page: Any, found: list[tuple[str, str, str]]) -> list[str]:
    """GET every link (in a tab of its own, as a click opens it) and every loaded
    resource; the answers that are not 200."""
    bad = []
    tab = page.context.new_page()
    problems = watch(tab)
    for kind, method, url in found:
        if method != "GET":
            continue
        if kind == "a":
            answer = tab.goto(url)
            tab.wait_for_load_state("load")
        else:
            answer = page.request.get(url)
        if answer is None or answer.status != 200:
            bad.append(f"{answer and answer.status} {url}")
    tab.wait_for_timeout(300)  # the favicon request of the last page
    tab.close()
    return bad + problems


def api_base(page: Any) -> str:
    return str(page.locator("[data-field=base-url]").inner_text())


def pay_and_refund(site: Site, base_url: str) -> tuple[int, int]:
    """A payment and its refund through the API at ``base_url`` (the one the home page
    shows); their transaction ids."""
    sandbox = site.sandbox
    key = sandbox.keys[sandbox.settings.key_version].public_key()
    packet = cryptogram.build(NO_3DS.replace(" ", ""), EXPIRY, "123", sandbox.public_id,
                              key=key, key_version=sandbox.settings.key_version)
    with CloudPaymentsClient(sandbox.public_id, sandbox.api_secret, base_url=base_url) as client:
        paid = client.charge(Decimal("12.00"), ip_address="192.0.2.10", cryptogram=packet,
                             invoice_id=f"prefix-{site.name}")
        refund = client.refund(paid.transaction_id, Decimal("12.00"))
    return int(paid.transaction_id), int(refund.transaction_id)


def test_every_link_of_home_order_and_inspector_answers(page: Any, site: Site) -> None:
    problems = watch(page)
    assert page.goto(site.base).status == 200
    base_url = api_base(page)
    assert base_url == site.base.rstrip("/")
    home = targets(page, site)
    kinds = {kind for kind, _, _ in home}
    assert {"a", "load", "fetch"} <= kinds and len(home) >= 14
    assert follow(page, home) == []

    # The button's fetch target: a test order, whose payment page opens in the sandbox.
    page.get_by_role("button", name="Create a test order").click()
    page.wait_for_url(re.compile(re.escape(site.base) + r"d/\w+$"))
    order = targets(page, site)
    assert [kind for kind, _, _ in order].count("form") == 1
    assert follow(page, order) == []
    # The form's target, through 3-D Secure at the sandbox bank and back.
    page.locator("input[name=cardNumber]").fill(WITH_3DS)
    page.locator("input[name=expDate]").fill(EXPIRY)
    page.locator("input[name=cvv]").fill("123")
    page.locator("button[type=submit]").click()
    page.wait_for_url(site.base + "acs")
    assert follow(page, targets(page, site)) == []
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("[data-field=message]")).to_have_text("Payment approved")
    assert page.url.startswith(site.base + "d/")

    # The inspector (with rows), opened from the home page's link; a payment and its
    # refund through the API base URL the home page shows.
    pay_and_refund(site, base_url)
    page.goto(site.base)
    page.get_by_role("link", name="Inspector").click()
    page.wait_for_url(site.base + "_sandbox/")
    inspector = targets(page, site)
    assert {kind for kind, _, _ in inspector} >= {"a", "load"} and len(inspector) >= 9
    assert follow(page, inspector) == []
    assert problems == []


def test_widget_pages_opened_directly_log_nothing(page: Any, site: Site) -> None:
    problems = watch(page)
    for path in ("widget/frame", "widget/3ds/fail/1000001?ReasonCode=5051"):
        assert page.goto(site.base + path).status == 200
        assert follow(page, targets(page, site)) == []
    assert problems == []


def test_inspector_names_the_transaction_type(page: Any, site: Site) -> None:
    paid, refunded = pay_and_refund(site, site.base.rstrip("/"))
    page.goto(site.base + "_sandbox/")
    for tx_id, kind in ((paid, "Payment"), (refunded, "Refund")):
        row = page.locator("#transactions tbody tr").filter(
            has=page.locator("td:first-child", has_text=re.compile(rf"^{tx_id}$")))
        expect(row.locator("td").nth(1)).to_have_text(kind)


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A phone-sized tab that honours the viewport meta tag (a desktop one ignores it)."""
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True,
                                  has_touch=True, device_scale_factor=2)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("path", ["", "_sandbox/"])
def test_pages_fit_a_phone_without_sideways_scrolling(phone: Any, site: Site,
                                                      path: str) -> None:
    pay_and_refund(site, site.base.rstrip("/"))  # the inspector's tables have rows
    phone.goto(site.base + path)
    width, scroll = phone.evaluate(
        "[document.documentElement.clientWidth, document.documentElement.scrollWidth]")
    # 375: the page is laid out for the device's width (a viewport meta tag); not 980.
    assert width == 375
    assert scroll <= width


@pytest.fixture
def axe_tab(browser: Any) -> Iterator[Any]:
    # The home page's policy refuses injected scripts; axe needs to be one.
    context = browser.new_context(bypass_csp=True)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_no_serious_accessibility_violations(axe_tab: Any, site: Site) -> None:
    source = axe_source()
    assert source is not None
    pay_and_refund(site, site.base.rstrip("/"))
    found: dict[str, list[dict[str, Any]]] = {}
    axe_tab.goto(site.base)
    found["home"] = axe_violations(axe_tab, source)
    axe_tab.goto(site.base + "_sandbox/")
    found["inspector"] = axe_violations(axe_tab, source)
    assert {name: v for name, v in found.items() if v} == {}


def test_a_shop_without_a_favicon_gets_the_sandboxs(page: Any,
                                                    mounted: tuple[str, Flask]) -> None:
    url, _ = mounted
    problems = watch(page)
    page.goto(url + "/")
    page.wait_for_timeout(300)  # the favicon request
    answer = page.request.get(url + "/favicon.ico")
    assert answer.status == 200 and answer.headers["content-type"].startswith("image/")
    assert problems == []
