"""Notifications as data: the outbox of signed deliveries and its retry rules.

The rules never send anything. Each event becomes a
:class:`~checkout_kit.sandbox.rules.records.Delivery` in the state (two with the
``duplicate_notifications`` setting): its body, signature and when it is due. Whoever
does the I/O (:class:`checkout_kit.sandbox.runtime.Sandbox`, through
:mod:`checkout_kit.sandbox.web.notify`) takes the due ones with :meth:`Outbox.claim_due`,
sends them and reports each :class:`Reply` to :meth:`Outbox.record`.

A delivery succeeds when the shop answers 2xx with JSON ``{"code": 0}``; otherwise it
is retried after 1, 2, 5, 10 and then every 30 virtual minutes, up to 100 attempts
(docs/gateway.md §5.1). Check is sent once, synchronously, and its answer decides the
payment (§5.3, :meth:`Outbox.check_answer`):

* ``{"code": N}`` → :func:`checkout_kit.notifications.check_reason` (3001...3008);
* an HTTP error status (404, 500, 504...) → 3006 ``Unavailable``;
* no answer at all (refused, timeout, any failure to send) → 3007 ``UnableToConnect``;
* a 2xx that is not ``{"code": N}`` JSON → 3005 ``FormatError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ... import jsoncodec
from ... import notifications as nt
from ...errors import JSONCodecError
from .records import Attempt, Delivery, NotificationSetting, SandboxState

__all__ = ["Outbox", "Reply", "retry_delay"]


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back from sending one delivery."""

    #: the HTTP status, ``None`` when no answer came (refused, timeout, a bad address)
    status_code: int | None
    body: bytes = b""
    #: why nothing came back (``"ConnectError: ..."``)
    error: str | None = None

    @property
    def code(self) -> int | None:
        """The ``code`` of a JSON ``{"code": N}`` answer, else ``None``."""
        try:
            answer = jsoncodec.loads(self.body)
        except JSONCodecError:
            return None
        code = answer.get("code") if isinstance(answer, dict) else None
        if isinstance(code, bool):
            return None
        if isinstance(code, int):
            return code
        if isinstance(code, str) and code.strip().lstrip("-").isdigit():
            return int(code)
        return None

    @property
    def ok(self) -> bool:
        """A 2xx answer with ``{"code": 0}``: the shop took the notification."""
        return self.status_code is not None and 200 <= self.status_code < 300 and self.code == 0


def retry_delay(attempts_made: int) -> timedelta:
    """Delay before the next attempt after ``attempts_made`` failed attempts."""
    schedule = nt.RETRY_SCHEDULE
    return timedelta(minutes=schedule[min(attempts_made, len(schedule)) - 1])


#: How long a claimed delivery is left to its sender before another may take it: longer
#: than any send takes (the sender's timeout is seconds).
CLAIM_LEASE = timedelta(minutes=5)


def _claimable(delivery: Delivery, now: datetime) -> bool:
    if delivery.state == "pending":
        return delivery.next_attempt_at is not None and delivery.next_attempt_at <= now
    # A Check being sent (next_attempt_at None, claimed_until None) is its caller's.
    return (delivery.state == "sending" and delivery.claimed_until is not None
            and delivery.claimed_until <= now)


class Outbox:
    """The notification settings and deliveries of one sandbox (call with its lock held)."""

    def __init__(
        self,
        state: SandboxState,
        now: Callable[[], datetime],
        secret: str,
        duplicate: Callable[[], bool] = lambda: False,
    ) -> None:
        self.state = state
        self.now = now
        self.secret = secret
        self.duplicate = duplicate

    # ------------------------------------------------------------------ settings

    def setting(self, kind: nt.NotificationType) -> NotificationSetting:
        """The setting for ``kind`` (a disabled default when never configured)."""
        settings = self.state.notification_settings
        if kind.value not in settings:
            self.state.add(NotificationSetting(type=kind.value))
        return settings[kind.value]

    def wants(self, kind: nt.NotificationType) -> bool:
        """Whether ``kind`` is configured to be sent (so fields are worth building)."""
        return self._active(kind) is not None

    def _active(self, kind: nt.NotificationType) -> NotificationSetting | None:
        setting = self.state.notification_settings.get(kind.value)
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
        now = self.now()
        delivery = Delivery(
            id=self.state.next_id("next_delivery_id"),
            type=kind.value,
            address=setting.address or "",
            http_method=setting.http_method,
            encoding=setting.encoding,
            body=body.decode("ascii"),
            headers=nt.sign(body, self.secret, encoding=setting.encoding),
            created=now,
            next_attempt_at=now,
            transaction_id=transaction_id,
            subscription_id=subscription_id,
            copy=copy,
        )
        self.state.add(delivery)
        return delivery

    def enqueue(
        self,
        kind: nt.NotificationType,
        fields: Mapping[str, object],
        *,
        transaction_id: int | None = None,
        subscription_id: str | None = None,
    ) -> list[Delivery]:
        """Queue ``kind`` for delivery now, if it is configured."""
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

    # ------------------------------------------------------------------ Check

    def new_check(
        self, fields: Mapping[str, object], *, transaction_id: int | None = None
    ) -> Delivery | None:
        """The Check to send before a payment goes on, or ``None`` when Check is not
        configured. It is never retried: its one answer goes to :meth:`check_answer`."""
        setting = self._active(nt.NotificationType.CHECK)
        if setting is None:
            return None
        delivery = self._new_delivery(
            nt.NotificationType.CHECK, setting, fields,
            transaction_id=transaction_id, subscription_id=None,
        )
        delivery.next_attempt_at, delivery.state = None, "sending"
        return delivery

    def check_answer(self, delivery: Delivery, reply: Reply) -> int | None:
        """Record the shop's answer to a Check; ``None`` to go on with the payment, or
        the ``ReasonCode`` that declines it."""
        self._record_attempt(delivery, reply)
        delivery.state = "answered" if reply.status_code is not None else "failed"
        if reply.status_code is None:
            return nt.CHECK_UNREACHABLE
        if not 200 <= reply.status_code < 300:
            return nt.CHECK_UNAVAILABLE
        return nt.check_reason(reply.code)

    # ------------------------------------------------------------------ delivery

    def claim_due(self, now: datetime) -> list[Delivery]:
        """Take the pending deliveries due at ``now``, marked ``sending`` until
        :data:`CLAIM_LEASE` from now, so that a concurrent caller (another thread, or
        another process on the same state file: the mark is a change to write) does not
        send them too. A claim whose lease ran out (its sender died) is taken again."""
        batch = sorted(
            (d for d in self.state.deliveries.values() if _claimable(d, now)),
            key=lambda d: (d.next_attempt_at or now, d.id),
        )
        for delivery in batch:
            delivery.state, delivery.claimed_until = "sending", now + CLAIM_LEASE
            self.state.touch(delivery)
        return batch

    def record(self, delivery: Delivery, reply: Reply) -> None:
        """Record one attempt of a claimed delivery and schedule the next, if any.
        Retries count from when the attempt was due, so the schedule does not drift
        with the time each attempt takes."""
        due = delivery.next_attempt_at or self.now()
        attempt = self._record_attempt(delivery, reply)
        delivery.claimed_until = None
        if attempt.ok:
            delivery.state, delivery.next_attempt_at = "delivered", None
        elif len(delivery.attempts) >= nt.MAX_ATTEMPTS:
            delivery.state, delivery.next_attempt_at = "failed", None
        else:
            delivery.state = "pending"
            delivery.next_attempt_at = due + retry_delay(len(delivery.attempts))

    def _record_attempt(self, delivery: Delivery, reply: Reply) -> Attempt:
        text = None if reply.status_code is None else reply.body[:500].decode(
            "utf-8", errors="replace")
        attempt = Attempt(at=self.now(), ok=reply.ok, status_code=reply.status_code,
                          error=reply.error, response=text)
        delivery.attempts.append(attempt)
        self.state.touch(delivery)
        return attempt

    def next_due(self) -> datetime | None:
        """When the earliest pending delivery is due."""
        times = [
            d.next_attempt_at for d in self.state.deliveries.values()
            if d.state == "pending" and d.next_attempt_at is not None
        ]
        return min(times) if times else None
