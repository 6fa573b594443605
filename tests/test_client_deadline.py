"""One attempt has one deadline, for both clients: httpx's Timeout limits each phase
on its own (a dripping answer never ends), and ``worst_case_seconds`` must bound a call
for the ledger's ``stale_after`` (issue 14 §1.2)."""

from __future__ import annotations

import asyncio
import importlib.util
import math
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest

from checkout_kit import jsoncodec
from checkout_kit.client import (
    AsyncCloudPaymentsClient,
    CloudPaymentsClient,
    DeadlineTransport,
    environment_proxy,
)
from checkout_kit.client._async import CANCEL_GRACE
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
    # pool 5 + connect 2 + write 5 + read 5 per attempt (the unused timeout=1.0 aside),
    # and for the async client the grace before an attempt is cancelled.
    grace = 0 if make is httpx.Client else CANCEL_GRACE
    assert client.worst_case_seconds == 17 * 2 + 3 + 2 * grace
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


# --- Over real sockets: the headers themselves drip in (review M1) -------------------------
# MockTransport never goes through httpcore, whose read timeout is taken once per phase:
# a server that sends its status line and headers a byte at a time, each byte well within
# any read timeout, kept an attempt going until it had sent them all.


def _read_request(conn: socket.socket) -> bytes | None:
    """Read one request (head and ``Content-Length`` body); its request line, or ``None``
    once the client has closed the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            return None
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += conn.recv(65536)
    return head.split(b"\r\n", 1)[0]


class _Server:
    """A loopback HTTP server for one test: it answers each connection with ``head`` a
    byte every ``DRIP`` seconds, then ``ANSWER``; ``lines`` are the request lines seen."""

    def __init__(self, *, drip_headers: bool) -> None:
        self.drip_headers = drip_headers
        self.lines: list[bytes] = []
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nX-Pad: %s\r\n\r\n" % (len(ANSWER), b"a" * 40))
        try:
            # The connection is kept alive until the client closes it.
            while line := _read_request(conn):
                self.lines.append(line)
                if self.drip_headers:
                    for byte in head:
                        conn.sendall(bytes([byte]))
                        time.sleep(DRIP)
                else:
                    conn.sendall(head)
                conn.sendall(ANSWER)
        except OSError:
            pass  # the client gave up: what the tests want
        finally:
            conn.close()


@pytest.fixture
def dripping() -> Iterator[_Server]:
    server = _Server(drip_headers=True)
    yield server
    server.sock.close()


@pytest.fixture
def prompt() -> Iterator[_Server]:
    server = _Server(drip_headers=False)
    yield server
    server.sock.close()


def test_headers_that_drip_in_end_at_the_deadline_sync(dripping: _Server) -> None:
    client = CloudPaymentsClient("pk", "secret", base_url=dripping.url, timeout=LIMIT,
                                 max_retries=1, sleep=lambda _s: None)
    assert client.worst_case_seconds == 2 * LIMIT + 60  # a Retry-After wait aside
    started = time.monotonic()
    with pytest.raises(UnknownOutcomeError):  # the headers had begun: it may have acted
        client.refund(1, "1.00", request_id="r-1")
    # Two attempts of LIMIT each; the headers alone take 8 s to drip in.
    assert time.monotonic() - started < 2 * LIMIT + 1.0
    assert len(dripping.lines) == 2
    client.close()


def test_headers_that_drip_in_end_at_the_deadline_async(dripping: _Server) -> None:
    async def run() -> float:
        async def no_sleep(_s: float) -> None:
            return None

        client = AsyncCloudPaymentsClient("pk", "secret", base_url=dripping.url,
                                          timeout=LIMIT, max_retries=1, sleep=no_sleep)
        started = time.monotonic()
        with pytest.raises(UnknownOutcomeError):
            await client.refund(1, "1.00", request_id="r-1")
        elapsed = time.monotonic() - started
        await client.aclose()
        return elapsed

    assert _run_async(run) < 2 * LIMIT + 1.0
    assert len(dripping.lines) == 2


def test_a_shops_http_client_on_the_deadline_transport_keeps_the_bound(
        dripping: _Server) -> None:
    given = httpx.Client(transport=DeadlineTransport(), timeout=LIMIT / 4)
    client = CloudPaymentsClient("pk", "secret", base_url=dripping.url, http_client=given,
                                 max_retries=0)
    started = time.monotonic()
    with pytest.raises(APIConnectionError, match="after sending"):
        client.test()
    assert time.monotonic() - started < LIMIT + 1.0
    given.close()


def test_the_deadline_transport_answers_like_httpx(prompt: _Server) -> None:
    with CloudPaymentsClient("pk", "secret", base_url=prompt.url, timeout=5.0) as client:
        assert client.test() == "OK"
        assert client.test() == "OK"  # over the kept-alive connection
    assert prompt.lines == [b"POST /test HTTP/1.1"] * 2
    assert prompt.connections == 1


def test_a_refused_connection_is_not_sent() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    client = CloudPaymentsClient("pk", "secret", base_url=f"http://127.0.0.1:{port}",
                                 timeout=1.0, max_retries=0)
    with pytest.raises(APIConnectionError) as caught:  # not UnknownOutcomeError
        client.refund(1, "1.00", request_id="r-1")
    assert not isinstance(caught.value, UnknownOutcomeError)
    client.close()


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("NO_PROXY", "ALL_PROXY", "HTTPS_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def _set(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    env.setenv(name.lower(), value)


@pytest.mark.parametrize("scheme", ["http://", ""])  # httpx reads host:port as http://
def test_the_environments_proxy_is_used(prompt: _Server, no_proxies: pytest.MonkeyPatch,
                                        scheme: str) -> None:
    _set(no_proxies, "HTTP_PROXY", scheme + prompt.url.removeprefix("http://"))
    assert environment_proxy("http://gateway.example") == prompt.url
    with CloudPaymentsClient("pk", "secret", base_url="http://gateway.example",
                             timeout=5.0) as client:
        assert client.test() == "OK"
    # The proxy got the request in absolute form, for the gateway's host.
    assert prompt.lines == [b"POST http://gateway.example/test HTTP/1.1"]


@pytest.mark.parametrize("exempt", ["gateway.example", ".example", "*",
                                    "other.test, http://gateway.example"])
def test_no_proxy_is_read_like_httpx(no_proxies: pytest.MonkeyPatch, exempt: str) -> None:
    _set(no_proxies, "HTTPS_PROXY", "proxy.test:3128")
    assert environment_proxy("https://gateway.example") == "http://proxy.test:3128"
    _set(no_proxies, "NO_PROXY", exempt)
    assert environment_proxy("https://gateway.example") is None
    _set(no_proxies, "NO_PROXY", "other.test")
    assert environment_proxy("https://gateway.example") == "http://proxy.test:3128"


def test_a_socks_proxy_is_served_by_httpcore(no_proxies: pytest.MonkeyPatch) -> None:
    # httpcore's SOCKS proxy, like httpx's, needs socksio (httpx[socks]): without it, a
    # typed error names the package; with it, the transport is built.
    _set(no_proxies, "ALL_PROXY", "socks5://127.0.0.1:1080")
    if importlib.util.find_spec("socksio") is None:
        with pytest.raises(InvalidRequestError, match="socksio"):
            CloudPaymentsClient("pk", "secret")
    else:
        CloudPaymentsClient("pk", "secret").close()
    with pytest.raises(InvalidRequestError, match="unsupported proxy scheme 'ftp'"):
        DeadlineTransport(proxy="ftp://127.0.0.1:21")


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A port whose connects hang: a listener that never accepts, its backlog full."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield f"http://127.0.0.1:{port}"
    for filler in fillers:
        filler.close()
    server.close()


def test_a_connect_that_hangs_is_not_sent_sync(black_hole: str) -> None:
    client = CloudPaymentsClient("pk", "secret", base_url=black_hole, timeout=LIMIT,
                                 max_retries=0)
    with pytest.raises(APIConnectionError, match="could not connect") as caught:
        client.refund(1, "1.00", request_id="r-1")
    assert not isinstance(caught.value, UnknownOutcomeError)
    client.close()


def test_a_connect_that_hangs_is_not_sent_async(black_hole: str) -> None:
    # The attempt is cancelled only CANCEL_GRACE after its deadline: httpcore's connect
    # timeout, cut to the deadline, says first that nothing was sent.
    async def run() -> None:
        client = AsyncCloudPaymentsClient("pk", "secret", base_url=black_hole,
                                          timeout=LIMIT, max_retries=0)
        with pytest.raises(APIConnectionError, match="could not connect") as caught:
            await client.refund(1, "1.00", request_id="r-1")
        assert not isinstance(caught.value, UnknownOutcomeError)
        await client.aclose()

    _run_async(run)


@pytest.mark.parametrize("transport", [None, DeadlineTransport])
def test_an_http_client_without_a_timeout_still_sends(prompt: _Server,
                                                       transport: type | None) -> None:
    given = httpx.Client(timeout=None, transport=transport() if transport else None)
    client = CloudPaymentsClient("pk", "secret", base_url=prompt.url, http_client=given)
    assert client.worst_case_seconds == math.inf
    assert client.test() == "OK"
    given.close()

    async def run() -> str:
        given = httpx.AsyncClient(timeout=None)
        client = AsyncCloudPaymentsClient("pk", "secret", base_url=prompt.url,
                                          http_client=given)
        try:
            return await client.test()
        finally:
            await given.aclose()

    assert _run_async(run) == "OK"


def test_a_timeout_must_be_finite() -> None:
    with pytest.raises(InvalidRequestError, match="finite"):
        CloudPaymentsClient("pk", "secret", timeout=math.inf)
