"""Tests for the checkout-kit command line (click's CliRunner, in process)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from checkout_kit import cryptogram
from checkout_kit.cli import main


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("keys")
    result = CliRunner().invoke(main, ["keygen", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "private.pem").stat().st_mode & 0o077 == 0
    return out


def test_card_check_json_masks_and_reports_codes() -> None:
    result = CliRunner().invoke(
        main, ["card", "check", "4242 4242 4242 4242", "4242424242424241", "--exp", "13/30",
               "--cvv", "12", "--json"],
    )
    assert result.exit_code == 1
    first, second = (json.loads(line) for line in result.output.splitlines())
    assert first["number"] == "424242******4242" and first["brand"] == "visa"
    assert first["luhn"] is True and first["potentially_valid"] is True
    assert first["errors"] == {"expDateMonthYear": "ExpDateMonthYear_Invalid", "cvv": "Cvv_Invalid"}
    assert second["luhn"] is False
    assert second["errors"]["cardNumber"] == "CardNumber_Invalid"
    assert "4242424242424241" not in result.output


def test_card_check_reads_stdin_and_exits_zero_when_valid() -> None:
    result = CliRunner().invoke(main, ["card", "check"], input="2200000000000004\n\n")
    assert result.exit_code == 0
    assert "brand=mir" in result.output and "valid=True" in result.output


@pytest.mark.parametrize("fmt", ["01", "02", "cloudcard", "cloudcard-ios"])
def test_build_inspect_decrypt_round_trip(keys: Path, fmt: str) -> None:
    runner = CliRunner()
    built = runner.invoke(main, [
        "cryptogram", "build", "--public-id", "test_api_00000000000000000000001",
        "--card", "5555 5555 5555 4444", "--exp", "07/31", "--cvv", "321", "--format", fmt,
        "--key", str(keys / "public.pem"), "--key-version", "9",
    ])
    assert built.exit_code == 0, built.output
    packet = built.output.strip()
    header = json.loads(runner.invoke(main, ["cryptogram", "inspect", packet, "--json"]).output)
    assert header == {"format": fmt, "first_six": "555555", "last_four": "4444",
                      "exp_month": 7, "exp_year": 2031, "key_version": 9}
    opened = runner.invoke(main, ["cryptogram", "decrypt", "--private-key",
                                  str(keys / "private.pem"), "--json"], input=packet + "\n")
    assert opened.exit_code == 0, opened.output
    record = json.loads(opened.output)
    assert record["card_number"] == "5555555555554444" and record["cvv"] == "321"
    assert record["public_id"] == "test_api_00000000000000000000001"


@pytest.mark.parametrize("fmt", ["03", "02-cvv"])
def test_build_cvv_only_and_card_from_stdin(keys: Path, fmt: str) -> None:
    runner = CliRunner()
    built = runner.invoke(main, [
        "cryptogram", "build", "--public-id", "pk", "--card", "-", "--exp", "12/30",
        "--cvv", "123", "--format", fmt, "--key", str(keys / "public.pem"), "--key-version", "4",
    ], input="4242424242424242\n")
    assert built.exit_code == 0, built.output
    packet = built.output.strip()
    assert cryptogram.parse(packet).format.value == fmt
    opened = runner.invoke(main, ["cryptogram", "decrypt", "--private-key",
                                  str(keys / "private.pem"), "--json"], input=packet + "\n")
    assert opened.exit_code == 0, opened.output
    assert json.loads(opened.output)["cvv"] == "123"


def test_inspect_continues_after_bad_packets_and_exits_one() -> None:
    packet = cryptogram.build("4242424242424242", "12/30", "123", "pk")
    result = CliRunner().invoke(main, ["cryptogram", "inspect", "--json"],
                                input=f"nonsense\n{packet}\n01abc\n")
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [("error" in line) for line in lines] == [True, False, True]
    assert lines[0]["error"] == "unknown_marker"
    assert lines[1]["key_version"] == 4 and lines[1]["exp_year"] == 2030
    assert set(lines[2]) == {"error", "message"}


def test_build_errors_are_clean_messages(keys: Path) -> None:
    result = CliRunner().invoke(main, [
        "cryptogram", "build", "--public-id", "pk", "--card", "4242424242424241",
        "--exp", "12/30", "--cvv", "123",
    ])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "4242424242424241" not in result.output
    missing_version = CliRunner().invoke(main, [
        "cryptogram", "build", "--public-id", "pk", "--card", "4242424242424242",
        "--exp", "12/30", "--key", str(keys / "public.pem"),
    ])
    assert missing_version.exit_code == 2


CommandPaths = list[tuple[tuple[str, ...], click.Command]]


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> CommandPaths:
    """Every command under ``group`` (the lazy sandbox command included) with its path."""
    ctx = click.Context(group)
    found: CommandPaths = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*path, name)))
    return found


def test_every_command_and_option_has_help() -> None:
    commands = _commands(main)
    assert {path for path, _ in commands} >= {("card", "check"), ("cryptogram", "build"),
                                               ("keygen",), ("sandbox",)}
    for path, command in commands:
        assert command.short_help, path
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, (path, param.name)


@pytest.mark.parametrize("group", [(), ("card",), ("cryptogram",)])
def test_help_lists_whole_command_descriptions(group: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*group, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    listing = " ".join(result.output.split("Commands:")[1].split())
    assert "..." not in listing
    for path, command in _commands(main):
        if path[:-1] == group:
            assert f"{path[-1]} {command.short_help}" in listing


def test_sandbox_default_port_is_the_documented_one() -> None:
    from checkout_kit.sandbox.cli import DEFAULT_PORT, sandbox_command

    port = next(p for p in sandbox_command.params if p.name == "port")
    assert port.default == DEFAULT_PORT == 8787
    root = Path(__file__).resolve().parent.parent
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for found in re.findall(r"(?:127\.0\.0\.1|localhost):(\d+)|--port (\d+)", text):
            assert int(found[0] or found[1]) == DEFAULT_PORT, doc.name
