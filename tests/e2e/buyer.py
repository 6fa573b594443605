"""What the buyer-flow browser tests share: a recorder of the requests that reach the
shop's server (with a check that no card number or CVV is among them), axe-core run
in the page, and the buyer's moves on our card form, by labels and button texts.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Where ``.ci/run`` installs axe-core from npm (``npm install --prefix .npm-tools axe-core@4``).
AXE_DEFAULT = ROOT / ".npm-tools" / "node_modules" / "axe-core" / "axe.min.js"
#: The impacts that fail a page.
AXE_FAILING = ("serious", "critical")
#: The English the tests read labels and buttons in.
ENGLISH = {"Accept-Language": "en-US,en;q=0.9"}


@dataclass(frozen=True)
class Seen:
    """One request as the shop's server got it."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass
class Recorder:
    """WSGI middleware keeping every request the shop's server gets: URL, headers, body."""

    app: Any
    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        headers = tuple((key[5:].replace("_", "-").title(), str(value))
                        for key, value in environ.items()
                        if key.startswith("HTTP_") or key in ("CONTENT_TYPE",))
        seen = Seen(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                    environ.get("QUERY_STRING", ""), headers, body)
        with self.lock:
            self.requests.append(seen)
        return self.app(environ, start_response)

    def since(self, mark: int) -> list[Seen]:
        with self.lock:
            return self.requests[mark:]

    def mark(self) -> int:
        with self.lock:
            return len(self.requests)


def watch_origins(page: Any, *origins: str) -> list[Seen]:
    """Every request the page sends to ``origins`` (Playwright's view: URL, headers, body),
    for :func:`assert_no_card_data` where the server runs in another process."""
    seen: list[Seen] = []

    def on_request(request: Any) -> None:
        if request.url.startswith(tuple(o + "/" for o in origins)):
            url = urlsplit(request.url)
            seen.append(Seen(request.method, url.path, url.query,
                             tuple(request.headers.items()), request.post_data_buffer or b""))

    page.on("request", on_request)
    return seen


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield str(value)


def _values(seen: Seen) -> Iterator[str]:
    """Every value the request carries: query and form fields, JSON leaves, headers."""
    yield from (v for _, v in parse_qsl(seen.query, keep_blank_values=True))
    yield from (v for _, v in seen.headers)
    text = seen.body.decode("utf-8", "replace")
    yield from (v for _, v in parse_qsl(text, keep_blank_values=True))
    with contextlib.suppress(ValueError):  # not JSON
        yield from _leaves(json.loads(text))


def assert_no_card_data(requests: list[Seen], card: str, cvv: str) -> None:
    """Neither the card number (however spaced or encoded) nor the CVV reached the server.

    The number is looked for as a substring of the URL, every header and the raw
    body, with any spacing; the CVV, a short number, as any whole value (a form or
    query field, a JSON leaf, a header) equal to it.
    """
    digits = re.sub(r"\D", "", card)
    assert requests, "no request reached the shop's server"
    for seen in requests:
        raw = " ".join([seen.path, unquote_plus(seen.query),
                        *(v for _, v in seen.headers),
                        unquote_plus(seen.body.decode("utf-8", "replace"))])
        assert digits not in re.sub(r"[\s\-]", "", raw), f"card number in {seen.method} {seen.path}"
        for value in _values(seen):
            assert value.strip() != cvv, f"CVV in {seen.method} {seen.path}"


def axe_source() -> str | None:
    """axe-core's script, or None (the test then skips, unless the browser is required)."""
    path = Path(os.environ.get("CHECKOUT_KIT_AXE", AXE_DEFAULT))
    if path.is_file():
        return path.read_text(encoding="utf-8")
    message = f"axe-core is missing at {path} (npm install --prefix .npm-tools axe-core@4)"
    if os.environ.get("CHECKOUT_KIT_REQUIRE_BROWSER") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
    return None


def axe_violations(page: Any, source: str) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations of the page as it is now.

    The pages' Content-Security-Policy allows no injected script, so the context must
    have been made with ``bypass_csp=True``.
    """
    page.add_script_tag(content=source)
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']}))"
                           ".violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
                           " nodes: v.nodes.map(n => n.target.join(' '))}))")
    return [v for v in result if v["impact"] in AXE_FAILING]


def pay_with_card(page: Any, number: str, *, exp: str = "12/30", cvv: str = "739",
                  name: str = "IVAN PETROV") -> None:
    """Type a card into our card form, by its labels."""
    page.get_by_label("Card number").press_sequentially(number)
    page.get_by_label("Expiry (MM/YY)").press_sequentially(exp)
    # The CVV's label follows the brand (CVV, CVC, CVP2...).
    page.get_by_label(re.compile(r"^(CVV|CVC|CVP2|CID|CAV2|Security code)")).press_sequentially(
        cvv)
    page.get_by_label("Cardholder name").fill(name)


def pay_button(page: Any) -> Any:
    """Our form's Pay button ("Pay 1490.00 RUB")."""
    return page.get_by_role("button", name=re.compile(r"^Pay "))
