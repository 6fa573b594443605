"""The payment pages (blueprint ``checkout_kit``).

==============================  =======================================================
``GET  /pay/<id>``              the configured mode's page (form or widget)
``GET  /pay/<id>/form|widget``  the card form, or the widget opener
``POST /pay/<id>/form``         cryptogram + name + e-mail → charge/auth (or 3-D Secure)
``POST /3ds/<token>``           the TermUrl: the bank's ``MD`` + ``PaRes`` → post3ds
``GET  /payments/<id>``         the result: success, failure or pending (self-refreshing)
==============================  =======================================================

The amount always comes from the ledger; the browser sends only the cryptogram, the
cardholder name and the e-mail. Bad input gets a 4xx page with a message and leaves
the ledger as it was.

Everything a page says is in the page language (:func:`language`): the texts from the
catalogs, a decline's reason from the reason table, and amounts as the reader writes
them (:func:`money_for_reader`, also a template global for the shop's own templates).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, NoReturn

from flask import (
    Blueprint,
    abort,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from itsdangerous import BadSignature, SignatureExpired
from werkzeug.wrappers import Response

from .. import cards, jsoncodec, money
from .._resources import resource_dir
from ..errors import (
    CheckoutKitError,
    GatewayError,
    LedgerError,
    PaymentExpiredError,
    PaymentNotFoundError,
    RequestRejectedError,
    ThreeDSError,
)
from ..ledger.store import Payment
from ..reasons import reason_for
from ..threeds import acs_form
from .config import ConfigurationError, origin_of
from .forms import make_pay_form, unexpected_fields
from .i18n import CHECKOUT_CODES, N_
from .security import PagePolicy, harden, nonce, page_policy
from .state import KitState, state

__all__ = ["ACCEPTED_BRANDS", "FAILURE", "PENDING", "SUCCESS", "bp", "decline_reason",
           "money_for_reader"]

log = logging.getLogger(__name__)

bp = Blueprint(
    "checkout_kit", __name__,
    # A folder holding only checkout_kit/*: the sandbox's and the demo's templates stay
    # out of every shop's template namespace. The app's own templates/checkout_kit/...
    # come first (Flask asks the app's loader before the blueprints').
    template_folder=str(resource_dir("templates") / "shop"),
    static_folder=str(resource_dir("static") / "checkout_kit"),
    static_url_path="/assets",
)

SUCCESS = frozenset({"succeeded", "authorized"})
FAILURE = frozenset({"failed", "cancelled", "refunded"})
PENDING = frozenset({"created", "processing", "awaiting_3ds", "unknown"})
_PAYABLE = frozenset({"created", "failed"})
_IN_FLIGHT = frozenset({"processing", "awaiting_3ds", "unknown"})
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: The card brands the form's trust line names (``cards.brand_table()`` ids): the
#: ``CardType`` values the gateway documents for its card payments (docs/gateway.md
#: §5.4). A shop that takes others says so in its own ``checkout_kit/form.html``
#: (block ``trust``).
ACCEPTED_BRANDS: tuple[str, ...] = ("visa", "mastercard", "mir", "maestro")

#: Problems with a request, by code (texts in the catalogs).
PROBLEMS: dict[str, str] = {
    "missing_cryptogram": N_("The card details did not reach us. Check them and try again."),
    "bad_cryptogram": N_("The card details could not be read. Reload the page and try again."),
    "bad_name": N_("The cardholder's name is too long."),
    "bad_email": N_("The e-mail address is not valid."),
    "csrf": N_("This page has expired. Reload it and try again."),
    "unexpected": N_("The request carried fields this page never sends."),
    "not_found": N_("There is no such payment."),
    "bad_link": N_("This 3-D Secure link is not valid."),
    "expired_link": N_("This 3-D Secure link has expired. Start the payment again."),
    "bad_md": N_("The bank's answer does not belong to this payment."),
    "missing_pares": N_("The bank's answer is incomplete."),
    "conflict": N_("This payment cannot do that in its current state."),
    "gateway": N_("The payment service is unavailable. Try again in a minute."),
    "bank_page": N_("Your bank's verification page could not be opened, and the card was "
                    "not charged. Try again or use another card."),
    "expired": N_("The time to pay this order has run out, and nothing was charged. "
                  "Return to the shop to order again."),
    "declined": N_("The payment was declined. Try another card."),
}


def _kit() -> KitState:
    return state()


def language() -> str:
    """The page language: the configured one, else the best of Accept-Language."""
    kit = _kit()
    return kit.catalogs.choose(kit.settings.language, request.accept_languages)


def gettext(message: str) -> str:
    """``message`` in the page language."""
    return _kit().catalogs.get(language()).gettext(message)


@bp.app_template_global("checkout_kit_money")
def money_for_reader(amount: Decimal, currency: str, lang: str | None = None) -> str:
    """``amount`` as a reader of ``lang`` writes money (:func:`money.display_amount`:
    ``"1 490,00 ₽"``, ``"RUB 1,490.00"``). Without ``lang``: the page language in a
    request, else the kit's default language (an e-mail rendered by a worker).

    Every template of the app has it as ``checkout_kit_money(amount, currency)``: the
    payment pages, the shop's own pages and e-mails write amounts the same way.
    """
    if lang is None:
        lang = language() if has_request_context() else _kit().catalogs.default
    return money.display_amount(amount, currency, lang)


def decline_reason(reason_code: int | None, gateway_message: str | None) -> str | None:
    """Why a payment was declined, for the payer, in the page language.

    The text comes from the reason table (:mod:`checkout_kit.reasons`), which has it in
    Russian and English, not from the gateway's ``CardHolderMessage``: that one is in
    the language the payment was made in (Russian unless ``CultureName`` said
    otherwise), whatever the page's. For another language a shop's catalog may
    translate the table's English text (untranslated, the English shows). Without a
    reason code the gateway's message is all there is.
    """
    if reason_code is None:
        return gateway_message
    row = reason_for(int(reason_code))
    return row.message_ru if language() == "ru" else gettext(row.message_en)


def _render(template: str, policy: PagePolicy, status: int = 200, **context: Any) -> Response:
    # ``page_data`` goes into a <script type="application/json"> element unescaped: it is
    # always jsoncodec.dumps_for_script's text (no "<", ">", "&", U+2028 or U+2029).
    page_policy(policy)
    lang = language()
    translate: Callable[[str], str] = _kit().catalogs.get(lang).gettext
    html = render_template(
        f"checkout_kit/{template}", _=translate, lang=lang, nonce=nonce(), **context)
    return Response(html, status=status, mimetype="text/html")


def _problem_page(code: str, status: int) -> Response:
    return _render("problem.html", PagePolicy(), status, code=code,
                   message=gettext(PROBLEMS[code]))


def _problem(code: str, status: int) -> NoReturn:
    abort(_problem_page(code, status))


def _payment(payment_id: str) -> Payment:
    if not _ID.fullmatch(payment_id):
        _problem("not_found", 404)
    try:
        return _kit().ledger.get(payment_id)
    except PaymentNotFoundError:
        _problem("not_found", 404)


def _result_url(payment_id: str, *, framed: bool = False) -> str:
    if framed:
        return url_for("checkout_kit.result", payment_id=payment_id, frame=1)
    return url_for("checkout_kit.result", payment_id=payment_id)


def _see_other(url: str) -> Response:
    return redirect(url, code=303)


def _amount(payment: Payment) -> str:
    return money_for_reader(payment.amount, payment.currency)


# --------------------------------------------------------------------------- pages


@bp.after_request
def _harden(response: Response) -> Response:
    return harden(response, payment_page=request.endpoint != "checkout_kit.static")


#: An error a page did not handle itself -> (problem code, HTTP status); first match.
_ERROR_PAGES: tuple[tuple[type[CheckoutKitError], str, int], ...] = (
    (PaymentNotFoundError, "not_found", 404),
    (PaymentExpiredError, "expired", 410),
    (LedgerError, "conflict", 409),          # a transition the payment's state forbids
    (GatewayError, "gateway", 503),          # the gateway refused or could not be reached
    (ConfigurationError, "gateway", 503),    # the ledger's schema (logged)
    (CheckoutKitError, "conflict", 400),     # ThreeDSError, MoneyError...
)


@bp.before_request
def _ledger_ready() -> None:
    # The pages need the ledger's tables: a clear 503 (and a logged reason) rather than
    # SQL errors. Notifications check for themselves, to answer JSON.
    if request.endpoint not in _NO_LEDGER and not (request.endpoint or "").startswith(
            "checkout_kit.notify_"):
        try:
            _kit().check_ledger()
        except ConfigurationError as exc:
            log.error("checkout page %s: %s", request.path, exc)
            raise


_NO_LEDGER = frozenset({"checkout_kit.static"})


@bp.errorhandler(CheckoutKitError)
def _checkout_error(exc: CheckoutKitError) -> Response:
    code, status = next((code, status) for kind, code, status in _ERROR_PAGES
                        if isinstance(exc, kind))
    return _problem_page(code, status)


@bp.get("/pay/<payment_id>")
def pay(payment_id: str) -> Response:
    """The payment page in the configured mode."""
    return _pay_page(payment_id, _kit().settings.mode)


@bp.get("/pay/<payment_id>/<mode>")
def pay_in(payment_id: str, mode: str) -> Response:
    """The payment page in ``mode`` (``form`` or ``widget``)."""
    if mode not in ("form", "widget"):
        _problem("not_found", 404)
    return _pay_page(payment_id, mode)


def _refuse_expired(payment: Payment) -> None:
    # The service refuses to charge it too; the page says so before any card is typed
    # (the widget would charge from the browser, where only Check could stop it).
    if payment.expired(_kit().ledger.now()):
        _problem("expired", 410)


def _pay_page(payment_id: str, mode: str) -> Response:
    _kit().ready()
    payment = _payment(payment_id)
    if str(payment.status) not in _PAYABLE:
        return _see_other(_result_url(payment.id))
    _refuse_expired(payment)
    if mode == "widget":
        return _widget_page(payment)
    form = make_pay_form(None, session, _secret(), payment.id, email=payment.email or "")
    return _form_page(payment, form)


def _secret() -> str | bytes:
    secret: str | bytes = _kit().app.config["SECRET_KEY"]
    return secret


def _form_page(payment: Payment, form: Any, *, status: int = 200,
               message: str | None = None) -> Response:
    kit = _kit()
    policy = PagePolicy(scripts=(origin_of(kit.settings.checkout_script_url),),
                        connect=(origin_of(kit.settings.checkout_script_url),))
    return _render("form.html", policy, status, payment=payment, amount=_amount(payment),
                   form=form, message=message, brands=_accepted_brands(),
                   page_data=_form_data(kit, language()),
                   checkout_script_url=kit.settings.checkout_script_url)


def _accepted_brands() -> list[cards.Brand]:
    by_id = {brand.id: brand for brand in cards.BRANDS}
    return [by_id[brand_id] for brand_id in ACCEPTED_BRANDS]


def _form_data(kit: KitState, lang: str) -> str:
    # The same for every payment of an app and language (the brand table and the
    # texts), so written once per app: serialising it was a fifth of the form page's
    # time. Languages are the catalogs' own (language() chooses among them).
    cached = kit.form_data.get(lang)
    if cached is not None:
        return cached
    translate = kit.catalogs.get(lang).gettext
    data = kit.form_data[lang] = jsoncodec.dumps_for_script({
        "page": "form",
        "publicId": kit.settings.public_id,
        # For brands.js, the detection routine the page shares with the sandbox's
        # checkout script: the table and the very prefix index cards.detect_brand reads.
        "brands": cards.brand_table(),
        "prefixes": cards.prefix_table(),
        "messages": {code: translate(text) for code, text in CHECKOUT_CODES.items()},
        # ExpDateMonthYear_Invalid for a well-formed date in the past (docs/gateway.md
        # §2.7: checkout.js has no code of its own for it).
        "expired": translate(N_("The card has expired")),
        "cvvLabel": translate(N_("Security code")),
        "busy": translate(N_("Paying…")),
    })
    return data


def _widget_page(payment: Payment) -> Response:
    kit = _kit()
    lang = language()
    intent = {
        "publicTerminalId": kit.settings.public_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "paymentSchema": "Dual" if payment.scheme == "auth" else "Single",
        "description": payment.description,
        "externalId": payment.invoice_id,
        "culture": "en-US" if lang == "en" else "ru-RU",
        "userInfo": {k: v for k, v in (("accountId", payment.account_id),
                                       ("email", payment.email)) if v},
    }
    data = {"page": "widget", "intent": intent, "language": intent["culture"],
            "resultUrl": _result_url(payment.id)}
    origins = tuple(kit.settings.widget_origins)
    policy = PagePolicy(scripts=(origin_of(kit.settings.widget_script_url),), frames=origins,
                        connect=origins, inline_styles=True)
    return _render("widget.html", policy, payment=payment, amount=_amount(payment),
                   page_data=jsoncodec.dumps_for_script(data),
                   widget_script_url=kit.settings.widget_script_url)


def _form_problem(payment: Payment, form: Any) -> Response:
    code = "missing_cryptogram"
    if form.csrf_token.errors:
        code = "csrf"
    else:
        for field in (form.cryptogram, form.name, form.email):
            if field.errors:
                code = str(field.errors[0]).split(":", 1)[0]
                break
    status = 403 if code == "csrf" else 400
    fresh = make_pay_form(None, session, _secret(), payment.id,
                          name=form.name.data or "", email=form.email.data or "")
    return _form_page(payment, fresh, status=status, message=gettext(PROBLEMS[code]))


@bp.post("/pay/<payment_id>/form")
def submit(payment_id: str) -> Response:
    """The card form's POST: charge or auth the ledger's amount with the cryptogram."""
    kit = _kit().ready()
    payment = _payment(payment_id)
    if unexpected_fields(request.form):
        fresh = make_pay_form(None, session, _secret(), payment.id)
        return _form_page(payment, fresh, status=400, message=gettext(PROBLEMS["unexpected"]))
    form = make_pay_form(request.form, session, _secret(), payment.id)
    if not form.validate():
        return _form_problem(payment, form)
    if str(payment.status) not in _PAYABLE:
        return _see_other(_result_url(payment.id))
    _refuse_expired(payment)
    try:
        outcome = kit.service.pay(
            payment.id, cryptogram=form.cryptogram.data.strip(),
            ip_address=request.remote_addr or "0.0.0.0",  # noqa: S104 - an address, not a bind
            name=form.name.data or None, email=form.email.data or None)
    except RequestRejectedError:
        # The gateway refused the request itself (a cryptogram it cannot open...).
        fresh = make_pay_form(None, session, _secret(), payment.id)
        return _form_page(payment, fresh, status=400,
                          message=gettext(PROBLEMS["bad_cryptogram"]))
    except GatewayError:
        # Nothing was processed (no connection, credentials refused): the ledger
        # marked the attempt failed, and the payer may simply try again.
        fresh = make_pay_form(None, session, _secret(), payment.id)
        return _form_page(payment, fresh, status=503, message=gettext(PROBLEMS["gateway"]))
    kind = outcome.kind
    if kind == "three_ds" and outcome.challenge is not None:
        challenge = outcome.challenge
        # The frame only where both the shop and the gateway's answer allow it.
        framed = kit.settings.threeds_iframe and challenge.iframe_is_allowed is True
        try:
            return _three_ds_page(outcome.payment, challenge, framed=framed)
        except ThreeDSError as exc:
            # The gateway named a bank page the payer's browser must not post to.
            log.warning("payment %s: 3-D Secure page refused: %s", payment.id, exc)
            return _bank_page_refused(kit, outcome.payment, challenge)
    if kind == "declined":
        message = decline_reason(outcome.reason_code, outcome.cardholder_message) or gettext(
            PROBLEMS["declined"])
        fresh = make_pay_form(None, session, _secret(), payment.id,
                              name=form.name.data or "", email=form.email.data or "")
        return _form_page(outcome.payment, fresh, message=message)
    return _see_other(_result_url(payment.id))


# --------------------------------------------------------------------------- 3-D Secure


def _bank_page_refused(kit: KitState, payment: Payment, challenge: Any) -> Response:
    """The gateway's bank page was refused: the challenge is failed
    (:meth:`PaymentService.challenge_refused`) and the payer may try another card."""
    current = kit.service.challenge_refused(payment.id, challenge.transaction_id)
    return _render("failure.html", PagePolicy(), 502, payment=current,
                   amount=_amount(current), reason=gettext(PROBLEMS["bank_page"]),
                   can_retry=str(current.status) == "failed")


def _term_url(payment_id: str, *, framed: bool) -> str:
    token = _kit().signer.dumps({"p": payment_id, "f": int(framed)})
    return url_for("checkout_kit.term", token=token, _external=True)


def _three_ds_page(payment: Payment, challenge: Any, *, framed: bool) -> Response:
    term_url = _term_url(payment.id, framed=framed)
    # Where the browser posts, exactly as the gateway named it: acs_form refuses
    # anything but an absolute https URL (http on loopback). A mounted sandbox answers
    # with this site's own origin ('self' to the CSP).
    acs_url = str(challenge.acs_url)
    form = acs_form(acs_url, challenge.pa_req, str(challenge.transaction_id), term_url)
    bank = origin_of(acs_url)
    if bank == origin_of(request.host_url):
        bank = "'self'"
    # Framed, the frame goes on from the bank to our TermUrl and the exit page.
    policy = PagePolicy(form_actions=(bank,), frames=(bank, "'self'") if framed else ())
    width = max(challenge.frame_width or 500, 500)  # docs/gateway.md §4: at least 500x500
    height = max(challenge.frame_height or 500, 500)
    return _render("threeds.html", policy, payment=payment, amount=_amount(payment),
                   form=form, framed=framed, width=width, height=height,
                   page_data=jsoncodec.dumps_for_script({"page": "threeds", "framed": framed}))


# No merging of "//": a token with a slash is no token (404), not a redirect elsewhere.
@bp.post("/3ds/<token>", merge_slashes=False)
def term(token: str) -> Response:
    """TermUrl: the bank's cross-site POST of ``MD`` and ``PaRes``.

    It carries no session cookie (SameSite=Lax) and no CSRF token; what it acts on is
    signed into the URL. ``MD`` must be this payment's transaction; ``post3ds`` runs
    once (a replay shows the stored result).
    """
    kit = _kit()
    try:
        data = kit.signer.loads(token, max_age=kit.settings.term_url_max_age)
    except SignatureExpired:
        _problem("expired_link", 400)
    except BadSignature:
        _problem("bad_link", 400)
    if not isinstance(data, dict) or not isinstance(data.get("p"), str):
        _problem("bad_link", 400)
    payment = _payment(data["p"])
    md = request.form.get("MD", "").strip()
    pa_res = request.form.get("PaRes", "")
    if not md or not pa_res:
        _problem("missing_pares", 400)
    if payment.gateway_transaction_id is None or md != str(payment.gateway_transaction_id):
        _problem("bad_md", 400)
    kit.service.complete_3ds(payment.id, md=md, pa_res=pa_res)
    return _see_other(_result_url(payment.id, framed=bool(data.get("f"))))


# --------------------------------------------------------------------------- results


@bp.get("/payments/<payment_id>")
def result(payment_id: str) -> Response:
    """Success, failure or pending; a pending payment is looked up at the gateway."""
    kit = _kit()
    payment = _payment(payment_id)
    if request.args.get("frame") == "1":
        # The last stop of the framed 3-D Secure page: send the whole window on.
        policy = PagePolicy(framed_by_self=True)
        return _render("breakout.html", policy, url=_result_url(payment.id),
                       page_data=jsoncodec.dumps_for_script(
                           {"page": "breakout", "url": _result_url(payment.id)}))
    if str(payment.status) in _IN_FLIGHT:
        # A call of our server whose answer is late or lost: the gateway knows. A widget
        # payment (created, or failed before a retry) is settled by its Pay or Fail
        # notification, or by reconcile, never by the payer's browser coming back: the
        # page stays pending and reloads until the notification lands. The page reloads
        # every few seconds: the gateway is asked at most once per
        # PENDING_LOOKUP_INTERVAL for a payment, across every instance of the app.
        every = timedelta(seconds=kit.settings.pending_lookup_interval)
        if kit.ledger.claim_lookup(payment.id, every):
            with contextlib.suppress(GatewayError):  # still pending: the page asks again
                payment = kit.service.refresh(payment.id)
    status = str(payment.status)
    if status in SUCCESS:
        return _render("success.html", PagePolicy(), payment=payment, amount=_amount(payment))
    if status in FAILURE:
        reason = decline_reason(payment.reason_code, payment.cardholder_message)
        return _render("failure.html", PagePolicy(), payment=payment, amount=_amount(payment),
                       reason=reason, can_retry=status == "failed")
    return _render("pending.html", PagePolicy(), payment=payment, amount=_amount(payment),
                   refresh=kit.settings.pending_refresh)
