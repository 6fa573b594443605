"""``checkout_kit.urls``: the one URL check and the one loopback test, and that 3-D
Secure and the sandbox both use them."""

from __future__ import annotations

import pytest

from checkout_kit import threeds, urls
from checkout_kit.errors import ThreeDSError
from checkout_kit.sandbox.rules.params import url_problem as sandbox_url_problem
from checkout_kit.sandbox.rules.policy import host_allowed, is_loopback_bind

BAD = [
    "ftp://shop.test/", "/relative", "http:///nohost", "http://:80/", "http://user@/",
    "http://shop.test/a b", "http://shop.test/\x7f", "http://xn--a/", "http://shop.test:99999/",
    "http://[::1/", "http://shop.test:0/", "http://shop.test/" + "a" * urls.MAX_URL_LENGTH,
]


@pytest.mark.parametrize("url", BAD)
def test_one_url_rule_everywhere(url: str) -> None:
    problem = urls.url_problem(url)
    assert problem is not None
    assert sandbox_url_problem(url, "Address") == f"Address {problem}"
    md = threeds.encode_callback_md(threeds.CallbackMD(1, "cb", "https://shop.test/ok", url))
    with pytest.raises(ThreeDSError):
        threeds.decode_callback_md(md)


@pytest.mark.parametrize("url", ["http://shop.test/cp", "https://пример.рф/оплата",
                                 "https://shop.test:8443/x?y=1", "http://[::1]:8/"])
def test_good_urls(url: str) -> None:
    assert urls.url_problem(url) is None


def test_schemes_and_length_are_parameters() -> None:
    assert urls.url_problem("https://a.test/", schemes=("https",)) is None
    assert urls.url_problem("http://a.test/", schemes=("https",)) == \
        "must be an absolute https URL"
    assert urls.url_problem("http://a.test/abc", max_length=10) == "is too long"


@pytest.mark.parametrize("host, loopback", [
    ("localhost", True), ("LOCALHOST.", True), ("shop.localhost", True), ("127.0.0.1", True),
    ("127.9.9.9", True), ("::1", True), ("10.0.0.1", False), ("localhost.test", False),
    ("example.com", False), ("", False),
])
def test_one_loopback_test_everywhere(host: str, loopback: bool) -> None:
    assert urls.is_loopback_host(host) is loopback
    assert is_loopback_bind(host) is loopback
    if loopback:
        assert host_allowed(host)
    acs = f"http://[{host}]/acs" if ":" in host else f"http://{host}/acs"
    if host and loopback:
        threeds.acs_form_html(acs, "pareq", "md", "https://shop.test/term")
    elif host:
        with pytest.raises(ThreeDSError):
            threeds.acs_form_html(acs, "pareq", "md", "https://shop.test/term")


@pytest.mark.parametrize(("url", "secure"), [
    ("https://bank.example/acs", True), ("http://127.0.0.1:8787/acs", True),
    ("http://localhost/acs", True), ("http://[::1]/acs", True),
    ("http://bank.example/acs", False), ("http://10.0.0.1/acs", False),
    ("javascript:alert(1)", False), ("/acs", False),
])
def test_secure_url_is_https_or_loopback_http_and_acs_forms_use_it(url: str,
                                                                    secure: bool) -> None:
    assert (urls.secure_url_problem(url) is None) is secure
    if secure:
        assert threeds.acs_form(url, "p", "1", "https://shop.test/t")["action"] == url
    else:
        with pytest.raises(ThreeDSError):
            threeds.acs_form(url, "p", "1", "https://shop.test/t")
