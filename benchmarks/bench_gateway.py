"""The client's own overhead on its production path, against bare httpx.

A minimal threaded HTTP/1.1 server on 127.0.0.1, started by this script, answers every
POST with one fixed success envelope (an accepted charge). Two callers send it the same
request body over real loopback HTTP, each on its own keep-alive connection:

* ``client``: ``CloudPaymentsClient.charge(...)``: argument checks, the JSON body
  (:mod:`checkout_kit.jsoncodec`), ``X-Request-ID``, ``httpx.Client.build_request`` and
  ``send``, the retry bookkeeping, reading the envelope into a typed ``Transaction``;
* ``bare``: ``httpx.Client.post`` of the very bytes the client sends, with the same
  headers, reading the answer's bytes and nothing more.

Many short rounds of the two alternate (which goes first alternates too), so that both
are judged under the same load; each rate is the best of its rounds, the round least
disturbed by the other processes of the machine. Two rates are kept per side: calls per
second of wall-clock time, and calls per second of this process's CPU time (server and
client threads together; time spent descheduled while other processes run does not
count, so it holds steady on a busy machine, where wall-clock rates swing by half).
On an idle machine the two agree. Target: client ÷ bare ≥ 0.9, in CPU time; the
wall-clock ratio is printed beside it.

For scale, the whole client → sandbox charge is timed too (``httpx.WSGITransport`` into
the in-process sandbox, which decrypts an RSA-2048 cryptogram per payment), next to a
bare RSA-2048 decryption. Prints PASS or FAIL and exits 0.

    python benchmarks/bench_gateway.py [--seconds 8] [--rounds 40]
"""

from __future__ import annotations

import argparse
import http.server
import os
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from cryptography.hazmat.primitives.asymmetric import padding

from checkout_kit import cryptogram, jsoncodec
from checkout_kit.client import CloudPaymentsClient
from checkout_kit.models import Transaction
from checkout_kit.sandbox import create_sandbox_app, sandbox_of

TARGET = 0.9
PUBLIC_ID, API_SECRET = "pk_bench_0000000000000000000001", "bench-secret"

# An accepted charge as the gateway answers it (the shape of the Docs example).
ENVELOPE = {
    "Success": True,
    "Message": None,
    "Model": {
        "ReasonCode": 0, "PublicId": PUBLIC_ID, "TerminalUrl": "https://shop.example",
        "TransactionId": 891510444, "Amount": Decimal("100.00"), "Currency": "RUB",
        "CurrencyCode": 0, "PaymentAmount": Decimal("100.00"), "PaymentCurrency": "RUB",
        "PaymentCurrencyCode": 0, "InvoiceId": "bench", "AccountId": "user_x",
        "Email": None, "Description": "Оплата товаров", "JsonData": None,
        "CreatedDate": "/Date(1635150224630)/", "PayoutDate": None, "PayoutDateIso": None,
        "PayoutAmount": None, "CreatedDateIso": "2021-10-25T08:23:44",
        "AuthDate": "/Date(1635150224739)/", "AuthDateIso": "2021-10-25T08:23:44",
        "ConfirmDate": "/Date(1635150224739)/", "ConfirmDateIso": "2021-10-25T08:23:44",
        "AuthCode": "A1B2C3", "TestMode": True, "Rrn": None, "OriginalTransactionId": None,
        "FallBackScenarioDeclinedTransactionId": None, "IpAddress": "203.0.113.7",
        "IpCountry": "RU", "IpCity": "Москва", "IpRegion": "Москва", "IpDistrict": None,
        "IpLatitude": Decimal("55.75"), "IpLongitude": Decimal("37.62"),
        "CardFirstSix": "400000", "CardLastFour": "3055", "CardExpDate": "12/30",
        "CardType": "Visa", "CardProduct": None, "CardCategory": None,
        "EscrowAccumulationId": None, "IssuerBankCountry": "RU", "Issuer": "Sandbox",
        "CardTypeCode": 0, "Status": "Completed", "StatusCode": 3,
        "CultureName": "ru-RU", "Reason": "Approved",
        "CardHolderMessage": "Оплата успешно проведена", "Type": 0, "Refunded": False,
        "Name": "CARDHOLDER NAME", "Token": "tk_255c42192323f2e09ea17635302c3",
        "SubscriptionId": None, "GatewayName": "Test", "ApplePay": False,
        "AndroidPay": False, "WalletType": "", "TotalFee": 0,
    },
}


class EnvelopeServer(http.server.ThreadingHTTPServer):
    """Answers every POST with :data:`ENVELOPE`, keeping connections alive; remembers
    the last request body and counts the connections it accepted."""

    daemon_threads = True

    def __init__(self) -> None:
        self.answer = jsoncodec.dumps_bytes(ENVELOPE)
        self.last_body = b""
        self.connections = 0
        super().__init__(("127.0.0.1", 0), _make_handler(self))


def _make_handler(server: EnvelopeServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive
        # The head and the body go out in two writes: without TCP_NODELAY the second
        # waits for the client's delayed ACK (40 ms), which would swamp both sides.
        disable_nagle_algorithm = True

        def setup(self) -> None:
            server.connections += 1
            super().setup()

        def do_POST(self) -> None:
            server.last_body = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(server.answer)))
            self.end_headers()
            self.wfile.write(server.answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _rate(seconds: float, step: Callable[[], object]) -> tuple[float, float]:
    """Calls of ``step()`` per second of wall-clock time and per second of this
    process's CPU time (client and server threads both), over about ``seconds``."""
    step()  # warm up
    count, started, cpu = 0, time.perf_counter(), time.process_time()
    deadline = started + seconds
    while True:
        step()
        count += 1
        if count % 8 == 0 and time.perf_counter() >= deadline:
            break
    return count / (time.perf_counter() - started), count / (time.process_time() - cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per side, all rounds")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    slot = args.seconds / args.rounds

    server = EnvelopeServer()
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"

    private_pem, _ = cryptogram.generate_key_pair(2048)
    app = create_sandbox_app(public_id=PUBLIC_ID, api_secret=API_SECRET, keys={4: private_pem})
    sandbox = sandbox_of(app)
    packets = [sandbox.make_cryptogram("4000000000003055") for _ in range(64)]
    n = [0]

    client = CloudPaymentsClient(PUBLIC_ID, API_SECRET, base_url=base_url)

    def client_charge() -> None:
        n[0] += 1
        result = client.charge(Decimal("100.00"), ip_address="203.0.113.7",
                               cryptogram=packets[n[0] % 64], invoice_id="bench")
        assert isinstance(result, Transaction)

    # The bare side sends what the client sends: its body, and its headers as httpx
    # builds them from the client's own.
    client_charge()
    body = server.last_body
    sent = client._http.build_request(
        "POST", "/payments/cards/charge", content=body,
        headers={"Content-Type": "application/json; charset=utf-8", "X-Request-ID": "x" * 32},
    )
    headers = {k: v for k, v in sent.headers.items() if k.lower() not in ("host", "content-length")}
    bare = httpx.Client(base_url=base_url)

    def bare_post() -> None:
        response = bare.post("/payments/cards/charge", content=body, headers=headers)
        assert response.status_code == 200 and response.content

    wall: dict[str, list[float]] = {"client": [], "bare": []}
    cpu: dict[str, list[float]] = {"client": [], "bare": []}
    for index in range(args.rounds):
        order = ["client", "bare"] if index % 2 == 0 else ["bare", "client"]
        for name in order:
            per_wall, per_cpu = _rate(slot, client_charge if name == "client" else bare_post)
            wall[name].append(per_wall)
            cpu[name].append(per_cpu)
    client_rate, bare_rate = max(cpu["client"]), max(cpu["bare"])
    ratio = client_rate / bare_rate
    wall_ratio = max(wall["client"]) / max(wall["bare"])
    connections = server.connections
    client.close()
    bare.close()
    server.shutdown()
    server.server_close()

    # For scale: the whole charge into the in-process sandbox, and the RSA decryption
    # that bounds any gateway.
    sandboxed = CloudPaymentsClient(PUBLIC_ID, API_SECRET, base_url="http://sandbox",
                                    transport=httpx.WSGITransport(app=app))
    private = sandbox.keys[4]
    ciphertexts = [private.public_key().encrypt(os.urandom(58), padding.PKCS1v15())
                   for _ in range(64)]

    def sandbox_charge() -> None:
        n[0] += 1
        result = sandboxed.charge(Decimal("100.00"), ip_address="203.0.113.7",
                                  cryptogram=packets[n[0] % 64], invoice_id="bench")
        assert isinstance(result, Transaction)

    def decrypt() -> None:
        n[0] += 1
        private.decrypt(ciphertexts[n[0] % 64], padding.PKCS1v15())

    scale = {"sandbox": 0.0, "decrypt": 0.0}
    for _ in range(5):
        scale["sandbox"] = max(scale["sandbox"], _rate(slot, sandbox_charge)[1])
        scale["decrypt"] = max(scale["decrypt"], _rate(slot, decrypt)[1])
    sandboxed.close()

    print(f"loopback HTTP/1.1, keep-alive ({connections} connections for "
          f"{args.rounds} interleaved rounds of each side)")
    print("                                   per CPU second          per wall second")
    print(f"bare httpx.Client.post:            {bare_rate:9.1f} ({1e6 / bare_rate:4.0f} µs)"
          f"        {max(wall['bare']):9.1f}")
    print(f"CloudPaymentsClient.charge:        {client_rate:9.1f} ({1e6 / client_rate:4.0f} µs)"
          f"        {max(wall['client']):9.1f}")
    print(f"client overhead per call:          {1e6 / client_rate - 1e6 / bare_rate:9.1f} µs")
    print(f"ratio client/bare:                 {ratio:9.3f} (target ≥ {TARGET}; "
          f"wall-clock {wall_ratio:.3f})")
    print("for scale:")
    print(f"  client → in-process sandbox charge {scale['sandbox']:9.1f} payments/s per CPU s "
          "(WSGITransport; the sandbox decrypts the cryptogram)")
    print(f"  bare RSA-2048 decrypt              {scale['decrypt']:9.1f} ops/s per CPU s")
    print("PASS" if ratio >= TARGET and connections == 2 else "FAIL")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
