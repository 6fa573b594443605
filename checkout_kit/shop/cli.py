"""``flask checkout …``: the shop's API on the command line.

``flask checkout create``, ``confirm``, ``void``, ``refund``, ``refresh``,
``reconcile``, ``payments`` (the ledger, with ``--history``; ``--problems``: open
second charges to refund, transactions that do not match), ``resolve-problem``,
``db upgrade``, ``notifications configure|list|replay``, ``sandbox reset`` and
``doctor`` (checks the credentials, the ledger, the notification settings, the URL).
Registered on ``app.cli`` by :meth:`CheckoutKit.init_app`. Errors print a message and
exit with status 1; they never show a traceback.

``notifications purge`` masks the audit log's old bodies (:mod:`checkout_kit.ledger.retention`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from decimal import Decimal
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from .. import money
from ..errors import CheckoutKitError, MoneyError, NotificationPurgedError

__all__ = ["checkout_group"]

checkout_group = AppGroup("checkout", help="Payments in the checkout_kit ledger.")


def _kit() -> Any:
    """The app's own ``CheckoutKit`` (a subclass included), once its ledger is usable."""
    from .state import EXTENSION_KEY

    _ledger()  # fails clearly when init_app was not called or the schema is old
    return current_app.extensions[EXTENSION_KEY]


def _ledger() -> Any:
    """The app's kit state, once its ledger's schema is known to be current (else a
    one-line ``ConfigurationError``: run ``flask checkout db upgrade``)."""
    from .state import state

    return state(current_app).check_ledger()


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except CheckoutKitError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None


def _row(payment: Any) -> dict[str, Any]:
    return {
        "id": payment.id,
        "invoice_id": payment.invoice_id,
        "status": str(payment.status),
        "amount": money.format_amount(payment.amount, payment.currency),
        "currency": payment.currency,
        "refunded": money.format_amount(payment.refunded_amount or Decimal(0), payment.currency),
        "scheme": payment.scheme,
        "transaction": payment.gateway_transaction_id,
    }


def _show(payment: Any, as_json: bool) -> None:
    row = _row(payment)
    if hasattr(payment, "checkout_url"):
        row["checkout_url"] = payment.checkout_url
    if as_json:
        click.echo(json.dumps(row, ensure_ascii=False))
    else:
        click.echo("  ".join(f"{k}={'' if v is None else v}" for k, v in row.items()))


_json_option = click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")


@checkout_group.command("create")
@click.option("--invoice", "invoice_id", required=True, help="Your order number (unique).")
@click.option("--amount", required=True)
@click.option("--currency", default="RUB", show_default=True)
@click.option("--description", required=True)
@click.option("--account", "account_id")
@click.option("--email")
@click.option("--scheme", type=click.Choice(["charge", "auth"]), default="charge",
              show_default=True)
@click.option("--success-url")
@click.option("--fail-url")
@_json_option
def create_command(invoice_id: str, amount: str, currency: str, description: str,
                   account_id: str | None, email: str | None, scheme: str,
                   success_url: str | None, fail_url: str | None, as_json: bool) -> None:
    """Create a payment and print its checkout URL."""
    with _errors():
        _show(_kit().create_payment(
            invoice_id=invoice_id, amount=amount, currency=currency, description=description,
            account_id=account_id, email=email, scheme=scheme, success_url=success_url,
            fail_url=fail_url), as_json)


def _action(name: str, help_text: str, call: Callable[[Any, str, str | None], Any],
            with_amount: bool) -> None:
    @click.argument("payment_id")
    @_json_option
    def command(payment_id: str, as_json: bool, amount: str | None = None) -> None:
        with _errors():
            _show(call(_kit(), payment_id, amount), as_json)

    command.__doc__ = help_text
    if with_amount:
        command = click.option("--amount", help="Part of the amount (default: all).")(command)
    checkout_group.command(name, help=help_text)(command)


_action("confirm", "Capture an authorized (two-stage) payment.",
        lambda kit, pid, amount: kit.confirm(pid, amount), True)
_action("void", "Cancel an authorized (two-stage) payment.",
        lambda kit, pid, amount: kit.void(pid), False)
_action("refund", "Refund a succeeded payment (all, or --amount).",
        lambda kit, pid, amount: kit.refund(pid, amount), True)
_action("refresh", "Ask the gateway how a pending or unknown payment ended.",
        lambda kit, pid, amount: kit.refresh(pid), False)


@checkout_group.command("reconcile")
@_json_option
def reconcile_command(as_json: bool) -> None:
    """Refresh every unknown or pending payment from the gateway."""
    with _errors():
        payments = _kit().reconcile()
        for payment in payments:
            _show(payment, as_json)
        if not as_json:
            click.echo(f"{len(payments)} payment(s) looked at")


@checkout_group.command("payments")
@click.option("--status", help="Only payments in this status.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0),
              help="Skip this many payments (the next page).")
@click.option("--history", is_flag=True, help="Also print each payment's status history.")
@click.option("--problems", is_flag=True,
              help="Only payments with an open problem (a second charge to refund, a "
                   "transaction that does not match), each followed by its problems.")
@click.option("--resolved", "include_resolved", is_flag=True,
              help="With --problems: resolved problems too.")
@_json_option
def payments_command(status: str | None, limit: int, offset: int, history: bool,
                     problems: bool, include_resolved: bool, as_json: bool) -> None:
    """List the ledger's payments, newest first."""
    with _errors():
        kit = _ledger()
        listed: list[tuple[Any, list[Any]]]
        more = False
        if problems:
            page = kit.ledger.payments_with_problems(
                status, limit=limit, offset=offset, include_resolved=include_resolved)
            listed, more = page.payments, page.more
        else:
            listed = [(p, []) for p in kit.ledger.list_payments(status=status, limit=limit,
                                                                offset=offset)]
        for payment, found in listed:
            _show(payment, as_json)
            for problem in found:
                line = _problem(problem)
                click.echo(json.dumps(line, ensure_ascii=False) if as_json
                           else "    " + "  ".join(f"{k}={v}" for k, v in line.items()))
            if history:
                for event in kit.ledger.history(payment.id):
                    line = _event(event)
                    click.echo(json.dumps(line, ensure_ascii=False) if as_json
                               else "    " + "  ".join(f"{k}={v}" for k, v in line.items()))
        if more:
            # Never a silent cut: say where the next page starts (on stderr with --json,
            # so that stdout stays one JSON object per line).
            click.echo(f"more payments with problems: --offset {offset + limit}",
                       err=as_json)


@checkout_group.command("resolve-problem")
@click.argument("problem_id", type=int)
@click.option("--note", help="What was done (kept in the payment's history).")
@_json_option
def resolve_problem_command(problem_id: int, note: str | None, as_json: bool) -> None:
    """Mark a payment problem resolved (the second charge refunded...): it leaves
    ``payments --problems``. PROBLEM_ID is the ``problem_id`` that list prints."""
    with _errors():
        problem = _ledger().ledger.resolve_problem(problem_id, note=note)
        line = {"payment": problem.payment_id, **_problem(problem)}
        click.echo(json.dumps(line, ensure_ascii=False) if as_json
                   else "  ".join(f"{k}={v}" for k, v in line.items()))


def _problem(problem: Any) -> dict[str, Any]:
    amount = None if problem.amount is None else str(problem.amount)
    if amount is not None and problem.currency:
        with suppress(MoneyError):  # a mismatch may be in a currency the shop never takes
            amount = money.format_amount(problem.amount, problem.currency)
    row = {"problem": str(problem.kind), "transaction": problem.gateway_transaction_id,
           "amount": amount, "currency": problem.currency,
           "created_at": problem.created_at.isoformat(timespec="seconds"),
           "detail": problem.detail, "problem_id": problem.id,
           "resolved_at": None if problem.resolved_at is None
           else problem.resolved_at.isoformat(timespec="seconds")}
    return {k: v for k, v in row.items() if v is not None}


def _event(event: Any) -> dict[str, Any]:
    fields = ("created_at", "old_status", "new_status", "reason_code")
    return {name: str(getattr(event, name)) for name in fields
            if getattr(event, name, None) is not None}


@checkout_group.group("db")
def db_group() -> None:
    """The ledger's database."""


@db_group.command("upgrade")
def db_upgrade_command() -> None:
    """Create or migrate the ledger's tables to the current version."""
    from ..ledger.migrations import upgrade
    from .state import state

    with _errors():
        kit = state(current_app)
        upgrade(kit.settings.database_url)
        click.echo(f"ledger at the current version ({_safe_url(kit.settings.database_url)})")


@checkout_group.command("doctor")
@click.option("--base-url", help="The shop's public origin (https://shop.example): checks "
                                 "it and that notifications are sent there.")
def doctor_command(base_url: str | None) -> None:
    """Check the set-up: the credentials (the gateway's /test), the ledger's tables,
    the notification settings and the public URL. One line per check; exits 1 if one
    fails."""
    from .state import state

    with _errors():
        kit = state(current_app)
    checks = _Doctor(kit, base_url)
    with _errors():  # each check reports its own failures; anything else, one line
        for line in checks.run():
            click.echo(line)
    if checks.failed:
        raise SystemExit(1)


class _Doctor:
    """The checks of ``flask checkout doctor``, in order; each says ok, FAIL or skip."""

    def __init__(self, kit: Any, base_url: str | None) -> None:
        self.kit = kit
        self.base_url = base_url.rstrip("/") if base_url else None
        self.failed = False
        self.credentials_ok = False

    def run(self) -> Iterator[str]:
        for name, check in (("credentials", self.credentials), ("ledger", self.ledger),
                            ("public URL", self.public_url),
                            ("notifications", self.notifications)):
            for verdict, text in check():
                self.failed |= verdict == "FAIL"
                yield f"{verdict:<5} {name:<14} {text}"

    def credentials(self) -> Iterator[tuple[str, str]]:
        from ..errors import AuthenticationError, GatewayError

        public_id = self.kit.settings.public_id
        try:
            self.kit.client.test()
        except AuthenticationError:
            yield "FAIL", (f"the gateway refused the Public ID {public_id} with this API "
                           "secret: check CHECKOUT_KIT_PUBLIC_ID and CHECKOUT_KIT_API_SECRET")
        except GatewayError as exc:
            yield "FAIL", f"the gateway at {self.kit.settings.api_url} did not answer: {exc}"
        else:
            self.credentials_ok = True
            yield "ok", f"the gateway at {self.kit.settings.api_url} accepts {public_id}"

    def ledger(self) -> Iterator[tuple[str, str]]:
        from sqlalchemy.exc import SQLAlchemyError

        from ..ledger.migrations import schema_problem

        where = _safe_url(self.kit.settings.database_url)
        try:
            problem = schema_problem(self.kit.ledger.engine)
        except SQLAlchemyError as exc:
            first = (str(getattr(exc, "orig", None) or exc).splitlines() or [""])[0]
            yield "FAIL", f"cannot open {where}: {first}"
            return
        if problem is not None:
            yield "FAIL", f"{where}: {problem}"
        else:
            yield "ok", f"{where} is at the current version"
            if self.kit.sandbox is not None:
                from .state import align_transaction_ids

                found = align_transaction_ids(self.kit.ledger, self.kit.sandbox)
                if found is not None:
                    yield "FAIL", found

    def public_url(self) -> Iterator[tuple[str, str]]:
        from urllib.parse import urlsplit

        from ..urls import is_loopback_host, url_problem

        if self.base_url is None:
            yield "skip", "pass --base-url https://shop.example to check it"
            return
        problem = url_problem(self.base_url)
        parts = urlsplit(self.base_url)
        if problem is not None:
            yield "FAIL", f"{self.base_url} {problem}"
        elif not self.kit.settings.sandbox and (
                parts.scheme != "https" or is_loopback_host(parts.hostname or "")):
            yield "FAIL", (f"{self.base_url}: the gateway and the payers reach a live shop at "
                           "a public https address")
        else:
            yield "ok", self.base_url

    def notifications(self) -> Iterator[tuple[str, str]]:
        from ..notifications import NotificationType
        from .mount import MOUNTED_SHOP_ORIGIN
        from .notification_routes import notification_path

        base = self.base_url or (MOUNTED_SHOP_ORIGIN if self.kit.sandbox is not None else None)
        if base is None:
            yield "skip", "pass --base-url to check where the gateway sends them"
            return
        if not self.credentials_ok:
            yield "skip", "the gateway cannot be asked (see credentials)"
            return
        root = base + self.kit.settings.url_prefix
        for kind in NotificationType:
            address = root + notification_path(kind.value)
            if kind.value in _ACCOUNT_ONLY:
                yield "skip", (f"{kind.value}: the API cannot show it; in the merchant "
                               f"account it must be {address}")
                continue
            try:
                found = self.kit.client.get_notification_settings(kind.value)
            except CheckoutKitError as exc:
                yield "FAIL", f"{kind.value}: the gateway did not say: {exc}"
                continue
            if found.is_enabled and found.address == address:
                yield "ok", f"{kind.value} goes to {address}"
            else:
                now = found.address if found.is_enabled else "nowhere (off)"
                yield "FAIL", (f"{kind.value} goes to {now}, not {address}: run flask "
                               f"checkout notifications configure --base-url {base}")


@checkout_group.group("sandbox")
def sandbox_group() -> None:
    """The sandbox mounted in this app (mount_sandbox)."""


@sandbox_group.command("reset")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def sandbox_reset_command(yes: bool) -> None:
    """Empty the mounted sandbox and the ledger together.

    The sandbox forgets every transaction, token, subscription, order and delivery;
    its counters, key and notification settings stay, so that no transaction id is
    issued twice and notifications still reach the app.
    The ledger loses every payment with its history and notifications. Only in
    sandbox mode, with a sandbox mounted in the app.
    """
    from .state import state

    with _errors():
        kit = state(current_app)
        if kit.sandbox is None or not kit.settings.sandbox:
            raise click.ClickException("no sandbox is mounted in this app (mount_sandbox): "
                                       "nothing to reset")
        where = kit.sandbox.state_path or "in memory"
        if not yes:
            click.confirm(f"Erase the ledger at {_safe_url(kit.settings.database_url)} and "
                          f"the sandbox at {where}?", abort=True)
        kit.check_ledger()  # the ledger first: a failure leaves the sandbox as it was
        rows = kit.ledger.erase()
        records = kit.sandbox.reset()
        click.echo(f"sandbox at {where}: {records} records removed; "
                   f"ledger: {rows} rows removed")


def _safe_url(url: str) -> str:
    # Never print a database password.
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


#: Notification types whose address only the merchant account sets, and why.
_ACCOUNT_ONLY: dict[str, str] = {
    "Check": "set it in the merchant account (the API cannot)",
    "Receipt": "set it in the merchant account (the API's Receipt setting is unconfirmed)",
}


@checkout_group.group("notifications")
def notifications_group() -> None:
    """The gateway's notifications: addresses, the audit log, replays."""


@notifications_group.command("configure")
@click.option("--base-url", required=True,
              help="The shop's public origin, e.g. https://shop.example")
@click.option("--method", type=click.Choice(["POST", "GET"]), default="POST", show_default=True)
@_json_option
def notifications_configure_command(base_url: str, method: str, as_json: bool) -> None:
    """Point the gateway's notifications at this shop, for every type the API may change.

    Check cannot be changed through the gateway's API (docs/gateway.md §3.5), and
    whether the API has ``/site/notifications/Receipt/update`` is unconfirmed
    (docs/gateway.md §10): their addresses are printed to be set in the merchant
    account.
    """
    from urllib.parse import urlsplit

    from ..notifications import NotificationType, codec_for
    from .notification_routes import notification_path
    from .state import state

    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter("must be an absolute http(s) URL", param_hint="--base-url")
    with _errors():
        kit = state()
        root = base_url.rstrip("/") + kit.settings.url_prefix
        encoding = "Windows1251" if codec_for(
            kit.settings.notification_encoding) == "cp1251" else "UTF8"
        for kind in NotificationType:
            address = root + notification_path(kind.value)
            if kind.value in _ACCOUNT_ONLY:
                row = {"type": kind.value, "address": address, "set": False,
                       "note": _ACCOUNT_ONLY[kind.value]}
            else:
                kit.client.update_notification_settings(
                    kind.value, is_enabled=True, address=address, http_method=method,
                    encoding=encoding)
                row = {"type": kind.value, "address": address, "set": True,
                       "method": method, "encoding": encoding}
            click.echo(json.dumps(row, ensure_ascii=False) if as_json else
                       f"{kind.value:<10} {'set' if row['set'] else 'NOT SET':<8} "
                       f"{method if row['set'] else '':<5} {address}"
                       + ("" if row["set"] else f"  ({row['note']})"))


def _record(record: Any) -> dict[str, Any]:
    return {
        "id": record.id, "received_at": record.received_at.isoformat(timespec="seconds"),
        "type": record.type, "method": record.method,
        "signature_valid": record.signature_valid, "applied": record.applied,
        "outcome": record.outcome, "code": record.code, "key": record.key,
        "payment": record.payment_id, "replay_of": record.replay_of, "error": record.error,
        "purged_at": None if record.purged_at is None
        else record.purged_at.isoformat(timespec="seconds"),
    }


def _show_record(record: Any, as_json: bool) -> None:
    row = _record(record)
    if as_json:
        click.echo(json.dumps(row, ensure_ascii=False))
    else:
        click.echo("  ".join(f"{k}={v}" for k, v in row.items() if v is not None))


@notifications_group.command("list")
@click.option("--type", "kind", help="Only notifications of this type (Pay, Fail...).")
@click.option("--payment", "payment_id", help="Only notifications about this payment.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@_json_option
def notifications_list_command(kind: str | None, payment_id: str | None, limit: int,
                               as_json: bool) -> None:
    """The audit log of notifications received, newest first."""
    with _errors():
        for record in _ledger().inbox.list(type=kind, payment_id=payment_id, limit=limit):
            _show_record(record, as_json)


@notifications_group.command("replay")
@click.argument("record_id", type=int)
@_json_option
def notifications_replay_command(record_id: int, as_json: bool) -> None:
    """Apply a stored notification again: checked as if it came now; a notification
    applied before changes nothing (exactly once)."""
    from .notification_routes import replay

    with _errors():
        try:
            _status, _code, record = replay(_ledger(), record_id)
        except NotificationPurgedError as exc:
            raise click.ClickException(str(exc)) from None
        except LookupError:
            raise click.ClickException(f"no notification {record_id}") from None
        _show_record(record, as_json)


@notifications_group.command("purge")
@click.option("--older-than", "days", type=click.IntRange(min=1), default=None,
              metavar="DAYS",
              help="Mask notifications received more than DAYS days ago "
                   "(default: CHECKOUT_KIT_NOTIFICATION_RETENTION_DAYS).")
@_json_option
def notifications_purge_command(days: int | None, as_json: bool) -> None:
    """Replace the body of old notifications in the audit log by a masked copy.

    The payer's e-mail, name, IP address and token go; identifiers, amounts, statuses
    and everything the exactly-once key is made of stay, so a late redelivery is still
    recognised. A purged notification cannot be replayed. Run it daily (cron).
    """
    from ..ledger.retention import purge_notifications

    with _errors():
        kit = _ledger()
        period = days if days is not None else kit.settings.notification_retention_days
        count = purge_notifications(kit.ledger, older_than=timedelta(days=period))
        if as_json:
            click.echo(json.dumps({"purged": count, "older_than_days": period}))
        else:
            click.echo(f"{count} notification(s) older than {period} day(s) masked")
