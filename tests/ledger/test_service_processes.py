"""Separate processes submitting the same payment against one database (SQLite file,
or PostgreSQL with CHECKOUT_KIT_TEST_DATABASE_URL) and one sandbox served over HTTP:
exactly one charge."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from checkout_kit.ledger import Ledger, PaymentStatus
from checkout_kit.sandbox import Sandbox

from .conftest import charges

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("pay_worker.py")
PROCESSES = 4


@pytest.fixture
def served(cloudpayments_sandbox: Sandbox) -> Iterator[str]:
    """The sandbox on a real socket (worker processes cannot share an in-process app)."""
    server = make_server("127.0.0.1", 0, cloudpayments_sandbox.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def test_processes_submitting_one_payment_charge_once(
    migrated_url: str, served: str, cloudpayments_sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = Ledger(migrated_url)
    payment = ledger.create_payment(invoice_id="proc-1", amount="250.00", currency="RUB",
                                    description="two processes")
    # A slow gateway keeps the first charge in flight while the others arrive.
    cloudpayments_sandbox.faults.add("latency", path="/payments/cards/charge", times=None,
                                     latency_ms=300)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), migrated_url, served, cloudpayments_sandbox.public_id,
             cloudpayments_sandbox.api_secret, payment.id,
             cloudpayments_sandbox.make_cryptogram("4000 0000 0000 3055"), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        go.touch()
        kinds = []
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
            kinds.append(out.strip())
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert sorted(kinds).count("succeeded") == 1, kinds
    assert set(kinds) <= {"succeeded", "in_progress", "already_paid"}
    assert len(charges(cloudpayments_sandbox, "proc-1")) == 1
    assert ledger.get(payment.id).status is PaymentStatus.SUCCEEDED
    assert len(ledger.attempts(payment.id)) == 1
    ledger.engine.dispose()
