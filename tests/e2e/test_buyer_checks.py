"""The checks the buyer-flow tests rely on can fail: the card-data recorder catches a
number however it is spaced or encoded and a CVV in any field; axe-core reports a
page with a serious violation."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from .buyer import Recorder, Seen, assert_no_card_data, axe_source, axe_violations

CARD = "4000 0000 0000 3055"


def seen(body: bytes = b"", query: str = "", headers: tuple[tuple[str, str], ...] = ()) -> Seen:
    return Seen("POST", "/checkout/pay/x/form", query, headers, body)


@pytest.mark.parametrize("request_", [
    seen(b"cryptogram=abc&number=4000000000003055"),
    seen(b"number=4000+0000+0000+3055"),
    seen(b"number=4000%200000%200000%203055"),
    seen(json.dumps({"Card": {"Number": "4000-0000-0000-3055"}}).encode()),
    seen(query="card=4000000000003055"),
    seen(headers=(("X-Card", "4000 0000 0000 3055"),)),
    seen(b"cryptogram=abc&cvv=739"),
    seen(json.dumps({"a": [{"b": "739"}]}).encode()),
    seen(query="c=739"),
], ids=["plain", "plus", "percent", "json-dashed", "query", "header", "cvv-form", "cvv-json",
        "cvv-query"])
def test_card_data_is_caught(request_: Seen) -> None:
    with pytest.raises(AssertionError):
        assert_no_card_data([request_], CARD, "739")


def test_a_clean_request_passes() -> None:
    assert_no_card_data([seen(b"cryptogram=QUJDNzM5&name=IVAN&email=a%40b.c")], CARD, "739")


def test_the_recorder_keeps_url_headers_and_body_and_passes_the_body_on() -> None:
    got: list[bytes] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        got.append(environ["wsgi.input"].read())
        start_response("204 No Content", [])
        return iter([])

    recorder = Recorder(app)
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/p", "QUERY_STRING": "a=1",
               "CONTENT_LENGTH": "3", "CONTENT_TYPE": "text/plain", "HTTP_X_TEST": "yes",
               "wsgi.input": io.BytesIO(b"abc")}
    recorder(environ, lambda *a: None)
    assert got == [b"abc"]
    (entry,) = recorder.requests
    assert (entry.path, entry.query, entry.body) == ("/p", "a=1", b"abc")
    assert ("X-Test", "yes") in entry.headers


def test_axe_reports_a_serious_violation(browser: Any) -> None:
    source = axe_source()
    assert source is not None
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.set_content('<!doctype html><html lang="en"><title>t</title><main>'
                     '<input type="text"><img src="data:,"></main></html>')
    found = {v["id"] for v in axe_violations(page, source)}
    context.close()
    assert {"label", "image-alt"} <= found
