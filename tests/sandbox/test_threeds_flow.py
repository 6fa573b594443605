"""3-D Secure through the sandbox bank page, post3ds and ThreeDSCallback."""

from __future__ import annotations

import base64
import json
import re
from decimal import Decimal
from html import unescape
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from checkout_kit import threeds
from checkout_kit.client import CloudPaymentsClient
from checkout_kit.errors import PaymentDeclined
from checkout_kit.models import ThreeDSChallenge, TransactionStatus
from checkout_kit.sandbox import Sandbox

IP = "203.0.113.7"
TERM_URL = "https://shop.example/3ds/return"


def _challenge(client: CloudPaymentsClient, sandbox: Sandbox, number: str = "4242424242424242",
               **kw: object) -> ThreeDSChallenge:
    result = client.charge(Decimal("250.00"), ip_address=IP,
                           cryptogram=sandbox.make_cryptogram(number), **kw)  # type: ignore[arg-type]
    assert isinstance(result, ThreeDSChallenge)
    return result


def _hidden(html: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)
    return {name: unescape(value) for name, value in found}


def _bank(sandbox: Sandbox, challenge: ThreeDSChallenge, action: str,
          md: str | None = None) -> tuple[str, dict[str, str]]:
    """Open the bank page as a browser would, press ``action``; returns the page text
    and the fields the auto-submitting form posts to TermUrl."""
    web = sandbox.app.test_client()  # the sandbox on this machine, as the browser sees it
    bank = "http://localhost" + urlsplit(challenge.acs_url).path
    form = threeds.acs_form(bank, challenge.pa_req, md or str(challenge.transaction_id),
                            TERM_URL)
    page = web.post(urlsplit(form["action"]).path, data=form["fields"],
                    headers={"Accept-Language": "en"})  # the page's words below are English
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    fields = _hidden(text)
    assert set(fields) == {"PaReq", "MD", "TermUrl"}
    done = web.post("/acs/complete", data={**fields, "code": "1234", "action": action})
    back = done.get_data(as_text=True)
    assert f'action="{TERM_URL}"' in back
    return text, _hidden(back)


def test_bank_page_shows_merchant_amount_masked_card(cloudpayments_client: CloudPaymentsClient,
                                                     cloudpayments_sandbox: Sandbox) -> None:
    challenge = _challenge(cloudpayments_client, cloudpayments_sandbox)
    page, posted = _bank(cloudpayments_sandbox, challenge, "confirm")
    assert "Sandbox Shop" in page and "250.00 RUB" in page and "424242******4242" in page
    assert "4242424242424242" not in page
    for button in ("Confirm", "Decline", "Cancel"):
        assert f">{button}</button>" in page
    assert set(posted) == {"MD", "PaRes"} and posted["MD"] == str(challenge.transaction_id)
    tx = cloudpayments_client.post3ds(int(posted["MD"]), posted["PaRes"])
    assert tx.status is TransactionStatus.COMPLETED and tx.amount == Decimal("250.00")


@pytest.mark.parametrize("action", ["decline", "cancel"])
def test_decline_or_cancel_on_the_bank_page_declines_5206(
    action: str, cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    challenge = _challenge(cloudpayments_client, cloudpayments_sandbox)
    _, posted = _bank(cloudpayments_sandbox, challenge, action)
    with pytest.raises(PaymentDeclined) as exc:
        cloudpayments_client.post3ds(challenge.transaction_id, posted["PaRes"])
    assert exc.value.reason_code == 5206


def test_auth_with_3ds_ends_authorized(cloudpayments_client: CloudPaymentsClient,
                                       cloudpayments_sandbox: Sandbox) -> None:
    result = cloudpayments_client.auth(Decimal("3"), ip_address=IP,
                                       cryptogram=cloudpayments_sandbox.make_cryptogram("5555555555554444"))
    assert isinstance(result, ThreeDSChallenge)
    _, posted = _bank(cloudpayments_sandbox, result, "confirm")
    assert cloudpayments_client.post3ds(result.transaction_id, posted["PaRes"]).status \
        is TransactionStatus.AUTHORIZED


def test_pares_of_another_transaction_or_forged_is_refused(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    one = _challenge(cloudpayments_client, cloudpayments_sandbox)
    two = _challenge(cloudpayments_client, cloudpayments_sandbox)
    _, posted = _bank(cloudpayments_sandbox, one, "confirm")
    with pytest.raises(PaymentDeclined) as exc:
        cloudpayments_client.post3ds(two.transaction_id, posted["PaRes"])
    assert exc.value.reason_code == 5206
    forged = threeds.sign_pares(one.transaction_id, "Y", "not the sandbox secret")
    with pytest.raises(PaymentDeclined):
        cloudpayments_client.post3ds(one.transaction_id, forged)


def test_post3ds_runs_once_and_replays_the_stored_result(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    challenge = _challenge(cloudpayments_client, cloudpayments_sandbox, save_card=True)
    pa_res = cloudpayments_sandbox.pa_res_for(challenge.transaction_id)
    first = cloudpayments_client.post3ds(challenge.transaction_id, pa_res)
    again = cloudpayments_client.post3ds(challenge.transaction_id, pa_res)
    declined_replay = cloudpayments_client.post3ds(
        challenge.transaction_id, cloudpayments_sandbox.pa_res_for(challenge.transaction_id,
                                                                   "decline"))
    assert first.raw == again.raw == declined_replay.raw
    assert len(cloudpayments_sandbox.state.tokens) == 1


def test_insufficient_funds_after_3ds(cloudpayments_client: CloudPaymentsClient,
                                      cloudpayments_sandbox: Sandbox) -> None:
    challenge = _challenge(cloudpayments_client, cloudpayments_sandbox, "2202202202202200")
    _, posted = _bank(cloudpayments_sandbox, challenge, "confirm")
    with pytest.raises(PaymentDeclined) as exc:
        cloudpayments_client.post3ds(challenge.transaction_id, posted["PaRes"])
    assert exc.value.reason_code == 5051


def test_unknown_pareq_is_refused_by_the_bank(cloudpayments_sandbox: Sandbox) -> None:
    web = cloudpayments_sandbox.app.test_client()
    fake = threeds.build_pareq(first_six="424242", last_four="4242", amount=Decimal(1),
                               currency="RUB", date=cloudpayments_sandbox.now(), transaction_id=1)
    assert web.post("/acs", data={"PaReq": fake, "MD": "1", "TermUrl": TERM_URL}).status_code == 404
    assert web.post("/acs", data={"PaReq": fake, "MD": "1"}).status_code == 400
    assert web.post("/acs", data={"PaReq": fake, "MD": "1", "TermUrl": "javascript:x"}
                    ).status_code == 400


def test_pareq_is_test_mode_json(cloudpayments_client: CloudPaymentsClient,
                                 cloudpayments_sandbox: Sandbox) -> None:
    challenge = _challenge(cloudpayments_client, cloudpayments_sandbox)
    data = json.loads(base64.b64decode(challenge.pa_req))
    assert data["FirstSix"] == "424242" and data["LastFour"] == "4242"
    assert data["Amount"] == 250.0 and data["CurrencyCode"] == "RUB"
    assert data["TransactionId"] == challenge.transaction_id


# ----------------------------------------------------------------------------- ThreeDSCallback


def _post_callback(sandbox: Sandbox, md: str, pa_res: str, *, as_json: bool = True) -> Any:
    web = sandbox.app.test_client()
    body = {"MD": md, "PaRes": pa_res}
    if as_json:
        return web.post("/payments/ThreeDSCallback", json=body)
    return web.post("/payments/ThreeDSCallback", data=body)


def _callback(sandbox: Sandbox, md: str, pa_res: str, *, as_json: bool = True) -> str:
    answer = _post_callback(sandbox, md, pa_res, as_json=as_json)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    return str(answer.headers["Location"])


def _refused(answer: Any) -> str:
    """A ThreeDSCallback refused: 400, the envelope, and no redirect anywhere."""
    assert answer.status_code == 400 and "Location" not in answer.headers
    body = answer.get_json()
    assert body["Success"] is False
    return str(body["Message"])


OK_URL, FAIL_URL = "https://shop.example/ok", "https://shop.example/fail?x=1"


def _challenge_with_urls(sandbox: Sandbox, success: str | None = OK_URL,
                         fail: str | None = FAIL_URL) -> ThreeDSChallenge:
    """A 3-D Secure charge that names its SuccessUrl/FailUrl (a sandbox extension)."""
    urls = {k: v for k, v in (("SuccessUrl", success), ("FailUrl", fail)) if v is not None}
    answer = sandbox.app.test_client().post(
        "/payments/cards/charge", auth=(sandbox.public_id, sandbox.api_secret),
        json={"Amount": "250.00", "IpAddress": IP,
              "CardCryptogramPacket": sandbox.make_cryptogram("4242424242424242"), **urls})
    return ThreeDSChallenge.from_api(answer.get_json()["Model"])


@pytest.mark.parametrize("style", ["json", "base64"])
def test_three_ds_callback_success_redirect(style: str, cloudpayments_client: CloudPaymentsClient,
                                            cloudpayments_sandbox: Sandbox) -> None:
    challenge = _challenge_with_urls(cloudpayments_sandbox)
    md = threeds.CallbackMD(challenge.transaction_id, challenge.three_ds_callback_id,
                            OK_URL, FAIL_URL)
    _, posted = _bank(cloudpayments_sandbox, challenge, "confirm",
                      md=threeds.encode_callback_md(md, style=style))  # type: ignore[arg-type]
    location = _callback(cloudpayments_sandbox, posted["MD"], posted["PaRes"],
                         as_json=style == "json")
    assert location == OK_URL
    assert cloudpayments_client.get_payment(challenge.transaction_id).status \
        is TransactionStatus.COMPLETED


def test_three_ds_callback_failure_redirect(cloudpayments_client: CloudPaymentsClient,
                                            cloudpayments_sandbox: Sandbox) -> None:
    challenge = _challenge_with_urls(cloudpayments_sandbox, fail="https://shop.example/fail")
    md = threeds.CallbackMD(challenge.transaction_id, challenge.three_ds_callback_id,
                            OK_URL, "https://shop.example/fail")
    pa_res = cloudpayments_sandbox.pa_res_for(challenge.transaction_id, "cancel")
    location = _callback(cloudpayments_sandbox, threeds.encode_callback_md(md), pa_res)
    query = parse_qs(urlsplit(location).query)
    assert location.startswith("https://shop.example/fail?")
    assert query["ReasonCode"] == ["5206"]
    assert query["CardHolderMessage"] == ["3-D Secure авторизация не пройдена"]
    result = threeds.parse_callback_redirect(location, md)
    assert (result.success, result.reason_code) == (False, 5206)


def test_three_ds_callback_defaults_to_the_sandbox_widget_pages(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    """A charge that names no URLs may only come back to the sandbox's own widget
    result pages, on the host the charge was made through."""
    challenge = _challenge(cloudpayments_client, cloudpayments_sandbox)
    tx_id = challenge.transaction_id
    base = "http://cloudpayments.sandbox/widget/3ds"
    md = threeds.CallbackMD(tx_id, challenge.three_ds_callback_id,
                            f"{base}/success/{tx_id}", f"{base}/fail/{tx_id}")
    location = _callback(cloudpayments_sandbox, threeds.encode_callback_md(md, style="base64"),
                         cloudpayments_sandbox.pa_res_for(tx_id))
    assert location == f"{base}/success/{tx_id}"


def test_three_ds_callback_refuses_urls_other_than_those_of_the_charge(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    challenge = _challenge_with_urls(cloudpayments_sandbox)
    pa_res = cloudpayments_sandbox.pa_res_for(challenge.transaction_id)
    for success, fail in ((OK_URL, "https://evil.example/"), ("https://evil.example/", FAIL_URL),
                          (OK_URL + "/", FAIL_URL), (FAIL_URL, OK_URL)):
        md = threeds.CallbackMD(challenge.transaction_id, challenge.three_ds_callback_id,
                                success, fail)
        message = _refused(_post_callback(cloudpayments_sandbox, threeds.encode_callback_md(md),
                                          pa_res))
        assert "SuccessUrl and FailUrl differ" in message
    assert cloudpayments_client.get_payment(challenge.transaction_id).status \
        is TransactionStatus.AWAITING_AUTHENTICATION


def test_three_ds_callback_with_a_wrong_callback_id_is_refused_and_changes_nothing(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    challenge = _challenge_with_urls(cloudpayments_sandbox)
    md = threeds.CallbackMD(challenge.transaction_id, "0" * 32, OK_URL, FAIL_URL)
    _refused(_post_callback(cloudpayments_sandbox, threeds.encode_callback_md(md),
                            cloudpayments_sandbox.pa_res_for(challenge.transaction_id)))
    assert cloudpayments_client.get_payment(challenge.transaction_id).status \
        is TransactionStatus.AWAITING_AUTHENTICATION


def test_three_ds_callback_needs_a_payment_awaiting_three_ds(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    sandbox = cloudpayments_sandbox
    challenge = _challenge_with_urls(sandbox)
    md = threeds.CallbackMD(challenge.transaction_id, challenge.three_ds_callback_id,
                            OK_URL, FAIL_URL)
    text, pa_res = threeds.encode_callback_md(md), sandbox.pa_res_for(challenge.transaction_id)
    unknown = threeds.CallbackMD(challenge.transaction_id + 1000, challenge.three_ds_callback_id,
                                 OK_URL, FAIL_URL)
    assert "No payment awaits" in _refused(
        _post_callback(sandbox, threeds.encode_callback_md(unknown), pa_res))
    assert _callback(sandbox, text, pa_res) == OK_URL
    # Done once: a repeat (or a replay by anyone who saw the MD) redirects nowhere.
    assert "No payment awaits" in _refused(_post_callback(sandbox, text, pa_res))
    # A payment that never asked for 3-D Secure cannot be used either.
    paid = cloudpayments_client.charge(Decimal("5.00"), ip_address=IP,
                                       cryptogram=sandbox.make_cryptogram("4000000000003055"))
    other = threeds.CallbackMD(paid.transaction_id, "", OK_URL, FAIL_URL)
    _refused(_post_callback(sandbox, threeds.encode_callback_md(other), pa_res))


def test_charge_refuses_callback_urls_that_cannot_be_a_location(
    cloudpayments_sandbox: Sandbox,
) -> None:
    absolute, blank = "must be an absolute http(s) URL", "must not contain whitespace"
    for bad, why in (("javascript:alert(1)", absolute), ("//shop.example/ok", absolute),
                     ("https://shop.example/\nx", f"{blank} or control characters")):
        answer = cloudpayments_sandbox.app.test_client().post(
            "/payments/cards/charge",
            auth=(cloudpayments_sandbox.public_id, cloudpayments_sandbox.api_secret),
            json={"Amount": "1.00", "IpAddress": IP, "SuccessUrl": bad,
                  "CardCryptogramPacket": cloudpayments_sandbox.make_cryptogram(
                      "4242424242424242")})
        assert answer.get_json() == {"Success": False, "Message": f"SuccessUrl {why}"}
        assert not cloudpayments_sandbox.state.transactions


def test_three_ds_callback_rejects_unreadable_md(cloudpayments_sandbox: Sandbox) -> None:
    web = cloudpayments_sandbox.app.test_client()
    answer = web.post("/payments/ThreeDSCallback", json={"MD": "%%%", "PaRes": "x"})
    assert answer.status_code == 400 and answer.get_json()["Success"] is False
    md = quote(json.dumps({"TransactionId": 1, "ThreeDsCallbackId": "a", "SuccessUrl":
                           "javascript:alert(1)", "FailUrl": "https://x.example/"}))
    answer = web.post("/payments/ThreeDSCallback",
                      json={"MD": base64.b64encode(md.encode()).decode(), "PaRes": "x"})
    assert answer.status_code == 400


@pytest.mark.parametrize("style", ["json", "base64"])
@pytest.mark.parametrize("members", [
    {"FailUrl": "https://shop.example/fail\r\nSet-Cookie: a=b"},
    {"SuccessUrl": "https://shop.example/ok\nx"},
    {"FailUrl": "https://shop.example/\tfail"},
    {"FailUrl": "//shop.example/fail"},
])
def test_three_ds_callback_refuses_urls_that_cannot_be_a_location(
    style: str, members: dict[str, str], cloudpayments_client: CloudPaymentsClient,
    cloudpayments_sandbox: Sandbox,
) -> None:
    challenge = _challenge(cloudpayments_client, cloudpayments_sandbox)
    md = {"TransactionId": challenge.transaction_id,
          "ThreeDsCallbackId": challenge.three_ds_callback_id,
          "SuccessUrl": "https://shop.example/ok", "FailUrl": "https://shop.example/fail",
          **members}
    text = json.dumps(md)
    if style == "base64":
        text = base64.b64encode(quote(text).encode()).decode()
    answer = cloudpayments_sandbox.app.test_client().post(
        "/payments/ThreeDSCallback", json={"MD": text, "PaRes": "x"})
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert answer.get_json() == {"Success": False, "Message": "MD is invalid"}
    assert cloudpayments_client.get_payment(challenge.transaction_id).status \
        is TransactionStatus.AWAITING_AUTHENTICATION


@pytest.mark.parametrize("md", [
    '{"TransactionId": Infinity, "ThreeDsCallbackId": "a", "SuccessUrl": "https://a.example/",'
    ' "FailUrl": "https://a.example/"}',
    '{"TransactionId": 1e400, "ThreeDsCallbackId": "a", "SuccessUrl": "https://a.example/",'
    ' "FailUrl": "https://a.example/"}',
    '{"TransactionId": NaN}',
    '{"TransactionId": 1E+9999999999999999999999999, "ThreeDsCallbackId": "a", '
    '"SuccessUrl": "https://a.example/", "FailUrl": "https://a.example/"}',
])
def test_three_ds_callback_refuses_non_json_numbers(md: str, cloudpayments_sandbox: Sandbox,
                                                    ) -> None:
    answer = cloudpayments_sandbox.app.test_client().post(
        "/payments/ThreeDSCallback", data={"MD": md, "PaRes": "x"})
    assert answer.status_code == 400 and answer.get_json()["Success"] is False


def test_three_ds_callback_with_an_odd_callback_id_is_refused(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    challenge = _challenge_with_urls(cloudpayments_sandbox)
    for callback_id in ("", "é" * 32, "\ud800", challenge.three_ds_callback_id + "0"):
        md = threeds.CallbackMD(challenge.transaction_id, callback_id, OK_URL, FAIL_URL)
        _refused(_post_callback(cloudpayments_sandbox, threeds.encode_callback_md(md),
                                cloudpayments_sandbox.pa_res_for(challenge.transaction_id)))
    assert cloudpayments_client.get_payment(challenge.transaction_id).status \
        is TransactionStatus.AWAITING_AUTHENTICATION


@pytest.mark.parametrize("content", [
    b'{"TransactionId": Infinity}', b'{"TransactionId": -Infinity}', b'{"TransactionId": NaN}',
    b'{"TransactionId": 1e400}', b'{"TransactionId": 1e9999999999999999999999999}',
    b'{"TransactionId": "12"}', b"[1]", b"not json",
])
def test_bank_page_refuses_an_unreadable_pareq_with_400(content: bytes,
                                                       cloudpayments_sandbox: Sandbox) -> None:
    web = cloudpayments_sandbox.app.test_client()
    pa_req = base64.b64encode(content).decode()
    fields = {"PaReq": pa_req, "MD": "1", "TermUrl": TERM_URL}
    assert web.post("/acs", data=fields).status_code == 400
    assert web.get("/acs", query_string=fields).status_code == 400
    assert web.post("/acs/complete", data={**fields, "action": "confirm"}).status_code == 400
