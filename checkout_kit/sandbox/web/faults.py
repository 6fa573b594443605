"""Fault injection: request hooks in front of the API.

:func:`install` adds hooks that, for API requests,

* apply injected faults, in this order: ``latency`` (sleep, then go on),
  ``status`` (answer 429 or 5xx *without* processing), ``drop`` (process the
  request, commit its effects, then break the connection instead of answering);
* answer 429 when more than ``max_concurrent_requests`` are in flight (the test
  terminal's cap is 5, docs/gateway.md §3.1).

A dropped connection is modelled, for in-process clients (``httpx.WSGITransport``),
by a response body that raises :class:`httpx.ReadError` when read: exactly what
httpx raises when a socket closes before the answer. Under a real server
(``checkout-kit sandbox``) the same body makes werkzeug close the connection after
the headers, which clients see as a truncated response (a protocol error).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import httpx
from flask import Flask, Response, g, request

from .answers import error_response

__all__ = ["FAULT_KINDS", "Fault", "Faults", "install"]

FAULT_KINDS = ("latency", "status", "drop")


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
        """JSON-able form (``retry_after`` as the decimal it was written as)."""
        fields = asdict(self)
        if self.retry_after is not None:
            fields["retry_after"] = Decimal(repr(self.retry_after))
        return fields


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
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and (fault.path is None or path.startswith(fault.path)):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None


def _dropped(body: Iterable[str] | Iterable[bytes]) -> Iterator[bytes]:
    # The answer was made and its effects committed; the connection then breaks.
    for _ in body:
        pass
    yield b""
    raise httpx.ReadError("connection dropped by a sandbox fault after the request was processed")


def install(app: Flask, faults: Faults, max_in_flight: Callable[[], int],
            is_api: Callable[[], bool]) -> None:
    """Apply ``faults`` and the concurrency cap to the API requests of ``app`` (those
    for which ``is_api()`` holds), as request hooks."""
    in_flight = [0]
    guard = threading.Lock()

    @app.before_request
    def before() -> Response | None:
        if request.method == "OPTIONS" or not is_api():
            return None
        path = request.path.lower()
        latency = faults.take("latency", path)
        if latency is not None:
            time.sleep(latency.latency_ms / 1000)
        status = faults.take("status", path)
        if status is not None:
            extra = {} if status.retry_after is None else {
                "Retry-After": f"{status.retry_after:g}"}
            return error_response("Injected fault", status.status, extra)
        with guard:
            if in_flight[0] >= max_in_flight():
                return error_response("Too many concurrent requests", 429)
            in_flight[0] += 1
        g.checkout_kit_sandbox_counted = True
        return None

    @app.after_request
    def after(response: Response) -> Response:
        # App hooks run after the API blueprint's, which commit the request's effects.
        if g.get("checkout_kit_sandbox_counted") and faults.take(
                "drop", request.path.lower()) is not None:
            response.response = _dropped(response.response)
        return response

    @app.teardown_request
    def teardown(exc: BaseException | None) -> None:
        if g.pop("checkout_kit_sandbox_counted", False):
            with guard:
                in_flight[0] -= 1
