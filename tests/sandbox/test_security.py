"""checkout_kit.sandbox.web.security and .rules.policy: Host rule, JSON-only controls,
control token, notification targets, and the serving options of ``checkout-kit sandbox``."""

from __future__ import annotations

import io
import ipaddress
import socket
import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from flask import Flask, request
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.serving import make_server

from checkout_kit.client import CloudPaymentsClient
from checkout_kit.errors import RequestRejectedError
from checkout_kit.sandbox import DEFAULT_SECRET, Sandbox, create_sandbox_app, sandbox_of
from checkout_kit.sandbox.cli import sandbox_command
from checkout_kit.sandbox.rules.policy import host_allowed, serving_options, target_refusal
from checkout_kit.sandbox.web.security import TOKEN_COOKIE, TargetRefused, pin_target

IP = "203.0.113.7"

# --------------------------------------------------------------------------- Host


@pytest.mark.parametrize("host", [
    "127.0.0.1:8787", "127.8.9.10", "[::1]:8787", "::1", "localhost", "LOCALHOST:1",
    "app.localhost", "sandbox", "sb", "shop.test", "cloudpayments.sandbox", "pay.example:80",
    "10.0.0.5:8787", "[2001:db8::1]", "localhost.",
])
def test_hosts_answered_by_default(host: str) -> None:
    assert host_allowed(host, ("cloudpayments.sandbox",))


@pytest.mark.parametrize("host", [
    "evil.com", "evil.com:8787", "localhost.evil.com", "127.0.0.1.nip.io", "sandbox.com.",
    "attacker.example.org", "", ":8787",
])
def test_hosts_refused_by_default(host: str) -> None:
    assert not host_allowed(host, ("cloudpayments.sandbox",))


def test_configured_hosts_and_the_wildcard() -> None:
    assert host_allowed("Sandbox.Dev.Corp:8787", ("sandbox.dev.corp",))
    assert not host_allowed("other.dev.corp", ("sandbox.dev.corp",))
    assert host_allowed("anything.com", ("*",))


def test_a_rebound_name_is_refused_on_every_path(cloudpayments_sandbox: Sandbox) -> None:
    """DNS rebinding: a page of evil.com whose name now points at 127.0.0.1 reaches
    the sandbox with ``Host: evil.com``; nothing answers it, API included."""
    web = cloudpayments_sandbox.app.test_client()
    for method, path in [("GET", "/"), ("GET", "/_sandbox/transactions"),
                         ("POST", "/payments/cards/charge"), ("GET", "/checkout.js"),
                         ("GET", "/payments/publickey"), ("POST", "/_sandbox/clock/advance")]:
        answer = web.open(path, method=method, json={}, headers={"Host": "evil.com:8787"})
        assert answer.status_code == 403, path
        assert answer.get_json()["Success"] is False
        assert "Host" in answer.get_json()["Message"]
    assert web.get("/payments/publickey", headers={"Host": "127.0.0.1:8787"}).status_code == 200


def test_the_terminal_url_host_is_answered(cloudpayments_sandbox: Sandbox) -> None:
    """docs/client.md points an in-process client at http://sandbox.local."""
    web = cloudpayments_sandbox.app.test_client()
    assert web.get("/_sandbox/clock", headers={"Host": "sandbox.local"}).status_code == 200
    cloudpayments_sandbox.settings.terminal_url = "https://cp.corp.example.com/"
    assert web.get("/_sandbox/clock", headers={"Host": "sandbox.local"}).status_code == 403
    assert web.get("/_sandbox/clock",
                   headers={"Host": "cp.corp.example.com:8787"}).status_code == 200


def test_allowed_hosts_setting_is_read_per_request(cloudpayments_sandbox: Sandbox) -> None:
    web = cloudpayments_sandbox.app.test_client()
    assert web.get("/_sandbox/clock", headers={"Host": "sandbox.corp"}).status_code == 403
    cloudpayments_sandbox.settings.allowed_hosts = ("sandbox.corp",)
    assert web.get("/_sandbox/clock", headers={"Host": "sandbox.corp"}).status_code == 200


def test_in_process_clients_keep_working(cloudpayments_client: CloudPaymentsClient,
                                         cloudpayments_sandbox: Sandbox) -> None:
    """The pytest plugin's base URL (cloudpayments.sandbox) and dotless names."""
    packet = cloudpayments_sandbox.make_cryptogram("4000000000003055")
    assert cloudpayments_client.charge(Decimal(1), ip_address=IP, cryptogram=packet).amount == 1
    with CloudPaymentsClient(cloudpayments_sandbox.public_id, cloudpayments_sandbox.api_secret,
                             base_url="http://sandbox",
                             transport=httpx.WSGITransport(app=cloudpayments_sandbox.app)) as c:
        assert c.test()


# --------------------------------------------------------------------------- controls


@pytest.mark.parametrize("path", ["/_sandbox/run", "/_sandbox/clock/advance", "/_sandbox/faults",
                                  "/_sandbox/settings", "/_sandbox/test-order"])
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x",
                                          "application/jsonp", "text/json"])
def test_control_posts_need_json(path: str, content_type: str | None,
                                 cloudpayments_sandbox: Sandbox) -> None:
    """What a cross-site form or a "simple" fetch can send is refused before it acts."""
    web = cloudpayments_sandbox.app.test_client()
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = b'{"days": 1, "save_cards": "always", "kind": "status", "status": 503}'
    answer = web.post(path, data=body, headers=headers)
    assert answer.status_code == 415
    assert answer.get_json() == {"Success": False,
                                 "Message": "The sandbox controls take Content-Type: "
                                            "application/json"}
    assert cloudpayments_sandbox.clock.offset < timedelta(hours=1)  # no day was added
    assert cloudpayments_sandbox.faults.list() == []
    assert cloudpayments_sandbox.settings.save_cards == "on_request"
    assert cloudpayments_sandbox.state.orders == {}


def test_control_posts_with_json_work(cloudpayments_sandbox: Sandbox) -> None:
    web = cloudpayments_sandbox.app.test_client()
    answer = web.post("/_sandbox/clock/advance", data=b'{"days": 1}',
                      headers={"Content-Type": "application/json; charset=utf-8"})
    assert answer.status_code == 200
    assert cloudpayments_sandbox.clock.offset > timedelta(hours=23)


def test_controls_give_no_cors_grant(cloudpayments_sandbox: Sandbox) -> None:
    """A cross-origin JSON fetch needs a preflight: the controls never allow it."""
    web = cloudpayments_sandbox.app.test_client()
    answer = web.options("/_sandbox/settings", headers={
        "Origin": "http://evil.test", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_settings_control_shows_and_changes_the_security_settings(
    cloudpayments_sandbox: Sandbox,
) -> None:
    web = cloudpayments_sandbox.app.test_client()
    shown = web.get("/_sandbox/settings").get_json()
    assert shown["allowed_hosts"] == ["cloudpayments.sandbox"]
    assert shown["private_notification_targets"] is False
    assert shown["control_token_required"] is False
    changed = web.post("/_sandbox/settings", json={
        "allowed_hosts": ["cloudpayments.sandbox", "Shop.Dev.Corp"],
        "private_notification_targets": True}).get_json()
    assert changed["allowed_hosts"] == ["cloudpayments.sandbox", "shop.dev.corp"]
    assert changed["private_notification_targets"] is True
    assert web.get("/_sandbox/clock", headers={"Host": "shop.dev.corp"}).status_code == 200
    cloudpayments_sandbox.configure_notification("Pay", "http://10.0.0.5/cp")  # now allowed
    for bad in ("shop.dev.corp", ["two words"], [7]):
        answer = web.post("/_sandbox/settings", json={"allowed_hosts": bad})
        assert answer.status_code == 400
    assert cloudpayments_sandbox.settings.allowed_hosts == ("cloudpayments.sandbox",
                                                            "shop.dev.corp")


def test_settings_control_never_shows_the_control_token(guarded: Sandbox) -> None:
    token = guarded.settings.control_token
    assert token is not None
    answer = guarded.app.test_client().get("/_sandbox/settings",
                                           headers={"X-Sandbox-Token": token})
    assert answer.get_json()["control_token_required"] is True
    assert token not in answer.get_data(as_text=True)


@pytest.fixture
def guarded(cloudpayments_sandbox: Sandbox) -> Sandbox:
    cloudpayments_sandbox.settings.control_token = "t0ken-for-the-tests-0001"
    return cloudpayments_sandbox


def test_control_token_is_required_when_set(guarded: Sandbox) -> None:
    web = guarded.app.test_client()
    for path in ("/_sandbox/", "/_sandbox/transactions", "/_sandbox/settings"):
        answer = web.get(path)
        assert answer.status_code == 401 and answer.get_json()["Success"] is False
    assert web.get("/_sandbox/clock", headers={"X-Sandbox-Token": "wrong"}).status_code == 401
    assert web.post("/_sandbox/run", json={}).status_code == 401
    token = guarded.settings.control_token
    assert web.get("/_sandbox/clock", headers={"X-Sandbox-Token": token}).status_code == 200
    assert web.post("/_sandbox/run", json={},
                    headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # The API and the pages are not controls: their own rules apply.
    assert web.get("/payments/publickey").status_code == 200
    assert web.get("/").status_code == 200


def test_control_token_in_the_query_sets_a_strict_cookie(guarded: Sandbox) -> None:
    web = guarded.app.test_client()
    answer = web.get(f"/_sandbox/?token={guarded.settings.control_token}")
    assert answer.status_code == 200
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"{TOKEN_COOKIE}=") and "SameSite=Strict" in cookie
    assert "HttpOnly" in cookie
    # The browser now sends the cookie: the inspector's links and the home page work.
    assert web.get("/_sandbox/transactions").status_code == 200
    assert web.post("/_sandbox/test-order", json={}).get_json()["Success"] is True
    # A token in the query of a POST does not count (it would be a cross-site form).
    fresh = guarded.app.test_client()
    assert fresh.post(f"/_sandbox/run?token={guarded.settings.control_token}",
                      json={}).status_code == 401


# --------------------------------------------------------------------------- notification targets


@pytest.mark.parametrize("address, allow_private, refused", [
    ("127.0.0.1", False, False), ("::1", False, False), ("127.5.5.5", False, False),
    ("169.254.169.254", True, True), ("169.254.0.1", True, True), ("fd00:ec2::254", True, True),
    ("fe80::1", True, True), ("::ffff:169.254.169.254", True, True), ("0.0.0.0", True, True),
    ("224.0.0.1", True, True), ("10.1.2.3", False, True), ("10.1.2.3", True, False),
    ("192.168.1.10", False, True), ("172.16.0.1", False, True), ("fc00::1", False, True),
    ("100.64.0.1", False, True), ("192.168.1.10", True, False), ("8.8.8.8", False, False),
    ("2001:4860:4860::8888", False, False),
])
def test_target_policy(address: str, allow_private: bool, refused: bool) -> None:
    problem = target_refusal(ipaddress.ip_address(address), allow_private=allow_private)
    assert (problem is not None) is refused, problem


def test_pinning_connects_to_the_checked_address() -> None:
    url = httpx.URL("https://shop.dev:8443/cp/pay?x=1")
    ((pinned, headers, extensions),) = pin_target(
        url, allow_private=False, resolve=lambda host, port: ["93.184.216.34"])
    assert str(pinned) == "https://93.184.216.34:8443/cp/pay?x=1"
    assert headers == {"Host": "shop.dev:8443"} and extensions == {"sni_hostname": "shop.dev"}
    both = pin_target(url, allow_private=False, resolve=lambda host, port: [
        "2606:4700::1111", "93.184.216.34", "93.184.216.34"])
    assert [str(t[0]) for t in both] == ["https://[2606:4700::1111]:8443/cp/pay?x=1",
                                         "https://93.184.216.34:8443/cp/pay?x=1"]
    with pytest.raises(TargetRefused, match="metadata"):
        pin_target(url, allow_private=True,
                   resolve=lambda host, port: ["93.184.216.34", "169.254.169.254"])
    with pytest.raises(TargetRefused, match="private"):
        pin_target(url, allow_private=False, resolve=lambda host, port: ["10.0.0.7"])
    assert pin_target(url, allow_private=True, resolve=lambda h, p: ["10.0.0.7"])[0][0].host \
        == "10.0.0.7"
    literal = httpx.URL("http://127.0.0.1:9/x")
    assert pin_target(literal, allow_private=False) == [(literal, {}, {})]


@pytest.mark.parametrize("address", ["http://169.254.169.254/latest/meta-data/",
                                     "http://[fd00:ec2::254]/", "http://[fe80::1%25eth0]/",
                                     "http://10.0.0.5/cp", "http://192.168.0.2:8080/cp"])
def test_refused_addresses_cannot_be_configured(address: str, cloudpayments_client:
                                                CloudPaymentsClient) -> None:
    with pytest.raises(RequestRejectedError, match="Address is refused"):
        cloudpayments_client.update_notification_settings("Pay", is_enabled=True,
                                                          address=address)


def test_private_addresses_with_the_setting(cloudpayments_sandbox: Sandbox) -> None:
    cloudpayments_sandbox.settings.private_notification_targets = True
    cloudpayments_sandbox.configure_notification("Pay", "http://10.0.0.5/cp")
    with pytest.raises(Exception, match="metadata"):
        cloudpayments_sandbox.configure_notification("Pay", "http://169.254.169.254/")


def _network_sandbox(keys: dict[int, bytes]) -> Sandbox:
    # No notification_transport: deliveries go over the network, through the policy.
    return sandbox_of(create_sandbox_app(keys=keys, deliver_immediately=False))


def _pay_and_deliver(sandbox: Sandbox) -> Any:
    """Charge once and send the one Pay notification; its one delivery attempt."""
    sandbox.app.test_client().post(
        "/payments/cards/charge", auth=(sandbox.public_id, sandbox.api_secret), json={
            "Amount": 1, "IpAddress": IP,
            "CardCryptogramPacket": sandbox.make_cryptogram("4000000000003055")})
    assert sandbox.deliver_pending() == 1
    (delivery,) = sandbox.state.deliveries.values()
    (attempt,) = delivery.attempts
    return attempt


def test_a_refused_target_is_never_contacted(cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    sandbox = _network_sandbox(cloudpayments_sandbox_keys)
    sandbox.settings.private_notification_targets = True
    sandbox.configure_notification("Pay", "http://10.255.255.1:9/cp")
    sandbox.settings.private_notification_targets = False  # turned off afterwards
    web = sandbox.app.test_client()
    attempt = _pay_and_deliver(sandbox)
    assert not attempt.ok and attempt.error is not None
    assert attempt.error.startswith("TargetRefused") and "private" in attempt.error
    assert attempt.response is None and attempt.status_code is None
    row = web.get("/_sandbox/deliveries").get_json()[0]
    assert row["attempts"][0]["response"] is None


def test_a_refused_check_target_declines_as_unreachable(
    cloudpayments_sandbox_keys: dict[int, bytes],
) -> None:
    sandbox = _network_sandbox(cloudpayments_sandbox_keys)
    sandbox.settings.private_notification_targets = True
    sandbox.configure_notification("Check", "http://192.168.255.254:9/check")
    sandbox.settings.private_notification_targets = False
    answer = sandbox.app.test_client().post(
        "/payments/cards/charge", auth=(sandbox.public_id, sandbox.api_secret), json={
            "Amount": 1, "IpAddress": IP,
            "CardCryptogramPacket": sandbox.make_cryptogram("4000000000003055")}).get_json()
    assert answer["Model"]["ReasonCode"] == 3007


def test_loopback_targets_get_their_response_shown(
    cloudpayments_sandbox_keys: dict[int, bytes], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shop under development on 127.0.0.1 receives notifications, over the network,
    and the inspector shows what it answered. ``localhost`` resolving to ::1 first
    (where nothing listens) falls back to its next address, as a connection would."""
    shop = Flask("shop")
    hosts: list[str] = []

    @shop.post("/cp/pay")
    def pay() -> dict[str, int]:
        hosts.append(request.host)
        return {"code": 0}

    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: int, *args: Any, **kw: Any) -> list[Any]:
        if host != "localhost":  # the connections to the addresses themselves
            return real(host, port, *args, **kw)
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    server = make_server("127.0.0.1", 0, shop, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sandbox = _network_sandbox(cloudpayments_sandbox_keys)
        sandbox.configure_notification("Pay", f"http://localhost:{server.server_port}/cp/pay")
        web = sandbox.app.test_client()
        web.post("/payments/cards/charge", auth=(sandbox.public_id, sandbox.api_secret), json={
            "Amount": 1, "IpAddress": IP,
            "CardCryptogramPacket": sandbox.make_cryptogram("4000000000003055")})
        sandbox.deliver_pending()
    finally:
        server.shutdown()
    row = web.get("/_sandbox/deliveries").get_json()[0]
    assert row["state"] == "delivered"
    assert hosts == [f"localhost:{server.server_port}"]
    assert row["attempts"][0]["response"] == '{"code":0}\n'


# --------------------------------------------------------------------------- serving


def test_serving_on_loopback_needs_nothing_more() -> None:
    options = serving_options("127.0.0.1", expose=False, control_token=None, allowed_hosts=())
    assert options == {"allowed_hosts": ("cloudpayments.sandbox",), "control_token": None,
                       "api_secret": DEFAULT_SECRET}
    assert serving_options("127.0.0.1", expose=False, control_token=None, allowed_hosts=(),
                           api_secret="own-secret")["api_secret"] == "own-secret"
    assert serving_options("localhost", expose=False, control_token=None,
                           allowed_hosts=("a.dev",))["allowed_hosts"] == (
        "cloudpayments.sandbox", "a.dev")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "sandbox.lan"])
def test_serving_beyond_loopback_needs_expose_and_a_token(host: str) -> None:
    with pytest.raises(ValueError, match="--expose"):
        serving_options(host, expose=False, control_token=None, allowed_hosts=())
    options = serving_options(host, expose=True, control_token=None, allowed_hosts=(),
                              make_token=lambda: "generated-token-000001")
    assert options["control_token"] == "generated-token-000001"
    given = serving_options(host, expose=True, control_token="my-own-token-12345",
                            allowed_hosts=())
    assert given["control_token"] == "my-own-token-12345"
    if host == "sandbox.lan":  # the name it is served under answers
        assert "sandbox.lan" in options["allowed_hosts"]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5"])
def test_an_exposed_sandbox_takes_no_published_secret_and_no_loopback_target(host: str) -> None:
    """Exposed, the default credentials would let anyone on the network use the API,
    and loopback targets would let them make the sandbox POST to its host's ports."""
    options = serving_options(host, expose=True, control_token=None, allowed_hosts=(),
                              make_token=lambda: "generated-token-000001")
    assert options["api_secret"] == "generated-token-000001"
    assert options["exposed"] is True and options["loopback_notification_targets"] is False
    with pytest.raises(ValueError, match="default API secret"):
        serving_options(host, expose=True, control_token=None, allowed_hosts=(),
                        api_secret=DEFAULT_SECRET)
    own = serving_options(host, expose=True, control_token=None, allowed_hosts=(),
                          api_secret="my-own-secret", allow_loopback_targets=True)
    assert own["api_secret"] == "my-own-secret" and own["loopback_notification_targets"]


def test_cli_refuses_the_published_secret_when_exposed() -> None:
    result = CliRunner().invoke(sandbox_command, ["--host", "0.0.0.0", "--port", "0",
                                                  "--expose", "--api-secret", DEFAULT_SECRET])
    assert result.exit_code == 2
    assert "default API secret" in result.output


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_targets_only_when_allowed(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert target_refusal(ip, allow_private=True) is None
    problem = target_refusal(ip, allow_private=True, allow_loopback=False)
    assert problem is not None and "--allow-loopback-targets" in problem


def test_an_exposed_sandbox_refuses_loopback_targets(
    cloudpayments_sandbox_keys: dict[int, bytes],
) -> None:
    sandbox = sandbox_of(create_sandbox_app(
        keys=cloudpayments_sandbox_keys, deliver_immediately=False,
        **serving_options("0.0.0.0", expose=True, control_token=None, allowed_hosts=())))
    with pytest.raises(Exception, match="loopback"):
        sandbox.configure_notification("Pay", "http://127.0.0.1:6379/")
    # A name that resolves to loopback is refused when the notification goes out.
    sandbox.configure_notification("Pay", "http://localhost:9/cp")
    attempt = _pay_and_deliver(sandbox)
    assert attempt.error is not None and attempt.error.startswith("TargetRefused")
    assert "loopback" in attempt.error


def test_a_weak_control_token_is_refused() -> None:
    for token in ("short", "has space in it 1234", "semi;colon-0123456789"):
        with pytest.raises(ValueError, match="control token"):
            serving_options("0.0.0.0", expose=True, control_token=token, allowed_hosts=())


def test_cli_refuses_to_listen_beyond_loopback_without_expose() -> None:
    result = CliRunner().invoke(sandbox_command, ["--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2
    assert "--expose" in result.output


@pytest.fixture(scope="module")
def fuzz_app(cloudpayments_sandbox_keys: dict[int, bytes]) -> Any:
    # One sandbox for every example (an app per example would be slow).
    return create_sandbox_app(keys=cloudpayments_sandbox_keys)


@settings(max_examples=300, deadline=None)
@given(host=st.text(max_size=40) | st.from_regex(r"[a-z0-9.\-\[\]:]{0,30}", fullmatch=True))
def test_any_host_header_gets_an_answer_never_a_crash(fuzz_app: Any, host: str) -> None:
    allowed = host_allowed(host, ("cloudpayments.sandbox",))
    assert isinstance(allowed, bool)
    name = host.strip().lower()
    if name.endswith((".com", ".org", ".ru")) and ":" not in name and "]" not in name:
        assert not allowed
    app = fuzz_app
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/_sandbox/clock", "HTTP_HOST": host,
               "SERVER_NAME": "x", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(), "SERVER_PROTOCOL": "HTTP/1.1"}
    statuses: list[str] = []
    body = b"".join(app(environ, lambda status, headers, exc=None: statuses.append(status)))
    assert statuses[0][:3] in ("200", "400", "403") and body  # 400: a Host werkzeug cannot read
