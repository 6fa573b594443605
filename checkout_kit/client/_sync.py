"""``CloudPaymentsClient``: the sans-I/O core (:mod:`._operations`, :mod:`._attempts`) over
``httpx.Client``."""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Concatenate, ParamSpec, TypeVar

import httpx

from . import _operations as ops
from ._attempts import ClientCore, past_deadline, read_within
from ._call import Call, Done, Retry
from ._deadline import DeadlineTransport, environment_proxy
from ._operations import DEFAULT_BASE_URL, method_like

__all__ = ["CloudPaymentsClient"]

_T = TypeVar("_T")
_P = ParamSpec("_P")


def _method(
    operation: Callable[_P, Call[_T]],
) -> Callable[Concatenate[CloudPaymentsClient, _P], _T]:
    def method(self: CloudPaymentsClient, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return self._run(operation(*args, **kwargs))

    return method_like(method, operation, "CloudPaymentsClient")


class CloudPaymentsClient:
    """A client for the CloudPayments API (Basic auth ``public_id:api_secret``, JSON bodies).

    One ``httpx.Client`` carries every call (its connection pool and keep-alive, the TLS
    settings and proxies of the environment); ``transport`` replaces its network layer,
    for tests: ``httpx.MockTransport(handler)`` or
    ``httpx.WSGITransport(app=create_sandbox_app(...))``. Either way a call takes the same
    path: ``build_request`` and ``send``. ``http_client`` is an ``httpx.Client`` of one's
    own (proxies, TLS, limits, event hooks, its timeout) to use instead: each request then
    carries the whole URL and the client's headers and auth; :meth:`close` leaves it open.

    ``max_retries`` is the number of extra attempts after the first on connection
    failures, 429 and 5xx; the delay before retry *n* (from 0) is ``backoff * 2**n``
    capped at ``max_backoff``, multiplied by a jitter factor in ``[0.5, 1)`` drawn from
    ``random`` (``Retry-After`` wins when sent, unless it exceeds ``max_retry_after``, in
    which case the call stops retrying). ``sleep`` waits between attempts.

    Declines raise :class:`~checkout_kit.errors.PaymentDeclined`; 3-D Secure is returned as
    :class:`~checkout_kit.models.ThreeDSChallenge`; see :mod:`checkout_kit.client`.
    Usable as a context manager; :meth:`close` releases the connection pool.
    """

    def __init__(
        self,
        public_id: str,
        api_secret: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
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
        if http_client is None and transport is None:
            # Our transport holds each attempt to its deadline, headers included.
            transport = DeadlineTransport(proxy=environment_proxy(self._core.base_url))
        self._http = http_client if http_client is not None else httpx.Client(
            transport=transport, **self._core.http_options)
        self._core.use_http_client(http_client)

    def __repr__(self) -> str:
        return f"CloudPaymentsClient({self._core!r})"

    @property
    def worst_case_seconds(self) -> float:
        """The longest one call may take, retries and their waits included (a ledger
        must not take a call this young for a dead worker's): ``timeout`` per attempt,
        or with ``http_client`` its timeout's phases added up (``math.inf`` when one of
        them is ``None``)."""
        return self._core.worst_case_seconds

    def close(self) -> None:
        """Close the connection pool (and the transport given to us); an ``http_client``
        given to us is left open: its owner closes it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> CloudPaymentsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, call: Call[_T]) -> _T:
        attempts = self._core.start(call)
        request = self._http.build_request(
            **self._core.request_options(attempts, own_client=self._owns_http))
        while True:
            step: Retry | Done[_T]
            # One deadline for the whole attempt (ClientCore.limit): httpx's timeouts
            # limit each phase only, and a dripping answer would never end.
            deadline = self._core.limit(request)
            try:
                response = self._http.send(request, follow_redirects=False, stream=True)
                try:
                    past_deadline(request, deadline)
                    content = read_within(response.iter_bytes(), request, deadline)
                finally:
                    response.close()
            except httpx.RequestError as exc:
                step = attempts.failed(exc)
            else:
                step = attempts.answered(response, content)
            if isinstance(step, Done):
                return step.value
            self._sleep(step.delay)

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
