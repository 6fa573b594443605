"""The JSON answers of the sandbox's web layer, written in one place: the envelope of
an operation and the gateway's failure envelope ``{"Success": false, "Message": …}``
that the API, the controls, the faults, the guard and the error handlers all answer;
and the headers of the sandbox's own HTML pages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import Response

from ... import jsoncodec

__all__ = ["PAGE_HEADERS", "envelope_response", "error_response", "json_response"]

Headers = Mapping[str, str] | Iterable[tuple[str, str]] | None

#: The headers of the sandbox's own HTML pages (home, inspector): scripts, styles and
#: the icon from the sandbox alone, never framed.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}


def json_response(body: bytes, status: int = 200, headers: Headers = None) -> Response:
    """A response of JSON text already written (a stored answer sent again)."""
    response = Response(body, status=status, mimetype="application/json")
    if headers:
        response.headers.extend(headers)
    return response


def envelope_response(payload: Any, status: int = 200, headers: Headers = None) -> Response:
    """``payload`` as a JSON response (exact decimals)."""
    return json_response(jsoncodec.dumps_bytes(payload), status, headers)


def error_response(message: str, status: int, headers: Headers = None) -> Response:
    """The gateway's failure envelope with ``message``."""
    return envelope_response({"Success": False, "Message": message}, status, headers)
