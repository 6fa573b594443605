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

Every payment costs the gateway one RSA decryption, and this layer is measured
against it (``benchmarks/bench_gateway.py``): requests are read straight from the
WSGI environ and answered with :class:`Answer`, whose headers are exactly those a
werkzeug ``Response`` would send; werkzeug's ``Request`` is only built for what is
rare here (query strings, multipart bodies, the host URL of a 3-D Secure answer).
"""

from __future__ import annotations

import base64
import functools
import hmac
import io
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from flask import current_app
from werkzeug.datastructures import Authorization
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.http import HTTP_STATUS_CODES, parse_options_header
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import get_input_stream

from ..rules.engine import Sandbox
from ..rules.params import Params, RequestError, dumps, loads
from ..rules.records import StoredResponse

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = [
    "API_PREFIXES", "ROUTES", "Answer", "Route", "envelope_response", "get_sandbox", "handle",
]

#: Paths (lower case) served by this blueprint; the gateway's routing ignores case.
API_PREFIXES = ("/test", "/payments/", "/v2/", "/subscriptions/", "/orders/", "/site/")

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, X-Request-ID, MobileSDKSource, Authorization",
    "Access-Control-Max-Age": "600",
}

_CORS_ITEMS = tuple(CORS_HEADERS.items())

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

    environ: WSGIEnvironment
    kind: str = ""

    @property
    def base_url(self) -> str:
        """``http://host/`` as the caller reached us (for AcsUrl and order URLs)."""
        return str(ApiRequest(self.environ).host_url)

    def host(self) -> str:
        """:attr:`base_url`, as a callable for operations that rarely need it."""
        return self.base_url

    @property
    def public_caller_ip(self) -> str | None:
        """The caller's address when it called with the Public ID alone (a browser or
        a mobile SDK, which cannot know its public IP), else ``None``."""
        if "HTTP_AUTHORIZATION" in self.environ:
            return None
        return self.environ.get("REMOTE_ADDR") or None


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


def _callback(sb: Sandbox, p: Params, ctx: Ctx) -> Answer:
    location = sb.three_ds_callback(p.required_text("MD", max_length=8192),
                                    p.text("PaRes", max_length=8192))
    return Answer(302, b"", (("Location", location), _TEXT_TYPE), sized=False)


ROUTES: dict[str, Route] = {
    "/test": Route(_test, methods=("POST", "GET")),
    "/payments/cards/charge": Route(
        lambda sb, p, c: sb.pay_by_cryptogram(p, two_stage=False, base_url=c.host,
                                              default_ip=c.public_caller_ip), "public"),
    "/payments/cards/auth": Route(
        lambda sb, p, c: sb.pay_by_cryptogram(p, two_stage=True, base_url=c.host,
                                              default_ip=c.public_caller_ip), "public"),
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


_JSON_TYPE = ("Content-Type", "application/json")
_TEXT_TYPE = ("Content-Type", "text/plain; charset=utf-8")
_STATUS_LINES = {code: f"{code} {phrase.upper()}" for code, phrase in HTTP_STATUS_CODES.items()}


@dataclass(frozen=True, slots=True)
class Answer:
    """An API answer, itself a WSGI application.

    ``headers`` are in wire order; the constructors below give exactly the headers a
    werkzeug ``Response`` would send, without its cost on the hot path. Without
    ``sized``, Content-Length is added when the answer is sent, after every other
    header, as werkzeug does for a response made without a body (the redirect).
    """

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    sized: bool = True

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> Answer:
        """``payload`` as JSON (exact decimals)."""
        return cls.json_bytes(dumps(payload).encode("utf-8"), status)

    @classmethod
    def json_bytes(cls, body: bytes, status: int = 200) -> Answer:
        """JSON text already encoded."""
        return cls(status, body, (_JSON_TYPE, ("Content-Length", str(len(body)))))

    def with_headers(self, *headers: tuple[str, str]) -> Answer:
        """The same answer with ``headers`` appended."""
        return Answer(self.status, self.body, self.headers + headers, self.sized)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        status = self.status
        headers = list(self.headers)
        bodiless = status < 200 or status in (204, 304)
        if not (self.sized or bodiless):
            headers.append(("Content-Length", str(len(self.body))))
        start_response(_STATUS_LINES.get(status, f"{status} UNKNOWN"), headers)
        if bodiless or environ.get("REQUEST_METHOD") == "HEAD":
            return []
        return [self.body]


def _error(message: str, status: int) -> Answer:
    return Answer.json({"Success": False, "Message": message}, status)


# --------------------------------------------------------------------------- request parsing


def _charset(options: dict[str, str]) -> str:
    charset = options.get("charset", "utf-8").lower()
    return {"windows-1251": "cp1251", "cp1251": "cp1251"}.get(charset, "utf-8")


def _read_raw(environ: WSGIEnvironment) -> bytes:
    """The request body, read as werkzeug's ``Request.get_data`` reads it (413 above
    :data:`MAX_BODY`, 400 if the client sent less than it announced)."""
    length = environ.get("CONTENT_LENGTH")
    if (
        length and length.isascii() and length.isdigit()
        and "wsgi.input_terminated" not in environ
        and "HTTP_TRANSFER_ENCODING" not in environ and int(length) <= MAX_BODY
    ):
        # The usual case, without werkzeug's stream wrapper (a few µs per request).
        size = int(length)
        try:
            raw: bytes = environ["wsgi.input"].read(size)
        except (OSError, ValueError):
            raise ClientDisconnected() from None
        if len(raw) < size:
            raise ClientDisconnected()
        return raw
    return get_input_stream(environ, max_content_length=MAX_BODY).read()


@functools.lru_cache(maxsize=64)
def _content_type(header: str) -> tuple[str, dict[str, str]]:
    """``(mimetype, options)`` of a Content-Type header (a handful of values recur)."""
    content_type, options = parse_options_header(header)
    return content_type.lower(), options


def read_body(environ: WSGIEnvironment) -> dict[str, Any]:
    """The request body as a dict; :class:`RequestError` (400/415) if unreadable."""
    raw = _read_raw(environ)
    if not raw.strip():
        return {}
    mimetype, options = _content_type(environ.get("CONTENT_TYPE", ""))
    looks_json = raw.lstrip()[:1] in (b"{", b"[")
    if "json" in mimetype or (looks_json and mimetype in ("", "text/plain")):
        value = loads(raw)
        if not isinstance(value, dict):
            raise RequestError("The request body must be a JSON object", 400)
        return value
    if mimetype in ("application/x-www-form-urlencoded", "", "text/plain"):
        try:
            pairs = parse_qsl(raw.decode(_charset(options)), keep_blank_values=True,
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
        # The body is read already: let werkzeug's form parser read it again.
        replay = {**environ, "wsgi.input": io.BytesIO(raw), "CONTENT_LENGTH": str(len(raw))}
        form = ApiRequest(replay).form.to_dict(flat=False)
        return {k: v[0] if len(v) == 1 else v for k, v in form.items()}
    raise RequestError("Unsupported Content-Type", 415)


def _query(environ: WSGIEnvironment) -> dict[str, str]:
    # API calls rarely carry a query string (publicId from checkout scripts).
    if not environ.get("QUERY_STRING"):
        return {}
    return ApiRequest(environ).args.to_dict()


# --------------------------------------------------------------------------- auth


class Unauthorized(Exception):
    """Credentials missing or wrong."""


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


@functools.lru_cache(maxsize=8)
def _basic_header(public_id: str, api_secret: str) -> bytes | None:
    """The header every client sends for these credentials (``Basic`` + base64), if
    they fit Basic auth (a ``:`` in the Public ID would end the user name early)."""
    if ":" in public_id:
        return None
    return b"Basic " + base64.b64encode(f"{public_id}:{api_secret}".encode("utf-8", "replace"))


def authenticate(environ: WSGIEnvironment, sb: Sandbox, route: Route, params: Params) -> None:
    """Raise :class:`Unauthorized` unless the caller may use ``route``."""
    if route.auth == "none":
        return
    header = environ.get("HTTP_AUTHORIZATION")
    if header is not None:
        # The canonical form needs no parsing; any other is parsed and compared in parts.
        expected = _basic_header(sb.public_id, sb.api_secret)
        if expected is not None and hmac.compare_digest(header.encode("utf-8", "replace"),
                                                        expected):
            return
        auth = Authorization.from_header(header)
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

#: (Public ID, X-Request-ID) -> (its lock, how many requests hold or wait for it). An
#: entry lives only while some request uses it: the table is as small as the number of
#: requests in flight, and a lock in use is never replaced by another.
_request_locks: dict[str, tuple[threading.Lock, int]] = {}
_request_locks_guard = threading.Lock()


class _RequestLock:
    """Hold the lock of one request id for the ``with`` block."""

    __slots__ = ("key", "lock")

    def __init__(self, key: str) -> None:
        self.key = key

    def __enter__(self) -> None:
        with _request_locks_guard:
            lock, users = _request_locks.get(self.key) or (threading.Lock(), 0)
            _request_locks[self.key] = (lock, users + 1)
        lock.acquire()
        self.lock = lock

    def __exit__(self, *exc_info: object) -> None:
        self.lock.release()
        with _request_locks_guard:
            users = _request_locks[self.key][1]
            if users > 1:
                _request_locks[self.key] = (self.lock, users - 1)
            else:
                del _request_locks[self.key]


def _run(sb: Sandbox, route: Route, params: Params, ctx: Ctx) -> Answer:
    try:
        result = route.handler(sb, params, ctx)
    except RequestError as exc:
        return _error(exc.message, exc.status)
    if isinstance(result, Answer):
        return result
    return Answer.json(result)


def _replay_or_run(
    environ: WSGIEnvironment, sb: Sandbox, route: Route, params: Params, ctx: Ctx
) -> Answer:
    request_id = environ.get("HTTP_X_REQUEST_ID")
    if not route.idempotent or not request_id:
        return _run(sb, route, params, ctx)
    key = f"{sb.public_id}\x00{request_id[:255]}"
    with _RequestLock(key):
        stored = sb.state.idempotency.get(key)
        if stored is not None and sb.now() - stored.created <= sb.settings.idempotency_ttl:
            replay = Answer.json_bytes(stored.body.encode("utf-8"), stored.status)
            return replay.with_headers(*stored.headers.items(), ("X-Sandbox-Replayed", "true"))
        answer = _run(sb, route, params, ctx)
        with sb.lock:
            sb.state.idempotency[key] = StoredResponse(
                status=answer.status, body=answer.body.decode("utf-8"),
                headers={k: v for k, v in answer.headers if k == "Location"},
                created=sb.now(),
            )
            sb.dirty = True
        return answer


_KIND_ROUTE = re.compile(r"^/site/notifications/([^/]{1,64})/(get|update)$")


def _route_for(path: str) -> tuple[str, str] | None:
    if path in ROUTES:
        return path, ""
    match = _KIND_ROUTE.match(path)
    if match:
        return f"/site/notifications/<kind>/{match.group(2)}", match.group(1)
    return None


def handle(sb: Sandbox, environ: WSGIEnvironment) -> Answer:
    """Answer one API request (``PATH_INFO`` already lower-cased).

    Served straight from the WSGI middleware, without Flask's routing: the API is a
    fixed table, and every microsecond here counts against the decryption bound
    (``benchmarks/bench_gateway.py``)."""
    # werkzeug's reading of PATH_INFO (WSGI text is latin-1), as Request.path does it
    path = "/" + environ.get("PATH_INFO", "").encode("latin1").decode(errors="replace").lstrip("/")
    found = _route_for(path)
    if found is None:
        return _error("Not found", 404)
    route_path, kind = found
    route = ROUTES[route_path]
    cors = route.auth != "secret"
    method = environ.get("REQUEST_METHOD", "GET").upper()
    if method == "OPTIONS":
        allow = ", ".join((*route.methods, "OPTIONS"))
        return Answer(204, b"", (*_CORS_ITEMS, _TEXT_TYPE) if cors
                      else (("Allow", allow), _TEXT_TYPE))
    if method not in route.methods and not (method == "HEAD" and "GET" in route.methods):
        return _error("Method not allowed", 405).with_headers(("Allow", ", ".join(route.methods)))
    try:
        params = Params(_query(environ), read_body(environ))
        try:
            authenticate(environ, sb, route, params)
        except Unauthorized:
            answer = _error("Authentication failed", 401).with_headers(
                ("WWW-Authenticate", 'Basic realm="CloudPayments"'))
        else:
            answer = _replay_or_run(environ, sb, route, params, Ctx(environ, kind))
    except RequestError as exc:
        answer = _error(exc.message, exc.status)
    except HTTPException as exc:  # the body is too large, or unreadable
        answer = _error(_HTTP_MESSAGES.get(exc.code or 400, exc.name), exc.code or 400)
    if cors:
        answer = answer.with_headers(*_CORS_ITEMS)
    if sb.dirty:
        sb.save()
    if sb.settings.deliver_immediately:
        sb.deliver_pending()
    return answer


_HTTP_MESSAGES = {404: "Not found", 405: "Method not allowed", 413: "Request is too large"}
