"""Reprs of the sandbox's records that do not give away personal data or secrets.

The records keep what the gateway keeps (tokens, e-mails, names, phones, IP
addresses, notification bodies that carry them); a repr ends up in logs, tracebacks
and test failure output, so it shows only a masked form of each such field, as card
numbers are shown (first six and last four, never the middle). The maskers of personal
data are :mod:`checkout_kit.models`' (``mask_token``, ``mask_email``, ``mask_name``,
``mask_phone``, ``mask_ip``); this module adds the decorator and the maskers of what
only the sandbox keeps. It imports nothing but the standard library, so that
:mod:`~checkout_kit.sandbox.rules.settings` stays cheap to import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["mask_meta", "mask_secret", "mask_text", "masked_repr"]

T = TypeVar("T")


def mask_text(value: object) -> str:
    """Only the size of a value (bodies, JSON data, anything free-form)."""
    return f"<{len(value) if isinstance(value, str | bytes | Mapping | list) else '?'} hidden>"


def mask_secret(value: object) -> str:
    """Nothing of a secret."""
    return "***"


def mask_meta(meta: Mapping[str, Any]) -> str:
    """The state's counters, without the generated private keys kept beside them."""
    return repr({k: mask_secret(v) if k == "generated_keys" else v for k, v in meta.items()})


def masked_repr(**maskers: Callable[[Any], str | None]) -> Callable[[type[T]], type[T]]:
    """Class decorator for a dataclass: its repr shows ``field=masker(value)`` for each
    field named in ``maskers`` (``None`` stays ``None``), the usual repr elsewhere.
    Put it above ``@dataclass``; a name that is no field is a ``TypeError``."""

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
