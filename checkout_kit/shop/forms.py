"""The one form the shop's server receives: cryptogram, cardholder name, e-mail.

Card data never reaches the server: the card inputs carry ``data-cp`` and no
``name``, the browser turns them into a cryptogram, and this form refuses any field
it does not know (an ``amount``, a card number) instead of ignoring it.

CSRF is WTForms' own :class:`~wtforms.csrf.session.SessionCSRF`, keyed by the app's
secret and the payment id, so a token for one payment does not pay another.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from wtforms import Form, StringField
from wtforms.csrf.session import SessionCSRF
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from .. import cards, cryptogram
from ..errors import MalformedPacketError

__all__ = ["FIELDS", "PayForm", "csrf_meta", "make_pay_form", "unexpected_fields"]

#: The only fields a payment POST may carry.
FIELDS = frozenset({"csrf_token", "cryptogram", "name", "email"})

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class _SessionCSRF(SessionCSRF):  # type: ignore[misc]  # WTForms is untyped
    """SessionCSRF that answers a missing session (no cookie) with a validation
    error rather than a ``KeyError``."""

    def validate_csrf_token(self, form: Any, field: Any) -> None:
        if "csrf" not in self.session:
            raise ValidationError("CSRF session missing.")
        super().validate_csrf_token(form, field)


def _card_packet(form: Any, field: Any) -> None:
    # Checked before any gateway call: only a card packet a checkout script makes.
    try:
        header = cryptogram.parse(field.data)
    except MalformedPacketError as exc:
        raise ValidationError(f"bad_cryptogram:{exc.code}") from None
    if str(header.format) == "03":
        raise ValidationError("bad_cryptogram:cvv_only")


class PayForm(Form):  # type: ignore[misc]  # WTForms is untyped
    """What the payment page posts."""

    cryptogram = StringField(validators=[
        DataRequired("missing_cryptogram"), Length(max=4096, message="bad_cryptogram:length"),
        _card_packet])
    name = StringField(validators=[
        Optional(), Length(max=cards.NAME_MAX, message="bad_name")],
        filters=[lambda v: v.strip() if isinstance(v, str) else v])
    email = StringField(validators=[
        Optional(), Length(max=254, message="bad_email"), Regexp(_EMAIL, message="bad_email")],
        filters=[lambda v: v.strip() if isinstance(v, str) else v])


def csrf_meta(session: Any, secret: str | bytes, scope: str,
              *, time_limit: timedelta = timedelta(minutes=30)) -> dict[str, Any]:
    """WTForms ``meta`` for session CSRF keyed by ``secret`` and ``scope`` (a payment
    id, a page): a token of one scope is refused in another."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    scoped = hmac.new(key, b"checkout-kit.csrf|" + scope.encode(), hashlib.sha256)
    return {"csrf": True, "csrf_class": _SessionCSRF, "csrf_secret": scoped.digest(),
            "csrf_context": session, "csrf_time_limit": time_limit}


def make_pay_form(formdata: Any, session: Any, secret: str | bytes, payment_id: str,
                  *, time_limit: timedelta = timedelta(minutes=30), **data: Any) -> PayForm:
    """A :class:`PayForm` bound to ``session`` and to this payment."""
    return PayForm(formdata, meta=csrf_meta(session, secret, payment_id,
                                            time_limit=time_limit), **data)


def unexpected_fields(formdata: Mapping[str, Any]) -> list[str]:
    """Fields the page never sends (a tampered amount, card data by mistake)."""
    return sorted(k for k in formdata if k not in FIELDS)
