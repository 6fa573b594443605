"""The sandbox's safety rules that are data and pure functions (no Flask, no network):
which Host names a sandbox answers, how it may be served, and which notification
targets are allowed. :mod:`checkout_kit.sandbox.web.security` applies them to
requests and connections; docs/sandbox.md (Safe by default) explains them.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from ...urls import is_loopback_host
from .settings import DEFAULT_SECRET, SANDBOX_DEFAULT_HOSTS

__all__ = [
    "IPAddress",
    "host_allowed",
    "ip_or_none",
    "is_loopback_bind",
    "literal_target_problem",
    "serving_options",
    "split_host",
    "target_refusal",
    "url_host",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA = (
    ipaddress.ip_network("169.254.0.0/16"),   # link-local, AWS/GCP/Azure metadata
    ipaddress.ip_network("fe80::/10"),        # IPv6 link-local
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS metadata over IPv6
)

#: Top-level names that are never delegated in public DNS (RFC 2606, RFC 6761;
#: ``localhost`` is loopback, :func:`checkout_kit.urls.is_loopback_host`).
_UNRESOLVABLE_TLDS = ("test", "example", "invalid")

_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,200}")


def ip_or_none(text: str) -> IPAddress | None:
    """``text`` as an IP address, or ``None`` when it is a name (or nothing)."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------- Host


def split_host(host: str) -> str:
    """The name or address of a ``Host`` value, without port, brackets or final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


@lru_cache(maxsize=256)
def host_allowed(host: str, allowed: tuple[str, ...] = ()) -> bool:
    """Whether the sandbox answers a request whose ``Host`` header is ``host``: a
    loopback address or any IP literal, ``localhost`` and ``*.localhost``, a name public
    DNS cannot resolve (no dot, or under ``.test``, ``.example``, ``.invalid``), or a
    name in ``allowed`` (the configured extra names; ``"*"``: any)."""
    if "*" in allowed:
        return True
    name = split_host(host)
    if not name:
        return False
    if ip_or_none(name) is not None or is_loopback_host(name):
        return True
    if name in (n.lower().rstrip(".") for n in allowed):
        return True
    if "." not in name:
        return True
    return name.rsplit(".", 1)[1] in _UNRESOLVABLE_TLDS


@lru_cache(maxsize=8)
def url_host(url: str) -> str:
    """The host of a URL (the terminal's own, ``SandboxSettings.terminal_url``), or
    ``""`` when it names none."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:  # a malformed IPv6 literal names no host
        return ""


# --------------------------------------------------------------------------- serving


def is_loopback_bind(host: str) -> bool:
    """Whether listening on ``host`` keeps the sandbox on this machine."""
    return is_loopback_host(split_host(host))


def serving_options(
    host: str, *, expose: bool, control_token: str | None, allowed_hosts: Iterable[str],
    api_secret: str | None = None, allow_loopback_targets: bool = False,
    make_token: Callable[[], str] = lambda: secrets.token_urlsafe(24),
) -> dict[str, Any]:
    """The security settings (``SandboxSettings`` fields, ``api_secret`` included) for a
    sandbox served on ``host``. On loopback: ``api_secret`` or the default test secret.
    Beyond loopback: refused unless ``expose``, and then a control token
    (``control_token``, or a new random one), an API secret of one's own (``api_secret``,
    or a new random one: the published default would let anyone on the network in) and
    no loopback notification targets unless ``allow_loopback_targets`` (else anyone
    with the secret could make the sandbox POST to any port of its host).
    ``ValueError`` says what is missing."""
    hosts = tuple(dict.fromkeys([*SANDBOX_DEFAULT_HOSTS, *allowed_hosts]))
    if ip_or_none(split_host(host)) is None and not is_loopback_bind(host):
        hosts = (*hosts, split_host(host))  # the name it is served under
    if control_token is not None and not _TOKEN.fullmatch(control_token):
        raise ValueError("a control token is 16 to 200 letters, digits, '-' or '_'")
    if is_loopback_bind(host):
        return {"allowed_hosts": hosts, "control_token": control_token,
                "api_secret": api_secret or DEFAULT_SECRET}
    if not expose:
        raise ValueError(
            f"{host} is reachable from other machines: pass --expose to listen there "
            "(the controls then need a control token)")
    if api_secret == DEFAULT_SECRET:
        raise ValueError(
            "the default API secret is published: with --expose give an --api-secret "
            "of your own, or none for a random one")
    return {"allowed_hosts": hosts, "control_token": control_token or make_token(),
            "api_secret": api_secret or make_token(), "exposed": True,
            "loopback_notification_targets": allow_loopback_targets}


# --------------------------------------------------------------------------- notification targets


def target_refusal(
    address: IPAddress, *, allow_private: bool, allow_loopback: bool = True,
) -> str | None:
    """Why notifications may not go to ``address``, or ``None`` when they may:
    loopback is allowed unless ``allow_loopback`` is false (an exposed sandbox);
    link-local and cloud metadata, unspecified, multicast and reserved addresses never
    are; other non-global ones only with ``allow_private``."""
    ip = address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if allow_loopback else (
            f"{address} is a loopback address, refused by an exposed sandbox; allow it "
            "with --allow-loopback-targets (SandboxSettings.loopback_notification_targets)")
    if any(ip in net for net in _METADATA if net.version == ip.version):
        return f"{address} is a link-local or cloud metadata address"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return f"{address} is not a unicast host address"
    if not ip.is_global and not allow_private:
        return (f"{address} is a private address; allow private targets with "
                "--allow-private-targets (SandboxSettings.private_notification_targets)")
    return None


def literal_target_problem(
    address: str, *, allow_private: bool, allow_loopback: bool = True,
) -> str | None:
    """For a notification ``Address`` whose host is an IP literal: why it is refused
    (names are checked when a notification goes out, after resolving them)."""
    ip = ip_or_none(url_host(address))
    if ip is None:
        return None
    problem = target_refusal(ip, allow_private=allow_private, allow_loopback=allow_loopback)
    return None if problem is None else f"Address is refused: {problem}"
