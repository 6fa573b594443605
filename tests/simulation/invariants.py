"""What must hold: after every step (:func:`check_step`) and at quiescence
(:func:`check_final`), judged against the gateway's own record (the sandbox's state).

Each finding is a :class:`Violation` naming its invariant. :func:`classify` then says
whether it is one of the defects issue 14 §1 already lists (``D1``…``D8``), by what
the run did to that payment; anything it cannot place is ``new``, and always fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from checkout_kit import jsoncodec
from checkout_kit.ledger.schema import notifications

if TYPE_CHECKING:
    from .world import PaymentModel, World

#: Invariant names.
PAID_MATCHES = "paid_has_matching_gateway_tx"
REFUNDS = "refunds_within_gateway"
SHOWN = "success_never_shown_as_failure"
ANSWERS = "notification_answers_json_not_500"
CRASH = "shop_never_crashes"
SETTLED = "quiescent_ledger_equals_gateway"
DUPLICATE = "extra_charge_flagged_duplicate"
MISMATCH = "other_amount_charge_flagged"
LIVE_3DS = "live_3ds_return_accepted"
EXPIRED = "expired_payment_never_charged"
FOREIGN_CHECK = "foreign_check_not_declined"

INVARIANTS = (PAID_MATCHES, REFUNDS, SHOWN, ANSWERS, CRASH, SETTLED, DUPLICATE, MISMATCH,
              LIVE_3DS, EXPIRED, FOREIGN_CHECK)

#: Audit-log outcomes that flag a charge as a duplicate of the payment (issue 14 §1.7 adds
#: ``payment_duplicate``; adapt here if the ledger names it otherwise). Not the inbox's
#: ``duplicate``: that is a notification delivered again, not a second charge.
DUPLICATE_OUTCOMES = frozenset({"payment_duplicate"})
#: ... and as a charge of another amount, currency or account.
MISMATCH_OUTCOMES = frozenset({"mismatch", "payment_mismatch"})

_SUCCESSFUL = frozenset({"Completed", "Authorized"})


@dataclass(frozen=True)
class Violation:
    invariant: str
    invoice: str | None
    detail: str
    #: ``D1``…``D8`` (issue 14 §1) or ``new``
    defect: str = "new"

    def __str__(self) -> str:
        return f"[{self.invariant}/{self.defect}] {self.invoice or '-'}: {self.detail}"


def _status(tx: Any) -> str:
    return str(tx.status)


def _was_successful(tx: Any) -> bool:
    """Completed, Authorized, or an authorization cancelled later (voided, expired)."""
    return _status(tx) in _SUCCESSFUL or (_status(tx) == "Cancelled" and tx.auth_date is not None)


def _charged_amount(tx: Any) -> Decimal:
    """What the payer agreed to pay in this transaction (an auth's whole hold)."""
    return tx.auth_amount if tx.auth_amount is not None else tx.amount


def _fits(tx: Any, model: PaymentModel) -> bool:
    return (_charged_amount(tx) == model.amount and tx.currency == "RUB"
            and tx.account_id == model.account)


# ---------------------------------------------------------------- after every step


def check_step(world: World) -> list[Violation]:
    found: list[Violation] = []
    by_invoice = {m.invoice: m for m in world.payments}
    for payment in world.ledger_payments():
        model = by_invoice[payment.invoice_id]
        status = payment.status.value
        tx = world.gateway_tx(payment.gateway_transaction_id)
        if status in ("succeeded", "authorized", "refunded"):
            allowed = {"succeeded": {"Completed"}, "refunded": {"Completed"},
                       "authorized": {"Authorized", "Completed", "Cancelled"}}[status]
            if tx is None or tx.invoice_id != payment.invoice_id:
                found.append(Violation(PAID_MATCHES, model.invoice,
                                       f"{status} with no gateway transaction of its invoice "
                                       f"(tx {payment.gateway_transaction_id})"))
            elif not _fits(tx, model) or payment.currency != tx.currency or (
                    # a hold is judged on what was held: the gateway may have captured
                    # part of it already (its Confirm notification still on its way)
                    payment.amount != (_charged_amount(tx) if status == "authorized"
                                       else tx.amount)):
                found.append(Violation(PAID_MATCHES, model.invoice,
                                       f"{status} {payment.amount} (created for {model.amount}"
                                       f" {model.account}) from tx {tx.id} of "
                                       f"{_charged_amount(tx)}/{tx.amount} {tx.account_id}"))
            elif _status(tx) not in allowed:
                found.append(Violation(PAID_MATCHES, model.invoice,
                                       f"{status} from tx {tx.id} which is {_status(tx)}"))
        if payment.refunded_amount > payment.amount:
            found.append(Violation(REFUNDS, model.invoice,
                                   f"refunded {payment.refunded_amount} > {payment.amount}"))
        if payment.refunded_amount > 0:
            gateway = world.gateway_refunded(tx.id) if tx is not None else Decimal(0)
            if payment.refunded_amount > gateway:
                found.append(Violation(REFUNDS, model.invoice,
                                       f"ledger refunded {payment.refunded_amount}, gateway "
                                       f"{gateway} (counted twice)"))
    for invoice, shown, made in world.shown:
        if shown != "failure":
            continue
        won = [tx_id for tx_id in made
               if (tx := world.gateway_tx(tx_id)) is not None and _status(tx) in _SUCCESSFUL]
        if won:
            found.append(Violation(SHOWN, invoice,
                                   f"payer shown a failure; the gateway took tx {won}"))
    world.shown.clear()
    for invoice, tx_id in world.shop_failed:
        tx = world.gateway_tx(tx_id)
        if tx is not None and _status(tx) in _SUCCESSFUL:
            found.append(Violation(SHOWN, invoice, f"the shop got payment_failed; its "
                                                   f"tx {tx_id} is {_status(tx)}"))
    world.shop_failed.clear()
    for invoice, tx_id, status in world.live_returns:
        payment = world.instances[0].state.ledger.get(by_invoice[invoice].payment_id)
        tx = world.gateway_tx(tx_id)
        if status == 400 and tx is not None and payment.status.value not in (
                "succeeded", "authorized", "refunded", "cancelled"):
            found.append(Violation(LIVE_3DS, invoice,
                                   f"the bank's return for the live challenge tx {tx_id} was "
                                   f"refused (400); ledger {payment.status.value} tx "
                                   f"{payment.gateway_transaction_id}"))
    world.live_returns.clear()
    for model in world.payments:
        if model.expires_at is None:
            continue
        for tx_id in model.form_txs:
            tx = world.gateway_tx(tx_id)
            # When our code let the charge go, not when a frozen process's request
            # reached the gateway: nothing but the gateway's Check can stop that one
            # (docs/ledger.md, "Expiry").
            sent = world.released_at.get(tx_id, tx.created) if tx is not None else None
            if tx is not None and _was_successful(tx) and sent >= model.expires_at:
                found.append(Violation(EXPIRED, model.invoice,
                                       f"charged tx {tx_id} sent at {sent:%H:%M:%S}; the "
                                       f"payment expired at {model.expires_at:%H:%M:%S}"))
    for invoice, status, code in world.checks:
        if (invoice is None or invoice not in by_invoice) and (status != 200 or code != 0):
            found.append(Violation(FOREIGN_CHECK, None,
                                   f"Check for {invoice} (not the ledger's) answered "
                                   f"{status} code {code}"))
    world.checks.clear()
    for number, status, body in world.answers:
        try:
            data = jsoncodec.loads(body)
            ok = isinstance(data, dict) and isinstance(data.get("code"), int)
        except Exception:
            ok = False
        if status >= 500 or not ok:
            found.append(Violation(ANSWERS, None,
                                   f"notification #{number} answered {status} {body[:80]!r}"))
    world.answers.clear()
    for what, exc in world.errors:
        found.append(Violation(CRASH, _invoice_of(what),
                               f"{what}: {type(exc).__name__}: {str(exc)[:160]}"))
    world.errors.clear()
    return [classify(world, v) for v in found]


def _invoice_of(what: str) -> str | None:
    return next((word for word in what.split() if word.startswith("inv-")), None)


# ---------------------------------------------------------------- at quiescence


def audit_outcomes(world: World, kind: str) -> dict[int, set[str]]:
    """Transaction id -> the outcomes the audit log recorded for its ``kind``
    notifications (``Pay``...)."""
    engine = world.instances[0].state.ledger.engine
    found: dict[int, set[str]] = {}
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(notifications.c.type, notifications.c.body,
                                          notifications.c.outcome)).all()
    except SQLAlchemyError:
        return found
    from urllib.parse import parse_qsl

    for type_, body, outcome in rows:
        if str(type_).lower() != kind.lower():
            continue
        fields = dict(parse_qsl(bytes(body).decode("utf-8", "replace")))
        tx = fields.get("TransactionId", "")
        if tx.isdigit():
            found.setdefault(int(tx), set()).add(str(outcome))
    return found


def check_final(world: World) -> list[Violation]:
    found: list[Violation] = []
    pays = audit_outcomes(world, "pay")
    by_invoice = {m.invoice: m for m in world.payments}
    for payment in world.ledger_payments():
        model = by_invoice[payment.invoice_id]
        txs = world.gateway_payments(model.invoice)
        good = [tx for tx in txs if _was_successful(tx) and _fits(tx, model)]
        status = payment.status.value
        mine = next((tx for tx in good if tx.id == payment.gateway_transaction_id), None)
        if good and mine is None:
            found.append(Violation(SETTLED, model.invoice,
                                   f"ledger {status} tx {payment.gateway_transaction_id}; the "
                                   f"gateway took {[(t.id, _status(t)) for t in good]}"))
        elif mine is not None:
            refunded = world.gateway_refunded(mine.id)
            expected = {"Completed": "succeeded", "Authorized": "authorized",
                        "Cancelled": "cancelled"}[_status(mine)]
            if expected == "succeeded" and refunded == mine.amount:
                expected = "refunded"
            if (status, payment.amount, payment.refunded_amount) != (
                    expected, mine.amount, refunded):
                # "refunds:" when only the refunded amounts differ (the status may follow)
                only = payment.amount == mine.amount and payment.refunded_amount != refunded \
                    and {status, expected} <= {"succeeded", "refunded"}
                found.append(Violation(
                    SETTLED, model.invoice,
                    ("refunds: " if only else "")
                    + f"ledger {status} {payment.amount} refunded {payment.refunded_amount}; "
                    f"gateway tx {mine.id} {expected} {mine.amount} refunded {refunded}"))
        elif status not in ("created", "failed", "cancelled"):
            found.append(Violation(SETTLED, model.invoice,
                                   f"ledger {status} tx {payment.gateway_transaction_id}; the "
                                   f"gateway took no charge of {model.amount}"))
        # Once a partial capture has made the payment's amount smaller, a second charge
        # of the original amount no longer matches it: it is flagged as a mismatch, a
        # problem to refund all the same (docs/ledger.md, "Problems").
        flags = DUPLICATE_OUTCOMES | (MISMATCH_OUTCOMES if payment.amount != model.amount
                                      else frozenset())
        for tx in good:
            if mine is not None and tx.id != mine.id and not (pays.get(tx.id, set()) & flags):
                found.append(Violation(DUPLICATE, model.invoice,
                                       f"extra charge tx {tx.id} ({_status(tx)}) beside "
                                       f"tx {mine.id}: not flagged (Pay outcomes "
                                       f"{sorted(pays.get(tx.id, ()))})"))
        for tx in txs:
            if _was_successful(tx) and not _fits(tx, model) and not (
                    pays.get(tx.id, set()) & MISMATCH_OUTCOMES):
                found.append(Violation(MISMATCH, model.invoice,
                                       f"tx {tx.id} of {_charged_amount(tx)} for a payment of "
                                       f"{model.amount}: not flagged "
                                       f"({sorted(pays.get(tx.id, ()))})"))
    return [classify(world, v) for v in found]


# ---------------------------------------------------------------- known defects


def classify(world: World, violation: Violation) -> Violation:
    """Name the §1 defect a violation is an instance of, from what happened to its
    payment; ``new`` when no rule fits."""
    from dataclasses import replace

    model = world.model(violation.invoice) if violation.invoice else None
    tags = set(model.tags) if model is not None else set()
    if model is not None:
        tags |= _ledger_facts(world, model)
    defect = "new"
    for rule in RULES:
        name = rule(violation, tags)
        if name is not None:
            defect = name
            break
    return replace(violation, defect=defect)


def _ledger_facts(world: World, model: PaymentModel) -> set[str]:
    """Tags read from the ledger's own record of the payment: how its Refund
    notifications were taken."""
    facts: set[str] = set()
    ledger = world.instances[0].state.ledger
    for event in ledger.history(model.payment_id):
        note = event.note or ""
        for kind in ("Refund", "Cancel", "Confirm"):
            if note.startswith(f"{kind} notification") and " in status " in note:
                # recorded, not applied: the status was not yet right
                facts.add(f"dropped_{kind.lower()}")
    engine = ledger.engine
    with engine.connect() as conn:
        rows = conn.execute(sa.select(
            notifications.c.type, notifications.c.outcome, notifications.c.error).where(
            notifications.c.payment_id == model.payment_id)).all()
    if any(str(t).lower() == "refund" and o == "deferred" for t, o, _ in rows):
        facts.add("refund_deferred")
    for kind in ("Refund", "Cancel", "Confirm"):
        if any(o == "mismatch" and (e or "").startswith(f"{kind} for transaction")
               for _, o, e in rows):
            # came before the ledger held the payment's transaction
            facts.add(f"dropped_{kind.lower()}")
    return facts


_STALLS = frozenset({"stall_before", "stall_after"})


def _d1(v: Violation, tags: set[str]) -> str | None:
    """§1.1: settled from a transaction of another amount (the widget was tampered)."""
    if v.invariant == PAID_MATCHES and "tampered" in tags:
        return "D1"
    return None


def _d2(v: Violation, tags: set[str]) -> str | None:
    """§1.2: a call outlived ``stale_after``, refresh settled it, the late success was
    thrown away (the payer told "declined", the ledger ``failed``)."""
    if not tags & _STALLS:
        return None
    if v.invariant == SHOWN:
        return "D2"
    if v.invariant == SETTLED and v.detail.startswith(("ledger failed", "ledger unknown")) \
            and "the gateway took" in v.detail:
        return "D2"
    return None


def _d4(v: Violation, tags: set[str]) -> str | None:
    """§1.4: a back-office refund's notification came while our refund call was in
    flight (or unknown); answered "deferred" with code 0, it is never counted."""
    if v.invariant == SETTLED and "refund_deferred" in tags and v.detail.startswith("refunds:"):
        return "D4"
    return None


def _n2(v: Violation, tags: set[str]) -> str | None:
    """New (seeds 95, 197): a Refund or Cancel notification that arrives before the
    ledger holds its transaction in the right status (delivered ahead of the Pay or
    Confirm it follows) is answered 0 and dropped: "in status authorized", or a
    "mismatch" of transaction ids. The gateway never sends it again, and refresh and
    reconcile, settling the payment later, read neither its refunds nor (for a held
    payment) its cancellation.
    test_regressions.py::test_refund_notification_before_confirm_notification_is_counted
    test_regressions.py::test_refund_notification_before_the_widget_payment_is_known_is_counted
    test_regressions.py::test_cancel_notification_before_the_widget_payment_is_known_is_applied
    """
    if v.invariant != SETTLED:
        return None
    if v.detail.startswith("refunds:") and "dropped_refund" in tags:
        return "N2"
    held = re.match(r"ledger authorized .*; gateway tx \d+ (\w+) ", v.detail)
    if held and held.group(1) == "cancelled" and "dropped_cancel" in tags:
        return "N2"
    if held and held.group(1) in ("succeeded", "refunded") and "dropped_confirm" in tags:
        return "N2"
    return None


def _refund_counted_twice(v: Violation) -> bool:
    """A refund counted twice by the ledger, or, for a full refund, the CHECK constraint
    that the refunds stay within the amount tripped (after the money moved)."""
    return (v.invariant == REFUNDS and "counted twice" in v.detail) or (
        v.invariant == CRASH and "refunded_within_amount" in v.detail)


def _d5(v: Violation, tags: set[str]) -> str | None:
    """§1.5: a late refund answer after a stale refresh is counted twice (or, for a full
    refund, trips the CHECK constraint after the money moved)."""
    return "D5" if tags & _STALLS and _refund_counted_twice(v) else None


def _d3(v: Violation, tags: set[str]) -> str | None:
    """§1.3: a Fail for another transaction failed the live challenge (its return is
    refused): the inbox does not compare transaction ids in ``awaiting_3ds``. Found by
    the abandoned challenge's Fail after 20 minutes, and by a late Fail of an earlier
    declined attempt (delivered out of order)."""
    if v.invariant == LIVE_3DS and "ledger failed" in v.detail:
        return "D3"
    return None


def _d6(v: Violation, tags: set[str]) -> str | None:
    """§1.6: ``expires_at`` enforced only by Check."""
    return "D6" if v.invariant == EXPIRED else None


def _d8(v: Violation, tags: set[str]) -> str | None:
    """§1.8: a Check for a payment the ledger does not own is declined."""
    return "D8" if v.invariant == FOREIGN_CHECK else None


def _n1(v: Violation, tags: set[str]) -> str | None:
    """New (seed 87): a refund whose answer was lost is settled by reconcile, which does
    not record the refund's transaction; its Refund notification then counts it again.
    test_regressions.py::test_refund_settled_by_reconcile_is_not_counted_again_by_its_notification
    """
    return "N1" if "refund_unknown" in tags and _refund_counted_twice(v) else None


def _n3(v: Violation, tags: set[str]) -> str | None:
    """New (seed 1880): refresh of a ``created``/``failed`` payment whose invoice's latest
    gateway operation is a cancelled authorization (voided, or expired after 7 days)
    moves it to ``processing``, which may not become ``cancelled``: it stays there, and
    every later refresh does the same. Only a Pay notification the ledger accepts gets
    it out.
    test_regressions.py::test_refresh_of_a_cancelled_widget_authorization_does_not_leave_processing
    """
    return "N3" if v.invariant == SETTLED and v.detail.startswith("ledger processing") else None


def _d7(v: Violation, tags: set[str]) -> str | None:
    """§1.7: a second successful charge on one invoice is not flagged."""
    return "D7" if v.invariant == DUPLICATE else None


#: First match wins; a violation no rule claims is ``new``.
RULES = (_d1, _d5, _d2, _d4, _d3, _d6, _d7, _d8, _n1, _n2, _n3)
