"""The sandbox's home page (``GET /``): what a newcomer needs in the first minutes.

Credentials (the API secret only when it is the published default test secret), the
links to the inspector and the controls, the browser scripts, a button that creates a
test order and opens its payment page, and the test-card table, rendered from
:data:`~checkout_kit.sandbox.rules.testcards.TEST_CARDS` and
:data:`~checkout_kit.sandbox.rules.testcards.EXTRA_DECLINES` (never retyped).

The button calls ``POST /_sandbox/test-order`` with a JSON body, so it is a control
like the others (JSON only, and the control token when one is set).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ...reasons import reason_for
from ..rules.params import Params
from ..rules.settings import DEFAULT_SECRET
from ..rules.testcards import EXTRA_DECLINES, TEST_CARDS, CardBehaviour
from .answers import PAGE_HEADERS
from .api import envelope_response, get_sandbox
from .browser import javascript_response, static_script
from .controls import JSON_VIEWS
from .security import CONTROL_PREFIX

__all__ = ["CardRow", "bp", "card_rows"]

bp = Blueprint("cp_home", __name__)

#: What the test order's payment page shows.
TEST_ORDER = {"Amount": "100.00", "Currency": "RUB", "Description": "Sandbox test order"}



@dataclass(frozen=True)
class CardRow:
    """One line of the test-card table."""

    number: str
    label: str
    three_ds: bool
    payment: str
    token_payment: str


def _outcome(code: int | None) -> str:
    if code is None:
        return "—"
    if code == 0:
        return "approved"
    return f"{code} {reason_for(code).name}"


def _row(number: str, card: CardBehaviour) -> CardRow:
    grouped = " ".join(number[i:i + 4] for i in range(0, len(number), 4))
    return CardRow(grouped, card.label, card.three_ds, _outcome(card.charge_reason),
                   _outcome(card.token_reason))


def card_rows() -> tuple[list[CardRow], list[CardRow]]:
    """The documented test cards and the sandbox's extra decline cards, as table rows."""
    return ([_row(n, c) for n, c in TEST_CARDS.items()],
            [_row(n, c) for n, c in EXTRA_DECLINES.items()])


@bp.get("/")
def home() -> Response:
    """The home page."""
    sb = get_sandbox()
    cards, declines = card_rows()
    html = render_template(
        "sandbox/home.html",
        # The API answers under the sandbox's own root: a mounted sandbox's prefix too.
        base_url=request.url_root.rstrip("/"),
        public_id=sb.public_id,
        # The default secret is published in the docs; any other is the user's own.
        # An exposed sandbox shows none: anyone on the network can read this page.
        api_secret=(sb.api_secret if sb.api_secret == DEFAULT_SECRET
                    and not sb.settings.exposed else None),
        key_version=sb.settings.key_version,
        site_name=sb.settings.site_name,
        token_required=bool(sb.settings.control_token),
        cards=cards,
        declines=declines,
        home_js_url=url_for("cp_home.home_js"),
        json_views=JSON_VIEWS,
        test_order_url=url_for("cp_home.test_order"),
    )
    return Response(html, mimetype="text/html", headers=PAGE_HEADERS)


@bp.get("/home.js")
def home_js() -> Response:
    """The home page's script (the test-order button)."""
    return javascript_response(static_script("home.js"))


@bp.post(f"{CONTROL_PREFIX}/test-order")
def test_order() -> BaseResponse:
    """Create a test order (100.00 RUB) and answer ``/orders/create``'s envelope, whose
    ``Model.Url`` is its payment page."""
    sb = get_sandbox()
    # The order page is the sandbox's: under the root it was reached at (a prefix too).
    envelope = sb.orders.create(Params(dict(TEST_ORDER)), base_url=request.url_root)
    sb.save()
    return envelope_response(envelope)
