"""pytest fixtures for shop test suites: an in-process CloudPayments sandbox.

Installed as a ``pytest11`` plugin, so the fixtures are available as soon as
checkout_kit is installed:

``cloudpayments_sandbox``
    A fresh :class:`~checkout_kit.sandbox.Sandbox` per test (its Flask app is
    ``cloudpayments_sandbox.app``), with Public ID :data:`SANDBOX_PUBLIC_ID` and API
    secret :data:`SANDBOX_API_SECRET`. Drive it from tests: ``.advance(...)``,
    ``.configure_notification(...)``, ``.make_cryptogram(...)``, ``.faults.add(...)``.
``cloudpayments_client``
    A :class:`~checkout_kit.client.CloudPaymentsClient` talking to that sandbox
    in-process (``httpx.WSGITransport``, base URL :data:`SANDBOX_BASE_URL`), whose
    retries do not sleep.
``cloudpayments_sandbox_options``
    Override it to pass options to ``create_sandbox_app`` (for example
    ``{"notification_transport": httpx.WSGITransport(app=my_shop_app)}``).

The RSA key is generated once per session (``cloudpayments_sandbox_keys``).
This module imports nothing heavy until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .sandbox.rules.settings import DEFAULT_PUBLIC_ID, DEFAULT_SECRET

if TYPE_CHECKING:
    from .client import CloudPaymentsClient
    from .sandbox import Sandbox

__all__ = [
    "SANDBOX_API_SECRET",
    "SANDBOX_BASE_URL",
    "SANDBOX_PUBLIC_ID",
    "cloudpayments_client",
    "cloudpayments_sandbox",
    "cloudpayments_sandbox_keys",
    "cloudpayments_sandbox_options",
]

SANDBOX_PUBLIC_ID = DEFAULT_PUBLIC_ID
SANDBOX_API_SECRET = DEFAULT_SECRET
SANDBOX_BASE_URL = "http://cloudpayments.sandbox"


@pytest.fixture(scope="session")
def cloudpayments_sandbox_keys() -> dict[int, bytes]:
    """``{4: private PEM}``, generated once per test session."""
    from .cryptogram import generate_key_pair

    private_pem, _ = generate_key_pair(2048)
    return {4: private_pem}


@pytest.fixture
def cloudpayments_sandbox_options() -> dict[str, Any]:
    """Extra keyword arguments for ``create_sandbox_app`` (override in a conftest)."""
    return {}


@pytest.fixture
def cloudpayments_sandbox(
    cloudpayments_sandbox_keys: dict[int, bytes],
    cloudpayments_sandbox_options: dict[str, Any],
) -> Iterator[Sandbox]:
    """A fresh sandbox per test."""
    from .sandbox import create_sandbox_app, sandbox_of

    options = {
        "public_id": SANDBOX_PUBLIC_ID,
        "api_secret": SANDBOX_API_SECRET,
        "keys": cloudpayments_sandbox_keys,
        **cloudpayments_sandbox_options,
    }
    sandbox = sandbox_of(create_sandbox_app(**options))
    yield sandbox
    sandbox.close()


@pytest.fixture
def cloudpayments_client(cloudpayments_sandbox: Sandbox) -> Iterator[CloudPaymentsClient]:
    """A client wired to ``cloudpayments_sandbox`` in-process."""
    import httpx

    from .client import CloudPaymentsClient

    client = CloudPaymentsClient(
        cloudpayments_sandbox.public_id,
        cloudpayments_sandbox.api_secret,
        base_url=SANDBOX_BASE_URL,
        transport=httpx.WSGITransport(app=cloudpayments_sandbox.app),
        sleep=lambda _seconds: None,
    )
    yield client
    client.close()
