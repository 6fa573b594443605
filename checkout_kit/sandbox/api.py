"""The server API of the sandbox: the gateway's endpoints over HTTP (reference §3).

One table, :data:`ROUTES`, says for each path which operation runs and who may call
it: the merchant (HTTP Basic ``PublicId:ApiSecret``), or also a browser or mobile
SDK with only the Public ID (``publicId`` query parameter or ``PublicId`` body
field; those endpoints answer CORS preflights). Bodies are JSON or form-encoded
(chosen by ``Content-Type``). Answers are the ``{Success, Message, Model}``
envelope; a refused request is ``Success: false`` with a ``Message`` (HTTP 200 for
validation errors, as the gateway does; 400 for an unreadable body; 401 for bad
credentials), never a 500.

``X-Request-ID``: the first processed answer for a (Public ID, request id) pair is
stored for one virtual hour and replayed for repeats without running anything
again.
"""

from __future__ import annotations

import hmac
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from flask import current_app
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from .engine import Sandbox
from .state import StoredResponse
from .wire import Params, RequestError, dumps, loads

__all__ = ["API_PREFIXES", "ROUTES", "Route", "envelope_response", "get_sandbox", "handle"]

#: Paths (lower case) served by this blueprint; the gateway's routing ignores case.
API_PREFIXES = ("/test", "/payments/", "/v2/", "/subscriptions/", "/orders/", "/site/")

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, X-Request-ID, MobileSDKSource, Authorization",
    "Access-Control-Max-Age": "600",
}

_MAX_FORM_FIELDS = 150_000
#: Largest request body the sandbox reads (the gateway's own limit is unpublished).
MAX_BODY = 1024 * 1024


class ApiRequest(Request):
    """A request with the sandbox's body limit."""

    max_content_length = MAX_BODY


def get_sandbox() -> Sandbox:
    """The :class:`Sandbox` of the current app."""
    sandbox: Sandbox = current_app.extensions["checkout_kit_sandbox"]
    return sandbox


@dataclass(frozen=True)
class Ctx:
    """What an operation may need besides its parameters."""

    request: Request
    kind: str = ""

    @property
    def base_url(self) -> str:
        """``http://host/`` as the caller reached us (for AcsUrl and order URLs)."""
        return str(self.request.host_url)

    def host(self) -> str:
        """:attr:`base_url`, as a callable for operations that rarely need it."""
        return self.base_url


Handler = Callable[[Sandbox, Params, Ctx], Any]


@dataclass(frozen=True)
class Route:
    """One endpoint: its operation, who may call it, and how."""

    handler: Handler
    auth: str = "secret"  # "secret" | "public" (Public ID alone suffices) | "none"
    methods: tuple[str, ...] = ("POST",)
    idempotent: bool = True  # stores the answer under X-Request-ID


def _test(sb: Sandbox, p: Params, ctx: Ctx) -> dict[str, Any]:
    return {"Success": True, "Message": sb.random_hex(32)}


def _public_key(sb: Sandbox, p: Params, ctx: Ctx) -> dict[str, Any]:
    return {"Pem": sb.public_key_pem(), "Version": sb.settings.key_version}


def _callback(sb: Sandbox, p: Params, ctx: Ctx) -> Response:
    location = sb.three_ds_callback(p.required_text("MD", max_length=8192),
                                    p.text("PaRes", max_length=8192))
    return Response(status=302, headers={"Location": location})


ROUTES: dict[str, Route] = {
    "/test": Route(_test, methods=("POST", "GET")),
    "/payments/cards/charge": Route(
        lambda sb, p, c: sb.pay_by_cryptogram(p, two_stage=False, base_url=c.host), "public"),
    "/payments/cards/auth": Route(
        lambda sb, p, c: sb.pay_by_cryptogram(p, two_stage=True, base_url=c.host), "public"),
    "/payments/cards/post3ds": Route(lambda sb, p, c: sb.post3ds(p)),
    "/payments/tokens/charge": Route(lambda sb, p, c: sb.pay_by_token(p, two_stage=False)),
    "/payments/tokens/auth": Route(lambda sb, p, c: sb.pay_by_token(p, two_stage=True)),
    "/payments/confirm": Route(lambda sb, p, c: sb.confirm(p)),
    "/payments/void": Route(lambda sb, p, c: sb.void(p)),
    "/payments/refund": Route(lambda sb, p, c: sb.refund(p)),
    "/payments/get": Route(lambda sb, p, c: sb.get(p)),
    "/payments/find": Route(lambda sb, p, c: sb.find(p, v2=False)),
    "/v2/payments/find": Route(lambda sb, p, c: sb.find(p, v2=True)),
    "/payments/list": Route(lambda sb, p, c: sb.list_day(p)),
    "/v2/payments/list": Route(lambda sb, p, c: sb.list_period(p)),
    "/payments/tokens/list": Route(lambda sb, p, c: sb.list_tokens(p)),
    "/subscriptions/create": Route(lambda sb, p, c: sb.subscriptions.create(p)),
    "/subscriptions/get": Route(lambda sb, p, c: sb.subscriptions.get(p)),
    "/subscriptions/find": Route(lambda sb, p, c: sb.subscriptions.find(p)),
    "/subscriptions/update": Route(lambda sb, p, c: sb.subscriptions.update(p)),
    "/subscriptions/cancel": Route(lambda sb, p, c: sb.subscriptions.cancel(p)),
    "/orders/create": Route(lambda sb, p, c: sb.orders.create(p, base_url=c.base_url)),
    "/orders/cancel": Route(lambda sb, p, c: sb.orders.cancel(p)),
    "/site/notifications/<kind>/get": Route(
        lambda sb, p, c: sb.notification_settings(c.kind)),
    "/site/notifications/<kind>/update": Route(
        lambda sb, p, c: sb.update_notification_settings(c.kind, p)),
    "/payments/publickey": Route(_public_key, "none", ("GET",), idempotent=False),
    "/payments/threedscallback": Route(_callback, "none", idempotent=False),
}


def envelope_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response with exact decimals."""
    response = Response(dumps(payload), status=status, mimetype="application/json")
    if headers:
        response.headers.update(headers)
    return response


def _error(message: str, status: int) -> Response:
    return envelope_response({"Success": False, "Message": message}, status)


# --------------------------------------------------------------------------- request parsing


def _charset(request: Request) -> str:
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    return {"windows-1251": "cp1251", "cp1251": "cp1251"}.get(charset, "utf-8")


def read_body(request: Request) -> dict[str, Any]:
    """The request body as a dict; :class:`RequestError` (400/415) if unreadable."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    mimetype = request.mimetype or ""
    looks_json = raw.lstrip()[:1] in (b"{", b"[")
    if "json" in mimetype or (looks_json and mimetype in ("", "text/plain")):
        value = loads(raw)
        if not isinstance(value, dict):
            raise RequestError("The request body must be a JSON object", 400)
        return value
    if mimetype in ("application/x-www-form-urlencoded", "", "text/plain"):
        try:
            pairs = parse_qsl(raw.decode(_charset(request)), keep_blank_values=True,
                              strict_parsing=False, max_num_fields=_MAX_FORM_FIELDS)
        except (UnicodeDecodeError, ValueError):
            raise RequestError("The request body is not valid form data", 400) from None
        data: dict[str, Any] = {}
        for key, value in pairs:
            if key in data:
                previous = data[key]
                data[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                data[key] = value
        return data
    if mimetype == "multipart/form-data":
        return {k: v[0] if len(v) == 1 else v for k, v in request.form.to_dict(flat=False).items()}
    raise RequestError("Unsupported Content-Type", 415)


# --------------------------------------------------------------------------- auth


class Unauthorized(Exception):
    """Credentials missing or wrong."""


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


def authenticate(request: Request, sb: Sandbox, route: Route, params: Params) -> None:
    """Raise :class:`Unauthorized` unless the caller may use ``route``."""
    if route.auth == "none":
        return
    header = request.headers.get("Authorization")
    if header is not None:
        auth = request.authorization
        if (
            auth is None or auth.type != "basic"
            or not _same(auth.username or "", sb.public_id)
            or not _same(auth.password or "", sb.api_secret)
        ):
            raise Unauthorized
        return
    if route.auth == "public":
        try:
            given = params.text("PublicId", max_length=255)
        except RequestError:
            given = None
        if given is not None and _same(given, sb.public_id):
            return
    raise Unauthorized


# --------------------------------------------------------------------------- dispatch

_request_locks: dict[str, threading.Lock] = {}
_request_locks_guard = threading.Lock()


def _request_lock(key: str) -> threading.Lock:
    with _request_locks_guard:
        if len(_request_locks) > 10_000:
            _request_locks.clear()
        return _request_locks.setdefault(key, threading.Lock())


def _run(sb: Sandbox, route: Route, params: Params, ctx: Ctx) -> Response:
    try:
        result = route.handler(sb, params, ctx)
    except RequestError as exc:
        return _error(exc.message, exc.status)
    if isinstance(result, Response):
        return result
    return envelope_response(result)


def _replay_or_run(
    request: Request, sb: Sandbox, route: Route, params: Params, ctx: Ctx
) -> Response:
    request_id = request.headers.get("X-Request-ID")
    if not route.idempotent or not request_id:
        return _run(sb, route, params, ctx)
    key = f"{sb.public_id}\x00{request_id[:255]}"
    with _request_lock(key):
        stored = sb.state.idempotency.get(key)
        if stored is not None and sb.now() - stored.created <= sb.settings.idempotency_ttl:
            replay = Response(stored.body, status=stored.status, mimetype="application/json")
            replay.headers.update(stored.headers)
            replay.headers["X-Sandbox-Replayed"] = "true"
            return replay
        response = _run(sb, route, params, ctx)
        with sb.lock:
            sb.state.idempotency[key] = StoredResponse(
                status=response.status_code, body=response.get_data(as_text=True),
                headers={k: v for k, v in response.headers.items() if k == "Location"},
                created=sb.now(),
            )
            sb.dirty = True
        return response


_KIND_ROUTE = re.compile(r"^/site/notifications/([^/]{1,64})/(get|update)$")


def _route_for(path: str) -> tuple[str, str] | None:
    if path in ROUTES:
        return path, ""
    match = _KIND_ROUTE.match(path)
    if match:
        return f"/site/notifications/<kind>/{match.group(2)}", match.group(1)
    return None


def handle(sb: Sandbox, request: Request) -> Response:
    """Answer one API request (``request.path`` already lower-cased).

    Served straight from the WSGI middleware, without Flask's routing: the API is a
    fixed table, and every microsecond here counts against the decryption bound
    (``benchmarks/bench_gateway.py``)."""
    found = _route_for(request.path)
    if found is None:
        return _error("Not found", 404)
    route_path, kind = found
    route = ROUTES[route_path]
    cors = route.auth != "secret"
    if request.method == "OPTIONS":
        allow = ", ".join((*route.methods, "OPTIONS"))
        return Response(status=204, headers=CORS_HEADERS if cors else {"Allow": allow})
    if request.method not in route.methods and not (
        request.method == "HEAD" and "GET" in route.methods
    ):
        response = _error("Method not allowed", 405)
        response.headers["Allow"] = ", ".join(route.methods)
        return response
    try:
        params = Params(request.args.to_dict(), read_body(request))
        try:
            authenticate(request, sb, route, params)
        except Unauthorized:
            response = _error("Authentication failed", 401)
            response.headers["WWW-Authenticate"] = 'Basic realm="CloudPayments"'
        else:
            response = _replay_or_run(request, sb, route, params, Ctx(request, kind))
    except RequestError as exc:
        response = _error(exc.message, exc.status)
    except HTTPException as exc:  # the body is too large, or unreadable
        response = _error(_HTTP_MESSAGES.get(exc.code or 400, exc.name), exc.code or 400)
    if cors:
        response.headers.update(CORS_HEADERS)
    if sb.dirty:
        sb.save()
    if sb.settings.deliver_immediately:
        sb.deliver_pending()
    return response


_HTTP_MESSAGES = {404: "Not found", 405: "Method not allowed", 413: "Request is too large"}
