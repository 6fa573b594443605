"""The one JSON codec: the gateway's JSON with exact decimals, written and read strictly.

Every JSON text checkout_kit writes or reads for the gateway goes through here: API
request and answer bodies (client and sandbox), 3-D Secure PaReq and MD payloads, and
notification ``Data``. Money must never pass through a float, so:

* :func:`dumps` writes a :class:`~decimal.Decimal` digit for digit (``Decimal("0.10")``
  is ``0.10``), refuses floats (:class:`~checkout_kit.errors.MoneyError`) and non-finite
  decimals, and writes aware datetimes and dates as ISO 8601 text.
* :func:`loads` reads fractional numbers as ``Decimal`` and integers as ``int``; it
  refuses ``NaN`` and ``Infinity`` (Python's :mod:`json` accepts them, JSON does not),
  numbers whose size or text would cost megabytes to hold, nesting deeper than
  :data:`MAX_DEPTH`, a key repeated in one object, and bytes that are not UTF-8
  (RFC 8259 §8.1).

Both raise :class:`~checkout_kit.errors.JSONCodecError` with a ``code`` for bad data.
Wrong Python types (a set, an object) stay a ``TypeError``: a programming error, not data.
This module is part of the pure core: it imports neither Flask nor the network.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

from .errors import JSONCodecError, MoneyError

__all__ = ["MAX_DEPTH", "MAX_NUMBER_EXPONENT", "dumps", "dumps_bytes", "dumps_for_script", "loads"]

#: Deepest nesting of objects and arrays written or read.
MAX_DEPTH = 32
#: Widest decimal exponent, either way, and longest number text read: ``1e50000000`` is
#: a few bytes of JSON but megabytes once written out.
MAX_NUMBER_EXPONENT = 400


# --------------------------------------------------------------------------- writing


def dumps(value: Any) -> str:
    """``value`` as compact JSON text (no spaces, non-ASCII kept as it is).

    Accepts ``None``, ``bool``, ``int``, ``str``, finite ``Decimal`` (at most
    :data:`MAX_NUMBER_EXPONENT` either way, as :func:`loads` reads), aware ``datetime``,
    ``date``, mappings with ``str`` keys, lists and tuples.
    """
    parts: list[str] = []
    _write(value, parts, 0, encode_basestring)
    return "".join(parts)


#: Characters that could end a ``<script>`` element or start markup inside one.
_SCRIPT_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def dumps_for_script(value: Any) -> str:
    """:func:`dumps` as ASCII, safe to place inside a ``<script>`` element or a served
    script: ``<``, ``>`` and ``&`` are escaped, and so are U+2028 and U+2029 (which
    old JavaScript engines take as line ends)."""
    parts: list[str] = []
    _write(value, parts, 0, encode_basestring_ascii)
    # Outside strings JSON has none of these characters, so escaping them all is safe.
    return "".join(parts).translate(_SCRIPT_ESCAPES)


def dumps_bytes(value: Any) -> bytes:
    """:func:`dumps` encoded as UTF-8, ready to be a request or response body."""
    try:
        return dumps(value).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which no UTF-8 text can carry
        raise JSONCodecError("the text cannot be written as UTF-8", code="encoding") from None


def _write(value: Any, out: list[str], depth: int, quote: Callable[[str], str]) -> None:
    # Text first: a body is mostly text. str subclasses (StrEnum members) write their value.
    if isinstance(value, str):
        out.append(quote(str(value)))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise JSONCodecError("non-finite numbers are not JSON", code="non_finite")
        # Written out, such a number would be megabytes long, and loads() refuses it.
        text = (format(value, "f")
                if -MAX_NUMBER_EXPONENT <= value.adjusted() <= MAX_NUMBER_EXPONENT else "")
        if not text or len(text) > MAX_NUMBER_EXPONENT:
            raise JSONCodecError("the number is out of range", code="number_range")
        out.append(text)
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        raise MoneyError("floats are never written as JSON; use Decimal or int")
    elif isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise JSONCodecError("datetimes written as JSON must be timezone-aware",
                                 code="naive_datetime")
        out.append(quote(value.isoformat()))
    elif isinstance(value, date):
        out.append(quote(value.isoformat()))
    elif isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            raise JSONCodecError("the value is nested too deeply", code="too_deep")
        out.append("{")
        first = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, not {type(key).__name__}")
            if not first:
                out.append(",")
            first = False
            out.append(quote(key))
            out.append(":")
            _write(item, out, depth + 1, quote)
        out.append("}")
    elif isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            raise JSONCodecError("the value is nested too deeply", code="too_deep")
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out, depth + 1, quote)
        out.append("]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")


# --------------------------------------------------------------------------- reading


def _fraction(text: str) -> Decimal:
    if len(text) <= MAX_NUMBER_EXPONENT:
        try:
            value = Decimal(text)
        except ArithmeticError:  # an exponent beyond what Decimal holds
            pass
        else:
            if -MAX_NUMBER_EXPONENT <= value.adjusted() <= MAX_NUMBER_EXPONENT:
                return value
    raise JSONCodecError("the JSON holds a number out of range", code="number_range")


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER_EXPONENT:
        raise JSONCodecError("the JSON holds a number out of range", code="number_range")
    return int(text)


def _constant(name: str) -> Any:
    raise JSONCodecError(f"{name} is not JSON", code="constant")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Readers differ on a repeated key (first or last wins): refuse it, so that no two
    # readers of one body can disagree about what it says.
    value = dict(pairs)
    if len(value) != len(pairs):
        raise JSONCodecError("the JSON repeats a key in one object", code="duplicate_key")
    return value


_DECODER = json.JSONDecoder(parse_float=_fraction, parse_int=_integer,
                            parse_constant=_constant, object_pairs_hook=_object)


def _depth(value: Any) -> int:
    """Nesting depth of a parsed value, computed without recursion."""
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


def loads(text: str | bytes) -> Any:
    """Parse JSON text (``str``, or UTF-8 ``bytes``) with exact decimals.

    Raises :class:`~checkout_kit.errors.JSONCodecError` whose ``code`` is ``not_json``,
    ``encoding``, ``constant``, ``number_range``, ``too_deep`` or ``duplicate_key``.
    """
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise JSONCodecError("JSON bytes must be UTF-8", code="encoding") from None
        text = text.removeprefix("\ufeff")
    elif not isinstance(text, str):
        raise TypeError(f"expected str or bytes, not {type(text).__name__}")
    try:
        value = _DECODER.decode(text)
    except JSONCodecError:
        raise
    except (ValueError, RecursionError):
        raise JSONCodecError("the text is not valid JSON", code="not_json") from None
    # Each level of nesting opens a bracket: only text with enough of them needs the walk.
    if text.count("{") + text.count("[") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise JSONCodecError("the JSON is nested too deeply", code="too_deep")
    return value
