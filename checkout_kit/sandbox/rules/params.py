"""Wire formats of the gateway: request parameters, dates, the JSON envelope.

The gateway is an ASP.NET service: parameter names are case-insensitive, numbers
may arrive as JSON numbers or as form strings, fractional numbers sent to integer
fields are rounded (reference §3.1). Everything a client can get wrong becomes a
:class:`RequestError`, which the API answers with the ``{Success: false, Message}``
envelope, never a 500.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from json.encoder import encode_basestring
from typing import Any

from ...errors import MoneyError
from ...money import CURRENCIES, parse_amount

__all__ = [
    "INT64_MAX",
    "JSONObject",
    "Params",
    "RequestError",
    "dumps",
    "iso",
    "json_depth",
    "loads",
    "ms_date",
    "parse_datetime",
]

INT64_MAX = 2**63 - 1
#: Longest text we keep in an ordinary string field.
MAX_TEXT = 2000
#: Deepest JSON nesting accepted in a body (``JsonData`` included).
MAX_DEPTH = 32


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
    utc = value.astimezone(UTC)
    if utc.year >= 1000:
        # The same text at half isoformat's cost (a third of strftime's); an f-string
        # with format specs costs as much as isoformat.
        return "%04d-%02d-%02dT%02d:%02d:%02d" % (  # noqa: UP031
            utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second)
    return utc.strftime("%Y-%m-%dT%H:%M:%S")  # %Y does not pad years below 1000


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


# --------------------------------------------------------------------------- JSON


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, computed without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


#: Widest exponent, either way, and longest text of a fractional number in a body: a
#: number such as ``1e50000000`` is a few bytes of JSON but megabytes written out.
MAX_NUMBER_EXPONENT = 400


def _number(text: str) -> Decimal:
    if len(text) <= MAX_NUMBER_EXPONENT:
        try:
            value = Decimal(text)
        except ArithmeticError:  # an exponent beyond what Decimal holds
            pass
        else:
            if -MAX_NUMBER_EXPONENT <= value.adjusted() <= MAX_NUMBER_EXPONENT:
                return value
    raise RequestError("The request body holds a number out of range", 400)


def _constant(name: str) -> Any:
    # Python's json reads NaN and Infinity; JSON has neither, and the gateway refuses them.
    raise RequestError(f"The request body is not valid JSON ({name})", 400)


_DECODER = json.JSONDecoder(parse_float=_number, parse_constant=_constant)


def loads(text: str | bytes) -> Any:
    """Parse JSON with exact decimals; :class:`RequestError` (400) on anything odd."""
    try:
        if isinstance(text, bytes):
            # what json.loads does with bytes, without building a decoder per call
            text = text.decode(json.detect_encoding(text), "surrogatepass")
        value = _DECODER.decode(text)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise RequestError("The request body is not valid JSON", 400) from None
    # Each level of nesting opens a bracket: only text with enough of them needs the walk.
    if text.count("{") + text.count("[") > MAX_DEPTH and json_depth(value) > MAX_DEPTH:
        raise RequestError("The request body is nested too deeply", 400)
    return value


class JSONObject(Mapping[str, Any]):
    """A JSON object kept as its text: :func:`dumps` writes the text as it is, and
    reading it as a mapping parses it (once, with exact decimals). A snapshot: it
    never changes. The transaction model is made this way, straight from the record
    (:func:`checkout_kit.sandbox.render.transaction_json`), since most of them are only
    ever sent."""

    __slots__ = ("_fields", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._fields: dict[str, Any] | None = None

    def _parsed(self) -> dict[str, Any]:
        if self._fields is None:
            self._fields = _DECODER.decode(self.text)
        return self._fields

    def __getitem__(self, key: str) -> Any:
        return self._parsed()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parsed())

    def __len__(self) -> int:
        return len(self._parsed())

    def __repr__(self) -> str:
        return f"JSONObject({self.text})"


# Decimals and JSONObjects leave the encoder as strings wrapped in random tags, which
# are then cut out (and JSONObjects' texts put in): the C encoder does the work, and
# the random tags make the markers impossible to forge from user text.
_TAG = "\x1e" + secrets.token_hex(8)
_TAG_JSON = json.dumps(_TAG)[1:-1]
_OBJECT_TAG = "\x1d" + secrets.token_hex(8)
_OBJECT_MARK = re.compile('"' + re.escape(json.dumps(_OBJECT_TAG)[1:-1]) + r'([0-9]+)"')
_objects: ContextVar[list[str]] = ContextVar("checkout_kit_sandbox_json_objects")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{_TAG}{value:f}{_TAG}" if value.is_finite() else None
    if isinstance(value, JSONObject):
        texts = _objects.get()
        texts.append(value.text)
        return f"{_OBJECT_TAG}{len(texts) - 1}"
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return str(value)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default,
                            allow_nan=False)


def _flat_object(value: dict[Any, Any]) -> str | None:
    """``value`` as JSON when it is flat: text keys, and values that are text, ``None``,
    booleans or :class:`JSONObject` (every API envelope: ``{Success, Message, Model}``);
    else ``None``. Written here it costs a third of the encoder's way round the tags."""
    items = []
    for key, item in value.items():
        kind = type(item)
        if kind is JSONObject:
            text = item.text
        elif kind is str:
            text = encode_basestring(item)
        elif item is None:
            text = "null"
        elif kind is bool:
            text = "true" if item else "false"
        else:
            return None
        if type(key) is not str:
            return None
        items.append(encode_basestring(key) + ":" + text)
    return "{" + ",".join(items) + "}"


def dumps(value: Any) -> str:
    """JSON text in which ``Decimal`` amounts are numbers with their exact digits."""
    if type(value) is dict:
        flat = _flat_object(value)
        if flat is not None:
            return flat
    texts: list[str] = []
    token = _objects.set(texts)
    try:
        text = _ENCODER.encode(value)
    finally:
        _objects.reset(token)
    text = text.replace('"' + _TAG_JSON, "").replace(_TAG_JSON + '"', "")
    if texts:
        text = _OBJECT_MARK.sub(lambda match: texts[int(match.group(1))], text)
    return text


# --------------------------------------------------------------------------- parameters

_TRUE = frozenset({"true", "1", "on", "yes"})
_FALSE = frozenset({"false", "0", "off", "no", ""})


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
        self, name: str, *, required: bool = False, max_length: int = MAX_TEXT
    ) -> str | None:
        """A text field; numbers are accepted and written in decimal."""
        value = self._data.get(name.lower())  # self.raw(name), inline: the commonest getter
        if value is None or (value == "" and isinstance(value, str)):
            if required:
                raise RequestError(f"{name} is required")
            return None
        if type(value) is str:
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
        return text

    def required_text(self, name: str, *, max_length: int = MAX_TEXT) -> str:
        """A text field that must be present."""
        value = self.text(name, required=True, max_length=max_length)
        assert value is not None
        return value

    def integer(
        self,
        name: str,
        *,
        required: bool = False,
        minimum: int = -INT64_MAX - 1,
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
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise RequestError(f"{name} is invalid")

    def currency(self, name: str = "Currency", default: str = "RUB") -> str:
        """A currency code the gateway lists (reference §3.7)."""
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
        if isinstance(value, str) and len(value) > 40:
            raise RequestError(f"{name} is invalid")
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
                    return loads(stripped)
                except RequestError:
                    raise RequestError(f"{name} is not valid JSON") from None
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
