"""The server API of the sandbox: the gateway's endpoints as Flask routes (docs/gateway.md §3).

One table, :data:`ROUTES`, says for each path which operation runs and who may call
it: the merchant (HTTP Basic ``PublicId:ApiSecret``), or also a browser or mobile
SDK with only the Public ID (``publicId`` query parameter or ``PublicId`` body
field; those endpoints answer CORS preflights). :func:`register` turns each row into
an ordinary Flask route of the blueprint :data:`bp`. Bodies are JSON or form-encoded
(chosen by ``Content-Type``). Answers are the ``{Success, Message, Model}``
envelope written by :mod:`checkout_kit.jsoncodec`; a refused request is
``Success: false`` with a ``Message`` (HTTP 200 for validation errors, as the gateway
does; 400 for an unreadable body; 401 for bad credentials), never a 500.

``X-Request-ID``: the first processed answer for a (Public ID, request id) pair is
stored for one virtual hour and replayed for repeats without running anything
again.

The gateway's paths ignore case (``/Payments/Charge``): :class:`SandboxFlask` matches
API paths in lower case.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, Flask, Request, Response, current_app, request
from werkzeug.routing import MapAdapter

from ..rules.params import Params, RequestError, read_json
from ..rules.records import StoredResponse
from ..runtime import Sandbox
from .answers import envelope_response, error_response, json_response

__all__ = [
    "API_PREFIXES",
    "MAX_BODY",
    "ROUTES",
    "Route",
    "SandboxFlask",
    "bp",
    "envelope_response",
    "get_sandbox",
    "is_api_path",
]

#: Paths (lower case) of the gateway API; the gateway's routing ignores case.
API_PREFIXES = ("/test", "/payments/", "/v2/", "/subscriptions/", "/orders/", "/site/")

#: Largest request body the sandbox reads (the gateway's own limit is unpublished).
MAX_BODY = 1024 * 1024
_MAX_FORM_FIELDS = 150_000

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, X-Request-ID, MobileSDKSource, Authorization",
    "Access-Control-Max-Age": "600",
}

bp = Blueprint("cp_api", __name__)


def is_api_path(path: str) -> bool:
    """Whether ``path`` (any case) is one of the gateway API's."""
    return path.lower().startswith(API_PREFIXES)


class SandboxFlask(Flask):
    """The sandbox's Flask app: API paths are matched in lower case."""

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        """Flask's URL adapter, matching the gateway API's paths whatever their case."""
        adapter = super().create_url_adapter(request)
        if adapter is not None and request is not None and is_api_path(adapter.path_info):
            adapter.path_info = adapter.path_info.lower()
        return adapter


def get_sandbox() -> Sandbox:
    """The :class:`~checkout_kit.sandbox.runtime.Sandbox` of the current app."""
    sandbox: Sandbox = current_app.extensions["checkout_kit_sandbox"]
    return sandbox


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Ctx:
    """What an operation may need besides its parameters."""

    kind: str = ""

    @property
    def base_url(self) -> str:
        """``http://host/`` as the caller reached us (for AcsUrl and order URLs)."""
        return request.host_url

    def host(self) -> str:
        """:attr:`base_url`, as a callable for operations that rarely need it."""
        return self.base_url

    @property
    def public_caller_ip(self) -> str | None:
        """The caller's address when it called with the Public ID alone (a browser or
        a mobile SDK, which cannot know its public IP), else ``None``."""
        if "Authorization" in request.headers:
            return None
        return request.remote_addr or None


Handler = Callable[[Sandbox, Params, Ctx], "dict[str, Any] | Response"]


@dataclass(frozen=True)
class Route:
    """One endpoint: its operation, who may call it, and how."""

    handler: Handler
    auth: str = "secret"  # "secret" | "public" (Public ID alone suffices) | "none"
    methods: tuple[str, ...] = ("POST",)
    #: a mutating call: its answer is stored under X-Request-ID and replayed to a repeat
    #: (a read answers the state of now, and stores nothing)
    idempotent: bool = False


def _test(sb: Sandbox, p: Params, ctx: Ctx) -> dict[str, Any]:
    return {"Success": True, "Message": sb.random_hex(32)}


def _public_key(sb: Sandbox, p: Params, ctx: Ctx) -> dict[str, Any]:
    return {"Pem": sb.public_key_pem(), "Version": sb.settings.key_version}


def _callback(sb: Sandbox, p: Params, ctx: Ctx) -> Response:
    # Only compared with what the sandbox issued, never kept: odd text cannot match.
    location = sb.three_ds_callback(
        p.required_text("MD", max_length=8192, replace_invalid=True),
        p.text("PaRes", max_length=8192, replace_invalid=True))
    return Response(b"", status=302, headers={"Location": location},
                    content_type="text/plain; charset=utf-8")


ROUTES: dict[str, Route] = {
    "/test": Route(_test, methods=("POST", "GET")),
    "/payments/cards/charge": Route(
        lambda sb, p, c: sb.finish(sb.pay_by_cryptogram(
            p, two_stage=False, base_url=c.host, default_ip=c.public_caller_ip)), "public",
        idempotent=True),
    "/payments/cards/auth": Route(
        lambda sb, p, c: sb.finish(sb.pay_by_cryptogram(
            p, two_stage=True, base_url=c.host, default_ip=c.public_caller_ip)), "public",
        idempotent=True),
    "/payments/cards/post3ds": Route(lambda sb, p, c: sb.post3ds(p), idempotent=True),
    "/payments/tokens/charge": Route(
        lambda sb, p, c: sb.finish(sb.pay_by_token(p, two_stage=False)), idempotent=True),
    "/payments/tokens/auth": Route(
        lambda sb, p, c: sb.finish(sb.pay_by_token(p, two_stage=True)), idempotent=True),
    "/payments/confirm": Route(lambda sb, p, c: sb.confirm(p), idempotent=True),
    "/payments/void": Route(lambda sb, p, c: sb.void(p), idempotent=True),
    "/payments/refund": Route(lambda sb, p, c: sb.refund(p), idempotent=True),
    "/payments/get": Route(lambda sb, p, c: sb.get(p)),
    "/payments/find": Route(lambda sb, p, c: sb.find(p, v2=False)),
    "/v2/payments/find": Route(lambda sb, p, c: sb.find(p, v2=True)),
    "/payments/list": Route(lambda sb, p, c: sb.list_day(p)),
    "/v2/payments/list": Route(lambda sb, p, c: sb.list_period(p)),
    "/payments/tokens/list": Route(lambda sb, p, c: sb.list_tokens(p)),
    "/subscriptions/create": Route(lambda sb, p, c: sb.subscriptions.create(p), idempotent=True),
    "/subscriptions/get": Route(lambda sb, p, c: sb.subscriptions.get(p)),
    "/subscriptions/find": Route(lambda sb, p, c: sb.subscriptions.find(p)),
    "/subscriptions/update": Route(lambda sb, p, c: sb.subscriptions.update(p), idempotent=True),
    "/subscriptions/cancel": Route(lambda sb, p, c: sb.subscriptions.cancel(p), idempotent=True),
    "/orders/create": Route(
        lambda sb, p, c: sb.orders.create(p, base_url=c.base_url), idempotent=True),
    "/orders/cancel": Route(lambda sb, p, c: sb.orders.cancel(p), idempotent=True),
    "/site/notifications/<kind>/get": Route(
        lambda sb, p, c: sb.notification_settings(c.kind)),
    "/site/notifications/<kind>/update": Route(
        lambda sb, p, c: sb.update_notification_settings(c.kind, p), idempotent=True),
    "/payments/publickey": Route(_public_key, "none", ("GET",)),
    "/payments/threedscallback": Route(_callback, "none"),
}


# --------------------------------------------------------------------------- request parsing


def _charset(options: dict[str, str]) -> str:
    charset = options.get("charset", "utf-8").lower()
    return {"windows-1251": "cp1251", "cp1251": "cp1251"}.get(charset, "utf-8")


def _form(raw: bytes, charset: str) -> dict[str, Any]:
    """An url-encoded body in ``charset`` (the gateway takes Windows-1251 too); a name
    sent several times gets the list of its values."""
    try:
        pairs = parse_qsl(raw.decode(charset), keep_blank_values=True,
                          max_num_fields=_MAX_FORM_FIELDS)
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


def read_body() -> dict[str, Any]:
    """The request body as a dict; :class:`RequestError` (400/415) if unreadable."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    mimetype = request.mimetype
    looks_json = raw.lstrip()[:1] in (b"{", b"[")
    if "json" in mimetype or (looks_json and mimetype in ("", "text/plain")):
        value = read_json(raw)
        if not isinstance(value, dict):
            raise RequestError("The request body must be a JSON object", 400)
        return value
    if mimetype in ("application/x-www-form-urlencoded", "", "text/plain"):
        return _form(raw, _charset(request.mimetype_params))
    if mimetype == "multipart/form-data":
        form = request.form.to_dict(flat=False)
        return {k: v[0] if len(v) == 1 else v for k, v in form.items()}
    raise RequestError("Unsupported Content-Type", 415)


# --------------------------------------------------------------------------- auth


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


def authorized(sb: Sandbox, route: Route, params: Params) -> bool:
    """Whether the caller may use ``route``."""
    if route.auth == "none":
        return True
    if "Authorization" in request.headers:
        auth = request.authorization
        return (
            auth is not None and auth.type == "basic"
            and _same(auth.username or "", sb.public_id)
            and _same(auth.password or "", sb.api_secret)
        )
    if route.auth == "public":
        try:
            given = params.text("PublicId", max_length=255)
        except RequestError:
            given = None
        return given is not None and _same(given, sb.public_id)
    return False


# --------------------------------------------------------------------------- dispatch

def _run(sb: Sandbox, route: Route, params: Params, ctx: Ctx) -> Response:
    try:
        result = route.handler(sb, params, ctx)
    except RequestError as exc:
        return error_response(exc.message, exc.status)
    return result if isinstance(result, Response) else envelope_response(result)


#: A stored answer's status while its request still runs (never an HTTP status).
_RUNNING = 0
#: How long a request waits for another process running the same X-Request-ID before
#: it answers 503 (the client retries, and then gets the stored answer), and after how
#: long a run that never finished (its process died) no longer holds the id.
_WAIT_FOR_RUN = 30.0
_RUN_ABANDONED = timedelta(minutes=2)


def _replay_or_run(sb: Sandbox, route: Route, params: Params, ctx: Ctx) -> Response:
    request_id = request.headers.get("X-Request-ID")
    if not route.idempotent or not request_id:
        return _run(sb, route, params, ctx)
    key = f"{sb.public_id}\x00{request_id[:255]}"
    # One process runs one request id at a time (request_locks); other processes on
    # the same state file see the id taken: its answer's place is held, under the
    # state lock, before the run, and they wait for the answer to replay it.
    with sb.request_locks.hold(key):
        waited_until = time.monotonic() + _WAIT_FOR_RUN
        while True:
            with sb.lock:
                stored = sb.state.idempotency.get(key)
                now = sb.now()
                if stored is None or now - stored.created > (
                        _RUN_ABANDONED if stored.status == _RUNNING
                        else sb.settings.idempotency_ttl):
                    sb.state.remember_response(key, StoredResponse(
                        status=_RUNNING, body="", headers={}, created=now))
                    break
                if stored.status != _RUNNING:
                    return json_response(
                        stored.body.encode("utf-8"), stored.status,
                        {**stored.headers, "X-Sandbox-Replayed": "true"})
            if time.monotonic() > waited_until:
                return error_response("A request with this X-Request-ID is still running; "
                                      "try again", 503)
            time.sleep(0.05)
        try:
            answer = _run(sb, route, params, ctx)
        except BaseException:
            with sb.lock:
                sb.state.forget_response(key)
            raise
        with sb.lock:
            sb.state.remember_response(key, StoredResponse(
                status=answer.status_code, body=answer.get_data(as_text=True),
                headers={k: v for k, v in answer.headers.items() if k == "Location"},
                created=sb.now(),
            ))
        return answer


def _view(route: Route) -> Callable[..., Response]:
    def view(kind: str = "") -> Response:
        sb = get_sandbox()
        cors = route.auth != "secret"
        if request.method == "OPTIONS":
            headers = CORS_HEADERS if cors else {
                "Allow": ", ".join((*route.methods, "OPTIONS"))}
            return Response(b"", status=204, headers=headers,
                            content_type="text/plain; charset=utf-8")
        try:
            params = Params(request.args.to_dict(), read_body())
            if authorized(sb, route, params):
                answer = _replay_or_run(sb, route, params, Ctx(kind))
            else:
                answer = error_response("Authentication failed", 401)
                answer.headers["WWW-Authenticate"] = 'Basic realm="CloudPayments"'
        except RequestError as exc:
            answer = error_response(exc.message, exc.status)
        if cors:
            answer.headers.update(CORS_HEADERS)
        return answer

    return view


def register(blueprint: Blueprint) -> None:
    """Add a Flask route for each row of :data:`ROUTES` to ``blueprint``."""
    for path, route in ROUTES.items():
        blueprint.add_url_rule(
            path, endpoint=path.strip("/").replace("/", "_").replace("<kind>", "kind"),
            view_func=_view(route), methods=[*route.methods, "OPTIONS"],
            provide_automatic_options=False,
        )


@bp.after_request
def _commit(response: Response) -> Response:
    """Write what the request changed, then send the notifications it queued (before
    the answer leaves, as the gateway sends them at the end of the operation)."""
    get_sandbox().commit()
    return response


register(bp)
