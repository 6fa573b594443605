"""A separate process that pays one payment (used by test_service_processes.py).

Usage: python pay_worker.py DB_URL BASE_URL PUBLIC_ID API_SECRET PAYMENT_ID CRYPTOGRAM GO_FILE

It builds its own Ledger, client and PaymentService, prints ``ready``, waits until
GO_FILE exists (so every worker submits at the same moment), pays, and prints the
outcome's kind."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from checkout_kit.client import CloudPaymentsClient
from checkout_kit.ledger import Ledger, PaymentService


def main(argv: list[str]) -> int:
    db_url, base_url, public_id, secret, payment_id, cryptogram, go_file = argv
    ledger = Ledger(db_url)
    with CloudPaymentsClient(public_id, secret, base_url=base_url, max_retries=0) as client:
        service = PaymentService(ledger, client)
        print("ready", flush=True)
        deadline = time.monotonic() + 60
        while not Path(go_file).exists():
            if time.monotonic() > deadline:
                return 2
            time.sleep(0.005)
        outcome = service.pay(payment_id, cryptogram=cryptogram, ip_address="198.51.100.1")
        print(outcome.kind, flush=True)
    ledger.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
