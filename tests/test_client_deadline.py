"""One attempt has one deadline, for both clients: httpx's Timeout limits each phase
on its own (a dripping answer never ends), and ``worst_case_seconds`` must bound a call
for the ledger's ``stale_after`` (issue 14 §1.2)."""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest

from checkout_kit import jsoncodec
from checkout_kit.client import AsyncCloudPaymentsClient, CloudPaymentsClient
from checkout_kit.errors import APIConnectionError, InvalidRequestError, UnknownOutcomeError
from checkout_kit.ledger import Ledger, PaymentService

ANSWER = jsoncodec.dumps({"Success": True, "Message": "OK", "Model": None}).encode()
LIMIT = 0.3
T = TypeVar("T")


#: One byte of the dripping answer per pause: each well within a read timeout, the
#: whole answer (several seconds) far beyond an attempt's deadline, so that a loaded
#: machine cannot blur the two.
DRIP = 0.1


def _slowly() -> Iterator[bytes]:
    for piece in ANSWER:
        time.sleep(DRIP)
        yield bytes([piece])


async def _aslowly() -> AsyncIterator[bytes]:
    for piece in ANSWER:
        await asyncio.sleep(DRIP)
        yield bytes([piece])


def _run_async(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``main()`` on an event loop of its own thread: a loop already running in this
    thread (Playwright's, from tests/e2e in a serial run) is no obstacle."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result()


class _Drip(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        return _slowly()


class _ADrip(httpx.AsyncByteStream):
    def __aiter__(self) -> AsyncIterator[bytes]:
        return _aslowly()


def _sync(handler: object) -> CloudPaymentsClient:
    return CloudPaymentsClient("pk", "secret", base_url="https://api.example",
                               transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
                               timeout=LIMIT, max_retries=1, sleep=lambda _s: None)


def _async(handler: object) -> AsyncCloudPaymentsClient:
    async def no_sleep(_s: float) -> None:
        return None

    return AsyncCloudPaymentsClient("pk", "secret", base_url="https://api.example",
                                    transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
                                    timeout=LIMIT, max_retries=1, sleep=no_sleep)


def test_a_dripping_answer_ends_at_the_deadline_sync() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, stream=_Drip())

    client = _sync(handler)
    started = time.monotonic()
    with pytest.raises(UnknownOutcomeError):  # the refund may have happened
        client.refund(1, "1.00", request_id="r-1")
    # Two attempts of LIMIT each (one piece's read past it at most), not the 5 s drip.
    assert time.monotonic() - started < 2 * LIMIT + 1.0
    assert len(sent) == 2 and {r.headers["X-Request-ID"] for r in sent} == {"r-1"}
    with pytest.raises(APIConnectionError):  # a read: no outcome to be unsure of
        client.test()
    client.close()


def test_a_dripping_answer_ends_at_the_deadline_async() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_ADrip())

    async def run() -> float:
        client = _async(handler)
        started = time.monotonic()
        with pytest.raises(UnknownOutcomeError):
            await client.refund(1, "1.00", request_id="r-1")
        elapsed = time.monotonic() - started
        with pytest.raises(APIConnectionError):
            await client.test()
        await client.aclose()
        return elapsed

    assert _run_async(run) < 2 * LIMIT + 1.0


def test_an_answer_after_the_deadline_is_a_timeout_sync() -> None:
    # The headers came after the attempt's limit (a slow pool, connect, write and read
    # each within its own timeout): past the deadline, as a timeout after sending.
    def handler(request: httpx.Request) -> httpx.Response:
        time.sleep(LIMIT + 0.05)
        return httpx.Response(200, content=ANSWER)

    client = CloudPaymentsClient("pk", "secret", base_url="https://api.example",
                                 transport=httpx.MockTransport(handler), timeout=LIMIT,
                                 max_retries=0)
    with pytest.raises(APIConnectionError, match="after sending"):
        client.test()
    client.close()


def test_an_answer_after_the_deadline_is_a_timeout_async() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(LIMIT + 0.05)
        return httpx.Response(200, content=ANSWER)

    async def run() -> None:
        client = AsyncCloudPaymentsClient(
            "pk", "secret", base_url="https://api.example",
            transport=httpx.MockTransport(handler), timeout=LIMIT, max_retries=0)
        with pytest.raises(APIConnectionError, match="after sending"):
            await client.test()
        await client.aclose()

    _run_async(run)


def test_an_answer_within_the_deadline_is_read_as_before() -> None:
    client = _sync(lambda request: httpx.Response(200, content=ANSWER))
    assert client.test() == "OK"
    client.close()


def test_each_phase_waits_only_for_what_is_left_of_the_attempt() -> None:
    # httpx's transport looks up a phase's timeout as it starts each operation: later
    # operations of the attempt get only what is left before its deadline. The deadline
    # is generous (5 s against a 0.2 s pause) so that a loaded machine cannot turn the
    # attempt into a timeout and a retry.
    seen: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions["timeout"]
        seen.append(timeouts.get("read"))
        time.sleep(0.2)
        seen.append(timeouts.get("read"))
        seen.append(timeouts["write"])
        return httpx.Response(200, content=ANSWER)

    client = CloudPaymentsClient("pk", "secret", base_url="https://api.example",
                                 transport=httpx.MockTransport(handler), timeout=5.0)
    assert client.test() == "OK"
    first, later, write = seen
    assert first <= 5.0 and later <= first - 0.19 and write <= first - 0.19
    client.close()


@pytest.mark.parametrize("make", [httpx.Client, httpx.AsyncClient])
def test_worst_case_follows_the_given_http_clients_timeout(make: type) -> None:
    cls = CloudPaymentsClient if make is httpx.Client else AsyncCloudPaymentsClient
    given = make(timeout=httpx.Timeout(5.0, connect=2.0))
    client = cls("pk", "secret", http_client=given, max_retries=1, max_backoff=1,
                 max_retry_after=3, timeout=1.0)
    # pool 5 + connect 2 + write 5 + read 5 per attempt (the unused timeout=1.0 aside).
    assert client.worst_case_seconds == 17 * 2 + 3
    unlimited = cls("pk", "secret", http_client=make(timeout=None))
    assert unlimited.worst_case_seconds == math.inf
    ledger = Ledger(f"sqlite:///{tempfile.mkdtemp()}/l.db")
    try:
        with pytest.raises(InvalidRequestError, match="unlimited"):
            PaymentService(ledger, unlimited)  # type: ignore[arg-type]
    finally:
        ledger.engine.dispose()


def test_a_client_without_a_worst_case_is_refused_clearly() -> None:
    ledger = Ledger(f"sqlite:///{tempfile.mkdtemp()}/l.db")
    try:
        with pytest.raises(TypeError, match="worst_case_seconds"):
            PaymentService(ledger, object())  # type: ignore[arg-type]
    finally:
        ledger.engine.dispose()
