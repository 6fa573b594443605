"""3-D Secure round trip: the ACS form, PaReq, PaRes and the ThreeDSCallback MD.

Pure: no Flask, no network (docs/gateway.md §4 and §1.10). Every JSON text here is
written and read by :mod:`checkout_kit.jsoncodec`.

* **PaReq** in test mode is base64 of a JSON object (``FirstSix``, ``LastFour``,
  ``Amount``, ``CurrencyCode``, ``Date``...). :func:`build_pareq` writes it,
  :func:`decode_pareq` reads it (tolerating the stray ``+/`` prefix seen in the Docs
  sample).
* **PaRes** from the sandbox's bank page is signed: ``SBX1.<payload>.<mac>`` where
  the payload is base64url JSON ``{"t": TransactionId, "o": outcome, "n": nonce}`` and
  the mac is HMAC-SHA256 over ``pares|<payload>`` with the sandbox's secret. base64url
  keeps ``+`` out of it, because the iOS SDKs escape nothing but ``+`` when they post
  form bodies. :func:`verify_pares` tells whether a PaRes belongs to a transaction.
* **MD for ThreeDSCallback** is a JSON object with ``TransactionId``,
  ``ThreeDsCallbackId``, ``SuccessUrl`` and ``FailUrl``, sent as the JSON text (mobile
  SDKs) or as ``base64(encodeURIComponent(JSON))`` (checkout.js ``prepareMD``).
* The **ACS form** is an auto-submitting POST with exactly ``PaReq``, ``MD`` and
  ``TermUrl``, to an ``https`` ACS (or ``http`` on loopback, for the sandbox), written
  so that it runs under a strict Content-Security-Policy (a nonce, no inline handlers).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import html
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from . import jsoncodec
from .errors import ThreeDSError
from .models import INT64_MAX, mask_token
from .urls import secure_url_problem, url_problem

__all__ = [
    "ACS_FIELDS",
    "CallbackMD",
    "CallbackResult",
    "PaResOutcome",
    "ThreeDSError",
    "acs_form",
    "acs_form_html",
    "build_pareq",
    "callback_redirect",
    "decode_callback_md",
    "decode_pareq",
    "encode_callback_md",
    "encode_pareq",
    "parse_callback_redirect",
    "read_pares",
    "sign_pares",
    "verify_pares",
]

#: The form fields posted to the ACS, in order; names are case-sensitive.
ACS_FIELDS: tuple[str, str, str] = ("PaReq", "MD", "TermUrl")

_PARES_PREFIX = "SBX1"


class PaResOutcome(enum.StrEnum):
    """What the cardholder did on the bank page."""

    AUTHENTICATED = "Y"
    FAILED = "N"
    CANCELLED = "C"


# --------------------------------------------------------------------------- PaReq


def encode_pareq(fields: Mapping[str, Any]) -> str:
    """Flat ``fields`` as a test-mode PaReq: base64 of compact UTF-8 JSON, with
    ``Decimal`` amounts written digit for digit and datetimes to the second."""
    doc = {
        str(key): value.isoformat(timespec="seconds") if isinstance(value, datetime) else value
        for key, value in fields.items()
    }
    return base64.b64encode(jsoncodec.dumps_bytes(doc)).decode("ascii")


def build_pareq(
    *,
    first_six: str,
    last_four: str,
    amount: Decimal,
    currency: str,
    date: datetime,
    merchant_name: str | None = None,
    customer_name: str | None = None,
    culture_name: str | None = "ru-RU",
    transaction_id: int | None = None,
) -> str:
    """A PaReq shaped like the gateway's test mode (docs/gateway.md §4). The sandbox adds
    ``TransactionId`` so its bank page can find the payment whatever MD is."""
    fields: dict[str, Any] = {
        "MerchantName": merchant_name,
        "FirstSix": first_six,
        "LastFour": last_four,
        "Amount": amount,
        "CurrencyCode": currency,
        "Date": date,
        "CustomerName": customer_name,
        "CultureName": culture_name,
    }
    if transaction_id is not None:
        fields["TransactionId"] = transaction_id
    return encode_pareq(fields)


def _b64decode_loose(text: str) -> bytes:
    cleaned = "".join(text.split())
    cleaned += "=" * (-len(cleaned) % 4)
    return base64.b64decode(cleaned, validate=True)


def decode_pareq(pa_req: str) -> dict[str, Any]:
    """The JSON object inside a test-mode PaReq; :class:`ThreeDSError` (``bad_pareq``)
    if it is not one."""
    candidates = [pa_req]
    if pa_req.startswith("+/"):
        candidates.insert(0, pa_req[2:])
    for candidate in candidates:
        try:
            obj = jsoncodec.loads(_b64decode_loose(candidate))
        except (binascii.Error, ValueError):
            continue
        if isinstance(obj, dict):
            transaction_id = obj.get("TransactionId")
            if transaction_id is not None and not (
                type(transaction_id) is int and 0 < transaction_id <= INT64_MAX
            ):
                raise ThreeDSError("bad_pareq", "PaReq TransactionId is not a transaction id")
            return obj
    raise ThreeDSError("bad_pareq", "PaReq is not base64 of a JSON object")


# --------------------------------------------------------------------------- PaRes


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str | bytes, payload: str) -> str:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return _b64url(hmac.new(key, b"pares|" + payload.encode("ascii"), hashlib.sha256).digest())


def sign_pares(
    transaction_id: int,
    outcome: PaResOutcome | str,
    secret: str | bytes,
    *,
    randbytes: Callable[[int], bytes] | None = None,
) -> str:
    """A PaRes that says ``outcome`` for ``transaction_id``, signed with ``secret``."""
    nonce = _b64url((randbytes or os.urandom)(9))
    body = {"t": int(transaction_id), "o": PaResOutcome(outcome).value, "n": nonce}
    payload = _b64url(jsoncodec.dumps_bytes(body))
    return f"{_PARES_PREFIX}.{payload}.{_mac(secret, payload)}"


def read_pares(pa_res: str, secret: str | bytes) -> tuple[int, PaResOutcome]:
    """``(TransactionId, outcome)`` of a PaRes whose signature is good; else
    :class:`ThreeDSError` (``bad_pares`` or ``bad_signature``)."""
    parts = pa_res.strip().split(".")
    if len(parts) != 3 or parts[0] != _PARES_PREFIX:
        raise ThreeDSError("bad_pares", "PaRes is not a sandbox PaRes")
    _, payload, mac = parts
    try:
        payload.encode("ascii")
        if not hmac.compare_digest(_mac(secret, payload).encode(), mac.encode("utf-8")):
            raise ThreeDSError("bad_signature", "PaRes signature does not match")
        body = jsoncodec.loads(_b64url_decode(payload))
        return int(body["t"]), PaResOutcome(body["o"])
    except ThreeDSError:
        raise
    except (UnicodeError, binascii.Error, ValueError, KeyError, TypeError):
        raise ThreeDSError("bad_pares", "PaRes payload is not readable") from None


def verify_pares(pa_res: str, transaction_id: int, secret: str | bytes) -> PaResOutcome:
    """The outcome a PaRes carries, after checking it was signed for
    ``transaction_id``; :class:`ThreeDSError` (``wrong_transaction``) otherwise."""
    signed_for, outcome = read_pares(pa_res, secret)
    if signed_for != int(transaction_id):
        raise ThreeDSError("wrong_transaction", "PaRes belongs to another transaction")
    return outcome


# --------------------------------------------------------------------------- ACS form


def acs_form(acs_url: str, pa_req: str, md: str, term_url: str) -> dict[str, Any]:
    """The POST the payer's browser must make to the bank: ``{"action", "method",
    "fields"}`` with exactly ``PaReq``, ``MD`` and ``TermUrl``.

    Every ACS form is built here, so the rule holds for every caller: raises
    :class:`ThreeDSError` (``bad_acs_url``) unless ``acs_url`` is ``https``, or ``http``
    on a loopback host (:func:`checkout_kit.urls.secure_url_problem`).
    """
    _check_acs_url(acs_url)
    return {
        "action": acs_url,
        "method": "POST",
        "fields": dict(zip(ACS_FIELDS, (pa_req, str(md), term_url), strict=True)),
    }


def _check_acs_url(acs_url: str) -> None:
    """An ``https`` URL, or ``http`` to a loopback host (the local sandbox's bank page):
    card data must not go to the bank page in clear over a network."""
    problem = secure_url_problem(acs_url)
    if problem is not None:
        raise ThreeDSError("bad_acs_url", f"the ACS URL {problem}")


def acs_form_html(
    acs_url: str,
    pa_req: str,
    md: str,
    term_url: str,
    *,
    title: str = "3-D Secure",
    nonce: str | None = None,
) -> str:
    """A complete HTML page that posts the ACS form as soon as it loads.

    The form is submitted by a ``<script>`` carrying ``nonce`` (give the one of the
    page's ``Content-Security-Policy: script-src 'nonce-…'``); there are no inline
    event handlers, and a button submits the form when scripts are off. Every value
    written is HTML-escaped. Raises :class:`ThreeDSError` (``bad_acs_url``) unless
    ``acs_url`` is ``https``, or ``http`` on a loopback host (:func:`acs_form`).
    """
    form = acs_form(acs_url, pa_req, md, term_url)
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in form["fields"].items()
    )
    nonce_attr = "" if nonce is None else f' nonce="{html.escape(nonce)}"'
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>"
        f'<form id="acs" method="POST" action="{html.escape(acs_url)}">{inputs}'
        '<noscript><button type="submit">Continue</button></noscript></form>'
        f'<script{nonce_attr}>document.getElementById("acs").submit()</script>'
        "</body></html>"
    )


# --------------------------------------------------------------------------- ThreeDSCallback


@dataclass(frozen=True)
class CallbackMD:
    """The MD of the ``/payments/ThreeDSCallback`` flow."""

    transaction_id: int
    three_ds_callback_id: str = field(repr=False)
    success_url: str
    fail_url: str

    def __repr__(self) -> str:
        # The callback id lets anyone finish the 3-D Secure step: shown masked.
        return (
            f"CallbackMD(transaction_id={self.transaction_id!r}, "
            f"three_ds_callback_id={mask_token(self.three_ds_callback_id)!r}, "
            f"success_url={self.success_url!r}, fail_url={self.fail_url!r})"
        )

    def to_json_object(self) -> dict[str, Any]:
        """The JSON members, named as the SDKs name them."""
        return {
            "TransactionId": self.transaction_id,
            "ThreeDsCallbackId": self.three_ds_callback_id,
            "SuccessUrl": self.success_url,
            "FailUrl": self.fail_url,
        }


#: encodeURIComponent leaves these unescaped besides letters and digits.
_URI_COMPONENT_SAFE = "-_.!~*'()"


def encode_callback_md(md: CallbackMD, *, style: Literal["json", "base64"] = "json") -> str:
    """The MD as the mobile SDKs send it (``json``) or as checkout.js ``prepareMD``
    does (``base64`` of the URI-encoded JSON)."""
    text = jsoncodec.dumps(md.to_json_object())
    if style == "json":
        return text
    encoded = quote(text, safe=_URI_COMPONENT_SAFE)
    return base64.b64encode(encoded.encode("ascii")).decode("ascii")


def _md_object(value: str) -> Any:
    stripped = value.strip()
    if stripped.startswith("{"):
        return jsoncodec.loads(stripped)
    raw = _b64decode_loose(stripped).decode("ascii")
    return jsoncodec.loads(unquote(raw))


def _redirect_url(value: object) -> bool:
    """An absolute http(s) URL (:func:`checkout_kit.urls.url_problem`): anything else
    could not be sent back in a ``Location`` header."""
    return isinstance(value, str) and url_problem(value) is None


def decode_callback_md(value: str) -> CallbackMD:
    """Read an MD in either encoding; :class:`ThreeDSError` (``bad_md``) otherwise.
    ``TransactionId`` may be a number or a digit string (the SDKs disagree)."""
    try:
        obj = _md_object(value)
    except (ValueError, binascii.Error, UnicodeError):
        raise ThreeDSError("bad_md", "MD is neither JSON nor base64 of URI-encoded JSON") from None
    if not isinstance(obj, dict):
        raise ThreeDSError("bad_md", "MD is not a JSON object")
    try:
        raw_id = obj["TransactionId"]
        if isinstance(raw_id, bool) or not isinstance(raw_id, int | str):
            raise TypeError
        if isinstance(raw_id, str) and not (raw_id.isascii() and raw_id.isdigit()):
            raise ValueError
        transaction_id = int(raw_id) if len(str(raw_id)) <= 19 else 0
        if not 0 < transaction_id <= INT64_MAX:
            raise ValueError
        callback_id, success, fail = (
            obj["ThreeDsCallbackId"],
            obj["SuccessUrl"],
            obj["FailUrl"],
        )
    except (KeyError, TypeError, ValueError):
        raise ThreeDSError(
            "bad_md", "MD needs TransactionId, ThreeDsCallbackId, SuccessUrl and FailUrl"
        ) from None
    if not all(isinstance(v, str) for v in (callback_id, success, fail)):
        raise ThreeDSError("bad_md", "MD members ThreeDsCallbackId, SuccessUrl, FailUrl are text")
    if not (_redirect_url(success) and _redirect_url(fail)):
        raise ThreeDSError("bad_md", "SuccessUrl and FailUrl must be absolute http(s) URLs")
    return CallbackMD(transaction_id, callback_id, success, fail)


def callback_redirect(
    md: CallbackMD,
    *,
    success: bool,
    reason_code: int | None = None,
    cardholder_message: str | None = None,
) -> str:
    """The ``Location`` the gateway answers ThreeDSCallback with: ``SuccessUrl``, or
    ``FailUrl`` with ``ReasonCode`` and ``CardHolderMessage`` appended to its query."""
    if success:
        return md.success_url
    query = urlencode(
        {"ReasonCode": "" if reason_code is None else str(reason_code),
         "CardHolderMessage": cardholder_message or ""}
    )
    separator = "&" if "?" in md.fail_url else "?"
    return f"{md.fail_url}{separator}{query}"


@dataclass(frozen=True)
class CallbackResult:
    """What a ThreeDSCallback redirect said."""

    success: bool
    reason_code: int | None = None
    cardholder_message: str | None = None


def parse_callback_redirect(location: str, md: CallbackMD) -> CallbackResult:
    """Read a ThreeDSCallback ``Location`` as the SDKs do: a prefix of ``SuccessUrl``
    is success, a prefix of ``FailUrl`` failure; anything else raises ``bad_md``."""
    if location.startswith(md.success_url) and not (
        md.fail_url.startswith(md.success_url) and location.startswith(md.fail_url)
    ):
        return CallbackResult(True)
    if location.startswith(md.fail_url):
        query = parse_qs(urlsplit(location).query)
        code = query.get("ReasonCode", [""])[0]
        message = query.get("CardHolderMessage", [None])[0]
        return CallbackResult(False, int(code) if code.isdigit() else None, message)
    raise ThreeDSError("bad_md", "the redirect goes neither to SuccessUrl nor to FailUrl")
