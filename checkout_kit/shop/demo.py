"""``checkout-kit demo``: a small shop using the extension, with the sandbox beside it.

One process, one port: the shop at ``/``, its payment pages at ``/checkout``, the
sandbox at ``/sandbox`` (plus the root paths its widget uses). The ledger and the
sandbox's state (its keys, its payments) are SQLite files in the instance folder, so a
restarted demo keeps both. That folder is the user's data folder
(:func:`default_instance_path`) unless ``--instance`` says otherwise, never the current
directory.

``/`` shows a product with a Pay button for each mode (card form or widget) and the
sandbox's test cards; ``/ledger`` lists the payments, a page at a time, with their
history and the actions their status allows (:func:`actions_for`). Both pages speak
the payment pages' languages (the kit's catalogs, ``Accept-Language``).
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from babel import Locale, UnknownLocaleError
from babel.dates import LOCALTZ, format_datetime, format_timedelta, get_timezone_gmt
from flask import (
    Flask,
    abort,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response
from wtforms import Form, HiddenField

from .._resources import resource_dir
from ..cards import detect_brand, format_number
from ..errors import (
    APIConnectionError,
    AuthenticationError,
    CheckoutKitError,
    GatewayError,
    InvalidTransitionError,
    MoneyError,
    PaymentConflictError,
    PaymentDeclined,
    PaymentNotFoundError,
    RateLimitError,
    ServerError,
    UnknownOutcomeError,
)
from ..ledger.states import PAID, PENDING, PaymentStatus, can_transition
from ..ledger.store import Payment, PaymentEvent
from ..money import parse_amount
from ..sandbox import TEST_CARDS
from ..sandbox.cli import DEFAULT_PORT
from .extension import CheckoutKit, mount_sandbox
from .forms import csrf_meta
from .i18n import N_
from .security import PagePolicy, harden, nonce, page_policy
from .state import state
from .views import decline_reason, language, money_for_reader

__all__ = [
    "ACTIONS",
    "HOLD_PERIOD",
    "LEDGER_PAGE_SIZE",
    "PRODUCT",
    "LedgerAction",
    "actions_for",
    "create_demo_app",
    "default_instance_path",
    "demo_command",
    "hold_deadline",
]

log = logging.getLogger(__name__)

#: What the demo sells.
PRODUCT: dict[str, Any] = {
    "title": "Чайник «Самовар-2000»",
    "title_en": "The Samovar-2000 kettle",
    "price": Decimal("1490.00"),
    "currency": "RUB",
}

#: Payments on one page of ``/ledger`` (newest first).
LEDGER_PAGE_SIZE = 10

#: The longest the gateway keeps a two-stage hold: "a two-stage authorization must be
#: confirmed within up to 7 days (depends on the card) or it is cancelled
#: automatically" (docs/gateway.md §3.5; the sandbox's ``auth_expiry`` is the same).
#: Neither the gateway's answers nor the ledger carry the deadline itself, so the demo
#: computes it from when the ledger recorded the hold (:func:`hold_deadline`).
HOLD_PERIOD = timedelta(days=7)


def default_instance_path(environ: Mapping[str, str] | None = None,
                          platform: str | None = None, home: Path | None = None) -> Path:
    """Where ``checkout-kit demo`` keeps its ledger, sandbox state and secret key unless
    ``--instance`` says otherwise: ``checkout_kit/demo`` in the user's data folder, never
    the current directory.

    Linux and other Unix: ``$XDG_DATA_HOME`` when it is an absolute path (the XDG Base
    Directory rule), else ``~/.local/share``; macOS: ``~/Library/Application Support``;
    Windows: ``%LOCALAPPDATA%`` (else ``~/AppData/Local``). The arguments default to the
    running process's (tests pass their own).
    """
    env = os.environ if environ is None else environ
    system = sys.platform if platform is None else platform
    user_home = Path.home() if home is None else home
    if system == "win32":
        local = env.get("LOCALAPPDATA", "")
        base = Path(local) if local else user_home / "AppData" / "Local"
    elif system == "darwin":
        base = user_home / "Library" / "Application Support"
    else:
        xdg = env.get("XDG_DATA_HOME", "")
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else user_home / ".local" / "share"
    return base / "checkout_kit" / "demo"


# --------------------------------------------------------------------------- ledger page


@dataclass(frozen=True)
class LedgerAction:
    """One button of the ledger page: an operation that moves a payment to ``target``."""

    key: str
    """The URL segment and the button's ``data-action``."""
    label: str
    """The button's text (a catalog msgid)."""
    target: PaymentStatus
    """The status the operation moves the payment to, in the state machine's table."""
    on_money: bool
    """It acts on money held or taken (``states.PAID``), not on an unpaid payment."""
    takes_amount: bool
    """It may be given an amount (empty: all of it)."""
    done: str
    """The success message (msgid; ``%(amount)s``: the amount formatted)."""
    refused: str
    """"This payment cannot be ...: %(why)s" (msgid), when its status forbids it."""


#: The operations the ledger page offers. Which of them a payment gets is not written
#: here but derived from the state machine (:func:`actions_for`): void and cancel both
#: end ``cancelled``, one on a hold, the other on a payment nobody paid.
ACTIONS: tuple[LedgerAction, ...] = (
    LedgerAction("confirm", N_("Confirm"), PaymentStatus.SUCCEEDED, True, True,
                 N_("Confirmed: %(amount)s taken."),
                 N_("This payment cannot be confirmed: %(why)s")),
    LedgerAction("void", N_("Void"), PaymentStatus.CANCELLED, True, False,
                 N_("Voided: the hold of %(amount)s is released."),
                 N_("This payment cannot be voided: %(why)s")),
    LedgerAction("refund", N_("Refund"), PaymentStatus.REFUNDED, True, True,
                 N_("Refunded %(amount)s."),
                 N_("This payment cannot be refunded: %(why)s")),
    LedgerAction("cancel", N_("Cancel the order"), PaymentStatus.CANCELLED, False, False,
                 N_("Cancelled: this order will not be paid."),
                 N_("This payment cannot be cancelled: %(why)s")),
)
_BY_NAME = {action.key: action for action in ACTIONS}

#: A payment's status in words: the label the ledger page shows, and the end of a
#: refusal ("This payment cannot be refunded: it is not paid yet").
STATUS_LABELS: Mapping[PaymentStatus, str] = {
    PaymentStatus.CREATED: N_("created"),
    PaymentStatus.PROCESSING: N_("processing"),
    PaymentStatus.AWAITING_3DS: N_("at the bank's 3-D Secure page"),
    PaymentStatus.AUTHORIZED: N_("funds held"),
    PaymentStatus.SUCCEEDED: N_("paid"),
    PaymentStatus.FAILED: N_("failed"),
    PaymentStatus.CANCELLED: N_("cancelled"),
    PaymentStatus.REFUNDED: N_("refunded"),
    PaymentStatus.UNKNOWN: N_("outcome unknown"),
}
STATUS_REASONS: Mapping[PaymentStatus, str] = {
    PaymentStatus.CREATED: N_("it is not paid yet"),
    PaymentStatus.PROCESSING: N_("a payment of it is in progress"),
    PaymentStatus.AWAITING_3DS: N_("the buyer is at the bank's 3-D Secure page"),
    PaymentStatus.AUTHORIZED: N_("the money is held, not taken yet"),
    PaymentStatus.SUCCEEDED: N_("it is paid"),
    PaymentStatus.FAILED: N_("its payment failed"),
    PaymentStatus.CANCELLED: N_("it is cancelled"),
    PaymentStatus.REFUNDED: N_("it is refunded in full"),
    PaymentStatus.UNKNOWN: N_("the gateway's answer was lost; reconcile settles it"),
}
_SCHEMES = {"charge": N_("one stage"), "auth": N_("two stages")}


def actions_for(status: PaymentStatus | str) -> tuple[LedgerAction, ...]:
    """The actions a payment in ``status`` may take, from the state machine: those whose
    target the table (``states.can_transition``) allows from ``status``, on money
    (``states.PAID``) or on an unpaid payment as the action needs. None while the
    gateway's word is awaited (``states.PENDING``): a call in flight or an outcome
    unknown is settled first (the table would let ``unknown`` end ``cancelled``, but
    that is for the gateway's record to say, not for a button)."""
    current = PaymentStatus(status)
    if current in PENDING:
        return ()
    return tuple(action for action in ACTIONS if can_transition(current, action.target)
                 and (current in PAID) == action.on_money)


def hold_deadline(history: list[PaymentEvent]) -> tuple[datetime, datetime] | None:
    """When an authorized payment's hold was recorded and the latest the gateway keeps
    it (:data:`HOLD_PERIOD` after): ``(held_at, deadline)``, or ``None`` if the history
    holds no hold."""
    held = [event.created_at for event in history
            if event.new_status is PaymentStatus.AUTHORIZED]
    return (held[-1], held[-1] + HOLD_PERIOD) if held else None


@dataclass(frozen=True)
class _Row:
    """One payment as the ledger page shows it."""

    payment: Payment
    history: list[PaymentEvent]
    actions: tuple[LedgerAction, ...]
    hold: tuple[datetime, datetime] | None


def _locale(lang: str) -> Locale:
    try:
        return Locale.parse(lang)
    except (UnknownLocaleError, ValueError):
        return Locale("en")


def _when(moment: datetime, lang: str) -> str:
    # Babel's medium format in the page's locale, to the second, in the demo server's
    # time zone (the page says which): the developer runs the demo on their machine.
    return format_datetime(moment, "medium", tzinfo=LOCALTZ, locale=_locale(lang))


# --------------------------------------------------------------------------- errors


_LOST_ANSWER = N_("The gateway's answer was lost: whether it was done is settled by "
                 "reconcile.")
_UNREACHABLE = N_("The gateway could not be reached, and nothing was done. Try again in a "
                  "minute.")

#: What the ledger page says when the ledger or the gateway refuses an action, by the
#: exception's type (the first that matches; ``%(reason)s``: the reason table's words
#: for a decline, else the exception's message). A refused transition is said by the
#: action and the payment's status instead (:data:`STATUS_REASONS`).
_REFUSALS: tuple[tuple[type[CheckoutKitError], str], ...] = (
    (PaymentNotFoundError, N_("There is no such payment.")),
    (MoneyError, N_("The amount is not valid: write it like 100.00.")),
    (PaymentConflictError, N_("Another operation on this payment has not ended. Try again "
                              "in a moment; one whose outcome was lost is settled by "
                              "reconcile first.")),
    (AuthenticationError, N_("The gateway refused the shop's Public ID and API secret.")),
    (UnknownOutcomeError, _LOST_ANSWER),
    (APIConnectionError, _UNREACHABLE),
    (ServerError, _UNREACHABLE),
    (RateLimitError, _UNREACHABLE),
    (PaymentDeclined, N_("The gateway declined it: %(reason)s")),
    (GatewayError, N_("The gateway refused it: %(reason)s")),
    (CheckoutKitError, N_("It could not be done: %(reason)s")),
)


def _refusal(exc: CheckoutKitError, action: LedgerAction, payment_id: str,
             translate: Callable[[str], str]) -> str:
    """What went wrong, in words for the page (the exception's class goes to the log)."""
    if isinstance(exc, InvalidTransitionError):
        status = state().ledger.get(payment_id).status
        return translate(action.refused) % {"why": translate(STATUS_REASONS[status])}
    text = next(text for kind, text in _REFUSALS if isinstance(exc, kind))
    reason = exc.message
    if isinstance(exc, PaymentDeclined):
        reason = decline_reason(exc.reason_code, exc.cardholder_message) or reason
    return translate(text) % {"reason": reason}


class _Refused(Exception):
    """An action the demo refuses itself, before the ledger is asked; its text is the
    page's message."""


def _amount_problem(action: LedgerAction, payment: Payment, amount: Decimal | None,
                    translate: Callable[[str], str]) -> str | None:
    """More than the action can take, said before the gateway is asked."""
    if amount is None:
        return None
    if action.key == "confirm" and amount > payment.amount:
        return translate(N_("At most %(amount)s can be confirmed: that is what is held.")) % {
            "amount": money_for_reader(payment.amount, payment.currency)}
    if action.key == "refund" and amount > payment.refundable_amount:
        return translate(N_("At most %(amount)s is left to refund.")) % {
            "amount": money_for_reader(payment.refundable_amount, payment.currency)}
    return None


# --------------------------------------------------------------------------- the app


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


def _first_lower(text: str) -> str:
    # "Insufficient funds on the card" inside a sentence; "CVV ..." stays as it is.
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _test_cards(translate: Callable[[str], str]) -> list[tuple[str, str, str, bool]]:
    """The sandbox's test cards for the home page: the number in groups of four, the
    brand and 3-D Secure, and what a payment with it does (a decline in words, from
    the reason table in the page's language, with its code)."""
    rows = []
    for number, card in sorted(TEST_CARDS.items(), key=lambda kv: kv[1].label):
        brand = detect_brand(number)
        name = brand.name if brand else ""
        kind = (translate(N_("%(brand)s, with 3-D Secure")) if card.three_ds
                else translate(N_("%(brand)s, no 3-D Secure"))) % {"brand": name}
        declined = card.charge_reason != 0
        if declined:
            reason = decline_reason(card.charge_reason, None) or ""
            outcome = translate(N_("declined: %(reason)s (%(code)s)")) % {
                "reason": _first_lower(reason), "code": card.charge_reason}
        else:
            outcome = translate(N_("approved"))
        rows.append((format_number(number), kind, outcome, declined))
    return rows


def create_demo_app(instance_path: str | Path | None = None, **config: Any) -> Flask:
    """The demo shop, its sandbox mounted at ``/sandbox``, its ledger upgraded.

    ``instance_path``: the folder for the ledger, the sandbox's state and the secret key
    (default :func:`default_instance_path`)."""
    from ..ledger.migrations import upgrade

    folder = Path(instance_path) if instance_path is not None else default_instance_path()
    app = Flask(
        "checkout_kit.shop.demo",
        instance_path=str(folder.resolve()),
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

    def translator() -> tuple[str, Callable[[str], str]]:
        lang = language()
        return lang, state().catalogs.get(lang).gettext

    def product_title() -> str:
        return str(PRODUCT["title"] if language() == "ru" else PRODUCT["title_en"])

    def render(template: str, **context: Any) -> str:
        page_policy(PagePolicy())
        lang, translate = translator()
        return render_template(f"demo/{template}", nonce=nonce(), product=PRODUCT,
                               product_title=product_title(), lang=lang, _=translate,
                               **context)

    @app.get("/")
    def index() -> str:
        return render("index.html", form=_form(), cards=_test_cards(translator()[1]))

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
            # The payment pages show the description: in the buyer's language.
            currency=PRODUCT["currency"], description=product_title(), scheme=scheme,
            account_id="demo-customer", success_url=url_for("ledger", _external=True),
            fail_url=url_for("index", _external=True))
        return redirect(url_for("checkout_kit.pay_in", payment_id=payment.id, mode=mode),
                        code=303)

    @app.get("/ledger")
    def ledger() -> str:
        number = request.args.get("page", 1, type=int)
        if number < 1:
            abort(404)
        kit_state = state()
        found = kit_state.ledger.list_payments(limit=LEDGER_PAGE_SIZE + 1,
                                               offset=(number - 1) * LEDGER_PAGE_SIZE)
        rows = []
        for payment in found[:LEDGER_PAGE_SIZE]:
            history = kit_state.ledger.history(payment.id)
            hold = hold_deadline(history) if (
                payment.status is PaymentStatus.AUTHORIZED) else None
            rows.append(_Row(payment, history, actions_for(payment.status), hold))
        lang = translator()[0]
        return render(
            "ledger.html", rows=rows, form=_form(), page=number,
            more=len(found) > LEDGER_PAGE_SIZE,
            messages=get_flashed_messages(with_categories=True),
            when=lambda moment: _when(moment, lang),
            zone=get_timezone_gmt(kit_state.ledger.now().astimezone(LOCALTZ),
                                  locale=_locale(lang)),
            hold_period=format_timedelta(HOLD_PERIOD, granularity="day", threshold=2,
                                         locale=_locale(lang)),
            status_labels=STATUS_LABELS, schemes=_SCHEMES)

    @app.post("/ledger/<payment_id>/<action>")
    def act(payment_id: str, action: str) -> Response:
        chosen = _BY_NAME.get(action)
        if chosen is None or not _form(request.form).validate():
            abort(400, "Reload the page and try again.")
        page = request.form.get("page", 1, type=int)
        back = url_for("ledger", page=page if page > 1 else None)
        translate = translator()[1]
        try:
            message = _act(kit, chosen, payment_id, request.form.get("amount", "").strip(),
                           translate)
        except _Refused as refused:
            flash(str(refused), "error")
        except CheckoutKitError as exc:
            # The page says it in words; the log keeps the exception for the developer.
            log.info("demo ledger: %s of %s refused: %s: %s", chosen.key, payment_id,
                     type(exc).__name__, exc)
            flash(_refusal(exc, chosen, payment_id, translate), "error")
        else:
            flash(message, "success")
        return redirect(back, code=303)

    return app


def _act(kit: CheckoutKit, action: LedgerAction, payment_id: str, typed: str,
         translate: Callable[[str], str]) -> str:
    """Run ``action`` on the payment; returns the success message."""
    before = state().ledger.get(payment_id)
    if action not in actions_for(before.status):
        # A page opened before the status changed (another tab, a notification): say
        # why in the status's words before the ledger refuses it in its own.
        raise _Refused(translate(action.refused) % {
            "why": translate(STATUS_REASONS[before.status])})
    amount = parse_amount(typed, before.currency) if typed and action.takes_amount else None
    problem = _amount_problem(action, before, amount, translate)
    if problem is not None:
        raise _Refused(problem)
    if action.key == "confirm":
        after = kit.confirm(payment_id, amount)
        done = after.amount
    elif action.key == "void":
        kit.void(payment_id)
        done = before.amount
    elif action.key == "refund":
        done = amount if amount is not None else before.refundable_amount
        kit.refund(payment_id, amount)
    else:
        state().ready().service.cancel(payment_id)
        done = before.amount
    return translate(action.done) % {"amount": money_for_reader(done, before.currency)}


@click.command("demo", short_help="Run the demo shop with the sandbox beside it.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 picks a free one).")
@click.option("--instance", "instance_path", type=click.Path(file_okay=False, path_type=Path),
              default=None,
              help="Folder for the ledger, the sandbox state and the secret key "
                   "[default: checkout_kit/demo in the user's data folder, e.g. "
                   "~/.local/share/checkout_kit/demo].")
def demo_command(host: str, port: int, instance_path: Path | None) -> None:
    """Run the demo shop with the sandbox beside it (one process, one port)."""
    from werkzeug.serving import make_server

    from ..sandbox import sandbox_of
    from ..sandbox.web.app import serve_until_interrupted

    folder = (instance_path if instance_path is not None else default_instance_path()).resolve()
    # First, before anything is written there: where the ledger and the keys live.
    click.echo(f"checkout_kit demo: instance folder {folder}")
    app = create_demo_app(folder)
    server = make_server(host, port, app, threaded=True)
    base = f"http://{host}:{server.server_port}"
    sandbox_app = app.wsgi_app.sandbox  # type: ignore[attr-defined]
    click.echo(f"  shop      {base}/")
    click.echo(f"  ledger    {base}/ledger")
    click.echo(f"  sandbox   {base}/sandbox/_sandbox/transactions")
    serve_until_interrupted(server, sandbox_of(sandbox_app))
