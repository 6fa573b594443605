"""One app's checkout state, and how to find it: what every part of the extension
needs (settings, API client, ledger, service, catalogs, TermUrl signer...).

:meth:`CheckoutKit.init_app <checkout_kit.shop.CheckoutKit.init_app>` puts the
``CheckoutKit`` instance in ``app.extensions["checkout_kit"]``, as Flask-SQLAlchemy
and Flask-Login do, and the app's :class:`KitState` in
``app.extensions["checkout_kit.state"]``: one instance may serve several apps, which
share nothing. The views, the notification routes and the commands find it with
:func:`state`; this module imports nothing of the shop package that imports it back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app
from itsdangerous import URLSafeTimedSerializer

from ..client import CloudPaymentsClient
from ..ledger.inbox import Inbox
from ..ledger.service import PaymentService
from ..ledger.store import Ledger, PaymentProblem
from ..ledger.store import Payment as LedgerPayment
from ..webhooks import CheckRules
from .config import ConfigurationError, Settings
from .i18n import Catalogs

if TYPE_CHECKING:
    from ..sandbox import Sandbox

__all__ = ["EXTENSION_KEY", "STATE_KEY", "KitState", "align_transaction_ids", "state"]

#: ``app.extensions`` key of the ``CheckoutKit`` instance.
EXTENSION_KEY = "checkout_kit"
#: ``app.extensions`` key of the app's :class:`KitState`.
STATE_KEY = "checkout_kit.state"
logger = logging.getLogger("checkout_kit.shop")


@dataclass
class KitState:
    """What one app's checkout needs (``app.extensions["checkout_kit.state"]``)."""

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
    #: the sandbox ``mount_sandbox`` mounted in this app, if any
    sandbox: Sandbox | None = None

    #: whether the ledger's schema was found current (asked once, at the first use)
    _schema_current: bool = field(default=False, init=False, repr=False)
    #: whether the mounted sandbox's ids were set apart from the ledger's (once)
    _ids_aligned: bool = field(default=False, init=False, repr=False)

    def check_ledger(self) -> KitState:
        """This state, if the ledger's tables are at the version this checkout_kit
        needs; else :class:`~checkout_kit.shop.config.ConfigurationError` saying what to
        run (``flask checkout db upgrade``), rather than SQL errors later."""
        if not self._schema_current:
            from ..ledger.migrations import schema_problem

            problem = schema_problem(self.ledger.engine)
            if problem is not None:
                raise ConfigurationError("CHECKOUT_KIT_DATABASE_URL", problem)
            self._schema_current = True
        return self

    def ready(self) -> KitState:
        """This state, once the kit may act on payments: the ledger's schema is
        current (else :class:`~checkout_kit.shop.config.ConfigurationError`), and a
        mounted sandbox issues no transaction id the ledger already holds (found at the
        first use and logged, :func:`align_transaction_ids`)."""
        self.check_ledger()
        if not self._ids_aligned and self.sandbox is not None:
            problem = align_transaction_ids(self.ledger, self.sandbox)
            if problem is not None:
                logger.warning("checkout_kit: %s", problem)
            self._ids_aligned = True
        return self


def state(app: Flask | None = None) -> KitState:
    """The checkout state of ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    found = target.extensions.get(STATE_KEY)
    if not isinstance(found, KitState):
        raise RuntimeError("CheckoutKit.init_app(app) has not been called for this app")
    return found


def align_transaction_ids(ledger: Ledger, sandbox: Sandbox) -> str | None:
    """Make sure ``sandbox`` never issues a transaction id ``ledger`` already holds.

    When the ledger holds ids the sandbox has not issued (its state file was deleted or
    replaced while the ledger was kept), the ids it issues next would name old
    payments: its counter moves past the ledger's highest id, and what happened is
    returned, to be logged (``None`` when all is well). Payments go on; only the old
    ones cannot be refunded or looked up in this sandbox. A sandbox kept in memory
    (tests) starts afresh with every process by choice: it is not asked.
    """
    if sandbox.state_path is None:
        return None
    held = ledger.transaction_ids()
    with sandbox.lock:
        unknown = sorted(held - set(sandbox.state.transactions))
        if not unknown:
            return None
        start = max(int(sandbox.state.meta["next_transaction_id"]), max(held) + 1)
        sandbox.state.meta["next_transaction_id"] = start
        sandbox.state.changed.add(("meta", "meta"))
    shown = ", ".join(map(str, unknown[:3])) + (", ..." if len(unknown) > 3 else "")
    return (f"the ledger holds {len(unknown)} transaction id(s) the sandbox "
            f"({sandbox.state_path}) has never issued ({shown}): its state was deleted or "
            f"replaced while the ledger was kept. New transactions start at {start}, so "
            "none repeats; the old payments cannot be refunded or looked up in this "
            "sandbox. To start both afresh: flask checkout sandbox reset")
