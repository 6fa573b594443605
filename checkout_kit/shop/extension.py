"""``CheckoutKit``: the Flask extension that takes card payments into the ledger.

``app.extensions["checkout_kit"]`` is the instance (a subclass included), and one
instance may serve several apps: everything an app needs (settings, API client, ledger,
service, catalogs, TermUrl signer) is its :class:`~checkout_kit.shop.state.KitState`, so
two apps in one process share nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any, Unpack, overload

from flask import Flask, current_app, url_for
from itsdangerous import URLSafeTimedSerializer
from werkzeug.routing import BuildError

from ..client import CloudPaymentsClient
from ..errors import GatewayError, PaymentNotFoundError
from ..ledger.inbox import Inbox
from ..ledger.requests import PaymentFields, PaymentRequest
from ..ledger.service import PaymentService
from ..ledger.states import PaymentStatus
from ..ledger.store import Ledger, PaymentProblem
from ..ledger.store import Payment as LedgerPayment
from ..notifications import CheckCode
from ..webhooks import CheckRule, CheckRules, UnownedCheckRule
from . import signals
from .config import Problems, Settings, load_settings
from .i18n import Catalogs
from .mount import (
    MOUNTED,
    NOTIFY_MOUNTED,
    SANDBOX_STATE_FILE,
    WIDGET_ROOT_PATHS,
    mount_sandbox,
    notify_mounted_sandbox,
)
from .state import EXTENSION_KEY, STATE_KEY, KitState, state

__all__ = [
    "SANDBOX_STATE_FILE",
    "WIDGET_RECONCILE_WINDOW",
    "WIDGET_ROOT_PATHS",
    "CheckoutKit",
    "Payment",
    "mount_sandbox",
]

logger = logging.getLogger("checkout_kit.shop")


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

        Raises one :class:`~checkout_kit.shop.config.ConfigurationError` naming every
        bad ``CHECKOUT_KIT_*`` key (and ``SECRET_KEY``, which signs the TermUrl and the
        CSRF tokens), a misspelt key with the one it resembles.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("CheckoutKit is already initialised for this app")
        problems = Problems()
        settings = problems.check(lambda: load_settings(app.config, app.instance_path), None)
        if not any(key in app.config for key in _MOUNT_SETS) and any(
                key == "CHECKOUT_KIT_PUBLIC_ID" for key, _ in problems.found):
            # No credentials and no sandbox setting at all: the commonest first-hour
            # slip is the sandbox mounted after the kit.
            problems.add("CHECKOUT_KIT_SANDBOX", "for the sandbox, call mount_sandbox(app) "
                         "before CheckoutKit(app): it sets the Public ID and secret")
        secret = app.config.get("SECRET_KEY")
        if not secret or not isinstance(secret, str | bytes):
            problems.add("SECRET_KEY", "is required (it signs the TermUrl and the CSRF tokens)")
        catalogs = None
        if settings is not None:
            try:
                catalogs = Catalogs(settings.translation_dirs, settings.default_language)
            except ValueError as exc:
                problems.add("CHECKOUT_KIT_DEFAULT_LANGUAGE", str(exc))
            else:
                if settings.language is not None and (
                        settings.language not in catalogs.languages):
                    problems.add("CHECKOUT_KIT_LANGUAGE",
                                 f"no catalog for {settings.language!r}")
        problems.raise_any()
        assert settings is not None and catalogs is not None and secret
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
        sandbox = app.extensions.get(MOUNTED)
        app.extensions[EXTENSION_KEY] = self
        app.extensions[STATE_KEY] = KitState(
            app=app, settings=settings, client=client, ledger=ledger, service=service,
            catalogs=catalogs, signer=URLSafeTimedSerializer(secret, salt="checkout-kit.3ds"),
            inbox=Inbox(ledger), checks=self.checks, on_change=on_change,
            on_problem=on_problem, sandbox=sandbox)

        from .cli import checkout_group

        # The pages' blueprint, once notification_routes has added its routes to it.
        from .notification_routes import bp

        app.register_blueprint(bp, url_prefix=settings.url_prefix or None)

        # The pages do their own CSRF checks (WTForms SessionCSRF; the TermUrl takes a
        # signed URL; notifications carry an HMAC), so Flask-WTF's global protection
        # must leave them alone, whether CSRFProtect is set up before the kit or after.
        # Before: exempt now, once. After: it cannot be reached yet; every extension is
        # set up before the first request, so that request exempts them, once (its
        # CSRFProtect hook, registered later, runs after ours).
        if not _exempt_from_csrf(app):
            done: list[bool] = []

            def exempt_at_first_request() -> None:
                if not done:
                    done.append(_exempt_from_csrf(app))

            app.before_request(exempt_at_first_request)
        app.cli.add_command(checkout_group)
        mounted = app.extensions.pop(NOTIFY_MOUNTED, None)
        if mounted is not None:
            notify_mounted_sandbox(mounted, settings.url_prefix)

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

    @overload
    def create_payment(self, request: PaymentRequest, /) -> Payment: ...

    @overload
    def create_payment(self, /, **fields: Unpack[PaymentFields]) -> Payment: ...

    def create_payment(self, request: PaymentRequest | None = None, /,
                       **fields: Any) -> Payment:
        """Record a payment to be paid and return it with its ``checkout_url``: a
        :class:`~checkout_kit.ledger.requests.PaymentRequest`, or its fields as
        keywords (``invoice_id``, ``amount``, ``currency="RUB"``, ``description``,
        ``account_id``, ``email``, ``scheme``, ``success_url``, ``fail_url``,
        ``metadata``, ``expires_at``), checked once, here.

        ``scheme`` ``"charge"``: one stage, ``"auth"``: held until :meth:`confirm`.
        From ``expires_at`` (aware) on, the gateway's Check for it is answered 20.
        The same ``invoice_id`` with the same data returns the existing payment;
        with other data it raises ``PaymentConflictError``. ``success_url`` and
        ``fail_url`` (the result pages' links back to the shop) must be absolute http(s)
        URLs: anything else (``javascript:``...) raises ``InvalidRequestError`` (``field``).
        """
        kit = state().ready()
        request = PaymentRequest.of(request, fields)
        try:
            kit.ledger.get_by_invoice(request.invoice_id)
            existed = True
        except PaymentNotFoundError:
            existed = False
        snapshot = kit.service.create_payment(request)
        if not existed:
            # The ledger reports status changes only; creation is ours to announce.
            signals.payment_created.send(kit.app, payment=snapshot, old_status=None)
        return self._wrap(snapshot)

    def get(self, payment: Payment | LedgerPayment | str) -> Payment:
        """The payment's current state (``PaymentNotFoundError`` if unknown)."""
        return self._wrap(state().check_ledger().ledger.get(_payment_id(payment)))

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
            except GatewayError as exc:
                logger.warning("reconcile: widget payment %s not refreshed: %s",
                               payment.id, exc)
                continue  # the next run asks again
            if after.version != payment.version:
                looked.append(self._wrap(after))
        return looked



#: Keys that say a shop configured the gateway itself (so the mount hint is not for it).
_MOUNT_SETS = ("CHECKOUT_KIT_SANDBOX", "CHECKOUT_KIT_API_SECRET", "CHECKOUT_KIT_SANDBOX_URL")


def _exempt_from_csrf(app: Flask) -> bool:
    """Exempt the kit's views from the app's Flask-WTF ``CSRFProtect``, if it has one."""
    from .notification_routes import exempt_from_csrf
    from .views import bp

    csrf = app.extensions.get("csrf")
    if csrf is None or not hasattr(csrf, "exempt"):
        return False
    csrf.exempt(bp)
    exempt_from_csrf(csrf)
    return True


_WIDGET_PAYABLE = frozenset({PaymentStatus.CREATED, PaymentStatus.FAILED})
#: How far back :meth:`CheckoutKit.reconcile` looks for widget payments the gateway may
#: have taken without the shop hearing of it.
WIDGET_RECONCILE_WINDOW = timedelta(days=1)
