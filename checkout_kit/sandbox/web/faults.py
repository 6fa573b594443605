"""Fault injection and the WSGI layer in front of the API.

:class:`SandboxMiddleware` wraps the Flask app. For API paths it

* lower-cases the path (the gateway's routing ignores case: ``/Payments/Charge``);
* applies injected faults, in this order: ``latency`` (sleep, then go on),
  ``status`` (answer 429 or 5xx *without* processing), ``drop`` (process the
  request, commit its effects, then break the connection instead of answering);
* answers 429 when more than ``max_concurrent_requests`` are in flight (the test
  terminal's cap is 5, reference §3.1).

A dropped connection is modelled, for in-process clients (``httpx.WSGITransport``),
by a response body that raises :class:`httpx.ReadError` when read: exactly what
httpx raises when a socket closes before the answer. Under a real server
(``checkout-kit sandbox``) the same body makes werkzeug close the connection after
the headers, which clients see as a truncated response (a protocol error).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import httpx

from ..rules.params import dumps

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ..rules.engine import Sandbox

__all__ = ["FAULT_KINDS", "Fault", "Faults", "SandboxMiddleware"]

log = logging.getLogger("checkout_kit.sandbox")

FAULT_KINDS = ("latency", "status", "drop")
API_PREFIXES = ("/test", "/payments/", "/v2/", "/subscriptions/", "/orders/", "/site/")


@dataclass
class Fault:
    """One injected fault. ``times`` is how many requests it hits (``None``: until
    removed); ``path`` limits it to paths starting with that prefix."""

    id: int
    kind: str
    path: str | None = None
    times: int | None = 1
    status: int = 500
    latency_ms: int = 0
    retry_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


class Faults:
    """The faults waiting to hit requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next = 1

    def add(
        self,
        kind: str,
        *,
        path: str | None = None,
        times: int | None = 1,
        status: int = 500,
        latency_ms: int = 0,
        retry_after: float | None = None,
    ) -> Fault:
        """Inject a fault (see the module docstring)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}")
        if kind == "status" and not (status == 429 or 500 <= status <= 599):
            raise ValueError("a status fault is 429 or 5xx")
        if times is not None and times < 1:
            raise ValueError("times must be positive")
        if not 0 <= latency_ms <= 60_000:
            raise ValueError("latency_ms must be 0-60000")
        if retry_after is not None and not 0 <= retry_after <= 86_400:  # NaN too
            raise ValueError("retry_after must be 0-86400 seconds")
        with self._lock:
            fault = Fault(self._next, kind, path.lower() if path else None, times, status,
                          latency_ms, retry_after)
            self._next += 1
            self._faults.append(fault)
            return fault

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def list(self) -> list[Fault]:
        """The faults still armed."""
        with self._lock:
            return list(self._faults)

    def take(self, kind: str, path: str) -> Fault | None:
        """The first armed fault of ``kind`` matching ``path``, used up once."""
        if not self._faults:  # the usual case, checked without taking the lock
            return None
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and (fault.path is None or path.startswith(fault.path)):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None


def _dropped() -> Iterator[bytes]:
    yield b""
    raise httpx.ReadError("connection dropped by a sandbox fault after the request was processed")


class SandboxMiddleware:
    """WSGI middleware: case-insensitive API paths, faults, the concurrency cap."""

    def __init__(
        self,
        app: WSGIApplication,
        sandbox: Sandbox,
        faults: Faults,
        handle: Callable[[Sandbox, WSGIEnvironment], WSGIApplication],
    ) -> None:
        self.app = app
        self.sandbox = sandbox
        self.faults = faults
        self.handle = handle  # checkout_kit.sandbox.api.handle: answers one API request
        self._in_flight = 0
        self._lock = threading.Lock()

    def _answer(
        self, start_response: StartResponse, status: int, message: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> Iterable[bytes]:
        body = dumps({"Success": False, "Message": message}).encode()
        start_response(f"{status} Sandbox Fault", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
            *(headers or []),
        ])
        return [body]

    def _api(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            response = self.handle(self.sandbox, environ)
        except Exception:
            # A sandbox bug: say so in the envelope (requests carry no card data).
            log.exception("sandbox error on %s", environ.get("PATH_INFO"))
            return self._answer(start_response, 500, "Sandbox internal error")
        return response(environ, start_response)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or ""
        lower = path.lower()
        if not lower.startswith(API_PREFIXES):
            return self.app(environ, start_response)
        environ["PATH_INFO"] = lower
        if environ.get("REQUEST_METHOD") == "OPTIONS":
            return self._api(environ, start_response)
        latency = self.faults.take("latency", lower)
        if latency is not None:
            time.sleep(latency.latency_ms / 1000)
        status = self.faults.take("status", lower)
        if status is not None:
            extra = []
            if status.retry_after is not None:
                extra.append(("Retry-After", f"{status.retry_after:g}"))
            return self._answer(start_response, status.status, "Injected fault", extra)
        with self._lock:
            if self._in_flight >= self.sandbox.settings.max_concurrent_requests:
                busy = True
            else:
                busy = False
                self._in_flight += 1
        if busy:
            return self._answer(start_response, 429, "Too many concurrent requests")
        try:
            result = self._api(environ, start_response)
            if self.faults.take("drop", lower) is None:
                return result
            # Let the response finish (its effects are committed), then break the line.
            for _ in result:
                pass
            close: Callable[[], None] | None = getattr(result, "close", None)
            if close is not None:
                close()
            return _dropped()
        finally:
            with self._lock:
                self._in_flight -= 1
