"""The CloudPayments HTTP API over httpx (docs/gateway.md §3, §4, §1.7).

:class:`CloudPaymentsClient` (on ``httpx.Client``) and :class:`AsyncCloudPaymentsClient`
(on ``httpx.AsyncClient``) have the same methods, arguments, results and errors: both
are thin shells over one sans-I/O core that builds the requests, decides the retries
and reads the answers. Results are typed values from :mod:`checkout_kit.models`;
failures are the :class:`~checkout_kit.errors.GatewayError` family. How each answer is
surfaced:

=========================================  ===============================================
gateway answer                             what the client does
=========================================  ===============================================
``Success: true`` + transaction            returns ``Transaction``
``Success: false`` + ``AcsUrl``/``PaReq``  returns ``ThreeDSChallenge`` (``charge``/``auth``
                                           only; it is not an error)
transaction with ``Status: Declined``      raises ``PaymentDeclined`` with ``reason_code``,
(or ``Success: false``, ``ReasonCode≠0``)  ``reason``, ``cardholder_message``, ``transaction``
``Success: false`` + ``Message``           raises ``RequestRejectedError``
HTTP 401                                   raises ``AuthenticationError``
HTTP 429                                   retried (honouring ``Retry-After``), then
                                           ``RateLimitError``
HTTP 5xx, connection failures              retried with backoff and jitter, then
                                           ``ServerError`` / ``APIConnectionError``
...on a mutating call that may have        ``UnknownOutcomeError``
arrived, or an answer we cannot read
=========================================  ===============================================

Declines are exceptions, one way for every payment method (cryptogram, token, 3-D Secure
completion), so that code after ``charge(...)`` only ever sees money that moved. Read-only
calls (``get_payment``, ``find_payment``, lists) return declined transactions as data.

Idempotency: every mutating call sends ``X-Request-ID`` (the caller's ``request_id`` or a
generated one), the same on every retry; the gateway answers a repeated id with the stored
result for one hour. A mutating call is never sent without it. When such a call may have
reached the gateway and no definite answer came back, the client raises
:class:`~checkout_kit.errors.UnknownOutcomeError` instead of guessing: reconcile with
``find_payment`` or repeat the call with ``exc.request_id``.

Time: one attempt ends ``timeout`` seconds after it starts, whatever the server sends (an
answer that drips in a byte at a time included), so :attr:`~CloudPaymentsClient.worst_case_seconds`
bounds a call. The sync client holds that with its :class:`DeadlineTransport`, the async
one by cancelling the attempt. An ``http_client`` of one's own keeps the bound when it is
built on ``DeadlineTransport(proxy=environment_proxy(base_url))`` (sync) or used by the
async client.
"""

from __future__ import annotations

from ..models import TrInitiator
from ._async import AsyncCloudPaymentsClient
from ._deadline import DeadlineTransport, environment_proxy
from ._operations import DEFAULT_BASE_URL, SUBSCRIPTION_FIELDS, format_api_datetime
from ._sync import CloudPaymentsClient

__all__ = [
    "DEFAULT_BASE_URL",
    "SUBSCRIPTION_FIELDS",
    "AsyncCloudPaymentsClient",
    "CloudPaymentsClient",
    "DeadlineTransport",
    "TrInitiator",
    "environment_proxy",
    "format_api_datetime",
]
