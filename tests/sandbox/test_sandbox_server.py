"""``checkout-kit sandbox`` as a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import click
import httpx
import pytest

from checkout_kit import cryptogram
from checkout_kit.client import CloudPaymentsClient
from checkout_kit.errors import UnknownOutcomeError
from checkout_kit.models import Transaction
from checkout_kit.sandbox import DEFAULT_SECRET
from checkout_kit.sandbox.cli import parse_key_option

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(
    tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes], request: pytest.FixtureRequest,
) -> Iterator[dict[str, str]]:
    key = tmp_path / "k.pem"
    key.write_bytes(cloudpayments_sandbox_keys[4])
    proc = subprocess.Popen(
        [sys.executable, "-c", "from checkout_kit.cli import main; main()", "sandbox",
         "--port", "0", "--public-id", "test_api_cli", "--api-secret", "cli-secret",
         "--key", f"4:{key}", "--state", str(tmp_path / "state.sqlite3"),
         *getattr(request, "param", ())],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)},
    )
    info: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("  ") and "  " in line.strip():
            name, _, value = line.strip().partition("  ")
            info[name.strip()] = value.strip()
        if "client" in info:
            break
    try:
        yield info
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sandbox_server_prints_credentials_and_serves(server: dict[str, str]) -> None:
    base = server["API base URL"]
    assert base.startswith("http://127.0.0.1:")
    assert server["Public ID"] == "test_api_cli" and server["API secret"] == "cli-secret"
    client = CloudPaymentsClient("test_api_cli", "cli-secret", base_url=base,
                                 sleep=lambda _s: None, max_retries=1)
    key = client.get_public_key()
    packet = cryptogram.build("4000000000003055", "12/35", "123", "test_api_cli",
                              key=key.pem, key_version=key.version)
    tx = client.charge(Decimal("10.00"), ip_address="127.0.0.1", cryptogram=packet,
                       invoice_id="cli-1")
    assert isinstance(tx, Transaction)
    # a dropped connection over a real socket is an unknown outcome too
    httpx.post(f"{base}/_sandbox/faults", json={"kind": "drop", "times": 2})
    with pytest.raises(UnknownOutcomeError):
        client.charge(Decimal("11.00"), ip_address="127.0.0.1", cryptogram=packet,
                      invoice_id="cli-2", request_id="cli-2")
    assert client.find_payment("cli-2").amount == Decimal("11.00")
    assert len(httpx.get(f"{base}/_sandbox/transactions").json()) == 2


def test_key_option_parsing(tmp_path: Path) -> None:
    pem = tmp_path / "k.pem"
    pem.write_bytes(b"PEM")
    assert parse_key_option([]) is None
    assert parse_key_option([f"4:{pem}", f"2:{pem}"]) == {4: b"PEM", 2: b"PEM"}
    for bad in ("4", "x:file", f"4:{tmp_path / 'missing.pem'}"):
        with pytest.raises(click.BadParameter):
            parse_key_option([bad])


TOKEN = "e2e-control-token-0001"


@pytest.mark.parametrize("server", [("--host", "0.0.0.0", "--expose", "--control-token", TOKEN)],
                         indirect=True)
def test_exposed_sandbox_needs_the_control_token(server: dict[str, str]) -> None:
    """Listening beyond loopback: the controls need the token; the Host rule holds."""
    assert server["control token"].startswith(TOKEN)
    port = server["API base URL"].rsplit(":", 1)[1]
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/_sandbox/clock").status_code == 401
    assert httpx.get(f"{base}/_sandbox/clock", headers={"X-Sandbox-Token": TOKEN}).status_code \
        == 200
    assert httpx.get(f"{base}/").status_code == 200  # the home page needs no token
    rebound = httpx.get(f"{base}/_sandbox/clock",
                        headers={"X-Sandbox-Token": TOKEN, "Host": f"evil.com:{port}"})
    assert rebound.status_code == 403
    assert "cli-secret" not in httpx.get(f"{base}/").text  # no secret shown when exposed
    # No notification to a port of the sandbox's own host.
    refused = httpx.post(f"{base}/site/notifications/Pay/update", auth=("test_api_cli",
                         "cli-secret"), json={"IsEnabled": True,
                                              "Address": f"http://127.0.0.1:{port}/_sandbox/run"})
    assert refused.json()["Success"] is False and "loopback" in refused.json()["Message"]


@pytest.mark.parametrize("server", [("--host", "0.0.0.0", "--expose", "--api-secret", "")],
                         indirect=True)
def test_exposed_sandbox_makes_its_own_secret(server: dict[str, str]) -> None:
    """Exposed with no secret of one's own: a random one, printed, and the published
    default credentials are refused."""
    secret = server["API secret"]
    assert secret not in ("", "cli-secret", DEFAULT_SECRET) and len(secret) >= 16
    port = server["API base URL"].rsplit(":", 1)[1]
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/payments/find"
    body = {"InvoiceId": "x"}
    assert httpx.post(url, auth=("test_api_cli", DEFAULT_SECRET), json=body).status_code == 401
    assert httpx.post(url, auth=("test_api_cli", secret), json=body).status_code == 200
