"""The gateway's notifications, received by the extension (blueprint ``checkout_kit``).

==========================================  ==============================================
``GET|POST /notifications/check``            Check: answered from the ledger and the
                                             shop's rules (``kit.check_rule``)
``GET|POST /notifications/pay`` … ``receipt``  Pay, Fail, Confirm, Refund, Cancel,
                                             Recurrent, Receipt: applied to the ledger once
==========================================  ==============================================

Each request is read as raw bytes (the POST body, or the raw query string of a GET)
before anything parses a form, stored in the audit log (``checkout_notifications``) with
the headers that matter, verified (:func:`checkout_kit.webhooks.receive`) and applied
exactly once (:class:`checkout_kit.ledger.inbox.Inbox`). Every answer is JSON
``{"code": N}``: 200 for a notification taken, 401 for a missing or wrong signature
(``Content-HMAC`` is required unless ``CHECKOUT_KIT_NOTIFICATION_REQUIRE_CONTENT_HMAC``
is False), 400 for an unreadable one (a field name sent twice included), 403 for a
sender outside the allowed networks, 413 for a body over 1 MiB, 405 for another method,
500 for a failure inside the shop. Anything but 200 with code 0 makes the gateway
deliver the notification again later (docs/gateway.md §5.1, §5.3). Signals go out
after the ledger committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from flask import request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from .. import jsoncodec, notifications, webhooks
from ..errors import MalformedNotificationError, NotificationError, NotificationPurgedError
from ..ledger.inbox import Applied, NotificationRecord
from ..ledger.store import Payment
from ..notifications import Notification
from . import signals
from .config import ConfigurationError
from .state import KitState, state
from .views import bp

__all__ = [
    "HEADERS_KEPT",
    "ROUTE_METHODS",
    "bp",
    "deliver",
    "exempt_from_csrf",
    "notification_path",
    "replay",
]

log = logging.getLogger(__name__)

#: The headers stored with each request: the signature, the body's form, the path it
#: took through proxies, and who sent it.
HEADERS_KEPT = ("Content-Type", "Content-Length", "Content-HMAC", "X-Content-HMAC",
                "X-Forwarded-For", "X-Real-IP", "Forwarded", "User-Agent", "X-Request-ID")

#: Methods the routes take; all but GET and POST are answered 405 (as JSON, like
#: everything else on these routes).
ROUTE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_NOTIFICATION_METHODS = ("GET", "POST")


def notification_path(kind: str) -> str:
    """The route's path below the extension's prefix (``/notifications/pay``)."""
    return f"/notifications/{kind.lower()}"


def _json(status: int, code: int) -> Response:
    return Response(jsoncodec.dumps_bytes({"code": int(code)}), status=status,
                    mimetype="application/json")


def _kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    by_name = {name.lower(): value for name, value in headers.items()}
    kept: dict[str, str] = {}
    for name in HEADERS_KEPT:
        value = by_name.get(name.lower())
        if value is not None:
            kept[name] = str(value)[:1000]
    return kept


def _signature_holds(kit: KitState, method: str, raw: bytes, headers: Mapping[str, str]) -> bool:
    """Whether the HMAC of an unreadable notification was right (for the audit log),
    checked in the text encoding :func:`webhooks.receive` checks it in (a POST's
    declared charset, else the configured one)."""
    settings = kit.settings
    content_type = _kept_headers(headers).get("Content-Type")
    try:
        # receive's own choice, so a notification it verified is never flagged forged.
        encoding = webhooks.delivery_encoding(
            method.upper(), content_type, settings.notification_encoding)
    except MalformedNotificationError:  # an unknown charset: the configured one is left
        encoding = settings.notification_encoding
    try:
        notifications.verify(
            raw, headers, settings.api_secret, encoding=encoding,
            require_content_hmac=settings.notification_require_content_hmac)
    except (NotificationError, ValueError):
        return False
    return True


def _why(exc: NotificationError) -> str:
    detail = getattr(exc, "header", None) or getattr(exc, "field", None)
    return f"{type(exc).__name__}: {exc}" + (f" ({detail})" if detail else "")


def _decider(kit: KitState) -> Callable[[Notification, Payment | None], int]:
    def decide(notification: Notification, payment: Payment | None) -> int:
        return kit.checks.decide(notification, payment, now=kit.ledger.now())
    return decide


def deliver(
    kit: KitState,
    kind: str,
    method: str,
    raw: bytes,
    headers: Mapping[str, str],
    *,
    remote_addr: str | None,
    replay_of: int | None = None,
) -> tuple[int, int, NotificationRecord]:
    """Verify, record and apply one delivery; returns ``(HTTP status, code, audit row)``.

    The route calls it with the request; ``replay`` with a stored row's bytes. Signals
    go out after the ledger committed, only for the delivery that applied the
    notification. Errors inside the ledger are recorded and answered 500.
    """
    settings = kit.settings
    kept = _kept_headers(headers)
    try:
        received = webhooks.receive(
            method, raw, headers, settings.api_secret, expected_type=kind,
            encoding=settings.notification_encoding,
            require_content_hmac=settings.notification_require_content_hmac)
    except NotificationError as exc:
        status, _ = webhooks.answer_error(exc, type=kind)
        valid = isinstance(exc, MalformedNotificationError) and _signature_holds(
            kit, method, raw, headers)
        record = kit.inbox.record(type=kind, method=method, body=raw, headers=kept,
                                  remote_addr=remote_addr, signature_valid=valid,
                                  outcome="refused", code=webhooks.REJECT_CODE,
                                  error=_why(exc), replay_of=replay_of)
        return status, webhooks.REJECT_CODE, record
    record = kit.inbox.record(type=received.type, method=method, body=raw, headers=kept,
                              remote_addr=remote_addr, signature_valid=True,
                              replay_of=replay_of)
    try:
        applied = kit.inbox.apply(record.id, received, _decider(kit))
    except Exception as exc:
        log.exception("notification %s (%s): not applied", record.id, received.type)
        record = kit.inbox.mark(record.id, outcome="error", code=webhooks.REJECT_CODE,
                                error=f"{type(exc).__name__}: {exc}")
        return 500, webhooks.REJECT_CODE, record
    _announce(kit, received, applied)
    return 200, applied.code, applied.record


def _announce(kit: KitState, received: webhooks.Received, applied: Applied) -> None:
    """The signals of an applied notification (its status changes, then itself)."""
    sends: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = [
        (kit.on_change, (p, old, new), {}) for p, old, new in applied.changes
    ] + [(kit.on_problem, (p, problem), {}) for p, problem in applied.problems]
    payment = applied.payment
    if applied.refunded is not None and payment is not None and not applied.changes:
        # A partial refund keeps the status: the ledger reports no change.
        sends.append((signals.payment_refunded.send, (kit.app,), {
            "payment": payment, "old_status": str(payment.status),
            "amount": applied.refunded}))
    if applied.applied:
        extra: dict[str, Any] = {
            "type": received.type, "notification": received.notification,
            "fields": received.fields, "payment": payment, "code": applied.code,
            "record": applied.record}
        sends.append((signals.notification_received.send, (kit.app,), extra))
        sends.append((signals.BY_NOTIFICATION[received.type].send, (kit.app,), extra))
    for send, args, kwargs in sends:
        try:
            send(*args, **kwargs)
        except Exception:
            # The ledger has committed; a receiver's bug must not make the gateway
            # deliver (and the shop apply) the notification again.
            log.exception("a signal receiver failed for notification %s", applied.record.id)


def replay(kit: KitState, record_id: int) -> tuple[int, int, NotificationRecord]:
    """Deliver a stored notification again (``flask checkout notifications replay``):
    checked and applied as if it came now, under the same exactly-once key, and
    recorded as a new row pointing at ``record_id``. ``LookupError`` if there is none;
    :class:`~checkout_kit.errors.NotificationPurgedError` (a ``LookupError`` too) if
    only its masked copy is left (purged after the retention period)."""
    stored = kit.inbox.get(record_id)
    if stored.purged_at is not None:
        raise NotificationPurgedError(record_id, stored.purged_at)
    return deliver(kit, stored.type, stored.method, stored.body, stored.headers,
                   remote_addr=stored.remote_addr, replay_of=stored.id)


def _read_raw() -> bytes | None:
    """The request's bytes as sent, never through a form parser; ``None`` when over
    :data:`webhooks.MAX_BODY_BYTES`."""
    limit = webhooks.MAX_BODY_BYTES
    if request.method != "POST":
        raw = request.query_string
        return raw if len(raw) <= limit else None
    if request.content_length is not None and request.content_length > limit:
        return None
    raw = request.stream.read(limit + 1)
    return raw if len(raw) <= limit else None


def _headers() -> dict[str, str]:
    # Case-insensitive lookups happen in webhooks; of a repeated header the last counts.
    return dict(request.headers.items())


def _receive(kind: str) -> Response:
    kit = state().check_ledger()
    remote = request.remote_addr
    if request.method not in _NOTIFICATION_METHODS:
        return _refuse(kit, kind, b"", 405, f"method {request.method[:16]} not allowed")
    raw = _read_raw()
    if raw is None:
        return _refuse(kit, kind, b"", 413, "larger than webhooks.MAX_BODY_BYTES")
    if not kit.settings.sender_check.allows(remote, request.headers.get("X-Forwarded-For")):
        return _refuse(kit, kind, raw, 403, "sender address not in CHECKOUT_KIT_"
                                            "NOTIFICATION_NETWORKS")
    status, code, _ = deliver(kit, kind, request.method, raw, _headers(),
                              remote_addr=remote)
    return _json(status, code)


def _refuse(kit: KitState, kind: str, raw: bytes, status: int, why: str) -> Response:
    log.warning("notification %s refused: %s", kind, why)
    kit.inbox.record(type=kind, method=request.method, body=raw,
                     headers=_kept_headers(_headers()), remote_addr=request.remote_addr,
                     signature_valid=False, outcome="refused", code=webhooks.REJECT_CODE,
                     error=why)
    return _json(status, webhooks.REJECT_CODE)


def _answer(kind: str) -> Response:
    """The answer to one request on the route of ``kind``: always JSON."""
    try:
        return _receive(kind)
    except ConfigurationError as exc:  # the ledger's tables are missing or old
        log.error("notification %s not taken: %s", kind, exc)
        return _json(503, webhooks.REJECT_CODE)
    except HTTPException as exc:  # the body is too large or unreadable...
        return _json(exc.code or 400, webhooks.REJECT_CODE)
    except Exception:
        # Even a failure inside the shop answers JSON: the gateway retries it.
        log.exception("notification %s: internal error", kind)
        return _json(500, webhooks.REJECT_CODE)


def _view(kind: str) -> Callable[[], Response]:
    # A factory run at import; the per-request work is in _answer.
    def view() -> Response:
        return _answer(kind)

    view.__name__ = f"notify_{kind.lower()}"
    view.__doc__ = f"The {kind} notification (docs/notifications.md)."
    return view


#: The view of each type, registered on the blueprint below.
VIEWS: dict[str, Callable[[], Response]] = {kind: _view(kind) for kind in webhooks.WEBHOOK_TYPES}
for _kind, _function in VIEWS.items():
    bp.add_url_rule(notification_path(_kind), endpoint=_function.__name__, view_func=_function,
                    methods=list(ROUTE_METHODS))


def exempt_from_csrf(csrf: Any) -> None:
    """Exempt the notification views from Flask-WTF's ``CSRFProtect`` (the gateway
    sends no token; the HMAC is what proves the sender)."""
    for function in VIEWS.values():
        csrf.exempt(function)
