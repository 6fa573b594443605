"""Authentication, public-id endpoints, X-Request-ID replay and injected faults."""

from __future__ import annotations

import base64
import threading
import time
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from checkout_kit.client import CloudPaymentsClient
from checkout_kit.errors import AuthenticationError, RateLimitError, UnknownOutcomeError
from checkout_kit.models import Transaction, TransactionStatus
from checkout_kit.pytest_plugin import SANDBOX_BASE_URL
from checkout_kit.sandbox import Sandbox, create_sandbox_app, sandbox_of

IP = "203.0.113.7"


def _raw(sandbox: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=SANDBOX_BASE_URL, transport=httpx.WSGITransport(app=sandbox.app))


def _body(sandbox: Sandbox, **extra: object) -> dict[str, object]:
    return {"Amount": "10.00", "IpAddress": IP,
            "CardCryptogramPacket": sandbox.make_cryptogram("4000000000003055"), **extra}


def test_wrong_or_missing_credentials_get_401(cloudpayments_sandbox: Sandbox) -> None:
    with _raw(cloudpayments_sandbox) as http:
        for auth in (None, (cloudpayments_sandbox.public_id, "wrong"), ("someone", "x")):
            answer = http.post("/payments/get", json={"TransactionId": 1}, auth=auth)
            assert answer.status_code == 401
            assert answer.json() == {"Success": False, "Message": "Authentication failed"}
        answer = http.post("/payments/get", json={"TransactionId": 1},
                           headers={"Authorization": "Bearer abc"})
        assert answer.status_code == 401
    bad = CloudPaymentsClient(cloudpayments_sandbox.public_id, "nope", base_url=SANDBOX_BASE_URL,
                              transport=httpx.WSGITransport(app=cloudpayments_sandbox.app))
    with pytest.raises(AuthenticationError):
        bad.test()


def test_charge_with_public_id_only_and_cors(cloudpayments_sandbox: Sandbox) -> None:
    with _raw(cloudpayments_sandbox) as http:
        pre = http.options("/payments/cards/charge", headers={
            "Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == "*"
        assert "X-Request-ID" in pre.headers["Access-Control-Allow-Headers"]
        by_query = http.post("/payments/cards/charge",
                             params={"publicId": cloudpayments_sandbox.public_id},
                             json={**_body(cloudpayments_sandbox), "scenario": 7})
        assert by_query.json()["Success"] is True
        assert by_query.headers["Access-Control-Allow-Origin"] == "*"
        by_body = http.post("/payments/cards/auth", json=_body(
            cloudpayments_sandbox, PublicId=cloudpayments_sandbox.public_id),
            headers={"MobileSDKSource": "Cloudpayments SDK iOS (Default form)"})
        assert by_body.json()["Model"]["Status"] == "Authorized"
        foreign = http.post("/payments/cards/charge", params={"publicId": "pk_other"},
                            json=_body(cloudpayments_sandbox))
        assert foreign.status_code == 401
        # the merchant-only endpoints do not take a public id
        refund = http.post("/payments/refund", params={"publicId": cloudpayments_sandbox.public_id},
                           json={"TransactionId": 1, "Amount": 1})
        assert refund.status_code == 401


def test_public_key_endpoint(cloudpayments_client: CloudPaymentsClient,
                             cloudpayments_sandbox: Sandbox) -> None:
    info = cloudpayments_client.get_public_key()
    assert info.version == 4 and info.pem == cloudpayments_sandbox.public_key_pem()
    with _raw(cloudpayments_sandbox) as http:
        answer = http.get("/payments/publickey")
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
        assert set(answer.json()) == {"Pem", "Version"}


def test_x_request_id_replays_the_first_answer_for_an_hour(
    cloudpayments_sandbox: Sandbox,
) -> None:
    auth = (cloudpayments_sandbox.public_id, cloudpayments_sandbox.api_secret)
    body = _body(cloudpayments_sandbox)
    with _raw(cloudpayments_sandbox) as http:
        first = http.post("/payments/cards/charge", json=body, auth=auth,
                          headers={"X-Request-ID": "order-42"})
        again = http.post("/payments/cards/charge", json=body, auth=auth,
                          headers={"X-Request-ID": "order-42"})
        assert again.content == first.content
        assert again.headers["X-Sandbox-Replayed"] == "true"
        assert len(cloudpayments_sandbox.state.transactions) == 1
        cloudpayments_sandbox.advance(timedelta(minutes=61))
        later = http.post("/payments/cards/charge", json=body, auth=auth,
                          headers={"X-Request-ID": "order-42"})
        assert later.json()["Model"]["TransactionId"] != first.json()["Model"]["TransactionId"]
        other = http.post("/payments/cards/charge", json=body, auth=auth,
                          headers={"X-Request-ID": "order-43"})
        assert other.json()["Model"]["TransactionId"] not in (
            first.json()["Model"]["TransactionId"], later.json()["Model"]["TransactionId"])


def test_reads_are_not_replayed(cloudpayments_sandbox: Sandbox) -> None:
    """Only mutating calls store their answer under X-Request-ID: a read with one
    answers the state of now, and stores nothing."""
    auth = (cloudpayments_sandbox.public_id, cloudpayments_sandbox.api_secret)
    headers = {"X-Request-ID": "read-1"}
    with _raw(cloudpayments_sandbox) as http:
        for path, body in (("/payments/find", {"InvoiceId": "inv-read"}),
                           ("/v2/payments/find", {"InvoiceId": "inv-read"}),
                           ("/subscriptions/find", {"accountId": "acc-read"}),
                           ("/payments/tokens/list", {})):
            http.post(path, json=body, auth=auth, headers=headers)
        assert http.post("/payments/find", json={"InvoiceId": "inv-read"}, auth=auth,
                         headers=headers).json()["Success"] is False
        http.post("/payments/cards/charge", json=_body(cloudpayments_sandbox,
                                                      InvoiceId="inv-read"), auth=auth)
        found = http.post("/payments/find", json={"InvoiceId": "inv-read"}, auth=auth,
                          headers=headers)
        assert found.json()["Success"] is True and "X-Sandbox-Replayed" not in found.headers
    assert not cloudpayments_sandbox.state.idempotency


def test_dropped_connection_is_an_unknown_outcome_and_reconciles(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    cloudpayments_sandbox.faults.add("drop", path="/payments/cards/charge", times=4)
    packet = cloudpayments_sandbox.make_cryptogram("4000000000003055")
    with pytest.raises(UnknownOutcomeError) as exc:
        cloudpayments_client.charge(Decimal("10"), ip_address=IP, cryptogram=packet,
                                    invoice_id="U-1", request_id="pay-U-1")
    assert exc.value.request_id == "pay-U-1"
    # the payment was made exactly once despite the client's retries
    assert len(cloudpayments_sandbox.state.transactions) == 1
    found = cloudpayments_client.find_payment("U-1")
    assert found.status is TransactionStatus.COMPLETED
    again = cloudpayments_client.charge(Decimal("10"), ip_address=IP, cryptogram=packet,
                                        invoice_id="U-1", request_id="pay-U-1")
    assert isinstance(again, Transaction) and again.transaction_id == found.transaction_id


def test_injected_5xx_and_429_are_retried_with_the_same_request_id(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    cloudpayments_sandbox.faults.add("status", status=503, path="/payments/cards/charge")
    cloudpayments_sandbox.faults.add("status", status=429, path="/payments/cards/charge",
                                     retry_after=0)
    tx = cloudpayments_client.charge(Decimal("10"), ip_address=IP,
                                     cryptogram=cloudpayments_sandbox.make_cryptogram("4000000000003055"))
    assert isinstance(tx, Transaction)
    assert len(cloudpayments_sandbox.state.transactions) == 1
    assert cloudpayments_sandbox.faults.list() == []
    cloudpayments_sandbox.faults.add("status", status=429, times=None, path="/payments/get")
    with pytest.raises(RateLimitError):
        cloudpayments_client.get_payment(tx.transaction_id)
    cloudpayments_sandbox.faults.clear()
    assert cloudpayments_client.get_payment(tx.transaction_id).transaction_id == tx.transaction_id


def test_latency_fault_and_concurrency_cap(cloudpayments_sandbox: Sandbox) -> None:
    cloudpayments_sandbox.faults.add("latency", latency_ms=30)
    cloudpayments_sandbox.settings.max_concurrent_requests = 0
    auth = (cloudpayments_sandbox.public_id, cloudpayments_sandbox.api_secret)
    with _raw(cloudpayments_sandbox) as http:
        started = time.perf_counter()
        answer = http.post("/test", auth=auth)
        assert time.perf_counter() - started >= 0.03
        assert answer.status_code == 429
    cloudpayments_sandbox.settings.max_concurrent_requests = 5
    with _raw(cloudpayments_sandbox) as http:
        assert http.post("/test", auth=auth).json()["Success"] is True


def test_unknown_paths_and_methods_answer_the_envelope(cloudpayments_sandbox: Sandbox) -> None:
    auth = (cloudpayments_sandbox.public_id, cloudpayments_sandbox.api_secret)
    with _raw(cloudpayments_sandbox) as http:
        missing = http.post("/payments/nothing", auth=auth)
        assert missing.status_code == 404 and missing.json()["Success"] is False
        wrong = http.get("/payments/get", auth=auth)
        assert wrong.status_code == 405 and wrong.json()["Success"] is False
        huge = http.post("/payments/get", auth=auth, content=b"{" + b" " * (2 << 20) + b"}",
                         headers={"Content-Type": "application/json"})
        assert huge.status_code == 413 and huge.json()["Success"] is False


def test_a_request_id_in_flight_is_never_run_twice_however_many_ids_come_between(
    cloudpayments_sandbox_keys: dict[int, bytes],
) -> None:
    entered, release = threading.Semaphore(0), threading.Event()

    def shop(request: httpx.Request) -> httpx.Response:  # a slow Check holds the first charge
        entered.release()
        release.wait(10)
        return httpx.Response(200, json={"code": 0})

    app = create_sandbox_app(keys=cloudpayments_sandbox_keys,
                             notification_transport=httpx.MockTransport(shop))
    sandbox = sandbox_of(app)
    sandbox.configure_notification("Check", "http://shop.test/check")
    auth = (sandbox.public_id, sandbox.api_secret)
    body = _body(sandbox)
    answers: list[httpx.Response] = []

    def charge() -> None:
        with httpx.Client(base_url=SANDBOX_BASE_URL, transport=httpx.WSGITransport(app=app),
                          auth=auth) as http:
            answers.append(http.post("/payments/cards/charge", json=body,
                                     headers={"X-Request-ID": "order-77"}))

    first = threading.Thread(target=charge)
    first.start()
    assert entered.acquire(timeout=10)
    web = app.test_client()
    basic = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    for n in range(10_050):  # more ids than any table of locks may keep
        web.post("/payments/void", json={"TransactionId": 1},  # mutating: its id is kept
                 headers={"Authorization": basic, "X-Request-ID": f"other-{n}"})
    second = threading.Thread(target=charge)
    second.start()
    time.sleep(0.3)  # the repeat waits for the first instead of running beside it
    release.set()
    first.join(10)
    second.join(10)
    assert len(sandbox.state.transactions) == 1
    assert sorted(a.headers.get("X-Sandbox-Replayed", "") for a in answers) == ["", "true"]
    assert answers[0].content == answers[1].content
    assert sandbox.request_locks.in_use() == 0  # nothing in flight, nothing kept


def test_unknown_pages_are_404_not_500(cloudpayments_sandbox: Sandbox,
                                       caplog: pytest.LogCaptureFixture) -> None:
    web = cloudpayments_sandbox.app.test_client()
    for path in ("/apple-touch-icon.png", "/nothing/here", "/acs/nothing"):
        assert web.get(path).status_code == 404
    assert web.put("/acs").status_code == 405
    missing = web.get("/_sandbox/nothing")
    assert missing.status_code == 404
    assert missing.get_json() == {"Success": False, "Message": "Not Found"}
    wrong = web.delete("/_sandbox/clock")
    assert wrong.status_code == 405 and wrong.get_json()["Success"] is False
    assert "GET" in wrong.headers["Allow"]
    assert web.get("/_sandbox/transactions/x").status_code == 404
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_public_id_card_payments_take_the_callers_address_as_ip(
    cloudpayments_sandbox: Sandbox,
) -> None:
    body = _body(cloudpayments_sandbox)
    del body["IpAddress"]
    public = {"publicId": cloudpayments_sandbox.public_id}
    with _raw(cloudpayments_sandbox) as http:
        for path in ("/payments/cards/charge", "/payments/cards/auth"):
            answer = http.post(path, params=public, json=body).json()
            assert answer["Success"] is True and answer["Model"]["IpAddress"] == "127.0.0.1"
        given = http.post("/payments/cards/charge", params=public,
                          json={**body, "IpAddress": IP}).json()
        assert given["Model"]["IpAddress"] == IP
        # with the API secret (a merchant's server) it stays required, as the gateway has it
        merchant = http.post("/payments/cards/charge", json=body, auth=(
            cloudpayments_sandbox.public_id, cloudpayments_sandbox.api_secret)).json()
        assert merchant == {"Success": False, "Message": "IpAddress is required"}
