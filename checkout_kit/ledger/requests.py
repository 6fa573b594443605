"""A payment to record, checked once: :class:`PaymentRequest`.

The shop's ``kit.create_payment(...)``, ``PaymentService.create_payment`` and
``Ledger.create_payment`` all take one, or its fields as keywords
(:class:`PaymentFields`), which the outermost of them turns into one. Every check of
the arguments is here, in :meth:`PaymentRequest.__post_init__`: a value of this type is
valid, so the layers below pass it on without copying or checking its fields again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Required, TypedDict

from .. import jsoncodec
from ..errors import InvalidRequestError
from ..money import minor_units, parse_amount
from ..urls import url_problem

__all__ = ["SCHEMES", "PaymentFields", "PaymentRequest", "checked_text"]

#: How a payment takes the money: at once, or held until confirmed.
SCHEMES: Final = frozenset({"charge", "auth"})


class PaymentFields(TypedDict, total=False):
    """The keyword arguments of ``create_payment`` (see :class:`PaymentRequest`)."""

    invoice_id: Required[str]
    amount: Required[Decimal | int | str]
    currency: str
    description: Required[str]
    account_id: str | None
    email: str | None
    scheme: str
    success_url: str | None
    fail_url: str | None
    metadata: Any
    expires_at: datetime | None


@dataclass(frozen=True)
class PaymentRequest:
    """A payment to record in status ``created``, its arguments checked.

    ``amount`` becomes an exact :class:`~decimal.Decimal` in ``currency``'s minor units
    (``currency`` upper-cased); ``scheme`` is ``"charge"`` (one stage) or ``"auth"``
    (held until confirmed); ``success_url`` and ``fail_url`` must be absolute http(s)
    URLs (:func:`checkout_kit.urls.url_problem`), since the result page shows them as
    links; ``metadata`` is any JSON value (no floats); ``expires_at`` is aware (from
    then on a Check for it is answered 20) and kept in UTC.

    Bad arguments raise :class:`~checkout_kit.errors.InvalidRequestError` (``field``
    names the argument) or :class:`~checkout_kit.errors.MoneyError`.
    """

    invoice_id: str
    amount: Decimal
    description: str
    currency: str = "RUB"
    account_id: str | None = None
    #: the payer's e-mail, left out of the repr (personal data)
    email: str | None = field(default=None, repr=False)
    scheme: str = "charge"
    success_url: str | None = None
    fail_url: str | None = None
    #: the shop's own data, left out of the repr (it may hold anything)
    metadata: Any = field(default=None, repr=False)
    expires_at: datetime | None = None
    #: :attr:`metadata` as stored (JSON text), ``None`` without metadata
    metadata_json: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        checked_text(self.invoice_id, "invoice_id", 255)
        checked_text(self.description, "description", 10_000)
        if not isinstance(self.currency, str):
            raise InvalidRequestError("currency must be a string", "currency")
        currency = self.currency.upper()
        minor_units(currency)  # MoneyError for currencies the gateway does not take
        self._set("currency", currency)
        self._set("amount", parse_amount(self.amount, currency))
        if self.scheme not in SCHEMES:
            raise InvalidRequestError("scheme must be 'charge' or 'auth'", "scheme")
        for name, limit in (("account_id", 255), ("email", 320), ("success_url", 2048),
                            ("fail_url", 2048)):
            value = getattr(self, name)
            if value is not None:
                checked_text(value, name, limit)
        for name in ("success_url", "fail_url"):
            # Shown to the payer as a link: an absolute http(s) URL, never javascript:.
            value = getattr(self, name)
            problem = None if value is None else url_problem(value, max_length=2048)
            if problem is not None:
                raise InvalidRequestError(f"{name} {problem}", name)
        if self.email is not None and "@" not in self.email:
            raise InvalidRequestError("email is not an e-mail address", "email")
        # JSONCodecError / MoneyError (floats) here, before anything is stored.
        self._set("metadata_json",
                  None if self.metadata is None else jsoncodec.dumps(self.metadata))
        if self.expires_at is not None:
            if not isinstance(self.expires_at, datetime) or self.expires_at.tzinfo is None:
                raise InvalidRequestError("expires_at must be an aware datetime", "expires_at")
            self._set("expires_at", self.expires_at.astimezone(UTC))

    def _set(self, name: str, value: Any) -> None:
        # Frozen: the checked form of a field replaces the given one, once, here.
        object.__setattr__(self, name, value)

    @classmethod
    def of(cls, request: PaymentRequest | None, fields: Mapping[str, Any]) -> PaymentRequest:
        """``request`` as given, or one made (and so checked) from ``fields``."""
        if request is None:
            return cls(**fields)
        if fields:
            raise TypeError("pass a PaymentRequest or its fields, not both")
        if not isinstance(request, PaymentRequest):
            raise TypeError("request must be a PaymentRequest (or pass its fields as "
                            "keywords)")
        return request


def checked_text(value: object, name: str, limit: int) -> str:
    """``value`` if it is a non-blank string of at most ``limit`` characters without
    control characters (tabs and newlines allowed); else ``InvalidRequestError``."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"{name} must be a non-empty string", name)
    if len(value) > limit:
        raise InvalidRequestError(f"{name} is longer than {limit} characters", name)
    if any(ord(ch) < 32 and ch not in "\t\n" for ch in value):
        raise InvalidRequestError(f"{name} holds control characters", name)
    return value
