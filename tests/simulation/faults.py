"""Faults on the shop's gateway calls: the table, and the transport that applies it.

Every request an instance's client sends (each retry too) passes
:class:`FaultyTransport`, which draws one row of :data:`FAULTS` from the world's random
source. A fault either stops the request before the gateway sees it, or lets the
gateway act and spoils the answer, or makes time pass while another instance works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx

from checkout_kit import jsoncodec

if TYPE_CHECKING:
    from .world import World

#: The chance that a call meets a fault at all (then a row is drawn by weight).
FAULT_RATE = 0.18


@dataclass(frozen=True)
class Fault:
    name: str
    weight: int
    #: (transport, request, send) -> the response the client gets (or raises)
    apply: Callable[[FaultyTransport, httpx.Request, Callable[[], httpx.Response]],
                    httpx.Response]


def _lost_after(t: FaultyTransport, request: httpx.Request,
                send: Callable[[], httpx.Response]) -> httpx.Response:
    """The gateway acted; its answer never came back."""
    send().read()
    raise httpx.ReadTimeout("the answer was lost", request=request)


def _timeout_before(t: FaultyTransport, request: httpx.Request,
                    send: Callable[[], httpx.Response]) -> httpx.Response:
    """Sent, timed out before the gateway got to it: the client cannot tell."""
    raise httpx.ReadTimeout("timed out before the gateway acted", request=request)


def _connect_refused(t: FaultyTransport, request: httpx.Request,
                     send: Callable[[], httpx.Response]) -> httpx.Response:
    """Never left: the connection was refused."""
    raise httpx.ConnectError("connection refused", request=request)


def _server_error_before(t: FaultyTransport, request: httpx.Request,
                         send: Callable[[], httpx.Response]) -> httpx.Response:
    """A 503 from the gateway's front, nothing done."""
    return httpx.Response(503, content=b"Service Unavailable", request=request)


def _server_error_after(t: FaultyTransport, request: httpx.Request,
                        send: Callable[[], httpx.Response]) -> httpx.Response:
    """A 502 from a proxy after the gateway acted."""
    send().read()
    return httpx.Response(502, content=b"Bad Gateway", request=request)


def _rate_limited(t: FaultyTransport, request: httpx.Request,
                  send: Callable[[], httpx.Response]) -> httpx.Response:
    """429 with a Retry-After, sometimes longer than the client waits."""
    wait = t.world.rng.choice((1, 5, 30, 120))
    return httpx.Response(429, headers={"Retry-After": str(wait)},
                          content=b'{"Success":false,"Message":"Too many requests"}',
                          request=request)


def _stall(acted: bool) -> Callable[..., httpx.Response]:
    def stall(t: FaultyTransport, request: httpx.Request,
              send: Callable[[], httpx.Response]) -> httpx.Response:
        """The worker stalls past ``stale_after`` (before or after the gateway acted)
        while the other instance refreshes or reconciles."""
        response = send() if acted else None
        t.world.stall(t.name, request, acted=acted)
        return response if response is not None else send()
    return stall


FAULTS: tuple[Fault, ...] = (
    Fault("lost_after", 5, _lost_after),
    Fault("timeout_before", 3, _timeout_before),
    Fault("connect_refused", 1, _connect_refused),
    Fault("5xx_before", 2, _server_error_before),
    Fault("5xx_after", 1, _server_error_after),
    Fault("429", 2, _rate_limited),
    Fault("stall_before", 2, _stall(acted=False)),
    Fault("stall_after", 3, _stall(acted=True)),
)

#: Paths whose faults matter most: the ones that move money.
MONEY_PATHS = ("/payments/cards/charge", "/payments/cards/auth", "/payments/cards/post3ds",
               "/payments/confirm", "/payments/void", "/payments/refund")


class FaultyTransport(httpx.BaseTransport):
    """An instance's way to the gateway: the sandbox in process, with faults."""

    def __init__(self, world: World, name: str, inner: httpx.BaseTransport) -> None:
        self.world = world
        self.name = name
        self.inner = inner
        #: faults to use, by name (``None``: all of :data:`FAULTS`)
        self.enabled: frozenset[str] | None = None
        #: faults for the next money calls, in order (scripted regressions)
        self.forced: list[str] = []
        #: X-Request-ID -> when our code first sent that request
        self.first_sent: dict[str, datetime] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        world = self.world
        path = request.url.path
        body = _body_fields(request)
        what = body.get("InvoiceId") or body.get("TransactionId") or ""

        # When our code first let this request go (a retry carries the same
        # X-Request-ID): what it decided, such as charging before expires_at, is judged
        # at that moment, not when a retry or a frozen process's write reached the
        # gateway (docs/ledger.md, "Expiry").
        request_id = request.headers.get("X-Request-ID")
        released = world.now() if request_id is None else self.first_sent.setdefault(
            request_id, world.now())

        def send() -> httpx.Response:
            response = self.inner.handle_request(request)
            response.read()
            try:
                tx_id = int(jsoncodec.loads(response.content)["Model"]["TransactionId"])
            except (ValueError, KeyError, TypeError):
                return response
            world.released_at.setdefault(tx_id, released)
            return response

        if self.forced and path in MONEY_PATHS and not world.in_stall:
            fault = next(f for f in FAULTS if f.name == self.forced.pop(0))
            world.log(f"  forced fault {fault.name} on {self.name} {path} {what}")
            return fault.apply(self, request, send)
        rate = FAULT_RATE if path in MONEY_PATHS else FAULT_RATE / 3
        if world.in_stall or world.rng.random() >= rate:
            return send()
        faults = [f for f in FAULTS if self.enabled is None or f.name in self.enabled]
        if not faults:
            return send()
        fault = world.rng.choices(faults, weights=[f.weight for f in faults])[0]
        world.log(f"  fault {fault.name} on {self.name} {path} {what}")
        return fault.apply(self, request, send)


def _body_fields(request: httpx.Request) -> dict[str, str]:
    try:
        data = jsoncodec.loads(request.content or b"{}")
    except Exception:
        return {}
    return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}


#: How far past the stalled instance's ``stale_after`` a stall moves the clock: just past
#: it, or by far (past the sandbox's 20-minute 3-D Secure timeout too). Every stall is a
#: takeover: the other instance may take the worker for dead.
STALLS = (timedelta(seconds=1), timedelta(minutes=4), timedelta(minutes=15))
