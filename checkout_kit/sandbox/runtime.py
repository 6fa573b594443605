"""The sandbox in process: the gateway's rules plus what they leave to others.

:class:`Sandbox` is a :class:`~checkout_kit.sandbox.rules.engine.Gateway` that also
does the I/O the rules only describe: it sends the notifications they queue and the
Checks they wait for (:class:`~checkout_kit.sandbox.web.notify.Sender`), keeps the
state in SQLite when asked to (:class:`~checkout_kit.sandbox.store.Store`, shared by
every process that opens the file), runs the
virtual clock's due work, and holds the injected faults the web layer applies. Tests
drive it directly (``advance``, ``configure_notification``, ``make_cryptogram``...);
the Flask app (:func:`checkout_kit.sandbox.web.app.create_sandbox_app`) serves it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from .rules.clock import VirtualClock
from .rules.engine import Envelope, Gateway, PendingCheck, Step
from .rules.records import SandboxState
from .rules.settings import SandboxSettings
from .store import SharedLock, Store
from .web.faults import Faults
from .web.notify import Sender

__all__ = ["RequestLocks", "Sandbox"]


class RequestLocks:
    """One lock per request key (Public ID and ``X-Request-ID``), so that two requests
    with one id run one after the other and the second replays the first's answer.

    An entry lives only while some request uses it: the table is as small as the
    number of requests in flight, and a lock in use is never replaced by another.
    Each sandbox has its own: two sandboxes in one process never wait for each other.
    """

    def __init__(self) -> None:
        #: key -> (its lock, how many requests hold or wait for it)
        self._locks: dict[str, tuple[threading.Lock, int]] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold the lock of ``key`` for the ``with`` block."""
        with self._guard:
            lock, users = self._locks.get(key) or (threading.Lock(), 0)
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                users = self._locks[key][1]
                if users > 1:
                    self._locks[key] = (lock, users - 1)
                else:
                    del self._locks[key]

    def in_use(self) -> int:
        """How many keys some request holds or waits for."""
        return len(self._locks)


class Sandbox(Gateway):
    """An emulated CloudPayments terminal with its notifications, clock and storage."""

    def __init__(
        self,
        settings: SandboxSettings | None = None,
        *,
        keys: Mapping[int, Any] | None = None,
        clock: VirtualClock | None = None,
        notification_transport: httpx.BaseTransport | None = None,
        state_path: str | Path | None = None,
        randbytes: Callable[[int], bytes] | None = None,
    ) -> None:
        self.store = Store(state_path) if state_path is not None else None
        state = lock = None
        if self.store is not None:
            state = SandboxState()
            lock = SharedLock(self.store, state)
        # Under the shared lock, the first process to open a new file generates the
        # key and the others read it: all of them open the same packets.
        with lock or nullcontext():
            super().__init__(settings, keys=keys, clock=clock, state=state,
                             randbytes=randbytes, lock=lock)
        self.sender = Sender(notification_transport,
                             lambda: self.settings.private_notification_targets,
                             lambda: self.settings.loopback_notification_targets)
        self.faults = Faults()
        self.request_locks = RequestLocks()
        #: the Flask app serving this sandbox (set by ``create_sandbox_app``)
        self.app: Any = None

    @property
    def state_path(self) -> Path | None:
        """The SQLite file of the state, if it is kept on disk."""
        return self.store.path if self.store is not None else None

    # ------------------------------------------------------------------ effects

    def finish(self, step: Step) -> Envelope:
        """The answer of a payment operation, once the Check it waits for (if any) has
        been sent and answered. Called without the lock held: the shop may call the
        API back while it handles the Check."""
        while isinstance(step, PendingCheck):
            step = self.resume(step, self.sender.send(step.delivery))
        return step

    def deliver_pending(self) -> int:
        """Send the notifications that are due now; returns how many were tried."""
        with self.lock:
            batch = self.outbox.claim_due(self.now())
        for delivery in batch:
            reply = self.sender.send(delivery)
            with self.lock:
                self.outbox.record(delivery, reply)
        if batch:
            self.save()
        return len(batch)

    def commit(self) -> None:
        """The end of a request: write what it changed, then (with
        ``deliver_immediately``) send the notifications it queued."""
        self.save()
        if self.settings.deliver_immediately:
            self.deliver_pending()

    def save(self) -> int:
        """Write the records changed since the last save to the state file (if there is
        one); returns how many were written. (Every outermost use of :attr:`lock`
        saves too: this is for changes made without it.)"""
        if self.store is None:
            return 0
        with self.lock:
            return self.store.flush(self.state)

    def sync(self) -> None:
        """Bring :attr:`state` up to date with what other processes sharing the state
        file wrote (the lock does it on every use: this is for reading without it).
        Takes the file's write lock only when another process has written."""
        if self.store is not None and self.store.changed_elsewhere():
            with self.lock:
                pass

    def reset(self) -> int:
        """Forget every transaction, token, subscription, order, delivery and stored
        answer; returns how many records went. The counters, the generated key and the
        notification settings stay, so that no transaction id is ever issued twice,
        pages already open still encrypt for the right key, and notifications still
        go where they went."""
        with self.lock:
            return self.state.clear_records()

    def close(self) -> None:
        """Close the notification client and the state file."""
        self.sender.close()
        if self.store is not None:
            self.store.close()

    # ------------------------------------------------------------------ time

    def run_due(self) -> None:
        """Do the work that is due at virtual now: expire or auto-confirm
        authorizations, charge subscriptions, send notifications."""
        now = self.now()
        self.expire_due(now)
        for sub_id in self.subscriptions.due(now):
            step = self.start_subscription_charge(sub_id)
            self.subscriptions.charged(sub_id, None if step is None else self.finish(step))
        self.save()
        self.deliver_pending()

    def advance(self, delta: timedelta | float) -> datetime:
        """Move the clock forward by ``delta``, stopping at each scheduled event on the
        way to run it at its own time. Returns the new virtual now."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError("the clock only moves forward")
        target = self.now() + step
        for _ in range(100_000):
            when = self.next_event()
            if when is None or when > target:
                break
            self.clock.set(when)
            self.run_due()
        self.clock.set(target)
        self.run_due()
        return self.now()
