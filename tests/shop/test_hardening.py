"""Headers and markup of the payment pages: CSP with a nonce, no caching, no inline
handlers, card inputs without names."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from flask import Flask

from checkout_kit.shop import CheckoutKit

from .conftest import WITH_3DS, Shop

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "shop" / "checkout_kit"


def csp(response: object) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]  # type: ignore[attr-defined]
    return {d.split()[0]: d.split()[1:] for d in header.split("; ")}


def assert_hardened(response: object, *, no_store: bool = True) -> dict[str, list[str]]:
    headers = response.headers  # type: ignore[attr-defined]
    policy = csp(response)
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert headers["Referrer-Policy"] == "no-referrer"
    if no_store:
        assert headers["Cache-Control"] == "no-store"
    return policy


def test_form_page_policy_and_markup(shop: Shop) -> None:
    payment = shop.create()
    response = shop.client.get(f"/checkout/pay/{payment.id}/form")
    policy = assert_hardened(response)
    nonce = re.search(r'<script nonce="([^"]+)"', response.text).group(1)  # type: ignore[union-attr]
    assert policy["script-src"] == [f"'nonce-{nonce}'", "'self'"]  # the sandbox is mounted here
    assert policy["frame-src"] == ["'none'"] and policy["form-action"] == ["'self'"]
    assert '<script src="/sandbox/checkout.js"></script>' in response.text
    inputs = re.findall(r"<input[^>]*>", response.text)
    card = [i for i in inputs if "data-cp=" in i]
    assert len(card) == 3 and all(" name=" not in i for i in card)
    autocomplete = {re.search(r'autocomplete="([^"]+)"', i).group(1) for i in inputs  # type: ignore[union-attr]
                    if "autocomplete=" in i}
    assert {"cc-number", "cc-exp", "cc-csc", "cc-name"} <= autocomplete
    assert all('inputmode="numeric"' in i for i in card)
    assert 'name="viewport"' in response.text


def test_a_fresh_nonce_per_response(shop: Shop) -> None:
    payment = shop.create()
    first = csp(shop.client.get(f"/checkout/pay/{payment.id}"))["script-src"][0]
    second = csp(shop.client.get(f"/checkout/pay/{payment.id}"))["script-src"][0]
    assert first != second


def test_three_ds_page_posts_to_the_bank_only(shop: Shop) -> None:
    payment = shop.create()
    response = shop.pay(payment.id, WITH_3DS)
    policy = assert_hardened(response)
    assert policy["form-action"] == ["'self'"]  # the mounted sandbox's bank page
    assert policy["frame-src"] == ["'none'"]
    hidden = re.findall(r'<input type="hidden" name="([^"]+)"', response.text)
    assert hidden == ["PaReq", "MD", "TermUrl"]
    assert '<button type="submit"' in response.text  # works without JavaScript


def test_every_page_is_hardened_and_result_pages_too(shop: Shop) -> None:
    payment = shop.create()
    assert_hardened(shop.client.get(f"/checkout/payments/{payment.id}"))
    assert_hardened(shop.client.get("/checkout/payments/nope"))
    widget = assert_hardened(shop.client.get(f"/checkout/pay/{payment.id}/widget"))
    assert widget["frame-src"] == ["'self'"]


def test_no_inline_event_handlers_or_scripts_in_templates() -> None:
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text("utf-8")
        assert not re.search(r"\son[a-z]+\s*=", text), path
        for tag in re.findall(r"<script[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)


def external_sandbox_app(tmp_path: Path, **config: object) -> Flask:
    app = Flask("external", instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="s", CHECKOUT_KIT_PUBLIC_ID="pk", CHECKOUT_KIT_API_SECRET="x",
                      CHECKOUT_KIT_SANDBOX=True,
                      CHECKOUT_KIT_SANDBOX_URL="http://127.0.0.1:8787",
                      CHECKOUT_KIT_DATABASE_URL=f"sqlite:///{tmp_path}/l.sqlite3", **config)
    CheckoutKit(app)
    return app


def test_origins_of_a_sandbox_at_a_url(tmp_path: Path) -> None:
    from checkout_kit.ledger import upgrade

    app = external_sandbox_app(tmp_path, CHECKOUT_KIT_API_TRANSPORT=httpx.MockTransport(
        lambda request: httpx.Response(500)))
    upgrade(f"sqlite:///{tmp_path}/l.sqlite3")
    with app.test_request_context():
        from checkout_kit.shop.state import state

        kit = state(app)
        assert kit.settings.api_url == "http://127.0.0.1:8787"
        payment = CheckoutKit().create_payment(invoice_id="i", amount="10", description="d")
    client = app.test_client()
    form = csp(client.get(f"/checkout/pay/{payment.id}/form"))
    assert form["script-src"][1:] == ["http://127.0.0.1:8787"]
    widget_page = client.get(f"/checkout/pay/{payment.id}/widget")
    widget = csp(widget_page)
    assert widget["script-src"][1:] == ["http://127.0.0.1:8787"]
    assert widget["frame-src"] == ["http://127.0.0.1:8787"]
    assert 'src="http://127.0.0.1:8787/bundles/cloudpayments.js"' in widget_page.text


def test_the_framed_three_ds_variant(tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes]
                                     ) -> None:
    from .conftest import make_shop, path_of

    shop = make_shop(tmp_path, cloudpayments_sandbox_keys, CHECKOUT_KIT_THREEDS_IFRAME=True)
    payment = shop.create()
    response = shop.pay(payment.id, WITH_3DS)
    policy = assert_hardened(response)
    assert policy["frame-src"] == ["'self'"] and policy["form-action"] == ["'self'"]
    assert 'target="ck-acs-frame"' in response.text
    assert '<iframe name="ck-acs-frame"' in response.text
    term_url, fields = shop.bank(response.text)
    back = shop.client.post(path_of(term_url), data=fields)
    assert back.status_code == 303 and back.headers["Location"].endswith("?frame=1")
    # The last page in the frame may be framed by our own pages only, and sends the
    # whole window to the result.
    exit_page = shop.client.get(path_of(back.headers["Location"]))
    exit_policy = csp(exit_page)
    assert exit_policy["frame-ancestors"] == ["'self'"]
    assert "X-Frame-Options" not in exit_page.headers
    assert f'href="/checkout/payments/{payment.id}" target="_top"' in exit_page.text


def test_an_app_template_overrides_ours_by_path(tmp_path: Path,
                                               cloudpayments_sandbox_keys: dict[int, bytes]
                                               ) -> None:
    from .conftest import make_shop

    shop = make_shop(tmp_path, cloudpayments_sandbox_keys)
    override = tmp_path / "templates" / "checkout_kit"
    override.mkdir(parents=True)
    (override / "pending.html").write_text(
        '{% extends "checkout_kit/base.html" %}{% block content %}OUR OWN PENDING PAGE '
        "{{ payment.id }}{% endblock %}", "utf-8")
    shop.app.template_folder = str(tmp_path / "templates")
    shop.app.jinja_env.cache = {}
    payment = shop.create()
    page = shop.client.get(f"/checkout/payments/{payment.id}")
    assert f"OUR OWN PENDING PAGE {payment.id}" in page.text
    assert "checkout_kit.css" in page.text  # the rest of ours still applies


def test_only_the_kits_pages_enter_the_shops_template_namespace() -> None:
    # The sandbox's and the demo's templates are no shop's business.
    from checkout_kit.shop.views import bp

    assert bp.jinja_loader is not None
    names = bp.jinja_loader.list_templates()
    assert "checkout_kit/form.html" in names
    assert [n for n in names if not n.startswith("checkout_kit/")
            or n.startswith("checkout_kit/demo/")] == []


@pytest.mark.parametrize("csrf_first", [True, False], ids=["csrf_first", "csrf_after"])
def test_flask_wtf_csrf_protection_leaves_the_pages_alone(
        tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes], csrf_first: bool) -> None:
    # CSRFProtect set up before or after the kit: the card form (its own SessionCSRF
    # token), the TermUrl (a signed URL) and the notifications (an HMAC) all work,
    # while the app's other POST routes stay protected.
    from flask_wtf.csrf import CSRFProtect

    from checkout_kit.ledger import upgrade
    from checkout_kit.pytest_plugin import SANDBOX_API_SECRET, SANDBOX_PUBLIC_ID, send_notification
    from checkout_kit.sandbox import create_sandbox_app, sandbox_of
    from checkout_kit.shop import mount_sandbox
    from checkout_kit.shop.state import state

    from .conftest import NO_3DS, Shop, path_of

    app = Flask("with_flask_wtf", instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="k", CHECKOUT_KIT_DATABASE_URL=f"sqlite:///{tmp_path}/l.db")

    @app.post("/elsewhere")
    def elsewhere() -> str:
        return "ok"

    if csrf_first:
        CSRFProtect(app)
    sandbox_app = create_sandbox_app(public_id=SANDBOX_PUBLIC_ID, api_secret=SANDBOX_API_SECRET,
                                     keys=cloudpayments_sandbox_keys, acs_url="/sandbox/acs")
    mount_sandbox(app, sandbox_app)
    hooks = len(app.before_request_funcs.get(None, []))
    kit = CheckoutKit(app)
    # Exempted once at init_app when it can be; else one hook for the first request.
    assert len(app.before_request_funcs.get(None, [])) - hooks == (0 if csrf_first else 1)
    if not csrf_first:
        CSRFProtect(app)
    upgrade(state(app).settings.database_url)
    shop = Shop(app, app.test_client(), kit, sandbox_of(sandbox_app))
    assert shop.client.post("/elsewhere").status_code == 400  # CSRF is on
    payment = shop.create()
    response = shop.pay(payment.id, WITH_3DS)
    assert response.status_code == 200 and "ck-acs" in response.text
    term_url, fields = shop.bank(response.text)
    assert shop.client.post(path_of(term_url), data=fields).status_code == 303
    assert str(state(app).ledger.get(payment.id).status) == "succeeded"
    other = shop.create("order-2")
    assert shop.pay(other.id, NO_3DS).status_code == 303
    sent = send_notification(shop.client, "Pay", path="/checkout/notifications/pay",
                             secret=SANDBOX_API_SECRET,
                             fields={"InvoiceId": "order-2", "Amount": "100.00",
                                     "Currency": "RUB"})
    assert sent.response.mimetype == "application/json"
    assert (sent.status_code, sent.code) == (200, 0)
    assert len(state(app).inbox.list()) == 1  # in the audit log
    state(app).ledger.engine.dispose()


def test_a_bank_elsewhere_is_the_only_form_action(shop: Shop,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shop.sandbox.settings, "acs_url", "https://acs.bank.example/3ds")
    payment = shop.create()
    response = shop.pay(payment.id, WITH_3DS)
    assert response.status_code == 200
    assert assert_hardened(response)["form-action"] == ["https://acs.bank.example"]
    assert 'action="https://acs.bank.example/3ds"' in response.text
