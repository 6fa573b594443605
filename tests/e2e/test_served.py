"""What the sandbox's browser blueprint serves (no browser needed)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from checkout_kit import cards, cryptogram
from checkout_kit._resources import resource_dir
from checkout_kit.sandbox import create_sandbox_app, sandbox_of

SCRIPT_URLS = ["/checkout.js", "/bundles/checkout", "/bundles/cloudpayments",
               "/bundles/cloudpayments.js"]


@pytest.fixture(scope="module")
def client() -> FlaskClient:
    private, _ = cryptogram.generate_key_pair()
    app = create_sandbox_app(keys={7: private})
    return app.test_client()


def injected_config(script: str) -> dict[str, Any]:
    match = re.search(r"const CONFIG = (\{.*?\});\n", script)
    assert match, "the served script carries its configuration"
    config: dict[str, Any] = json.loads(match.group(1))
    return config


@pytest.mark.parametrize("url", SCRIPT_URLS)
def test_scripts_are_javascript_revalidated_by_etag(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200
    assert response.content_type == "application/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    etag = response.headers["ETag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""


def test_checkout_script_carries_brand_table_and_sandbox_key(client: FlaskClient) -> None:
    script = client.get("/checkout.js").get_data(as_text=True)
    config = injected_config(script)
    assert config["brands"] == cards.brand_table()
    sandbox = sandbox_of(client.application)
    assert config["key"] == {"pem": sandbox.public_key_pem(), "version": 7}
    assert client.get("/payments/publickey").get_json() == {
        "Pem": config["key"]["pem"], "Version": 7}
    assert "/*@config*/" not in script
    assert "<" not in json.dumps(config)  # safe to inline in HTML


# config["rules"] key -> the checkout_kit.cards constant it must carry
RULE_CONSTANTS = {
    "unknownLengths": "UNKNOWN_BRAND_LENGTHS", "unknownCvvSizes": "UNKNOWN_BRAND_CVV_SIZES",
    "maxYearsAhead": "MAX_YEARS_AHEAD", "minExpiryYear": "MIN_EXPIRY_YEAR",
    "nameMin": "NAME_MIN", "nameMax": "NAME_MAX",
}
# config["rules"] key -> the rule set of checkout_kit.cards it must carry
RULE_SETS = {"modern": "MODERN", "legacy": "LEGACY"}


def test_checkout_script_carries_the_validation_rules_of_cards(client: FlaskClient) -> None:
    config = injected_config(client.get("/checkout.js").get_data(as_text=True))
    rules = config["rules"]
    assert set(rules) == set(RULE_CONSTANTS) | set(RULE_SETS)
    for key, constant in RULE_CONSTANTS.items():
        value = getattr(cards, constant)
        assert rules[key] == (list(value) if isinstance(value, tuple) else value), key
    for key, name in RULE_SETS.items():
        assert rules[key] == getattr(cards, name).to_json(), key
    # The rules are Python's, not a copy: the name pattern is the one cards uses.
    modern = config["rules"]["modern"]["nameCharacterClass"]
    assert modern == cards.NAME_CHARACTER_CLASS
    assert re.fullmatch(modern + "+", "Ivan Petrov-Jr.")
    assert re.fullmatch(config["rules"]["legacy"]["nameCharacterClass"] + "+", "Anna–Maria")
    assert cards.validate_name("I" * cards.NAME_MAX) is None
    assert cards.validate_name("I" * (cards.NAME_MAX + 1)) == "Name_TooLong"


def test_checkout_source_hard_codes_none_of_the_rules() -> None:
    source = (resource_dir("static") / "js" / "checkout.js").read_text("utf-8")
    for literal in ("14, 15, 16, 17, 18, 19", "1900", "[3, 4]", "A-Za-z0-9", "> 26", "< 2)",
                    "MAX_YEARS_AHEAD =", "UNKNOWN_LENGTHS"):
        assert literal not in source, literal


def test_legacy_and_current_urls_serve_the_same_scripts(client: FlaskClient) -> None:
    checkout = client.get("/checkout.js").data
    assert client.get("/bundles/checkout").data == checkout
    widget = client.get("/bundles/cloudpayments.js").data
    assert client.get("/bundles/cloudpayments").data == widget
    # The widget bundle, like the legacy one, also defines cp.Checkout.
    assert widget.startswith(checkout) and b"cp.CloudPayments = CloudPayments" in widget


def test_frame_page(client: FlaskClient) -> None:
    response = client.get("/widget/frame?origin=http://shop.example&lang=en")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert '<html lang="en">' in html and 'src="/checkout.js"' in html
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors *" in csp
    assert response.headers["Cache-Control"] == "no-store"
    # Card inputs are bound by data-cp and carry no name attribute.
    for tag in re.findall(r"<input[^>]*data-cp=[^>]*>", html):
        assert " name=" not in tag
    assert client.get("/widget/frame.js").status_code == 200


def test_three_ds_result_page(client: FlaskClient) -> None:
    page = client.get("/widget/3ds/fail/12?ReasonCode=5206&CardHolderMessage=%3Cb%3Eno%3C%2Fb%3E")
    html = page.get_data(as_text=True)
    assert 'data-outcome="fail"' in html and 'data-reason-code="5206"' in html
    assert "&lt;b&gt;no&lt;/b&gt;" in html  # escaped, never markup
    odd = client.get("/widget/3ds/fail/12?ReasonCode=52x6")
    assert 'data-reason-code=""' in odd.get_data(as_text=True)
    assert client.get("/widget/3ds/other/12").status_code == 404
    assert client.get("/widget/3ds/success/x").status_code == 404
