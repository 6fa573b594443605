"""Bad input never makes the sandbox answer 500: it answers the gateway's envelope."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkout_kit.sandbox import create_sandbox_app, sandbox_of
from checkout_kit.sandbox.api import ROUTES

PATHS = sorted(p.replace("<kind>", "Pay") for p in ROUTES)
FIELDS = ["Amount", "Currency", "IpAddress", "CardCryptogramPacket", "TransactionId", "PaRes",
          "Token", "AccountId", "TrInitiatorCode", "InvoiceId", "JsonData", "Date", "TimeZone",
          "CreatedDateGte", "CreatedDateLte", "PageNumber", "Statuses", "Id", "StartDate",
          "Interval", "Period", "MaxPeriods", "Description", "IsEnabled", "Address",
          "HttpMethod", "Encoding", "MD", "SaveCard", "PublicId", "RequireConfirmation",
          "SuccessRedirectUrl", "Email", "amount"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from(["1", "0", "-1", "1e400", "NaN", "Infinity", "100.001", "10.50", "",
                     "2025-01-01", "/Date(99999999999999)/", "Month", "tk_x", "\x00",
                     "9" * 60, "http://x.example/", "{\"a\":", "[]", "01" + "A" * 400]),
    st.text(max_size=40),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
bodies = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), values, max_size=8)


@pytest.fixture(scope="module")
def web(cloudpayments_sandbox_keys: dict[int, bytes]) -> FlaskClient:
    app = create_sandbox_app(keys=cloudpayments_sandbox_keys)
    return app.test_client()


def _auth(web: FlaskClient) -> dict[str, str]:
    sandbox = sandbox_of(web.application)
    token = base64.b64encode(f"{sandbox.public_id}:{sandbox.api_secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _check(answer: Any) -> None:
    assert answer.status_code != 500, answer.get_data(as_text=True)
    if answer.status_code in (204, 302):
        return
    data = answer.get_json()
    assert isinstance(data, dict)
    assert isinstance(data.get("Success"), bool) or set(data) == {"Pem", "Version"}


FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FUZZ
@given(path=st.sampled_from(PATHS), body=bodies, as_form=st.booleans())
def test_random_bodies(web: FlaskClient, path: str, body: dict[str, Any], as_form: bool) -> None:
    headers = _auth(web)
    if as_form:
        form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
        answer = web.post(path, data=form, headers=headers)
    else:
        answer = web.post(path, json=body, headers=headers)
    _check(answer)


@FUZZ
@given(path=st.sampled_from(PATHS), raw=st.binary(max_size=200),
       ctype=st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                              "text/plain", "application/xml", "",
                              "application/x-www-form-urlencoded; charset=windows-1251"]))
def test_malformed_bytes(web: FlaskClient, path: str, raw: bytes, ctype: str) -> None:
    answer = web.post(path, data=raw, headers={**_auth(web), "Content-Type": ctype})
    _check(answer)


@FUZZ
@given(path=st.sampled_from(PATHS), user=st.text(max_size=20), password=st.text(max_size=20),
       scheme=st.sampled_from(["Basic", "Bearer", "basic", ""]))
def test_wrong_auth(web: FlaskClient, path: str, user: str, password: str, scheme: str) -> None:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    answer = web.post(path, json={"TransactionId": 1},
                      headers={"Authorization": f"{scheme} {token}"})
    _check(answer)
    if path not in ("/payments/publickey", "/payments/threedscallback"):
        assert answer.status_code in (401, 405)


@pytest.mark.parametrize("body", [
    b"{" * 100_000, b"[" * 5000 + b"]" * 5000, b'{"Amount": 1' + b"0" * 5000 + b"}",
    b'{"JsonData": ' + b'{"a":' * 40 + b"1" + b"}" * 40 + b"}",
])
def test_pathological_json(web: FlaskClient, body: bytes) -> None:
    answer = web.post("/payments/cards/charge", data=body,
                      headers={**_auth(web), "Content-Type": "application/json"})
    _check(answer)
    assert answer.get_json()["Success"] is False
