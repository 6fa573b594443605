"""The demo's form-mode payment page under gunicorn, against a bare Flask route on the
same server; and a whole form-mode payment in Chromium.

    python benchmarks/bench_pages.py [--rounds 8] [--requests 300] [--payments 20]

The demo (``checkout-kit demo``'s app: shop, ledger on SQLite, sandbox mounted) runs
under gunicorn with two workers (``gthread``, so connections stay open), plus one
route, ``/bare``, that only returns a short text. Its instance folder is made first by
this script, so both workers open the same ledger, secret key and sandbox key.

**Throughput.** A load generator in this process keeps four keep-alive connections to
127.0.0.1 (one thread each) and sends a bounded number of GETs per round: the
payment page of one created payment (``/checkout/pay/<id>/form``: the ledger read,
the form and its CSRF token, the template in the page language, the security
headers) or ``/bare``. Rounds alternate, and which route goes first alternates
too, so both are measured under the same load. Reported: each route's requests per
second of wall-clock time (the median of its rounds), and per second of the two
workers' CPU time (from /proc; it holds steadier on a machine shared with other
work). Target: page ÷ bare ≥ 0.7, in wall-clock throughput.

**A whole payment in Chromium** (headless Debian Chromium), a card without 3-D
Secure, timed by the browser itself: the form page's load (navigation start to the
load event), the cryptogram (the click on Pay to the form's submission: checkout.js
validates and encrypts), the charge (the POST and its 303: the server charges the
sandbox), the result page (the redirect's end to its load event). The typing in
between is not counted. Median and p95 of each, over ``--payments`` payments after two
warm-up ones.

Prints the load average beside the figures, PASS/FAIL for the target, and exits 0.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask import Flask

from checkout_kit.shop import CheckoutKit
from checkout_kit.shop.demo import PRODUCT, create_demo_app
from checkout_kit.shop.state import state

TARGET = 0.7
CONNECTIONS = 4
WORKERS = 2
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
CARD = "4000000000003055"  # docs/sandbox.md: approved, no 3-D Secure
INSTANCE_ENV = "CHECKOUT_KIT_BENCH_INSTANCE"


def served_app() -> Flask:
    """What gunicorn serves: the demo plus ``/bare`` (gunicorn ``bench_pages:served_app()``)."""
    app = create_demo_app(os.environ[INSTANCE_ENV])

    @app.get("/bare")
    def bare() -> str:
        return "ok"

    return app


def prepare(instance: Path, payments: int) -> list[str]:
    """Make the instance folder (secret, sandbox key, ledger) and create payments;
    returns their ids."""
    app = create_demo_app(instance)
    kit = CheckoutKit()  # its methods act on the current app, which create_demo_app set up
    ids = []
    with app.app_context():
        for number in range(payments):
            payment = kit.create_payment(
                invoice_id=f"bench-{number}", amount=PRODUCT["price"],
                currency=PRODUCT["currency"], description=PRODUCT["title"])
            ids.append(payment.id)
    state(app).ledger.engine.dispose()
    state(app).client.close()
    return ids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gunicorn(instance: Path, port: int) -> subprocess.Popen[bytes]:
    here = Path(__file__).resolve().parent
    env = {**os.environ, INSTANCE_ENV: str(instance),
           "PYTHONPATH": os.pathsep.join([str(here.parent), str(here)])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--worker-class",
         "gthread", "--threads", str(CONNECTIONS), "--keep-alive", "30", "--bind",
         f"127.0.0.1:{port}", "--log-level", "warning", "bench_pages:served_app()"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited; run it by hand to see why")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            if _get_ok(port, "/bare") and _get_ok(port, "/"):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("gunicorn did not answer within 60 s")


def _get_ok(port: int, path: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    finally:
        conn.close()


def worker_cpu_seconds(master: int) -> float:
    """User + system CPU time of the master's children (the workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    total = 0
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def load_round(port: int, path: str, requests: int) -> float:
    """Send ``requests`` GETs over CONNECTIONS keep-alive connections; returns the
    wall-clock seconds."""
    per = [requests // CONNECTIONS + (1 if i < requests % CONNECTIONS else 0)
           for i in range(CONNECTIONS)]
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                   for _ in range(CONNECTIONS)]
    for conn in connections:  # connect (and warm up) outside the timed part
        conn.request("GET", path)
        conn.getresponse().read()
    failures: list[str] = []
    go = threading.Barrier(CONNECTIONS + 1)

    def run(conn: http.client.HTTPConnection, count: int) -> None:
        go.wait()
        for _ in range(count):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status != 200 or response.will_close:
                failures.append(f"{response.status} close={response.will_close}")

    threads = [threading.Thread(target=run, args=(conn, count))
               for conn, count in zip(connections, per, strict=True)]
    for thread in threads:
        thread.start()
    go.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    for conn in connections:
        conn.close()
    if failures:
        raise SystemExit(f"{path}: {len(failures)} bad answers, e.g. {failures[0]}")
    return elapsed


def throughput(port: int, master: int, page: str, rounds: int, requests: int
               ) -> dict[str, dict[str, float]]:
    wall: dict[str, list[float]] = {"page": [], "bare": []}
    cpu: dict[str, float] = {"page": 0.0, "bare": 0.0}
    paths = {"page": page, "bare": "/bare"}
    for number in range(rounds):
        order = ("page", "bare") if number % 2 == 0 else ("bare", "page")
        for name in order:
            before = worker_cpu_seconds(master)
            seconds = load_round(port, paths[name], requests)
            cpu[name] += worker_cpu_seconds(master) - before
            wall[name].append(requests / seconds)
    return {name: {"wall": statistics.median(wall[name]),
                   "cpu": requests * rounds / cpu[name] if cpu[name] else float("nan")}
            for name in wall}


NAVIGATION = "() => performance.getEntriesByType('navigation')[0].toJSON()"


def browser_payments(port: int, ids: list[str]) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    base = f"http://127.0.0.1:{port}"
    parts: dict[str, list[float]] = {"page load": [], "cryptogram": [], "charge": [],
                                     "result page": [], "whole": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=CHROMIUM_ARGS)
        for number, payment_id in enumerate(ids):
            context = browser.new_context(extra_http_headers={"Accept-Language": "en"})
            page = context.new_page()
            page.goto(f"{base}/checkout/pay/{payment_id}/form", wait_until="load")
            form_nav = page.evaluate(NAVIGATION)
            page.fill("#ck-number", CARD)
            page.fill("#ck-exp", "12/30")
            page.fill("#ck-cvv", "123")
            # The click's moment, kept across the navigation (same origin, same tab).
            page.evaluate("""() => document.getElementById('ck-pay').addEventListener(
                'click', () => { sessionStorage.clicked = performance.timeOrigin
                                 + performance.now(); }, {capture: true})""")
            page.click("#ck-pay")
            page.wait_for_url(f"**/checkout/payments/{payment_id}", wait_until="load")
            if page.get_attribute("h1", "data-result") != "success":
                raise SystemExit(f"payment {payment_id} did not succeed")
            result = page.evaluate(f"""() => {{ const nav = ({NAVIGATION})();
                return {{nav, origin: performance.timeOrigin,
                         clicked: Number(sessionStorage.clicked)}}; }}""")
            context.close()
            if number < 2:
                continue  # warm-up: first template renders, first key parse
            nav = result["nav"]
            if not nav["redirectEnd"]:
                raise SystemExit("the browser gave no redirect timing for the POST")
            timing = {
                "page load": form_nav["loadEventEnd"],
                "cryptogram": result["origin"] - result["clicked"],
                "charge": nav["redirectEnd"] - nav["redirectStart"],
                "result page": nav["loadEventEnd"] - nav["redirectEnd"],
            }
            timing["whole"] = sum(timing.values())
            for name, value in timing.items():
                parts[name].append(value)
        browser.close()
    return parts


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=300, help="requests per round")
    parser.add_argument("--payments", type=int, default=20,
                        help="payments timed in Chromium (after two warm-up ones)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-pages-") as folder:
        instance = Path(folder) / "instance"
        ids = prepare(instance, args.payments + 3)
        port = free_port()
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
              f"({os.cpu_count()} CPUs)")
        server = start_gunicorn(instance, port)
        try:
            page = f"/checkout/pay/{ids[0]}/form"
            rates = throughput(port, server.pid, page, args.rounds, args.requests)
            ratio = rates["page"]["wall"] / rates["bare"]["wall"]
            cpu_ratio = rates["page"]["cpu"] / rates["bare"]["cpu"]
            print(f"gunicorn, {WORKERS} workers (gthread), {CONNECTIONS} keep-alive "
                  f"connections, {args.rounds} rounds x {args.requests} requests per route")
            for name in ("page", "bare"):
                label = "payment page" if name == "page" else "bare route  "
                print(f"  {label}  {rates[name]['wall']:8.0f} req/s wall   "
                      f"{rates[name]['cpu']:8.0f} req per worker-CPU-second")
            verdict = "PASS" if ratio >= TARGET else "FAIL"
            print(f"  page / bare: {ratio:.2f} wall-clock (target >= {TARGET}: {verdict}), "
                  f"{cpu_ratio:.2f} in worker CPU time")
            parts = browser_payments(port, ids[1:args.payments + 3])
            print(f"a whole form-mode payment in Chromium, {len(parts['whole'])} payments (ms):")
            for name, values in parts.items():
                print(f"  {name:12s} median {statistics.median(values):7.1f}   "
                      f"p95 {p95(values):7.1f}")
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
