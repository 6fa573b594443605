"""``AsyncCloudPaymentsClient``: the sans-I/O core (:mod:`._operations`, :mod:`._attempts`) over
``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import math
import random as _random
import time
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from . import _operations as ops
from ._attempts import ClientCore, past_deadline
from ._call import Call, Done, Retry
from ._operations import DEFAULT_BASE_URL, method_like

__all__ = ["AsyncCloudPaymentsClient"]

_T = TypeVar("_T")

#: How long after its deadline an attempt still reading is cancelled: time for
#: httpcore's own timeouts, cut to the deadline, to end the other phases first and say
#: which phase it was (a connect timeout was not sent).
CANCEL_GRACE = 0.1
_P = ParamSpec("_P")


def _method(
    operation: Callable[_P, Call[_T]],
) -> Callable[Concatenate[AsyncCloudPaymentsClient, _P], Coroutine[Any, Any, _T]]:
    async def method(
        self: AsyncCloudPaymentsClient, /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        return await self._run(operation(*args, **kwargs))

    return method_like(method, operation, "AsyncCloudPaymentsClient")


class AsyncCloudPaymentsClient:
    """:class:`~checkout_kit.client.CloudPaymentsClient` for asyncio shops (Quart,
    FastAPI, aiohttp): the same methods, arguments, results and errors, as coroutines.

    One ``httpx.AsyncClient`` carries every call; ``transport`` replaces its network
    layer (``httpx.MockTransport``, ``httpx.ASGITransport``...), or ``http_client`` is an
    ``httpx.AsyncClient`` of one's own, used as configured and left open by
    :meth:`aclose`. Requests, the retry
    policy and the reading of answers are the sync client's own (one sans-I/O core);
    ``sleep`` is awaited between attempts. Use ``async with`` or :meth:`aclose`.
    """

    def __init__(
        self,
        public_id: str,
        api_secret: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        request_id_factory: Callable[[], str] | None = None,
    ) -> None:
        self._core = ClientCore(
            public_id, api_secret, base_url=base_url, timeout=timeout,
            max_retries=max_retries, backoff=backoff, max_backoff=max_backoff,
            max_retry_after=max_retry_after, random=random,
            request_id_factory=request_id_factory,
        )
        self.public_id = self._core.public_id
        self.base_url = self._core.base_url
        self._sleep = sleep
        # A client given to us is the caller's: used as configured, never closed here.
        self._owns_http = ClientCore.check_http_client(http_client, transport)
        self._http = http_client if http_client is not None else httpx.AsyncClient(
            transport=transport, **self._core.http_options)
        self._core.use_http_client(http_client)

    def __repr__(self) -> str:
        return f"AsyncCloudPaymentsClient({self._core!r})"

    @property
    def worst_case_seconds(self) -> float:
        """The longest one call may take, retries and their waits included: as
        :attr:`CloudPaymentsClient.worst_case_seconds`, and :data:`CANCEL_GRACE` more
        per attempt."""
        return self._core.worst_case_seconds + CANCEL_GRACE * (self._core.max_retries + 1)

    async def aclose(self) -> None:
        """Close the connection pool (and the transport given to us); an ``http_client``
        given to us is left open: its owner closes it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncCloudPaymentsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self, call: Call[_T]) -> _T:
        attempts = self._core.start(call)
        request = self._http.build_request(
            **self._core.request_options(attempts, own_client=self._owns_http))
        while True:
            step: Retry | Done[_T]
            # One deadline for the whole attempt, as in the sync client. Every phase
            # httpcore starts is cut to what is left of it (ClientCore.limit), so a slow
            # pool, connect or write ends at the deadline as that phase's own timeout
            # (a connect timeout: not sent). Only a read that keeps getting bytes (an
            # answer whose headers drip in) outlives it: CANCEL_GRACE later, the attempt
            # is cancelled, as a timeout after sending.
            deadline = self._core.limit(request)
            try:
                async with asyncio.timeout(
                        None if math.isinf(deadline)
                        else max(deadline - time.monotonic(), 0) + CANCEL_GRACE):
                    response = await self._http.send(request, follow_redirects=False,
                                                     stream=True)
                    try:
                        # A transport that is not httpcore's (a mock, ASGI) is held to
                        # the deadline here, as in the sync client.
                        past_deadline(request, deadline)
                        body = bytearray()
                        async for chunk in response.aiter_bytes():
                            body += chunk
                            past_deadline(request, deadline)
                    finally:
                        await response.aclose()
            except TimeoutError:
                step = attempts.failed(httpx.ReadTimeout(
                    "the attempt ran past its deadline", request=request))
            except httpx.RequestError as exc:
                step = attempts.failed(exc)
            else:
                step = attempts.answered(response, bytes(body))
            if isinstance(step, Done):
                return step.value
            await self._sleep(step.delay)

    test = _method(ops.test)
    charge = _method(ops.charge)
    auth = _method(ops.auth)
    post3ds = _method(ops.post3ds)
    charge_token = _method(ops.charge_token)
    auth_token = _method(ops.auth_token)
    confirm = _method(ops.confirm)
    void = _method(ops.void)
    refund = _method(ops.refund)
    get_payment = _method(ops.get_payment)
    find_payment = _method(ops.find_payment)
    find_operation = _method(ops.find_operation)
    list_payments = _method(ops.list_payments)
    list_payments_v2 = _method(ops.list_payments_v2)
    list_tokens = _method(ops.list_tokens)
    create_subscription = _method(ops.create_subscription)
    get_subscription = _method(ops.get_subscription)
    find_subscriptions = _method(ops.find_subscriptions)
    update_subscription = _method(ops.update_subscription)
    cancel_subscription = _method(ops.cancel_subscription)
    create_order = _method(ops.create_order)
    cancel_order = _method(ops.cancel_order)
    get_notification_settings = _method(ops.get_notification_settings)
    update_notification_settings = _method(ops.update_notification_settings)
    get_public_key = _method(ops.get_public_key)
