"""``checkout-kit webhook send`` against a real local HTTP server that verifies what it gets."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from checkout_kit import notifications as nt
from checkout_kit.cli import main
from checkout_kit.errors import SignatureVerificationError
from checkout_kit.webhooks import WEBHOOK_TYPES

SECRET = "sk_test_cli_секрет"


@dataclass
class Recorder:
    """A WSGI endpoint that checks each notification's HMAC with ``verify`` and records it."""

    answer: bytes = b'{"code":0}'
    status: int = 200
    encoding: str = "utf-8"
    calls: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        # The exact bytes: the body before any form parsing, or the raw query string.
        raw = request.get_data() if request.method == "POST" else environ["QUERY_STRING"].encode()
        try:
            nt.verify(raw, request.headers, SECRET, encoding=self.encoding, require_both=True)
            verified: str | None = None
        except SignatureVerificationError as exc:
            verified = exc.header or "none"
        self.calls.append({
            "method": request.method, "path": request.path, "raw": raw,
            "headers": dict(request.headers), "failed_header": verified,
            "fields": nt.parse_fields(raw, encoding=self.encoding),
        })
        return Response(self.answer, self.status, content_type="application/json")(
            environ, start_response)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    app = Recorder()
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.url = f"http://127.0.0.1:{server.server_port}/cloudpayments/notify"
    yield app
    server.shutdown()
    server.server_close()
    thread.join()


def _send(recorder: Recorder, *args: str, secret: str = SECRET) -> Any:
    return CliRunner().invoke(
        main, ["webhook", "send", *args, "--to", recorder.url, "--secret", secret])


@pytest.mark.parametrize("kind", WEBHOOK_TYPES)
def test_every_type_arrives_signed_and_realistic(recorder: Recorder, kind: str) -> None:
    result = _send(recorder, kind.lower())
    assert result.exit_code == 0, result.output
    (call,) = recorder.calls
    assert call["failed_header"] is None
    assert call["method"] == "POST" and call["path"] == "/cloudpayments/notify"
    assert call["headers"]["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"
    assert call["fields"] == nt.parse_fields(call["raw"])
    if kind not in ("Recurrent", "Receipt"):
        parsed = nt.parse_notification(kind, call["fields"])
        assert parsed.transaction_id is not None and parsed.amount is not None
        assert str(parsed.transaction_id) in result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"POST {recorder.url}  {kind} ")
    assert lines[1] == 'HTTP 200  {"code":0}'
    assert lines[2] == ("the gateway goes ahead with the payment" if kind == "Check"
                        else "registered")


def test_get_in_windows_1251_with_fields(recorder: Recorder) -> None:
    recorder.encoding = "windows-1251"
    result = _send(recorder, "Pay", "--method", "get", "--encoding", "windows-1251",
                   "--field", "Description=Оплата №7 & co=1+1",
                   "--field", "InvoiceId=A-7", "--field", "Extra=")
    assert result.exit_code == 0, result.output
    (call,) = recorder.calls
    assert call["method"] == "GET" and call["failed_header"] is None
    assert "Content-Type" not in call["headers"]
    assert b"%CE%EF%EB%E0%F2%E0" in call["raw"]  # "Оплата" in Windows-1251, percent-encoded
    assert call["fields"]["Description"] == "Оплата №7 & co=1+1"
    assert (call["fields"]["InvoiceId"], call["fields"]["Extra"]) == ("A-7", "")


def test_the_recorder_notices_a_wrong_secret(recorder: Recorder) -> None:
    recorder.answer = b'{"code":13}'
    result = _send(recorder, "Pay", secret="not-the-secret")
    assert result.exit_code == 1
    assert recorder.calls[0]["failed_header"] == "Content-HMAC"
    assert "not registered" in result.output


@pytest.mark.parametrize(
    ("kind", "status", "answer", "verdict"),
    [
        ("Check", 200, b'{"code":12}', "declines the payment (3003 InvalidAmount)"),
        ("Check", 200, b'{"code":20}', "declines the payment (3004 OutOfDate)"),
        ("Check", 200, b'{"code":7}', "declines the payment (3005 FormatError)"),
        ("Check", 200, b"<html>Fatal error</html>", "(3005 FormatError)"),
        ("Check", 500, b'{"code":0}', "(3006 Unavailable)"),
        ("Pay", 200, b'{"code":1}', "deliver it again"),
        ("Pay", 503, b'{"code":0}', "deliver it again"),
        ("Refund", 200, b"OK", "deliver it again"),
    ],
)
def test_answers_the_gateway_would_not_take(
    recorder: Recorder, kind: str, status: int, answer: bytes, verdict: str
) -> None:
    recorder.status, recorder.answer = status, answer
    result = _send(recorder, kind)
    assert result.exit_code == 1
    assert verdict in result.output
    assert f"HTTP {status}  {answer.decode()}" in result.output


def test_json_output(recorder: Recorder) -> None:
    result = _send(recorder, "Refund", "--json", "--field", "PaymentTransactionId=42")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["type"] == "Refund" and record["method"] == "POST"
    assert record["status"] == 200 and record["code"] == 0 and record["ok"] is True
    assert record["fields"]["PaymentTransactionId"] == "42"
    assert record["fields"] == recorder.calls[0]["fields"]


def test_usage_and_connection_errors(recorder: Recorder) -> None:
    bad_field = _send(recorder, "Pay", "--field", "no-equals-sign")
    assert bad_field.exit_code == 2 and "K=V" in bad_field.output
    bad_type = _send(recorder, "Payment")
    assert bad_type.exit_code == 2
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for url in (f"http://127.0.0.1:{port}/", "not a url", "ftp://127.0.0.1/"):
        result = CliRunner().invoke(
            main, ["webhook", "send", "Pay", "--to", url, "--secret", SECRET, "--timeout", "5"])
        assert result.exit_code == 2, (url, result.output)
        assert "could not send" in result.output
    assert recorder.calls == []


def test_secret_from_the_environment(recorder: Recorder) -> None:
    result = CliRunner().invoke(main, ["webhook", "send", "Cancel", "--to", recorder.url],
                                env={"CHECKOUT_KIT_API_SECRET": SECRET})
    assert result.exit_code == 0, result.output
    assert recorder.calls[0]["failed_header"] is None
