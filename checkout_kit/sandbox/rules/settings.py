"""What a merchant account would configure, plus the sandbox's own knobs.

This module also holds the one definition of the default sandbox credentials, which
the CLI and the pytest plugin use too; it imports nothing but the standard library
(through :mod:`~checkout_kit.sandbox.rules.masking`), so that reading them costs
nothing.
"""

from __future__ import annotations

import enum
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
    "SaveCards",
]

DEFAULT_PUBLIC_ID = "test_api_00000000000000000000001"
DEFAULT_SECRET = "sandbox_api_secret_0000000000000001"  # noqa: S105 - a test credential
#: The key version the mobile SDKs hard-code.
DEFAULT_KEY_VERSION = 4
#: What ``SandboxSettings.allowed_hosts`` holds by default: the name of the pytest
#: plugin's in-process base URL (``http://cloudpayments.sandbox``).
SANDBOX_DEFAULT_HOSTS = ("cloudpayments.sandbox",)


class SaveCards(enum.StrEnum):
    """The account's "save cards" option: when an approved card payment returns a
    token (docs/gateway.md §3.3 ``SaveCard``, §6.1 ``tokenize``)."""

    #: never: ``SaveCard`` is ignored (a payment that starts a subscription still
    #: saves its card, since subscriptions charge a token)
    OFF = "off"
    #: when the payment asks with ``SaveCard`` (the widget's ``tokenize``)
    ON_REQUEST = "on_request"
    #: "save forcibly": every approved card payment, ``SaveCard`` or not
    ALWAYS = "always"


@masked_repr(api_secret=mask_secret, control_token=mask_secret)
@dataclass
class SandboxSettings:
    """What a merchant account would configure, plus the sandbox's own knobs."""

    public_id: str = DEFAULT_PUBLIC_ID
    api_secret: str = DEFAULT_SECRET
    site_name: str = "Sandbox Shop"
    terminal_url: str = "http://sandbox.local"
    #: The default is :attr:`SaveCards.ON_REQUEST`: a shop that sends ``SaveCard``
    #: has that option enabled in its account (the gateway ignores ``SaveCard``
    #: otherwise), and tokens then appear only where the shop asked for them.
    save_cards: SaveCards = SaveCards.ON_REQUEST
    auth_expiry: timedelta = timedelta(days=7)
    #: how long a payment waits for 3-D Secure before it is declined (5206)
    three_ds_timeout: timedelta = timedelta(minutes=20)
    auto_confirm_after: timedelta | None = None
    refund_window: timedelta = timedelta(days=365)
    idempotency_ttl: timedelta = timedelta(hours=1)
    duplicate_notifications: bool = False
    #: deliver notifications at the end of the API request that caused them; when
    #: off, they wait for ``Sandbox.deliver_pending`` or the clock.
    deliver_immediately: bool = True
    max_concurrent_requests: int = 5
    #: the bank page URL put in 3-D Secure answers; ``None``: ``<host>/acs``; a path
    #: (``/sandbox/acs``, a sandbox mounted in a shop) goes on ``<host>``: the answer
    #: is always absolute, as a real gateway's.
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
