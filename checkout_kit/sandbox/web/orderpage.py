"""The payment page of an order (``/d/<Id>``, the gateway's ``orders.cloudpayments.ru``).

It shows the order and, while it is unpaid, a test-card form. The sandbox plays
CloudPayments' own hosted page here, so it builds the cryptogram itself with its
own public key (the card is used for that one call, never stored or logged) and
pays with the order's invoice, account, e-mail and JSON data. A 3-D Secure card goes
through the sandbox bank page and back to ``/d/<Id>/3ds``.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for

from ... import cryptogram, threeds
from ...errors import CardError, CryptogramError
from ...reasons import reason_for
from ..rules.params import Params, RequestError
from ..rules.records import Order
from .api import get_sandbox

__all__ = ["bp"]

bp = Blueprint("cp_orders", __name__)


def _order(order_id: str) -> Order:
    sandbox = get_sandbox()
    with sandbox.lock:
        order = sandbox.orders.get(order_id)
    if order is None:
        abort(Response("Order not found", status=404, mimetype="text/plain"))
    return order


def _page(order: Order, *, message: str | None = None, status: int = 200) -> Response:
    return Response(
        render_template("sandbox/order.html", order=order, amount=f"{order.amount:.2f}",
                        message=message, site=get_sandbox().settings.site_name),
        status=status, mimetype="text/html",
    )


@bp.after_request
def _commit(response: Response) -> Response:
    """Write what the page changed and send the notifications it queued."""
    get_sandbox().commit()
    return response


def _finish(order: Order, envelope: dict[str, object]) -> Response:
    model = envelope.get("Model")
    code = model.get("ReasonCode", 0) if isinstance(model, Mapping) else 0
    if envelope.get("Success"):
        if order.success_redirect_url:
            return redirect(order.success_redirect_url, 303)  # type: ignore[return-value]
        return _page(order, message="Payment approved")
    text = reason_for(int(code or 0)).message(order.culture_name)
    if order.fail_redirect_url:
        return redirect(order.fail_redirect_url, 303)  # type: ignore[return-value]
    return _page(order, message=f"Payment declined: {text} ({code})")


@bp.get("/d/<order_id>")
def show(order_id: str) -> Response:
    """The order page."""
    order = _order(order_id)
    return _page(order)


@bp.post("/d/<order_id>/pay")
def pay(order_id: str) -> Response:
    """Pay the order with a test card."""
    sandbox = get_sandbox()
    order = _order(order_id)
    if order.status != "Created":
        return _page(order, message=f"This order is {order.status}", status=409)
    form = request.form
    try:
        packet = cryptogram.build(
            form.get("cardNumber", ""), form.get("expDate", ""), form.get("cvv", ""),
            sandbox.public_id, key=sandbox.keys[sandbox.settings.key_version].public_key(),
            key_version=sandbox.settings.key_version,
        )
    except (CardError, CryptogramError) as exc:
        return _page(order, message=f"Check the card details ({exc.message})", status=400)
    params = Params({
        "Amount": order.amount, "Currency": order.currency, "IpAddress": request.remote_addr
        or "127.0.0.1", "CardCryptogramPacket": packet, "Name": form.get("name") or None,
        "InvoiceId": order.invoice_id, "AccountId": order.account_id, "Email": order.email,
        "Description": order.description, "CultureName": order.culture_name,
        "JsonData": order.json_data,
    })
    try:
        envelope = sandbox.finish(sandbox.pay_by_cryptogram(
            params, two_stage=order.require_confirmation, base_url=request.host_url,
            order_id=order.id,
        ))
    except RequestError as exc:
        return _page(order, message=exc.message, status=400)
    model = envelope.get("Model")
    if isinstance(model, Mapping) and model.get("AcsUrl"):
        term_url = url_for("cp_orders.three_ds", order_id=order.id, _external=True)
        return Response(threeds.acs_form_html(
            str(model["AcsUrl"]), str(model["PaReq"]), str(model["TransactionId"]), term_url,
        ), mimetype="text/html")
    return _finish(order, envelope)


@bp.post("/d/<order_id>/3ds")
def three_ds(order_id: str) -> Response:
    """The TermUrl of an order payment."""
    sandbox = get_sandbox()
    order = _order(order_id)
    try:
        envelope = sandbox.post3ds(Params({
            "TransactionId": request.form.get("MD"), "PaRes": request.form.get("PaRes"),
        }))
    except RequestError as exc:
        return _page(order, message=exc.message, status=400)
    return _finish(order, envelope)
