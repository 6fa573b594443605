"""What a merchant account would configure, plus the sandbox's own knobs.

This module also holds the one definition of the default sandbox credentials, which
the CLI and the pytest plugin use too; it imports nothing but the standard library
(through :mod:`~checkout_kit.sandbox.rules.masking`), so that reading them costs
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .masking import mask_secret, masked_repr

__all__ = [
    "DEFAULT_KEY_VERSION",
    "DEFAULT_PUBLIC_ID",
    "DEFAULT_SECRET",
    "SANDBOX_DEFAULT_HOSTS",
    "SandboxSettings",
]

DEFAULT_PUBLIC_ID = "test_api_00000000000000000000001"
DEFAULT_SECRET = "sandbox_api_secret_0000000000000001"  # noqa: S105 - a test credential
#: The key version the mobile SDKs hard-code.
DEFAULT_KEY_VERSION = 4
#: What ``SandboxSettings.allowed_hosts`` holds by default: the name of the pytest
#: plugin's in-process base URL (``http://cloudpayments.sandbox``).
SANDBOX_DEFAULT_HOSTS = ("cloudpayments.sandbox",)


@masked_repr(api_secret=mask_secret, control_token=mask_secret)
@dataclass
class SandboxSettings:
    """What a merchant account would configure, plus the sandbox's own knobs."""

    public_id: str = DEFAULT_PUBLIC_ID
    api_secret: str = DEFAULT_SECRET
    site_name: str = "Sandbox Shop"
    terminal_url: str = "http://sandbox.local"
    #: ``on_request`` issues a token when the payment says ``SaveCard``; ``always``
    #: ("save forcibly") on every approved payment.
    save_cards: str = "on_request"
    auth_expiry: timedelta = timedelta(days=7)
    auto_confirm_after: timedelta | None = None
    refund_window: timedelta = timedelta(days=365)
    idempotency_ttl: timedelta = timedelta(hours=1)
    duplicate_notifications: bool = False
    #: deliver notifications at the end of the API request that caused them; when
    #: off, they wait for ``Sandbox.deliver_pending`` or the clock.
    deliver_immediately: bool = True
    max_concurrent_requests: int = 5
    #: the bank page URL put in 3-D Secure answers; ``None``: ``<host>/acs``.
    acs_url: str | None = None
    #: the key version ``GET /payments/publickey`` hands out.
    key_version: int = DEFAULT_KEY_VERSION
    #: Host names answered besides loopback and names public DNS cannot resolve
    #: (``"*"``: any; see :mod:`checkout_kit.sandbox.web.security`); by default the
    #: name of the pytest plugin's in-process base URL.
    allowed_hosts: tuple[str, ...] = SANDBOX_DEFAULT_HOSTS
    #: when set, every ``/_sandbox/`` request must carry it (``X-Sandbox-Token``).
    control_token: str | None = None
    #: send notifications to private (non-global) addresses too, not only loopback.
    private_notification_targets: bool = False
    #: send notifications to loopback addresses (this machine). On by default for a
    #: sandbox on this machine; off when it is exposed (``--expose``), where it would let
    #: anyone on the network make the sandbox POST to any local port.
    loopback_notification_targets: bool = True
    #: served to other machines (``--expose``): the home page then shows no secret.
    exposed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
