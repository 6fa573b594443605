"""``checkout-kit webhook send``: sign and send a realistic notification to an endpoint.

Like ``stripe trigger``: it makes the request the gateway would make (docs/gateway.md
§5.1, §5.2, §5.4), sends it, and prints the answer and what the gateway would make of
it. The fields come from :data:`checkout_kit.testing.SAMPLE_FIELDS`, with a fresh
``TransactionId`` and ``DateTime`` on every send; ``--field K=V`` replaces or adds one.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from . import testing, webhooks
from .notifications import check_reason
from .reasons import reason_for

__all__ = ["webhook"]

#: How long the gateway waits for an answer (docs/gateway.md §5.1).
GATEWAY_TIMEOUT = 30.0


def _parse_field(value: str) -> tuple[str, str]:
    name, sep, text = value.partition("=")
    if not sep or not name.strip():
        raise click.BadParameter(f"expected K=V, got {value!r}", param_hint="--field")
    return name.strip(), text


def _verdict(kind: str, status: int, code: int | None) -> tuple[bool, str]:
    """Whether the gateway would count the answer as success, and in words what it does."""
    if kind == "Check":
        if not 200 <= status < 300:
            return False, "the gateway declines the payment (3006 Unavailable)"
        reason = check_reason(code)
        if reason is None:
            return True, "the gateway goes ahead with the payment"
        return False, f"the gateway declines the payment ({reason} {reason_for(reason).name})"
    if 200 <= status < 300 and code == 0:
        return True, "registered"
    return False, "not registered: the gateway would deliver it again later"


@click.group("webhook", short_help="Send signed test notifications (webhooks) to an endpoint.")
def webhook() -> None:
    """Gateway notifications (webhooks) for testing a shop's endpoint."""


@webhook.command("send", short_help="Sign and send a realistic notification; print the answer.")
@click.argument("kind", metavar="TYPE",
                type=click.Choice(list(webhooks.WEBHOOK_TYPES), case_sensitive=False))
@click.option("--to", "url", required=True, help="The endpoint URL (http or https).")
@click.option("--secret", required=True, envvar="CHECKOUT_KIT_API_SECRET",
              help="The API secret that signs the notification "
                   "(or the CHECKOUT_KIT_API_SECRET environment variable).")
@click.option("--field", "fields", multiple=True, metavar="K=V",
              help="Set field K to V (repeatable); replaces the sample's value or adds one.")
@click.option("--method", type=click.Choice(["GET", "POST"], case_sensitive=False),
              default="POST", show_default=True,
              help="POST sends a form-encoded body; GET sends the fields in the query string.")
@click.option("--encoding", type=click.Choice(["utf-8", "windows-1251"], case_sensitive=False),
              default="utf-8", show_default=True, help="The text encoding of the fields.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=GATEWAY_TIMEOUT,
              show_default=True, help="Seconds to wait for the answer.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def send_command(
    kind: str, url: str, secret: str, fields: tuple[str, ...], method: str, encoding: str,
    timeout: float, as_json: bool,
) -> None:
    """Sign and send a TYPE notification to --to, as the gateway would.

    Prints the request, the HTTP status, the answer and what the gateway would do with
    it. Exits 0 when the gateway would count the answer as success (JSON {"code":0}
    with a 2xx status), 1 otherwise, and 2 when nothing could be sent.
    """
    import httpx

    name = webhooks.canonical_type(kind)
    overrides = dict(_parse_field(f) for f in fields)
    sent = testing.sample_fields(name, overrides)
    outgoing = testing.build_notification(
        name, sent, secret, method=method, encoding=encoding.lower()
    )
    target = outgoing.url(url)
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.request(
                outgoing.method, target, headers=dict(outgoing.headers),
                content=outgoing.body if outgoing.method == "POST" else None,
            )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        click.echo(f"could not send to {url}: {exc.__class__.__name__}: {exc}", err=True)
        sys.exit(2)
    code = webhooks.read_answer(response.content)
    ok, verdict = _verdict(name, response.status_code, code)
    # The answer is the shop's own text; show enough of it to debug a bad one.
    answer_text = response.content[:500].decode("utf-8", errors="replace")
    if as_json:
        record: dict[str, Any] = {
            "type": name, "method": outgoing.method, "url": url,
            "encoding": outgoing.encoding, "fields": sent,
            "status": response.status_code, "code": code, "answer": answer_text,
            "ok": ok, "verdict": verdict,
        }
        click.echo(json.dumps(record, ensure_ascii=False))
    else:
        ident = sent.get("TransactionId") or sent.get("Id", "")
        click.echo(f"{outgoing.method} {url}  {name} {ident} ({outgoing.encoding})")
        click.echo(f"HTTP {response.status_code}  {answer_text}")
        click.echo(verdict)
    sys.exit(0 if ok else 1)

