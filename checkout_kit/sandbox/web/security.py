"""What keeps a running sandbox from being driven by pages and hosts it does not serve.

The sandbox is a developer tool, but it listens on a port and any web page the
developer opens can send requests to it. Three rules, applied by :class:`Guard` in
front of every request, and one for notifications:

* **Host.** A request is answered only when its ``Host`` is one the sandbox may be
  reached by (:func:`~checkout_kit.sandbox.rules.policy.host_allowed`): a loopback
  address or any IP literal, ``localhost`` and ``*.localhost``, a name public DNS
  cannot resolve (no dot, or under ``.test``, ``.example``, ``.invalid``: what
  in-process tests use, like ``http://sandbox``), the host of
  ``SandboxSettings.terminal_url`` (``sandbox.local``) or a name in
  ``SandboxSettings.allowed_hosts`` (``"*"``: any).
  Everything else is refused with 403: that is what defeats DNS rebinding, where an
  attacker's name is made to resolve to 127.0.0.1 so that its page may read the
  sandbox. IP literals are safe for that purpose: a browser sends one only to a page
  loaded from that very address.
* **Controls.** A ``POST`` under ``/_sandbox/`` must be ``Content-Type:
  application/json`` (415 otherwise): a cross-site form or a ``text/plain`` fetch cannot
  set that type, and a fetch that does must pass a CORS preflight the controls never
  grant. Other methods than GET/HEAD/POST need a preflight anyway.
* **Control token.** With ``SandboxSettings.control_token`` set (``checkout-kit sandbox
  --expose`` sets one), every ``/_sandbox/`` request needs it: the ``X-Sandbox-Token``
  header, ``Authorization: Bearer <token>``, or the cookie that opening
  ``/_sandbox/?token=<token>`` in a browser sets (``SameSite=Strict``, so cross-site
  requests do not carry it; its path is the controls' under the sandbox's root, a
  mounted sandbox's prefix included).
* **Notification targets** (:func:`~checkout_kit.sandbox.rules.policy.target_refusal`,
  applied when notifications go out
  over the network): loopback is allowed (a shop under development runs there),
  but not by an exposed sandbox unless ``SandboxSettings.loopback_notification_targets``;
  link-local and cloud metadata addresses (``169.254.0.0/16``, ``fe80::/10``,
  ``fd00:ec2::254``), unspecified, multicast and reserved ones are refused; other
  non-global ranges (``10/8``, ``172.16/12``, ``192.168/16``, ``fc00::/7``,
  ``100.64/10``...) only with ``SandboxSettings.private_notification_targets``. A name is
  resolved once and the connection goes to the very address that was checked, so a
  name cannot change its answer between the check and the request. A refused target
  is never contacted, so the inspector, which shows what a target answered, only ever
  shows answers of allowed targets.
"""

from __future__ import annotations

import hmac
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import httpx
from werkzeug.http import parse_cookie, parse_options_header

from ..rules.policy import host_allowed, ip_or_none, target_refusal, url_host
from .answers import error_response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ..rules.settings import SandboxSettings

__all__ = ["CONTROL_PREFIX", "TOKEN_COOKIE", "Guard", "Target", "TargetRefused", "pin_target"]

#: The one definition of where the controls live (controls, home, app and CLI use it).
CONTROL_PREFIX = "/_sandbox"
TOKEN_COOKIE = "checkout_kit_sandbox_token"  # noqa: S105 - a cookie name, not a secret
TOKEN_HEADER = "HTTP_X_SANDBOX_TOKEN"  # noqa: S105 - a header name, not a secret


# --------------------------------------------------------------------------- the guard


def _refuse(environ: WSGIEnvironment, start_response: StartResponse, status: int,
            message: str, headers: Iterable[tuple[str, str]] = ()) -> Iterable[bytes]:
    return error_response(message, status, headers)(environ, start_response)


class Guard:
    """WSGI middleware in front of the whole sandbox: the Host rule, JSON-only control
    POSTs and the control token (see the module docstring). Settings are read on
    every request, so that changing them takes effect at once."""

    def __init__(self, app: WSGIApplication, settings: Callable[[], SandboxSettings]) -> None:
        self.app = app
        self.settings = settings

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        settings = self.settings()
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or ""
        names = (*settings.allowed_hosts, url_host(settings.terminal_url))
        if not host_allowed(host, names):
            return _refuse(
                environ, start_response, 403,
                "This sandbox does not answer to that Host name; allow it with "
                "--allowed-host (SandboxSettings.allowed_hosts)")
        path = environ.get("PATH_INFO", "") or ""
        if path != CONTROL_PREFIX and not path.startswith(CONTROL_PREFIX + "/"):
            return self.app(environ, start_response)
        token = settings.control_token
        cookie: list[tuple[str, str]] = []
        if token:
            given = _given_token(environ)
            if given is None or not hmac.compare_digest(given.encode(), token.encode()):
                return _refuse(environ, start_response, 401,
                               "The sandbox controls need the control token",
                               [("WWW-Authenticate", 'Bearer realm="checkout_kit sandbox"')])
            if _query_token(environ) is not None:
                # Under the sandbox's own root: a mounted sandbox's prefix too.
                path = f"{environ.get('SCRIPT_NAME', '')}{CONTROL_PREFIX}/"
                cookie = [("Set-Cookie", f"{TOKEN_COOKIE}={token}; Path={path}; "
                                         "HttpOnly; SameSite=Strict")]
        if environ.get("REQUEST_METHOD", "GET").upper() == "POST":
            mimetype, _ = parse_options_header(environ.get("CONTENT_TYPE", ""))
            if mimetype.lower() != "application/json":
                return _refuse(environ, start_response, 415,
                               "The sandbox controls take Content-Type: application/json")
        if not cookie:
            return self.app(environ, start_response)

        def with_cookie(status: str, headers: list[tuple[str, str]],
                        exc_info: Any = None) -> Any:
            return start_response(status, [*headers, *cookie], exc_info)

        return self.app(environ, with_cookie)


def _query_token(environ: WSGIEnvironment) -> str | None:
    if environ.get("REQUEST_METHOD", "GET").upper() not in ("GET", "HEAD"):
        return None
    values = parse_qs(environ.get("QUERY_STRING", "")).get("token")
    return values[0] if values else None


def _given_token(environ: WSGIEnvironment) -> str | None:
    header = environ.get(TOKEN_HEADER)
    if header:
        return str(header)
    scheme, _, credentials = str(environ.get("HTTP_AUTHORIZATION", "")).partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    cookie = parse_cookie(environ.get("HTTP_COOKIE", "")).get(TOKEN_COOKIE)
    if cookie:
        return cookie
    return _query_token(environ)


# --------------------------------------------------------------------------- notification targets


class TargetRefused(httpx.ConnectError):
    """A notification address whose host is not an allowed target (nothing was sent)."""


Resolver = Callable[[str, int], list[str]]


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


Target = tuple[httpx.URL, dict[str, str], dict[str, Any]]


def pin_target(
    url: httpx.URL, *, allow_private: bool, allow_loopback: bool = True,
    resolve: Resolver = _resolve,
) -> list[Target]:
    """Resolve ``url``'s host and check every address it has; return, for each address
    in the resolver's order, the URL to send to (the host replaced by the address), the
    ``Host`` header and the request extensions (``sni_hostname``) that keep the name for
    the server and for TLS. Try them in turn, as a connection to the name would.
    Raise :class:`TargetRefused` when any address is refused, ``OSError`` when the
    name does not resolve."""
    host = url.host
    literal = ip_or_none(host)
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = [host] if literal is not None else _resolve_checked(resolve, host, port)
    for text in addresses:
        ip = ip_or_none(text.split("%", 1)[0])
        problem = "an unreadable address" if ip is None else target_refusal(
            ip, allow_private=allow_private, allow_loopback=allow_loopback)
        if problem is not None:
            raise TargetRefused(f"notification target {host} refused: {problem}")
    if literal is not None:
        return [(url, {}, {})]
    netloc = url.netloc.decode("ascii")
    unique = dict.fromkeys(text.split("%", 1)[0] for text in addresses)
    return [(url.copy_with(host=ip), {"Host": netloc}, {"sni_hostname": host}) for ip in unique]


def _resolve_checked(resolve: Resolver, host: str, port: int) -> list[str]:
    addresses = resolve(host, port)
    if not addresses:
        raise OSError(f"{host} has no address")
    return addresses
