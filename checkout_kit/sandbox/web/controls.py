"""Test controls under ``/_sandbox/``.

They take JSON bodies only and, when ``SandboxSettings.control_token`` is set, the
control token (:class:`checkout_kit.sandbox.web.security.Guard` enforces both).

=====================================  ==============================================
``GET  /_sandbox/``                    HTML inspector (transactions, deliveries)
``GET  /_sandbox/clock``               ``{"now", "offset_seconds", "next_event"}``
``POST /_sandbox/clock/advance``       body ``{"seconds"|"minutes"|"hours"|"days": n}``:
                                       moves the clock, running due work on the way
``POST /_sandbox/run``                 run the work due now (deliveries, schedule)
``GET  /_sandbox/transactions[/<id>]`` transactions (API model + sandbox ``detail``)
``GET  /_sandbox/deliveries``          notification deliveries with their attempts
``GET  /_sandbox/tokens``, ``/subscriptions``, ``/orders``
``GET|POST|DELETE /_sandbox/faults``   list, add (``{"kind", "path", "times",
                                       "status", "latency_ms", "retry_after"}``), clear
``GET|POST /_sandbox/settings``        read or change sandbox settings
=====================================  ==============================================
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from flask import Blueprint, render_template, request
from werkzeug.wrappers import Response

from ..rules import render
from ..rules.params import RequestError, iso, parse_bool, read_json
from ..rules.records import Delivery, TxType
from ..rules.settings import SaveCards
from .answers import PAGE_HEADERS, envelope_response, error_response
from .api import get_sandbox
from .security import CONTROL_PREFIX

__all__ = ["bp"]

bp = Blueprint("cp_controls", __name__, url_prefix=CONTROL_PREFIX)

_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def _json_body() -> dict[str, Any]:
    """The body as a dict; ``ValueError`` (answered 400 by each control) otherwise."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return dict(request.form.items()) if request.form else {}
    try:
        is_json = request.is_json or raw.lstrip()[:1] == b"{"
        value = read_json(raw) if is_json else dict(request.form)
    except RequestError as exc:
        raise ValueError(exc.message) from None
    if not isinstance(value, dict):
        raise ValueError("the body must be a JSON object")
    return value


def _bad(message: str) -> Response:
    return error_response(message, 400)


def _clock() -> dict[str, Any]:
    sb = get_sandbox()
    return {
        "now": iso(sb.now()),
        "offset_seconds": _seconds(sb.clock.offset),
        "next_event": iso(sb.next_event()),
    }


@bp.get("/clock")
def clock() -> Response:
    """The virtual clock."""
    return envelope_response(_clock())


@bp.post("/clock/advance")
def advance() -> Response:
    """Move the clock forward and run what falls due."""
    try:
        body = _json_body()
        seconds = sum(float(body[u]) * f for u, f in _UNITS.items() if u in body)
        if not 0 <= seconds <= 3650 * 86400:
            raise ValueError("advance by 0 to 3650 days")
    except (ValueError, TypeError, ArithmeticError) as exc:
        return _bad(str(exc))
    get_sandbox().advance(timedelta(seconds=seconds))
    return envelope_response(_clock())


@bp.post("/run")
def run() -> Response:
    """Run the work due now."""
    get_sandbox().run_due()
    return envelope_response(_clock())


def _tx_rows() -> list[dict[str, Any]]:
    sb = get_sandbox()
    with sb.lock:
        return [
            {**sb.model(tx), "SandboxDetail": tx.detail}
            for tx in sorted(sb.state.transactions.values(), key=lambda t: t.id)
        ]


@bp.get("/transactions")
def transactions() -> Response:
    """Every transaction."""
    return envelope_response(_tx_rows())


@bp.get("/transactions/<int:transaction_id>")
def transaction(transaction_id: int) -> Response:
    """One transaction."""
    sb = get_sandbox()
    with sb.lock:
        tx = sb.state.transactions.get(transaction_id)
        if tx is None:
            return error_response("Transaction not found", 404)
        return envelope_response({**sb.model(tx), "SandboxDetail": tx.detail})


def delivery_row(d: Delivery) -> dict[str, Any]:
    """A delivery as JSON."""
    return {
        "id": d.id, "type": d.type, "address": d.address, "http_method": d.http_method,
        "encoding": d.encoding, "body": d.body, "headers": d.headers, "state": d.state,
        "created": iso(d.created), "next_attempt_at": iso(d.next_attempt_at),
        "transaction_id": d.transaction_id, "subscription_id": d.subscription_id,
        "copy": d.copy,
        "attempts": [
            {"at": iso(a.at), "ok": a.ok, "status_code": a.status_code, "error": a.error,
             "response": a.response}
            for a in d.attempts
        ],
    }


@bp.get("/deliveries")
def deliveries() -> Response:
    """Every notification delivery."""
    sb = get_sandbox()
    with sb.lock:
        rows = [delivery_row(d) for d in sorted(sb.state.deliveries.values(), key=lambda d: d.id)]
    return envelope_response(rows)


@bp.get("/tokens")
def tokens() -> Response:
    """Saved cards."""
    sb = get_sandbox()
    with sb.lock:
        return envelope_response([render.token_model(t) for t in sb.state.tokens.values()])


@bp.get("/subscriptions")
def subscriptions() -> Response:
    """Subscriptions."""
    sb = get_sandbox()
    with sb.lock:
        return envelope_response(
            [render.subscription_model(s) for s in sb.state.subscriptions.values()])


@bp.get("/orders")
def orders() -> Response:
    """Orders."""
    sb = get_sandbox()
    with sb.lock:
        return envelope_response([render.order_model(o) for o in sb.state.orders.values()])


@bp.route("/faults", methods=["GET", "POST", "DELETE"])
def faults() -> Response:
    """List, add or clear injected faults."""
    sb = get_sandbox()
    if request.method == "DELETE":
        sb.faults.clear()
    elif request.method == "POST":
        try:
            body = _json_body()
            times = body.get("times", 1)
            sb.faults.add(
                str(body.get("kind", "")),
                path=str(body["path"]) if body.get("path") else None,
                times=None if times is None else int(times),
                status=int(body.get("status", 500)),
                latency_ms=int(body.get("latency_ms", 0)),
                retry_after=None if body.get("retry_after") is None else float(body["retry_after"]),
            )
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
            return _bad(str(exc))
    return envelope_response([f.to_dict() for f in sb.faults.list()])


def _seconds(value: timedelta) -> Decimal:
    """``value`` in seconds, to the millisecond."""
    return Decimal(value // timedelta(milliseconds=1)).scaleb(-3)


def _in_days(value: timedelta) -> Decimal:
    return _seconds(value) / 86400


def _settings_view() -> dict[str, Any]:
    s = get_sandbox().settings
    return {
        "public_id": s.public_id,
        "site_name": s.site_name,
        "save_cards": s.save_cards,
        "duplicate_notifications": s.duplicate_notifications,
        "deliver_immediately": s.deliver_immediately,
        "auto_confirm_days": (
            None if s.auto_confirm_after is None else _in_days(s.auto_confirm_after)
        ),
        "auth_expiry_days": _in_days(s.auth_expiry),
        "max_concurrent_requests": s.max_concurrent_requests,
        "key_version": s.key_version,
        "key_versions": sorted(get_sandbox().keys),
        "allowed_hosts": list(s.allowed_hosts),
        "private_notification_targets": s.private_notification_targets,
        # Whether one is needed, never the token itself.
        "control_token_required": bool(s.control_token),
    }


def _number(value: Any, name: str) -> Decimal:
    """A JSON number (or its text) as a finite Decimal; our own message otherwise, not
    Python's (``could not convert string to float...``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValueError(f"{name} must be a number")
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        raise ValueError(f"{name} must be a number") from None
    if not number.is_finite():
        raise ValueError(f"{name} must be a number")
    return number


def _days(value: Any, name: str) -> timedelta:
    days = _number(value, name)
    if not 0 < days <= 3650:
        raise ValueError(f"{name} must be more than 0 and at most 3650")
    return timedelta(days=float(days))


def _host_names(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
            isinstance(n, str) and 0 < len(n) <= 253 and n.isprintable() and " " not in n
            for n in value):
        raise ValueError(f"{name} is a list of host names")
    return tuple(dict.fromkeys(n.lower() for n in value))


def _save_cards(value: Any, name: str) -> SaveCards:
    try:
        return SaveCards(value)
    except ValueError:
        raise ValueError(f"{name} is {', '.join(SaveCards)}") from None


def _flag(value: Any, name: str) -> bool:
    try:
        return parse_bool(value)
    except ValueError:
        raise ValueError(f"{name} is true or false") from None


def _optional_days(value: Any, name: str) -> timedelta | None:
    return None if value is None else _days(value, name)


def _request_cap(value: Any, name: str) -> int:
    number = _number(value, name)
    if number != number.to_integral_value() or not 1 <= number <= 1000:
        raise ValueError(f"{name} must be a whole number from 1 to 1000")
    return int(number)


def _site_name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 200:
        raise ValueError(f"{name} is a text of 1 to 200 characters")
    return value


#: body field -> (the SandboxSettings attribute it sets, its parser)
_SETTINGS: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "save_cards": ("save_cards", _save_cards),
    "duplicate_notifications": ("duplicate_notifications", _flag),
    "deliver_immediately": ("deliver_immediately", _flag),
    "auto_confirm_days": ("auto_confirm_after", _optional_days),
    "auth_expiry_days": ("auth_expiry", _days),
    "max_concurrent_requests": ("max_concurrent_requests", _request_cap),
    "site_name": ("site_name", _site_name),
    "allowed_hosts": ("allowed_hosts", _host_names),
    "private_notification_targets": ("private_notification_targets", _flag),
}


@bp.route("/settings", methods=["GET", "POST"])
def settings() -> Response:
    """Read or change settings (``save_cards``, ``duplicate_notifications``,
    ``deliver_immediately``, ``auto_confirm_days``, ``auth_expiry_days``,
    ``max_concurrent_requests``, ``site_name``, ``allowed_hosts``,
    ``private_notification_targets``). The control token is not shown, and is set
    only when the sandbox starts (``--control-token``)."""
    sb = get_sandbox()
    if request.method == "POST":
        # Every field is checked before any is set: a bad one changes nothing.
        try:
            body = _json_body()
            changes = {attribute: parse(body[name], name)
                       for name, (attribute, parse) in _SETTINGS.items() if name in body}
        except ValueError as exc:
            return _bad(str(exc))
        with sb.lock:
            for attribute, value in changes.items():
                setattr(sb.settings, attribute, value)
    return envelope_response(_settings_view())


#: The JSON views the inspector links to (endpoints of this blueprint).
JSON_VIEWS = ("transactions", "deliveries", "tokens", "subscriptions", "orders", "faults",
              "settings", "clock")


def type_name(value: int) -> str:
    """A transaction model's ``Type`` in words (``Payment``, ``Refund``, ``Card payout``);
    the number itself when it is none of those."""
    try:
        return TxType(value).name.replace("_", " ").capitalize()
    except ValueError:
        return str(value)


@bp.get("/")
def index() -> Response:
    """The HTML inspector."""
    sb = get_sandbox()
    with sb.lock:
        rows = [delivery_row(d) for d in sb.state.deliveries.values()]
    html = render_template(
        "sandbox/inspector.html", s=sb.settings, clock=_clock(), txs=_tx_rows(),
        deliveries=rows, json_views=JSON_VIEWS, type_name=type_name,
    )
    return Response(html, mimetype="text/html", headers=PAGE_HEADERS)
