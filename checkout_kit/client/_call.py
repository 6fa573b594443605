"""One API call as the client's sans-I/O core sees it: what an operation makes
(:class:`Call`), what the error paths know of it in flight (:class:`Context`), and what
the core tells a shell after each attempt (:class:`Retry`, :class:`Done`).

:class:`~checkout_kit.client.CloudPaymentsClient` (httpx.Client) and
:class:`~checkout_kit.client.AsyncCloudPaymentsClient` (httpx.AsyncClient) are thin
shells over one core that does everything but sending bytes and sleeping, in the way
httpx and Flask's ``sansio`` packages split their sync and async halves. The core is
four modules, each importing only those before it:

* this one, the words the others share;
* :mod:`._answers`, reading an answer: the envelope, declines, 3-D Secure, typed models;
* :mod:`._operations`, the API operations: each public client method is an *operation*,
  a function that checks its arguments and returns a :class:`Call` (path, body, whether
  it moves money, how to read the answer); the shells expose every operation as a
  method with the operation's signature and docstring;
* :mod:`._attempts`, the client's settings (:class:`~._attempts.ClientCore`) and one
  call's attempts (:class:`~._attempts.Attempts`): the request's headers, its JSON body
  (:mod:`checkout_kit.jsoncodec`) and the ``X-Request-ID`` of mutating calls; the retry
  policy (which failures are retried, the backoff and its jitter, ``Retry-After``, when
  an outcome is unknown); the deadline of each attempt.

A shell only builds the ``httpx.Request`` (``build_request``), sends it (``send``),
feeds the response or the transport error to ``Attempts`` and sleeps when told to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

__all__ = ["Call", "Context", "Done", "Reader", "Retry"]

_T = TypeVar("_T")


class Context(NamedTuple):
    """What the error paths need to know about one API call in flight."""

    method: str
    path: str
    mutating: bool
    request_id: str | None

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"

    def kw(self, status_code: int | None = None) -> dict[str, Any]:
        return {"status_code": status_code, "request_id": self.request_id, "endpoint": self.path}


#: Reads a decoded answer (its JSON object and HTTP status) into a call's result.
Reader = Callable[[Mapping[str, Any], int, Context], _T]


@dataclass(frozen=True)
class Call(Generic[_T]):
    """One API operation, ready to send: made by an operation function, run by a shell.

    ``request_id`` is the caller's key for a mutating call (``None``: one is generated
    when the call starts); reads never send one.
    """

    path: str
    body: Any
    read: Reader[_T]
    mutating: bool
    request_id: str | None = None
    method: str = "POST"


@dataclass(frozen=True)
class Retry:
    """Sleep ``delay`` seconds, then send the same request again."""

    delay: float


@dataclass(frozen=True)
class Done(Generic[_T]):
    """The call is over; ``value`` is its result."""

    value: _T
