"""Sandbox persistence: the charge rate with ``--state`` does not fall as the file grows.

Two sandboxes run side by side as real HTTP servers on loopback, each with its own
SQLite state file (as ``checkout-kit sandbox --state FILE`` runs): one empty, one
holding ``--stored`` transactions (10,000 by default), seeded through the Python API
(records made by their constructors and written in one transaction), not over HTTP.
A :class:`~checkout_kit.client.CloudPaymentsClient` then charges a non-3-DS card on each,
in interleaved rounds (best of each), and the script prints both rates and their
ratio. Target: the rate at 10,000 stored is at least 0.8 of the rate at 0.

Every charge writes only the records it changed (the payment, the id counter and the
answer kept for its ``X-Request-ID``) in one SQLite transaction; a sandbox that
rewrote its whole file on each request would slow down in proportion to the file.

    python benchmarks/bench_sandbox.py [--seconds 8] [--stored 10000]

Prints PASS or FAIL and exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from werkzeug.serving import BaseWSGIServer, make_server

from checkout_kit import cryptogram
from checkout_kit.client import CloudPaymentsClient
from checkout_kit.models import Transaction
from checkout_kit.sandbox import Sandbox, create_sandbox_app, sandbox_of
from checkout_kit.sandbox.rules.params import Params

TARGET = 0.8
IP = "203.0.113.7"


def seed(sandbox: Sandbox, count: int) -> None:
    """Store ``count`` more transactions like a real paid one, through the Python API."""
    params = Params({"Amount": "100.00", "IpAddress": IP, "InvoiceId": "seed",
                     "CardCryptogramPacket": sandbox.make_cryptogram("4000000000003055")})
    model = sandbox.finish(sandbox.pay_by_cryptogram(params, two_stage=False))["Model"]
    paid = sandbox.state.transactions[model["TransactionId"]]
    with sandbox.lock:
        for _ in range(count - 1):
            sandbox.state.add(dataclasses.replace(
                paid, id=sandbox.state.next_id("next_transaction_id")))
    sandbox.save()


class Served:
    """A sandbox with a state file, served over loopback HTTP in a thread."""

    def __init__(self, directory: Path, private_pem: bytes, stored: int) -> None:
        app = create_sandbox_app(keys={4: private_pem}, state_path=directory / "state.sqlite3")
        self.sandbox = sandbox_of(app)
        if stored:
            seed(self.sandbox, stored)
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.client = CloudPaymentsClient(
            self.sandbox.public_id, self.sandbox.api_secret,
            base_url=f"http://127.0.0.1:{self.server.server_port}")
        self.packets = [self.sandbox.make_cryptogram("4000000000003055") for _ in range(32)]
        self.n = 0

    def charge(self) -> None:
        self.n += 1
        result = self.client.charge(Decimal("100.00"), ip_address=IP,
                                    cryptogram=self.packets[self.n % 32], invoice_id="bench")
        assert isinstance(result, Transaction)

    def rate(self, seconds: float) -> float:
        """Charges per second over about ``seconds``."""
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            self.charge()
            count += 1
        return count / (time.perf_counter() - started)

    def close(self) -> None:
        self.client.close()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
        self.sandbox.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--stored", type=int, default=10_000)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    private_pem, _ = cryptogram.generate_key_pair(2048)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "empty").mkdir()
        (Path(tmp) / "full").mkdir()
        started = time.perf_counter()
        empty = Served(Path(tmp) / "empty", private_pem, 0)
        full = Served(Path(tmp) / "full", private_pem, args.stored)
        seeded_in = time.perf_counter() - started
        try:
            for served in (empty, full):
                served.charge()  # warm up
            rounds = 10
            best = {"empty": 0.0, "full": 0.0}
            for _ in range(rounds):
                best["empty"] = max(best["empty"], empty.rate(args.seconds / rounds / 2))
                best["full"] = max(best["full"], full.rate(args.seconds / rounds / 2))
            in_file = len(full.sandbox.store.load().transactions)  # type: ignore[union-attr]
        finally:
            empty.close()
            full.close()
    ratio = best["full"] / best["empty"]
    print(f"seeded {args.stored} transactions through the Python API in {seeded_in:.1f} s")
    print(f"charge/s over loopback HTTP, --state, {0:>6} stored:   {best['empty']:8.1f}")
    print(f"charge/s over loopback HTTP, --state, {args.stored:>6} stored:   "
          f"{best['full']:8.1f} ({in_file} in the file at the end)")
    print(f"ratio {args.stored} stored / 0 stored:                {ratio:8.3f} "
          f"(target ≥ {TARGET})")
    print("PASS" if ratio >= TARGET else "FAIL")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
