"""The CloudPayments sandbox: a stateful emulation of the gateway as a Flask app.

``create_sandbox_app()`` builds it; ``app.extensions["checkout_kit_sandbox"]`` (or
:func:`sandbox_of`) is the :class:`Sandbox` that tests drive (clock, deliveries,
faults). See ``docs/sandbox.md``.
"""

from __future__ import annotations

from .rules.clock import VirtualClock
from .rules.engine import DEFAULT_PUBLIC_ID, DEFAULT_SECRET, Sandbox, SandboxSettings
from .rules.testcards import EXTRA_DECLINES, TEST_CARDS
from .web.app import EXTENSION_KEY, create_sandbox_app, sandbox_of, start_worker

__all__ = [
    "DEFAULT_PUBLIC_ID",
    "DEFAULT_SECRET",
    "EXTENSION_KEY",
    "EXTRA_DECLINES",
    "TEST_CARDS",
    "Sandbox",
    "SandboxSettings",
    "VirtualClock",
    "create_sandbox_app",
    "sandbox_of",
    "start_worker",
]
