"""CloudPaymentsClient against httpx.MockTransport: request shapes, answer shapes and
every fault path (retries, idempotency keys, unknown outcomes)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import http.server
import inspect
import json
import re
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkout_kit import jsoncodec
from checkout_kit.client import AsyncCloudPaymentsClient, CloudPaymentsClient
from checkout_kit.client._async import CANCEL_GRACE
from checkout_kit.errors import (
    APIConnectionError,
    AuthenticationError,
    CheckoutKitError,
    GatewayError,
    InvalidRequestError,
    MoneyError,
    PaymentDeclined,
    RateLimitError,
    RequestRejectedError,
    ServerError,
    UnknownOutcomeError,
)
from checkout_kit.models import (
    CardToken,
    NotificationSettings,
    Order,
    PublicKeyInfo,
    Refund,
    Subscription,
    ThreeDSChallenge,
    Transaction,
    TrInitiator,
)
from checkout_kit.reasons import ReasonCode

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "api_responses.json").read_text("utf-8"),
    parse_float=Decimal,
)["responses"]

T = TypeVar("T")
OK_TX = VECTORS["auth_accepted"]["body"]
PUBLIC_ID, SECRET = "pk_test_0123", "s3cr3t-api-key"


# --- a scripted fake gateway --------------------------------------------------------------

Step = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def reply(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        content=jsoncodec.dumps_bytes(body),
        headers={"Content-Type": "application/json", **headers},
    )


@dataclass
class Gateway:
    """Answers each request with the next scripted step (the last one repeats)."""

    steps: list[Step]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps[min(len(self.requests), len(self.steps)) - 1]
        if isinstance(step, Exception):
            raise type(step)(str(step), request=request)  # type: ignore[call-arg]
        if callable(step) and not isinstance(step, httpx.Response):
            return step(request)
        return step

    @property
    def request_ids(self) -> list[str | None]:
        return [r.headers.get("X-Request-ID") for r in self.requests]

    def body(self, n: int = 0) -> Any:
        return json.loads(self.requests[n].content, parse_float=Decimal)


class EventLoopThread:
    """An event loop of its own on a thread of its own: async clients run there, so
    that a loop already running in the test's thread (Playwright's, in tests/e2e) is
    no obstacle."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """``coroutine`` run to completion on a fresh event loop of its own."""
    runner = EventLoopThread()
    try:
        return runner.run(coroutine)
    finally:
        runner.close()


class AsyncDriver:
    """An AsyncCloudPaymentsClient driven from plain test code: every coroutine method
    runs to completion on one event loop, so a test reads the same for both clients."""

    def __init__(self, client: AsyncCloudPaymentsClient, runner: EventLoopThread) -> None:
        self.client = client
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        return lambda *args, **kwargs: self._runner.run(attr(*args, **kwargs))


@dataclass
class Harness:
    gateway: Gateway
    client: Any  # a CloudPaymentsClient, or an AsyncDriver of an AsyncCloudPaymentsClient
    sleeps: list[float]


MakeHarness = Callable[..., Harness]


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    """Which client a test runs against: every harness test runs against both."""
    return str(request.param)


@pytest.fixture
def harness(flavour: str) -> Iterator[MakeHarness]:
    """``harness(*steps, **client_options)``: a client of ``flavour`` on a scripted
    gateway, with its sleeps recorded instead of slept."""
    runner = EventLoopThread()

    def make(*steps: Step, **kw: Any) -> Harness:
        gateway = Gateway(list(steps))
        sleeps: list[float] = []
        kw.setdefault("random", lambda: 1.0)  # jitter factor 1.0: delays are backoff * 2**n
        transport = httpx.MockTransport(gateway)
        if flavour == "sync":
            client = CloudPaymentsClient(
                PUBLIC_ID, SECRET, transport=transport, sleep=sleeps.append, **kw
            )
            return Harness(gateway, client, sleeps)

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)

        aclient = AsyncCloudPaymentsClient(
            PUBLIC_ID, SECRET, transport=transport, sleep=sleep, **kw
        )
        return Harness(gateway, AsyncDriver(aclient, runner), sleeps)

    yield make
    runner.close()


# --- every method: path, body keys, key header --------------------------------------------


@dataclass(frozen=True)
class Call:
    invoke: Callable[[CloudPaymentsClient], Any]
    path: str
    keys: frozenset[str]
    mutating: bool
    http_method: str = "POST"


START = datetime(2030, 4, 15, 3, 0, tzinfo=timezone(timedelta(hours=3)))
CARD_KEYS = frozenset(
    {
        "Amount",
        "Currency",
        "IpAddress",
        "CardCryptogramPacket",
        "Name",
        "PaymentUrl",
        "InvoiceId",
        "Description",
        "CultureName",
        "AccountId",
        "Email",
        "Payer",
        "JsonData",
        "SaveCard",
    }
)
TOKEN_KEYS = frozenset(
    {
        "Amount",
        "Currency",
        "AccountId",
        "Token",
        "TrInitiatorCode",
        "PaymentScheduled",
        "InvoiceId",
        "Description",
        "IpAddress",
        "Email",
        "Payer",
        "JsonData",
    }
)


def _card(method: str) -> Callable[[CloudPaymentsClient], Any]:
    return lambda c: getattr(c, method)(
        Decimal("10"),
        ip_address="123.123.123.123",
        cryptogram="01492500008719030128SM",
        name="CARDHOLDER NAME",
        payment_url="https://shop.example",
        invoice_id="1234567",
        description="Оплата товаров",
        culture_name="ru-RU",
        account_id="user_x",
        email="user@example.com",
        payer={"Phone": "+71234567890"},
        json_data={"k": [1, "v"]},
        save_card=True,
    )


def _token(method: str) -> Callable[[CloudPaymentsClient], Any]:
    return lambda c: getattr(c, method)(
        Decimal("100"),
        account_id="user_x",
        token="tk_255c42192323f2e09ea17635302c3",
        tr_initiator_code=0,
        payment_scheduled=True,
        invoice_id="1234567",
        description="d",
        ip_address="1.2.3.4",
        email="user@example.com",
        payer={"Phone": "+71234567890"},
        json_data={"a": 1},
    )


CALLS: dict[str, Call] = {
    "test": Call(lambda c: c.test(), "/test", frozenset(), False),
    "charge": Call(_card("charge"), "/payments/cards/charge", CARD_KEYS, True),
    "auth": Call(_card("auth"), "/payments/cards/auth", CARD_KEYS, True),
    "post3ds": Call(
        lambda c: c.post3ds("891463508", "eyJQYVJlcyI6MX0="),
        "/payments/cards/post3ds",
        frozenset({"TransactionId", "PaRes"}),
        True,
    ),
    "charge_token": Call(_token("charge_token"), "/payments/tokens/charge", TOKEN_KEYS, True),
    "auth_token": Call(_token("auth_token"), "/payments/tokens/auth", TOKEN_KEYS, True),
    "confirm": Call(
        lambda c: c.confirm(455, Decimal("65.98"), json_data={"r": 1}),
        "/payments/confirm",
        frozenset({"TransactionId", "Amount", "JsonData"}),
        True,
    ),
    "void": Call(lambda c: c.void(455), "/payments/void", frozenset({"TransactionId"}), True),
    "refund": Call(
        lambda c: c.refund(455, 100),
        "/payments/refund",
        frozenset({"TransactionId", "Amount"}),
        True,
    ),
    "get_payment": Call(
        lambda c: c.get_payment(897749645), "/payments/get", frozenset({"TransactionId"}), False
    ),
    "find_payment": Call(
        lambda c: c.find_payment("1234567"), "/payments/find", frozenset({"InvoiceId"}), False
    ),
    "find_operation": Call(
        lambda c: c.find_operation("1234567"), "/v2/payments/find", frozenset({"InvoiceId"}),
        False,
    ),
    "list_payments": Call(
        lambda c: c.list_payments(date(2014, 8, 9), timezone="MSK"),
        "/payments/list",
        frozenset({"Date", "TimeZone"}),
        False,
    ),
    "list_payments_v2": Call(
        lambda c: c.list_payments_v2(
            START,
            START + timedelta(days=1),
            page=2,
            statuses=["Completed", "Declined"],
            timezone="MSK",
        ),
        "/v2/payments/list",
        frozenset({"CreatedDateGte", "CreatedDateLte", "PageNumber", "TimeZone", "Statuses"}),
        False,
    ),
    "list_tokens": Call(
        lambda c: c.list_tokens(3), "/payments/tokens/list", frozenset({"PageNumber"}), False
    ),
    "create_subscription": Call(
        lambda c: c.create_subscription(
            token="tk_1",
            account_id="user_x",
            amount=Decimal("399"),
            description="monthly",
            email="user@example.com",
            start_date=START,
            interval="Month",
            period=1,
            max_periods=12,
            customer_receipt={"Items": []},
            culture_name="ru-RU",
        ),
        "/subscriptions/create",
        frozenset(
            {
                "Token",
                "AccountId",
                "Description",
                "Email",
                "Amount",
                "Currency",
                "RequireConfirmation",
                "StartDate",
                "Interval",
                "Period",
                "MaxPeriods",
                "CustomerReceipt",
                "CultureName",
            }
        ),
        True,
    ),
    "get_subscription": Call(
        lambda c: c.get_subscription("sc_8cf8a9338fb8ebf7202b08d09c938"),
        "/subscriptions/get",
        frozenset({"Id"}),
        False,
    ),
    "find_subscriptions": Call(
        lambda c: c.find_subscriptions("user_x"),
        "/subscriptions/find",
        frozenset({"accountId"}),
        False,
    ),
    "update_subscription": Call(
        lambda c: c.update_subscription(
            "sc_3ffc", description="изменение", amount=Decimal("499"), period=2, start_date=START
        ),
        "/subscriptions/update",
        frozenset({"Id", "Description", "Amount", "Period", "StartDate"}),
        True,
    ),
    "cancel_subscription": Call(
        lambda c: c.cancel_subscription("sc_cc67"), "/subscriptions/cancel", frozenset({"Id"}), True
    ),
    "create_order": Call(
        lambda c: c.create_order(
            Decimal("10.0"),
            description="Оплата",
            email="client@test.local",
            require_confirmation=True,
            send_email=False,
        ),
        "/orders/create",
        frozenset(
            {"Amount", "Currency", "Description", "Email", "RequireConfirmation", "SendEmail"}
        ),
        True,
    ),
    "cancel_order": Call(
        lambda c: c.cancel_order("f2K8LV6reGE9WBFn"), "/orders/cancel", frozenset({"Id"}), True
    ),
    "get_notification_settings": Call(
        lambda c: c.get_notification_settings("Pay"),
        "/site/notifications/Pay/get",
        frozenset(),
        False,
    ),
    "update_notification_settings": Call(
        lambda c: c.update_notification_settings(
            "Pay", is_enabled=True, address="https://shop/cp", http_method="POST"
        ),
        "/site/notifications/Pay/update",
        frozenset({"IsEnabled", "Address", "HttpMethod", "Encoding", "Format"}),
        True,
    ),
    "get_public_key": Call(
        lambda c: c.get_public_key(), "/payments/publickey", frozenset(), False, "GET"
    ),
}

# A plausible successful answer per method, for the request-shape tests.
ANSWER_FOR: dict[str, str] = {}
for _name, _vector in VECTORS.items():
    if _vector["expect"]["kind"] not in ("rejected", "declined"):
        ANSWER_FOR.setdefault(_vector["method"], _name)
ANSWER_FOR["charge"] = ANSWER_FOR["charge_token"] = ANSWER_FOR["auth_token"] = "auth_accepted"
ANSWER_FOR["find_payment"] = ANSWER_FOR["find_operation"] = "get_completed"


def test_every_method_is_covered() -> None:
    # Besides the calls: closing, and the worst-case call time (a ledger's stale_after
    # must exceed it).
    public = {n for n in vars(CloudPaymentsClient) if not n.startswith("_")}
    assert public - {"close", "worst_case_seconds"} == set(CALLS)
    public = {n for n in vars(AsyncCloudPaymentsClient) if not n.startswith("_")}
    assert public - {"aclose", "worst_case_seconds"} == set(CALLS)


def test_the_worst_case_call_counts_every_attempt_and_wait() -> None:
    sync = CloudPaymentsClient("pk", "secret", timeout=10, max_retries=2, max_backoff=5,
                               max_retry_after=20)
    assert sync.worst_case_seconds == 10 * 3 + 20 * 2
    sync.close()
    asynchronous = AsyncCloudPaymentsClient("pk", "secret", timeout=10, max_retries=0)
    assert asynchronous.worst_case_seconds == 10 + CANCEL_GRACE


@pytest.mark.parametrize("name", sorted(CALLS))
def test_both_clients_have_the_same_signatures(name: str) -> None:
    sync = inspect.signature(getattr(CloudPaymentsClient, name))
    asynchronous = inspect.signature(getattr(AsyncCloudPaymentsClient, name))
    assert sync == asynchronous and next(iter(sync.parameters)) == "self"
    assert inspect.iscoroutinefunction(getattr(AsyncCloudPaymentsClient, name))
    assert getattr(CloudPaymentsClient, name).__doc__


@pytest.mark.parametrize("name", sorted(CALLS))
def test_method_hits_its_path_with_its_body(harness: MakeHarness, name: str) -> None:
    call = CALLS[name]
    h = harness(reply(VECTORS[ANSWER_FOR[name]]["body"]))
    call.invoke(h.client)
    (request,) = h.gateway.requests
    assert request.method == call.http_method
    assert request.url.path == call.path
    assert request.url.host == "api.cloudpayments.ru"
    expected_auth = base64.b64encode(f"{PUBLIC_ID}:{SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected_auth}"
    if call.http_method == "POST":
        assert request.headers["Content-Type"].startswith("application/json")
        assert set(h.gateway.body()) == call.keys
    # Mutating calls always carry a key; reads need none.
    assert (request.headers.get("X-Request-ID") is not None) is call.mutating


def test_request_values_are_the_api_field_values(harness: MakeHarness) -> None:
    h = harness(reply(OK_TX))
    CALLS["charge_token"].invoke(h.client)
    body = h.gateway.body()
    assert body["TrInitiatorCode"] == 0 and body["PaymentScheduled"] == 1
    assert type(body["TrInitiatorCode"]) is int
    assert body["Amount"] == Decimal("100.00") and body["Currency"] == "RUB"

    h = harness(reply(VECTORS["subscription_create"]["body"]))
    CALLS["create_subscription"].invoke(h.client)
    body = h.gateway.body()
    # 03:00 at +03:00 is midnight UTC; StartDate is UTC without a suffix (Docs example).
    assert body["StartDate"] == "2030-04-15T00:00:00"
    assert body["Interval"] == "Month" and body["RequireConfirmation"] is False

    h = harness(reply(VECTORS["list_period"]["body"]))
    CALLS["list_payments_v2"].invoke(h.client)
    body = h.gateway.body()
    assert body["CreatedDateGte"] == "2030-04-15T03:00:00+03:00"
    assert body["PageNumber"] == 2 and body["Statuses"] == ["Completed", "Declined"]

    h = harness(reply(VECTORS["list_day"]["body"]))
    CALLS["list_payments"].invoke(h.client)
    assert h.gateway.body() == {"Date": "2014-08-09", "TimeZone": "MSK"}


# --- answers, from the vectors ------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _check_fields(obj: Any, expected: dict[str, Any]) -> None:
    for key, want in expected.items():
        if key.startswith("_"):  # a note for the reader
            continue
        got = getattr(obj, key)
        if isinstance(got, datetime) or (got is None and key.endswith(("_at", "_date"))):
            got = _iso(got)
        elif isinstance(got, Decimal):
            got = str(got)
        assert got == want, key


LIST_KINDS = {"transactions": Transaction, "tokens": CardToken, "subscriptions": Subscription}
ONE_KINDS = {
    "transaction": Transaction,
    "3ds": ThreeDSChallenge,
    "refund": Refund,
    "subscription": Subscription,
    "order": Order,
    "notification_settings": NotificationSettings,
    "public_key": PublicKeyInfo,
}


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_answer_vectors(harness: MakeHarness, name: str) -> None:
    vector = VECTORS[name]
    expect = dict(vector["expect"])
    kind = expect.pop("kind")
    h = harness(reply(vector["body"]))
    invoke = CALLS[vector["method"]].invoke
    if kind == "rejected":
        with pytest.raises(RequestRejectedError) as rejected:
            invoke(h.client)
        assert rejected.value.message == expect["message"]
    elif kind == "declined":
        with pytest.raises(PaymentDeclined) as declined:
            invoke(h.client)
        exc = declined.value
        assert exc.reason_code == expect["reason_code"]
        assert isinstance(exc.reason_code, ReasonCode)
        assert exc.reason == expect["reason"]
        assert exc.cardholder_message == expect["cardholder_message"]
        assert exc.request_id == h.gateway.request_ids[0] is not None
        if expect["transaction_id"] is None:
            assert exc.transaction is None
        else:
            assert isinstance(exc.transaction, Transaction)
            assert exc.transaction.transaction_id == expect["transaction_id"]
            _check_fields(
                exc.transaction,
                {
                    k: v
                    for k, v in expect.items()
                    if k not in ("reason_code", "reason", "cardholder_message")
                },
            )
    elif kind == "none":
        assert invoke(h.client) is None
    elif kind == "value":
        assert invoke(h.client) == expect["value"]
    elif kind in LIST_KINDS:
        result = invoke(h.client)
        assert len(result) == expect["count"]
        assert all(isinstance(item, LIST_KINDS[kind]) for item in result)
        _check_fields(result[0], expect["first"])
    else:
        result = invoke(h.client)
        assert isinstance(result, ONE_KINDS[kind])
        _check_fields(result, expect)


def test_three_ds_challenge_is_a_value_not_an_error(harness: MakeHarness) -> None:
    h = harness(reply(VECTORS["charge_3ds_required"]["body"]))
    result = CALLS["charge"].invoke(h.client)
    assert isinstance(result, ThreeDSChallenge)
    assert result.md == "891463508"
    assert result.pa_req.startswith("+/eyJNZXJjaGFudE5hbWUi")
    assert result.frame_width is None and result.go_req is None


def test_three_ds_on_a_token_payment_is_not_guessed(harness: MakeHarness) -> None:
    h = harness(reply(VECTORS["charge_3ds_required"]["body"]))
    with pytest.raises(UnknownOutcomeError) as caught:
        CALLS["charge_token"].invoke(h.client)
    assert caught.value.request_id == h.gateway.request_ids[0]


def test_declined_with_success_true_is_still_a_decline(harness: MakeHarness) -> None:
    body = VECTORS["charge_declined_5051"]["body"] | {"Success": True}
    h = harness(reply(body))
    with pytest.raises(PaymentDeclined) as caught:
        CALLS["charge"].invoke(h.client)
    assert caught.value.reason_code == ReasonCode.INSUFFICIENT_FUNDS
    assert caught.value.transaction.status == "Declined"


def test_unknown_reason_code_gets_the_generic_row(harness: MakeHarness) -> None:
    model = dict(
        VECTORS["charge_declined_5051"]["body"]["Model"],
        ReasonCode=5999,
        Reason=None,
        CardHolderMessage=None,
    )
    h = harness(reply({"Success": False, "Message": None, "Model": model}))
    with pytest.raises(PaymentDeclined) as caught:
        CALLS["charge"].invoke(h.client)
    assert caught.value.reason_code == 5999 and not isinstance(caught.value.reason_code, ReasonCode)
    assert caught.value.reason == "Reason5999"
    assert caught.value.cardholder_message == "Операция отклонена"


def test_rejected_with_http_400_envelope(harness: MakeHarness) -> None:
    h = harness(reply({"Success": False, "Message": "Invalid Amount value"}, status=400))
    with pytest.raises(RequestRejectedError) as caught:
        CALLS["refund"].invoke(h.client)
    assert caught.value.status_code == 400 and caught.value.message == "Invalid Amount value"
    assert len(h.gateway.requests) == 1


def test_public_key_accepts_an_envelope_too(harness: MakeHarness) -> None:
    h = harness(reply({"Success": True, "Message": None, "Model": {"Pem": "PEM", "Version": "04"}}))
    assert h.client.get_public_key() == PublicKeyInfo(pem="PEM", version=4)


# --- idempotency keys ---------------------------------------------------------------------


def test_same_request_id_on_every_retry_of_a_5xx(harness: MakeHarness) -> None:
    h = harness(httpx.Response(502), httpx.Response(503), reply(OK_TX))
    tx = CALLS["charge"].invoke(h.client)
    assert isinstance(tx, Transaction)
    ids = h.gateway.request_ids
    assert len(ids) == 3 and ids[0] and len(set(ids)) == 1
    assert h.sleeps == [0.5, 1.0]
    assert len({r.content for r in h.gateway.requests}) == 1  # the very same body each time


def test_caller_supplied_request_id_is_sent_and_reused(harness: MakeHarness) -> None:
    h = harness(httpx.ReadTimeout("slow"), reply(OK_TX))
    h.client.charge(
        Decimal(5), ip_address="1.1.1.1", cryptogram="01x", request_id="order-42/charge-1"
    )
    assert h.gateway.request_ids == ["order-42/charge-1", "order-42/charge-1"]


def test_request_id_factory_is_used_once_per_call(harness: MakeHarness) -> None:
    made = iter(["rid-1", "rid-2"])
    h = harness(
        httpx.Response(500), reply(OK_TX), reply(OK_TX), request_id_factory=lambda: next(made)
    )
    h.client.charge(Decimal(5), ip_address="1.1.1.1", cryptogram="01x")
    h.client.charge(Decimal(5), ip_address="1.1.1.1", cryptogram="01x")
    assert h.gateway.request_ids == ["rid-1", "rid-1", "rid-2"]


@pytest.mark.parametrize("bad", ["", " lead", "tail ", "line\nbreak", "кириллица", "x" * 256])
def test_bad_request_id_is_refused_before_sending(harness: MakeHarness, bad: str) -> None:
    h = harness(reply(OK_TX))
    with pytest.raises(ValueError):
        h.client.void(1, request_id=bad)
    assert h.gateway.requests == []


# --- rate limiting ------------------------------------------------------------------------


def test_429_is_backed_off_exponentially(harness: MakeHarness) -> None:
    h = harness(httpx.Response(429), httpx.Response(429), reply(OK_TX))
    CALLS["charge"].invoke(h.client)
    assert h.sleeps == [0.5, 1.0]
    assert len(set(h.gateway.request_ids)) == 1


def test_429_honours_retry_after_seconds(harness: MakeHarness) -> None:
    h = harness(httpx.Response(429, headers={"Retry-After": "7"}), reply(OK_TX))
    h.client.get_payment(1)
    assert h.sleeps == [7.0]


def test_429_retry_after_http_date_in_the_past_means_now(harness: MakeHarness) -> None:
    h = harness(
        httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), reply(OK_TX)
    )
    h.client.get_payment(1)
    assert h.sleeps == [0.0]


def test_429_retry_after_longer_than_we_may_wait_stops_at_once(harness: MakeHarness) -> None:
    h = harness(httpx.Response(429, headers={"Retry-After": "3600"}), reply(OK_TX))
    with pytest.raises(RateLimitError) as caught:
        CALLS["charge"].invoke(h.client)
    assert caught.value.retry_after == 3600.0
    assert h.sleeps == [] and len(h.gateway.requests) == 1


def test_429_persisting_is_a_rate_limit_error_even_for_a_charge(harness: MakeHarness) -> None:
    # A 429 means the gateway refused to start the request: the outcome is known (nothing).
    h = harness(httpx.Response(429))
    with pytest.raises(RateLimitError) as caught:
        CALLS["charge"].invoke(h.client)
    assert not isinstance(caught.value, UnknownOutcomeError)
    assert len(h.gateway.requests) == 4 and h.sleeps == [0.5, 1.0, 2.0]
    assert caught.value.request_id == h.gateway.request_ids[0]


def _streamed(body: bytes, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    # A body still to be read, as a transport hands it over (MockTransport reads content=).
    return lambda request: httpx.Response(
        200, headers={"Content-Type": "application/json", **headers},
        stream=httpx.ByteStream(body),
    )


@pytest.mark.parametrize("encoding", [None, "gzip", "identity"])
def test_a_streamed_answer_is_read_and_decoded(harness: MakeHarness, encoding: str | None) -> None:
    body = jsoncodec.dumps_bytes(OK_TX)
    if encoding == "gzip":
        body = gzip.compress(body)
    h = harness(_streamed(body, **({"Content-Encoding": encoding} if encoding else {})))
    tx = CALLS["charge"].invoke(h.client)
    assert isinstance(tx, Transaction) and tx.transaction_id == OK_TX["Model"]["TransactionId"]


def test_an_answer_cut_off_while_read_is_an_unknown_outcome(
    harness: MakeHarness, flavour: str
) -> None:
    class Cut(httpx.SyncByteStream, httpx.AsyncByteStream):
        closed = False

        def __iter__(self) -> Iterator[bytes]:
            yield b'{"Success": true, '
            raise httpx.ReadError("connection reset while reading the body")

        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b'{"Success": true, '
            raise httpx.ReadError("connection reset while reading the body")

        def close(self) -> None:
            self.closed = True

        async def aclose(self) -> None:
            self.closed = True

    streams: list[Cut] = []

    def answer(request: httpx.Request) -> httpx.Response:
        streams.append(Cut())
        return httpx.Response(200, stream=streams[-1])

    h = harness(answer)
    with pytest.raises(UnknownOutcomeError) as caught:
        CALLS["charge"].invoke(h.client)
    cause = caught.value.__cause__  # the last attempt's APIConnectionError
    assert cause is not None and isinstance(cause.__cause__, httpx.ReadError)
    assert len(streams) == 4 and all(stream.closed for stream in streams)


# --- unknown outcomes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.ReadError("connection reset"),
        httpx.WriteTimeout("write timed out"),
    ],
)
def test_timeout_after_sending_a_charge_is_an_unknown_outcome(
    harness: MakeHarness, failure: Exception
) -> None:
    h = harness(failure)
    with pytest.raises(UnknownOutcomeError) as caught:
        CALLS["charge"].invoke(h.client)
    exc = caught.value
    assert exc.endpoint == "/payments/cards/charge"
    assert exc.request_id is not None and exc.request_id in exc.message
    assert h.gateway.request_ids == [exc.request_id] * 4
    assert h.sleeps == [0.5, 1.0, 2.0]


def test_timeout_then_definite_answer_is_the_answer(harness: MakeHarness) -> None:
    # The retry carries the same key, so the gateway's stored result comes back.
    h = harness(httpx.ReadTimeout("slow"), reply(VECTORS["charge_declined_5051"]["body"]))
    with pytest.raises(PaymentDeclined):
        CALLS["charge"].invoke(h.client)


def test_5xx_persisting_on_a_mutating_call_is_unknown(harness: MakeHarness) -> None:
    h = harness(httpx.Response(503))
    with pytest.raises(UnknownOutcomeError) as caught:
        CALLS["refund"].invoke(h.client)
    assert caught.value.status_code == 503 and caught.value.endpoint == "/payments/refund"


def test_5xx_persisting_on_a_read_is_a_server_error(harness: MakeHarness) -> None:
    h = harness(httpx.Response(503))
    with pytest.raises(ServerError) as caught:
        h.client.get_payment(1)
    assert caught.value.status_code == 503 and len(h.gateway.requests) == 4


def test_read_timeout_on_a_read_is_a_connection_error(harness: MakeHarness) -> None:
    h = harness(httpx.ReadTimeout("slow"))
    with pytest.raises(APIConnectionError) as caught:
        h.client.find_payment("1234567")
    assert not isinstance(caught.value, UnknownOutcomeError)


def test_maybe_sent_then_429_is_still_unknown(harness: MakeHarness) -> None:
    h = harness(httpx.ReadTimeout("slow"), httpx.Response(429))
    with pytest.raises(UnknownOutcomeError):
        CALLS["confirm"].invoke(h.client)


@pytest.mark.parametrize(
    ("status", "body"),
    [(408, b""), (404, b"<html>not found</html>"), (400, b'{"Model": {}}'), (401, b"")],
    ids=["408", "404-html", "400-no-envelope", "401"],
)
def test_maybe_sent_then_a_refusal_without_envelope_is_still_unknown(
    harness: MakeHarness, status: int, body: bytes
) -> None:
    """A proxy's 4xx or a 401 after an attempt that may have charged says nothing about
    that first attempt: the outcome stays unknown (only the gateway's envelope is
    definitive, as it replays the first answer for the same X-Request-ID)."""
    h = harness(httpx.ReadTimeout("slow"), httpx.Response(status, content=body))
    with pytest.raises(UnknownOutcomeError) as caught:
        CALLS["charge"].invoke(h.client)
    assert isinstance(caught.value.__cause__, GatewayError)
    assert caught.value.status_code == status


def test_maybe_sent_then_an_envelope_refusal_is_definitive(harness: MakeHarness) -> None:
    h = harness(httpx.ReadTimeout("slow"),
                reply({"Success": False, "Message": "Invalid amount"}, status=400))
    with pytest.raises(RequestRejectedError):
        CALLS["charge"].invoke(h.client)


@pytest.mark.parametrize(
    "body",
    [b"<html>502 Bad Gateway</html>", b"", b"[1, 2]", b'{"Model": {}}', b'{"Success": "yes"}'],
)
def test_unreadable_answer_to_a_mutating_call_is_unknown_and_not_retried(
    harness: MakeHarness, body: bytes
) -> None:
    h = harness(httpx.Response(200, content=body))
    with pytest.raises(UnknownOutcomeError):
        CALLS["charge"].invoke(h.client)
    assert len(h.gateway.requests) == 1


def test_broken_model_in_a_success_answer_is_unknown(harness: MakeHarness) -> None:
    h = harness(reply({"Success": True, "Message": None, "Model": {"TransactionId": "x"}}))
    with pytest.raises(UnknownOutcomeError):
        CALLS["refund"].invoke(h.client)
    h = harness(reply({"Success": True, "Message": None, "Model": {"Status": "Completed"}}))
    with pytest.raises(UnknownOutcomeError):
        CALLS["charge"].invoke(h.client)


def _model_text(**fields: str) -> bytes:
    """OK_TX's answer with some model fields replaced by raw JSON text."""
    text = jsoncodec.dumps(OK_TX)
    for key, raw in fields.items():
        text = re.sub(rf'"{key}":("[^"]*"|[^,}}]*)', f'"{key}":{raw}', text, count=1)
        assert f'"{key}":{raw}' in text
    return text.encode()


ODD_ANSWERS = {
    "date-beyond-datetime": _model_text(CreatedDate='"/Date(99999999999999999999)/"'),
    "date-before-datetime": _model_text(AuthDate='"/Date(-99999999999999999999)/"'),
    "deep-nesting": b'{"Success": true, "Model": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "deep-model": b'{"Success": true, "Model": {"JsonData": ' + b"[" * 100_000 + b"]" * 100_000
    + b"}}",
    "id-1e100000000": _model_text(TransactionId="1e100000000"),
    "id-infinity": _model_text(TransactionId="Infinity"),
    "amount-nan": _model_text(Amount="NaN"),
    "amount-1e50000000": _model_text(Amount="1e50000000"),
    "reason-infinity": _model_text(ReasonCode="-Infinity"),
}


@pytest.mark.parametrize("body", ODD_ANSWERS.values(), ids=ODD_ANSWERS.keys())
def test_odd_answers_to_a_mutating_call_are_unknown_outcomes(
    harness: MakeHarness, body: bytes
) -> None:
    h = harness(httpx.Response(200, content=body))
    with pytest.raises(UnknownOutcomeError) as caught:
        CALLS["charge"].invoke(h.client)
    assert caught.value.request_id == h.gateway.request_ids[0]
    assert len(h.gateway.requests) == 1


@pytest.mark.parametrize("body", ODD_ANSWERS.values(), ids=ODD_ANSWERS.keys())
def test_odd_answers_to_a_read_are_server_errors(harness: MakeHarness, body: bytes) -> None:
    h = harness(httpx.Response(200, content=body))
    with pytest.raises(ServerError):
        h.client.get_payment(1)


def test_any_error_while_reading_an_answer_is_reported_as_a_gateway_error(
    harness: MakeHarness,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(model: Any) -> Transaction:
        raise RuntimeError("a bug while reading the model")

    monkeypatch.setattr(Transaction, "from_api", broken)
    h = harness(reply(OK_TX))
    with pytest.raises(UnknownOutcomeError) as unknown:
        CALLS["charge"].invoke(h.client)
    assert isinstance(unknown.value.__cause__, RuntimeError)
    with pytest.raises(ServerError):
        h.client.get_payment(1)
    monkeypatch.setattr(PublicKeyInfo, "from_api", broken)
    with pytest.raises(ServerError):
        h.client.get_public_key()


def test_unreadable_answer_to_a_read_is_a_server_error(harness: MakeHarness) -> None:
    h = harness(httpx.Response(200, content=b"<html>oops</html>"))
    with pytest.raises(ServerError):
        h.client.get_payment(1)


# --- connection failures before sending ---------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("no route"),
        httpx.PoolTimeout("pool full"),
    ],
)
def test_connect_error_is_retried_then_a_connection_error(
    harness: MakeHarness, failure: Exception
) -> None:
    h = harness(failure)
    with pytest.raises(APIConnectionError) as caught:
        CALLS["charge"].invoke(h.client)
    assert not isinstance(caught.value, UnknownOutcomeError)  # nothing reached the gateway
    assert len(h.gateway.requests) == 4 and len(set(h.gateway.request_ids)) == 1
    assert h.sleeps == [0.5, 1.0, 2.0]


def test_connect_error_then_success(harness: MakeHarness) -> None:
    h = harness(httpx.ConnectError("refused"), reply(OK_TX))
    assert isinstance(CALLS["auth"].invoke(h.client), Transaction)
    assert h.sleeps == [0.5]


def test_unsupported_scheme_is_not_retried(flavour: str) -> None:
    sleeps: list[float] = []
    if flavour == "sync":
        client = CloudPaymentsClient(PUBLIC_ID, SECRET, base_url="ftp://nowhere",
                                     sleep=sleeps.append)
        with pytest.raises(APIConnectionError):
            client.void(1)
    else:
        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)

        async def void() -> None:
            async with AsyncCloudPaymentsClient(PUBLIC_ID, SECRET, base_url="ftp://nowhere",
                                                sleep=sleep) as client:
                await client.void(1)

        with pytest.raises(APIConnectionError):
            run_async(void())
    assert sleeps == []


# --- backoff arithmetic -------------------------------------------------------------------


def test_jitter_and_cap(harness: MakeHarness) -> None:
    h = harness(
        httpx.Response(500), max_retries=5, backoff=1.0, max_backoff=4.0, random=lambda: 0.0
    )
    with pytest.raises(ServerError):
        h.client.get_payment(1)
    # factor 0.5 at random()=0: 1*2**n capped at 4, halved
    assert h.sleeps == [0.5, 1.0, 2.0, 2.0, 2.0]


def test_no_retries_when_max_retries_is_zero(harness: MakeHarness) -> None:
    h = harness(httpx.Response(500), max_retries=0)
    with pytest.raises(UnknownOutcomeError):
        CALLS["void"].invoke(h.client)
    assert len(h.gateway.requests) == 1 and h.sleeps == []


# --- authentication -----------------------------------------------------------------------


def test_401_is_an_authentication_error_without_retry(harness: MakeHarness) -> None:
    h = harness(httpx.Response(401))
    with pytest.raises(AuthenticationError) as caught:
        CALLS["charge"].invoke(h.client)
    assert caught.value.status_code == 401
    assert len(h.gateway.requests) == 1 and h.sleeps == []
    assert SECRET not in str(caught.value)


def test_other_4xx_without_envelope_is_rejected(harness: MakeHarness) -> None:
    h = harness(httpx.Response(404, content=b"not found"))
    with pytest.raises(RequestRejectedError) as caught:
        CALLS["void"].invoke(h.client)
    assert caught.value.status_code == 404


# --- amounts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("0.10"), "0.10"),
        (Decimal("0.1"), "0.10"),
        (Decimal("10"), "10.00"),
        (10, "10.00"),
        ("99.99", "99.99"),
        (Decimal("1E+2"), "100.00"),
        (Decimal("12345678901.23"), "12345678901.23"),
    ],
)
def test_amounts_are_written_digit_for_digit(harness: MakeHarness, amount: Any, text: str) -> None:
    h = harness(reply(OK_TX))
    h.client.charge(amount, ip_address="1.1.1.1", cryptogram="01x")
    assert (
        re.search(rb'"Amount":([0-9.]+)', h.gateway.requests[0].content).group(1) == text.encode()
    )  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "amount",
    [
        0.1,
        10.0,
        True,
        Decimal("0.001"),
        Decimal("-1"),
        Decimal("0"),
        Decimal("NaN"),
        "abc",
        Decimal("1e30"),
    ],
)
def test_bad_amounts_are_refused_before_sending(harness: MakeHarness, amount: Any) -> None:
    h = harness(reply(OK_TX))
    with pytest.raises(MoneyError):
        h.client.charge(amount, ip_address="1.1.1.1", cryptogram="01x")
    with pytest.raises(MoneyError):
        h.client.refund(1, amount)
    assert h.gateway.requests == []


def test_floats_anywhere_in_a_body_are_refused(harness: MakeHarness) -> None:
    h = harness(reply(OK_TX))
    with pytest.raises(MoneyError):
        h.client.charge(
            Decimal(1), ip_address="1.1.1.1", cryptogram="01x", json_data={"price": 9.99}
        )
    assert h.gateway.requests == []


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999999.99"), places=2))
def test_amount_round_trip_is_exact(harness: MakeHarness, amount: Decimal) -> None:
    h = harness(reply(OK_TX))
    h.client.refund(7, amount)
    sent = json.loads(h.gateway.requests[0].content, parse_float=Decimal)["Amount"]
    assert sent == amount and sent.as_tuple().exponent == -2


# --- argument checks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "invoke",
    [
        lambda c: c.get_notification_settings("Pay/../../payments/void"),
        lambda c: c.update_notification_settings("", is_enabled=True),
        lambda c: c.post3ds("12; drop", "pares"),
        lambda c: c.post3ds(0, "pares"),
        lambda c: c.post3ds(1, ""),
        lambda c: c.charge(Decimal(1), ip_address="", cryptogram="01x"),
        lambda c: c.charge_token(Decimal(1), account_id="a", token="t", tr_initiator_code=2),
        lambda c: c.list_payments("09.08.2014"),
        lambda c: c.list_payments("2024-02-30"),
        lambda c: c.list_payments_v2(datetime(2024, 1, 1), datetime(2024, 1, 2)),
        lambda c: c.list_tokens(0),
        lambda c: c.create_subscription(
            token="t",
            account_id="a",
            amount=1,
            description="d",
            start_date=datetime(2030, 1, 1),
            interval="Day",
            period=1,
        ),
        lambda c: c.update_subscription("sc_1", period=0),
    ],
)
def test_bad_arguments_are_refused_before_sending(
    harness: MakeHarness,
    invoke: Callable[[CloudPaymentsClient], Any],
) -> None:
    h = harness(reply(OK_TX))
    with pytest.raises(InvalidRequestError):  # a ValueError too, as it always was
        invoke(h.client)
    assert h.gateway.requests == []


@pytest.mark.parametrize("invoke,field", [
    (lambda c: c.post3ds("12; drop", "pares"), "transaction_id"),
    (lambda c: c.post3ds(True, "pares"), "transaction_id"),
    (lambda c: c.post3ds(1, ""), "pa_res"),
    (lambda c: c.charge(Decimal(1), ip_address="", cryptogram="01x"), "ip_address"),
    (lambda c: c.charge(Decimal(1), ip_address="1.1.1.1", cryptogram=""), "cryptogram"),
    (lambda c: c.void(1, request_id="bad\nid"), "request_id"),
    (lambda c: c.charge_token(Decimal(1), account_id="a", token="t", tr_initiator_code=2),
     "tr_initiator_code"),
    (lambda c: c.charge_token(Decimal(1), account_id="a", token="t",
                              tr_initiator_code=TrInitiator.CARDHOLDER, payment_scheduled=True),
     "payment_scheduled"),
    (lambda c: c.update_notification_settings("check", is_enabled=True, address="https://s/c"),
     "type"),
    (lambda c: c.list_payments("2024-02-30"), "date"),
    (lambda c: c.list_tokens(0), "page"),
    (lambda c: c.get_notification_settings("Pay/.."), "type"),
    (lambda c: c.get_subscription(""), "id"),
    (lambda c: c.list_payments_v2(datetime(2024, 1, 1), datetime(2024, 1, 2)), None),
    (lambda c: c.confirm(1, Decimal(1), json_data={"x": Decimal("NaN")}), None),
])
def test_bad_arguments_name_their_field(
    harness: MakeHarness, invoke: Callable[[CloudPaymentsClient], Any], field: str | None
) -> None:
    h = harness(reply(OK_TX))
    with pytest.raises(InvalidRequestError) as caught:
        invoke(h.client)
    assert caught.value.field == field
    assert isinstance(caught.value, CheckoutKitError) and isinstance(caught.value, ValueError)
    assert h.gateway.requests == []


def test_update_subscription_rejects_unknown_fields(harness: MakeHarness) -> None:
    h = harness(reply(OK_TX))
    with pytest.raises(TypeError, match="colour"):
        h.client.update_subscription("sc_1", colour="red")


@pytest.mark.parametrize("client_class", [CloudPaymentsClient, AsyncCloudPaymentsClient])
def test_constructor_checks(client_class: type[Any]) -> None:
    with pytest.raises(InvalidRequestError, match="public_id"):
        client_class("", SECRET)
    with pytest.raises(InvalidRequestError, match="api_secret"):
        client_class(PUBLIC_ID, "")
    with pytest.raises(InvalidRequestError):
        client_class(PUBLIC_ID, SECRET, max_retries=-1)
    for bad in ({"max_backoff": -1.0}, {"max_retry_after": -0.5}, {"backoff": -1.0},
                {"timeout": 0}):
        with pytest.raises(InvalidRequestError):
            client_class(PUBLIC_ID, SECRET, **bad)


# --- one path, one pool, lifecycle ---------------------------------------------------------


def test_context_manager_closes_and_repr_hides_the_secret() -> None:
    gateway = Gateway([reply(OK_TX)])
    with CloudPaymentsClient(
        PUBLIC_ID, SECRET, transport=httpx.MockTransport(gateway), base_url="http://127.0.0.1:9/"
    ) as client:
        assert SECRET not in repr(client) and PUBLIC_ID in repr(client)
        client.get_payment(1)
    assert gateway.requests[0].url == httpx.URL("http://127.0.0.1:9/payments/get")
    with pytest.raises(RuntimeError):
        client.get_payment(1)


def test_async_context_manager_closes_and_repr_hides_the_secret() -> None:
    gateway = Gateway([reply(OK_TX)])

    async def scenario() -> AsyncCloudPaymentsClient:
        async with AsyncCloudPaymentsClient(
            PUBLIC_ID, SECRET, transport=httpx.MockTransport(gateway),
            base_url="http://127.0.0.1:9/",
        ) as client:
            assert SECRET not in repr(client) and PUBLIC_ID in repr(client)
            await client.get_payment(1)
        return client

    client = run_async(scenario())
    assert gateway.requests[0].url == httpx.URL("http://127.0.0.1:9/payments/get")
    with pytest.raises(RuntimeError):
        run_async(client.get_payment(1))


def test_every_attempt_goes_through_the_clients_send(
    harness: MakeHarness, flavour: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The path a MockTransport test takes is the production path: build_request, then
    # httpx's own Client.send (AsyncClient.send), once per attempt, on one client.
    cls: Any = httpx.Client if flavour == "sync" else httpx.AsyncClient
    original = cls.send
    senders: list[object] = []

    if flavour == "sync":
        def send(self: httpx.Client, request: httpx.Request, **kw: Any) -> httpx.Response:
            senders.append(self)
            return original(self, request, **kw)  # type: ignore[no-any-return]
    else:
        async def send(  # type: ignore[misc]
            self: httpx.AsyncClient, request: httpx.Request, **kw: Any
        ) -> httpx.Response:
            senders.append(self)
            return await original(self, request, **kw)  # type: ignore[no-any-return]

    monkeypatch.setattr(cls, "send", send)
    h = harness(httpx.Response(503), reply(OK_TX), reply(VECTORS["get_completed"]["body"]))
    CALLS["charge"].invoke(h.client)
    h.client.get_payment(1)
    assert len(senders) == 3 == len(h.gateway.requests)
    assert len(set(map(id, senders))) == 1  # one httpx client, reused
    request = h.gateway.requests[0]
    # httpx framed the request itself
    assert request.headers["Host"] == "api.cloudpayments.ru"
    assert request.headers["Content-Length"] == str(len(request.content))


def test_cookies_set_by_the_gateway_are_not_sent_back(harness: MakeHarness) -> None:
    # Basic auth on every call: a cookie from a proxy or a balancer has no business here.
    h = harness(reply(OK_TX, **{"Set-Cookie": "balancer=node-7; Path=/"}), reply(OK_TX))
    h.client.get_payment(1)
    h.client.get_payment(2)
    assert [r.headers.get("Cookie") for r in h.gateway.requests] == [None, None]


class _CountingServer(http.server.ThreadingHTTPServer):
    """A loopback HTTP/1.1 server answering every POST with one envelope, counting the
    connections it accepts."""

    daemon_threads = True

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.connections = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                server.connections += 1
                super().setup()

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def loopback() -> Iterator[_CountingServer]:
    server = _CountingServer(jsoncodec.dumps_bytes(VECTORS["get_completed"]["body"]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_calls_share_one_keep_alive_connection(loopback: _CountingServer, flavour: str) -> None:
    base_url = f"http://127.0.0.1:{loopback.server_address[1]}"
    if flavour == "sync":
        with CloudPaymentsClient(PUBLIC_ID, SECRET, base_url=base_url) as client:
            results = [client.get_payment(n) for n in range(1, 4)]
    else:
        async def calls() -> list[Transaction]:
            async with AsyncCloudPaymentsClient(PUBLIC_ID, SECRET, base_url=base_url) as client:
                return [await client.get_payment(n) for n in range(1, 4)]

        results = run_async(calls())
    assert all(isinstance(tx, Transaction) for tx in results)
    assert loopback.connections == 1


def test_every_gateway_error_names_its_endpoint(harness: MakeHarness) -> None:
    for steps in (
        [httpx.Response(401)],
        [httpx.Response(429)],
        [httpx.ReadTimeout("x")],
        [reply({"Success": False, "Message": "no"})],
    ):
        h = harness(*steps)
        with pytest.raises(GatewayError) as caught:
            h.client.void(5)
        assert caught.value.endpoint == "/payments/void"


# --- token payments: who initiates ---------------------------------------------------------


def test_the_initiator_is_required_and_named(harness: MakeHarness) -> None:
    h = harness(reply(OK_TX))
    with pytest.raises(TypeError, match="tr_initiator_code"):
        h.client.charge_token(Decimal(1), account_id="a", token="t")  # type: ignore[call-arg]
    assert h.gateway.requests == []
    assert (int(TrInitiator.MERCHANT), int(TrInitiator.CARDHOLDER)) == (0, 1)
    h.client.charge_token(Decimal(1), account_id="a", token="t",
                          tr_initiator_code=TrInitiator.CARDHOLDER)
    assert h.gateway.body()["TrInitiatorCode"] == 1
    assert h.gateway.body()["PaymentScheduled"] == 0


def test_check_settings_are_refused_before_sending(harness: MakeHarness) -> None:
    h = harness(reply({"Success": True, "Message": None}))
    with pytest.raises(InvalidRequestError, match="merchant account") as caught:
        h.client.update_notification_settings("Check", is_enabled=False)
    assert caught.value.field == "type" and h.gateway.requests == []
    h.client.update_notification_settings("Pay", is_enabled=False)  # the others go
    assert len(h.gateway.requests) == 1


# --- a client of one's own ----------------------------------------------------------------


def test_an_http_client_of_ones_own_is_used_as_configured_and_left_open() -> None:
    gateway = Gateway([reply(OK_TX), reply(OK_TX)])
    own = httpx.Client(transport=httpx.MockTransport(gateway), headers={"X-Shop": "7"},
                       follow_redirects=True)
    client = CloudPaymentsClient(PUBLIC_ID, SECRET, base_url="http://gw.test/api/",
                                 http_client=own)
    assert client.refund(1, Decimal("1.00")).transaction_id == 891510444
    (request,) = gateway.requests
    assert str(request.url) == "http://gw.test/api/payments/refund"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(
        f"{PUBLIC_ID}:{SECRET}".encode()).decode()
    assert request.headers["X-Shop"] == "7" and "X-Request-ID" in request.headers
    client.close()
    assert not own.is_closed  # the caller's, closed by the caller
    own.close()
    with pytest.raises(InvalidRequestError, match="not both"):
        CloudPaymentsClient(PUBLIC_ID, SECRET, http_client=httpx.Client(),
                            transport=httpx.MockTransport(gateway))


def test_an_async_http_client_of_ones_own() -> None:
    gateway = Gateway([reply(OK_TX)])

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(gateway)) as own:
            async with AsyncCloudPaymentsClient(PUBLIC_ID, SECRET, base_url="http://gw.test",
                                                http_client=own) as client:
                await client.refund(1, Decimal("1.00"))
            assert not own.is_closed
        (request,) = gateway.requests
        assert str(request.url) == "http://gw.test/payments/refund"
        assert request.headers["Authorization"].startswith("Basic ")

    run_async(run())


def test_a_redirect_is_not_followed_by_a_client_of_ones_own() -> None:
    """The gateway never redirects an API call: a 3xx is not followed even when the
    given client would follow redirects."""
    gateway = Gateway([httpx.Response(302, headers={"Location": "http://elsewhere.test/"})])
    with httpx.Client(transport=httpx.MockTransport(gateway), follow_redirects=True) as own:
        client = CloudPaymentsClient(PUBLIC_ID, SECRET, http_client=own, max_retries=0)
        with pytest.raises(GatewayError):
            client.get_payment(1)
    assert len(gateway.requests) == 1
