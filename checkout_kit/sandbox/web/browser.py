"""The sandbox's browser side: the checkout script, the widget and the widget's frame.

Served at the sandbox's equivalents of the official URLs (docs/gateway.md §6, §7):

==============================  ==========================================================
``/checkout.js``                checkout script (``https://checkout.cloudpayments.ru/checkout.js``)
``/bundles/checkout``           the same (legacy ``https://widget.cloudpayments.ru/bundles/checkout``)
``/bundles/cloudpayments``      widget + checkout script (legacy widget bundle)
``/bundles/cloudpayments.js``   the same (current widget URL)
``/widget/frame``               the payment form the widget shows in its modal iframe
``/widget/frame.js``            that form's script
``/widget/3ds/<outcome>/<id>``  where ThreeDSCallback sends the payer back (SuccessUrl/FailUrl)
==============================  ==========================================================

The checkout script carries the brand table of :func:`checkout_kit.cards.brand_table`
with its prefix index (:func:`checkout_kit.cards.prefix_table`), the validation
constants of :mod:`checkout_kit.cards` (:func:`checkout_rules`) and the sandbox's
current public key (PEM and version) as data, injected here at serve time in place
of the ``/*@config*/ null`` marker of ``static/js/checkout.js``. Its brand detection
is the card form's own routine, ``static/checkout_kit/brands.js``, spliced in at the
``/*@brands*/`` marker: one routine for both, and no brand written in JavaScript.
Injecting (rather than fetching ``/payments/publickey`` from the page) keeps the legacy
``createCryptogramPacket`` synchronous, as it is in the official script, and keeps
the Python and JavaScript validation on the very same table.

The scripts are sent with ``Cache-Control: no-cache`` and a strong ``ETag``: a browser
revalidates each time (cheaply, 304) because the embedded key changes whenever a
sandbox is created without a persisted key.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, render_template, request, url_for

from ... import cards, jsoncodec
from ..._resources import resource_dir
from .api import get_sandbox

__all__ = [
    "BRANDS_MARKER",
    "CONFIG_MARKER",
    "bp",
    "checkout_config",
    "checkout_rules",
    "checkout_script",
    "javascript_response",
    "page_language",
    "shared_brand_script",
    "static_script",
    "widget_script",
]

bp = Blueprint("cp_browser", __name__)

_DIGITS = re.compile(r"[0-9]{1,19}")

#: The expression in ``checkout.js`` that the served copy replaces with its data.
CONFIG_MARKER = "/*@config*/ null"
#: The comment in ``checkout.js`` that the served copy replaces with
#: :func:`shared_brand_script`.
BRANDS_MARKER = "/*@brands*/"

_JS = "application/javascript; charset=utf-8"
_SCRIPT_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    # Shops load these scripts from another origin.
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Access-Control-Allow-Origin": "*",
}
# The frame is meant to be embedded by any shop page; its own code comes only from
# the sandbox. The ACS page it frames and posts to may be on another host
# (SandboxSettings.acs_url), hence frame-src/form-action without a restriction.
_FRAME_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-src *; form-action *; frame-ancestors *; base-uri 'none'"
    ),
}


@lru_cache(maxsize=8)
def _read(path: Path, mtime_ns: int) -> str:
    # Keyed by mtime so that an edited script is picked up without a restart.
    return path.read_text(encoding="utf-8")


def static_script(name: str, folder: str = "js") -> str:
    """The text of ``static/<folder>/<name>`` (re-read when the file changes)."""
    path = resource_dir("static") / folder / name
    return _read(path, path.stat().st_mtime_ns)


def shared_brand_script() -> str:
    """``static/checkout_kit/brands.js``: the brand-detection routine the card form
    loads as a script of its own and the checkout script carries inside."""
    return static_script("brands.js", folder="checkout_kit")


def checkout_rules() -> dict[str, Any]:
    """The validation constants of :mod:`checkout_kit.cards` the script applies, so
    that Python and JavaScript cannot drift apart."""
    return {
        "unknownLengths": list(cards.UNKNOWN_BRAND_LENGTHS),
        "unknownCvvSizes": list(cards.UNKNOWN_BRAND_CVV_SIZES),
        "maxYearsAhead": cards.MAX_YEARS_AHEAD,
        "minExpiryYear": cards.MIN_EXPIRY_YEAR,
        "nameMin": cards.NAME_MIN,
        "nameMax": cards.NAME_MAX,
        # What differs between createPaymentCryptogram and the legacy createCryptogramPacket.
        "modern": cards.MODERN.to_json(),
        "legacy": cards.LEGACY.to_json(),
    }


def checkout_config() -> dict[str, Any]:
    """The data the checkout script carries: brand table and prefix index,
    validation rules and the current public key."""
    sandbox = get_sandbox()
    return {
        "brands": cards.brand_table(),
        "prefixes": cards.prefix_table(),
        "rules": checkout_rules(),
        "key": {"pem": sandbox.public_key_pem(), "version": sandbox.settings.key_version},
    }


def checkout_script() -> str:
    """The checkout script as served, with :func:`shared_brand_script` spliced in and
    :func:`checkout_config` injected."""
    source = static_script("checkout.js")
    for marker in (BRANDS_MARKER, CONFIG_MARKER):
        if source.count(marker) != 1:
            raise RuntimeError(f"static/js/checkout.js must contain {marker} exactly once")
    # The routine goes in first, so that nothing in the data is ever read as a marker.
    source = source.replace(BRANDS_MARKER, shared_brand_script())
    return source.replace(CONFIG_MARKER, jsoncodec.dumps_for_script(checkout_config()))


def widget_script() -> str:
    """The widget bundle: the checkout script followed by the widget (as the legacy
    combined bundle, which also defined ``cp.Checkout``)."""
    return checkout_script() + "\n" + static_script("widget.js")


def javascript_response(text: str) -> Response:
    """``text`` as a script response, with an ETag (304 when the browser's copy is
    current)."""
    response = Response(text, mimetype=None, content_type=_JS, headers=_SCRIPT_HEADERS)
    response.set_etag(hashlib.sha256(text.encode("utf-8")).hexdigest())
    response.make_conditional(request)  # 304 when the browser's copy is current
    return response


@bp.route("/bundles/checkout")
@bp.route("/checkout.js")  # the innermost rule is the one url_for builds
def checkout_js() -> Response:
    """The checkout script (``cp.Checkout``)."""
    return javascript_response(checkout_script())


@bp.route("/bundles/cloudpayments")
@bp.route("/bundles/cloudpayments.js")  # the innermost rule is the one url_for builds
def widget_js() -> Response:
    """The widget bundle (``cp.CloudPayments`` and ``cp.Checkout``)."""
    return javascript_response(widget_script())


@bp.route("/widget/frame.js")
def frame_js() -> Response:
    """The script of the widget's frame and of the 3-D Secure result page."""
    return javascript_response(static_script("widget_frame.js"))


def page_language() -> str:
    """``en`` or ``ru`` for a page: the ``lang`` query parameter when it names one of
    them (``en``, ``en-US``, ``ru-RU``...), else the browser's ``Accept-Language``,
    else Russian (the gateway's default)."""
    asked = request.args.get("lang", "")[:2].lower()
    if asked in ("en", "ru"):
        return asked
    return request.accept_languages.best_match(["ru", "en"], default="ru") or "ru"


@bp.route("/widget/frame")
def frame() -> Response:
    """The widget's payment form, loaded in the modal iframe.

    The shop page's origin and the language come in the query; the payment itself
    arrives by postMessage. The payer's IP address is handed to the form for the
    payment request's ``IpAddress``, which the API requires.
    """
    lang = page_language()
    html = render_template(
        "sandbox/widget_frame.html",
        lang=lang,
        ip_address=request.remote_addr or "",
        checkout_url=url_for("cp_browser.checkout_js"),
        frame_js_url=url_for("cp_browser.frame_js"),
    )
    return Response(html, mimetype="text/html", headers=_FRAME_HEADERS)


@bp.route("/widget/3ds/<outcome>/<transaction_id>")
def three_ds_result(outcome: str, transaction_id: str) -> Response:
    """SuccessUrl / FailUrl of the widget's ThreeDSCallback: tells the frame how it ended.

    What this page reports is only shown to the payer; the payment's state is the
    gateway's (a shop learns it from the API or a signed notification).
    """
    # Checked here rather than with abort()/converters: the answer is a plain 404
    # whatever error handlers the app has.
    if outcome not in ("success", "fail") or not _DIGITS.fullmatch(transaction_id):
        return Response("Not found", status=404, mimetype="text/plain")
    reason = request.args.get("ReasonCode", "")
    html = render_template(
        "sandbox/widget_3ds_result.html",
        outcome=outcome,
        transaction_id=int(transaction_id),
        reason_code=reason if _DIGITS.fullmatch(reason) else "",
        message=request.args.get("CardHolderMessage", "")[:500],
        frame_js_url=url_for("cp_browser.frame_js"),
    )
    return Response(html, mimetype="text/html", headers=_FRAME_HEADERS)
