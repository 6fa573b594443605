"""Amounts as :class:`~decimal.Decimal`, rounded by the rules of their currency.

Floats are refused everywhere: ``0.1 + 0.2`` is how shops lose kopecks. The gateway
accepts at most two decimals for every currency it lists (docs/gateway.md §3.3, §3.7), so
the exponent table below is the ISO 4217 minor unit capped at 2.

:func:`format_amount` writes an amount for the gateway (``"1490.00"``);
:func:`display_amount` writes it for a person, in their language (``"1 490,00 ₽"``).
"""

from __future__ import annotations

import unicodedata
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from .errors import MoneyError

__all__ = [
    "CURRENCIES", "CURRENCY_CODES", "display_amount", "format_amount", "minor_units",
    "parse_amount", "quantize",
]

#: The currencies the gateway lists, in the order of their ``CurrencyCode`` (RUB = 0
#: is observed; the other numbers are UNCONFIRMED, docs/gateway.md §3.7).
_CODES = (
    "RUB", "USD", "EUR", "GBP", "UAH", "BYR", "KZT", "AZN", "CHF", "CZK", "CAD", "PLN",
    "SEK", "TRY", "CNY", "INR", "BRL", "ZAR", "UZS", "BGN", "GEL", "RON", "AUD", "HKD",
    "KGS", "AMD", "AED", "BYN", "BGL",
)
#: Currency code -> number of decimals the gateway accepts (docs/gateway.md §3.7).
CURRENCIES: dict[str, int] = dict.fromkeys(_CODES, 2)
#: Currency code -> the gateway's numeric ``CurrencyCode``.
CURRENCY_CODES: dict[str, int] = {code: number for number, code in enumerate(_CODES)}

#: Largest amount we accept for one payment; far above any real card limit, it keeps
#: absurd inputs (``1e30``) out of the ledger and the gateway.
MAX_AMOUNT = Decimal("99999999999.99")


#: The quantum for each number of decimals (``2`` -> ``Decimal("0.01")``).
_STEPS = {places: Decimal(1).scaleb(-places) for places in range(4)}


def minor_units(currency: str) -> int:
    """Decimals allowed for ``currency``; raises :class:`MoneyError` for unknown codes."""
    try:
        return CURRENCIES[currency.upper()]
    except (KeyError, AttributeError):
        raise MoneyError(f"unsupported currency {currency!r}") from None


def parse_amount(value: object, currency: str = "RUB", *, allow_zero: bool = False) -> Decimal:
    """Turn ``value`` (a ``Decimal``, ``int`` or decimal string) into an exact amount.

    Raises :class:`MoneyError` for floats, non-numbers, negative or zero amounts,
    amounts above :data:`MAX_AMOUNT`, and more decimals than ``currency`` allows
    (we never round a price silently; use :func:`quantize` for computed values).
    """
    if isinstance(value, bool | float):
        raise MoneyError("amounts must be Decimal, int or str, never float or bool")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        if len(value) > 64:
            raise MoneyError("not an amount: too long")
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise MoneyError(f"not an amount: {value[:32]!r}") from None
    else:
        raise MoneyError(f"not an amount: {type(value).__name__}")
    if not amount.is_finite():
        raise MoneyError("amount must be finite")
    # adjusted() reads the exponent without arithmetic, so 1e1000000 cannot overflow here.
    if amount.adjusted() > MAX_AMOUNT.adjusted() or abs(amount) > MAX_AMOUNT:
        raise MoneyError("amount is too large")
    places = minor_units(currency)
    exact = amount.quantize(_STEPS[places], rounding=ROUND_HALF_UP)
    if amount != exact:
        raise MoneyError(f"{currency} amounts take at most {places} decimals")
    if exact < 0 or (exact == 0 and not allow_zero):
        raise MoneyError("amount must be positive")
    return exact


def quantize(amount: Decimal, currency: str = "RUB") -> Decimal:
    """Round a computed amount half-up to the currency's decimals.

    Raises :class:`MoneyError` for values no currency can hold (NaN, infinities,
    numbers beyond the decimal context).
    """
    try:
        if amount.is_finite():
            return amount.quantize(_STEPS[minor_units(currency)], rounding=ROUND_HALF_UP)
    except ArithmeticError:
        pass
    raise MoneyError("amount cannot be represented")


def format_amount(amount: Decimal, currency: str = "RUB") -> str:
    """The amount as the gateway wants it: dot separator, exact decimals (``"100.00"``)."""
    return f"{quantize(amount, currency):f}"


#: What CLDR puts between a currency symbol made of letters and a digit next to it
#: (``currencySpacing``, ``insertBetween``): a no-break space.
_CURRENCY_SPACE = "\u00a0"


def _spaced(text: str, symbol: str) -> str:
    """CLDR's currency spacing, which Babel leaves out: ``"RUB1,490.00"`` becomes
    ``"RUB\u00a01,490.00"`` (as browsers' ``Intl.NumberFormat`` writes it), while
    ``"$1,490.00"`` stays, since ``$`` is a symbol (``currencyMatch``: neither a
    symbol nor a space; ``surroundingMatch``: a digit)."""
    at = text.find(symbol)
    if at < 0 or not symbol:
        return text
    end = at + len(symbol)
    if end < len(text) and text[end].isdigit() and _letter_like(symbol[-1]):
        return text[:end] + _CURRENCY_SPACE + text[end:]
    if at > 0 and text[at - 1].isdigit() and _letter_like(symbol[0]):
        return text[:at] + _CURRENCY_SPACE + text[at:]
    return text


def _letter_like(char: str) -> bool:
    return unicodedata.category(char)[0] not in "SZ"


def display_amount(amount: Decimal, currency: str, language: str) -> str:
    """``amount`` as a reader of ``language`` writes money: Babel's
    :func:`~babel.numbers.format_currency` with the locale's pattern, separators and
    symbol, plus CLDR's space after a currency code (``"1 490,00 ₽"`` in ``ru``,
    ``"RUB 1,490.00"`` in ``en``, both spaces U+00A0).

    Always with the currency's decimals as the gateway takes them (two for every
    currency it lists), never the locale's fewer for a currency (``BYR``): a shown
    amount hides no kopeck. ``language`` is a language tag (``ru``, ``en-US``,
    ``pt_BR``); one Babel does not know gets the gateway's form, ``"1490.00 RUB"``
    (a no-break space).
    Raises :class:`MoneyError` for an unknown currency or an amount it cannot hold.
    """
    # Babel's locale data is loaded here, when an amount is first shown to a person:
    # the client and the ledger import this module and never need it.
    from babel import Locale, UnknownLocaleError
    from babel.numbers import format_currency, get_currency_symbol

    exact = quantize(amount, currency)
    try:
        locale = Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return f"{exact:f}{_CURRENCY_SPACE}{currency.upper()}"
    code = currency.upper()
    # currency_digits=False: the pattern's two decimals, not CLDR's digits per currency.
    text = format_currency(exact, code, locale=locale, currency_digits=False)
    return _spaced(text, get_currency_symbol(code, locale=locale))
