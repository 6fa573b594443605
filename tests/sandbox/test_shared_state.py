"""One state file, several processes: the app's workers and the ``flask checkout``
commands see one sandbox, and a transaction id is never issued twice."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from checkout_kit.client import CloudPaymentsClient
from checkout_kit.sandbox import Sandbox, create_sandbox_app, sandbox_of
from checkout_kit.sandbox.rules.records import Subscription
from checkout_kit.sandbox.store import Store

IP = "203.0.113.7"
ROOT = Path(__file__).resolve().parents[2]


def _client(sandbox: Sandbox) -> CloudPaymentsClient:
    return CloudPaymentsClient(sandbox.public_id, sandbox.api_secret, base_url="http://sandbox",
                               transport=httpx.WSGITransport(app=sandbox.app),
                               sleep=lambda _: None)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Sandbox, Sandbox]]:
    """Two sandboxes on one file, as two processes of one app would have them (each
    opens its own SQLite connection)."""
    path = tmp_path / "state.sqlite3"
    one = sandbox_of(create_sandbox_app(state_path=path))
    two = sandbox_of(create_sandbox_app(state_path=path))
    yield one, two
    one.close()
    two.close()


def test_the_second_process_uses_the_key_the_first_generated(
        pair: tuple[Sandbox, Sandbox]) -> None:
    one, two = pair
    assert one.public_key_pem() == two.public_key_pem()
    with _client(two) as client:
        paid = client.charge(Decimal("5.00"), ip_address=IP,
                             cryptogram=one.make_cryptogram("4000000000003055"))
    assert paid.status == "Completed"


def test_a_payment_made_in_one_process_is_refunded_from_another(
        pair: tuple[Sandbox, Sandbox]) -> None:
    one, two = pair
    with _client(one) as first, _client(two) as second:
        paid = first.charge(Decimal("12.00"), ip_address=IP,
                            cryptogram=one.make_cryptogram("4000000000003055"))
        second.refund(paid.transaction_id, Decimal("2.00"))
        held = one.state.transactions[paid.transaction_id]
        assert first.get_payment(paid.transaction_id).refunded
    # the object the first process holds was updated in place, not replaced
    assert held is one.state.transactions[paid.transaction_id]
    assert held.refunded == Decimal("2.00")


def test_interleaved_payments_never_share_a_transaction_id(
        pair: tuple[Sandbox, Sandbox]) -> None:
    one, two = pair
    ids: list[int] = []
    with _client(one) as first, _client(two) as second:
        for n in range(6):
            sandbox, client = (one, first) if n % 2 else (two, second)
            ids.append(client.charge(Decimal("1.00"), ip_address=IP, cryptogram=sandbox
                                     .make_cryptogram("4000000000003055")).transaction_id)
    assert len(set(ids)) == len(ids) == 6
    assert ids == sorted(ids)
    for sandbox in pair:
        with sandbox.lock:  # what another process wrote is read under the lock
            assert set(ids) <= set(sandbox.state.transactions)


def test_notification_settings_set_in_one_process_hold_in_the_other(
        pair: tuple[Sandbox, Sandbox]) -> None:
    one, two = pair
    one.configure_notification("Pay", "https://shop.example/pay")
    with two.lock:
        setting = two.state.notification_settings["Pay"]
    assert setting.address == "https://shop.example/pay" and setting.is_enabled


def test_a_reset_empties_every_process_and_keeps_the_counters(
        pair: tuple[Sandbox, Sandbox]) -> None:
    one, two = pair
    with _client(one) as client:
        paid = client.charge(Decimal("3.00"), ip_address=IP,
                             cryptogram=one.make_cryptogram("4000000000003055"))
    one.configure_notification("Pay", "https://shop.example/pay")
    assert two.reset() >= 1
    with one.lock:
        assert one.state.transactions == {}
        assert one.state.notification_settings["Pay"].address == "https://shop.example/pay"
    with _client(one) as client:
        again = client.charge(Decimal("3.00"), ip_address=IP,
                              cryptogram=one.make_cryptogram("4000000000003055"))
    assert again.transaction_id > paid.transaction_id
    assert Store(one.store.path if one.store else "").load().transactions.keys() == {
        again.transaction_id}


def test_a_file_from_before_versions_is_read_and_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, "
                   "data TEXT NOT NULL, PRIMARY KEY (kind, key))")
        db.execute("INSERT INTO records VALUES ('meta', 'meta', ?)",
                   ('{"next_transaction_id":1000042,"next_delivery_id":1,'
                    '"next_order_number":1}',))
    db.close()
    sandbox = sandbox_of(create_sandbox_app(state_path=path))
    try:
        with _client(sandbox) as client:
            paid = client.charge(Decimal("1.00"), ip_address=IP,
                                 cryptogram=sandbox.make_cryptogram("4000000000003055"))
        assert paid.transaction_id == 1000042
    finally:
        sandbox.close()


_CHARGER = textwrap.dedent("""
    import sys
    from decimal import Decimal

    import httpx

    from checkout_kit.client import CloudPaymentsClient
    from checkout_kit.sandbox import create_sandbox_app, sandbox_of

    sandbox = sandbox_of(create_sandbox_app(state_path=sys.argv[1]))
    client = CloudPaymentsClient(sandbox.public_id, sandbox.api_secret,
                                 base_url="http://sandbox",
                                 transport=httpx.WSGITransport(app=sandbox.app))
    for _ in range(int(sys.argv[2])):
        packet = sandbox.make_cryptogram("4000000000003055")
        tx = client.charge(Decimal("1.00"), ip_address="203.0.113.7", cryptogram=packet)
        print(tx.transaction_id, flush=True)
    sandbox.close()
""")


def test_processes_charging_at_once_share_one_sequence_of_ids(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # three processes start on a new file at once: one generates the key, all use it
    procs = [subprocess.Popen([sys.executable, "-c", _CHARGER, str(path), "15"],
                              stdout=subprocess.PIPE, env=env, text=True) for _ in range(3)]
    ids: list[int] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        ids.extend(int(line) for line in out.split())
    assert len(ids) == 45 and len(set(ids)) == 45
    state = Store(path).load()
    assert set(ids) == set(state.transactions)
    assert all(tx.status == "Completed" for tx in state.transactions.values())
    assert state.meta["next_transaction_id"] == max(ids) + 1


def _pay_notification(one: Sandbox) -> None:
    """A Pay notification queued and due, not sent (the sandbox sends at commit)."""
    one.settings.deliver_immediately = False
    one.configure_notification("Pay", "https://shop.example/pay")
    with _client(one) as client:
        client.charge(Decimal("2.00"), ip_address=IP,
                      cryptogram=one.make_cryptogram("4000000000003055"))


def test_a_delivery_claimed_in_one_process_is_not_claimed_in_another(
        pair: tuple[Sandbox, Sandbox]) -> None:
    one, two = pair
    _pay_notification(one)
    now = one.now()
    with one.lock:
        (claimed,) = one.outbox.claim_due(now)
    with two.lock:  # the claim was written: the other process sees it taken
        assert two.outbox.claim_due(now) == []
        assert two.state.deliveries[claimed.id].state == "sending"
    later = now + timedelta(minutes=6)  # its sender died: the lease runs out
    with two.lock:
        assert [d.id for d in two.outbox.claim_due(later)] == [claimed.id]


def test_a_due_subscription_is_charged_by_one_worker(pair: tuple[Sandbox, Sandbox]) -> None:
    one, two = pair
    now = one.now()
    with one.lock:
        one.state.add(Subscription(
            id="sc_1", public_id=one.public_id, account_id="user", token="tk_1",
            description=None, email=None, amount=Decimal("1.00"), currency="RUB",
            require_confirmation=False, start_date=now, interval="Month", period=1,
            max_periods=None, culture_name=None, status="Active", created=now,
            next_transaction_date=now))
    assert one.subscriptions.due(now) == ["sc_1"]
    assert two.subscriptions.due(now) == []
    assert one.subscriptions.due(now + timedelta(minutes=6)) == ["sc_1"]  # lease over


class _FailingCommit:
    """A connection whose COMMIT fails once, as a full disk makes it fail."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db, self.failed = db, False

    def execute(self, sql: str, *args: object) -> object:
        if sql == "COMMIT" and not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)


def test_a_failed_commit_lets_go_of_the_file_and_keeps_the_changes(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = Store(path)
    state = store.load()
    state.next_id("next_transaction_id")
    real = store._db
    store._db = _FailingCommit(real)  # type: ignore[assignment]
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        store.write(state)
    assert not real.in_transaction
    other = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the write lock is free for the other processes
    other.execute("ROLLBACK")
    other.close()
    assert ("meta", "meta") in state.changed  # to be written with the next ones
    assert store.write(state) == 1
    assert Store(path).load().meta["next_transaction_id"] == 1_000_002
    store.close()


def test_reading_without_the_lock_takes_the_write_lock_only_after_a_change(
        pair: tuple[Sandbox, Sandbox], monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = pair
    two.sync()
    assert one.store is not None and two.store is not None
    begun: list[int] = []
    real = Store.begin

    def counted(store: Store, state: Any) -> None:
        begun.append(1)
        real(store, state)

    monkeypatch.setattr(Store, "begin", counted)
    two.sync()
    assert begun == []  # nothing new: no lock taken
    one.configure_notification("Fail", "https://shop.example/fail")
    begun.clear()
    two.sync()
    assert begun == [1] and two.state.notification_settings["Fail"].is_enabled
