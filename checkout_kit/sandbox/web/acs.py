"""The fake bank's 3-D Secure page (the test ``AcsUrl``, docs/gateway.md §4, §8).

``POST /acs`` with ``PaReq``, ``MD`` and ``TermUrl`` shows the merchant, the amount
and the masked card, a code field and the buttons Confirm, Decline and Cancel (the
code is not checked). Each button posts to ``/acs/complete``, which answers with an
auto-submitting form that POSTs ``MD`` (as received) and a signed ``PaRes`` to the
``TermUrl``: Confirm → authenticated, Decline → failed, Cancel → cancelled. Only
an authenticated PaRes lets ``post3ds`` approve; anything else declines with 5206.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request

from ... import threeds
from ..rules.params import url_problem
from ..rules.records import Transaction, TxStatus
from .api import get_sandbox

__all__ = ["OUTCOMES", "bp"]

bp = Blueprint("cp_acs", __name__)

#: button value -> PaRes outcome
OUTCOMES: dict[str, threeds.PaResOutcome] = {
    "confirm": threeds.PaResOutcome.AUTHENTICATED,
    "decline": threeds.PaResOutcome.FAILED,
    "cancel": threeds.PaResOutcome.CANCELLED,
}


def _problem(message: str, status: int = 400) -> Response:
    return Response(
        render_template("sandbox/acs.html", stage="error", message=message),
        status=status, mimetype="text/html",
    )


def _lookup(pa_req: str) -> Transaction | Response:
    """The payment ``pa_req`` was issued for, or the page refusing it (400 when it is
    not a PaReq at all, 404 when no payment of this sandbox issued it)."""
    try:
        data = threeds.decode_pareq(pa_req)
        tx_id = int(data.get("TransactionId"))  # type: ignore[arg-type]
    except (threeds.ThreeDSError, TypeError, ValueError, ArithmeticError):
        return _problem("PaReq is not a test-mode PaReq with a TransactionId")
    sandbox = get_sandbox()
    with sandbox.lock:
        tx = sandbox.state.transactions.get(tx_id)
    # The PaReq must be the one the sandbox issued for that payment.
    if tx is None or tx.pa_req != pa_req:
        return _problem("Unknown PaReq: this payment did not ask for 3-D Secure here", 404)
    return tx


def _fields() -> tuple[str, str, str] | Response:
    form = request.form if request.method == "POST" else request.args
    pa_req, md, term_url = (form.get(name, "") for name in threeds.ACS_FIELDS)
    if not pa_req or not term_url:
        return _problem("PaReq and TermUrl are required")
    problem = url_problem(term_url, "TermUrl")
    if problem is not None:
        return _problem(problem)
    return pa_req, md, term_url


@bp.route("/acs", methods=["GET", "POST"])
def acs() -> Response | str:
    """The bank page."""
    fields = _fields()
    if isinstance(fields, Response):
        return fields
    pa_req, md, term_url = fields
    tx = _lookup(pa_req)
    if isinstance(tx, Response):
        return tx
    if tx.card is None:
        return _problem("Unknown PaReq: this payment did not ask for 3-D Secure here", 404)
    sandbox = get_sandbox()
    return render_template(
        "sandbox/acs.html", stage="challenge", merchant=sandbox.settings.site_name,
        amount=f"{tx.amount:.2f}", currency=tx.currency, card=tx.card.mask,
        transaction_id=tx.id, waiting=tx.status is TxStatus.AWAITING_AUTHENTICATION,
        pa_req=pa_req, md=md, term_url=term_url,
    )


@bp.route("/acs/complete", methods=["POST"])
def complete() -> Response | str:
    """Sign the cardholder's answer and send it to the merchant's TermUrl."""
    fields = _fields()
    if isinstance(fields, Response):
        return fields
    pa_req, md, term_url = fields
    outcome = OUTCOMES.get(request.form.get("action", ""))
    if outcome is None:
        return _problem("action must be confirm, decline or cancel")
    tx = _lookup(pa_req)
    if isinstance(tx, Response):
        return tx
    pa_res = threeds.sign_pares(tx.id, outcome, get_sandbox().api_secret)
    return render_template(
        "sandbox/acs.html", stage="return", term_url=term_url,
        fields={"MD": md, "PaRes": pa_res}, outcome=outcome.name.lower(),
    )
