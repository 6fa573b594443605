"""One state file, several processes: the app's workers and the ``flask checkout``
commands see one sandbox, and a transaction id is never issued twice."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from checkout_kit.client import CloudPaymentsClient
from checkout_kit.sandbox import Sandbox, create_sandbox_app, sandbox_of
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
