"""The SQLite state: only changed records are written, restarts and crashes lose nothing."""

from __future__ import annotations

import collections
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from checkout_kit import jsoncodec
from checkout_kit.client import CloudPaymentsClient
from checkout_kit.sandbox import Sandbox, create_sandbox_app, sandbox_of
from checkout_kit.sandbox.rules.records import SandboxState
from checkout_kit.sandbox.store import Store

IP = "203.0.113.7"
ROOT = Path(__file__).resolve().parents[2]


def _rows(path: Path) -> dict[tuple[str, str], str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT kind, key, data FROM records").fetchall()
    db.close()
    return {(kind, key): data for kind, key, data in rows}


def _plain(state: SandboxState) -> dict[str, Any]:
    """Everything a state holds, comparable (``changed`` is bookkeeping, left out)."""
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)
            if f.name != "changed"}


@pytest.fixture
def served(tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes],
           shop: Any) -> Iterator[tuple[Sandbox, CloudPaymentsClient]]:
    sandbox = sandbox_of(create_sandbox_app(
        state_path=tmp_path / "state.sqlite3", keys=cloudpayments_sandbox_keys,
        notification_transport=httpx.MockTransport(shop.handler)))
    with CloudPaymentsClient(sandbox.public_id, sandbox.api_secret, base_url="http://sandbox",
                             transport=httpx.WSGITransport(app=sandbox.app),
                             sleep=lambda _: None) as client:
        yield sandbox, client
    sandbox.close()


def test_a_request_writes_only_the_records_it_changed(
    served: tuple[Sandbox, CloudPaymentsClient], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox, client = served
    path = tmp_path / "state.sqlite3"
    first = client.auth(Decimal("10.00"), ip_address=IP,
                        cryptogram=sandbox.make_cryptogram("4000000000003055"))
    second = client.charge(Decimal("20.00"), ip_address=IP,
                           cryptogram=sandbox.make_cryptogram("4000000000003055"))
    before = _rows(path)
    assert sandbox.state.changed == set()  # everything was written at the end of a request

    written: list[set[tuple[str, Any]]] = []
    real_flush = Store.flush

    def spy(store: Store, state: SandboxState) -> int:
        written.append(set(state.changed))
        return real_flush(store, state)

    monkeypatch.setattr(Store, "flush", spy)
    client.confirm(first.transaction_id, Decimal("7.00"))
    after = _rows(path)
    # two records written: the confirmed payment, once, and the answer kept for its
    # X-Request-ID (the client sends one with every call), twice: its place is held
    # before the run (other processes wait for it), then the answer fills it
    one = set().union(*written)
    counts = collections.Counter(kind for change in written for kind, _ in change)
    assert counts == {"transactions": 1, "idempotency": 2}
    assert {kind for kind, _ in one} == {"transactions", "idempotency"} and len(one) == 2
    assert ("transactions", first.transaction_id) in one
    changed = {key for key in after if after[key] != before.get(key)}
    assert changed == {(kind, str(key)) for kind, key in one}
    assert jsoncodec.loads(after["transactions", str(first.transaction_id)])["amount"] == \
        Decimal("7.00")
    assert after["transactions", str(second.transaction_id)] == \
        before["transactions", str(second.transaction_id)]


def test_the_state_survives_a_restart_exactly(
    served: tuple[Sandbox, CloudPaymentsClient], tmp_path: Path, shop: Any,
    cloudpayments_sandbox_keys: dict[int, bytes],
) -> None:
    sandbox, client = served
    for kind in ("Pay", "Fail", "Refund", "Recurrent", "Confirm"):
        sandbox.configure_notification(kind, shop.url(kind))
    shop.answers["Pay"] = [500]  # a delivery left to retry
    paid = client.charge(Decimal("100.50"), ip_address=IP, account_id="user-7", save_card=True,
                         json_data={"basket": [{"price": Decimal("0.10")}], "$decimal": "x"},
                         cryptogram=sandbox.make_cryptogram("4000000000003055"),
                         request_id="charge-1")
    client.refund(paid.transaction_id, Decimal("0.50"))
    token = paid.raw["Token"]
    sub = client.create_subscription(token=token, account_id="user-7", amount=Decimal("5"),
                                     start_date=sandbox.now() + timedelta(days=1),
                                     interval="Day", period=1, description="daily")
    client.create_order(Decimal("42.00"), description="an order", email="buyer@example.com")
    client.update_subscription(sub.id, description="still daily")
    order = client.create_order(Decimal("43.00"), description="to cancel")
    client.cancel_order(order.id)
    held = client.auth(Decimal("9.00"), ip_address=IP,
                       cryptogram=sandbox.make_cryptogram("4000000000003055"))
    voided = client.auth(Decimal("8.00"), ip_address=IP,
                         cryptogram=sandbox.make_cryptogram("4000000000003055"))
    client.void(voided.transaction_id)
    challenge = client.charge(Decimal("11.00"), ip_address=IP,
                              cryptogram=sandbox.make_cryptogram("4242424242424242"))
    client.post3ds(challenge.transaction_id, sandbox.pa_res_for(challenge.transaction_id))
    sandbox.advance(timedelta(days=8))  # the subscription charges, the authorization expires
    assert sandbox.state.subscriptions[sub.id].successful >= 1
    assert sandbox.state.transactions[held.transaction_id].status == "Cancelled"

    again = Sandbox(sandbox.settings, keys=cloudpayments_sandbox_keys,
                    state_path=tmp_path / "state.sqlite3")
    try:
        assert _plain(again.state) == _plain(sandbox.state)
        assert again.state.transactions[paid.transaction_id].json_data == {
            "basket": [{"price": Decimal("0.10")}], "$decimal": "x"}
    finally:
        again.close()


def test_a_write_that_fails_midway_keeps_what_was_committed_and_retries(
    served: tuple[Sandbox, CloudPaymentsClient], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox, client = served
    path = tmp_path / "state.sqlite3"
    kept = client.charge(Decimal("1.00"), ip_address=IP,
                         cryptogram=sandbox.make_cryptogram("4000000000003055"))
    committed = _rows(path)

    import checkout_kit.sandbox.store as store_module

    real_dumps = store_module.jsoncodec.dumps
    calls = {"n": 0}

    def failing_dumps(value: Any) -> str:
        calls["n"] += 1
        if calls["n"] == 2:  # the second record of the write: some rows are built already
            raise OSError("disk full")
        return real_dumps(value)

    monkeypatch.setattr(store_module.jsoncodec, "dumps", failing_dumps)
    with pytest.raises(OSError):
        # a write made of several records: the payment, the counter, its token
        sandbox.finish(sandbox.pay_by_cryptogram(
            sandbox_params(sandbox, "4000000000003055", save=True), two_stage=False))
        sandbox.save()
    # nothing of the failed write, the earlier payment kept; the new transaction's id
    # was taken (and committed) under the lock before, so that it is never issued again
    records = {key: data for key, data in _rows(path).items() if key[0] != "meta"}
    assert records == {key: data for key, data in committed.items() if key[0] != "meta"}
    assert sandbox.state.changed  # still to be written
    monkeypatch.setattr(store_module.jsoncodec, "dumps", real_dumps)
    sandbox.save()
    reloaded = Store(path).load()
    assert set(reloaded.transactions) == set(sandbox.state.transactions)
    assert kept.transaction_id in reloaded.transactions


def test_a_failure_inside_the_sqlite_transaction_rolls_it_back(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = Store(path)
    state = SandboxState()
    state.next_id("next_transaction_id")
    store.write(state)
    committed = _rows(path)
    state.next_id("next_order_number")
    state.changed.add(("transactions", 1))  # absent: a DELETE
    state.changed.add(("no_such_kind", "x"))  # getattr fails after the upserts were built
    with pytest.raises(AttributeError):
        store.write(state)
    assert _rows(path) == committed
    assert ("meta", "meta") in state.changed
    store.close()


def sandbox_params(sandbox: Sandbox, number: str, *, save: bool = False) -> Any:
    from checkout_kit.sandbox.rules.params import Params

    return Params({"Amount": "3.00", "IpAddress": IP, "AccountId": "user-9", "SaveCard": save,
                   "CardCryptogramPacket": sandbox.make_cryptogram(number)})


_SERVER = textwrap.dedent("""
    import sys
    from decimal import Decimal
    from pathlib import Path

    import httpx

    from checkout_kit.client import CloudPaymentsClient
    from checkout_kit.sandbox import create_sandbox_app, sandbox_of

    path, key = Path(sys.argv[1]), Path(sys.argv[2]).read_bytes()
    sandbox = sandbox_of(create_sandbox_app(state_path=path, keys={4: key}))
    client = CloudPaymentsClient(sandbox.public_id, sandbox.api_secret,
                                 base_url="http://sandbox",
                                 transport=httpx.WSGITransport(app=sandbox.app))
    packet = sandbox.make_cryptogram("4000000000003055")
    while True:
        tx = client.charge(Decimal("1.00"), ip_address="203.0.113.7", cryptogram=packet)
        print(tx.transaction_id, flush=True)  # answered: committed before the answer
""")


def test_killing_the_process_mid_run_loses_no_answered_payment(
    tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes],
) -> None:
    path, key = tmp_path / "state.sqlite3", tmp_path / "key.pem"
    key.write_bytes(cloudpayments_sandbox_keys[4])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(path), str(key)],
                            stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    answered: list[int] = []
    deadline = time.monotonic() + 60
    while len(answered) < 40 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        answered.append(int(line))
    proc.send_signal(signal.SIGKILL)  # mid-run: most likely inside a request
    proc.wait(timeout=10)
    proc.stdout.close()
    assert len(answered) == 40
    state = Store(path).load()
    assert set(answered) <= set(state.transactions)
    assert state.meta["next_transaction_id"] > max(state.transactions)
    assert all(tx.status == "Completed" for tx in state.transactions.values())
