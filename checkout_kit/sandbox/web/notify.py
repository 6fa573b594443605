"""Sending notifications: the one place where the sandbox calls a shop over HTTP.

The rules queue deliveries as data (:mod:`checkout_kit.sandbox.rules.outbox`);
:class:`Sender` sends one and turns whatever happens into a
:class:`~checkout_kit.sandbox.rules.outbox.Reply`. It is called without the sandbox
lock held: the shop may call the API back while it handles a notification.
"""

from __future__ import annotations

import logging

import httpx

from ... import notifications as nt
from ..rules.outbox import Reply
from ..rules.records import Delivery

__all__ = ["RESPONSE_TIMEOUT", "Sender"]

log = logging.getLogger("checkout_kit.sandbox.notify")

#: Seconds to wait for a shop's answer (the gateway waits 30 s).
RESPONSE_TIMEOUT = 30.0


class Sender:
    """Sends deliveries with one httpx client (``transport`` routes them in-process)."""

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self.transport = transport
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        """One HTTP client for every delivery (made on first use)."""
        if self._client is None:
            self._client = httpx.Client(transport=self.transport, timeout=RESPONSE_TIMEOUT)
        return self._client

    def _request(self, delivery: Delivery) -> httpx.Response:
        headers = dict(delivery.headers)
        if delivery.http_method.upper() == "GET":
            sep = "&" if "?" in delivery.address else "?"
            return self.client.get(f"{delivery.address}{sep}{delivery.body}", headers=headers)
        charset = nt.codec_for(delivery.encoding).replace("cp1251", "windows-1251")
        headers["Content-Type"] = f"application/x-www-form-urlencoded; charset={charset}"
        return self.client.post(delivery.address, content=delivery.body.encode(), headers=headers)

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
        if self._client is not None:
            self._client.close()
            self._client = None
