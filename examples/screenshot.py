"""Take the README's screenshots in headless Debian Chromium, into docs/images/:

* ``form-page.png``: the demo's card form (``checkout-kit demo``), a test card typed in;
* ``threeds-page.png``: the 3-D Secure page the buyer is then sent to (the sandbox
  bank's page, mounted in the demo);
* ``payment-page.png``: the sandbox's payment widget over a shop page
  (``examples/browser/widget.html``).

The demo and the sandbox run on 127.0.0.1 (free ports) for the time it takes;
the demo's instance folder is a temporary one.

    python examples/screenshot.py [--out-dir docs/images]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from pathlib import Path
from typing import Any

from flask import Flask
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from checkout_kit.sandbox import create_sandbox_app
from checkout_kit.shop.demo import create_demo_app

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ENGLISH = {"Accept-Language": "en-US,en;q=0.9"}


def _serve(app: Any) -> str:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


def demo_pages(browser: Any, out_dir: Path) -> None:
    """The demo's card form, then the 3-D Secure page it leads to."""
    with tempfile.TemporaryDirectory(prefix="checkout-kit-screenshot-") as instance:
        demo = _serve(create_demo_app(instance))
        context = browser.new_context(viewport={"width": 720, "height": 600},
                                      extra_http_headers=ENGLISH, locale="en-US")
        tab = context.new_page()
        tab.goto(demo + "/")
        tab.get_by_label("Card form (checkout script)").check()
        tab.get_by_role("button", name="Pay", exact=True).click()
        tab.wait_for_url("**/checkout/pay/*/form")
        tab.get_by_label("Card number").press_sequentially("5555555555554444")
        tab.get_by_label("Expiry (MM/YY)").press_sequentially("1230")
        tab.get_by_label("CVC").press_sequentially("123")
        tab.get_by_label("Cardholder name").fill("IVAN PETROV")
        tab.get_by_label("E-mail for the receipt").fill("ivan@example.com")
        tab.screenshot(path=str(out_dir / "form-page.png"))
        tab.get_by_role("button", name="Pay ").click()
        tab.wait_for_url("**/sandbox/acs")
        tab.get_by_label("One-time code (any value)").fill("123456")
        tab.set_viewport_size({"width": 720, "height": 380})
        tab.screenshot(path=str(out_dir / "threeds-page.png"))
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
    tab.screenshot(path=str(out_dir / "payment-page.png"))
    tab.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                     args=CHROMIUM_ARGS)
        demo_pages(browser, args.out_dir)
        widget_page(browser, args.out_dir)
        browser.close()
    for name in ("form-page.png", "threeds-page.png", "payment-page.png"):
        print(f"wrote {args.out_dir / name}")


if __name__ == "__main__":
    main()
