"""The sync client's network layer: httpx's transport interface over httpcore's connection
pool, with every socket operation held to the attempt's deadline.

httpx's ``Timeout`` limits each phase, and httpcore reads a phase's timeout once as the
phase starts (the status line and headers are one phase): an answer whose headers drip in
a byte at a time, each byte inside the read timeout, never ends. Here the network backend
cuts every connect, TLS handshake, write and read to what is left before the deadline that
:meth:`ClientCore.limit <checkout_kit.client._attempts.ClientCore.limit>` put on the request,
so one attempt ends at its deadline whatever the server does. The async client holds the
same deadline with ``asyncio.timeout`` around the whole attempt instead.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import math
import ssl
import time
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

from ..errors import InvalidRequestError

__all__ = ["DeadlineTransport", "environment_proxy"]

#: The deadline (``time.monotonic``) of the attempt this thread is sending, if any.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "checkout_kit_attempt_deadline", default=None)

# httpcore's errors and the httpx errors the client's retry rules are written for.
_HTTPX_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ProtocolError: httpx.ProtocolError,
}


#: httpx's default pool limits.
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20,
                       keepalive_expiry=5.0)


#: The proxies httpcore serves, by the proxy URL's scheme.
_PROXIES: dict[str, Any] = {"http": httpcore.HTTPProxy, "https": httpcore.HTTPProxy,
                            "socks5": httpcore.SOCKSProxy, "socks5h": httpcore.SOCKSProxy}


def _left(timeout: float | None, expired: type[Exception]) -> float | None:
    """``timeout`` cut to what is left before this attempt's deadline; ``expired`` is
    raised once nothing is left (a socket takes 0 as "do not block", not as "time's up")."""
    deadline = _DEADLINE.get()
    if deadline is None or not math.isfinite(deadline):
        return timeout  # no deadline: an http_client with an unlimited Timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the attempt ran past its deadline")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _connected(self._stream.start_tls(
            ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


def _connected(stream: httpcore.NetworkStream) -> httpcore.NetworkStream:
    """``stream``, just connected, held to the deadline from now on. A connection that
    took all the time left ends the attempt as a connect timeout: nothing was sent (the
    first write would otherwise take it for one after sending)."""
    try:
        _left(None, httpcore.ConnectTimeout)
    except httpcore.ConnectTimeout:
        stream.close()
        raise
    return _DeadlineStream(stream)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        return _connected(self._backend.connect_tcp(
            host, port, _left(timeout, httpcore.ConnectTimeout), local_address,
            socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        return _connected(self._backend.connect_unix_socket(
            path, _left(timeout, httpcore.ConnectTimeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


@contextlib.contextmanager
def _within(deadline: float | None, request: httpx.Request) -> Iterator[None]:
    """Hold the socket operations inside to ``deadline``; raise httpx's errors."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    except tuple(_HTTPX_ERRORS) as exc:
        error = next(to for frm, to in _HTTPX_ERRORS.items() if isinstance(exc, frm))
        raise error(str(exc), request=request) from exc
    finally:
        _DEADLINE.reset(token)


class _Body(httpx.SyncByteStream):
    def __init__(self, response: httpcore.Response, deadline: float | None,
                 request: httpx.Request) -> None:
        self._response = response
        self._deadline = deadline
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._response.stream)  # type: ignore[arg-type]
        while True:
            with _within(self._deadline, self._request):
                chunk = next(chunks, None)
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        with _within(self._deadline, self._request):
            self._response.close()


def _exempt(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` exempts ``host``: ``*``, the host, a domain it is in
    (``example.com`` or ``.example.com``), or ``host:port``; an entry may carry a scheme."""
    for entry in no_proxy.lower().split(","):
        entry = entry.strip()
        entry = entry.partition("://")[2] or entry
        name, _, entry_port = entry.partition(":")
        if entry == "*" or (name and (host == name.lstrip(".")
                                      or host.endswith("." + name.lstrip("."))) and (
                not entry_port or entry_port == str(port))):
            return True
    return False


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``, ``HTTP_PROXY``,
    ``ALL_PROXY``, less what ``NO_PROXY`` exempts), read as ``httpx.Client`` reads it: a
    proxy without a scheme is ``http://``. ``None`` to connect directly. A client talks
    to one host, so the choice is made once; pass it to :class:`DeadlineTransport` for
    an ``http_client`` of one's own."""
    parsed = httpx.URL(url)
    proxies = urllib.request.getproxies()
    if _exempt(parsed.host.lower(), parsed.port or (443 if parsed.scheme == "https" else 80),
               proxies.get("no", "")):
        return None
    proxy = proxies.get(parsed.scheme) or proxies.get("all")
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class DeadlineTransport(httpx.BaseTransport):
    """An ``httpx`` transport that ends each request at the deadline the client set on it.

    It sends like ``httpx.HTTPTransport`` (HTTP/1.1, TLS verified against ``verify``, the
    environment's certificate settings, keep-alive ``limits``, an http, https or SOCKS5
    ``proxy``: see :func:`environment_proxy`), and
    cuts every socket operation to the time left before the deadline of the attempt: a
    connect, a TLS handshake, a write, and each read of the headers or the body. A request
    without a deadline (sent by other code) keeps httpx's per-phase timeouts.

    :class:`~checkout_kit.client.CloudPaymentsClient` makes one when it makes its own
    ``httpx.Client``; a shop that passes ``http_client`` keeps the bound by building that
    client on ``DeadlineTransport(proxy=environment_proxy(base_url))`` (httpx reads the
    environment's proxies only for a client without a transport of its own).
    """

    def __init__(
        self, *, verify: ssl.SSLContext | str | bool = True,
        limits: httpx.Limits = _LIMITS,
        proxy: str | None = None,
    ) -> None:
        ssl_context = httpx.create_ssl_context(verify=verify)
        options: dict[str, Any] = {
            "ssl_context": ssl_context, "max_connections": limits.max_connections,
            "max_keepalive_connections": limits.max_keepalive_connections,
            "keepalive_expiry": limits.keepalive_expiry,
            "network_backend": _DeadlineBackend()}
        self._pool: httpcore.ConnectionPool
        if proxy is None:
            self._pool = httpcore.ConnectionPool(**options)
            return
        url = httpx.URL(proxy if "://" in proxy else f"http://{proxy}")
        kind = _PROXIES.get(url.scheme)
        if kind is None:
            raise InvalidRequestError(
                f"unsupported proxy scheme {url.scheme!r} (http, https, socks5, socks5h)",
                "proxy")
        if kind is httpcore.SOCKSProxy and importlib.util.find_spec("socksio") is None:
            raise InvalidRequestError(
                "a SOCKS proxy needs the socksio package: pip install 'httpx[socks]'",
                "proxy")
        self._pool = kind(
            proxy_url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                                   target=b"/"),
            proxy_auth=(url.username, url.password) if url.username else None, **options)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = getattr(request.extensions.get("timeout"), "deadline", None)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host,
                             port=request.url.port, target=request.url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions)
        with _within(deadline, request):
            response = self._pool.handle_request(core_request)
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_Body(response, deadline, request),
                              extensions=response.extensions)

    def close(self) -> None:
        self._pool.close()
