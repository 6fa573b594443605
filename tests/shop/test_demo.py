"""The demo shop: a product, a Pay button per mode, a ledger page with actions."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from checkout_kit.cli import main
from checkout_kit.ledger import PaymentStatus
from checkout_kit.sandbox import sandbox_of
from checkout_kit.shop.demo import create_demo_app
from checkout_kit.shop.state import state

from .conftest import NO_3DS, field_value, path_of


def test_demo_buys_pays_and_acts_from_the_ledger(tmp_path: Path) -> None:
    app = create_demo_app(tmp_path / "instance")
    client = app.test_client()
    home = client.get("/")
    assert home.status_code == 200
    assert 'value="form"' in home.text and 'value="widget"' in home.text
    assert "/sandbox/_sandbox/transactions" in home.text
    token = field_value(home.text, "csrf_token")
    assert client.post("/buy", data={"mode": "form"}).status_code == 400  # no CSRF token
    bought = client.post("/buy", data={"csrf_token": token, "mode": "form", "scheme": "auth"})
    assert bought.status_code == 303 and "/checkout/pay/" in bought.headers["Location"]
    form = client.get(path_of(bought.headers["Location"]))
    payment_id = path_of(bought.headers["Location"]).split("/")[3]
    packet = sandbox_of(app.wsgi_app.sandbox).make_cryptogram(NO_3DS)  # type: ignore[attr-defined]
    paid = client.post(f"/checkout/pay/{payment_id}/form",
                       data={"csrf_token": field_value(form.text, "csrf_token"),
                             "cryptogram": packet})
    assert paid.status_code == 303
    ledger = client.get("/ledger")
    assert payment_id in ledger.text and 'data-status="authorized"' in ledger.text
    assert re.search(r"created: — → created|→ authorized", ledger.text)
    token = field_value(ledger.text, "csrf_token")
    done = client.post(f"/ledger/{payment_id}/confirm", data={"csrf_token": token})
    assert done.status_code == 303 and "confirm:+ok" in done.headers["Location"]
    assert state(app).ledger.get(payment_id).status is PaymentStatus.SUCCEEDED
    refused = client.post(f"/ledger/{payment_id}/void", data={"csrf_token": token})
    assert "InvalidTransitionError" in client.get(path_of(refused.headers["Location"])).text
    assert (tmp_path / "instance" / "checkout_kit.sqlite3").is_file()


def test_demo_is_a_checkout_kit_command() -> None:
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert result.exit_code == 0 and "--port" in result.output


def test_a_demo_post_without_a_session_is_refused_not_a_500(tmp_path: Path) -> None:
    # The demo's buttons share the payment form's CSRF (forms.csrf_meta): a POST with
    # no session cookie at all is a 400, and so is a token of another page.
    app = create_demo_app(tmp_path / "instance")
    client = app.test_client()
    refused = client.post("/buy", data={"csrf_token": "x", "mode": "form", "scheme": "auth"})
    assert refused.status_code == 400
    token = field_value(client.get("/").text, "csrf_token")
    bought = client.post("/buy", data={"csrf_token": token, "mode": "form", "scheme": "auth"})
    assert bought.status_code == 303
