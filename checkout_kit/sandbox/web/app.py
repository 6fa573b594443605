"""``create_sandbox_app``: the sandbox as a Flask application."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from ..._resources import resource_dir
from ..rules.clock import VirtualClock
from ..rules.settings import DEFAULT_PUBLIC_ID, DEFAULT_SECRET, SandboxSettings
from ..runtime import Sandbox
from . import acs, api, browser, controls, faults, home, icon, orderpage, security
from .answers import error_response

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

__all__ = ["EXTENSION_KEY", "create_sandbox_app", "sandbox_of", "serve_until_interrupted",
           "start_worker"]

log = logging.getLogger("checkout_kit.sandbox")

EXTENSION_KEY = "checkout_kit_sandbox"
#: The envelope's ``Message`` for the HTTP errors an API client can cause.
_HTTP_MESSAGES = {404: "Not found", 405: "Method not allowed", 413: "Request is too large"}


def create_sandbox_app(
    *,
    public_id: str = DEFAULT_PUBLIC_ID,
    api_secret: str = DEFAULT_SECRET,
    keys: Mapping[int, Any] | None = None,
    clock: VirtualClock | None = None,
    notification_transport: httpx.BaseTransport | None = None,
    state_path: str | Path | None = None,
    settings: SandboxSettings | None = None,
    randbytes: Callable[[int], bytes] | None = None,
    **options: Any,
) -> Flask:
    """Make a sandbox app.

    ``keys`` maps key versions to RSA private keys (PEM bytes/str or key objects);
    without it one 2048-bit key is generated as version 4 (kept in ``state_path``
    when given, so that a restarted sandbox opens the same packets).
    ``notification_transport`` routes notifications (``httpx.WSGITransport(app=shop)``
    or ``httpx.MockTransport``); ``clock`` is a :class:`VirtualClock`. Other keyword
    arguments set :class:`SandboxSettings` fields (``save_cards="always"``,
    ``duplicate_notifications=True``...).

    The :class:`Sandbox` is ``app.extensions["checkout_kit_sandbox"]``
    (:func:`sandbox_of`).
    """
    if settings is None:
        settings = SandboxSettings(public_id=public_id, api_secret=api_secret, **options)
    elif options:
        raise TypeError("pass either settings or setting keywords, not both")
    sandbox = Sandbox(
        settings, keys=keys, clock=clock, notification_transport=notification_transport,
        state_path=state_path, randbytes=randbytes,
    )
    app = api.SandboxFlask(
        "checkout_kit.sandbox",
        template_folder=str(resource_dir("templates")),
        # No static folder: the scripts are served configured by browser.py; a raw
        # copy of checkout.js (CONFIG = null) must not be reachable.
        static_folder=None,
    )
    app.config["MAX_CONTENT_LENGTH"] = api.MAX_BODY
    app.extensions[EXTENSION_KEY] = sandbox
    sandbox.app = app
    for blueprint in (api.bp, acs.bp, controls.bp, orderpage.bp, browser.bp, home.bp,
                      icon.bp):
        app.register_blueprint(blueprint)
    if sandbox.store is not None:
        # The pages read the state without the lock: first take in what the other
        # processes on the state file wrote.
        app.before_request(sandbox.sync)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _crash)
    faults.install(app, sandbox.faults, lambda: sandbox.settings.max_concurrent_requests,
                   lambda: api.is_api_path(request.path))
    # Outermost: a request the Host rule or the controls' rules refuse reaches nothing.
    app.wsgi_app = security.Guard(  # type: ignore[method-assign]
        app.wsgi_app, lambda: sandbox.settings)
    return app


def sandbox_of(app: Flask) -> Sandbox:
    """The :class:`Sandbox` behind a sandbox app."""
    sandbox: Sandbox = app.extensions[EXTENSION_KEY]
    return sandbox


def _http_error(exc: HTTPException) -> BaseResponse | HTTPException:
    # An ordinary HTTP answer (404, 405, 413...): the envelope for the API and the JSON
    # controls, werkzeug's own page anywhere else; never the 500 of _crash.
    is_api = api.is_api_path(request.path)
    if not (is_api or request.path.startswith(security.CONTROL_PREFIX + "/")):
        return exc
    code = exc.code or 500
    message = _HTTP_MESSAGES.get(code, exc.name) if is_api else exc.name
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return error_response(message, code, headers)


def _crash(exc: Exception) -> Response:
    # A bug in the sandbox: log it (requests carry no card data), answer in the API's
    # envelope on API paths. Under app.testing or PROPAGATE_EXCEPTIONS a test must see
    # the bug itself, as Flask would show it without this handler.
    if current_app.testing or current_app.config["PROPAGATE_EXCEPTIONS"]:
        raise exc
    log.exception("sandbox error on %s %s", request.method, request.path)
    if api.is_api_path(request.path):
        return error_response("Sandbox internal error", 500)
    return Response("Sandbox internal error", status=500, mimetype="text/plain")


def start_worker(sandbox: Sandbox, interval: float = 1.0) -> threading.Event:
    """Run :meth:`Sandbox.run_due` every ``interval`` real seconds in a daemon thread
    (for a long-running sandbox whose clock flows). Set the returned event to stop."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                sandbox.run_due()
            except Exception:
                log.exception("sandbox worker failed")

    threading.Thread(target=loop, name="sandbox-worker", daemon=True).start()
    return stop


def serve_until_interrupted(server: BaseWSGIServer, sandbox: Sandbox) -> None:
    """Serve ``server`` until Ctrl-C with ``sandbox``'s worker running (the command
    line's sandbox and demo shop); then stop the worker, close the server, and save
    and close the sandbox, so that a restart finds its state."""
    stop = start_worker(sandbox)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        pass
    finally:
        stop.set()
        server.server_close()
        sandbox.save()
        sandbox.close()
