"""The client's settings (:class:`ClientCore`) and one call's attempts
(:class:`Attempts`): everything about a call once its operation has described it.

* the request: the ``X-Request-ID`` of a mutating call, its headers and JSON body
  (:mod:`checkout_kit.jsoncodec`);
* the retry policy: which failures are retried, the backoff and its jitter,
  ``Retry-After``, when an outcome is unknown, and how long a call may take in all
  (:func:`worst_case_seconds`);
* the deadline of one attempt (:meth:`ClientCore.limit`, :func:`past_deadline`,
  :func:`read_within`);
* the answer's status and body, before :mod:`._answers` reads what it says.
"""

from __future__ import annotations

import base64
import email.utils
import http.cookiejar
import logging
import math
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Generic, NoReturn, TypeVar

import httpx

from .. import jsoncodec
from ..errors import (
    APIConnectionError,
    AuthenticationError,
    GatewayError,
    InvalidRequestError,
    JSONCodecError,
    RateLimitError,
    RequestRejectedError,
    ServerError,
    UnknownOutcomeError,
)
from ._call import Call, Context, Done, Retry

__all__ = ["Attempts", "ClientCore", "past_deadline", "read_within", "worst_case_seconds"]

log = logging.getLogger("checkout_kit.client")

_T = TypeVar("_T")

# Errors raised before a single byte of the request can have left this process: safe to
# retry even without a key, and a final one means "not sent".
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)
# Misconfiguration (bad URL scheme, a request httpx itself refuses): not sent, not retried.
_NEVER_SENT = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)

_REQUEST_ID = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?")


# --- the request's key and body, the gateway's Retry-After ---------------------------------


def _request_id(value: object) -> str:
    if not isinstance(value, str) or not _REQUEST_ID.fullmatch(value):
        raise InvalidRequestError("request_id must be 1-255 printable ASCII characters",
                                  "request_id")
    return value


def _new_request_id() -> str:
    """128 random bits as 32 hex digits: unique within the gateway's one-hour
    ``X-Request-ID`` window."""
    return secrets.token_hex(16)


def _encode(body: Any) -> bytes:
    """The request body as JSON bytes; data the codec will not write is a bad argument
    (a naive datetime, a non-finite number, nesting too deep). Floats stay MoneyError."""
    try:
        return jsoncodec.dumps_bytes(body)
    except JSONCodecError as exc:
        raise InvalidRequestError(f"the request cannot be sent as JSON: {exc.message}") from exc


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


# --- time: the longest call, the deadline of one attempt ----------------------------------


def worst_case_seconds(
    attempt_seconds: float, *, max_retries: int, max_backoff: float = 30.0,
    max_retry_after: float = 60.0,
) -> float:
    """The longest a call may take: ``max_retries + 1`` attempts of ``attempt_seconds``
    each and the longest wait before each retry (``Retry-After`` up to
    ``max_retry_after``, or the capped backoff); ``math.inf`` for unlimited attempts.
    The defaults are the clients' (a shop's settings check it before opening one)."""
    if not math.isfinite(attempt_seconds):
        return math.inf
    wait = max(max_retry_after, max_backoff)
    return attempt_seconds * (max_retries + 1) + wait * max_retries


class _UntilDeadline(dict[str, Any]):
    """A request's ``timeout`` extension whose every phase is cut to what is left
    before the attempt's deadline: httpcore looks a phase up (``get``) as it starts
    each operation, so a slow connect, write or read cannot take the attempt past it."""

    def __init__(self, phases: Mapping[str, Any], deadline: float) -> None:
        super().__init__(phases)
        self.phases = dict(phases)
        self.deadline = deadline

    def get(self, key: str, default: Any = None) -> Any:
        phase = self.phases.get(key, default)
        if not math.isfinite(self.deadline):
            return phase  # an http_client with an unlimited Timeout: nothing to cut
        # Never 0, which a socket takes as "do not block" rather than "time is up".
        left = max(self.deadline - time.monotonic(), 0.001)
        return left if phase is None else min(float(phase), left)

    def __getitem__(self, key: str) -> Any:
        return self.get(key)


def past_deadline(request: httpx.Request, deadline: float) -> None:
    """Raise ``httpx.ReadTimeout`` when the attempt's deadline has passed: the same
    path as any timeout after sending (retried; an unknown outcome for a mutating
    call)."""
    if time.monotonic() > deadline:
        raise httpx.ReadTimeout("the attempt ran past its deadline", request=request)


def read_within(chunks: Iterable[bytes], request: httpx.Request, deadline: float) -> bytes:
    """A streamed answer's body, read until ``deadline`` at the latest."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        past_deadline(request, deadline)
    return bytes(body)


# --- the client's settings and one call's attempts ------------------------------------------


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Accept no cookie: the API authenticates every call with Basic auth, and a cookie
    set by a proxy or a load balancer must not be sent back."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


class ClientCore:
    """A client's settings, shared by the sync and the async shell: how to build the
    ``httpx`` client, the retry policy and the request-id factory.

    The arguments are those of :class:`~checkout_kit.client.CloudPaymentsClient`, less
    ``transport`` and ``sleep``, which belong to a shell.
    """

    def __init__(
        self,
        public_id: str,
        api_secret: str,
        *,
        base_url: str,
        timeout: float,
        max_retries: int,
        backoff: float,
        max_backoff: float,
        max_retry_after: float,
        random: Callable[[], float],
        request_id_factory: Callable[[], str] | None,
    ) -> None:
        if not isinstance(public_id, str) or not public_id:
            raise InvalidRequestError("public_id is required", "public_id")
        if not isinstance(api_secret, str) or not api_secret:
            raise InvalidRequestError("api_secret is required", "api_secret")
        if min(max_retries, backoff, max_backoff, max_retry_after) < 0 or not (
                0 < timeout < math.inf):
            raise InvalidRequestError(
                "max_retries, backoff, max_backoff and max_retry_after must be >= 0, "
                "timeout > 0 and finite")
        self.public_id = public_id
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.timeout = timeout
        #: The most one attempt may take, in seconds (:meth:`use_http_client`).
        self.attempt_seconds = float(timeout)
        self.random = random
        self.new_request_id = request_id_factory or _new_request_id
        credentials = base64.b64encode(f"{public_id}:{api_secret}".encode()).decode("ascii")
        #: Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient``.
        self.http_options: dict[str, Any] = {
            "base_url": self.base_url,
            "timeout": httpx.Timeout(timeout),
            # Basic credentials never change: one client-wide header.
            "headers": {"Accept": "application/json", "User-Agent": "checkout_kit",
                        "Authorization": "Basic " + credentials},
            "cookies": http.cookiejar.CookieJar(policy=_NoCookies()),
            "follow_redirects": False,
        }

    def __repr__(self) -> str:
        return f"public_id={self.public_id!r}, base_url={self.base_url!r}"

    def use_http_client(self, http_client: httpx.Client | httpx.AsyncClient | None) -> None:
        """Take the limit of one attempt from the ``httpx`` client that sends it.

        Our own client's attempt is limited to ``timeout`` in all (:meth:`limit`). A
        client given to us keeps its own ``Timeout``; its phases (pool, connect, write,
        read) together are the attempt's limit, and with any phase unlimited (``None``)
        so is the attempt (:attr:`worst_case_seconds` is then infinite)."""
        if http_client is None:
            self.attempt_seconds = self.timeout
            return
        t = http_client.timeout
        phases = (t.pool, t.connect, t.write, t.read)
        self.attempt_seconds = math.inf if any(p is None for p in phases) else float(
            sum(p for p in phases if p is not None))

    @property
    def worst_case_seconds(self) -> float:
        """How long one call may take before it gives up: every attempt running to its
        limit (:meth:`use_http_client`), and the longest wait before each retry (a
        ``Retry-After`` up to ``max_retry_after``, or the capped backoff). Infinite when
        an attempt has no limit."""
        return worst_case_seconds(self.attempt_seconds, max_retries=self.max_retries,
                                  max_backoff=self.max_backoff,
                                  max_retry_after=self.max_retry_after)

    def limit(self, request: httpx.Request) -> float:
        """Start an attempt of ``request``: return its deadline (``time.monotonic``).

        ``httpx.Timeout`` limits each phase on its own (waiting for the pool, connecting,
        every write, every read), so one attempt could take several times the timeout,
        and an answer that drips in never ends. Every phase httpx's transport starts now
        waits at most for what is left before the deadline (the transport reads the
        request's ``timeout`` extension at each operation), and the shell stops reading
        the body once the deadline has passed (:func:`read_within`)."""
        deadline = time.monotonic() + self.attempt_seconds
        base = request.extensions.get("timeout")
        if isinstance(base, _UntilDeadline):
            base = base.phases
        request.extensions["timeout"] = _UntilDeadline(
            base if isinstance(base, Mapping) else {}, deadline)
        return deadline

    def start(self, call: Call[_T]) -> Attempts[_T]:
        """Begin a call: its key (a mutating call always has one) and its body, both
        checked before anything is sent."""
        request_id = None
        if call.mutating:
            request_id = _request_id(
                self.new_request_id() if call.request_id is None else call.request_id
            )
        ctx = Context(call.method, call.path, call.mutating, request_id)
        return Attempts(self, call, ctx)

    def delay(self, attempt: int) -> float:
        """The backoff before retry ``attempt`` (from 0), with its jitter."""
        base = min(self.max_backoff, self.backoff * (2**attempt))
        return float(base * (0.5 + 0.5 * self.random()))

    def request_options(self, attempts: Attempts[Any], *, own_client: bool) -> dict[str, Any]:
        """``build_request``'s arguments for ``attempts``. A client the shell made has
        the base URL and the headers already; one the caller gave (``http_client``) is
        theirs and left as it is, so each request carries the whole URL and our headers
        (``Authorization`` included)."""
        if own_client:
            return {"method": attempts.method, "url": attempts.path,
                    "content": attempts.content, "headers": attempts.headers}
        return {"method": attempts.method, "url": self.base_url + attempts.path,
                "content": attempts.content,
                "headers": {**self.http_options["headers"], **attempts.headers}}

    @staticmethod
    def check_http_client(http_client: object, transport: object) -> bool:
        """Whether the shell makes its own ``httpx`` client: not when ``http_client`` is
        given, which then excludes ``transport`` (that belongs in the given client)."""
        if http_client is not None and transport is not None:
            raise InvalidRequestError(
                "pass transport or http_client, not both (set the transport on the "
                "http_client)", "transport")
        return http_client is None


class Attempts(Generic[_T]):
    """The attempts of one call: the request to send, and after each attempt what to do.

    A shell sends :attr:`method` :attr:`path` with :attr:`headers` and :attr:`content`,
    then hands the response to :meth:`answered` or the transport error to
    :meth:`failed`; each returns :class:`Retry` (sleep, then send the same request
    again) or :class:`Done`, or raises the call's final error.
    """

    def __init__(self, core: ClientCore, call: Call[_T], ctx: Context) -> None:
        self._core = core
        self._call = call
        self.ctx = ctx
        self.method = call.method
        self.path = call.path
        self.content: bytes | None = None
        self.headers: dict[str, str] = {}
        if call.body is not None:
            self.content = _encode(call.body)
            self.headers["Content-Type"] = "application/json; charset=utf-8"
        if ctx.request_id is not None:
            self.headers["X-Request-ID"] = ctx.request_id
        self._attempt = 0
        self._maybe_sent = False  # some attempt may have reached the gateway
        self._failure: GatewayError | None = None

    def answered(self, response: httpx.Response, content: bytes | None = None) -> Retry | Done[_T]:
        """An answer came back: its body read (``response.content``), or ``content``
        when the shell read a streamed body itself (:func:`read_within`)."""
        ctx, status = self.ctx, response.status_code
        if content is None:
            content = response.content
        if status == 401:
            self._refused(AuthenticationError(
                f"{ctx.endpoint}: HTTP 401, the Public ID / API secret pair was refused",
                **ctx.kw(401),
            ))
        if status < 500 and status != 429:
            return Done(self._read(status, content))
        retry_after = _retry_after(response.headers.get("Retry-After"))
        if status == 429:
            self._failure = RateLimitError(
                f"{ctx.endpoint}: HTTP 429, too many concurrent requests",
                retry_after=retry_after, **ctx.kw(429),
            )
        else:
            self._maybe_sent = True
            self._failure = ServerError(f"{ctx.endpoint}: HTTP {status}", **ctx.kw(status))
        if retry_after is not None and retry_after > self._core.max_retry_after:
            self._attempt += 1
            self._give_up()  # the gateway asks for longer than we may block: stop now
        return self._next(retry_after)

    def failed(self, exc: httpx.RequestError) -> Retry:
        """Sending or reading failed with a transport error."""
        ctx = self.ctx
        if isinstance(exc, _NEVER_SENT):
            raise APIConnectionError(
                f"{ctx.endpoint}: request not sent: {exc}", **ctx.kw()
            ) from exc
        if isinstance(exc, _NOT_SENT):
            failure = APIConnectionError(
                f"{ctx.endpoint}: could not connect: {type(exc).__name__}", **ctx.kw()
            )
        else:
            self._maybe_sent = True
            failure = APIConnectionError(
                f"{ctx.endpoint}: connection failed after sending: {type(exc).__name__}",
                **ctx.kw(),
            )
        failure.__cause__ = exc
        self._failure = failure
        return self._next(None)

    def _next(self, delay: float | None) -> Retry:
        attempt = self._attempt
        self._attempt += 1
        if self._attempt > self._core.max_retries:
            self._give_up()
        if delay is None:
            delay = self._core.delay(attempt)
        log.info(
            "%s: %s; retry %d/%d in %.2fs (request id %s)", self.ctx.endpoint,
            self._failure, self._attempt, self._core.max_retries, delay, self.ctx.request_id,
        )
        return Retry(delay)

    def _refused(self, refusal: GatewayError) -> NoReturn:
        """This attempt was refused without the gateway's envelope (a 401, a proxy's
        4xx). That says nothing of an earlier attempt that may have reached the gateway:
        only the envelope is definitive, as the gateway replays the first answer to the
        same X-Request-ID. So after such an attempt the outcome stays unknown."""
        self._failure = refusal
        self._attempt += 1
        self._give_up()

    def _give_up(self) -> NoReturn:
        failure, ctx = self._failure, self.ctx
        assert failure is not None
        if ctx.mutating and self._maybe_sent:
            raise UnknownOutcomeError(
                f"{ctx.endpoint}: no definite answer after {self._attempt} attempt(s) "
                f"(last: {failure.message}); the operation may or may not have happened: "
                f"reconcile, or repeat with request_id={ctx.request_id!r}",
                **ctx.kw(failure.status_code),
            ) from failure
        raise failure

    def _read(self, status: int, content: bytes) -> _T:
        """Decode and interpret a non-5xx answer. One that cannot be read is *unknown*
        for a mutating call (it did reach the gateway) and a server fault for a read."""
        ctx = self.ctx
        try:
            data = jsoncodec.loads(content)
        except JSONCodecError:
            data = None
        if not isinstance(data, dict):
            if 400 <= status < 500:
                # A 4xx without our envelope (a proxy, a wrong path): refused, not processed.
                self._refused(RequestRejectedError(f"{ctx.endpoint}: HTTP {status}",
                                                   **ctx.kw(status)))
            self._malformed(f"HTTP {status}, not a JSON object", status, None)
        if 400 <= status < 500 and not isinstance(data.get("Success"), bool):
            self._refused(RequestRejectedError(f"{ctx.endpoint}: HTTP {status}",
                                               **ctx.kw(status)))
        if not 200 <= status < 500:
            self._malformed(f"unexpected HTTP {status}", status, None)
        try:
            return self._call.read(data, status, ctx)
        except GatewayError:
            raise
        except Exception as exc:
            # Whatever reading the answer raises (ValueError, OSError from a date beyond
            # the platform's, RecursionError...), the call did reach the gateway.
            self._malformed(str(exc), status, exc)

    def _malformed(self, detail: str, status: int, cause: BaseException | None) -> NoReturn:
        ctx = self.ctx
        if ctx.mutating:
            raise UnknownOutcomeError(
                f"{ctx.endpoint}: the gateway's answer could not be understood ({detail}); "
                f"the outcome is unknown: reconcile, or repeat with request_id={ctx.request_id!r}",
                **ctx.kw(status),
            ) from cause
        raise ServerError(
            f"{ctx.endpoint}: malformed answer ({detail})", **ctx.kw(status)
        ) from cause
