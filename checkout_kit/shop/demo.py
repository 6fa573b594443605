"""``checkout-kit demo``: a small shop using the extension, with the sandbox beside it.

One process, one port: the shop at ``/``, its payment pages at ``/checkout``, the
sandbox at ``/sandbox`` (plus the root paths its widget uses). The ledger and the
sandbox's state (its keys, its payments) are SQLite files in the instance folder, so a
restarted demo keeps both.

``/`` shows a product with a Pay button for each mode (card form or widget);
``/ledger`` lists the payments with their history and has confirm, void and refund
buttons; both link to the sandbox's pages.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from flask import Flask, abort, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response
from wtforms import Form, HiddenField

from .._resources import resource_dir
from ..errors import CheckoutKitError
from ..sandbox import TEST_CARDS
from ..sandbox.cli import DEFAULT_PORT
from .extension import CheckoutKit, mount_sandbox
from .forms import csrf_meta
from .security import PagePolicy, harden, nonce, page_policy
from .state import state

__all__ = ["PRODUCT", "create_demo_app", "demo_command"]

#: What the demo sells.
PRODUCT: dict[str, Any] = {
    "title": "Чайник «Самовар-2000»",
    "title_en": "The Samovar-2000 kettle",
    "price": Decimal("1490.00"),
    "currency": "RUB",
}

_ACTIONS = ("confirm", "void", "refund")


class _ActionForm(Form):  # type: ignore[misc]  # WTForms is untyped
    """A demo button's POST (CSRF-protected like the payment form)."""

    mode = HiddenField()


def _form(formdata: Any = None) -> _ActionForm:
    return _ActionForm(formdata, meta=csrf_meta(
        session, str(state().app.config["SECRET_KEY"]), "demo-actions"))


def _secret_key(instance: Path) -> str:
    # Kept in the instance folder, so that a restart keeps sessions and TermUrls valid.
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def create_demo_app(instance_path: str | Path | None = None, **config: Any) -> Flask:
    """The demo shop, its sandbox mounted at ``/sandbox``, its ledger upgraded."""
    from ..ledger.migrations import upgrade

    app = Flask(
        "checkout_kit.shop.demo",
        instance_path=str(Path(instance_path).resolve()) if instance_path else None,
        instance_relative_config=True,
        template_folder=str(resource_dir("templates")),
        static_folder=None,
    )
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app.config["SECRET_KEY"] = _secret_key(instance)
    app.config.update(config)
    mount_sandbox(app, prefix="/sandbox", state_path=instance / "sandbox.sqlite3",
                  site_name="checkout_kit demo")
    kit = CheckoutKit(app)
    upgrade(state(app).settings.database_url)

    @app.after_request
    def _headers(response: Response) -> Response:
        if request.blueprint is None and request.endpoint is not None:
            harden(response)
        return response

    def render(template: str, **context: Any) -> str:
        page_policy(PagePolicy())
        return render_template(f"demo/{template}", nonce=nonce(),
                               product=PRODUCT, **context)

    @app.get("/")
    def index() -> str:
        return render("index.html", form=_form(),
                      cards=sorted(TEST_CARDS.items(), key=lambda kv: kv[1].label))

    @app.post("/buy")
    def buy() -> Response:
        form = _form(request.form)
        mode = request.form.get("mode")
        scheme = request.form.get("scheme", "charge")
        if not form.validate() or mode not in ("form", "widget") or scheme not in (
                "charge", "auth"):
            abort(400, "Reload the page and try again.")
        payment = kit.create_payment(
            invoice_id=f"demo-{secrets.token_hex(6)}", amount=PRODUCT["price"],
            currency=PRODUCT["currency"], description=PRODUCT["title"], scheme=scheme,
            account_id="demo-customer", success_url=url_for("ledger", _external=True),
            fail_url=url_for("index", _external=True))
        return redirect(url_for("checkout_kit.pay_in", payment_id=payment.id, mode=mode),
                        code=303)

    @app.get("/ledger")
    def ledger() -> str:
        kit_state = state()
        rows = [(p, kit_state.ledger.history(p.id))
                for p in kit_state.ledger.list_payments(limit=200)]
        return render("ledger.html", rows=rows, form=_form(),
                      message=request.args.get("message"))

    @app.post("/ledger/<payment_id>/<action>")
    def act(payment_id: str, action: str) -> Response:
        if action not in _ACTIONS or not _form(request.form).validate():
            abort(400, "Reload the page and try again.")
        amount = request.form.get("amount") or None
        try:
            if action == "void":
                kit.void(payment_id)
            else:
                getattr(kit, action)(payment_id, amount)
            message = f"{action}: ok"
        except CheckoutKitError as exc:
            message = f"{action}: {type(exc).__name__}: {exc}"
        return redirect(url_for("ledger", message=message), code=303)

    return app


@click.command("demo", short_help="Run the demo shop with the sandbox beside it.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 picks a free one).")
@click.option("--instance", "instance_path", type=click.Path(file_okay=False, path_type=Path),
              default=Path("instance"), show_default=True,
              help="Folder for the ledger, the sandbox state and the secret key.")
def demo_command(host: str, port: int, instance_path: Path) -> None:
    """Run the demo shop with the sandbox beside it (one process, one port)."""
    from werkzeug.serving import make_server

    from ..sandbox import sandbox_of
    from ..sandbox.web.app import serve_until_interrupted

    app = create_demo_app(instance_path)
    server = make_server(host, port, app, threaded=True)
    base = f"http://{host}:{server.server_port}"
    sandbox_app = app.wsgi_app.sandbox  # type: ignore[attr-defined]
    click.echo("checkout_kit demo shop")
    click.echo(f"  shop      {base}/")
    click.echo(f"  ledger    {base}/ledger")
    click.echo(f"  sandbox   {base}/sandbox/_sandbox/transactions")
    click.echo(f"  instance  {Path(app.instance_path)}")
    serve_until_interrupted(server, sandbox_of(sandbox_app))
