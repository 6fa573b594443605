"""Fixtures for the ledger tests: a migrated database (SQLite always, PostgreSQL when
CHECKOUT_KIT_TEST_DATABASE_URL is set), a ledger, and a service on the in-process
sandbox.

Each PostgreSQL test gets a schema of its own (``search_path`` set on every
connection), dropped afterwards, so runs against one server never see each other."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from checkout_kit import pytest_plugin
from checkout_kit.client import CloudPaymentsClient
from checkout_kit.ledger import Ledger, PaymentService, upgrade
from checkout_kit.ledger.store import Payment
from checkout_kit.pytest_plugin import SANDBOX_BASE_URL
from checkout_kit.sandbox import Sandbox, VirtualClock

# The plugin's fixtures, for a plain checkout where its entry point is not installed.
cloudpayments_sandbox = pytest_plugin.cloudpayments_sandbox
cloudpayments_sandbox_keys = pytest_plugin.cloudpayments_sandbox_keys

PG_URL = os.environ.get("CHECKOUT_KIT_TEST_DATABASE_URL")

#: The backends a ``db_url`` test runs on.
BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=[
        pytest.mark.postgres,
        pytest.mark.skipif(not PG_URL, reason="CHECKOUT_KIT_TEST_DATABASE_URL is not set"),
    ]),
]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    assert PG_URL
    with fresh_schema(PG_URL) as url:
        yield url


@contextmanager
def fresh_schema(server_url: str) -> Iterator[str]:
    """A URL whose connections use a new, empty schema on the PostgreSQL server at
    ``server_url`` (``search_path`` set on every connection), dropped afterwards."""
    schema = "ledger_test_" + secrets.token_hex(6)
    admin = sa.create_engine(server_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = sa.make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture
def migrated_url(db_url: str) -> str:
    """``db_url`` with the ledger's migrations applied."""
    upgrade(db_url)
    return db_url


class Clock:
    """A settable clock for the ledger and the service."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cloudpayments_sandbox_options(clock: Clock) -> dict[str, Any]:
    """The sandbox's clock follows the ledger's (as the gateway's and a shop's both
    follow real time); ``Sandbox.advance`` still moves the gateway ahead."""
    return {"clock": VirtualClock(source=clock)}


@pytest.fixture
def ledger(migrated_url: str, clock: Clock) -> Iterator[Ledger]:
    ledger = Ledger(migrated_url, clock=clock)
    yield ledger
    ledger.engine.dispose()


class Recorder:
    """Counts the requests that reach the sandbox by path, and can break the
    connection after the sandbox answered (``drop_after``) or before (``fail_before``),
    or do something while the answer is on its way (``meanwhile``), for paths given."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.WSGITransport(app=app)
        self.paths: list[str] = []
        self.request_ids: list[str | None] = []
        self.bodies: list[bytes] = []
        self.drop_after: set[str] = set()
        self.fail_before: set[str] = set()
        #: path -> something to do after the sandbox answered, before we get the answer
        self.meanwhile: dict[str, Callable[[], object]] = {}
        #: path -> something to do before the request reaches the sandbox
        self.before: dict[str, Callable[[], object]] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.paths.append(path)
        self.request_ids.append(request.headers.get("X-Request-ID"))
        self.bodies.append(request.content)
        if path in self.before:
            self.before.pop(path)()
        if path in self.fail_before:
            raise httpx.ReadTimeout("sent, no answer", request=request)
        response = self._inner.handle_request(request)
        if path in self.meanwhile:
            self.meanwhile.pop(path)()
        if path in self.drop_after:
            response.read()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    def count(self, path: str) -> int:
        return self.paths.count(path)


@pytest.fixture
def recorder(cloudpayments_sandbox: Sandbox) -> Recorder:
    return Recorder(cloudpayments_sandbox.app)


@pytest.fixture
def client(cloudpayments_sandbox: Sandbox, recorder: Recorder) -> Iterator[CloudPaymentsClient]:
    """A client on the sandbox through :class:`Recorder`; retries do not sleep."""
    client = CloudPaymentsClient(
        cloudpayments_sandbox.public_id, cloudpayments_sandbox.api_secret,
        base_url=SANDBOX_BASE_URL,
        transport=httpx.MockTransport(recorder.handle_request),
        sleep=lambda _seconds: None, max_retries=1,
    )
    yield client
    client.close()


class Changes:
    """What the service's ``on_change`` hook was called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, payment: Payment, old: str, new: str) -> None:
        assert payment.status == new
        self.calls.append((payment.id, str(old), str(new)))


@pytest.fixture
def changes() -> Changes:
    return Changes()


@pytest.fixture
def service(
    ledger: Ledger, client: CloudPaymentsClient, clock: Clock, changes: Changes
) -> PaymentService:
    return PaymentService(ledger, client, clock=clock, on_change=changes)


@pytest.fixture
def card(cloudpayments_sandbox: Sandbox) -> Callable[[str], str]:
    """``card("4242 4242 4242 4242")`` -> a cryptogram for the sandbox."""
    return cloudpayments_sandbox.make_cryptogram


def charges(sandbox: Sandbox, invoice_id: str | None = None) -> list[Any]:
    """The sandbox's payment transactions (refunds excluded), for one invoice or all."""
    return [
        tx for tx in sandbox.state.transactions.values()
        if int(tx.type) == 0 and (invoice_id is None or tx.invoice_id == invoice_id)
    ]


def together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(0) … work(count - 1)`` in ``count`` threads released at the same
    instant; return each one's result, or the exception it raised, in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(n: int) -> None:
        barrier.wait()
        try:
            results[n] = work(n)
        except Exception as exc:
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
