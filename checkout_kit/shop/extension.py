"""``CheckoutKit``: the Flask extension that takes card payments into the ledger.

One instance may serve several apps; everything an app needs (settings, API client,
ledger, service, catalogs, TermUrl signer) lives in ``app.extensions["checkout_kit"]``,
so two apps in one process share nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from flask import Flask, current_app, has_request_context, url_for
from flask import request as flask_request
from itsdangerous import URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.routing import BuildError, Map

from ..client import CloudPaymentsClient
from ..errors import GatewayError, PaymentNotFoundError
from ..ledger.inbox import Inbox
from ..ledger.service import PaymentService
from ..ledger.states import PaymentStatus
from ..ledger.store import Ledger, PaymentProblem
from ..ledger.store import Payment as LedgerPayment
from ..notifications import CheckCode
from ..webhooks import CheckRule, CheckRules, UnownedCheckRule
from . import signals
from .config import ConfigurationError, Settings, load_settings
from .i18n import Catalogs

if TYPE_CHECKING:
    from ..sandbox import Sandbox

__all__ = [
    "EXTENSION_KEY",
    "WIDGET_RECONCILE_WINDOW",
    "WIDGET_ROOT_PATHS",
    "CheckoutKit",
    "KitState",
    "Payment",
    "mount_sandbox",
    "state",
]

EXTENSION_KEY = "checkout_kit"
logger = logging.getLogger("checkout_kit.shop")


@dataclass
class KitState:
    """What one app's checkout needs (``app.extensions["checkout_kit"]``)."""

    app: Flask
    settings: Settings
    client: CloudPaymentsClient
    ledger: Ledger
    service: PaymentService
    catalogs: Catalogs
    signer: URLSafeTimedSerializer
    inbox: Inbox
    #: the Check decision: webhooks.check_decision, then the shop's rules
    checks: CheckRules
    #: sends the payment_* signal of a committed status change
    on_change: Callable[[LedgerPayment, Any, Any], None]
    #: sends payment_duplicate / payment_mismatch and payment_problem, after commit
    on_problem: Callable[[LedgerPayment, PaymentProblem], None]
    #: the card form's page data by language, written once (it is the same for every
    #: payment); kept here so that it lives and dies with the app
    form_data: dict[str, str] = field(default_factory=dict)
    #: why the kit takes no payment (a ledger the mounted sandbox does not know),
    #: found at init_app; ``flask checkout sandbox reset`` ends it
    refused: str | None = None
    #: the sandbox ``mount_sandbox`` mounted in this app, if any
    sandbox: Sandbox | None = None

    def ready(self) -> KitState:
        """This state, if the kit may act on payments; else
        :class:`~checkout_kit.shop.config.ConfigurationError` saying why."""
        if self.refused is not None:
            raise ConfigurationError("CHECKOUT_KIT_DATABASE_URL", self.refused)
        return self


def state(app: Flask | None = None) -> KitState:
    """The checkout state of ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    found = target.extensions.get(EXTENSION_KEY)
    if not isinstance(found, KitState):
        raise RuntimeError("CheckoutKit.init_app(app) has not been called for this app")
    return found


class Payment:
    """A ledger payment plus the URL where the payer pays it (:attr:`checkout_url`).

    Every other attribute is the ledger snapshot's (``id``, ``status``, ``amount``...).
    """

    __slots__ = ("checkout_url", "snapshot")

    def __init__(self, snapshot: LedgerPayment, checkout_url: str) -> None:
        self.snapshot = snapshot
        self.checkout_url = checkout_url

    def __getattr__(self, name: str) -> Any:
        return getattr(self.snapshot, name)

    def __repr__(self) -> str:
        return f"Payment({self.snapshot!r}, checkout_url={self.checkout_url!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Payment):
            return self.snapshot == other.snapshot
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def _payment_id(payment: Payment | LedgerPayment | str) -> str:
    return payment if isinstance(payment, str) else str(payment.id)


class _SandboxMount:
    """WSGI: ``prefix`` and the widget's root paths go to the sandbox, the rest to the shop.

    The sandbox's widget script opens its frame, loads the checkout script and calls
    the API at the root of its origin (:data:`WIDGET_ROOT_PATHS`), so a sandbox sharing
    the shop's origin must also answer those paths there. ``/favicon.ico`` goes to the
    sandbox too while none of the shop's ``routes`` takes it: a browser asks the origin
    for it on every page that names no icon (the shop's, the sandbox's JSON views) and
    logs the 404 in its console.
    """

    def __init__(self, shop: Any, sandbox: Any, prefix: str, root_paths: tuple[str, ...],
                 routes: Map | None = None) -> None:
        self.dispatch = DispatcherMiddleware(shop, {prefix: sandbox})
        self.sandbox = sandbox
        self.root_paths = root_paths
        self.routes = routes

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(self.root_paths) or (path == "/favicon.ico" and self._no_icon()):
            return self.sandbox(environ, start_response)
        return self.dispatch(environ, start_response)

    def _no_icon(self) -> bool:
        # Asked at each request, not at mount time: the shop's routes are added after.
        if self.routes is None:
            return False
        try:
            self.routes.bind("").match("/favicon.ico", method="GET")
        except NotFound:
            return True
        except HTTPException:  # a redirect, another method: the path is the shop's
            return False
        return False


class _MountedSandboxTransport(httpx.WSGITransport):
    """The shop's in-process calls to a mounted sandbox, made as if to the origin the
    payer's browser reached the shop at (during a request): the sandbox then answers
    an absolute ``AcsUrl`` on that origin, which the shop's 3-D Secure page posts to
    like any bank's. Outside a request the configured API URL stays."""

    def __init__(self, app: Flask) -> None:
        super().__init__(app=app)
        self.sandbox_app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # Only a Host the sandbox answers (its browser pages would get 403 on another,
        # so no bank page there either); else the API call still goes through as before.
        if has_request_context() and self._answered(flask_request.host):
            origin = httpx.URL(flask_request.host_url)
            request.url = request.url.copy_with(scheme=origin.scheme, host=origin.host,
                                                port=origin.port)
            request.headers["Host"] = flask_request.host
        return super().handle_request(request)

    def _answered(self, host: str) -> bool:
        from ..sandbox import sandbox_of
        from ..sandbox.rules.policy import host_allowed, url_host

        settings = sandbox_of(self.sandbox_app).settings
        return host_allowed(host, (*settings.allowed_hosts, url_host(settings.terminal_url)))


#: The paths the sandbox's widget uses at the root of its origin.
WIDGET_ROOT_PATHS = ("/widget/", "/payments/", "/checkout.js")


#: ``app.extensions`` key: the kit points a sandbox that ``mount_sandbox`` made at the
#: app's notification routes.
_NOTIFY_MOUNTED = "checkout_kit.notify_mounted_sandbox"
#: The address host the mounted sandbox sends notifications to (in-process: any host).
MOUNTED_SHOP_ORIGIN = "http://shop.invalid"
#: ``app.extensions`` key: the sandbox ``mount_sandbox`` mounted (any, made there or not).
_MOUNTED = "checkout_kit.mounted_sandbox"


#: The mounted sandbox's state file, in the app's instance folder.
SANDBOX_STATE_FILE = "checkout_kit_sandbox.sqlite3"


def mount_sandbox(app: Flask, sandbox_app: Flask | None = None, *, prefix: str = "/sandbox",
                  widget_paths: bool = True, notify: bool = True,
                  **sandbox_options: Any) -> Flask:
    """Serve a sandbox under ``prefix`` of ``app`` (one process, one port) and point
    the ``CHECKOUT_KIT_*`` settings at it. Call before :meth:`CheckoutKit.init_app`.

    Without ``sandbox_app`` one is created (``sandbox_options`` go to
    :func:`~checkout_kit.sandbox.create_sandbox_app`). It keeps its state in
    :data:`SANDBOX_STATE_FILE` of the app's instance folder, next to the default
    ledger, unless ``state_path`` says elsewhere (``state_path=None``: in memory, for
    tests). Every process of the app and every ``flask checkout`` command then shares
    one sandbox, which survives restarts and never issues a transaction id twice. Its
    bank page is
    ``<prefix>/acs``, on the shop's own origin: during a request the sandbox's
    ``AcsUrl`` is that absolute URL on the origin the payer reached the shop at. With
    ``widget_paths`` the sandbox also answers ``/widget/…``, ``/payments/…`` and
    ``/checkout.js`` at the root (:data:`WIDGET_ROOT_PATHS`), where its widget looks
    for them; the shop's own routes must not use those. A shop with no
    ``/favicon.ico`` route gets the sandbox's icon there.
    The server side calls the sandbox in-process (``httpx.WSGITransport``).
    With ``notify`` a sandbox made here sends every notification type (Check too) to
    the app's notification routes, in-process: :meth:`CheckoutKit.init_app` sets the
    addresses as the merchant account would (the API cannot set Check,
    docs/gateway.md §3.5). Returns the sandbox app.
    """
    from ..sandbox import create_sandbox_app, sandbox_of

    notify_here = False
    if sandbox_app is None:
        sandbox_options.setdefault("acs_url", f"{prefix}/acs")
        if "state_path" not in sandbox_options:
            instance = Path(app.instance_path)
            instance.mkdir(parents=True, exist_ok=True)
            sandbox_options["state_path"] = instance / SANDBOX_STATE_FILE
        if notify and "notification_transport" not in sandbox_options:
            sandbox_options["notification_transport"] = httpx.WSGITransport(app=app)
            notify_here = True
        sandbox_app = create_sandbox_app(**sandbox_options)
    sandbox = sandbox_of(sandbox_app)
    app.extensions[_MOUNTED] = sandbox
    if notify_here:
        app.extensions[_NOTIFY_MOUNTED] = sandbox
    app.wsgi_app = _SandboxMount(  # type: ignore[method-assign]
        app.wsgi_app, sandbox_app, prefix, WIDGET_ROOT_PATHS if widget_paths else (),
        app.url_map)
    app.config.update({
        "CHECKOUT_KIT_SANDBOX": True,
        "CHECKOUT_KIT_SANDBOX_URL": prefix,
        "CHECKOUT_KIT_API_TRANSPORT": _MountedSandboxTransport(app=sandbox_app),
        "CHECKOUT_KIT_API_URL": "http://sandbox.invalid",
    })
    app.config.setdefault("CHECKOUT_KIT_PUBLIC_ID", sandbox.public_id)
    app.config.setdefault("CHECKOUT_KIT_API_SECRET", sandbox.api_secret)
    return sandbox_app


class CheckoutKit:
    """The checkout extension: ``CheckoutKit(app)`` or ``kit.init_app(app)``.

    The payment methods act on the current app's ledger (call them inside an app
    context: a request, a CLI command or ``with app.app_context()``).
    """

    def __init__(self, app: Flask | None = None) -> None:
        #: The shop's own Check rules (docs/notifications.md), run after the ledger's.
        # The ledger records every payment the shop makes through it: a Check of any
        # other (a subscription's charge, a token charge) is not its to decline
        # (docs/gateway.md §5.3), so the extension opts in to accepting those.
        self.checks = CheckRules(unowned_default=CheckCode.ACCEPT)
        if app is not None:
            self.init_app(app)

    @property
    def settings(self) -> Settings:
        """The current app's checked ``CHECKOUT_KIT_*`` settings (read-only).

        Needs an app context, as every ``kit.*`` call does: one kit may serve several
        apps. ``kit.settings.database_url`` is where the ledger lives (for
        :func:`checkout_kit.ledger.upgrade`); the API secret is left out of the repr.
        """
        return state().settings

    def check_rule(self, fn: CheckRule) -> CheckRule:
        """Decorator: add a Check rule (``fn(notification, payment)`` returns ``None``
        to accept or a :class:`~checkout_kit.notifications.CheckCode` to decline). A
        rule that raises declines with 13 and is logged; it never becomes a 500."""
        return self.checks.rule(fn)

    def unowned_check_rule(self, fn: UnownedCheckRule) -> UnownedCheckRule:
        """Decorator: add a Check rule for payments the ledger does not own (no payment
        for the ``InvoiceId``, or a subscription's charge): ``fn(notification)`` returns
        ``None`` to accept or a :class:`~checkout_kit.notifications.CheckCode` to
        decline. Without any, such payments are accepted (and recorded in the audit
        log), docs/gateway.md §5.3."""
        return self.checks.unowned_rule(fn)

    def init_app(self, app: Flask) -> None:
        """Check the settings, open the ledger, register the blueprint and commands.

        Raises :class:`~checkout_kit.shop.config.ConfigurationError` naming the first
        bad ``CHECKOUT_KIT_*`` key (or ``SECRET_KEY``, which signs the TermUrl and the
        CSRF tokens).
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("CheckoutKit is already initialised for this app")
        settings = load_settings(app.config, app.instance_path)
        secret = app.config.get("SECRET_KEY")
        if not secret or not isinstance(secret, str | bytes):
            raise ConfigurationError("SECRET_KEY", "is required (it signs the TermUrl and "
                                                   "the CSRF tokens)")
        try:
            catalogs = Catalogs(settings.translation_dirs, settings.default_language)
        except ValueError as exc:
            raise ConfigurationError("CHECKOUT_KIT_DEFAULT_LANGUAGE", str(exc)) from None
        if settings.language is not None and settings.language not in catalogs.languages:
            raise ConfigurationError("CHECKOUT_KIT_LANGUAGE",
                                     f"no catalog for {settings.language!r}")
        client = CloudPaymentsClient(
            settings.public_id, settings.api_secret, base_url=settings.api_url,
            transport=settings.api_transport, timeout=settings.http_timeout,
            max_retries=settings.http_retries)
        ledger = Ledger(settings.database_url)

        def on_change(payment: LedgerPayment, old: Any, new: Any) -> None:
            # The ledger reports a status change after its commit.
            signal = signals.BY_STATUS.get(str(new))
            if signal is not None:
                signal.send(app, payment=payment, old_status=None if old is None else str(old))

        def on_problem(payment: LedgerPayment, problem: PaymentProblem) -> None:
            signal = signals.BY_PROBLEM.get(problem.kind)
            if signal is not None:
                signal.send(app, payment=payment, problem=problem)
            signals.payment_problem.send(app, payment=payment, problem=problem)

        # load_settings checked STALE_AFTER against the timeout and the retries before
        # the client and the ledger were opened.
        service = PaymentService(ledger, client, on_change=on_change, on_problem=on_problem,
                                 stale_after=timedelta(seconds=settings.stale_after))
        sandbox = app.extensions.get(_MOUNTED)
        app.extensions[EXTENSION_KEY] = KitState(
            app=app, settings=settings, client=client, ledger=ledger, service=service,
            catalogs=catalogs, signer=URLSafeTimedSerializer(secret, salt="checkout-kit.3ds"),
            inbox=Inbox(ledger), checks=self.checks, on_change=on_change,
            on_problem=on_problem, sandbox=sandbox,
            refused=None if sandbox is None else unknown_transactions(ledger, sandbox))
        refused = app.extensions[EXTENSION_KEY].refused
        if refused is not None:
            # Not raised: `flask checkout sandbox reset`, which ends it, needs the app.
            logger.error("checkout_kit takes no payment: %s", refused)

        from .cli import checkout_group
        from .notifications import exempt_from_csrf
        from .views import bp

        app.register_blueprint(bp, url_prefix=settings.url_prefix or None)

        # The pages do their own CSRF checks (WTForms SessionCSRF; the TermUrl takes a
        # signed URL; notifications carry an HMAC), so Flask-WTF's global protection
        # must leave them alone, whether CSRFProtect is set up before the kit or after.
        # Before: exempt now. After: its before_request hook is registered after this
        # one, so this one exempts the views first, on the first request.
        def exempt_kit_views() -> None:
            csrf = app.extensions.get("csrf")
            if csrf is not None and hasattr(csrf, "exempt"):
                csrf.exempt(bp)
                exempt_from_csrf(csrf)

        exempt_kit_views()
        app.before_request(exempt_kit_views)
        app.cli.add_command(checkout_group)
        mounted = app.extensions.pop(_NOTIFY_MOUNTED, None)
        if mounted is not None:
            _notify_mounted_sandbox(mounted, settings.url_prefix)

    # --- the shop's API ----------------------------------------------------------------

    @staticmethod
    def _wrap(snapshot: LedgerPayment) -> Payment:
        try:
            url = url_for("checkout_kit.pay", payment_id=snapshot.id, _external=True)
        except (RuntimeError, BuildError):
            # No request and no SERVER_NAME: the path, relative to the app's root.
            root = current_app.config.get("APPLICATION_ROOT") or "/"
            url = (root.rstrip("/") + state().settings.url_prefix + f"/pay/{snapshot.id}")
        return Payment(snapshot, url)

    def create_payment(
        self,
        *,
        invoice_id: str,
        amount: Decimal | int | str,
        currency: str = "RUB",
        description: str,
        account_id: str | None = None,
        email: str | None = None,
        scheme: str = "charge",
        success_url: str | None = None,
        fail_url: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        expires_at: datetime | None = None,
    ) -> Payment:
        """Record a payment to be paid (``scheme`` ``"charge"``: one stage, ``"auth"``:
        held until :meth:`confirm`) and return it with its ``checkout_url``.
        From ``expires_at`` (aware) on, the gateway's Check for it is answered 20.

        The same ``invoice_id`` with the same data returns the existing payment;
        with other data it raises ``PaymentConflictError``. ``success_url`` and
        ``fail_url`` (the result pages' links back to the shop) must be absolute http(s)
        URLs: anything else (``javascript:``...) raises ``InvalidRequestError`` (``field``).
        """
        kit = state().ready()
        try:
            kit.ledger.get_by_invoice(invoice_id)
            existed = True
        except PaymentNotFoundError:
            existed = False
        snapshot = kit.service.create_payment(
            invoice_id=invoice_id, amount=amount, currency=currency, description=description,
            account_id=account_id, email=email, scheme=scheme, success_url=success_url,
            fail_url=fail_url, metadata=metadata, expires_at=expires_at)
        if not existed:
            # The ledger reports status changes only; creation is ours to announce.
            signals.payment_created.send(kit.app, payment=snapshot, old_status=None)
        return self._wrap(snapshot)

    def get(self, payment: Payment | LedgerPayment | str) -> Payment:
        """The payment's current state (``PaymentNotFoundError`` if unknown)."""
        return self._wrap(state().ledger.get(_payment_id(payment)))

    def confirm(self, payment: Payment | LedgerPayment | str,
                amount: Decimal | int | str | None = None) -> Payment:
        """Capture an authorized (two-stage) payment, in full or ``amount``."""
        return self._wrap(state().ready().service.confirm(_payment_id(payment), amount))

    def void(self, payment: Payment | LedgerPayment | str) -> Payment:
        """Cancel an authorized (two-stage) payment."""
        return self._wrap(state().ready().service.void(_payment_id(payment)))

    def refund(self, payment: Payment | LedgerPayment | str,
               amount: Decimal | int | str | None = None) -> Payment:
        """Refund a succeeded payment, in full or ``amount`` (partial refunds add up)."""
        kit = state().ready()
        before = kit.ledger.get(_payment_id(payment))
        after = kit.service.refund(before.id, amount)
        if str(after.status) == str(before.status) and after.refunded_amount > (
                before.refunded_amount or 0):
            # A partial refund keeps the status, so the ledger reports no change.
            signals.payment_refunded.send(kit.app, payment=after, old_status=str(before.status),
                                          amount=after.refunded_amount - before.refunded_amount)
        return self._wrap(after)

    def refresh(self, payment: Payment | LedgerPayment | str) -> Payment:
        """Ask the gateway how a pending or unknown payment ended (a widget payment
        included, which the gateway takes without our server)."""
        return self._wrap(state().ready().service.refresh(_payment_id(payment)))

    def reconcile(self) -> list[Payment]:
        """Refresh every unknown or pending payment, and every widget payment of the
        last :data:`WIDGET_RECONCILE_WINDOW` that is still ``created`` or ``failed``
        (paid at the gateway, its Pay notification lost or not configured) and that the
        gateway turns out to have paid. Returns those it settled or looked at."""
        kit = state().ready()
        looked = [self._wrap(p) for p in kit.service.reconcile()]
        since = kit.ledger.now() - WIDGET_RECONCILE_WINDOW
        for payment in kit.ledger.list_payments(status=_WIDGET_PAYABLE, limit=1000):
            if payment.created_at < since:
                break  # newest first: the rest are older
            try:
                after = kit.service.refresh(payment.id)
            except GatewayError:
                continue  # the next run asks again
            if after.version != payment.version:
                looked.append(self._wrap(after))
        return looked



def unknown_transactions(ledger: Ledger, sandbox: Sandbox) -> str | None:
    """What is wrong when ``ledger`` holds transaction ids ``sandbox`` has not issued
    (its state was deleted or replaced while the ledger was kept: the ids it issues
    next would name old payments), else ``None``. A sandbox kept in memory (tests)
    starts afresh with every process by choice: it is not asked."""
    if sandbox.state_path is None:
        return None
    sandbox.sync()
    unknown = sorted(ledger.transaction_ids() - set(sandbox.state.transactions))
    if not unknown:
        return None
    where = sandbox.state_path or "in memory"
    shown = ", ".join(map(str, unknown[:3])) + (", ..." if len(unknown) > 3 else "")
    return (f"the ledger holds {len(unknown)} transaction id(s) the sandbox ({where}) has "
            f"never issued ({shown}): its state was deleted or replaced while the ledger "
            "was kept. Reset both with: flask checkout sandbox reset")


def _notify_mounted_sandbox(sandbox: Sandbox, url_prefix: str) -> None:
    """Point a sandbox mounted in the app at the app's notification routes, as its
    merchant account would: Check included, which the API cannot set."""
    from ..notifications import NotificationType

    for kind in NotificationType:
        sandbox.configure_notification(
            kind, f"{MOUNTED_SHOP_ORIGIN}{url_prefix}/notifications/{kind.value.lower()}",
            http_method="POST")


_WIDGET_PAYABLE = frozenset({PaymentStatus.CREATED, PaymentStatus.FAILED})
#: How far back :meth:`CheckoutKit.reconcile` looks for widget payments the gateway may
#: have taken without the shop hearing of it.
WIDGET_RECONCILE_WINDOW = timedelta(days=1)
