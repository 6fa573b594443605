"""Browser tests: a live sandbox, a shop on another origin, headless Chromium.

Two werkzeug servers run in threads on 127.0.0.1 (different ports, hence different
origins, as in production where the shop and the gateway are different sites): the
sandbox, and a "shop" that serves ``examples/browser/*.html`` with ``{{SANDBOX}}``
replaced by the sandbox's base URL.

Without Playwright or ``/usr/bin/chromium`` the tests are skipped, unless
``CHECKOUT_KIT_REQUIRE_BROWSER=1`` (CI sets it), in which case they fail.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, abort
from werkzeug.serving import BaseWSGIServer, make_server

from checkout_kit.sandbox import Sandbox, create_sandbox_app, sandbox_of

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "browser"
PUBLIC_ID = "test_api_00000000000000000000001"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def _unavailable(reason: str) -> None:
    if os.environ.get("CHECKOUT_KIT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required but cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class Server:
    """A WSGI app served from a thread."""

    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


def serve(app: Any) -> Server:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    return Server(server, thread)


@dataclass
class LiveSandbox:
    """The running sandbox: its URL, its Flask app and its state."""

    url: str
    app: Flask
    sandbox: Sandbox


@pytest.fixture(scope="session")
def live_sandbox() -> Iterator[LiveSandbox]:
    app = create_sandbox_app(public_id=PUBLIC_ID)
    server = serve(app)
    yield LiveSandbox(server.url, app, sandbox_of(app))
    server.stop()


@pytest.fixture(scope="session")
def shop(live_sandbox: LiveSandbox) -> Iterator[str]:
    """Base URL of the shop: ``/<name>.html`` is ``examples/browser/<name>.html``."""
    app = Flask("e2e_shop")

    @app.route("/<name>.html")
    def page(name: str) -> Response:
        path = EXAMPLES / f"{name}.html"
        if not name.replace("_", "").isalnum() or not path.is_file():
            abort(404)
        html = path.read_text(encoding="utf-8").replace("{{SANDBOX}}", live_sandbox.url)
        return Response(html, mimetype="text/html")

    server = serve(app)
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is missing")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.page_errors = errors  # tests may assert on uncaught script errors
    yield pg
    context.close()
