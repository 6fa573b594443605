"""Request parameters and dates as the gateway reads and writes them.

The gateway is an ASP.NET service: parameter names are case-insensitive, numbers
may arrive as JSON numbers or as form strings, fractional numbers sent to integer
fields are rounded (docs/gateway.md §3.1). Everything a client can get wrong becomes a
:class:`RequestError`, which the API answers with the ``{Success: false, Message}``
envelope, never a 500. JSON itself is read and written by :mod:`checkout_kit.jsoncodec`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from ... import jsoncodec, urls
from ...errors import JSONCodecError, MoneyError
from ...models import INT64_MAX, INT64_MIN, mask_email, mask_ip, mask_name
from ...money import CURRENCIES, parse_amount
from .masking import mask_text, masked_repr

__all__ = [
    "INT64_MAX",
    "TIME_ZONES",
    "Params",
    "PaymentRequest",
    "RequestError",
    "iso",
    "ms_date",
    "parse_bool",
    "parse_datetime",
    "read_json",
    "url_problem",
]

#: Longest text we keep in an ordinary string field, and longest URL.
MAX_TEXT = 2000


class RequestError(Exception):
    """A request the gateway refuses: answered ``{"Success": false, "Message": ...}``.

    ``status`` is the HTTP status (200 like the gateway's validation errors, 400 for
    bodies that cannot be read)."""

    def __init__(self, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# --------------------------------------------------------------------------- dates


def ms_date(value: datetime | None) -> str | None:
    """``/Date(<ms since epoch>)/``."""
    if value is None:
        return None
    return f"/Date({int(value.timestamp() * 1000)})/"


def iso(value: datetime | None) -> str | None:
    """``yyyy-MM-ddTHH:mm:ss`` in UTC (the ``*Iso`` fields)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


_MS_DATE = re.compile(r"^/Date\((-?\d{1,15})\)/$")


def parse_datetime(text: str) -> datetime:
    """A date or date-time as clients send it (ISO 8601 with or without offset, taken
    as UTC when naive, ``yyyy-MM-dd``, or ``/Date(ms)/``); ``ValueError`` otherwise."""
    text = text.strip()
    match = _MS_DATE.match(text)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, UTC)
    if len(text) > 40:
        raise ValueError("too long")
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# --------------------------------------------------------------------------- parameters

def read_json(text: str | bytes) -> Any:
    """JSON text read by :func:`checkout_kit.jsoncodec.loads`; :class:`RequestError`
    (400) with the codec's reason when it is not acceptable JSON.

    An escape such as ``"\\ud800"`` is valid JSON but makes a string that is not
    Unicode text, which could never be written back: :class:`Params` refuses such a
    value in any field that is kept or echoed."""
    try:
        return jsoncodec.loads(text)
    except JSONCodecError as exc:
        raise RequestError(f"The request body is not valid JSON ({exc.code})", 400) from None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_lone_surrogate(value: Any) -> bool:
    """Whether ``value`` holds a string (or an object key) that is not Unicode text."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


# --------------------------------------------------------------------------- text values

_TRUE = frozenset({"true", "1", "on", "yes"})
_FALSE = frozenset({"false", "0", "off", "no", ""})


def parse_bool(value: object) -> bool:
    """A boolean as forms and JSON send it (``true``/``false``, ``1``/``0``, ``on``/``off``,
    ``yes``/``no``, any case; the empty string is false); :class:`ValueError` otherwise."""
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"not a boolean: {str(value)[:32]!r}")


def url_problem(url: str, name: str) -> str | None:
    """Why ``url`` cannot be used as an address the sandbox sends to or redirects to
    (notification ``Address``, ``SuccessUrl``, ``TermUrl``...), or ``None``: it must be
    an absolute ``http(s)`` URL with a host, at most :data:`MAX_TEXT` characters,
    without whitespace or control characters (it could not be a ``Location`` or a
    request line), with a valid port and a host name IDNA can encode."""
    problem = urls.url_problem(url, max_length=MAX_TEXT)
    return None if problem is None else f"{name} {problem}"


class Params:
    """Request parameters with case-insensitive names and typed, checked getters."""

    def __init__(self, *sources: Mapping[str, Any]) -> None:
        # Later sources win: callers pass the query string first, then the body.
        self._data: dict[str, Any] = {
            str(key).lower(): value for source in sources for key, value in source.items()
        }

    def __contains__(self, name: str) -> bool:
        return self.raw(name) is not None

    def raw(self, name: str) -> Any:
        """The value as sent, ``None`` when absent, null or an empty string."""
        value = self._data.get(name.lower())
        if value is None or (isinstance(value, str) and value == ""):
            return None
        return value

    def text(
        self, name: str, *, required: bool = False, max_length: int = MAX_TEXT,
        replace_invalid: bool = False,
    ) -> str | None:
        """A text field; numbers are accepted and written in decimal. Text that is not
        Unicode (a lone surrogate sent as ``\\ud800``) is refused, or with
        ``replace_invalid`` (for values that are only compared, never kept) has those
        characters replaced by U+FFFD."""
        value = self.raw(name)
        if value is None:
            if required:
                raise RequestError(f"{name} is required")
            return None
        if isinstance(value, str):
            text = value
        elif isinstance(value, bool | dict | list):
            raise RequestError(f"{name} is invalid")
        elif isinstance(value, Decimal):
            # written out digit by digit: 1e100000000 would be 100 MB of text
            if not value.is_finite() or abs(value.adjusted()) > max_length:
                raise RequestError(f"{name} is invalid", 400)
            text = format(value, "f")
        else:
            text = str(value)
        if len(text) > max_length:
            raise RequestError(f"{name} is too long")
        if "\x00" in text:
            raise RequestError(f"{name} is invalid")
        if _has_lone_surrogate(text):
            if not replace_invalid:
                raise RequestError(f"{name} is invalid")
            text = _SURROGATE.sub("\ufffd", text)
        return text

    def required_text(self, name: str, *, max_length: int = MAX_TEXT,
                      replace_invalid: bool = False) -> str:
        """A text field that must be present."""
        value = self.text(name, required=True, max_length=max_length,
                          replace_invalid=replace_invalid)
        assert value is not None
        return value

    def integer(
        self,
        name: str,
        *,
        required: bool = False,
        minimum: int = INT64_MIN,
        maximum: int = INT64_MAX,
    ) -> int | None:
        """An integer field (fractions are rounded, as the gateway does)."""
        value = self.raw(name)
        if value is None:
            if required:
                raise RequestError(f"{name} is required")
            return None
        if isinstance(value, bool):
            raise RequestError(f"{name} is invalid")
        try:
            if isinstance(value, str):
                if len(value) > 40:
                    raise ValueError
                number = Decimal(value.strip())
            elif isinstance(value, int | Decimal):
                number = Decimal(value)
            else:
                raise ValueError
            if not number.is_finite() or abs(number) > Decimal(INT64_MAX):
                raise ValueError
            result = int(number.to_integral_value(rounding=ROUND_HALF_EVEN))
        except (ValueError, InvalidOperation, ArithmeticError):
            raise RequestError(f"{name} is invalid") from None
        if not minimum <= result <= maximum:
            raise RequestError(f"{name} is out of range")
        return result

    def required_integer(self, name: str, *, minimum: int = 1, maximum: int = INT64_MAX) -> int:
        """A required integer (positive unless ``minimum`` says otherwise)."""
        value = self.integer(name, required=True, minimum=minimum, maximum=maximum)
        assert value is not None
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean field (``true``/``false``, ``1``/``0``)."""
        value = self.raw(name)
        if value is None:
            return default
        try:
            return parse_bool(value)
        except ValueError:
            raise RequestError(f"{name} is invalid") from None

    def currency(self, name: str = "Currency", default: str = "RUB") -> str:
        """A currency code the gateway lists (docs/gateway.md §3.7)."""
        value = self.text(name, max_length=8) or default
        code = value.upper()
        if code not in CURRENCIES:
            raise RequestError(f"{name} is not supported")
        return code

    def amount(self, name: str, currency: str, *, required: bool = True) -> Decimal | None:
        """A positive amount with at most two decimals."""
        value = self.raw(name)
        if value is None:
            if required:
                raise RequestError(f"{name} is required")
            return None
        try:
            return parse_amount(value, currency)
        except MoneyError as exc:
            raise RequestError(f"{name} is invalid: {exc.message}") from None

    def required_amount(self, name: str, currency: str) -> Decimal:
        """An amount that must be present."""
        value = self.amount(name, currency)
        assert value is not None
        return value

    def json_value(self, name: str) -> Any:
        """A JSON field that may come as an object or as JSON text (form bodies)."""
        value = self.raw(name)
        if isinstance(value, str):
            if len(value) > 100_000:
                raise RequestError(f"{name} is too long")
            stripped = value.strip()
            if stripped[:1] in ("{", "["):
                try:
                    value = read_json(stripped)
                except RequestError:
                    raise RequestError(f"{name} is not valid JSON") from None
        if _has_lone_surrogate(value):
            raise RequestError(f"{name} is invalid")
        return value

    def url(self, name: str, *, status: int = 200) -> str | None:
        """An optional http(s) URL field (see :func:`url_problem`); a bad one is a
        :class:`RequestError` with ``status``."""
        value = self.text(name, max_length=MAX_TEXT)
        problem = None if value is None else url_problem(value, name)
        if problem is not None:
            raise RequestError(problem, status)
        return value

    def datetime(self, name: str, *, required: bool = False) -> datetime | None:
        """A date-time (see :func:`parse_datetime`)."""
        value = self.text(name, required=required, max_length=64)
        if value is None:
            return None
        try:
            return parse_datetime(value)
        except (ValueError, OverflowError, OSError):
            raise RequestError(f"{name} is invalid") from None

    def date(self, name: str, *, required: bool = False) -> date | None:
        """A ``yyyy-MM-dd`` date (a date-time is cut to its date)."""
        value = self.datetime(name, required=required)
        return value.date() if value is not None else None

    def text_list(self, name: str) -> list[str]:
        """A list of strings: a JSON array, a comma-separated string or one value."""
        value = self.raw(name)
        if value is None:
            return []
        items: Iterable[Any] = value if isinstance(value, list) else str(value).split(",")
        out = []
        for item in items:
            if isinstance(item, dict | list | bool):
                raise RequestError(f"{name} is invalid")
            text = str(item).strip()
            if len(text) > 64:
                raise RequestError(f"{name} is invalid")
            if text:
                out.append(text)
        return out


@masked_repr(email=mask_email, name=mask_name, ip_address=mask_ip, json_data=mask_text)
@dataclass
class PaymentRequest:
    """The validated fields of a payment request."""

    amount: Decimal
    currency: str
    invoice_id: str | None = None
    account_id: str | None = None
    email: str | None = None
    description: str | None = None
    name: str | None = None
    ip_address: str | None = None
    culture_name: str | None = None
    payment_url: str | None = None
    json_data: Any = None
    save_card: bool = False

    @classmethod
    def from_params(cls, p: Params, *, ip_required: bool) -> PaymentRequest:
        """Read and check the common payment fields (docs/gateway.md §3.3, §3.5)."""
        currency = p.currency()
        return cls(
            amount=p.required_amount("Amount", currency),
            currency=currency,
            invoice_id=p.text("InvoiceId", max_length=255),
            account_id=p.text("AccountId", max_length=255),
            email=p.text("Email", max_length=255),
            description=p.text("Description"),
            name=p.text("Name", max_length=255),
            ip_address=p.text("IpAddress", required=ip_required, max_length=64),
            culture_name=p.text("CultureName", max_length=16),
            payment_url=p.text("PaymentUrl"),
            json_data=p.json_value("JsonData"),
            save_card=p.flag("SaveCard"),
        )


#: Time zones ``/payments/list`` understands (the gateway's codes, UTC offsets).
TIME_ZONES: dict[str, timedelta] = {
    "UTC": timedelta(0),
    "GMT": timedelta(0),
    "KALT": timedelta(hours=2),
    "MSK": timedelta(hours=3),
    "SAMT": timedelta(hours=4),
    "YEKT": timedelta(hours=5),
    "OMST": timedelta(hours=6),
    "KRAT": timedelta(hours=7),
    "IRKT": timedelta(hours=8),
    "YAKT": timedelta(hours=9),
    "VLAT": timedelta(hours=10),
    "MAGT": timedelta(hours=11),
    "PETT": timedelta(hours=12),
}
