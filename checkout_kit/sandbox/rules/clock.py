"""The sandbox's virtual clock.

Virtual time is real UTC time plus an offset that only grows. ``frozen=True`` stops
it from flowing between explicit moves, which keeps tests deterministic. Moving the
clock never runs anything by itself: :meth:`Sandbox.advance` moves it step by step
and runs the work that falls due (notification retries, subscription charges,
auto-cancel of authorizations).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["VirtualClock"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class VirtualClock:
    """A monotonic virtual clock (aware UTC datetimes)."""

    def __init__(
        self,
        start: datetime | None = None,
        *,
        frozen: bool = False,
        source: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._source = source
        self._lock = threading.Lock()
        self.frozen = frozen
        real = source()
        base = start if start is not None else real
        if base.tzinfo is None:
            raise ValueError("the clock needs an aware datetime")
        self._offset = base.astimezone(UTC) - real
        self._frozen_at = base.astimezone(UTC)

    def now(self) -> datetime:
        """The current virtual time."""
        with self._lock:
            if self.frozen:
                return self._frozen_at
            return self._source() + self._offset

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by ``delta`` (seconds or a timedelta); returns the new time."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError("the clock only moves forward")
        return self.set(self.now() + step)

    def set(self, when: datetime) -> datetime:
        """Move to ``when`` if it is later than now (never backwards); returns now."""
        with self._lock:
            current = self._frozen_at if self.frozen else self._source() + self._offset
            if when > current:
                if self.frozen:
                    self._frozen_at = when
                else:
                    self._offset = when - self._source()
            return self._frozen_at if self.frozen else self._source() + self._offset

    @property
    def offset(self) -> timedelta:
        """How far the virtual clock is ahead of real time."""
        return self.now() - self._source()
