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

``cloudpayments_notify``
    :func:`send_notification`: sign a realistic notification of any type and deliver
    it to the Flask app under test through its test client, as the gateway would.

The RSA key is generated once per session (``cloudpayments_sandbox_keys``).
This module imports nothing heavy until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from .sandbox.rules.settings import DEFAULT_PUBLIC_ID, DEFAULT_SECRET

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

    from .client import CloudPaymentsClient
    from .sandbox import Sandbox

__all__ = [
    "SANDBOX_API_SECRET",
    "SANDBOX_BASE_URL",
    "SANDBOX_PUBLIC_ID",
    "SentNotification",
    "cloudpayments_client",
    "cloudpayments_notify",
    "cloudpayments_sandbox",
    "cloudpayments_sandbox_keys",
    "cloudpayments_sandbox_options",
    "send_notification",
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


# --------------------------------------------------------------------------- notifications

#: An address inside the gateway's published sender networks (docs/gateway.md §5.1), so
#: an app with the sender-IP check on accepts test notifications by default.
GATEWAY_SENDER_ADDRESS = "185.98.81.1"


@dataclass(frozen=True)
class SentNotification:
    """What :func:`send_notification` sent and what the app answered.

    ``code`` is the answer's ``code`` as the gateway reads it (``None`` when the
    answer is not JSON ``{"code": N}``).
    """

    response: TestResponse = field(repr=False)
    fields: Mapping[str, str] = field(repr=False)
    code: int | None

    @property
    def status_code(self) -> int:
        """The HTTP status of the answer."""
        return self.response.status_code


def send_notification(
    target: Flask | FlaskClient,
    type: str,
    *,
    path: str,
    secret: str | bytes = SANDBOX_API_SECRET,
    fields: Mapping[str, str] | None = None,
    method: str = "POST",
    encoding: str = "utf-8",
    headers: Mapping[str, str] | None = None,
    remote_addr: str = GATEWAY_SENDER_ADDRESS,
) -> SentNotification:
    """Deliver a signed notification of ``type`` to ``path`` of a Flask app (or of its
    test client), as the gateway would: a form body for POST, the query string for
    GET, in ``encoding``, with both HMAC headers made with ``secret``.

    The fields are a realistic sample of the type with a fresh ``TransactionId`` and
    ``DateTime``; ``fields`` replaces or adds some (pass the same ``TransactionId``
    twice to test deduplication). ``headers`` are added last, to test a tampered or
    missing signature.
    """
    from .testing import build_notification, sample_fields
    from .webhooks import read_answer

    client = target.test_client() if hasattr(target, "test_client") else target
    sent = sample_fields(type, fields)
    outgoing = build_notification(type, sent, secret, method=method, encoding=encoding)
    all_headers = {**outgoing.headers, **(headers or {})}
    environ = {"REMOTE_ADDR": remote_addr}
    if outgoing.method == "GET":
        response = client.get(path, query_string=outgoing.body.decode("ascii"),
                              headers=all_headers, environ_base=environ)
    else:
        response = client.post(path, data=outgoing.body, headers=all_headers,
                               environ_base=environ)
    return SentNotification(response, sent, read_answer(response.get_data()))


@pytest.fixture
def cloudpayments_notify() -> Callable[..., SentNotification]:
    """:func:`send_notification`, as a fixture."""
    return send_notification
