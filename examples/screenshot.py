"""Take the README's and the docs' screenshots in headless Debian Chromium, into
docs/images/ (:data:`SHOTS` lists every file; a test checks that it is exactly what
docs/images holds and what the README and docs/*.md show).

For each language (ru, en) and width (1280 and 375 px), from the demo shop
(``checkout-kit demo``, a fresh instance folder per language):

* ``form-<lang>-<width>.png``: the card form, a 3-D Secure test card typed in;
* ``bank-<lang>-<width>.png``: the sandbox bank's 3-D Secure page it leads to;
* ``result-<lang>-<width>.png``: the result page once the bank confirmed;
* ``waiting-<lang>-<width>.png``: the result page of a payment still to be paid
  ("waiting for the payment result");
* ``ledger-<lang>-<width>.png``: the ledger page: a payment waiting, a paid one, a
  declined one and a two-stage one whose funds are held (its history unfolded), each
  with the actions its status allows.

And ``payment-page.png``: the sandbox's payment widget over a shop page
(``examples/browser/widget.html``).

The demo and the sandbox run on 127.0.0.1 (free ports) for the time it takes. Run it
from the repository's root, so that this checkout's checkout_kit is the one imported:

    PYTHONPATH=. python examples/screenshot.py [--out-dir docs/images]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from checkout_kit.sandbox import create_sandbox_app
from checkout_kit.shop.demo import create_demo_app

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

#: The demo's pages, in the order they are taken.
PAGES = ("form", "bank", "result", "waiting", "ledger")
#: Page language -> the browser's locale.
LANGUAGES = {"ru": "ru-RU", "en": "en-US"}
#: Viewport width -> height (a desktop, a phone); the shots take the whole page.
VIEWPORTS = {1280: 800, 375: 812}
WIDGET_SHOT = "payment-page.png"

WITH_3DS = "5555555555554444"
NO_3DS = "4000000000003055"
DECLINED = "4000056655665556"  # insufficient funds, no 3-D Secure


def shot_name(page: str, lang: str, width: int) -> str:
    """``form-ru-1280.png``."""
    return f"{page}-{lang}-{width}.png"


#: Every file the script writes into docs/images.
SHOTS: tuple[str, ...] = (
    *(shot_name(page, lang, width) for page in PAGES for lang in LANGUAGES
      for width in VIEWPORTS),
    WIDGET_SHOT,
)


def _serve(app: Any) -> str:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


def _snap(tab: Any, out_dir: Path, page: str, lang: str) -> None:
    """The page as it is, at each width (the page keeps its state across a resize)."""
    for width, height in VIEWPORTS.items():
        tab.set_viewport_size({"width": width, "height": height})
        tab.wait_for_timeout(150)  # a resize lays the page out again; let it settle
        tab.screenshot(path=str(out_dir / shot_name(page, lang, width)), full_page=True)
    tab.set_viewport_size({"width": 1280, "height": 800})


def _buy(tab: Any, demo: str, scheme: str = "charge") -> str:
    """From the shop's page to the card form; returns the payment id."""
    tab.goto(demo + "/")
    tab.check("input[name=mode][value=form]")
    tab.check(f"input[name=scheme][value={scheme}]")
    tab.click("#demo-pay")
    tab.wait_for_url("**/checkout/pay/*/form")
    return str(tab.url.split("/")[-2])


def _type_card(tab: Any, number: str) -> None:
    tab.locator("#ck-number").press_sequentially(number)
    tab.locator("#ck-exp").press_sequentially("1230")
    tab.locator("#ck-cvv").press_sequentially("123")
    tab.locator("#ck-name").fill("IVAN PETROV")
    tab.locator("#ck-email").fill("ivan@example.com")


def demo_pages(browser: Any, out_dir: Path, lang: str) -> None:
    """The demo's pages in ``lang``, each at every width."""
    with tempfile.TemporaryDirectory(prefix="checkout-kit-screenshot-") as instance:
        demo = _serve(create_demo_app(instance))
        context = browser.new_context(
            viewport={"width": 1280, "height": 800}, locale=LANGUAGES[lang],
            extra_http_headers={"Accept-Language": f"{LANGUAGES[lang]},{lang};q=0.9"})
        context.set_default_timeout(15_000)
        tab = context.new_page()
        # The ledger's other payments: funds held (two stages), then a decline.
        held = _buy(tab, demo, "auth")
        _type_card(tab, NO_3DS)
        tab.click("#ck-pay")
        tab.wait_for_url(f"**/checkout/payments/{held}")
        _buy(tab, demo)
        _type_card(tab, DECLINED)
        tab.click("#ck-pay")
        tab.locator("#ck-message").wait_for()
        # The buyer's way: the form, the bank, the result.
        paid = _buy(tab, demo)
        _type_card(tab, WITH_3DS)
        _snap(tab, out_dir, "form", lang)
        tab.click("#ck-pay")
        tab.wait_for_url("**/sandbox/acs")
        tab.fill("#code", "123456")
        _snap(tab, out_dir, "bank", lang)
        tab.click("button[value=confirm]")
        tab.wait_for_url(f"**/checkout/payments/{paid}")
        _snap(tab, out_dir, "result", lang)
        # A payment not paid yet: its result page waits.
        waiting = _buy(tab, demo)
        tab.goto(f"{demo}/checkout/payments/{waiting}")
        _snap(tab, out_dir, "waiting", lang)
        tab.goto(demo + "/ledger")
        tab.click(f"[data-payment='{held}'] summary")
        _snap(tab, out_dir, "ledger", lang)
        context.close()


def widget_page(browser: Any, out_dir: Path) -> None:
    """The sandbox's payment widget over a shop page."""
    sandbox_url = _serve(create_sandbox_app())
    shop = Flask("shop")
    page = (ROOT / "examples" / "browser" / "widget.html").read_text(encoding="utf-8")

    @shop.get("/")
    def index() -> str:
        return page.replace("{{SANDBOX}}", sandbox_url)

    tab = browser.new_page(viewport={"width": 900, "height": 720})
    tab.goto(_serve(shop))
    tab.click("#pay")
    frame = tab.frame_locator("iframe")
    frame.locator("#card-number").fill("4242 4242 4242 4242")
    frame.locator("#card-exp").fill("12/30")
    frame.locator("#card-cvv").fill("123")
    tab.wait_for_timeout(300)
    tab.screenshot(path=str(out_dir / WIDGET_SHOT))
    tab.close()


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                     args=CHROMIUM_ARGS)
        for lang in LANGUAGES:
            demo_pages(browser, args.out_dir, lang)
        widget_page(browser, args.out_dir)
        browser.close()
    for name in SHOTS:
        print(f"wrote {args.out_dir / name}")


if __name__ == "__main__":
    main()
