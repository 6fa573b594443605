"""checkout_kit.threeds: PaReq, PaRes, the ACS form and the ThreeDSCallback MD."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checkout_kit import threeds
from checkout_kit.errors import MoneyError
from checkout_kit.threeds import CallbackMD, PaResOutcome, ThreeDSError

# The Docs sample PaReq (docs/gateway.md §4), without its stray "+/" and with it.
DOCS_JSON = ('{"MerchantName":null,"FirstSix":"424242","LastFour":"4242","Amount":100.0,'
             '"CurrencyCode":"RUB","Date":"2021-10-25T00:00:00+03:00","CustomerName":null,'
             '"CultureName":"ru-RU"}')
DOCS_PAREQ = base64.b64encode(DOCS_JSON.encode()).decode()


@pytest.mark.parametrize("pa_req", [DOCS_PAREQ, "+/" + DOCS_PAREQ, DOCS_PAREQ.rstrip("=")])
def test_decode_docs_pareq(pa_req: str) -> None:
    data = threeds.decode_pareq(pa_req)
    assert data["FirstSix"] == "424242" and data["Amount"] == Decimal("100.0")


def test_build_pareq_round_trip() -> None:
    pa_req = threeds.build_pareq(first_six="220000", last_four="0004", amount=Decimal("12.34"),
                                 currency="RUB", date=datetime(2025, 1, 2, tzinfo=UTC),
                                 merchant_name="Магазин", transaction_id=77)
    data = threeds.decode_pareq(pa_req)
    assert data == {"MerchantName": "Магазин", "FirstSix": "220000", "LastFour": "0004",
                    "Amount": Decimal("12.34"), "CurrencyCode": "RUB",
                    "Date": "2025-01-02T00:00:00+00:00", "CustomerName": None,
                    "CultureName": "ru-RU", "TransactionId": 77}


@pytest.mark.parametrize("bad", ["", "!!!", base64.b64encode(b"[1,2]").decode(),
                                 base64.b64encode(b"\xff\xfe").decode()])
def test_bad_pareq(bad: str) -> None:
    with pytest.raises(ThreeDSError) as exc:
        threeds.decode_pareq(bad)
    assert exc.value.code == "bad_pareq"


def test_pares_signed_for_one_transaction() -> None:
    pa_res = threeds.sign_pares(1001, PaResOutcome.AUTHENTICATED, "secret",
                                randbytes=lambda n: b"\x01" * n)
    assert "+" not in pa_res and "/" not in pa_res and "=" not in pa_res
    assert threeds.verify_pares(pa_res, 1001, "secret") is PaResOutcome.AUTHENTICATED
    assert threeds.read_pares(pa_res, "secret") == (1001, PaResOutcome.AUTHENTICATED)
    with pytest.raises(ThreeDSError) as exc:
        threeds.verify_pares(pa_res, 1002, "secret")
    assert exc.value.code == "wrong_transaction"
    with pytest.raises(ThreeDSError) as exc:
        threeds.verify_pares(pa_res, 1001, "other")
    assert exc.value.code == "bad_signature"
    prefix, _payload, mac = pa_res.split(".")
    forged = base64.urlsafe_b64encode(b'{"t":1001,"o":"Y","n":"x"}').decode().rstrip("=")
    with pytest.raises(ThreeDSError):
        threeds.verify_pares(f"{prefix}.{forged}.{mac}", 1001, "secret")


@pytest.mark.parametrize("bad", ["", "x", "SBX1.a", "SBX1.é.x", "OTHER.a.b", "SBX1.!!.!!"])
def test_unreadable_pares(bad: str) -> None:
    with pytest.raises(ThreeDSError):
        threeds.verify_pares(bad, 1, "secret")


@given(st.integers(min_value=1, max_value=2**63 - 1), st.sampled_from(list(PaResOutcome)),
       st.text(min_size=1, max_size=20))
def test_pares_round_trip(tx: int, outcome: PaResOutcome, secret: str) -> None:
    assert threeds.verify_pares(threeds.sign_pares(tx, outcome, secret), tx, secret) is outcome


def test_acs_form_has_exactly_the_three_fields_escaped() -> None:
    form = threeds.acs_form("https://bank/acs", 'a"b', "42", "https://shop/term?x=1&y=2")
    assert form["method"] == "POST" and list(form["fields"]) == ["PaReq", "MD", "TermUrl"]
    html = threeds.acs_form_html("https://bank/acs?a=1&b=2", 'a"b<', "4'2",
                                 "https://shop/t?x=1&y=2", title="<T&>", nonce='n"<')
    assert 'value="a&quot;b&lt;"' in html and 'value="4&#x27;2"' in html
    assert "x=1&amp;y=2" in html and 'action="https://bank/acs?a=1&amp;b=2"' in html
    assert "<title>&lt;T&amp;&gt;</title>" in html and 'nonce="n&quot;&lt;"' in html
    assert html.count('<input type="hidden"') == 3


def test_acs_page_runs_under_a_strict_csp() -> None:
    html = threeds.acs_form_html("https://bank/acs", "p", "1", "https://shop/t", nonce="abc123")
    # No inline event handler anywhere; the one script carries the nonce.
    assert re.search(r"\son[a-z]+\s*=", html) is None
    assert re.findall(r"<script[^>]*>", html) == ['<script nonce="abc123">']
    assert 'document.getElementById("acs").submit()' in html
    assert "<noscript><button" in html
    assert "<script>" in threeds.acs_form_html("https://bank/acs", "p", "1", "https://shop/t")


@pytest.mark.parametrize("url", ["https://bank.example/acs", "http://127.0.0.1:5000/acs",
                                 "http://localhost/acs", "http://[::1]:8080/acs",
                                 "http://sandbox.localhost/acs"])
def test_acs_url_https_or_loopback_http(url: str) -> None:
    assert f'action="{url}"' in threeds.acs_form_html(url, "p", "1", "https://shop/t")


@pytest.mark.parametrize("url", ["http://bank.example/acs", "http://10.0.0.1/acs",
                                 "javascript:alert(1)", "ftp://bank/acs", "/acs", "",
                                 "https:///acs", "https://bank/a cs", "https://bank/\x00"])
def test_acs_url_refused(url: str) -> None:
    with pytest.raises(ThreeDSError) as exc:
        threeds.acs_form_html(url, "p", "1", "https://shop/t")
    assert exc.value.code == "bad_acs_url"
    # acs_form is what every page builds on (the shop's 3-D Secure page renders its
    # dict itself): the same rule there, not only in acs_form_html.
    with pytest.raises(ThreeDSError) as direct:
        threeds.acs_form(url, "p", "1", "https://shop/t")
    assert direct.value.code == "bad_acs_url"


MD = CallbackMD(3192600857, "cb0123", "https://shop.example/ok", "https://shop.example/fail")


def test_md_json_and_checkout_js_base64() -> None:
    as_json = threeds.encode_callback_md(MD)
    assert json.loads(as_json) == MD.to_json_object()
    as_b64 = threeds.encode_callback_md(MD, style="base64")
    # what checkout.js prepareMD does: btoa(encodeURIComponent(JSON.stringify(obj)))
    expected = base64.b64encode(quote(as_json, safe="-_.!~*'()").encode()).decode()
    assert as_b64 == expected
    assert threeds.decode_callback_md(as_json) == threeds.decode_callback_md(as_b64) == MD
    ios = json.dumps({"FailUrl": MD.fail_url, "SuccessUrl": MD.success_url,
                      "ThreeDsCallbackId": MD.three_ds_callback_id,
                      "TransactionId": str(MD.transaction_id)}, sort_keys=True)
    assert threeds.decode_callback_md(ios) == MD


@pytest.mark.parametrize("bad", ["", "{", "[]", '{"TransactionId": 1}',
                                 '{"TransactionId": true, "ThreeDsCallbackId": "a", '
                                 '"SuccessUrl": "s", "FailUrl": "f"}',
                                 '{"TransactionId": 1, "ThreeDsCallbackId": 2, '
                                 '"SuccessUrl": "s", "FailUrl": "f"}', "%%%"])
def test_bad_md(bad: str) -> None:
    with pytest.raises(ThreeDSError) as exc:
        threeds.decode_callback_md(bad)
    assert exc.value.code == "bad_md"


def test_callback_redirects() -> None:
    assert threeds.callback_redirect(MD, success=True) == MD.success_url
    location = threeds.callback_redirect(MD, success=False, reason_code=5206,
                                         cardholder_message="3-D Secure не пройдена")
    assert location.startswith("https://shop.example/fail?ReasonCode=5206&CardHolderMessage=")
    result = threeds.parse_callback_redirect(location, MD)
    assert result == threeds.CallbackResult(False, 5206, "3-D Secure не пройдена")
    assert threeds.parse_callback_redirect(MD.success_url, MD).success is True
    with_query = CallbackMD(1, "c", "https://a/ok", "https://a/fail?order=9")
    assert "fail?order=9&ReasonCode=5051" in threeds.callback_redirect(
        with_query, success=False, reason_code=5051)
    with pytest.raises(ThreeDSError):
        threeds.parse_callback_redirect("https://elsewhere/", MD)


def _b64_json(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_pareq_amount_keeps_its_digits() -> None:
    pa_req = threeds.build_pareq(first_six="424242", last_four="4242", amount=Decimal("0.10"),
                                 currency="RUB", date=datetime(2026, 1, 1, tzinfo=UTC))
    text = base64.b64decode(pa_req).decode()
    assert '"Amount":0.10,' in text
    assert threeds.decode_pareq(pa_req)["Amount"] == Decimal("0.10")
    with pytest.raises(MoneyError):
        threeds.encode_pareq({"Amount": 0.1})


@pytest.mark.parametrize("body", [
    '{"Amount": NaN}', '{"TransactionId": Infinity}', '{"TransactionId": -Infinity}',
    '{"TransactionId": 1e400}', '{"TransactionId": 0}', '{"TransactionId": "7"}',
    '{"TransactionId": 99999999999999999999}', "[" * 5000 + "]" * 5000,
    '{"Amount": 1E+9999999999999999999999999}',
])
def test_pareq_rejects_non_json_constants_and_odd_ids(body: str) -> None:
    with pytest.raises(ThreeDSError) as info:
        threeds.decode_pareq(_b64_json(body))
    assert info.value.code == "bad_pareq"


@pytest.mark.parametrize("fail_url", [
    "http://shop.test/fail\r\nSet-Cookie: x=1", "http://shop.test/f ail", "javascript:alert(1)",
    "/relative/fail", "", "http://[::1/x", "http://shop.test/\x7f",
])
def test_md_urls_must_be_safe_absolute_http(fail_url: str) -> None:
    md = json.dumps({"TransactionId": 5, "ThreeDsCallbackId": "cb",
                     "SuccessUrl": "https://shop.test/ok", "FailUrl": fail_url})
    with pytest.raises(ThreeDSError) as info:
        threeds.decode_callback_md(md)
    assert info.value.code == "bad_md"


@pytest.mark.parametrize("raw_id", ['"12a"', '"-5"', "NaN", '"1' + "0" * 30 + '"', "0",
                                    "1E+9999999999999999999999999", "1e400"])
def test_md_transaction_id_must_be_a_positive_id(raw_id: str) -> None:
    md = ('{"TransactionId": ' + raw_id + ', "ThreeDsCallbackId": "cb", '
          '"SuccessUrl": "https://s.test/ok", "FailUrl": "https://s.test/no"}')
    with pytest.raises(ThreeDSError):
        threeds.decode_callback_md(md)


def test_md_repr_masks_the_callback_id() -> None:
    md = CallbackMD(1, "cb_0123456789abcdef", "https://shop.example/ok", "https://shop.example/f")
    assert "0123456789" not in repr(md) and "cb_012" in repr(md)
    assert "https://shop.example/ok" in repr(md)
