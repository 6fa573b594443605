"""The mounted sandbox keeps its state next to the ledger: restarts, other processes
and the ``flask checkout`` commands all see one sandbox (issue: the first hour, §1).

Each "process" here is a new app built on the same instance folder, with its own
sandbox object and SQLite connections, as a restart or a ``flask`` command makes one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flask import Flask

from checkout_kit.shop import CheckoutKit
from checkout_kit.shop.extension import SANDBOX_STATE_FILE

from .conftest import NO_3DS, Shop, stop_process

stop = stop_process


def paid(shop: Shop, invoice: str) -> object:
    payment = shop.create(invoice)
    answer = shop.pay(payment.id, NO_3DS)
    assert answer.status_code in (200, 303), answer.text
    with shop.app.app_context():
        done = shop.kit.get(payment.id)
    assert str(done.status) == "succeeded", done
    return done


def test_the_state_lives_in_the_instance_folder_next_to_the_ledger(
        start: object, tmp_path: Path) -> None:
    shop = start()  # type: ignore[operator]
    assert shop.sandbox.state_path == tmp_path / SANDBOX_STATE_FILE
    assert shop.sandbox.state_path.is_file()
    assert str(tmp_path) in shop.state.settings.database_url


def test_after_a_restart_transaction_ids_go_on_and_payments_succeed(start: object) -> None:
    first = start()  # type: ignore[operator]
    before = paid(first, "order-1")
    stop(first)
    again = start()  # type: ignore[operator]
    after = paid(again, "order-2")
    assert after.gateway_transaction_id > before.gateway_transaction_id
    with again.app.app_context():
        assert str(again.kit.get(before.id).status) == "succeeded"
        # nothing of the new payment was taken for a repeat of the old one
        events = again.state.ledger.history(after.id)
    assert not any("duplicate" in (event.note or "") for event in events)


def test_a_flask_checkout_command_acts_on_the_running_apps_sandbox(start: object) -> None:
    running = start()  # type: ignore[operator]
    payment = paid(running, "order-1")
    command = start()  # type: ignore[operator]  # what `flask checkout refund` builds
    result = command.app.test_cli_runner().invoke(args=["checkout", "refund", payment.id])
    assert result.exit_code == 0, result.output
    assert "status=refunded" in result.output
    with running.sandbox.lock:
        assert running.sandbox.state.transactions[
            payment.gateway_transaction_id].refunded == payment.amount


def test_notification_settings_set_by_the_command_are_kept(start: object) -> None:
    running = start()  # type: ignore[operator]
    command = start()  # type: ignore[operator]
    result = command.app.test_cli_runner().invoke(
        args=["checkout", "notifications", "configure", "--base-url", "https://shop.example"])
    assert result.exit_code == 0, result.output
    running.sandbox.sync()
    setting = running.sandbox.state.notification_settings["Pay"]
    assert setting.address == "https://shop.example/checkout/notifications/pay"


def test_a_ledger_the_sandbox_never_saw_is_found_and_no_id_repeats(
        start: object, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = start()  # type: ignore[operator]
    old = paid(first, "order-1")
    stop(first)
    for suffix in ("", "-wal", "-shm"):  # the sandbox's state deleted, the ledger kept
        (tmp_path / (SANDBOX_STATE_FILE + suffix)).unlink(missing_ok=True)
    again = start()  # type: ignore[operator]  # init_app reads nothing of the ledger
    with caplog.at_level(logging.WARNING, logger="checkout_kit.shop"):
        fresh = paid(again, "order-2")  # found at the first use, logged once
        paid(again, "order-3")
    (record,) = [r for r in caplog.records if "never issued" in r.getMessage()]
    assert f"never issued ({old.gateway_transaction_id})" in record.getMessage()
    assert "flask checkout sandbox reset" in record.getMessage()
    assert fresh.gateway_transaction_id > old.gateway_transaction_id  # no id repeats
    with again.app.app_context():
        assert str(again.kit.get(old.id).status) == "succeeded"  # the old one is kept

    runner = again.app.test_cli_runner()
    kept = runner.invoke(args=["checkout", "sandbox", "reset"], input="n\n")
    assert kept.exit_code == 1 and "Aborted" in kept.output
    with again.app.app_context():  # nothing erased on "no"
        assert again.kit.get(old.id).gateway_transaction_id == old.gateway_transaction_id
    done = runner.invoke(args=["checkout", "sandbox", "reset", "--yes"])
    assert done.exit_code == 0, done.output
    assert "ledger:" in done.output
    after = paid(again, "order-1")  # the same invoice again: the ledger was emptied
    assert after.gateway_transaction_id > fresh.gateway_transaction_id


def test_a_reset_by_the_command_leaves_the_running_app_taking_payments(
        start: object) -> None:
    running = start()  # type: ignore[operator]
    paid(running, "order-1")
    command = start()  # type: ignore[operator]
    done = command.app.test_cli_runner().invoke(args=["checkout", "sandbox", "reset", "--yes"])
    assert done.exit_code == 0, done.output
    again = paid(running, "order-1")  # the running process, not restarted
    assert str(again.status) == "succeeded"


def test_notification_settings_set_by_the_command_survive_a_restart(start: object) -> None:
    first = start()  # type: ignore[operator]
    result = first.app.test_cli_runner().invoke(
        args=["checkout", "notifications", "configure", "--base-url", "https://shop.example"])
    assert result.exit_code == 0, result.output
    stop(first)
    again = start()  # type: ignore[operator]
    again.sandbox.sync()
    setting = again.sandbox.state.notification_settings["Pay"]
    assert setting.address == "https://shop.example/checkout/notifications/pay"


def test_reset_refuses_without_a_mounted_sandbox(shop: Shop) -> None:
    # the conftest's shop mounts a sandbox it made itself, in memory: still mounted
    result = shop.app.test_cli_runner().invoke(args=["checkout", "sandbox", "reset", "--yes"])
    assert result.exit_code == 0, result.output
    app = Flask("no_sandbox", instance_path=str(shop.app.instance_path))
    app.config.update(SECRET_KEY="s", CHECKOUT_KIT_PUBLIC_ID="pk_test",
                      CHECKOUT_KIT_API_SECRET="secret",
                      CHECKOUT_KIT_DATABASE_URL="sqlite://")
    CheckoutKit(app)
    result = app.test_cli_runner().invoke(args=["checkout", "sandbox", "reset", "--yes"])
    assert result.exit_code == 1 and "no sandbox is mounted" in result.output
