"""Several instances: two shop processes share one PostgreSQL database and one
sandbox process (``checkout-kit sandbox --state``), as behind a load balancer.

A 3-D Secure payment starts on one instance and the bank returns the buyer to the
other; concurrent submits of one payment go to both. Each ends with one charge, and
the ledger agrees with the sandbox's transaction list.

Runs when CHECKOUT_KIT_TEST_DATABASE_URL is set; each test gets a schema of its own.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from checkout_kit import cryptogram
from checkout_kit.client import CloudPaymentsClient
from checkout_kit.ledger import Ledger, PaymentStatus, upgrade
from checkout_kit.sandbox import DEFAULT_PUBLIC_ID, DEFAULT_SECRET

from .buyer import ENGLISH, assert_no_card_data, pay_button, pay_with_card, watch_origins

PG_URL = os.environ.get("CHECKOUT_KIT_TEST_DATABASE_URL")
pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not PG_URL, reason="CHECKOUT_KIT_TEST_DATABASE_URL is not set")]

ROOT = Path(__file__).resolve().parents[2]
INSTANCE = Path(__file__).with_name("shop_instance.py")
SECRET_KEY = "one secret for every instance"
NO_3DS = "4000000000003055"
WITH_3DS = "4242424242424242"
CVV = "739"


@dataclass
class Process:
    proc: subprocess.Popen[str]
    url: str

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            self.proc.kill()
            self.proc.wait()


def spawn(args: list[str], banner: str) -> Process:
    """Start a server process; its URL is read from the ``banner`` line it prints."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        found = re.search(banner + r"\s+(http://127\.0\.0\.1:\d+)", line)
        if found:
            # Keep reading, so that a chatty server never blocks on a full pipe.
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return Process(proc, found.group(1))
    proc.wait()
    pytest.fail(f"{args} exited without its banner:\n" + "".join(seen))


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL schema with the ledger's tables."""
    assert PG_URL
    schema = "e2e_instances_" + secrets.token_hex(6)
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    upgrade(rendered)
    try:
        yield rendered
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@dataclass
class Site:
    """Two shop instances, their sandbox, and the ledger they share."""

    a: str
    b: str
    sandbox: str
    ledger: Ledger

    def transactions(self, invoice: str) -> list[dict[str, Any]]:
        rows = httpx.get(f"{self.sandbox}/_sandbox/transactions", timeout=10).json()
        return [row for row in rows if row.get("InvoiceId") == invoice]

    def assert_ledger_matches_the_sandbox(self) -> None:
        """Every ledger payment names the sandbox's latest transaction for its invoice,
        with the same outcome; the sandbox has no charge the ledger does not know."""
        rows = httpx.get(f"{self.sandbox}/_sandbox/transactions", timeout=10).json()
        payments = self.ledger.list_payments(limit=100)
        assert payments
        known = {p.invoice_id for p in payments}
        assert {row["InvoiceId"] for row in rows} <= known
        for payment in payments:
            mine = [row for row in rows if row["InvoiceId"] == payment.invoice_id]
            completed = [row for row in mine if row["Status"] == "Completed"]
            if payment.status is PaymentStatus.SUCCEEDED:
                assert len(completed) == 1, mine
                assert str(payment.gateway_transaction_id) == str(completed[0]["TransactionId"])
                assert str(completed[0]["Amount"]) in ("321", "321.0", "321.00")
            else:
                assert completed == [], (payment, mine)


@pytest.fixture
def site(database: str, tmp_path: Path) -> Iterator[Site]:
    sandbox = spawn(["-m", "checkout_kit.cli", "sandbox", "--port", "0", "--state",
                     str(tmp_path / "sandbox.sqlite3")], "API base URL")
    shops: list[Process] = []
    ledger = Ledger(database)
    try:
        for _ in range(2):
            shops.append(spawn([str(INSTANCE), database, sandbox.url, DEFAULT_PUBLIC_ID,
                                DEFAULT_SECRET, SECRET_KEY], "listening"))
        yield Site(shops[0].url, shops[1].url, sandbox.url, ledger)
    finally:
        for process in [*shops, sandbox]:
            process.stop()
        ledger.engine.dispose()


def test_3ds_starts_on_one_instance_and_returns_on_the_other(browser: Any, site: Site) -> None:
    context = browser.new_context(extra_http_headers=ENGLISH, locale="en-US")
    context.set_default_timeout(20_000)
    page = context.new_page()
    sent = watch_origins(page, site.a, site.b)
    page.goto(f"{site.a}/buy/multi-3ds")
    payment_id = page.url.split("/")[-2]
    pay_with_card(page, WITH_3DS, cvv=CVV)
    pay_button(page).click()
    page.wait_for_url(f"{site.sandbox}/acs")
    term_url = page.locator("input[name=TermUrl]")
    assert term_url.input_value().startswith(site.a + "/")
    # The load balancer sends the bank's POST to the other instance.
    term_url.evaluate("(input, urls) => { input.value = input.value.replace(urls[0], urls[1]); }",
                      [site.a, site.b])
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{site.b}/checkout/payments/{payment_id}")
    assert page.get_by_role("heading", level=1).text_content() == "Payment successful"
    context.close()
    assert {s.path for s in sent} >= {f"/checkout/pay/{payment_id}/form",
                                      f"/checkout/payments/{payment_id}"}
    assert_no_card_data(sent, WITH_3DS, CVV)
    payment = site.ledger.get(payment_id)
    assert payment.status is PaymentStatus.SUCCEEDED
    assert [a.operation for a in site.ledger.attempts(payment_id)] == ["charge", "post3ds"]
    assert [row["Status"] for row in site.transactions("multi-3ds")] == ["Completed"]
    site.assert_ledger_matches_the_sandbox()


def test_concurrent_submits_to_both_instances_charge_once(site: Site) -> None:
    # The buyer's session and form, from instance A.
    buyer = httpx.Client(base_url=site.a, headers=ENGLISH, timeout=30)
    form = buyer.get("/buy/multi-race", follow_redirects=True)
    assert form.status_code == 200
    payment_path = form.url.path
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text)
    assert token is not None
    key = CloudPaymentsClient(DEFAULT_PUBLIC_ID, DEFAULT_SECRET,
                              base_url=site.sandbox).get_public_key()
    packet = cryptogram.build(NO_3DS, "12/30", "123", DEFAULT_PUBLIC_ID, key=key.pem,
                              key_version=key.version)
    fields = {"csrf_token": token.group(1), "cryptogram": packet, "name": "IVAN PETROV",
              "email": ""}
    # A slow gateway keeps the first charge in flight while the others arrive.
    httpx.post(f"{site.sandbox}/_sandbox/faults", timeout=10,
               json={"kind": "latency", "path": "/payments/cards/charge", "times": None,
                     "latency_ms": 500}).raise_for_status()
    go = threading.Barrier(6)
    answers: list[httpx.Response] = []

    def submit(base: str) -> None:
        with httpx.Client(base_url=base, cookies=buyer.cookies, headers=ENGLISH,
                          timeout=30) as client:
            go.wait()
            answers.append(client.post(payment_path, data=fields))

    threads = [threading.Thread(target=submit, args=(base,))
               for base in (site.a, site.b) * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    buyer.close()
    payment_id = payment_path.split("/")[-2]
    # Every submit, the charging one and the ones that found it under way, sends the
    # buyer to the result page.
    assert [(a.status_code, a.headers.get("location")) for a in answers] == [
        (303, f"/checkout/payments/{payment_id}")] * 6, [a.text[:300] for a in answers]
    result = httpx.get(f"{site.b}/checkout/payments/{payment_id}", headers=ENGLISH, timeout=30)
    assert 'data-result="success"' in result.text
    payment = site.ledger.get(payment_id)
    assert payment.status is PaymentStatus.SUCCEEDED
    assert [row["Status"] for row in site.transactions("multi-race")] == ["Completed"]
    site.assert_ledger_matches_the_sandbox()
