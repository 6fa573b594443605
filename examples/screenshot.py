"""Take the README's screenshot: the sandbox's payment widget over a shop page.

Starts the sandbox and a tiny "shop" serving ``examples/browser/widget.html`` on
127.0.0.1, opens the page in headless Debian Chromium, presses Pay, types a test card
and saves ``docs/images/payment-page.png``.

    python examples/screenshot.py [--out docs/images/payment-page.png]
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from flask import Flask
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from checkout_kit.sandbox import create_sandbox_app

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _serve(app: Flask) -> str:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "payment-page.png")
    args = parser.parse_args()

    sandbox_url = _serve(create_sandbox_app())
    shop = Flask("shop")
    page = (ROOT / "examples" / "browser" / "widget.html").read_text(encoding="utf-8")

    @shop.get("/")
    def index() -> str:
        return page.replace("{{SANDBOX}}", sandbox_url)

    shop_url = _serve(shop)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                     args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 900, "height": 720})
        tab.goto(shop_url)
        tab.click("#pay")
        frame = tab.frame_locator("iframe")
        frame.locator("#card-number").fill("4242 4242 4242 4242")
        frame.locator("#card-exp").fill("12/30")
        frame.locator("#card-cvv").fill("123")
        tab.wait_for_timeout(300)
        tab.screenshot(path=str(args.out))
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
