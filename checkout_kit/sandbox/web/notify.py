"""Sending notifications: the one place where the sandbox calls a shop over HTTP.

The rules queue deliveries as data (:mod:`checkout_kit.sandbox.rules.outbox`);
:class:`Sender` sends one and turns whatever happens into a
:class:`~checkout_kit.sandbox.rules.outbox.Reply`. It is called without the sandbox
lock held: the shop may call the API back while it handles a notification.

Over the network (no ``transport``) a delivery goes only to a target the policy
allows (:func:`~checkout_kit.sandbox.web.security.pin_target`): the name is resolved
once and the connection goes to the very address that was checked.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx

from ... import notifications as nt
from ..rules.outbox import Reply
from ..rules.records import Delivery
from .security import Target, pin_target

__all__ = ["RESPONSE_TIMEOUT", "Sender"]

log = logging.getLogger("checkout_kit.sandbox.notify")

#: Seconds to wait for a shop's answer (the gateway waits 30 s).
RESPONSE_TIMEOUT = 30.0


class Sender:
    """Sends deliveries with one httpx client (``transport`` routes them in-process);
    ``allow_private`` and ``allow_loopback`` say whether private and loopback addresses
    are allowed targets."""

    def __init__(
        self, transport: httpx.BaseTransport | None = None,
        allow_private: Callable[[], bool] = lambda: False,
        allow_loopback: Callable[[], bool] = lambda: True,
    ) -> None:
        self.transport = transport
        self.allow_private = allow_private
        self.allow_loopback = allow_loopback
        self._client: httpx.Client | None = None
        # Deliveries run on several threads (requests, the worker): one client only.
        self._client_lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        """One HTTP client for every delivery (made on first use)."""
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(transport=self.transport,
                                            timeout=RESPONSE_TIMEOUT)
            return self._client

    def _request(self, delivery: Delivery) -> httpx.Response:
        headers = dict(delivery.headers)
        url = httpx.URL(delivery.address)
        content: bytes | None = None
        if delivery.http_method.upper() == "GET":
            sep = "&" if "?" in delivery.address else "?"
            url = httpx.URL(f"{delivery.address}{sep}{delivery.body}")
        else:
            charset = nt.codec_for(delivery.encoding).replace("cp1251", "windows-1251")
            headers["Content-Type"] = f"application/x-www-form-urlencoded; charset={charset}"
            content = delivery.body.encode()
        targets: list[Target] = [(url, {}, {})]
        if self.transport is None:
            # Over the network only (an in-process transport reaches no address): check
            # where the name points and connect only to the addresses checked.
            targets = pin_target(url, allow_private=self.allow_private(),
                                 allow_loopback=self.allow_loopback())
        for n, (target, host, extensions) in enumerate(targets, 1):
            request = self.client.build_request(
                delivery.http_method.upper(), target, headers={**headers, **host},
                content=content, extensions=extensions)
            try:
                return self.client.send(request)
            except httpx.ConnectError:
                if n == len(targets):
                    raise
        raise AssertionError("pin_target gives at least one target")

    def send(self, delivery: Delivery) -> Reply:
        """Send ``delivery`` once."""
        try:
            response = self._request(delivery)
        except Exception as exc:
            # Whatever stops the request (a refused connection, a timeout, an address
            # httpx cannot use, a transport's own error) is a failed attempt, retried on
            # the schedule: never an error for the API call that queued the notification.
            expected = isinstance(exc, httpx.HTTPError | OSError)
            log.log(logging.INFO if expected else logging.WARNING,
                    "notification %s %s to %s failed: %s", delivery.id, delivery.type,
                    delivery.address, exc, exc_info=not expected)
            return Reply(None, error=f"{type(exc).__name__}: {exc}")
        return Reply(response.status_code, response.content)

    def close(self) -> None:
        """Close the HTTP client."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None
