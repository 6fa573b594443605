"""Notification delivery: signed requests to the shop, retries on the virtual clock.

Each event becomes a :class:`~checkout_kit.sandbox.state.Delivery` (two with the
``duplicate_notifications`` setting). A delivery succeeds when the shop answers
2xx with JSON ``{"code": 0}``; otherwise it is retried after 1, 2, 5, 10 and then
every 30 virtual minutes, up to 100 attempts (docs/gateway.md §5.1). Check is sent once,
synchronously, and its answer decides the payment (§5.3):

* ``{"code": N}`` → :func:`checkout_kit.notifications.check_reason` (3001...3008);
* an HTTP error status (404, 500, 504...) → 3006 ``Unavailable``;
* no connection at all (refused, timeout) → 3007 ``UnableToConnect``;
* a 2xx that is not ``{"code": N}`` JSON → 3005 ``FormatError``.

Network I/O happens outside the sandbox lock: the shop may call the API back
while it handles a notification.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import httpx

from .. import notifications as nt
from .security import Target, pin_target
from .state import Attempt, Delivery, NotificationSetting, SandboxState

__all__ = ["Notifier", "address_problem"]

log = logging.getLogger("checkout_kit.sandbox.notify")

#: Seconds to wait for a shop's answer (the gateway waits 30 s).
RESPONSE_TIMEOUT = 30.0


def retry_delay(attempts_made: int) -> timedelta:
    """Delay before the next attempt after ``attempts_made`` failed attempts."""
    schedule = nt.RETRY_SCHEDULE
    return timedelta(minutes=schedule[min(attempts_made, len(schedule)) - 1])


def address_problem(address: str) -> str | None:
    """Why ``address`` cannot receive notifications, or ``None`` when it can: it must be
    an absolute ``http(s)`` URL with a host that httpx accepts, without whitespace or
    control characters (the request would fail for every notification otherwise)."""
    if any(ch.isspace() or not ch.isprintable() for ch in address):
        return "Address must not contain whitespace or control characters"
    try:
        url = httpx.URL(address)
        scheme, host, port = url.scheme, url.host, url.port
    except Exception:  # httpx.InvalidURL, and the idna codec's own errors (host is lazy)
        return "Address is not a valid URL"
    if scheme not in ("http", "https") or not host:
        return "Address must be an absolute http(s) URL"
    if port is not None and not 0 < port < 65536:
        return "Address has an invalid port"
    return None


def _answer_code(response: httpx.Response) -> int | None:
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().lstrip("-").isdigit():
        return int(code)
    return None


class Notifier:
    """Builds, signs, sends and retries notifications for one sandbox."""

    def __init__(
        self,
        state: SandboxState,
        lock: threading.RLock,
        now: Callable[[], datetime],
        secret: str,
        transport: httpx.BaseTransport | None = None,
        duplicate: Callable[[], bool] = lambda: False,
        allow_private: Callable[[], bool] = lambda: False,
    ) -> None:
        self.state = state
        self.lock = lock
        self.now = now
        self.secret = secret
        self.transport = transport
        self.duplicate = duplicate
        self.allow_private = allow_private
        self._client: httpx.Client | None = None

    # ------------------------------------------------------------------ settings

    def setting(self, kind: nt.NotificationType) -> NotificationSetting:
        """The setting for ``kind`` (a disabled default when never configured)."""
        settings = self.state.notification_settings
        if kind.value not in settings:
            settings[kind.value] = NotificationSetting(type=kind.value)
        return settings[kind.value]

    def wants(self, kind: nt.NotificationType) -> bool:
        """Whether ``kind`` is configured to be sent (so fields are worth building)."""
        return self._active(kind) is not None

    def _active(self, kind: nt.NotificationType) -> NotificationSetting | None:
        # a StrEnum member is its value as a key (and Enum.value is a slow property)
        setting = self.state.notification_settings.get(kind)
        if setting is None or not setting.is_enabled or not setting.address:
            return None
        return setting

    # ------------------------------------------------------------------ building

    def _new_delivery(
        self,
        kind: nt.NotificationType,
        setting: NotificationSetting,
        fields: Mapping[str, object],
        *,
        transaction_id: int | None,
        subscription_id: str | None,
        copy: int = 1,
    ) -> Delivery:
        body = nt.encode_body(fields, setting.encoding)
        delivery = Delivery(
            id=self.state.next_id("next_delivery_id"),
            type=kind.value,
            address=setting.address or "",
            http_method=setting.http_method,
            encoding=setting.encoding,
            body=body.decode("ascii"),
            headers=nt.sign(body, self.secret, encoding=setting.encoding),
            created=self.now(),
            next_attempt_at=self.now(),
            transaction_id=transaction_id,
            subscription_id=subscription_id,
            copy=copy,
        )
        self.state.deliveries[delivery.id] = delivery
        return delivery

    def enqueue(
        self,
        kind: nt.NotificationType,
        fields: Mapping[str, object],
        *,
        transaction_id: int | None = None,
        subscription_id: str | None = None,
    ) -> list[Delivery]:
        """Queue ``kind`` for delivery now (call with the sandbox lock held)."""
        setting = self._active(kind)
        if setting is None:
            return []
        copies = 2 if self.duplicate() else 1
        return [
            self._new_delivery(
                kind, setting, fields, transaction_id=transaction_id,
                subscription_id=subscription_id, copy=n + 1,
            )
            for n in range(copies)
        ]

    # ------------------------------------------------------------------ sending

    @property
    def client(self) -> httpx.Client:
        """One HTTP client for every delivery (made on first use)."""
        if self._client is None:
            self._client = httpx.Client(transport=self.transport, timeout=RESPONSE_TIMEOUT)
        return self._client

    def _send(self, delivery: Delivery) -> httpx.Response:
        headers = dict(delivery.headers)
        url = httpx.URL(delivery.address)
        if delivery.http_method.upper() == "GET":
            sep = "&" if "?" in delivery.address else "?"
            url, content = httpx.URL(f"{delivery.address}{sep}{delivery.body}"), None
        else:
            charset = nt.codec_for(delivery.encoding).replace("cp1251", "windows-1251")
            headers["Content-Type"] = f"application/x-www-form-urlencoded; charset={charset}"
            content = delivery.body.encode()
        targets: list[Target] = [(url, {}, {})]
        if self.transport is None:
            # Over the network only (an in-process transport reaches no address): check
            # where the name points and connect only to the addresses checked.
            targets = pin_target(url, allow_private=self.allow_private())
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

    def _attempt(self, delivery: Delivery) -> tuple[Attempt, httpx.Response | None]:
        try:
            response = self._send(delivery)
        except Exception as exc:
            # Whatever stops the request (httpx.InvalidURL for an address saved before it
            # was checked, a transport's own error) is a failed attempt, retried on the
            # schedule: never an error for the API call that queued the notification.
            expected = isinstance(exc, httpx.HTTPError | OSError)
            log.log(logging.INFO if expected else logging.WARNING,
                    "notification %s %s to %s failed: %s", delivery.id, delivery.type,
                    delivery.address, exc, exc_info=not expected)
            return Attempt(at=self.now(), ok=False, error=f"{type(exc).__name__}: {exc}"), None
        code = _answer_code(response)
        ok = 200 <= response.status_code < 300 and code == 0
        text = response.content[:500].decode("utf-8", errors="replace")
        return Attempt(self.now(), ok, response.status_code, None, text), response

    def check(
        self, fields: Mapping[str, object], *, transaction_id: int | None = None
    ) -> int | None:
        """Send a Check (no retries); ``None`` to go on, or the decline ``ReasonCode``."""
        with self.lock:
            setting = self._active(nt.NotificationType.CHECK)
            if setting is None:
                return None
            delivery = self._new_delivery(
                nt.NotificationType.CHECK, setting, fields,
                transaction_id=transaction_id, subscription_id=None,
            )
            delivery.next_attempt_at = None
            delivery.state = "sending"
        attempt, response = self._attempt(delivery)
        if response is None:
            reason: int | None = nt.CHECK_UNREACHABLE
        elif not 200 <= response.status_code < 300:
            reason = nt.CHECK_UNAVAILABLE
        else:
            reason = nt.check_reason(_answer_code(response))
        with self.lock:
            delivery.attempts.append(attempt)
            delivery.state = "answered" if response is not None else "failed"
        return reason

    def claim_due(self, now: datetime) -> list[Delivery]:
        """Take the pending deliveries due at ``now`` (marked ``sending`` so that a
        concurrent caller does not send them too)."""
        with self.lock:
            batch = sorted(
                (
                    d for d in self.state.deliveries.values()
                    if d.state == "pending" and d.next_attempt_at is not None
                    and d.next_attempt_at <= now
                ),
                key=lambda d: (d.next_attempt_at or now, d.id),
            )
            for delivery in batch:
                delivery.state = "sending"
            return batch

    def next_due(self) -> datetime | None:
        """When the earliest pending delivery is due."""
        with self.lock:
            times = [
                d.next_attempt_at for d in self.state.deliveries.values()
                if d.state == "pending" and d.next_attempt_at is not None
            ]
        return min(times) if times else None

    def deliver_pending(self) -> int:
        """Attempt every due delivery once; returns how many were attempted."""
        if not self.state.deliveries:  # nothing was ever queued (no notification set up)
            return 0
        batch = self.claim_due(self.now())
        for delivery in batch:
            # Retries count from when the attempt was due, so the schedule does not
            # drift with the time each attempt takes.
            due = delivery.next_attempt_at or self.now()
            attempt, _ = self._attempt(delivery)
            with self.lock:
                delivery.attempts.append(attempt)
                delivery.state = "pending"
                if attempt.ok:
                    delivery.state, delivery.next_attempt_at = "delivered", None
                elif len(delivery.attempts) >= nt.MAX_ATTEMPTS:
                    delivery.state, delivery.next_attempt_at = "failed", None
                else:
                    delivery.next_attempt_at = due + retry_delay(len(delivery.attempts))
        return len(batch)

    def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None
