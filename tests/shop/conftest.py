"""Fixtures for the extension's tests: a shop app with the sandbox mounted in-process.

``shop`` is a :class:`Shop`: the Flask app (``CheckoutKit`` + the sandbox at
``/sandbox``), its test client, the kit and the sandbox. Pages are driven with the
Flask test client; the 3-D Secure bank page is the sandbox's own, reached through
the same client.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from flask import Flask
from flask.testing import FlaskClient

from checkout_kit.ledger import upgrade
from checkout_kit.notifications import NotificationType
from checkout_kit.pytest_plugin import SANDBOX_API_SECRET, SANDBOX_PUBLIC_ID
from checkout_kit.sandbox import Sandbox, create_sandbox_app, sandbox_of
from checkout_kit.shop import CheckoutKit, mount_sandbox
from checkout_kit.shop.state import KitState, state

NO_3DS = "4000000000003055"
WITH_3DS = "4242424242424242"
DECLINED = "4000056655665556"  # 5051, no 3-D Secure
DECLINED_3DS = "4012888888881881"  # 3-D Secure, then 5051


@dataclass
class Shop:
    """One shop app under test."""

    app: Flask
    client: FlaskClient
    kit: CheckoutKit
    sandbox: Sandbox

    @property
    def state(self) -> KitState:
        return state(self.app)

    def create(self, invoice: str = "order-1", amount: str = "100.00", **kw: Any) -> Any:
        with self.app.test_request_context():
            return self.kit.create_payment(invoice_id=invoice, amount=amount,
                                           description=kw.pop("description", "Order"), **kw)

    def get(self, payment_id: str) -> Any:
        """The payment as the kit has it now."""
        with self.app.app_context():
            return self.kit.get(payment_id)

    def cli(self, *args: str, **kw: Any) -> Any:
        """``flask checkout ARGS`` on this app."""
        return self.app.test_cli_runner().invoke(args=["checkout", *args], **kw)

    def form_page(self, payment_id: str, **headers: str) -> tuple[str, str]:
        """GET the card form; returns (html, csrf token)."""
        response = self.client.get(f"/checkout/pay/{payment_id}/form", headers=headers)
        assert response.status_code == 200, response.text
        return response.text, field_value(response.text, "csrf_token")

    def pay(self, payment_id: str, card: str = NO_3DS, **extra: str) -> Any:
        """Fill in the form as the page script would: a cryptogram, never the card."""
        _, token = self.form_page(payment_id)
        data = {"csrf_token": token, "cryptogram": self.sandbox.make_cryptogram(card),
                "name": "IVAN PETROV", "email": "payer@example.com", **extra}
        return self.client.post(f"/checkout/pay/{payment_id}/form", data=data)

    def bank(self, threeds_html: str, action: str = "confirm") -> tuple[str, dict[str, str]]:
        """Go through the sandbox bank page; returns (TermUrl, {MD, PaRes})."""
        acs = form_of(threeds_html, "ck-acs")
        page = self.client.post(path_of(acs["action"]), data=acs["fields"])
        assert page.status_code == 200, page.text
        done = self.client.post("/sandbox/acs/complete", data={**acs["fields"], "action": action})
        assert done.status_code == 200, done.text
        back = form_of(done.text)
        return back["action"], back["fields"]


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def field_value(html: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', html)
    assert match, f"no input {name}"
    return unescape(match.group(1))


def form_of(html: str, form_id: str | None = None) -> dict[str, Any]:
    """The first form (or the one with ``form_id``): action and hidden fields."""
    pattern = (rf'<form[^>]*id="{form_id}"[^>]*>(.*?)</form>' if form_id
               else r"<form[^>]*>(.*?)</form>")
    match = re.search(pattern, html, re.S)
    assert match, "no form"
    tag = match.group(0)[: match.group(0).index(">") + 1]
    action = unescape(re.search(r'action="([^"]*)"', tag).group(1))  # type: ignore[union-attr]
    fields = {unescape(n): unescape(v) for n, v in
              re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', match.group(1))}
    return {"action": action, "fields": fields}


def shop_catalog(folder: Path, language: str, entries: dict[str, str]) -> Path:
    """A shop's own compiled catalog for ``language`` under ``folder`` (the directory to
    put in ``CHECKOUT_KIT_TRANSLATION_DIRS``)."""
    catalog = Catalog(locale=language)
    for message, translation in entries.items():
        catalog.add(message, translation)
    target = folder / language / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / "checkout_kit.mo").open("wb") as fh:
        write_mo(fh, catalog)
    return folder


#: Where the sandbox sends notifications (in-process, to the shop app).
SHOP_ORIGIN = "http://shop.test"


def make_shop(tmp_path: Path, keys: dict[int, bytes], *, notify: bool = False,
              wrap_notifications: Callable[[httpx.BaseTransport], httpx.BaseTransport]
              | None = None, **config: Any) -> Shop:
    """A shop with the sandbox mounted. With ``notify`` the sandbox sends every
    notification type (Check included) to the shop's routes, in-process, through
    ``wrap_notifications(transport)`` when given (a shop that is down...)."""
    app = Flask("shop_under_test", instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="test secret", TESTING=True,
                      CHECKOUT_KIT_DATABASE_URL=f"sqlite:///{tmp_path}/ledger.sqlite3", **config)
    options: dict[str, Any] = {}
    if notify:
        transport: httpx.BaseTransport = httpx.WSGITransport(app=app)
        options["notification_transport"] = (
            transport if wrap_notifications is None else wrap_notifications(transport))
    sandbox_app = create_sandbox_app(public_id=SANDBOX_PUBLIC_ID, api_secret=SANDBOX_API_SECRET,
                                     keys=keys, acs_url="/sandbox/acs", **options)
    mount_sandbox(app, sandbox_app)
    kit = CheckoutKit(app)
    upgrade(state(app).settings.database_url)
    made = Shop(app, app.test_client(), kit, sandbox_of(sandbox_app))
    if notify:
        for kind in NotificationType:
            address = f"{SHOP_ORIGIN}/checkout/notifications/{kind.value.lower()}"
            if kind is NotificationType.CHECK:
                # The API cannot set Check (docs/gateway.md §3.5): the merchant account.
                made.sandbox.configure_notification(kind, address, http_method="POST")
            else:  # through the API, as a shop would
                made.state.client.update_notification_settings(
                    kind.value, is_enabled=True, http_method="POST", address=address)
    return made


@pytest.fixture
def shop(tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes]) -> Iterator[Shop]:
    made = make_shop(tmp_path, cloudpayments_sandbox_keys)
    yield made
    made.state.ledger.engine.dispose()
    made.state.client.close()


@pytest.fixture
def notified_shop(tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes]) -> Iterator[Shop]:
    """A shop the sandbox sends its notifications to (every type)."""
    made = make_shop(tmp_path, cloudpayments_sandbox_keys, notify=True)
    yield made
    made.state.ledger.engine.dispose()
    made.state.client.close()


@pytest.fixture
def now(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The ``shop`` ledger's clock, stopped at ``now[0]`` (2026-03-01 12:00 UTC) for the
    test to move."""
    moment = [datetime(2026, 3, 1, 12, 0, tzinfo=UTC)]
    monkeypatch.setattr(shop.state.ledger, "_clock", lambda: moment[0])
    return moment


def start_process(folder: Path, *, upgraded: bool = True, **config: Any) -> Shop:
    """A new "process" of a shop on ``folder``: its own app, sandbox object and
    connections, the sandbox mounted with its default state file and the ledger at its
    default place, both in ``folder`` (a restart, a worker or a ``flask checkout``
    command makes one). Close it with :func:`stop_process`."""
    app = Flask("restarted_shop", instance_path=str(folder))
    app.config.update(SECRET_KEY="test secret", TESTING=True, **config)
    sandbox_app = mount_sandbox(app)
    kit = CheckoutKit(app)
    if upgraded:
        upgrade(state(app).settings.database_url)
    return Shop(app, app.test_client(), kit, sandbox_of(sandbox_app))


def stop_process(shop: Shop) -> None:
    """Close what :func:`start_process` opened."""
    shop.state.ledger.engine.dispose()
    shop.state.client.close()
    shop.sandbox.close()
