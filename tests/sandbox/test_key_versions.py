"""Several key versions at once: packets under each one pay, an unknown one declines."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from checkout_kit import cryptogram
from checkout_kit.client import CloudPaymentsClient
from checkout_kit.errors import PaymentDeclined
from checkout_kit.sandbox import Sandbox, create_sandbox_app, sandbox_of


@pytest.fixture(scope="module")
def two_keys() -> dict[int, bytes]:
    return {2: cryptogram.generate_key_pair(2048)[0], 4: cryptogram.generate_key_pair(2048)[0]}


@pytest.fixture
def sandbox(two_keys: dict[int, bytes]) -> Sandbox:
    return sandbox_of(create_sandbox_app(public_id="pk_keys", api_secret="s", keys=two_keys))


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[CloudPaymentsClient]:
    with CloudPaymentsClient("pk_keys", "s", base_url="http://sandbox",
                             transport=httpx.WSGITransport(app=sandbox.app)) as client:
        yield client


@pytest.mark.parametrize("version", [2, 4])
@pytest.mark.parametrize("fmt", ["01", "cloudcard", "cloudcard-ios"])
def test_every_configured_version_pays(
    sandbox: Sandbox, client: CloudPaymentsClient, version: int, fmt: str
) -> None:
    packet = sandbox.make_cryptogram("4000000000003055", format=fmt, key_version=version)
    assert cryptogram.parse(packet).key_version == version
    payment = client.charge(Decimal("10.00"), ip_address="127.0.0.1", cryptogram=packet)
    assert payment.status == "Completed"


def test_public_key_endpoint_names_the_current_version(client: CloudPaymentsClient) -> None:
    info = client.get_public_key()
    assert info.version == 4 and "BEGIN PUBLIC KEY" in info.pem


def test_a_packet_under_an_unknown_version_declines(
    sandbox: Sandbox, client: CloudPaymentsClient
) -> None:
    _, other_public = cryptogram.generate_key_pair(2048)
    packet = cryptogram.build("4000000000003055", "12/30", "123", "pk_keys",
                              key=other_public, key_version=7)
    with pytest.raises(PaymentDeclined) as info:
        client.charge(Decimal("10.00"), ip_address="127.0.0.1", cryptogram=packet)
    assert info.value.reason_code == 5030
    # Same version number, wrong key: the sandbox cannot open it either.
    wrong_key = cryptogram.build("4000000000003055", "12/30", "123", "pk_keys",
                                 key=other_public, key_version=2)
    with pytest.raises(PaymentDeclined) as info:
        client.charge(Decimal("10.00"), ip_address="127.0.0.1", cryptogram=wrong_key)
    assert info.value.reason_code == 5030
