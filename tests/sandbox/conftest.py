"""Fixtures for the sandbox tests: the plugin's sandbox and client, plus a fake shop
that records the notifications the sandbox sends."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from checkout_kit.notifications import NotificationType

# The plugin's fixtures (also registered as a pytest11 entry point once checkout_kit is
# installed; importing them here works from a plain checkout too, where a nested
# conftest may not declare ``pytest_plugins``).
from checkout_kit.pytest_plugin import (  # noqa: F401
    cloudpayments_client,
    cloudpayments_sandbox,
    cloudpayments_sandbox_keys,
)

SHOP = "http://shop.test"


@dataclass
class Received:
    """One notification request the shop got."""

    type: str
    method: str
    raw: bytes
    headers: httpx.Headers
    fields: dict[str, str]


@dataclass
class Shop:
    """A shop endpoint behind ``httpx.MockTransport``. Notifications for type ``T``
    go to ``/notify/T``. ``answers[T]`` is a list of answers used one per request
    (then ``{"code": 0}``): an int HTTP status with ``{"code": 0}``, a ``(status,
    body)`` pair, or an exception instance to raise."""

    received: list[Received] = field(default_factory=list)
    answers: dict[str, list[Any]] = field(default_factory=dict)

    def handler(self, request: httpx.Request) -> httpx.Response:
        kind = request.url.path.rsplit("/", 1)[-1]
        raw = request.content if request.method == "POST" else request.url.query
        charset = "cp1251" if "1251" in request.headers.get("content-type", "") or (
            "cp1251" in request.url.path) else "utf-8"
        fields = dict(parse_qsl(raw.decode("ascii"), keep_blank_values=True, encoding=charset))
        self.received.append(Received(kind, request.method, raw, request.headers, fields))
        queue = self.answers.get(kind) or []
        answer = queue.pop(0) if queue else 200
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, tuple):
            status, body = answer
            return httpx.Response(status, content=body if isinstance(body, bytes)
                                  else json.dumps(body).encode())
        return httpx.Response(answer, json={"code": 0})

    def of(self, kind: str) -> list[Received]:
        """What arrived for one type."""
        return [r for r in self.received if r.type == kind]

    def url(self, kind: str) -> str:
        """The address to configure for ``kind``."""
        return f"{SHOP}/notify/{kind}"


@pytest.fixture
def shop() -> Shop:
    return Shop()


@pytest.fixture
def cloudpayments_sandbox_options(shop: Shop) -> dict[str, Any]:
    return {"notification_transport": httpx.MockTransport(shop.handler)}


@pytest.fixture
def subscribe(cloudpayments_sandbox: Any, shop: Shop) -> Callable[..., None]:  # noqa: F811
    """``subscribe("Pay", "Fail", method="POST")``: send those types to the shop."""

    def configure(*kinds: str, method: str = "POST", encoding: str = "UTF8") -> None:
        for kind in kinds or [t.value for t in NotificationType]:
            cloudpayments_sandbox.configure_notification(
                kind, shop.url(kind), http_method=method, encoding=encoding)

    return configure
