"""Reprs of the sandbox's records that do not give away personal data.

The records keep what the gateway keeps (tokens, e-mails, names, phones, IP
addresses, notification bodies that carry them); a repr ends up in logs, tracebacks
and test failure output, so it shows only a masked form of each such field, as card
numbers are shown (first six and last four, never the middle). Pure: no Flask, no
network.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..models import mask_token

__all__ = [
    "mask_email",
    "mask_ip",
    "mask_meta",
    "mask_name",
    "mask_phone",
    "mask_secret",
    "mask_text",
    "mask_token_keys",
    "mask_token_text",
    "masked_repr",
]

T = TypeVar("T")


def mask_email(email: str) -> str:
    """``i***@example.com``: the first letter and the domain."""
    local, at, domain = email.rpartition("@")
    if not at:
        return mask_text(email)
    return f"{local[:1]}***@{domain}"


def mask_name(name: str) -> str:
    """``I*** P***``: each word's first letter."""
    return " ".join(f"{word[:1]}***" for word in name.split()) or "***"


def mask_phone(phone: str) -> str:
    """``***67``: the last two digits."""
    digits = [c for c in phone if c.isdigit()]
    return "***" + "".join(digits[-2:])


def mask_ip(address: str) -> str:
    """``203.0.113.*`` / ``2001:db8:*``: the network part only."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return mask_text(address)
    if ip.version == 4:
        return ".".join(str(ip).split(".")[:3]) + ".*"
    return ":".join(ip.exploded.split(":")[:2]) + ":*"


def mask_text(value: object) -> str:
    """Only the size of a value (bodies, JSON data, anything free-form)."""
    return f"<{len(value) if isinstance(value, str | bytes | Mapping | list) else '?'} hidden>"


def mask_secret(value: object) -> str:
    """Nothing of a secret."""
    return "***"


def masked_repr(**maskers: Callable[[Any], str]) -> Callable[[type[T]], type[T]]:
    """Class decorator for a dataclass: its repr shows ``field=masker(value)`` for each
    field named in ``maskers`` (``None`` stays ``None``), the usual repr elsewhere.
    Put it above ``@dataclass``."""

    def decorate(cls: type[T]) -> type[T]:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(maskers) - names
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")

        def __repr__(self: Any) -> str:
            parts = []
            for f in dataclasses.fields(self):
                if not f.repr:
                    continue
                value = getattr(self, f.name)
                masker = maskers.get(f.name)
                shown = repr(value) if masker is None or value is None else masker(value)
                parts.append(f"{f.name}={shown}")
            return f"{type(self).__qualname__}({', '.join(parts)})"

        cls.__repr__ = __repr__  # type: ignore[method-assign]
        return cls

    return decorate


def mask_meta(meta: Mapping[str, Any]) -> str:
    """The state's counters, without the generated private keys kept beside them."""
    return repr({k: mask_secret(v) if k == "generated_keys" else v for k, v in meta.items()})


def mask_token_keys(records: Mapping[str, Any]) -> str:
    """Records keyed by card token (the saved cards), with the keys masked."""
    return repr({mask_token_text(k): v for k, v in records.items()})


def mask_token_text(token: str) -> str:
    """A card token as :func:`checkout_kit.models.mask_token` shows it."""
    return mask_token(token) or ""
