"""Arbitrary bodies, query strings and headers to the notification routes never produce
a 500 or an answer that is not JSON ``{"code": N}`` — signed with the right secret too,
so that the bytes get past the HMAC into parsing and the ledger."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkout_kit import jsoncodec, notifications, webhooks
from checkout_kit.pytest_plugin import SANDBOX_API_SECRET

from .conftest import Shop

_KINDS = st.sampled_from([*webhooks.WEBHOOK_TYPES, "pay", "nope"])
_NAMES = st.sampled_from(["TransactionId", "Amount", "Currency", "InvoiceId", "AccountId",
                          "Status", "OperationType", "DateTime", "TestMode", "ReasonCode",
                          "PaymentTransactionId", "Data", "Token", "Id", "Type", "x"])
_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["1", "0", "-1", "1e9999", "100.00", "99.999", "RUB", "order-1",
                     "2026-01-01 00:00:00", "{\"a\":[[[[1]]]]}", "%ZZ", "+", "Completed",
                     "Authorized", "18446744073709551616", ""]),
)
_HEADER_NAMES = st.sampled_from(["Content-Type", "Content-HMAC", "X-Content-HMAC",
                                 "X-Forwarded-For", "X-Other", "Content-Encoding"])
_HEADER_VALUES = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


def _query(raw: bytes) -> dict[str, str]:
    # The raw query string as a server hands it over (WSGI strings are latin-1 bytes).
    return {"QUERY_STRING": raw.decode("latin-1")}


def _check_answer(response: Any) -> int:
    assert response.status_code < 500, response.get_data()
    assert response.mimetype == "application/json"
    body = jsoncodec.loads(response.get_data())
    assert isinstance(body, dict) and set(body) == {"code"} and isinstance(body["code"], int)
    code: int = body["code"]
    return code


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=_KINDS, method=st.sampled_from(["GET", "POST"]), raw=st.binary(max_size=300),
       headers=st.dictionaries(_HEADER_NAMES, _HEADER_VALUES, max_size=4))
def test_random_bytes_and_headers_get_a_json_answer(shop: Shop, kind: str, method: str,
                                                    raw: bytes, headers: dict[str, str]) -> None:
    path = f"/checkout/notifications/{kind.lower()}"
    if method == "GET":
        response = shop.client.get(path, headers=headers, environ_overrides=_query(raw))
    else:
        response = shop.client.post(path, data=raw, headers=headers)
    if kind == "nope":
        assert response.status_code == 404
        return
    _check_answer(response)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(webhooks.WEBHOOK_TYPES), method=st.sampled_from(["GET", "POST"]),
       fields=st.dictionaries(_NAMES, _VALUES, max_size=8),
       encoding=st.sampled_from(["utf-8", "windows-1251"]))
def test_signed_random_fields_never_fail_the_shop(shop: Shop, kind: str, method: str,
                                                  fields: dict[str, str],
                                                  encoding: str) -> None:
    payment = shop.create("fuzz", amount="100.00")
    fields = {"InvoiceId": payment.invoice_id, **fields}
    try:
        body = notifications.encode_body(fields, encoding)
    except (UnicodeEncodeError, ValueError):
        return  # not encodable in that charset: the gateway could not send it either
    headers = dict(notifications.sign(body, SANDBOX_API_SECRET, encoding=encoding))
    path = f"/checkout/notifications/{kind.lower()}"
    if method == "GET":
        response = shop.client.get(path, headers=headers, environ_overrides=_query(body))
    else:
        charset = "windows-1251" if encoding == "windows-1251" else "utf-8"
        headers["Content-Type"] = f"application/x-www-form-urlencoded; charset={charset}"
        response = shop.client.post(path, data=body, headers=headers)
    code = _check_answer(response)
    row = shop.state.inbox.list(limit=1)[0]
    assert row.body == body and row.code == code
    assert row.outcome != "error", row.error
