"""No public dataclass anywhere in the package shows personal or card data in its repr.

The walk finds every public dataclass in every module, so a new one is checked without
being listed here. Its fields are filled with realistic values (personal ones get the
values below) and its repr must not contain any of those values whole.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any

import pytest

import checkout_kit

#: Field name -> a realistic value that must never appear whole in a repr.
SENSITIVE: dict[str, str] = {
    "token": "tk_5e3a9c0d1b2f4e6a8c0d1b2f4e6a8c0d",
    "email": "sentinel.payer@example.com",
    "name": "SENTINEL PAYERSON",
    "phone": "+79990001122",
    "ip_address": "198.51.100.77",
    "card_number": "4242424242424242",
    "cvv": "987",
    "api_secret": "sk_sentinel_secret_value_1234",
    "control_token": "ct_sentinel_control_token_5678",
    "three_ds_callback_id": "cb_sentinel_callback_id_0123456789",
}
#: Fields with a sensitive-looking name that hold no personal data.
NOT_PERSONAL = {("Brand", "name"), ("Reason", "name")}


def _public_dataclasses() -> list[type[Any]]:
    found: dict[str, type[Any]] = {}
    for info in pkgutil.walk_packages(checkout_kit.__path__, "checkout_kit."):
        if ".migrations" in info.name:
            continue
        module = importlib.import_module(info.name)
        for attr, obj in vars(module).items():
            if (not attr.startswith("_") and isinstance(obj, type)
                    and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[key] for key in sorted(found)]


def _sensitive_fields(cls: type[Any]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)
            if f.name in SENSITIVE and (cls.__name__, f.name) not in NOT_PERSONAL]


class _Plain:
    """A stand-in for the fields that hold no personal data: any attribute a repr reads
    from it (``status.value``, ``header.format``...) is another stand-in."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, name: str) -> _Plain:
        return _Plain(f"{self._name}.{name}")

    def __call__(self, *args: object, **kwargs: object) -> _Plain:
        return self

    def __repr__(self) -> str:
        return f"<{self._name}>"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)


CLASSES = [cls for cls in _public_dataclasses() if _sensitive_fields(cls)]


def test_the_walk_finds_the_known_holders_of_personal_data() -> None:
    names = {f"{cls.__module__}.{cls.__name__}" for cls in CLASSES}
    assert {
        "checkout_kit.models.Transaction", "checkout_kit.notifications.Notification",
        "checkout_kit.cryptogram.DecryptedPacket", "checkout_kit.ledger.store.Payment",
        "checkout_kit.sandbox.rules.records.Transaction",
        "checkout_kit.sandbox.rules.settings.SandboxSettings",
    } <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_repr_never_shows_personal_or_card_data(cls: type[Any]) -> None:
    # Built without __init__ on purpose: the test fills every field with text, which
    # most constructors would (rightly) refuse, to see what the repr itself prints.
    obj = object.__new__(cls)
    for item in dataclasses.fields(cls):
        object.__setattr__(obj, item.name, SENSITIVE.get(item.name, _Plain(item.name)))
    text = repr(obj)
    for field_name in _sensitive_fields(cls):
        assert SENSITIVE[field_name] not in text, f"{cls.__name__}.{field_name} in {text}"
