"""Errors a shop developer meets in the first hour leave a trace and a hint (issue: the
first hour, §3): a wrong API secret, a ledger never upgraded, config slips, and
``flask checkout doctor``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from checkout_kit.ledger import upgrade
from checkout_kit.ledger.migrations import head_revision
from checkout_kit.sandbox import sandbox_of
from checkout_kit.shop import CheckoutKit, ConfigurationError, mount_sandbox
from checkout_kit.shop.state import state

from .conftest import NO_3DS, Shop

CARD_LOGGERS = ("checkout_kit", "werkzeug", "flask")


def _shop(tmp_path: Path, *, upgraded: bool = True, **config: Any) -> Shop:
    app = Flask("first_hour_shop", instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="test secret", TESTING=True, **config)
    sandbox_app = mount_sandbox(app, state_path=None)
    kit = CheckoutKit(app)
    if upgraded:
        upgrade(state(app).settings.database_url)
    return Shop(app, app.test_client(), kit, sandbox_of(sandbox_app))


@pytest.fixture
def made() -> Iterator[list[Shop]]:
    shops: list[Shop] = []
    yield shops
    for shop in shops:
        shop.state.ledger.engine.dispose()
        shop.state.client.close()


def test_a_wrong_api_secret_is_logged_once_and_kept_in_the_history(
        tmp_path: Path, made: list[Shop], caplog: pytest.LogCaptureFixture) -> None:
    shop = _shop(tmp_path, CHECKOUT_KIT_API_SECRET="not the secret")
    made.append(shop)
    payment = shop.create()
    with caplog.at_level(logging.INFO):
        answer = shop.pay(payment.id, NO_3DS)
    assert answer.status_code == 503
    about = [r for r in caplog.records if payment.id in r.getMessage()]
    (error,) = [r for r in about if r.levelno >= logging.WARNING]
    assert error.levelno == logging.ERROR and error.name == "checkout_kit.ledger.service"
    assert "HTTP 401" in error.getMessage() and "refused" in error.getMessage()
    assert NO_3DS not in caplog.text
    last = shop.state.ledger.history(payment.id)[-1]
    assert str(last.new_status) == "failed"
    assert "the Public ID / API secret pair was refused" in (last.note or "")


def test_a_decline_is_logged_as_information(tmp_path: Path, made: list[Shop],
                                            caplog: pytest.LogCaptureFixture) -> None:
    shop = _shop(tmp_path)
    made.append(shop)
    payment = shop.create()
    with caplog.at_level(logging.INFO, logger="checkout_kit"):
        shop.pay(payment.id, "4000056655665556")
    (record,) = [r for r in caplog.records if payment.id in r.getMessage()]
    assert record.levelno == logging.INFO and "declined 5051" in record.getMessage()


def test_a_ledger_never_upgraded_says_what_to_run_everywhere(
        tmp_path: Path, made: list[Shop], caplog: pytest.LogCaptureFixture) -> None:
    shop = _shop(tmp_path, upgraded=False)
    made.append(shop)
    with pytest.raises(ConfigurationError, match="run flask checkout db upgrade"):
        shop.create()
    page = shop.client.get("/checkout/pay/pay_anything")
    assert page.status_code == 503 and "Traceback" not in page.text
    sent = shop.client.post("/checkout/notifications/pay", data={"TransactionId": "1"})
    assert sent.status_code == 503 and sent.is_json and sent.json == {"code": 13}
    assert "db upgrade" in caplog.text
    listed = shop.app.test_cli_runner().invoke(args=["checkout", "payments"])
    assert listed.exit_code == 1
    assert listed.output.strip().splitlines() == [
        "Error: ConfigurationError: CHECKOUT_KIT_DATABASE_URL: the ledger's tables are not "
        "there: run flask checkout db upgrade"]
    done = shop.app.test_cli_runner().invoke(args=["checkout", "db", "upgrade"])
    assert done.exit_code == 0, done.output
    assert shop.create().status == "created"  # found current at the next use


def test_an_old_ledger_names_both_revisions(tmp_path: Path, made: list[Shop]) -> None:
    shop = _shop(tmp_path, upgraded=False)
    made.append(shop)
    upgrade(shop.state.settings.database_url, "0006_problem_resolution")
    with pytest.raises(ConfigurationError) as info:
        shop.create()
    assert str(info.value).endswith(
        f"the ledger is at revision 0006_problem_resolution, this checkout_kit needs "
        f"{head_revision()}: run flask checkout db upgrade")


def test_every_config_problem_is_reported_at_once_with_a_hint_for_typos(
        tmp_path: Path) -> None:
    app = Flask("bad_config", instance_path=str(tmp_path))
    app.config.update(CHECKOUT_KIT_PUBLIC_ID="pk_test", CHECKOUT_KIT_API_SECRET="s",
                      CHECKOUT_KIT_DATABSE_URL="sqlite://", CHECKOUT_KIT_MODE="cart",
                      CHECKOUT_KIT_HTTP_TIMEOUT=-1)
    with pytest.raises(ConfigurationError) as info:
        CheckoutKit(app)
    keys = [key for key, _ in info.value.problems]
    assert keys == ["CHECKOUT_KIT_DATABSE_URL", "CHECKOUT_KIT_HTTP_TIMEOUT",
                    "CHECKOUT_KIT_MODE", "SECRET_KEY"]
    assert info.value.key == "CHECKOUT_KIT_DATABSE_URL"
    text = str(info.value)
    assert text.startswith("4 settings are wrong: ")
    assert "did you mean CHECKOUT_KIT_DATABASE_URL?" in text
    assert "must be one of form, widget; got 'cart'" in text


def test_a_key_like_no_other_gets_no_guess(tmp_path: Path) -> None:
    app = Flask("bad_key", instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="s", CHECKOUT_KIT_PUBLIC_ID="pk_test",
                      CHECKOUT_KIT_API_SECRET="s", CHECKOUT_KIT_COLOUR="blue")
    with pytest.raises(ConfigurationError) as info:
        CheckoutKit(app)
    assert info.value.problems == (
        ("CHECKOUT_KIT_COLOUR", "is not a checkout_kit setting (a typo?)"),)


def test_mount_sandbox_after_the_kit_says_so(tmp_path: Path) -> None:
    app = Flask("late_mount", instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="s")
    with pytest.raises(ConfigurationError) as info:
        CheckoutKit(app)  # before the sandbox: no credentials yet
    assert ("CHECKOUT_KIT_SANDBOX", "for the sandbox, call mount_sandbox(app) before "
            "CheckoutKit(app): it sets the Public ID and secret") in info.value.problems
    assert info.value.message.startswith("3 settings are wrong: CHECKOUT_KIT_PUBLIC_ID: ")
    live = Flask("live_shop", instance_path=str(tmp_path))  # a live shop gets no hint
    live.config.update(SECRET_KEY="s", CHECKOUT_KIT_API_SECRET="secret")
    with pytest.raises(ConfigurationError) as missing:
        CheckoutKit(live)
    assert [key for key, _ in missing.value.problems] == ["CHECKOUT_KIT_PUBLIC_ID"]
    other = Flask("late_mount_2", instance_path=str(tmp_path))
    other.config.update(SECRET_KEY="s", CHECKOUT_KIT_PUBLIC_ID="pk_test",
                        CHECKOUT_KIT_API_SECRET="s")
    CheckoutKit(other)
    with pytest.raises(ConfigurationError, match="was called after CheckoutKit"):
        mount_sandbox(other, state_path=None)


def _doctor(shop: Shop, *args: str) -> tuple[int, list[str]]:
    result = shop.app.test_cli_runner().invoke(args=["checkout", "doctor", *args])
    return result.exit_code, result.output.splitlines()


def test_doctor_passes_a_sound_setup(tmp_path: Path, made: list[Shop]) -> None:
    shop = _shop(tmp_path)
    made.append(shop)
    code, lines = _doctor(shop, "--base-url", "http://shop.invalid")
    assert code == 0, lines
    assert [line.split()[:2] for line in lines[:3]] == [
        ["ok", "credentials"], ["ok", "ledger"], ["ok", "public"]]
    assert any(line.startswith("ok    notifications  Pay goes to") for line in lines)
    assert not any(line.startswith("FAIL") for line in lines)


def test_doctor_names_each_problem(tmp_path: Path, made: list[Shop]) -> None:
    shop = _shop(tmp_path, upgraded=False, CHECKOUT_KIT_API_SECRET="not the secret")
    made.append(shop)
    code, lines = _doctor(shop)
    assert code == 1
    assert lines[0].startswith("FAIL  credentials    the gateway refused the Public ID")
    assert lines[1].endswith("the ledger's tables are not there: run flask checkout db "
                             "upgrade")
    assert lines[2].startswith("skip  public URL")
    assert lines[3].startswith("skip  notifications  the gateway cannot be asked")


def test_doctor_finds_notifications_sent_elsewhere(tmp_path: Path, made: list[Shop]) -> None:
    shop = _shop(tmp_path)
    made.append(shop)
    shop.sandbox.configure_notification("Fail", "https://old.example/fail",
                                        http_method="POST")
    code, lines = _doctor(shop)
    assert code == 1
    assert ("FAIL  notifications  Fail goes to https://old.example/fail, not "
            "http://shop.invalid/checkout/notifications/fail: run flask checkout "
            "notifications configure --base-url http://shop.invalid") in lines


def test_doctor_refuses_a_local_address_for_a_live_shop(tmp_path: Path,
                                                        made: list[Shop]) -> None:
    shop = _shop(tmp_path)
    made.append(shop)
    doctor = __import__("checkout_kit.shop.cli", fromlist=["_Doctor"])._Doctor
    live = type("Live", (), {"settings": type("S", (), {"sandbox": False})()})()
    (verdict,) = doctor(live, "http://127.0.0.1:5000").public_url()
    assert verdict[0] == "FAIL" and "public https address" in verdict[1]
    (verdict,) = doctor(live, "https://shop.example/").public_url()
    assert verdict == ("ok", "https://shop.example")


def test_an_old_ledger_does_not_stop_the_app_so_the_upgrade_can_run(tmp_path: Path) -> None:
    # The default mount keeps the sandbox in a file: init_app still reads no ledger.
    upgrade(f"sqlite:///{tmp_path}/checkout_kit.sqlite3", "0002")
    app = Flask("old_ledger_shop", instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="s")
    mount_sandbox(app)
    kit = CheckoutKit(app)
    result = app.test_cli_runner().invoke(args=["checkout", "db", "upgrade"])
    assert result.exit_code == 0, result.output
    with app.test_request_context():
        assert kit.create_payment(invoice_id="A-1", amount="10.00",
                                  description="d").status == "created"
    state(app).ledger.engine.dispose()
    state(app).client.close()
    assert state(app).sandbox is not None
    state(app).sandbox.close()
