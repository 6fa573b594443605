"""The CloudPayments sandbox: a stateful emulation of the gateway as a Flask app.

``create_sandbox_app()`` builds it; ``app.extensions["checkout_kit_sandbox"]`` (or
:func:`sandbox_of`) is the :class:`Sandbox` that tests drive (clock, deliveries,
faults). See ``docs/sandbox.md``.

The package has two parts: :mod:`checkout_kit.sandbox.rules`, the gateway's rules
(no I/O, no Flask), and :mod:`checkout_kit.sandbox.web`, the Flask layer; between them
:mod:`checkout_kit.sandbox.runtime` sends what the rules queue and
:mod:`checkout_kit.sandbox.store` keeps the state in SQLite. The names below are
imported on first use, so that importing :mod:`checkout_kit.sandbox.rules` alone
brings in neither Flask nor httpx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .rules.clock import VirtualClock
    from .rules.settings import DEFAULT_PUBLIC_ID, DEFAULT_SECRET, SandboxSettings, SaveCards
    from .rules.testcards import EXTRA_DECLINES, TEST_CARDS
    from .runtime import Sandbox
    from .web.app import EXTENSION_KEY, create_sandbox_app, sandbox_of, start_worker

__all__ = [
    "DEFAULT_PUBLIC_ID",
    "DEFAULT_SECRET",
    "EXTENSION_KEY",
    "EXTRA_DECLINES",
    "TEST_CARDS",
    "Sandbox",
    "SandboxSettings",
    "SaveCards",
    "VirtualClock",
    "create_sandbox_app",
    "sandbox_of",
    "start_worker",
]

#: public name -> the module that defines it
_HOMES = {
    "DEFAULT_PUBLIC_ID": ".rules.settings",
    "DEFAULT_SECRET": ".rules.settings",
    "SandboxSettings": ".rules.settings",
    "SaveCards": ".rules.settings",
    "VirtualClock": ".rules.clock",
    "EXTRA_DECLINES": ".rules.testcards",
    "TEST_CARDS": ".rules.testcards",
    "Sandbox": ".runtime",
    "EXTENSION_KEY": ".web.app",
    "create_sandbox_app": ".web.app",
    "sandbox_of": ".web.app",
    "start_worker": ".web.app",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home, __name__), name)
