"""The sandbox's safety rules that are data and pure functions (no Flask, no network):
which notification targets are allowed, which Host names a sandbox answers by default,
and where ThreeDSCallback may send a payer. :mod:`checkout_kit.sandbox.security`
applies them to requests and connections; docs/sandbox.md (Safe by default) explains
them.
"""

from __future__ import annotations

import ipaddress

import httpx

from .. import threeds
from .wire import Params, RequestError

__all__ = [
    "SANDBOX_DEFAULT_HOSTS",
    "IPAddress",
    "callback_urls",
    "ip_or_none",
    "literal_target_problem",
    "target_refusal",
]

#: What ``SandboxSettings.allowed_hosts`` holds by default: the name of the pytest
#: plugin's in-process base URL (``http://cloudpayments.sandbox``).
SANDBOX_DEFAULT_HOSTS = ("cloudpayments.sandbox",)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA = (
    ipaddress.ip_network("169.254.0.0/16"),   # link-local, AWS/GCP/Azure metadata
    ipaddress.ip_network("fe80::/10"),        # IPv6 link-local
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS metadata over IPv6
)


def ip_or_none(text: str) -> IPAddress | None:
    """``text`` as an IP address, or ``None`` when it is a name (or nothing)."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------- notification targets


def target_refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why notifications may not go to ``address``, or ``None`` when they may."""
    ip = address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None
    if any(ip in net for net in _METADATA if net.version == ip.version):
        return f"{address} is a link-local or cloud metadata address"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return f"{address} is not a unicast host address"
    if not ip.is_global and not allow_private:
        return (f"{address} is a private address; allow private targets with "
                "--allow-private-targets (SandboxSettings.private_notification_targets)")
    return None


def literal_target_problem(address: str, *, allow_private: bool) -> str | None:
    """For a notification ``Address`` whose host is an IP literal: why it is refused
    (names are checked when a notification goes out, after resolving them)."""
    try:
        host = httpx.URL(address).host
    except Exception:  # an unreadable URL is the address check's business
        return None
    ip = ip_or_none(host)
    if ip is None:
        return None
    problem = target_refusal(ip, allow_private=allow_private)
    return None if problem is None else f"Address is refused: {problem}"


# --------------------------------------------------------------------------- ThreeDSCallback


def callback_urls(p: Params) -> tuple[str | None, str | None]:
    """The optional ``SuccessUrl`` and ``FailUrl`` of a card payment request (a sandbox
    extension): where ``/payments/ThreeDSCallback`` may send the payer. Without them a
    3-D Secure payment gets the sandbox's own widget result pages. A ThreeDSCallback
    whose MD names other URLs is refused, so the redirect is never chosen at callback
    time."""
    urls = (p.text("SuccessUrl", max_length=2048), p.text("FailUrl", max_length=2048))
    if any(url is not None and not threeds.is_redirect_url(url) for url in urls):
        raise RequestError("SuccessUrl and FailUrl must be absolute http(s) URLs")
    return urls
