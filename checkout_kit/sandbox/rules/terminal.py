"""What the rule modules share: one terminal's settings, state, lock, clock and outbox.

:class:`~checkout_kit.sandbox.rules.engine.Gateway` makes one :class:`Terminal` and
hands it to the subscription and order rules, which therefore need nothing from the
engine (no import cycle between them).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from .clock import VirtualClock
from .outbox import Outbox
from .records import SandboxState
from .settings import SandboxSettings

__all__ = ["Terminal"]


@dataclass(frozen=True)
class Terminal:
    """One terminal's shared parts. ``lock`` guards ``state``: a re-entrant lock, which
    the shell may make span processes (:class:`~checkout_kit.sandbox.store.SharedLock`)."""

    settings: SandboxSettings
    state: SandboxState
    lock: AbstractContextManager[object]
    clock: VirtualClock
    outbox: Outbox
    randbytes: Callable[[int], bytes]

    @property
    def public_id(self) -> str:
        """The terminal's Public ID."""
        return self.settings.public_id

    def now(self) -> datetime:
        """Virtual now."""
        return self.clock.now()

    def random_hex(self, length: int) -> str:
        """``length`` random hex digits."""
        return self.randbytes((length + 1) // 2).hex()[:length]
