"""URL and loopback checks shared by 3-D Secure (:mod:`checkout_kit.threeds`), the
ledger's redirect URLs and the sandbox: one definition of an acceptable absolute URL,
of a URL card data may travel to, and of a loopback host.

Pure: the standard library only, no network (a host name is never resolved).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from urllib.parse import urlsplit

__all__ = ["MAX_URL_LENGTH", "is_loopback_host", "secure_url_problem", "url_problem"]

#: The longest URL taken anywhere (the gateway's text fields hold 2000 characters).
MAX_URL_LENGTH = 2000


def url_problem(
    text: str, *, max_length: int = MAX_URL_LENGTH,
    schemes: Collection[str] = ("http", "https"),
) -> str | None:
    """Why ``text`` is not an absolute URL that may be sent to or redirected to, as a
    phrase to put after the field's name (``"is too long"``), or ``None``: at most
    ``max_length`` characters, no whitespace or control characters (it could be neither
    a ``Location`` nor a request line), a scheme in ``schemes``, a host name IDNA can
    encode and a valid port."""
    if len(text) > max_length:
        return "is too long"
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:  # a bad port or a malformed IPv6 literal
        return "is not a valid URL"
    if parts.scheme.lower() not in schemes or not host:
        label = "http(s)" if set(schemes) == {"http", "https"} else " or ".join(schemes)
        return f"must be an absolute {label} URL"
    if port == 0:
        return "has an invalid port"
    try:
        host.encode("idna").decode("idna")  # both ways: "xn--a" encodes but is no name
    except UnicodeError:
        return "has an invalid host name"
    return None


def secure_url_problem(text: str, *, max_length: int = MAX_URL_LENGTH) -> str | None:
    """:func:`url_problem`, and ``https`` only, ``http`` only to a loopback host (a
    sandbox on this machine): for URLs that card data or its 3-D Secure step travel
    to, which must never cross a network in clear."""
    problem = url_problem(text, max_length=max_length)
    if problem is not None:
        return problem
    parts = urlsplit(text)
    if parts.scheme.lower() == "https" or is_loopback_host(parts.hostname or ""):
        return None
    return "must be https (http only on loopback)"


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a URL's host name, no port or brackets) is this machine:
    ``localhost``, a name under ``.localhost`` (RFC 6761), or a loopback address."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
