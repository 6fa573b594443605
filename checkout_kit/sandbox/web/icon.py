"""The sandbox's favicon (``GET /favicon.ico``).

A browser asks every origin for ``/favicon.ico`` unless the page names an icon, and
logs the 404 as an error in its console: the sandbox's pages name this one with
``<link rel="icon">`` (so that under a prefix the browser asks the sandbox, not the
shop), and :func:`~checkout_kit.shop.mount_sandbox` lets it answer a shop's root
``/favicon.ico`` when the shop has none. It is an SVG (every current browser takes
one for an icon), written here rather than shipped as a binary: a bank card.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, request

__all__ = ["FAVICON_SVG", "bp", "favicon_response"]

bp = Blueprint("cp_icon", __name__)

#: The icon: a blue card with a magnetic stripe, on a transparent square.
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect x="2" y="6" width="28" height="20" rx="3" fill="#1a73e8"/>'
    '<rect x="2" y="11" width="28" height="4" fill="#0b3d91"/>'
    '<rect x="6" y="19" width="9" height="3" rx="1" fill="#fff"/>'
    "</svg>"
).encode("ascii")

_ETAG = hashlib.sha256(FAVICON_SVG).hexdigest()


def favicon_response() -> Response:
    """The icon, cacheable for a day (304 when the browser's copy is current)."""
    response = Response(FAVICON_SVG, mimetype="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400",
                                 "X-Content-Type-Options": "nosniff"})
    response.set_etag(_ETAG)
    response.make_conditional(request)
    return response


@bp.get("/favicon.ico")
def favicon() -> Response:
    """The icon (an SVG, whatever the name says: browsers go by the content type)."""
    return favicon_response()
