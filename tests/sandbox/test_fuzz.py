"""Bad input never makes the sandbox answer 500.

Bodies are written as raw text, not only serialised from Python values, so that what
``json.dumps`` never writes reaches the sandbox too: ``NaN``, ``Infinity``, numbers
such as ``1e1000000``, nesting thousands deep, control characters, lone surrogates,
and URLs httpx cannot send to. The fuzzed surface: every API route (the gateway's
envelope, always JSON), the notification settings followed by a real payment, the
bank page (``/acs``, ``/acs/complete``), ``/payments/ThreeDSCallback`` and the
``/_sandbox/`` controls.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkout_kit import threeds
from checkout_kit.models import ThreeDSChallenge
from checkout_kit.notifications import NotificationType
from checkout_kit.sandbox import Sandbox, create_sandbox_app, sandbox_of
from checkout_kit.sandbox.web.api import ROUTES

PATHS = sorted(p.replace("<kind>", "Pay") for p in ROUTES)
FIELDS = ["Amount", "Currency", "IpAddress", "CardCryptogramPacket", "TransactionId", "PaRes",
          "Token", "AccountId", "TrInitiatorCode", "InvoiceId", "JsonData", "Date", "TimeZone",
          "CreatedDateGte", "CreatedDateLte", "PageNumber", "Statuses", "Id", "StartDate",
          "Interval", "Period", "MaxPeriods", "Description", "IsEnabled", "Address",
          "HttpMethod", "Encoding", "MD", "SaveCard", "PublicId", "RequireConfirmation",
          "SuccessRedirectUrl", "FailRedirectUrl", "Email", "CustomerReceipt", "CultureName",
          "Name", "PaymentUrl", "amount"]
KINDS = [t.value for t in NotificationType] + ["pay", "Nonsense", "%00", "Pay.json"]

ODD_URLS = [
    "http://a:b/", "http://[::1/", "http://shop.test/\tx", "http://shop.test/x\r\nX-A: b",
    "http://shop.test/\x00", "http://shop.test/\x7f", "http://", "https://", "http:///x",
    "//shop.test/x", "ftp://shop.test/", "javascript:alert(1)", "HTTP://SHOP.TEST/",
    "http://xn--a/", "http://shop.test:0/", "http://shop.test:99999/", "http://%zz/",
    "http://user:pass@shop.test/", "http://[fe80::1%25eth0]/", "http://shop test/",
    " http://shop.test/", "http://\u202eevil/", "http://shop.test/" + "a" * 3000,
    "http://shop.test/ok", "https://shop.test/ok?x=1#f",
]
NUMBERS = [
    "NaN", "Infinity", "-Infinity", "1e1000000", "-1e-1000000", "1e400", "1e401",
    "1E+9999999999999999999999999", "9" * 5000, "-" + "9" * 30, "0.1" + "0" * 500, "-0",
    "0.001", "1.005", "10.50", "100", "1e2", "9223372036854775808", "2.5",
]
TEXTS = [
    "", "NaN", "1e400", "/Date(99999999999999999999)/", "/Date(-1)/", "2025-01-01",
    "9999-12-31T23:59:59Z", "Month", "tk_x", "\x00", "\u0000\u0001\u001f", "\ud800",
    '{"a": NaN}', '{"$decimal": "oops"}', "[" * 40, "01" + "A" * 400,
]


#: Fields that pass every route's checks (with the real packet, token and ids added).
VALID = {"Amount": "1", "Currency": '"RUB"', "IpAddress": '"1.1.1.1"', "InvoiceId": '"fuzz"',
         "Description": '"fuzz"', "StartDate": '"2099-01-01T00:00:00"', "Interval": '"Day"',
         "Period": "1", "Date": '"2025-01-01"', "CreatedDateGte": '"2020-01-01"',
         "CreatedDateLte": '"2099-01-01"', "TrInitiatorCode": "1", "PaRes": '"x"'}


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _json_text(value: str) -> str:
    # json.dumps writes a lone surrogate as an escape, which the sandbox then reads
    return json.dumps(value)


leaf_text = st.one_of(
    st.sampled_from(NUMBERS),
    st.sampled_from(["true", "false", "null", "[]", "{}", '{"$decimal": "oops"}',
                     '{"$datetime": "x"}', _deep(31), _deep(33), _deep(3000)]),
    st.sampled_from(TEXTS + ODD_URLS).map(_json_text),
    st.text(max_size=30).map(_json_text),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
)
value_text = st.recursive(leaf_text, lambda inner: st.one_of(
    st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]"),
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), inner, max_size=3).map(
        lambda d: "{" + ",".join(f"{_json_text(k)}:{v}" for k, v in d.items()) + "}"),
), max_leaves=6)


def _object(members: dict[str, str]) -> str:
    return "{" + ",".join(f"{_json_text(k)}: {v}" for k, v in members.items()) + "}"


@st.composite
def raw_bodies(draw: st.DrawFn, extra: dict[str, str] | None = None) -> bytes:
    """A JSON object as text: gateway fields with raw values, sometimes cut short."""
    members = draw(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), value_text,
                                   max_size=6))
    text = _object({**(extra or {}), **members})
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode("utf-8", "surrogatepass")


FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


def _shop(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"code": 0})


@pytest.fixture(scope="module")
def sandbox(cloudpayments_sandbox_keys: dict[int, bytes]) -> Iterator[Sandbox]:
    app = create_sandbox_app(keys=cloudpayments_sandbox_keys,
                             notification_transport=httpx.MockTransport(_shop))
    yield sandbox_of(app)


@pytest.fixture(scope="module")
def web(sandbox: Sandbox) -> FlaskClient:
    return sandbox.app.test_client()


@pytest.fixture(scope="module")
def auth(sandbox: Sandbox) -> dict[str, str]:
    token = base64.b64encode(f"{sandbox.public_id}:{sandbox.api_secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def real(sandbox: Sandbox, web: FlaskClient, auth: dict[str, str]) -> dict[str, str]:
    """Values that get past the first checks, so that fuzzing reaches deeper: a packet
    that pays, a saved card's token, a 3-D Secure transaction."""
    packet = sandbox.make_cryptogram("4000000000003055")
    paid = web.post("/payments/cards/charge", headers=auth, json={
        "Amount": 1, "IpAddress": "1.1.1.1", "CardCryptogramPacket": packet, "SaveCard": True,
        "AccountId": "fuzz"}).get_json()["Model"]
    challenge = ThreeDSChallenge.from_api(web.post("/payments/cards/charge", headers=auth, json={
        "Amount": 1, "IpAddress": "1.1.1.1",
        "CardCryptogramPacket": sandbox.make_cryptogram("4242424242424242")}).get_json()["Model"])
    return {"CardCryptogramPacket": _json_text(packet), "Token": _json_text(paid["Token"]),
            "AccountId": '"fuzz"', "TransactionId": str(challenge.transaction_id),
            "ThreeDsCallbackId": _json_text(challenge.three_ds_callback_id),
            "PaReq": challenge.pa_req}


def _envelope(answer: Any) -> None:
    """Not a 500, and the gateway's JSON envelope (a redirect or preflight aside)."""
    assert answer.status_code != 500, answer.get_data(as_text=True)[:500]
    if answer.status_code in (204, 302):
        assert "\r" not in answer.headers.get("Location", "")
        assert "\n" not in answer.headers.get("Location", "")
        return
    assert answer.mimetype == "application/json", answer.get_data(as_text=True)[:200]
    data = json.loads(answer.get_data())
    assert isinstance(data, dict)
    assert isinstance(data.get("Success"), bool) or set(data) == {"Pem", "Version"}


def _page(answer: Any) -> None:
    assert answer.status_code < 500, answer.get_data(as_text=True)[:500]


# --------------------------------------------------------------------------- the API


@FUZZ
@given(path=st.sampled_from(PATHS), data=st.data())
def test_raw_json_bodies(web: FlaskClient, auth: dict[str, str], real: dict[str, str],
                         path: str, data: st.DataObject) -> None:
    # Most examples start from a request that would pass, so that the raw values drawn
    # over it reach the code behind the first checks (payments stored, subscriptions...).
    base = data.draw(st.sampled_from([{}, VALID, {**VALID, **real}, {**VALID, **real}]))
    body = data.draw(raw_bodies({k: v for k, v in base.items() if k in FIELDS}))
    _envelope(web.post(path, data=body, headers={**auth, "Content-Type": "application/json"}))


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from(TEXTS + ODD_URLS), st.text(max_size=40),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
bodies = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), values, max_size=8)


@FUZZ
@given(path=st.sampled_from(PATHS), body=bodies, as_form=st.booleans())
def test_random_bodies(web: FlaskClient, auth: dict[str, str], path: str,
                       body: dict[str, Any], as_form: bool) -> None:
    if as_form:
        form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
        answer = web.post(path, data=urlencode(form, errors="surrogatepass"), headers=auth,
                          content_type="application/x-www-form-urlencoded")
    else:
        answer = web.post(path, json=body, headers=auth)
    _envelope(answer)


@FUZZ
@given(path=st.sampled_from(PATHS), raw=st.binary(max_size=200),
       ctype=st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                              "text/plain", "application/xml", "", "multipart/form-data",
                              "application/x-www-form-urlencoded; charset=windows-1251"]))
def test_malformed_bytes(web: FlaskClient, auth: dict[str, str], path: str, raw: bytes,
                         ctype: str) -> None:
    _envelope(web.post(path, data=raw, headers={**auth, "Content-Type": ctype}))


@FUZZ
@given(path=st.sampled_from(PATHS), user=st.text(max_size=20), password=st.text(max_size=20),
       scheme=st.sampled_from(["Basic", "Bearer", "basic", ""]))
def test_wrong_auth(web: FlaskClient, path: str, user: str, password: str, scheme: str) -> None:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    answer = web.post(path, json={"TransactionId": 1},
                      headers={"Authorization": f"{scheme} {token}"})
    _envelope(answer)
    if path not in ("/payments/publickey", "/payments/threedscallback"):
        assert answer.status_code in (401, 405)


@pytest.mark.parametrize("body", [
    b"{" * 100_000, b"[" * 5000 + b"]" * 5000, b'{"Amount": 1' + b"0" * 5000 + b"}",
    b'{"JsonData": ' + b'{"a":' * 40 + b"1" + b"}" * 40 + b"}", b'{"Amount": NaN}',
    b'{"Amount": 1, "InvoiceId": 1e100000000}', b'{"JsonData": {"a": -Infinity}}',
], ids=["open-braces", "deep-list", "long-number", "deep-json-data", "nan", "huge-exponent",
        "infinity"])
def test_pathological_json(web: FlaskClient, auth: dict[str, str], body: bytes) -> None:
    answer = web.post("/payments/cards/charge", data=body,
                      headers={**auth, "Content-Type": "application/json"})
    _envelope(answer)
    assert answer.get_json()["Success"] is False and len(answer.get_data()) < 1000


# --------------------------------------------------------------------------- notifications


@FUZZ
@given(kind=st.sampled_from(KINDS), address=st.sampled_from(ODD_URLS) | st.text(max_size=30),
       method=st.sampled_from(["GET", "POST", "get", "PUT", ""]), raw=st.booleans(),
       enabled=st.sampled_from(["true", "1", "false", "maybe", "NaN"]))
def test_notification_settings_then_a_payment(
    sandbox: Sandbox, web: FlaskClient, auth: dict[str, str], real: dict[str, str], kind: str,
    address: str, method: str, raw: bool, enabled: str,
) -> None:
    members = {"IsEnabled": enabled if raw else '"true"', "Address": _json_text(address),
               "HttpMethod": _json_text(method)}
    _envelope(web.post(f"/site/notifications/{kind}/update", data=_object(members),
                       headers={**auth, "Content-Type": "application/json"}))
    _envelope(web.post(f"/site/notifications/{kind}/get", headers=auth))
    paid = web.post("/payments/cards/auth", headers=auth, data=_object({
        "Amount": "1", "IpAddress": '"1.1.1.1"', "InvoiceId": '"fuzz"',
        "CardCryptogramPacket": real["CardCryptogramPacket"]}),
        content_type="application/json")
    _envelope(paid)
    model = paid.get_json().get("Model")
    if isinstance(model, dict) and model.get("Status") == "Authorized":
        _envelope(web.post("/payments/void", headers=auth,
                           json={"TransactionId": model["TransactionId"]}))
    sandbox.deliver_pending()
    for setting in sandbox.state.notification_settings.values():
        setting.is_enabled = False  # the next example starts from no notifications


# --------------------------------------------------------------------------- 3-D Secure


pa_reqs = st.one_of(
    value_text.map(lambda text: base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()),
    raw_bodies().map(lambda body: base64.b64encode(body).decode()),
    st.text(max_size=60),
)


@FUZZ
@given(pa_req=pa_reqs, md=st.text(max_size=20), term=st.sampled_from(ODD_URLS),
       action=st.sampled_from(["confirm", "decline", "cancel", "", "x"]),
       real_pa_req=st.booleans(), method=st.sampled_from(["POST", "GET"]))
def test_bank_page(web: FlaskClient, real: dict[str, str], pa_req: str, md: str, term: str,
                   action: str, real_pa_req: bool, method: str) -> None:
    fields = {"PaReq": real["PaReq"] if real_pa_req else pa_req, "MD": md, "TermUrl": term,
              "action": action}
    if method == "GET":
        _page(web.get("/acs", query_string=fields))
    else:
        _page(web.post("/acs", data=fields))
    _page(web.post("/acs/complete", data=fields))


@FUZZ
@given(members=st.dictionaries(
    st.sampled_from(["TransactionId", "ThreeDsCallbackId", "SuccessUrl", "FailUrl"]),
    value_text | st.sampled_from(ODD_URLS).map(_json_text), max_size=4),
    use_real=st.booleans(), style=st.sampled_from(["json", "base64", "form"]),
    pa_res=st.text(max_size=40))
def test_three_ds_callback(web: FlaskClient, real: dict[str, str], members: dict[str, str],
                           use_real: bool, style: str, pa_res: str) -> None:
    base = {"SuccessUrl": '"https://shop.test/ok"', "FailUrl": '"https://shop.test/fail"'}
    if use_real:
        base |= {k: real[k] for k in ("TransactionId", "ThreeDsCallbackId")}
    md = _object({**base, **members})
    if style == "base64":
        md = base64.b64encode(quote(md, safe=threeds._URI_COMPONENT_SAFE).encode()).decode()
    if style == "form":
        answer = web.post("/payments/ThreeDSCallback", data={"MD": md, "PaRes": pa_res})
    else:
        answer = web.post("/payments/ThreeDSCallback",
                          data=_object({"MD": _json_text(md), "PaRes": _json_text(pa_res)}),
                          content_type="application/json")
    _envelope(answer)


# --------------------------------------------------------------------------- /_sandbox/


@pytest.fixture(scope="module")
def controls(cloudpayments_sandbox_keys: dict[int, bytes]) -> FlaskClient:
    # A sandbox of its own: the faults and settings fuzzed here must not reach the API tests.
    app = create_sandbox_app(keys=cloudpayments_sandbox_keys,
                             notification_transport=httpx.MockTransport(_shop))
    return app.test_client()


CONTROL_FIELDS = ["seconds", "minutes", "hours", "days", "kind", "path", "times", "status",
                  "latency_ms", "retry_after", "save_cards", "duplicate_notifications",
                  "deliver_immediately", "auto_confirm_days", "auth_expiry_days",
                  "max_concurrent_requests", "site_name"]
control_bodies = st.dictionaries(st.sampled_from(CONTROL_FIELDS), value_text, max_size=4).map(
    lambda members: _object(members).encode("utf-8", "surrogatepass"))


@FUZZ
@given(path=st.sampled_from(["clock/advance", "faults", "settings", "run", "clock",
                             "transactions", "transactions/1", "transactions/x", "deliveries",
                             "tokens", "subscriptions", "orders", "", "nothing"]),
       method=st.sampled_from(["POST", "GET", "DELETE", "PUT"]),
       body=control_bodies | st.binary(max_size=100),
       ctype=st.sampled_from(["application/json", "application/x-www-form-urlencoded", ""]))
def test_sandbox_controls(controls: FlaskClient, path: str, method: str, body: bytes,
                          ctype: str) -> None:
    answer = controls.open(f"/_sandbox/{path}", method=method, data=body,
                           headers={"Content-Type": ctype})
    assert answer.status_code != 500, answer.get_data(as_text=True)[:500]
    if path and answer.status_code != 308:
        assert answer.mimetype == "application/json"
        assert json.loads(answer.get_data()) is not None
    # a fault that answers 5xx by design must not outlive the example
    controls.delete("/_sandbox/faults")

