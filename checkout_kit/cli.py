"""The ``checkout-kit`` command line.

``checkout-kit card check``, ``checkout-kit cryptogram build|inspect|decrypt``,
``checkout-kit keygen``, ``checkout-kit sandbox`` and ``checkout-kit webhook send``. With
``--json`` every command prints one JSON object per input. Commands that read packets
take them as arguments, or one per line on standard input when none are given.

Card numbers are never printed in full except by ``cryptogram decrypt``, whose whole
purpose is to open a packet with a private key (use it with test keys).
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import click

from . import __version__, cards, cryptogram
from .errors import CardError, CheckoutKitError, CryptogramError

__all__ = ["main"]


def _emit(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, sort_keys=False))
    else:
        click.echo("  ".join(f"{k}={'' if v is None else v}" for k, v in data.items()))


def _inputs(values: Iterable[str]) -> Iterator[str]:
    """The arguments, or else the non-blank lines of standard input."""
    given = list(values)
    if given:
        yield from given
        return
    for line in sys.stdin:
        line = line.strip()
        if line:
            yield line


class _LazyGroup(click.Group):
    """A group whose heavier subcommands (the Flask sandbox) import only when used."""

    lazy: ClassVar[dict[str, str]] = {
        "sandbox": "checkout_kit.sandbox.cli:sandbox_command",
        "demo": "checkout_kit.shop.demo:demo_command",
        "webhook": "checkout_kit.webhook_cli:webhook",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="checkout-kit")
def main() -> None:
    """checkout_kit: CloudPayments cards, cryptograms and an offline sandbox."""


# --------------------------------------------------------------------------- card


@main.group(short_help="Card numbers: brand, Luhn and validation.")
def card() -> None:
    """Card numbers: brand, Luhn and validation."""


@card.command("check", short_help="Check card numbers: brand, Luhn, checkout.js error codes.")
@click.argument("numbers", nargs=-1)
@click.option("--exp", "exp", help="Expiry as MM/YY, MM/YYYY or MMYY.")
@click.option("--cvv", help="CVV/CVC to check against the brand's rule.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per number.")
def card_check(numbers: tuple[str, ...], exp: str | None, cvv: str | None, as_json: bool) -> None:
    """Check card NUMBERS (or one per line on stdin).

    Prints the brand, Luhn, valid / potentially valid and the checkout.js error codes.
    The number is shown masked. Exits 1 if any card is invalid.
    """
    any_invalid = False
    for number in _inputs(numbers):
        check = cards.check_number(number)
        errors = {"cardNumber": check.error} if check.error else {}
        if exp is not None:
            errors.update(cards.validate_expiry(exp_date=exp)[1])
        if cvv is not None:
            cvv_error = cards.validate_cvv(cvv.strip(), check.brand)
            if cvv_error:
                errors["cvv"] = cvv_error
        any_invalid |= bool(errors)
        _emit(
            {
                "number": cards.mask_number(number),
                "brand": check.brand.id if check.brand else None,
                "luhn": check.luhn_valid,
                "valid": not errors,
                "potentially_valid": check.is_potentially_valid,
                "errors": errors if as_json else ",".join(f"{k}:{v}" for k, v in errors.items()),
            },
            as_json,
        )
    sys.exit(1 if any_invalid else 0)


# --------------------------------------------------------------------------- cryptogram


@main.group("cryptogram", short_help="Build, inspect and decrypt card cryptogram packets.")
def cryptogram_group() -> None:
    """Card cryptogram packets (CardCryptogramPacket)."""


def _read_key(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from None


@cryptogram_group.command("build", short_help="Build a packet for a card and print it.")
@click.option("--public-id", required=True, help="The merchant Public ID.")
@click.option("--card", "card_number", required=True,
              help="Card number; '-' reads it from stdin (keeps it out of shell history).")
@click.option("--exp", required=True, help="Expiry as MM/YY, MM/YYYY or MMYY.")
@click.option("--cvv", default="", help="CVV (may be empty for Uzcard and Humo).")
@click.option("--format", "fmt", default="01", show_default=True,
              type=click.Choice(["01", "02", "03", "02-cvv", "cloudcard", "cloudcard-ios"]),
              help="Packet format: 01 (PKCS#1 v1.5), 02 (OAEP), 03 (CVV only), 02-cvv (CVV "
                   "only, OAEP, the 2019 Android SDK), or the CloudCard JSON of the "
                   "Android / iOS SDKs.")
@click.option("--key", "key_path", type=click.Path(dir_okay=False),
              help="Public key PEM (default: the published key 04).")
@click.option("--key-version", type=int, help="Version of --key (required with --key).")
def cryptogram_build(
    public_id: str, card_number: str, exp: str, cvv: str, fmt: str,
    key_path: str | None, key_version: int | None,
) -> None:
    """Build a packet and print it.

    Building cryptograms on a server puts it in full PCI DSS card-data scope: use this
    for tests and the sandbox; in production only CloudPayments' own scripts and SDKs
    create cryptograms.
    """
    if card_number == "-":
        card_number = sys.stdin.readline().strip()
    if key_path and key_version is None:
        raise click.UsageError("--key-version is required with --key")
    key = _read_key(key_path) if key_path else None
    try:
        packet = cryptogram.build(
            card_number, exp, cvv, public_id, format=fmt, key=key, key_version=key_version
        )
    except CheckoutKitError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(packet)


def _error_record(exc: CheckoutKitError) -> dict[str, Any]:
    code = exc.code if isinstance(exc, CryptogramError) else "invalid_card"
    return {"error": code, "message": exc.message}


def _packet_records(packets: Iterable[str], private_key: bytes | None) -> Iterator[
    tuple[bool, dict[str, Any]]
]:
    for packet in packets:
        try:
            if private_key is None:
                yield True, cryptogram.parse(packet).to_dict()
            else:
                yield True, cryptogram.decrypt(packet, private_key).to_dict(reveal=True)
        except (CryptogramError, CardError) as exc:
            yield False, _error_record(exc)


def _run_packets(packets: tuple[str, ...], private_key: bytes | None, as_json: bool) -> None:
    all_good = True
    for ok, record in _packet_records(_inputs(packets), private_key):
        all_good &= ok
        _emit(record, as_json)
    sys.exit(0 if all_good else 1)


@cryptogram_group.command(
    "inspect", short_help="Show the header of packets without a key (no card data).")
@click.argument("packets", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per packet.")
def cryptogram_inspect(packets: tuple[str, ...], as_json: bool) -> None:
    """Show the header of PACKETS (or one per line on stdin) without any key.

    Bad packets print {"error": code, "message": ...}; processing continues and the
    command exits 1 if any packet was bad.
    """
    _run_packets(packets, None, as_json)


@cryptogram_group.command(
    "decrypt", short_help="Open packets with a private key, card number and CVV included.")
@click.argument("packets", nargs=-1)
@click.option("--private-key", "key_path", required=True, type=click.Path(dir_okay=False),
              help="Private key PEM matching the packets' key version.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per packet.")
def cryptogram_decrypt(packets: tuple[str, ...], key_path: str, as_json: bool) -> None:
    """Open PACKETS with a private key: the header plus card_number, cvv and public_id."""
    _run_packets(packets, _read_key(key_path), as_json)


# --------------------------------------------------------------------------- keygen


@main.command(short_help="Write a test RSA key pair (private.pem, public.pem).")
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--bits", default=2048, show_default=True, type=click.IntRange(2048, 4096),
              help="RSA modulus size in bits.")
def keygen(outdir: str, bits: int) -> None:
    """Write a test RSA key pair to OUTDIR/private.pem and OUTDIR/public.pem."""
    target = Path(outdir)
    target.mkdir(parents=True, exist_ok=True)
    private_pem, public_pem = cryptogram.generate_key_pair(bits)
    private_path = target / "private.pem"
    private_path.write_bytes(private_pem)
    private_path.chmod(0o600)
    (target / "public.pem").write_bytes(public_pem)
    click.echo(f"wrote {private_path} and {target / 'public.pem'}")


if __name__ == "__main__":  # ``python -m checkout_kit.cli``, for a source checkout
    main()
