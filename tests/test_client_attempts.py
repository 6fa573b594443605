"""checkout_kit.client._attempts: the core decides without any I/O (no httpx client, no
transport, no sleeping): requests, retry decisions and answers, step by step."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from checkout_kit import jsoncodec
from checkout_kit.client import _operations as ops
from checkout_kit.client._attempts import ClientCore
from checkout_kit.client._call import Done, Retry
from checkout_kit.errors import APIConnectionError, UnknownOutcomeError
from checkout_kit.models import Refund


def core(**kw: object) -> ClientCore:
    options: dict[str, object] = {
        "base_url": "https://api.example/", "timeout": 30.0, "max_retries": 2,
        "backoff": 1.0, "max_backoff": 10.0, "max_retry_after": 60.0,
        "random": lambda: 1.0, "request_id_factory": lambda: "rid-1",
    }
    options.update(kw)
    return ClientCore("pk_1", "secret", **options)  # type: ignore[arg-type]


def test_a_mutating_call_step_by_step() -> None:
    attempts = core().start(ops.refund(5, Decimal("1.5")))
    assert (attempts.method, attempts.path) == ("POST", "/payments/refund")
    assert attempts.headers == {"Content-Type": "application/json; charset=utf-8",
                                "X-Request-ID": "rid-1"}
    assert attempts.content == b'{"TransactionId":5,"Amount":1.50}'
    assert attempts.answered(httpx.Response(503)) == Retry(1.0)
    assert attempts.failed(httpx.ConnectError("refused")) == Retry(2.0)
    answer = {"Success": True, "Message": None, "Model": {"TransactionId": 77}}
    done = attempts.answered(httpx.Response(200, content=jsoncodec.dumps_bytes(answer)))
    assert isinstance(done, Done) and done.value == Refund(77)


def test_the_core_gives_up_with_the_right_error() -> None:
    attempts = core(max_retries=1).start(ops.void(5))
    assert attempts.answered(httpx.Response(502)) == Retry(1.0)
    with pytest.raises(UnknownOutcomeError) as caught:
        attempts.answered(httpx.Response(502))
    assert caught.value.request_id == "rid-1" and "2 attempt(s)" in caught.value.message
    reads = core(max_retries=0).start(ops.get_payment(5))
    assert reads.headers == {"Content-Type": "application/json; charset=utf-8"}
    with pytest.raises(APIConnectionError) as failed:
        reads.failed(httpx.ReadTimeout("slow"))
    assert not isinstance(failed.value, UnknownOutcomeError)


def test_a_get_has_no_body() -> None:
    attempts = core().start(ops.get_public_key())
    assert (attempts.method, attempts.content, attempts.headers) == ("GET", None, {})
