"""The simulated world: one gateway (the sandbox), one shop run as two app instances
over one database, and the network between them, all on one virtual clock and driven
by one seeded :class:`random.Random`.

Nothing here decides *what* happens: :mod:`.actions` picks steps, :mod:`.faults` breaks
calls, :mod:`.invariants` judges. The world only makes those things possible and
keeps the record (:attr:`World.history`) that one seed must reproduce exactly.

* Gateway calls of the shop go through :class:`~.faults.FaultyTransport` (one per
  instance) into the sandbox's WSGI app, in process.
* The sandbox's notifications (all but Check) are captured into :attr:`World.network`
  instead of being sent; the scheduler delivers them to either instance's notification
  routes through the Flask test client: late, twice, out of order, or again after the
  shop answered an error. A Check is answered synchronously (the gateway waits for it).
* The gateway's back office, and the payer's browser in widget mode, call the sandbox
  API directly, bypassing the shop.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import sqlalchemy as sa
from flask import Flask

from checkout_kit import jsoncodec
from checkout_kit.client import CloudPaymentsClient
from checkout_kit.ledger import PaymentService
from checkout_kit.notifications import NotificationType
from checkout_kit.pytest_plugin import (
    GATEWAY_SENDER_ADDRESS,
    SANDBOX_API_SECRET,
    SANDBOX_BASE_URL,
    SANDBOX_PUBLIC_ID,
)
from checkout_kit.sandbox import Sandbox, VirtualClock, create_sandbox_app, sandbox_of
from checkout_kit.shop import CheckoutKit, signals
from checkout_kit.shop.state import KitState, state

from .faults import FaultyTransport

#: Where the sandbox sends notifications; the host is never resolved (captured).
SHOP_ORIGIN = "http://shop.sim"
URL_PREFIX = "/checkout"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

_KEYS: dict[int, bytes] = {}


def sandbox_keys() -> dict[int, bytes]:
    """One RSA key per process (generating one per run would dominate the run)."""
    if not _KEYS:
        from checkout_kit.cryptogram import generate_key_pair

        _KEYS[4] = generate_key_pair(2048)[0]
    return _KEYS


@dataclass
class Delivery:
    """A notification the gateway sent, as bytes on the wire, waiting in the network."""

    number: int
    kind: str
    path: str
    body: bytes
    headers: dict[str, str]
    fields: dict[str, str]
    #: times it reached the shop, and whether the shop has taken it (code 0)
    tries: int = 0
    taken: bool = False


@dataclass
class Instance:
    """One app instance of the shop (its own client, service, inbox; the shared DB)."""

    name: str
    app: Flask
    kit: CheckoutKit
    transport: FaultyTransport

    @property
    def state(self) -> KitState:
        return state(self.app)

    @property
    def service(self) -> PaymentService:
        return self.state.service

    @contextmanager
    def context(self) -> Iterator[None]:
        with self.app.test_request_context():
            yield


@dataclass
class PaymentModel:
    """What the world knows of a payment it created (by invoice: ids are the ledger's)."""

    invoice: str
    payment_id: str
    amount: Decimal
    scheme: str
    account: str
    expires_at: datetime | None = None
    #: gateway transactions made by the shop's own charge/auth calls
    form_txs: list[int] = field(default_factory=list)
    #: gateway transaction ids of 3-D Secure challenges opened for it (form or widget)
    challenges: list[int] = field(default_factory=list)
    #: stall events and back-office actions seen, for classifying violations
    tags: set[str] = field(default_factory=set)


class World:
    """Everything one run touches. ``db_url``: an empty, migrated ledger database."""

    def __init__(self, seed: int, db_url: str, *, corrupt: Callable[[World], None] | None = None,
                 check: bool | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.db_url = db_url
        self.history: list[str] = []
        self.clock = VirtualClock(START, frozen=True)
        #: gateway transaction -> when our code first sent the request that made it
        #: (faults.FaultyTransport: a retry, or a stalled write, came later)
        self.released_at: dict[int, datetime] = {}
        self.network: list[Delivery] = []
        self._numbers = itertools.count(1)
        self._ids = itertools.count(1)
        self.payments: list[PaymentModel] = []
        #: every notification answer the shop gave: (delivery number, status, body)
        self.answers: list[tuple[int, int, bytes]] = []
        #: (invoice, what the payer was shown, gateway tx ids made by that call)
        self.shown: list[tuple[str, str, list[int]]] = []
        #: ``payment_failed`` signals the shop got: (invoice, the transaction named)
        self.shop_failed: list[tuple[str, int | None]] = []
        #: Check answers: (InvoiceId, HTTP status, code)
        self.checks: list[tuple[str | None, int, int | None]] = []
        #: TermUrl answers for a payment's latest challenge: (invoice, tx id, status)
        self.live_returns: list[tuple[str, int, int]] = []
        #: 3-D Secure challenges the payer has open (:class:`.actions.Challenge`)
        self.challenges: list[Any] = []
        #: ``True`` while a fault's side effect runs (no nested stalls)
        self.in_stall = False
        #: exceptions the shop raised that no caller should see (what, exception)
        self.errors: list[tuple[str, BaseException]] = []
        #: set once the run reached quiescence (before the final checks)
        self.quiesced = False
        #: a deliberately broken ledger step, for the invariants' self-test
        self.corrupt = corrupt
        byte_rng = random.Random(seed ^ 0x5EED)
        self.sandbox: Sandbox = sandbox_of(create_sandbox_app(
            public_id=SANDBOX_PUBLIC_ID, api_secret=SANDBOX_API_SECRET, keys=sandbox_keys(),
            clock=self.clock, acs_url="http://sandbox.sim/acs",
            notification_transport=httpx.MockTransport(self._capture),
            randbytes=byte_rng.randbytes,
        ))
        #: Whether the shop configured Check at the gateway (a shop may never have).
        drawn = self.rng.random() < 0.6
        self.check_configured = drawn if check is None else check
        for kind in NotificationType:
            if kind is NotificationType.CHECK and not self.check_configured:
                continue
            self.sandbox.configure_notification(
                kind, f"{SHOP_ORIGIN}{URL_PREFIX}/notifications/{kind.value.lower()}",
                http_method="POST")
        self.instances = [self._instance("A"), self._instance("B")]
        # The gateway's back office and the payer's browser: no faults, no shop.
        self.back_office = CloudPaymentsClient(
            SANDBOX_PUBLIC_ID, SANDBOX_API_SECRET, base_url=SANDBOX_BASE_URL,
            transport=httpx.WSGITransport(app=self.sandbox.app), max_retries=0)
        self.browser = httpx.Client(transport=httpx.WSGITransport(app=self.sandbox.app),
                                    base_url=SANDBOX_BASE_URL)

    # ------------------------------------------------------------------ building

    def _instance(self, name: str) -> Instance:
        app = Flask(f"shop_{name}")
        transport = FaultyTransport(self, name, httpx.WSGITransport(app=self.sandbox.app))
        app.config.update(
            SECRET_KEY="simulation", TESTING=True,
            CHECKOUT_KIT_PUBLIC_ID=SANDBOX_PUBLIC_ID, CHECKOUT_KIT_API_SECRET=SANDBOX_API_SECRET,
            CHECKOUT_KIT_API_URL=SANDBOX_BASE_URL, CHECKOUT_KIT_API_TRANSPORT=transport,
            CHECKOUT_KIT_DATABASE_URL=self.db_url, CHECKOUT_KIT_URL_PREFIX=URL_PREFIX,
            CHECKOUT_KIT_LANGUAGE="en",
        )
        kit = CheckoutKit(app)
        kit_state = state(app)
        signals.payment_failed.connect(self._failed_signal, sender=app, weak=False)
        # The instance on the virtual clock; retries "sleep" by moving it.
        kit_state.client.close()
        client = CloudPaymentsClient(
            SANDBOX_PUBLIC_ID, SANDBOX_API_SECRET, base_url=SANDBOX_BASE_URL,
            transport=transport, max_retries=2, sleep=self.sleep, random=self.rng.random,
            request_id_factory=lambda: f"req-{next(self._ids)}")
        # The kit's own ledger, service and inbox are kept (with whatever hooks
        # init_app gives them); only their clock, ids and client are the world's. The
        # ledger has no public setter for those: its constructor's arguments are set
        # here as the constructor would (the service's clock is the ledger's).
        ledger = kit_state.ledger
        ledger._clock = self.now
        ledger._new_id = lambda: f"pay_{next(self._ids):06d}"
        ledger._new_request_id = lambda: f"rid-{next(self._ids)}"
        ledger.engine.dispose()
        if ledger.engine.dialect.name == "sqlite":
            # No crash is simulated: skip the fsync of every commit (4x faster runs).
            sa.event.listen(ledger.engine, "connect", _no_fsync)
        kit_state.client = kit_state.service.client = client
        return Instance(name, app, kit, transport)

    def _failed_signal(self, sender: Flask, payment: Any, **_: Any) -> None:
        """What the shop hears: ``payment_failed``, and the transaction it names."""
        self.shop_failed.append((payment.invoice_id, payment.gateway_transaction_id))

    def close(self) -> None:
        for instance in self.instances:
            signals.payment_failed.disconnect(self._failed_signal, sender=instance.app)
        for instance in self.instances:
            instance.state.client.close()
            instance.state.ledger.engine.dispose()
        self.back_office.close()
        self.browser.close()
        self.sandbox.close()

    # ------------------------------------------------------------------ time

    def now(self) -> datetime:
        return self.clock.now()

    def advance(self, delta: timedelta) -> None:
        """Move the one clock (the gateway runs what falls due on the way)."""
        self.sandbox.advance(delta)

    def sleep(self, seconds: float) -> None:
        """The clients' wait between retries: virtual time only."""
        self.log(f"  sleep {seconds:.1f}s")
        self.advance(timedelta(seconds=seconds))

    def stall(self, name: str, request: httpx.Request, *, acted: bool) -> None:
        """Instance ``name`` stalls in a call past ``stale_after``; meanwhile the other
        instance refreshes the payment (or reconciles everything)."""
        from .faults import STALLS, _body_fields

        worker = next(i for i in self.instances if i.name == name)
        other = self.other(worker)
        body = _body_fields(request)
        ledger = other.state.ledger
        payment = None
        if body.get("InvoiceId"):
            model = self.model(body["InvoiceId"])
            payment = None if model is None else model.payment_id
        elif body.get("TransactionId", "").isdigit():
            found = ledger.find_by_transaction(int(body["TransactionId"]))
            payment = None if found is None else found.id
        if payment is not None:
            invoice = ledger.get(payment).invoice_id
            model = self.model(invoice)
            if model is not None:
                model.tags.add("stall_after" if acted else "stall_before")
        from .actions import back_office, deliver

        self.in_stall = True
        try:
            self.advance(worker.service.stale_after + self.rng.choice(STALLS))
            # Meanwhile: the other instance takes over, and the world goes on.
            for _ in range(self.rng.randint(1, 3)):
                what = self.rng.choices(("takeover", "deliver", "back_office"),
                                        weights=(3, 3, 2))[0]
                if what == "deliver":
                    deliver(self, newest=self.rng.random() < 0.5)
                elif what == "back_office":
                    back_office(self, None if payment is None or self.rng.random() < 0.3
                                else self.model(ledger.get(payment).invoice_id))
                else:
                    with other.context():
                        if payment is not None and self.rng.random() < 0.7:
                            after = other.service.refresh(payment)
                            self.log(f"  {other.name} refresh during stall -> "
                                     f"{after.status.value}")
                        else:
                            other.kit.reconcile()
                            self.log(f"  {other.name} reconcile during stall")
        except Exception as exc:  # recorded; the invariants judge
            self.log(f"  {other.name} during stall raised {type(exc).__name__}: {exc}")
            self.errors.append((f"stall refresh on {other.name}", exc))
        finally:
            self.in_stall = False

    # ------------------------------------------------------------------ record

    def log(self, line: str) -> None:
        self.history.append(f"{self.now():%d %H:%M:%S} {line}")

    def pick(self, items: list[Any]) -> Any:
        return items[self.rng.randrange(len(items))]

    def other(self, instance: Instance) -> Instance:
        return self.instances[1] if instance is self.instances[0] else self.instances[0]

    def model(self, invoice: str) -> PaymentModel | None:
        return next((m for m in self.payments if m.invoice == invoice), None)

    # ------------------------------------------------------------------ network

    def _capture(self, request: httpx.Request) -> httpx.Response:
        """The sandbox's notification transport: a Check is answered now by an instance;
        every other notification goes into the network for the scheduler."""
        path = request.url.path
        kind = path.rsplit("/", 1)[-1]
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("content-type", "content-hmac", "x-content-hmac")}
        body = request.content
        from urllib.parse import parse_qsl

        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        delivery = Delivery(next(self._numbers), kind, path, body, headers, fields)
        if kind == "check":
            status, answer = self.deliver(self.pick(self.instances), delivery)
            self.checks.append((fields.get("InvoiceId"), status, _code(answer)))
            return httpx.Response(status, content=answer)
        self.network.append(delivery)
        self.log(f"gateway queued {kind} #{delivery.number} tx={fields.get('TransactionId')} "
                 f"inv={fields.get('InvoiceId')} amount={fields.get('Amount')}")
        return httpx.Response(200, json={"code": 0})

    def deliver(self, instance: Instance, delivery: Delivery) -> tuple[int, bytes]:
        """Send ``delivery`` to ``instance`` as the gateway would; return its answer."""
        client = instance.app.test_client()
        response = client.post(delivery.path, data=delivery.body, headers=delivery.headers,
                               environ_base={"REMOTE_ADDR": GATEWAY_SENDER_ADDRESS})
        answer = response.get_data()
        delivery.tries += 1
        self.answers.append((delivery.number, response.status_code, answer))
        code = _code(answer)
        if response.status_code == 200 and code == 0 and delivery.kind != "check":
            delivery.taken = True
        self.log(f"{instance.name} got {delivery.kind} #{delivery.number} -> "
                 f"{response.status_code} {answer[:60]!r}")
        return response.status_code, answer

    # ------------------------------------------------------------------ the gateway's truth

    def gateway_payments(self, invoice: str | None = None) -> list[Any]:
        """The sandbox's payment transactions (refunds excluded), oldest first."""
        txs = [tx for tx in self.sandbox.state.transactions.values()
               if int(tx.type) == 0 and (invoice is None or tx.invoice_id == invoice)]
        return sorted(txs, key=lambda tx: tx.id)

    def gateway_tx(self, tx_id: int | None) -> Any:
        return None if tx_id is None else self.sandbox.state.transactions.get(tx_id)

    def gateway_refunded(self, tx_id: int) -> Decimal:
        return sum((tx.amount for tx in self.sandbox.state.transactions.values()
                    if int(tx.type) == 1 and tx.original_transaction_id == tx_id
                    and str(tx.status) == "Completed"), Decimal(0))

    def max_tx_id(self) -> int:
        return max(self.sandbox.state.transactions, default=0)

    def ledger_payments(self) -> list[Any]:
        ledger = self.instances[0].state.ledger
        return [ledger.get(m.payment_id) for m in self.payments]


def _no_fsync(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous = OFF")


def _code(answer: bytes) -> int | None:
    try:
        data = jsoncodec.loads(answer)
    except Exception:
        return None
    return data.get("code") if isinstance(data, dict) else None
