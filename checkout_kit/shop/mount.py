"""``mount_sandbox``: the offline sandbox inside the shop's own app, at a prefix.

One process, one port: the sandbox answers under ``/sandbox`` (and its widget's root
paths), the kit's API client calls it in-process, and a sandbox made here sends its
notifications to the app's routes in-process and keeps its state in the instance
folder (docs/shop.md, "The sandbox in the same app").
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from flask import Flask, has_request_context
from flask import request as flask_request
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.routing import Map

from .config import ConfigurationError
from .state import EXTENSION_KEY

if TYPE_CHECKING:
    from ..sandbox import Sandbox

__all__ = ["MOUNTED", "MOUNTED_SHOP_ORIGIN", "NOTIFY_MOUNTED", "SANDBOX_STATE_FILE",
           "WIDGET_ROOT_PATHS", "mount_sandbox", "notify_mounted_sandbox"]


class _SandboxMount:
    """WSGI: ``prefix`` and the widget's root paths go to the sandbox, the rest to the shop.

    The sandbox's widget script opens its frame, loads the checkout script and calls
    the API at the root of its origin (:data:`WIDGET_ROOT_PATHS`), so a sandbox sharing
    the shop's origin must also answer those paths there. ``/favicon.ico`` goes to the
    sandbox too while none of the shop's ``routes`` takes it: a browser asks the origin
    for it on every page that names no icon (the shop's, the sandbox's JSON views) and
    logs the 404 in its console.
    """

    def __init__(self, shop: Any, sandbox: Any, prefix: str, root_paths: tuple[str, ...],
                 routes: Map | None = None) -> None:
        self.dispatch = DispatcherMiddleware(shop, {prefix: sandbox})
        self.sandbox = sandbox
        self.root_paths = root_paths
        self.routes = routes

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(self.root_paths) or (path == "/favicon.ico" and self._no_icon()):
            return self.sandbox(environ, start_response)
        return self.dispatch(environ, start_response)

    def _no_icon(self) -> bool:
        # Asked at each request, not at mount time: the shop's routes are added after.
        if self.routes is None:
            return False
        try:
            self.routes.bind("").match("/favicon.ico", method="GET")
        except NotFound:
            return True
        except HTTPException:  # a redirect, another method: the path is the shop's
            return False
        return False


class _MountedSandboxTransport(httpx.WSGITransport):
    """The shop's in-process calls to a mounted sandbox, made as if to the origin the
    payer's browser reached the shop at (during a request): the sandbox then answers
    an absolute ``AcsUrl`` on that origin, which the shop's 3-D Secure page posts to
    like any bank's. Outside a request the configured API URL stays."""

    def __init__(self, app: Flask) -> None:
        super().__init__(app=app)
        self.sandbox_app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # Only a Host the sandbox answers (its browser pages would get 403 on another,
        # so no bank page there either); else the API call still goes through as before.
        if has_request_context() and self._answered(flask_request.host):
            origin = httpx.URL(flask_request.host_url)
            request.url = request.url.copy_with(scheme=origin.scheme, host=origin.host,
                                                port=origin.port)
            request.headers["Host"] = flask_request.host
        return super().handle_request(request)

    def _answered(self, host: str) -> bool:
        from ..sandbox import sandbox_of
        from ..sandbox.rules.policy import host_allowed, url_host

        settings = sandbox_of(self.sandbox_app).settings
        return host_allowed(host, (*settings.allowed_hosts, url_host(settings.terminal_url)))


#: The paths the sandbox's widget uses at the root of its origin.
WIDGET_ROOT_PATHS = ("/widget/", "/payments/", "/checkout.js")


#: ``app.extensions`` key: the kit points a sandbox that ``mount_sandbox`` made at the
#: app's notification routes.
NOTIFY_MOUNTED = "checkout_kit.notify_mounted_sandbox"
#: The address host the mounted sandbox sends notifications to (in-process: any host).
MOUNTED_SHOP_ORIGIN = "http://shop.invalid"
#: ``app.extensions`` key: the sandbox ``mount_sandbox`` mounted (any, made there or not).
MOUNTED = "checkout_kit.mounted_sandbox"


#: The mounted sandbox's state file, in the app's instance folder.
SANDBOX_STATE_FILE = "checkout_kit_sandbox.sqlite3"


def mount_sandbox(app: Flask, sandbox_app: Flask | None = None, *, prefix: str = "/sandbox",
                  widget_paths: bool = True, notify: bool = True,
                  **sandbox_options: Any) -> Flask:
    """Serve a sandbox under ``prefix`` of ``app`` (one process, one port) and point
    the ``CHECKOUT_KIT_*`` settings at it. Call before :meth:`CheckoutKit.init_app`.

    Without ``sandbox_app`` one is created (``sandbox_options`` go to
    :func:`~checkout_kit.sandbox.create_sandbox_app`). It keeps its state in
    :data:`SANDBOX_STATE_FILE` of the app's instance folder, next to the default
    ledger, unless ``state_path`` says elsewhere (``state_path=None``: in memory, for
    tests). Every process of the app and every ``flask checkout`` command then shares
    one sandbox, which survives restarts and never issues a transaction id twice. Its
    bank page is
    ``<prefix>/acs``, on the shop's own origin: during a request the sandbox's
    ``AcsUrl`` is that absolute URL on the origin the payer reached the shop at. With
    ``widget_paths`` the sandbox also answers ``/widget/…``, ``/payments/…`` and
    ``/checkout.js`` at the root (:data:`WIDGET_ROOT_PATHS`), where its widget looks
    for them; the shop's own routes must not use those. A shop with no
    ``/favicon.ico`` route gets the sandbox's icon there.
    The server side calls the sandbox in-process (``httpx.WSGITransport``).
    With ``notify`` a sandbox made here sends every notification type (Check too) to
    the app's notification routes, in-process: :meth:`CheckoutKit.init_app` sets the
    addresses as the merchant account would (the API cannot set Check,
    docs/gateway.md §3.5). Returns the sandbox app.
    """
    from ..sandbox import create_sandbox_app, sandbox_of

    if EXTENSION_KEY in app.extensions:
        raise ConfigurationError(
            "CHECKOUT_KIT_SANDBOX", "mount_sandbox(app) was called after CheckoutKit(app) "
            "(or init_app), which has read the settings already: call mount_sandbox first")
    notify_here = False
    if sandbox_app is None:
        sandbox_options.setdefault("acs_url", f"{prefix}/acs")
        if "state_path" not in sandbox_options:
            instance = Path(app.instance_path)
            instance.mkdir(parents=True, exist_ok=True)
            sandbox_options["state_path"] = instance / SANDBOX_STATE_FILE
        if notify and "notification_transport" not in sandbox_options:
            sandbox_options["notification_transport"] = httpx.WSGITransport(app=app)
            notify_here = True
        sandbox_app = create_sandbox_app(**sandbox_options)
    sandbox = sandbox_of(sandbox_app)
    app.extensions[MOUNTED] = sandbox
    if notify_here:
        app.extensions[NOTIFY_MOUNTED] = sandbox
    app.wsgi_app = _SandboxMount(  # type: ignore[method-assign]
        app.wsgi_app, sandbox_app, prefix, WIDGET_ROOT_PATHS if widget_paths else (),
        app.url_map)
    app.config.update({
        "CHECKOUT_KIT_SANDBOX": True,
        "CHECKOUT_KIT_SANDBOX_URL": prefix,
        "CHECKOUT_KIT_API_TRANSPORT": _MountedSandboxTransport(app=sandbox_app),
        "CHECKOUT_KIT_API_URL": "http://sandbox.invalid",
    })
    app.config.setdefault("CHECKOUT_KIT_PUBLIC_ID", sandbox.public_id)
    app.config.setdefault("CHECKOUT_KIT_API_SECRET", sandbox.api_secret)
    return sandbox_app


def notify_mounted_sandbox(sandbox: Sandbox, url_prefix: str) -> None:
    """Point a sandbox mounted in the app at the app's notification routes, as its
    merchant account would: Check included, which the API cannot set. A type already
    sent somewhere (set by ``flask checkout notifications configure``, or by an
    earlier start: the state is kept) is left as it is."""
    from ..notifications import NotificationType

    with sandbox.lock:
        for kind in NotificationType:
            current = sandbox.state.notification_settings.get(kind.value)
            if current is not None and current.is_enabled and current.address:
                continue
            sandbox.configure_notification(
                kind, f"{MOUNTED_SHOP_ORIGIN}{url_prefix}/notifications/{kind.value.lower()}",
                http_method="POST")
