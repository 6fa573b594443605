"""What can happen next: the actions table.

Each row is an :class:`Action`: a name, a weight, and a function of the world that
draws its details from ``world.rng`` and does one thing: the shop, the payer, the
gateway's back office, the network or the clock. An action never judges: it records
what it did (``world.log``) and what the payer was shown (``world.shown``); the
invariants read the world afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from checkout_kit import threeds
from checkout_kit.errors import (
    CheckoutKitError,
    GatewayError,
    InvalidTransitionError,
    PaymentConflictError,
    PaymentDeclined,
)
from checkout_kit.pytest_plugin import SANDBOX_API_SECRET, SANDBOX_PUBLIC_ID

from .world import URL_PREFIX, Instance, PaymentModel, World

CARDS: tuple[dict[str, Any], ...] = tuple(json.loads(
    (Path(__file__).parent.parent / "vectors" / "sandbox_cards.json").read_text())["cards"])

AMOUNTS = ("1490.00", "100.00", "30.00", "2.50", "50.00")
#: What the shop's own errors look like to its caller: refused, not a crash.
EXPECTED_ERRORS = (PaymentConflictError, InvalidTransitionError, GatewayError, PaymentDeclined,
                   CheckoutKitError)


@dataclass
class Challenge:
    """A 3-D Secure challenge the payer has open: ``channel`` "form" or "widget"."""

    invoice: str
    transaction_id: int
    channel: str
    instance: str


@dataclass(frozen=True)
class Action:
    name: str
    weight: int
    run: Callable[[World], None]


# ---------------------------------------------------------------- helpers


def _payment(world: World, statuses: tuple[str, ...] | None = None) -> PaymentModel | None:
    """A payment the world created, preferring those in ``statuses`` (if any)."""
    if not world.payments:
        return None
    if statuses is not None and world.rng.random() < 0.85:
        ledger = world.instances[0].state.ledger
        fitting = [m for m in world.payments
                   if ledger.get(m.payment_id).status.value in statuses]
        if fitting:
            return world.pick(fitting)
    return world.pick(world.payments)


def _instance(world: World) -> Instance:
    return world.pick(world.instances)


def _shop_call(world: World, instance: Instance, what: str, call: Callable[[], Any]) -> Any:
    """Run a call of the shop's API; expected refusals are logged, others recorded."""
    try:
        with instance.context():
            return call()
    except EXPECTED_ERRORS as exc:
        world.log(f"  {what} refused: {type(exc).__name__}: {str(exc)[:80]}")
    except Exception as exc:  # an unexpected crash is a finding
        world.log(f"  {what} CRASHED: {type(exc).__name__}: {str(exc)[:120]}")
        world.errors.append((what, exc))
    return None


def _new_txs(world: World, before: int, invoice: str) -> list[int]:
    return [tx.id for tx in world.gateway_payments(invoice) if tx.id > before]


# ---------------------------------------------------------------- the shop


def create_payment(world: World) -> None:
    n = len(world.payments) + 1
    invoice = f"inv-{n}"
    amount = world.pick(list(AMOUNTS))
    scheme = "auth" if world.rng.random() < 0.35 else "charge"
    account = f"acc-{world.rng.randrange(3)}"
    expires_at = None
    if world.rng.random() < 0.25:
        expires_at = world.now() + timedelta(minutes=world.rng.choice((3, 10, 30)))
    instance = _instance(world)
    with instance.context():
        payment = instance.kit.create_payment(
            invoice_id=invoice, amount=amount, currency="RUB", description=f"Order {n}",
            account_id=account, scheme=scheme, expires_at=expires_at)
    world.payments.append(PaymentModel(invoice, payment.id, Decimal(amount), scheme, account,
                                       expires_at))
    world.log(f"{instance.name} create {invoice} {scheme} {amount} {account}"
              + (f" expires {expires_at:%H:%M:%S}" if expires_at else ""))


def _card(world: World) -> str:
    return world.pick(list(CARDS))["number"]


def pay_form(world: World) -> None:
    model = _payment(world, ("created", "failed", "awaiting_3ds"))
    if model is None:
        return
    instance = _instance(world)
    card = _card(world)
    world.log(f"{instance.name} pay form {model.invoice} card {card}")
    before = world.max_tx_id()
    cryptogram = world.sandbox.make_cryptogram(card)
    outcome = _shop_call(world, instance, f"pay {model.invoice}", lambda: instance.service.pay(
        model.payment_id, cryptogram=cryptogram, ip_address="203.0.113.7",
        name="IVAN PETROV", email="payer@example.com"))
    made = _new_txs(world, before, model.invoice)
    model.form_txs.extend(made)
    if outcome is None:
        # The form page shows "the payment service is unavailable" for a GatewayError.
        world.shown.append((model.invoice, "failure", made))
        return
    world.log(f"  -> {outcome.kind}")
    if outcome.kind == "three_ds" and outcome.challenge is not None:
        tx_id = int(outcome.challenge.transaction_id)
        if model.challenges:
            model.tags.add("3ds_again")
        model.challenges.append(tx_id)
        world.challenges.append(Challenge(model.invoice, tx_id, "form", instance.name))
    shown = {"declined": "failure", "succeeded": "success", "authorized": "success"}
    world.shown.append((model.invoice, shown.get(outcome.kind, "pending"), made))


def finish_3ds(world: World) -> None:
    if not world.challenges:
        return
    challenge: Challenge = world.pick(world.challenges)
    model = world.model(challenge.invoice)
    assert model is not None
    outcome = world.rng.choices(
        [threeds.PaResOutcome.AUTHENTICATED, threeds.PaResOutcome.FAILED,
         threeds.PaResOutcome.CANCELLED], weights=[8, 1, 1])[0]
    pa_res = threeds.sign_pares(challenge.transaction_id, outcome, SANDBOX_API_SECRET,
                                randbytes=world.rng.randbytes)
    again = world.rng.random() < 0.2  # a reload or double submit keeps it open
    if not again:
        world.challenges.remove(challenge)
    if challenge.channel == "widget":
        world.log(f"payer 3ds widget {challenge.invoice} tx {challenge.transaction_id} "
                  f"{outcome.name}")
        sandbox = world.sandbox
        with sandbox.lock:
            tx = sandbox.state.transactions[challenge.transaction_id]
            if str(tx.status) != "AwaitingAuthentication" and tx.post3ds_response is None:
                world.log("  the bank's page is gone")
                return
            sandbox.complete_3ds(tx, pa_res)
        sandbox.commit()
        return
    instance = world.pick(world.instances) if world.rng.random() < 0.3 else next(
        i for i in world.instances if i.name == challenge.instance)
    token = instance.state.signer.dumps({"p": model.payment_id, "f": 0})
    world.log(f"payer 3ds form {challenge.invoice} tx {challenge.transaction_id} {outcome.name}"
              f" via {instance.name}")
    before = world.max_tx_id()
    # A challenge is live while the bank still waits on it; a replayed return for one
    # already finished (the payer's back button) may be refused.
    waiting = (tx := world.gateway_tx(challenge.transaction_id)) is not None and str(
        tx.status) == "AwaitingAuthentication"
    response = instance.app.test_client().post(
        f"{URL_PREFIX}/3ds/{token}", data={"MD": str(challenge.transaction_id), "PaRes": pa_res})
    world.log(f"  -> {response.status_code}")
    # ... and it is the payer's latest attempt by form: a newer one (another card, after
    # the shop took the challenge for abandoned) supersedes it, as the ledger says.
    if waiting and model.challenges and challenge.transaction_id == model.challenges[-1] and (
            not model.form_txs or model.form_txs[-1] == challenge.transaction_id):
        world.live_returns.append((model.invoice, challenge.transaction_id,
                                   response.status_code))
    if response.status_code == 503:
        # "The payment service is unavailable": the payer takes it for a failure.
        world.shown.append((model.invoice, "failure", [challenge.transaction_id]))
    elif response.status_code >= 500:
        world.errors.append((f"TermUrl {challenge.invoice}",
                             RuntimeError(f"TermUrl answered {response.status_code}")))
    if response.status_code == 303:
        status = instance.state.ledger.get(model.payment_id).status.value
        shown = ("success" if status in ("succeeded", "authorized") else
                 "failure" if status in ("failed", "cancelled") else "pending")
        tx = world.gateway_tx(challenge.transaction_id)
        made = [challenge.transaction_id] if tx is not None else []
        world.shown.append((model.invoice, shown, made + _new_txs(world, before, model.invoice)))


def abandon_3ds(world: World) -> None:
    if world.challenges:
        challenge = world.pick(world.challenges)
        world.challenges.remove(challenge)
        world.log(f"payer abandons 3ds {challenge.invoice} tx {challenge.transaction_id}")


def confirm(world: World) -> None:
    model = _payment(world, ("authorized",))
    if model is None:
        return
    instance = _instance(world)
    partial = world.rng.random() < 0.3
    amount = (model.amount / 2).quantize(Decimal("0.01")) if partial else None
    world.log(f"{instance.name} confirm {model.invoice} {amount or 'full'}")
    _shop_call(world, instance, f"confirm {model.invoice}",
               lambda: instance.kit.confirm(model.payment_id, amount))


def void(world: World) -> None:
    model = _payment(world, ("authorized",))
    if model is None:
        return
    instance = _instance(world)
    world.log(f"{instance.name} void {model.invoice}")
    _shop_call(world, instance, f"void {model.invoice}",
               lambda: instance.kit.void(model.payment_id))


def refund(world: World) -> None:
    model = _payment(world, ("succeeded",))
    if model is None:
        return
    instance = _instance(world)
    payment = instance.state.ledger.get(model.payment_id)
    partial = world.rng.random() < 0.5
    amount = None
    if partial:
        amount = (payment.amount * Decimal(world.rng.choice((10, 30, 50))) / 100).quantize(
            Decimal("0.01"))
    world.log(f"{instance.name} refund {model.invoice} {amount or 'full'}")
    _shop_call(world, instance, f"refund {model.invoice}",
               lambda: instance.kit.refund(model.payment_id, amount))
    attempts = instance.state.ledger.attempts(model.payment_id)
    if attempts and attempts[-1].operation == "refund" and attempts[-1].outcome == "unknown":
        model.tags.add("refund_unknown")


def refresh(world: World) -> None:
    model = _payment(world, ("unknown", "processing", "awaiting_3ds", "created", "failed"))
    if model is None:
        return
    instance = _instance(world)
    world.log(f"{instance.name} refresh {model.invoice}")
    after = _shop_call(world, instance, f"refresh {model.invoice}",
                       lambda: instance.kit.refresh(model.payment_id))
    if after is not None:
        world.log(f"  -> {after.status.value}")


def reconcile(world: World) -> None:
    instance = _instance(world)
    world.log(f"{instance.name} reconcile")
    _shop_call(world, instance, "reconcile", instance.kit.reconcile)


def result_page(world: World) -> None:
    """The payer looks at the result page (which refreshes an in-flight payment)."""
    model = _payment(world, ("unknown", "processing", "awaiting_3ds"))
    if model is None:
        return
    instance = _instance(world)
    response = instance.app.test_client().get(f"{URL_PREFIX}/payments/{model.payment_id}")
    world.log(f"payer result page {model.invoice} on {instance.name} -> {response.status_code}")
    if response.status_code >= 500:
        world.errors.append((f"result page {model.invoice}",
                             RuntimeError(f"answered {response.status_code}")))


# ---------------------------------------------------------------- the payer's browser


def _widget_charge(world: World, model: PaymentModel, amount: Decimal) -> None:
    card = _card(world)
    path = "/payments/cards/auth" if model.scheme == "auth" else "/payments/cards/charge"
    body = {
        "PublicId": SANDBOX_PUBLIC_ID, "Amount": str(amount), "Currency": "RUB",
        "InvoiceId": model.invoice, "AccountId": model.account, "Description": "widget",
        "CardCryptogramPacket": world.sandbox.make_cryptogram(card), "IpAddress": "203.0.113.9",
    }
    world.log(f"payer widget {model.invoice} {amount} card {card}")
    response = world.browser.post(path, json=body)
    data = response.json()
    result = data.get("Model") or {}
    tx_id = result.get("TransactionId")
    world.log(f"  -> Success={data.get('Success')} tx={tx_id} "
              f"status={result.get('Status')} 3ds={bool(result.get('PaReq'))}")
    if result.get("PaReq") and tx_id:
        model.challenges.append(int(tx_id))
        world.challenges.append(Challenge(model.invoice, int(tx_id), "widget", "browser"))


def pay_widget(world: World) -> None:
    model = _payment(world, ("created", "failed"))
    if model is not None:
        _widget_charge(world, model, model.amount)


def pay_widget_two_tabs(world: World) -> None:
    model = _payment(world, ("created", "failed"))
    if model is not None:
        model.tags.add("two_tabs")
        _widget_charge(world, model, model.amount)
        _widget_charge(world, model, model.amount)


def pay_widget_tampered(world: World) -> None:
    model = _payment(world, ("created", "failed"))
    if model is not None:
        model.tags.add("tampered")
        _widget_charge(world, model, Decimal("1.00"))


# ---------------------------------------------------------------- the back office


def _gateway_tx(world: World, model: PaymentModel, status: str) -> Any:
    txs = [tx for tx in world.gateway_payments(model.invoice) if str(tx.status) == status]
    return world.pick(txs) if txs else None


def back_office(world: World, model: PaymentModel | None = None) -> None:
    """Someone at the gateway's back office refunds, voids or confirms, bypassing us
    (``model``: on that payment, else one drawn)."""
    model = model or _payment(world, ("succeeded", "authorized"))
    if model is None:
        return
    what = world.rng.choice(("refund", "refund", "void", "confirm"))
    tx = _gateway_tx(world, model, "Completed" if what == "refund" else "Authorized")
    if tx is None:
        return
    model.tags.add(f"back_office_{what}")
    try:
        if what == "refund":
            left = tx.amount - tx.refunded
            share = world.rng.choice((Decimal("0.2"), Decimal("0.5"), Decimal(1)))
            amount = (left * share).quantize(Decimal("0.01"))
            if amount <= 0:
                return
            world.log(f"back office refund {model.invoice} tx {tx.id} {amount}")
            world.back_office.refund(tx.id, amount)
        elif what == "void":
            world.log(f"back office void {model.invoice} tx {tx.id}")
            world.back_office.void(tx.id)
        else:
            world.log(f"back office confirm {model.invoice} tx {tx.id}")
            world.back_office.confirm(tx.id, tx.amount)
    except GatewayError as exc:
        world.log(f"  refused: {exc}")


def foreign_charge(world: World) -> None:
    """A charge the ledger does not own (a subscription's, a token charge the shop made
    with the client, another channel's): made at the gateway with the API secret."""
    n = len(world.checks) + world.rng.randrange(1000)
    invoice = f"sub-{n}"
    world.log(f"back office charge {invoice} (not the ledger's)")
    try:
        world.back_office.charge(
            Decimal("10.00"), currency="RUB", ip_address="203.0.113.5",
            cryptogram=world.sandbox.make_cryptogram("4000 0000 0000 3055"),
            invoice_id=invoice, account_id="acc-sub")
    except GatewayError as exc:
        world.log(f"  -> {type(exc).__name__}: {str(exc)[:80]}")


# ---------------------------------------------------------------- the network and the clock


def deliver(world: World, newest: bool = False) -> None:
    """The gateway delivers one queued notification (any of them: out of order; the
    newest with ``newest``), to either instance; sometimes the answer is lost and it
    stays queued (twice)."""
    waiting = [d for d in world.network if not d.taken]
    if not waiting:
        return
    delivery = waiting[-1] if newest else world.pick(waiting)
    world.deliver(_instance(world), delivery)
    if delivery.taken and world.rng.random() < 0.15:
        delivery.taken = False  # our answer was lost on the way back: it comes again


def deliver_again(world: World) -> None:
    """An old, already taken notification comes once more."""
    taken = [d for d in world.network if d.taken]
    if taken:
        world.deliver(_instance(world), world.pick(taken))


def tick(world: World) -> None:
    seconds = world.rng.choice((1, 5, 30, 90, 200))
    world.log(f"clock +{seconds}s")
    world.advance(timedelta(seconds=seconds))


def jump(world: World) -> None:
    delta = world.rng.choice((timedelta(minutes=6), timedelta(minutes=16), timedelta(minutes=21),
                              timedelta(days=7, hours=1)))
    world.log(f"clock jump +{delta}")
    world.advance(delta)


ACTIONS: tuple[Action, ...] = (
    Action("create_payment", 6, create_payment),
    Action("pay_form", 10, pay_form),
    Action("finish_3ds", 7, finish_3ds),
    Action("abandon_3ds", 1, abandon_3ds),
    Action("pay_widget", 4, pay_widget),
    Action("pay_widget_two_tabs", 1, pay_widget_two_tabs),
    Action("pay_widget_tampered", 1, pay_widget_tampered),
    Action("confirm", 3, confirm),
    Action("void", 2, void),
    Action("refund", 5, refund),
    Action("back_office", 3, back_office),
    Action("foreign_charge", 1, foreign_charge),
    Action("refresh", 4, refresh),
    Action("reconcile", 2, reconcile),
    Action("result_page", 2, result_page),
    Action("deliver", 12, deliver),
    Action("deliver_again", 2, deliver_again),
    Action("tick", 4, tick),
    Action("jump", 1, jump),
)


def choose(world: World) -> Action:
    """The next action, by weight (the first few steps create payments)."""
    if len(world.payments) < 2:
        return ACTIONS[0]
    return world.rng.choices(ACTIONS, weights=[a.weight for a in ACTIONS])[0]


__all__ = ["ACTIONS", "CARDS", "Action", "Challenge", "choose"]
