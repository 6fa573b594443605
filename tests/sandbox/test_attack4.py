"""Attack 4 on issue 15: one sandbox state file shared by several processes.

Each "process" is a sandbox app opened on the same SQLite file, with its own
in-memory state and connection, as two workers of the app (or a worker and a
``flask checkout`` command) have it. Two things happening "at once" in two processes
are made deterministic by doing the second from inside the first's network call
(the Check or notification it is sending, with no lock held): that is exactly the
window a slow shop or a slow network opens between two real processes.

Every test here that fails does so because of a defect (its docstring says which, the
money it moves and a fix); the ones that pass guard a claim that was checked.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from checkout_kit.sandbox import Sandbox, create_sandbox_app, sandbox_of
from checkout_kit.sandbox.rules.clock import VirtualClock
from checkout_kit.sandbox.rules.records import TxType
from checkout_kit.sandbox.store import Store

IP = "203.0.113.7"
CARD = "4000000000003055"  # approved, no 3-D Secure
SHOP = "http://shop.test"

Hook = Callable[[httpx.Request], None]


class ShopEnd:
    """The shop's notification endpoint as every sandbox process reaches it: records
    what arrives and runs ``hooks[type]`` (once) while a request is in flight."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str]]] = []
        self.hooks: dict[str, Hook] = {}

    def handler(self, request: httpx.Request) -> httpx.Response:
        kind = request.url.path.rsplit("/", 1)[-1]
        raw = request.content.decode("ascii")
        fields = dict(pair.split("=", 1) if "=" in pair else (pair, "")
                      for pair in raw.split("&") if pair)
        self.received.append((kind, fields))
        hook = self.hooks.pop(kind, None)
        if hook is not None:
            hook(request)
        return httpx.Response(200, json={"code": 0})

    def of(self, kind: str) -> list[dict[str, str]]:
        return [fields for k, fields in self.received if k == kind]


def _auth(sandbox: Sandbox) -> str:
    pair = f"{sandbox.public_id}:{sandbox.api_secret}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def raw_api(sandbox: Sandbox, path: str, body: dict[str, Any],
            request_id: str | None = None) -> httpx.Response:
    """One API call to ``sandbox`` as the kit's client makes it (Basic auth, JSON)."""
    headers = {"Authorization": _auth(sandbox), "Content-Type": "application/json"}
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    with httpx.Client(transport=httpx.WSGITransport(app=sandbox.app),
                      base_url="http://sandbox") as client:
        answer = client.post(path, content=json.dumps(body), headers=headers)
        answer.read()
    return answer


def api(sandbox: Sandbox, path: str, body: dict[str, Any],
        request_id: str | None = None) -> dict[str, Any]:
    """:func:`raw_api`, answered 200: its envelope."""
    answer = raw_api(sandbox, path, body, request_id)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def charge_body(sandbox: Sandbox, invoice: str = "inv-1", amount: str = "100.00",
                **extra: Any) -> dict[str, Any]:
    return {"Amount": amount, "Currency": "RUB", "IpAddress": IP, "InvoiceId": invoice,
            "CardCryptogramPacket": sandbox.make_cryptogram(CARD), **extra}


@pytest.fixture
def shop_end() -> ShopEnd:
    return ShopEnd()


@pytest.fixture
def processes(tmp_path: Path, shop_end: ShopEnd) -> Iterator[Callable[..., Sandbox]]:
    """Opens "processes" on one state file, all sending to ``shop_end``."""
    path = tmp_path / "state.sqlite3"
    opened: list[Sandbox] = []

    def open_process(**options: Any) -> Sandbox:
        sandbox = sandbox_of(create_sandbox_app(
            state_path=path, notification_transport=httpx.MockTransport(shop_end.handler),
            **options))
        opened.append(sandbox)
        return sandbox

    yield open_process
    for sandbox in opened:
        sandbox.close()


def _payments_on_file(sandbox: Sandbox) -> list[Any]:
    assert sandbox.state_path is not None
    state = Store(sandbox.state_path).load()
    return [tx for tx in state.transactions.values() if tx.type is TxType.PAYMENT]


# ---------------------------------------------------------------------------------------
# X-Request-ID across processes


def test_a_retry_with_the_same_request_id_in_another_process_at_once_charges_once(
        processes: Callable[..., Sandbox], shop_end: ShopEnd) -> None:
    """DEFECT (most serious). The shop's charge reaches worker one; the network is slow
    (here: worker one is still waiting for the shop's Check answer), the client times
    out and retries with the same X-Request-ID, and the retry reaches worker two.

    ``api._replay_or_run`` serialises one request id with ``sandbox.request_locks``,
    a ``threading.Lock`` table private to the process, and looks for the stored
    answer in ``sb.state.idempotency`` once, before running: nothing tells worker two
    that worker one is already running that request id. Both run it: two completed
    transactions, two Pay notifications, for one X-Request-ID.

    Money: the payer is charged twice for one payment; the ledger settles on one of
    them and, at best, records the other as a duplicate to refund by hand.

    Fix: claim the request id in the shared state before running (a ``StoredResponse``
    placeholder "in progress" written under the shared lock, so that the file's write
    lock orders the claim): a second process finding the claim waits for the answer
    (poll under the lock until it is stored, or answer 409/5xx so the client retries
    later), and the placeholder is replaced by the answer, or dropped when the run
    raised."""
    one = processes()
    two = processes()
    one.configure_notification("Check", f"{SHOP}/check")
    body = charge_body(one)
    retried: list[httpx.Response] = []
    # While worker one waits for the Check answer, the client's retry reaches worker two.
    shop_end.hooks["check"] = lambda _: retried.append(
        raw_api(two, "/payments/cards/charge", body, request_id="req-1"))
    first = api(one, "/payments/cards/charge", body, request_id="req-1")
    assert first["Success"] is True
    (second,) = retried
    payments = _payments_on_file(one)
    assert len(payments) == 1, (
        f"one X-Request-ID, {len(payments)} charges: "
        f"{[(t.id, str(t.amount), t.status) for t in payments]}")
    if second.status_code == 200 and second.json().get("Model"):  # (or "try later")
        assert second.json()["Model"]["TransactionId"] == first["Model"]["TransactionId"]


def test_a_retry_with_the_same_request_id_in_another_process_later_is_replayed(
        processes: Callable[..., Sandbox]) -> None:
    """Holds: a retry that reaches another worker after the first answered gets the
    stored answer (the sandbox app syncs with the file before each request)."""
    one = processes()
    two = processes()
    body = charge_body(one)
    first = api(one, "/payments/cards/charge", body, request_id="req-2")
    again = api(two, "/payments/cards/charge", body, request_id="req-2")
    assert again == first
    assert len(_payments_on_file(one)) == 1


def test_a_request_id_answered_by_another_process_while_this_one_waited_is_replayed(
        processes: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch) -> None:
    """DEFECT (the stale read). A partial refund is sent to worker two, which is slow
    to get to it (a busy machine: here its injected latency, which runs after the
    app's ``before_request`` sync). The client gives up waiting and retries with the
    same X-Request-ID; the retry reaches worker one, which refunds and stores the
    answer. Worker two then goes on: ``_replay_or_run`` reads
    ``sb.state.idempotency`` from memory, synced before it waited and not under the
    lock, finds nothing, and refunds again (the refund's own checks pass: 30 + 30 of
    100 is allowed).

    Money: the payer is refunded twice; the shop's ledger counts one refund (the answer
    it got), so its books say 30 went back while 60 did.

    Fix: look up the stored answer under ``sb.lock`` (which brings the state up to
    date) right before running, and claim the request id there (see the test above)."""
    from checkout_kit.sandbox.web import faults as faults_module

    one = processes()
    two = processes()
    paid = api(one, "/payments/cards/charge", charge_body(one))
    tx_id = paid["Model"]["TransactionId"]
    refund = {"TransactionId": tx_id, "Amount": "30.00"}
    answers: list[dict[str, Any]] = []

    def meanwhile(seconds: float) -> None:  # worker two is slow; worker one answers
        answers.append(api(one, "/payments/refund", refund, request_id="refund-1"))

    monkeypatch.setattr(faults_module.time, "sleep", meanwhile)
    two.faults.add("latency", path="/payments/refund", latency_ms=5000)
    late = api(two, "/payments/refund", refund, request_id="refund-1")
    (early,) = answers
    assert late["Model"]["TransactionId"] == early["Model"]["TransactionId"]
    with one.lock:
        assert one.state.transactions[tx_id].refunded == Decimal("30.00")


# ---------------------------------------------------------------------------------------
# notifications: one delivery, two processes' senders


def test_a_delivery_claimed_by_one_process_is_not_sent_by_another(
        processes: Callable[..., Sandbox], shop_end: ShopEnd) -> None:
    """DEFECT. Worker one ends a request and sends the Pay it queued
    (``deliver_pending``: ``outbox.claim_due`` marks the delivery ``sending``, then it
    is sent with no lock held). The shop is slow; meanwhile worker two ends a request
    of its own and sends what is due. ``claim_due`` sets ``delivery.state =
    "sending"`` without ``state.touch(delivery)``: the mark never reaches the file, so
    worker two finds the delivery ``pending`` and sends it too.

    Money: every notification a slow shop gets while another worker is busy arrives
    twice (Pay, Refund, Confirm...). The kit's inbox is exactly-once, so its ledger
    holds; a shop that acts on notifications itself (ships the order, e-mails,
    counts refunds in its own books) does it twice, and the sandbox, meant to show
    the gateway's behaviour, shows duplicates the settings never asked for
    (``duplicate_notifications`` is off).

    Fix: ``touch`` the claimed deliveries in ``claim_due`` so that the claim is
    written with the lock's end; give the claim a lease (``next_attempt_at`` = now +
    the send timeout, ``state`` "sending") so that a process that dies mid-send does
    not lose the delivery: another process claims it again when the lease is over."""
    one = processes(deliver_immediately=False)
    two = processes(deliver_immediately=False)
    one.configure_notification("Pay", f"{SHOP}/pay")
    api(one, "/payments/cards/charge", charge_body(one))
    # While worker one is sending the Pay, worker two sends whatever is due.
    shop_end.hooks["pay"] = lambda _: two.deliver_pending()
    one.deliver_pending()
    pays = shop_end.of("pay")
    assert len(pays) == 1, f"one Pay delivery sent {len(pays)} times"


# ---------------------------------------------------------------------------------------
# subscriptions: two processes' clocks run the same due charge


def test_a_due_subscription_charge_is_made_once_when_two_processes_run_due_work(
        processes: Callable[..., Sandbox], shop_end: ShopEnd) -> None:
    """DEFECT. Every long-running sandbox process runs ``run_due`` (``start_worker``:
    ``checkout-kit sandbox --state``, the demo; ``/_sandbox/run`` and clock advances).
    ``run_due`` reads the due subscriptions (``subscriptions.due``), lets the lock go,
    charges each (its Check goes out with no lock held) and only then moves the
    subscription on (``charged``). A second process running its due work in that
    window finds the same subscription due and charges it again.

    The same window exists between two threads of one process (the worker thread and
    a ``/_sandbox/run`` request); sharing the state file makes every process with a
    worker a party to it.

    Money: the subscriber's card is charged twice for one period.

    Fix: claim the period before charging, under the shared lock: move
    ``next_transaction_date`` on (or mark the subscription "charging" with a lease)
    in the same lock use that finds it due, and give the period back only if the
    charge could not be made."""
    clock = VirtualClock()
    one = processes(clock=clock, save_cards="always")
    two = processes(clock=clock, save_cards="always")
    paid = api(one, "/payments/cards/charge", charge_body(one, AccountId="user-1"))
    token = paid["Model"]["Token"]
    assert token
    start = (clock.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    made = api(one, "/subscriptions/create", {
        "Token": token, "AccountId": "user-1", "Description": "Monthly", "Email": "a@b.c",
        "Amount": "10.00", "Currency": "RUB", "RequireConfirmation": False,
        "StartDate": start, "Interval": "Month", "Period": 1})
    assert made["Success"] is True, made
    one.configure_notification("Check", f"{SHOP}/check")
    clock.advance(timedelta(days=1, minutes=1))
    # While worker one's subscription charge waits for its Check, worker two's
    # worker thread runs the due work too.
    shop_end.hooks["check"] = lambda _: two.run_due()
    one.run_due()
    charges = [tx for tx in _payments_on_file(one) if tx.subscription_id]
    assert len(charges) == 1, (
        f"one period, {len(charges)} charges: {[(t.id, str(t.amount)) for t in charges]}")


# ---------------------------------------------------------------------------------------
# one state, one clock per process


# ---------------------------------------------------------------------------------------
# a state file from before versions, opened by two workers at once


def test_two_workers_opening_a_file_from_before_versions_both_start(tmp_path: Path) -> None:
    """Two workers of the app (gunicorn -w 2, or a worker and a ``flask checkout``
    command) opening a state file from before versions at once: the look for the
    ``version`` column and the ALTER are one transaction, so neither fails with
    "duplicate column name" (it did, when they were not)."""
    import sqlite3
    import threading

    for n in range(10):
        path = tmp_path / f"old-{n}.sqlite3"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, "
                       "data TEXT NOT NULL, PRIMARY KEY (kind, key))")
        db.close()
        errors: list[BaseException] = []
        opened: list[Store] = []
        gate = threading.Barrier(2)

        def open_it(path: Path = path, gate: threading.Barrier = gate,
                    opened: list[Store] = opened,
                    errors: list[BaseException] = errors) -> None:
            gate.wait()
            try:
                opened.append(Store(path))
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=open_it) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert errors == []
        for store in opened:
            store.close()
