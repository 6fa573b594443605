"""``checkout-kit sandbox``: run the sandbox as a local HTTP server."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .rules.settings import DEFAULT_PUBLIC_ID, DEFAULT_SECRET, SaveCards

__all__ = ["DEFAULT_PORT", "parse_key_option", "sandbox_command"]

#: The port ``checkout-kit sandbox`` listens on unless told otherwise; the README and
#: docs use it too, so a copied URL reaches a sandbox started with no options.
DEFAULT_PORT = 8787


def parse_key_option(values: Sequence[str]) -> dict[int, bytes] | None:
    """``["4:key.pem", ...]`` → ``{4: PEM bytes}``; ``None`` when none given."""
    if not values:
        return None
    keys: dict[int, bytes] = {}
    for value in values:
        version, sep, path = value.partition(":")
        if not sep or not version.strip().isdigit() or not path:
            raise click.BadParameter(
                f"expected VERSION:PEM_FILE, got {value!r}", param_hint="--key")
        try:
            keys[int(version)] = Path(path).read_bytes()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {path}: {exc.strerror}",
                                     param_hint="--key") from None
    return keys


@click.command(
    "sandbox", short_help="Run the offline CloudPayments sandbox as a local HTTP server.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on; 0 picks a free one (printed at start).")
@click.option("--public-id", default=DEFAULT_PUBLIC_ID, show_default=True,
              help="Public ID: the Basic-auth user name and the terminal of every payment.")
@click.option("--api-secret", metavar="SECRET",
              help="API secret: the Basic-auth password and the notification HMAC key "
                   f"(default: {DEFAULT_SECRET}; with --expose: a random one).")
@click.option("--key", "keys", multiple=True, metavar="VERSION:PEM_FILE",
              help="A private key for cryptograms (repeatable); default: a generated key, v4.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Keep the state in this SQLite file.")
@click.option("--site-name", default="Sandbox Shop", show_default=True,
              help="Shop name on the 3-D Secure page (MerchantName in PaReq).")
@click.option("--save-cards", type=click.Choice([o.value for o in SaveCards]),
              default=SaveCards.ON_REQUEST.value, show_default=True,
              help="The account's save-cards option: never, when a payment asks (SaveCard), "
                   "or for every payment.")
@click.option("--duplicate-notifications", is_flag=True, help="Deliver every notification twice.")
@click.option("--expose", is_flag=True,
              help="Allow --host beyond loopback (the controls then need a control token).")
@click.option("--control-token", metavar="TOKEN",
              help="Token the /_sandbox/ controls require (default with --expose: a random one).")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Another Host name to answer to (repeatable; '*' for any).")
@click.option("--allow-private-targets", is_flag=True,
              help="Also send notifications to private addresses (10.x, 192.168.x...).")
@click.option("--allow-loopback-targets", is_flag=True,
              help="With --expose, still send notifications to loopback addresses "
                   "(refused by default: anyone on the network could reach local ports).")
def sandbox_command(
    host: str, port: int, public_id: str, api_secret: str | None, keys: tuple[str, ...],
    state_path: Path | None, site_name: str, save_cards: str, duplicate_notifications: bool,
    expose: bool, control_token: str | None, allowed_hosts: tuple[str, ...],
    allow_private_targets: bool, allow_loopback_targets: bool,
) -> None:
    """Run the CloudPayments sandbox: the gateway API, the 3-D Secure page, the
    browser scripts and the /_sandbox/ controls."""
    from werkzeug.serving import make_server

    from .rules.policy import serving_options
    from .web.app import create_sandbox_app, sandbox_of, serve_until_interrupted
    from .web.security import CONTROL_PREFIX

    options: dict[str, Any] = {"site_name": site_name, "save_cards": SaveCards(save_cards),
                               "duplicate_notifications": duplicate_notifications,
                               "private_notification_targets": allow_private_targets}
    try:
        options.update(serving_options(host, expose=expose, control_token=control_token,
                                       allowed_hosts=allowed_hosts, api_secret=api_secret,
                                       allow_loopback_targets=allow_loopback_targets))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    app = create_sandbox_app(public_id=public_id, keys=parse_key_option(keys),
                             state_path=state_path, **options)
    sandbox = sandbox_of(app)
    server = make_server(host, port, app, threaded=True)
    base = f"http://{host}:{server.server_port}"
    versions = ", ".join(str(v) for v in sorted(sandbox.keys))
    click.echo("checkout_kit CloudPayments sandbox")
    click.echo(f"  API base URL   {base}")
    click.echo(f"  home page      {base}/ (credentials, scripts, test cards)")
    click.echo(f"  Public ID      {sandbox.public_id}")
    click.echo(f"  API secret     {sandbox.api_secret}")
    click.echo(f"  key versions   {versions} (current {sandbox.settings.key_version}; "
               f"GET {base}/payments/publickey)")
    click.echo(f"  3-D Secure     {base}/acs")
    click.echo(f"  controls       {base}{CONTROL_PREFIX}/")
    if sandbox.settings.control_token:
        click.echo(f"  control token  {sandbox.settings.control_token} "
                   f"(X-Sandbox-Token header, or open {base}{CONTROL_PREFIX}/?token=…)")
    click.echo(f"  state          {state_path or 'in memory'}")
    click.echo("  client         CloudPaymentsClient(public_id, api_secret, "
               f"base_url={base!r})")
    serve_until_interrupted(server, sandbox)
