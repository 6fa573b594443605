"""checkout_kit.shop: the Flask extension that takes card payments into the ledger.

``CheckoutKit(app)`` (or ``kit.init_app(app)``) reads the ``CHECKOUT_KIT_*`` settings
(:mod:`checkout_kit.shop.config`), opens the ledger, registers the payment pages
(blueprint ``checkout_kit``) and the ``flask checkout`` commands. See ``docs/shop.md``.
"""

from __future__ import annotations

from . import signals
from .config import ConfigurationError, Settings
from .extension import CheckoutKit, Payment, mount_sandbox
from .state import state

__all__ = ["CheckoutKit", "ConfigurationError", "Payment", "Settings", "mount_sandbox", "signals",
           "state"]
