"""The card toolkit: brands, Luhn, expiry, CVV and cardholder-name rules.

Pure: no Flask, no network. Time enters only through the ``now`` arguments.

Everything about brands lives in one data table, :data:`BRANDS`, in the manner of
braintree's credit-card-type: each brand has prefix ranges, lengths, display gaps
and its CVV rule. Detection picks the brand whose matching range is the most
specific (longest prefix); where two brands match at the same length, the table
must say which one wins (``beats``), and importing this module fails if it does not.
The browser scripts get the very same table through :func:`brand_table`, and detect
brands with the index itself, as ranges (:func:`prefix_table`), through one routine
(``static/checkout_kit/brands.js``).

Validation reports the checkout.js field names and error codes
(``{"cardNumber": "CardNumber_Invalid", "cvv": "Cvv_Empty"}``), so templates and
scripts can use them as they are.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from .errors import CardError

__all__ = [
    "BRANDS",
    "BRANDS_BY_ID",
    "LEGACY",
    "MODERN",
    "UNKNOWN_CARD_TYPE",
    "Brand",
    "CardValidation",
    "CvvPatterns",
    "Expiry",
    "NumberCheck",
    "ValidationRules",
    "brand_table",
    "candidate_brands",
    "check_number",
    "detect_brand",
    "expiry_from_parts",
    "format_number",
    "luhn_digits_valid",
    "luhn_valid",
    "mask_number",
    "normalize_number",
    "parse_expiry",
    "prefix_table",
    "validate_card",
    "validate_cvv",
    "validate_expiry",
    "validate_name",
]


#: ``(CardType, CardTypeCode)`` of a card whose brand is not in the table.
UNKNOWN_CARD_TYPE = ("Unknown", -1)


@dataclass(frozen=True, slots=True)
class Brand:
    """One card brand.

    ``patterns`` are inclusive ranges of leading digits: ``(2200, 2204)`` matches
    every number starting 2200…2204, ``(4, 4)`` every number starting with 4.
    ``beats`` names the brands this one wins over where both match equally well.
    """

    id: str
    name: str
    patterns: tuple[tuple[int, int], ...]
    lengths: tuple[int, ...]
    gaps: tuple[int, ...]
    cvv_name: str
    cvv_sizes: tuple[int, ...]
    cvv_required: bool = True
    beats: tuple[str, ...] = ()
    #: The gateway's ``CardType`` and ``CardTypeCode`` for this brand (docs/gateway.md
    #: §3.4: Visa = 0 is observed, the other codes are UNCONFIRMED).
    card_type: str = "Unknown"
    card_type_code: int = -1

    @property
    def gateway_type(self) -> tuple[str, int]:
        """``(CardType, CardTypeCode)`` as the gateway writes them."""
        return self.card_type, self.card_type_code

    @property
    def max_length(self) -> int:
        """The longest number this brand issues."""
        return self.lengths[-1]


def _r(*items: int | tuple[int, int]) -> tuple[tuple[int, int], ...]:
    return tuple(i if isinstance(i, tuple) else (i, i) for i in items)


_G4 = (4, 8, 12)

#: The brand table. Sources: docs/gateway.md §2.3 (SDK ranges) and the IIN ranges each
#: network publishes (tests/vectors/brands.json lists them and checks the table against
#: them). Within a shared lead the most specific prefix wins, so Troy's ``65…`` ranges
#: take precedence over Discover's ``65`` and Maestro's catch-all ``6``. Troy owns the
#: whole ``9792`` its network publishes (the SDKs' rule stops at ``979289``).
BRANDS: tuple[Brand, ...] = (
    Brand("visa", "Visa", _r(4), (16, 18, 19), _G4, "CVV", (3,),
          card_type="Visa", card_type_code=0),
    Brand("mastercard", "Mastercard", _r((51, 55), (2221, 2720)), (16,), _G4, "CVC", (3,),
          card_type="Mastercard", card_type_code=1),
    Brand("mir", "MIR", _r((2200, 2204)), (16, 17, 18, 19), _G4, "CVP2", (3,),
          beats=("mastercard",),
          card_type="МИР", card_type_code=3),
    Brand("maestro", "Maestro",
          _r(493698, (500000, 504174), (504176, 506698), (506779, 508999), (56, 59), 63, 67, 6),
          (12, 13, 14, 15, 16, 17, 18, 19), _G4, "CVC", (3,),
          card_type="Maestro", card_type_code=2),
    Brand("american-express", "American Express", _r(34, 37), (15,), (4, 10), "CID", (4,),
          card_type="AmericanExpress", card_type_code=5),
    Brand("jcb", "JCB", _r(2131, 1800, (3528, 3589)), (16, 17, 18, 19), _G4, "CVV", (3,),
          card_type="JCB", card_type_code=4),
    Brand("unionpay", "UnionPay", _r(62, 81), (14, 15, 16, 17, 18, 19), _G4, "CVN", (3,),
          beats=("maestro",),
          card_type="UnionPay", card_type_code=7),
    Brand("diners-club", "Diners Club", _r((300, 305), 36, 38, 39), (14, 16, 19), (4, 10),
          "CVV", (3,),
          card_type="DinersClub", card_type_code=6),
    Brand("discover", "Discover", _r(6011, (644, 649), 65), (16, 19), _G4, "CID", (3,),
          beats=("maestro",),
          card_type="Discover", card_type_code=8),
    # Uzcard and Humo: the gateway does not require a CVV for them (docs/gateway.md §2.5).
    Brand("humo", "Humo", _r(9860), (16,), _G4, "CVV", (3,), cvv_required=False,
          beats=("mastercard",),
          card_type="Humo", card_type_code=9),
    Brand("uzcard", "Uzcard", _r(8600, 5614), (16,), _G4, "CVV", (3,), cvv_required=False,
          beats=("mastercard", "maestro"),
          card_type="Uzcard", card_type_code=10),
    Brand("troy", "Troy",
          _r(9792, 650052, (650082, 650083), 650092, 650161, 650170, 650173,
             650175, 650268, 650271, (650273, 650274), (650456, 650457), 650836,
             (650846, 650850), 650923, 650987, 650990, 654997, 657366, 657998, 658758,
             (658767, 658768)),
          (16,), _G4, "CVV", (3,), card_type="Troy", card_type_code=11),
)

BRANDS_BY_ID: dict[str, Brand] = {b.id: b for b in BRANDS}


def _build_prefix_index(brands: tuple[Brand, ...]) -> tuple[dict[str, Brand], ...]:
    """For each prefix length 1..longest, a map from prefix string to the winning brand.

    Detection then costs one dictionary look-up per prefix length. A prefix claimed by
    two brands at the same length must be settled by ``beats``; otherwise the table is
    wrong and ``ValueError`` stops the import rather than letting detection guess.
    """
    widest = max(len(str(lo)) for b in brands for lo, _ in b.patterns)
    index: list[dict[str, Brand]] = [{} for _ in range(widest + 1)]
    for brand in brands:
        for lo, hi in brand.patterns:
            digits = len(str(lo))
            for value in range(lo, hi + 1):
                key = str(value)
                other = index[digits].get(key)
                if other is None or other.id in brand.beats:
                    index[digits][key] = brand
                elif brand.id not in other.beats:
                    raise ValueError(f"brands {other.id} and {brand.id} both claim prefix {key}")
    return tuple(index)


_PREFIX_INDEX = _build_prefix_index(BRANDS)
#: The longest prefix in the table (six digits today; ISO/IEC 7812 allows eight).
_MAX_PREFIX = len(_PREFIX_INDEX) - 1


def _lengths_by_lead() -> dict[str, tuple[int, ...]]:
    # For each two-digit lead, the prefix lengths worth looking up, longest first:
    # a Visa number ("42…") then needs one look-up instead of six.
    table: dict[str, tuple[int, ...]] = {}
    for lead in (f"{i:02d}" for i in range(100)):
        table[lead] = tuple(
            n for n in range(_MAX_PREFIX, 0, -1)
            if any(k.startswith(lead[: min(n, 2)]) for k in _PREFIX_INDEX[n])
        )
    return table


_LENGTHS_BY_LEAD = _lengths_by_lead()
_ALL_LENGTHS = tuple(range(_MAX_PREFIX, 0, -1))


# --------------------------------------------------------------------------- numbers

_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")


_TYPE_ERROR_CODES = {
    "cardNumber": "CardNumber_Invalid",
    "cvv": "Cvv_Invalid",
    "name": "Name_Invalid",
    "expDateMonthYear": "ExpDateMonthYear_Invalid",
}


def _text(value: object, field: str) -> str:
    """``value`` if it is a string; otherwise :class:`CardError` on ``field``.

    Card numbers are strings: as integers they would lose leading zeros and invite
    float conversions, so a wrong type is an error rather than something to coerce.
    """
    if isinstance(value, str):
        return value
    raise CardError(
        {field: _TYPE_ERROR_CODES[field]}, f"{field} must be a string, not {type(value).__name__}"
    )


def normalize_number(number: str) -> str:
    """Drop spaces and dashes; any other non-digit raises :class:`CardError`."""
    digits = _text(number, "cardNumber").translate(_SEPARATORS)
    if digits and not (digits.isascii() and digits.isdigit()):
        raise CardError({"cardNumber": "CardNumber_Invalid"}, "card number has invalid characters")
    return digits


def luhn_digits_valid(digits: str) -> bool:
    """The mod-10 check of a number already normalised to ASCII digits (what
    :func:`normalize_number` returns); an all-zero number fails. :func:`luhn_valid`
    takes a number as typed."""
    # Sums the digits without a Python-level loop: every digit is its
    # value plus 48, and the doubled digits go through a translation table.
    raw = digits.encode()
    total = sum(raw[-1::-2]) + sum(raw[-2::-2].translate(_DOUBLED)) - 48 * len(raw)
    return total > 0 and total % 10 == 0


def luhn_valid(number: str) -> bool:
    """The mod-10 check. An all-zero number and a number with stray characters fail;
    a value that is not a string raises :class:`CardError`."""
    _text(number, "cardNumber")
    try:
        digits = normalize_number(number)
    except CardError:
        return False
    return bool(digits) and luhn_digits_valid(digits)


def detect_brand(number: str) -> Brand | None:
    """The brand of a (possibly partial) card number, or ``None`` if none is certain yet."""
    return _detect(_text(number, "cardNumber").translate(_SEPARATORS))


def _detect(digits: str) -> Brand | None:
    for n in _LENGTHS_BY_LEAD.get(digits[:2], _ALL_LENGTHS):
        if len(digits) >= n:
            brand = _PREFIX_INDEX[n].get(digits[:n])
            if brand is not None:
                return brand
    return None


def _pattern_could_match(prefix: str, lo: int, hi: int) -> bool:
    width = len(str(lo))
    if len(prefix) >= width:
        return lo <= int(prefix[:width]) <= hi
    scale: int = 10 ** (width - len(prefix))
    start = int(prefix) * scale
    return start <= hi and start + scale - 1 >= lo


def candidate_brands(partial: str) -> tuple[Brand, ...]:
    """Every brand a number starting with ``partial`` could still belong to.

    The empty string is compatible with every brand. The most specific match comes
    first, as :func:`detect_brand` would pick it.
    """
    try:
        digits = normalize_number(partial)
    except CardError:
        return ()
    if not digits:
        return BRANDS
    found = [
        b for b in BRANDS if any(_pattern_could_match(digits, lo, hi) for lo, hi in b.patterns)
    ]
    best = detect_brand(digits)
    if best in found:
        found.remove(best)
        found.insert(0, best)
    return tuple(found)


#: Lengths accepted for numbers of no known brand (the current SDKs' 14–19 rule).
UNKNOWN_BRAND_LENGTHS = (14, 15, 16, 17, 18, 19)


@dataclass(frozen=True, slots=True)
class NumberCheck:
    """The verdict on a card number, as braintree's card-validator gives it.

    ``is_potentially_valid`` is true while the number could still become valid by
    typing more digits; ``error`` is the checkout.js code when it is not valid.
    """

    brand: Brand | None
    candidates: tuple[Brand, ...]
    is_valid: bool
    is_potentially_valid: bool
    luhn_valid: bool
    error: str | None

    def __repr__(self) -> str:
        brand = self.brand.id if self.brand else None
        return (f"NumberCheck(brand={brand!r}, is_valid={self.is_valid}, "
                f"is_potentially_valid={self.is_potentially_valid}, error={self.error!r})")


def _number_error(digits: str, brand: Brand | None) -> str | None:
    if not digits:
        return "CardNumber_Empty"
    lengths = brand.lengths if brand else UNKNOWN_BRAND_LENGTHS
    if len(digits) not in lengths or not luhn_digits_valid(digits):
        return "CardNumber_Invalid"
    return None


def check_number(number: str) -> NumberCheck:
    """Check a complete or partial card number (spaces and dashes allowed)."""
    _text(number, "cardNumber")
    try:
        digits = normalize_number(number)
    except CardError:
        return NumberCheck(None, (), False, False, False, "CardNumber_Invalid")
    brand = detect_brand(digits)
    luhn = bool(digits) and luhn_digits_valid(digits)
    error = _number_error(digits, brand)
    candidates = candidate_brands(digits)
    pool: Iterable[tuple[int, ...]] = (
        [b.lengths for b in candidates] if candidates else [UNKNOWN_BRAND_LENGTHS]
    )
    potentially = error is None or any(len(digits) < max(lengths) for lengths in pool)
    return NumberCheck(brand, candidates, error is None, potentially, luhn, error)


def mask_number(number: str) -> str:
    """``424242******4242``: the first six and last four, the rest starred.

    Short inputs (under 13 digits) keep only the last four, so a masked value never
    reveals most of a number.
    """
    digits = "".join(c for c in _text(number, "cardNumber") if c.isdigit())
    if len(digits) >= 13:
        return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]
    if len(digits) > 4:
        return "*" * (len(digits) - 4) + digits[-4:]
    return "*" * len(digits)


def format_number(number: str) -> str:
    """Group the digits by the brand's display gaps: ``4242 4242 4242 4242``."""
    digits = normalize_number(number)
    brand = detect_brand(digits)
    gaps = brand.gaps if brand else (4, 8, 12, 16)
    parts, start = [], 0
    for gap in (*gaps, len(digits)):
        if gap > start:
            parts.append(digits[start:gap])
            start = gap
    return " ".join(p for p in parts if p)


# --------------------------------------------------------------------------- expiry

#: A card is refused if it expires more than this many years ahead.
MAX_YEARS_AHEAD = 20

#: The earliest expiry year an :class:`Expiry` accepts (older ones are ``ExpDateYear_Invalid``).
MIN_EXPIRY_YEAR = 1900


class _ExpiryFields(NamedTuple):
    year: int
    month: int


class Expiry(_ExpiryFields):
    """A card's expiry month. The card is valid through the last day of it.

    A tuple ``(year, month)`` underneath, so expiries order and hash naturally.
    """

    __slots__ = ()

    def __new__(cls, year: int, month: int) -> Expiry:
        if not 1 <= month <= 12:
            raise CardError({"expDateMonth": "ExpDateMonth_Invalid"}, "month must be 1–12")
        if not MIN_EXPIRY_YEAR <= year <= 9999:
            raise CardError({"expDateYear": "ExpDateYear_Invalid"}, "year out of range")
        # Named rather than super(): the same constructor, without building a super
        # object on every expiry parsed.
        return _ExpiryFields.__new__(cls, year, month)

    def yymm(self) -> str:
        """``YYMM`` as the cryptogram plaintext wants it (December 2030 → ``3012``)."""
        return f"{self.year % 100:02d}{self.month:02d}"

    def mm_yy(self) -> str:
        """``MM/YY`` as the gateway's ``CardExpDate`` shows it."""
        return f"{self.month:02d}/{self.year % 100:02d}"

    def is_expired(self, now: datetime | None = None) -> bool:
        """True once the expiry month is over (judged in ``now``'s own calendar)."""
        now = now or datetime.now(UTC)
        return (self.year, self.month) < (now.year, now.month)

    def is_too_far(self, now: datetime | None = None) -> bool:
        """True if the card expires more than :data:`MAX_YEARS_AHEAD` years from ``now``."""
        now = now or datetime.now(UTC)
        return (self.year, self.month) > (now.year + MAX_YEARS_AHEAD, now.month)


def _year(value: str) -> int | None:
    if not (value.isascii() and value.isdigit()):
        return None
    if len(value) <= 2:
        return 2000 + int(value)
    return int(value) if len(value) == 4 else None


def _year_modulo_100(value: str) -> int | None:
    # The legacy script takes any integer year and carries it modulo 100 (docs/gateway.md
    # §1.2), so the packet's century is always 20xx.
    if not (value.isascii() and value.isdigit()):
        return None
    return 2000 + int(value[-2:])


def _month(value: str) -> int:
    return int(value) if len(value) <= 2 and value.isascii() and value.isdigit() else 0


def expiry_from_parts(month: str | int, year: str | int) -> Expiry:
    """An :class:`Expiry` from separate month (1–12) and year (``YY`` or ``YYYY``) fields."""
    return _expiry_from_parts(month, year, _year)


def _expiry_from_parts(
    month: str | int, year: str | int, year_of: Callable[[str], int | None]
) -> Expiry:
    month_number = _month(month.strip() if isinstance(month, str) else str(month))
    year_number = year_of(year.strip() if isinstance(year, str) else str(year))
    if 1 <= month_number <= 12 and year_number is not None:
        return Expiry(year_number, month_number)
    errors = {}
    if not 1 <= month_number <= 12:
        errors["expDateMonth"] = "ExpDateMonth_Invalid"
    if year_number is None:
        errors["expDateYear"] = "ExpDateYear_Invalid"
    raise CardError(errors, "invalid expiry")


_MONTH_DIGITS_BY_LENGTH = {2: 1, 3: 1, 4: 2, 5: 1, 6: 2}


def parse_expiry(value: str) -> Expiry:
    """Parse a combined expiry: ``MM/YY``, ``MM/YYYY``, ``MMYY`` or any checkout.js form.

    As checkout.js reads ``expDateMonthYear``: non-digits are dropped; with 2, 3 or
    5 digits left the month is one digit, with 4 or 6 it is two.
    """
    return _parse_combined(_text(value, "expDateMonthYear"))


def _parse_combined(value: str) -> Expiry:
    digits = value.replace("/", "").replace(" ", "")
    if not (digits.isascii() and digits.isdigit()):
        digits = re.sub(r"\D", "", value)
    split = _MONTH_DIGITS_BY_LENGTH.get(len(digits))
    # The split leaves a year of one, two or four digits, all of which _year reads;
    # Expiry itself checks the month and the year's range.
    year = _year(digits[split:]) if split is not None and digits.isascii() else None
    if split is not None and year is not None:
        try:
            return Expiry(year, int(digits[:split]))
        except CardError:
            pass
    raise CardError({"expDateMonthYear": "ExpDateMonthYear_Invalid"}, "invalid expiry")


# --------------------------------------------------------------------------- CVV, name

def validate_cvv(cvv: str, brand: Brand | None) -> str | None:
    """The checkout.js code for ``cvv`` on a card of ``brand``, or ``None`` if it is fine."""
    return _cvv_error(_text(cvv, "cvv"), brand, "", MODERN)


#: CVV lengths accepted for a number of no known brand.
UNKNOWN_BRAND_CVV_SIZES = (3, 4)


def _cvv_error(cvv: str, brand: Brand | None, digits: str, rules: ValidationRules) -> str | None:
    if rules.cvv_waivers and brand is not None and not brand.cvv_required:
        # The gateway waives the CVV for these brands; a value, if typed, must be digits.
        typed_ok = cvv == "" or (cvv.isascii() and cvv.isdigit() and len(cvv) <= 4)
        return None if typed_ok else "Cvv_Invalid"
    if cvv == "":
        return "Cvv_Empty"
    if rules.cvv_patterns is not None:
        patterns = rules.cvv_patterns
        if digits.startswith(patterns.prefixes):
            return None if re.fullmatch(patterns.matching, cvv) else "Cvv_Invalid"
        return None if re.search(patterns.other, cvv) else "Cvv_Invalid"
    sizes = brand.cvv_sizes if brand else UNKNOWN_BRAND_CVV_SIZES
    if not (cvv.isascii() and cvv.isdigit()) or len(cvv) not in sizes:
        return "Cvv_Invalid"
    return None


NAME_MIN, NAME_MAX = 2, 26
#: One character of a cardholder name, as a regex class valid in Python and JavaScript.
NAME_CHARACTER_CLASS = r"[A-Za-z0-9 \-.,]"


def validate_name(name: str) -> str | None:
    """The checkout.js code for a cardholder name, or ``None``.

    Latin letters, digits, space, ``-``, ``.`` and ``,``; 2–26 characters not
    counting spaces (as checkout.js counts them).
    """
    return _name_error(_text(name, "name"), MODERN)


def _name_error(name: str, rules: ValidationRules) -> str | None:
    text = name.strip()
    if not text:
        return "Name_Empty"
    if not re.fullmatch(rules.name_character_class + "+", text):
        return "Name_Invalid"
    length = len(text.replace(" ", ""))
    if length < NAME_MIN:
        return "Name_TooShort"
    if length > NAME_MAX:
        return "Name_TooLong"
    return None


# --------------------------------------------------------------------------- rule sets


class CvvPatterns(NamedTuple):
    """The legacy script's CVV rule: a number starting with one of ``prefixes`` needs
    a CVV that fully matches ``matching``; any other needs one that contains ``other``.
    Both are regexes valid in Python and JavaScript."""

    prefixes: tuple[str, ...]
    matching: str
    other: str


@dataclass(frozen=True, slots=True)
class ValidationRules:
    """Which checkout script's rules a validation follows, as data.

    :data:`MODERN` is ``createPaymentCryptogram`` (current checkout.js) and the default
    everywhere; :data:`LEGACY` is the legacy script's ``createCryptogramPacket``
    (docs/gateway.md §2.2, §2.4–§2.6, §7.4). The browser script gets the same values.
    """

    id: str
    #: Characters dropped from a card number before it is read.
    number_separators: str
    #: Whether a number must have one of its brand's lengths.
    number_lengths: bool
    #: Whether a past expiry, or one more than :data:`MAX_YEARS_AHEAD` years ahead, is refused.
    expiry_window: bool
    #: Whether a separate year field may have any number of digits (read modulo 100).
    any_year: bool
    #: Whether brands with ``cvv_required=False`` may leave the CVV empty.
    cvv_waivers: bool
    #: A pattern rule instead of each brand's CVV sizes (``None``: the sizes).
    cvv_patterns: CvvPatterns | None
    #: One character of a cardholder name, as a regex class valid in Python and JavaScript.
    name_character_class: str
    #: ``str.translate`` table that drops :attr:`number_separators`.
    separator_table: dict[int, int | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "separator_table", str.maketrans("", "", self.number_separators))

    def to_json(self) -> dict[str, Any]:
        """The rules as JSON-able data, for the browser script."""
        patterns = self.cvv_patterns
        return {
            "id": self.id,
            "numberSeparators": self.number_separators,
            "numberLengths": self.number_lengths,
            "expiryWindow": self.expiry_window,
            "anyYear": self.any_year,
            "cvvWaivers": self.cvv_waivers,
            "cvvPatterns": None if patterns is None else {
                "prefixes": list(patterns.prefixes),
                "matching": patterns.matching,
                "other": patterns.other,
            },
            "nameCharacterClass": self.name_character_class,
        }


MODERN = ValidationRules(
    id="modern",
    number_separators=" -",
    number_lengths=True,
    expiry_window=True,
    any_year=False,
    cvv_waivers=True,
    cvv_patterns=None,
    name_character_class=NAME_CHARACTER_CLASS,
)

#: The legacy script: only ASCII spaces leave the number and there is no length check;
#: the CVV is required for every brand, exactly four digits for ``34``/``37`` (its Amex
#: test) and otherwise any text containing three consecutive digits (``1234`` passes);
#: any integer year, no expiry window; the name may also hold an en dash.
LEGACY = ValidationRules(
    id="legacy",
    number_separators=" ",
    number_lengths=False,
    expiry_window=False,
    any_year=True,
    cvv_waivers=False,
    cvv_patterns=CvvPatterns(("34", "37"), "[0-9]{4}", "[0-9]{3}"),
    name_character_class="[A-Za-z0-9 \\-\u2013.,]",
)

_SEPARATORS = MODERN.separator_table


# --------------------------------------------------------------------------- whole card

class CardValidation(NamedTuple):
    """Every field's verdict at once. ``errors`` maps checkout.js field names to codes."""

    errors: dict[str, str]
    brand: Brand | None = None
    expiry: Expiry | None = None

    @property
    def is_valid(self) -> bool:
        """True when no field has an error."""
        return not self.errors

    def __repr__(self) -> str:
        brand = self.brand.id if self.brand else None
        return f"CardValidation(errors={self.errors!r}, brand={brand!r}, expiry={self.expiry!r})"


_month_cache: tuple[float, float, int] = (0.0, 0.0, 0)


def _utc_month_index() -> int:
    """``year * 12 + month`` of the current UTC time.

    The clock is read on every call; only the calendar arithmetic is reused while
    the reading stays inside the month it was computed for.
    """
    global _month_cache
    stamp = time.time()
    start, end, index = _month_cache
    if start <= stamp < end:
        return index
    now = datetime.fromtimestamp(stamp, UTC)
    first = datetime(now.year, now.month, 1, tzinfo=UTC)
    following = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    index = now.year * 12 + now.month
    _month_cache = (first.timestamp(), following.timestamp(), index)
    return index


def _month_index(now: datetime | None) -> int:
    return _utc_month_index() if now is None else now.year * 12 + now.month


def _expiry_window_error(expiry: Expiry, today: int, combined: bool) -> tuple[str, str] | None:
    """``(field, code)`` for an expiry that is past, or more than
    :data:`MAX_YEARS_AHEAD` years ahead of, the month ``today`` (``year * 12 + month``)."""
    card = expiry.year * 12 + expiry.month
    if today <= card <= today + 12 * MAX_YEARS_AHEAD:
        return None
    if combined:
        return "expDateMonthYear", "ExpDateMonthYear_Invalid"
    if expiry.year == (today - 1) // 12 and card < today:
        return "expDateMonth", "ExpDateMonth_Invalid"
    return "expDateYear", "ExpDateYear_Invalid"


def _parse_expiry_fields(
    exp_month: str | int | None,
    exp_year: str | int | None,
    exp_date: str | None,
    rules: ValidationRules,
) -> Expiry | dict[str, str]:
    """The expiry, or the errors of the fields it was given in."""
    if exp_date is not None:
        if not isinstance(exp_date, str):
            _text(exp_date, "expDateMonthYear")
        if not exp_date.strip():
            return {"expDateMonthYear": "ExpDateMonthYear_Empty"}
        try:
            return _parse_combined(exp_date)
        except CardError as exc:
            return exc.errors
    month = "" if exp_month is None else str(exp_month).strip()
    year = "" if exp_year is None else str(exp_year).strip()
    if month and year:
        try:
            return _expiry_from_parts(month, year, _year_modulo_100 if rules.any_year else _year)
        except CardError as exc:
            return exc.errors
    errors = {}
    if not month:
        errors["expDateMonth"] = "ExpDateMonth_Empty"
    if not year:
        errors["expDateYear"] = "ExpDateYear_Empty"
    return errors


def validate_expiry(
    exp_month: str | int | None = None,
    exp_year: str | int | None = None,
    exp_date: str | None = None,
    *,
    now: datetime | None = None,
) -> tuple[Expiry | None, dict[str, str]]:
    """Validate an expiry alone: the parsed :class:`Expiry` (or ``None``) and the errors.

    An expiry that is past, or more than 20 years ahead, is parsed but reported
    under its field's ``_Invalid`` code.
    """
    parsed = _parse_expiry_fields(exp_month, exp_year, exp_date, MODERN)
    if not isinstance(parsed, Expiry):
        return None, parsed
    error = _expiry_window_error(parsed, _month_index(now), exp_date is not None)
    return parsed, {} if error is None else dict([error])


def validate_card(
    number: str | None = None,
    *,
    exp_month: str | int | None = None,
    exp_year: str | int | None = None,
    exp_date: str | None = None,
    cvv: str | None = None,
    name: str | None = None,
    require_cvv: bool = True,
    now: datetime | None = None,
    rules: ValidationRules = MODERN,
) -> CardValidation:
    """Validate a whole card and report every field's error at once.

    The expiry comes either combined (``exp_date``, any checkout.js form) or as
    ``exp_month`` and ``exp_year``. ``name`` is checked only when given, as checkout.js
    does. ``now`` is the clock (aware; defaults to the current UTC time). ``rules``
    is :data:`MODERN` (current checkout.js) or :data:`LEGACY` (what the legacy
    script's ``createCryptogramPacket`` would say).
    """
    errors: dict[str, str] = {}
    brand: Brand | None = None
    if not isinstance(number, str):
        number = "" if number is None else _text(number, "cardNumber")
    digits = number.translate(rules.separator_table)
    if not digits:
        errors["cardNumber"] = "CardNumber_Empty"
    elif not (digits.isascii() and digits.isdigit()):
        errors["cardNumber"] = "CardNumber_Invalid"
    else:
        brand = _detect(digits)
        number_error = _number_error(digits, brand) if rules.number_lengths else (
            None if luhn_digits_valid(digits) else "CardNumber_Invalid"
        )
        if number_error:
            errors["cardNumber"] = number_error

    parsed = _parse_expiry_fields(exp_month, exp_year, exp_date, rules)
    expiry: Expiry | None = None
    if isinstance(parsed, Expiry):
        expiry = parsed
        if rules.expiry_window:
            window = _expiry_window_error(parsed, _month_index(now), exp_date is not None)
            if window is not None:
                errors[window[0]] = window[1]
    else:
        errors.update(parsed)

    if cvv is not None or require_cvv:
        if not isinstance(cvv, str):
            cvv = "" if cvv is None else _text(cvv, "cvv")
        cvv_error = _cvv_error(cvv.strip(), brand, digits, rules)
        if cvv_error:
            errors["cvv"] = cvv_error
    if name is not None:
        name_error = _name_error(_text(name, "name"), rules)
        if name_error:
            errors["name"] = name_error
    return CardValidation(errors, brand, expiry)


def brand_table() -> list[dict[str, Any]]:
    """The brand table as JSON-able data, for the browser scripts."""
    return [
        {
            "id": b.id,
            "name": b.name,
            "patterns": [list(p) for p in b.patterns],
            "lengths": list(b.lengths),
            "gaps": list(b.gaps),
            "cvv": {"name": b.cvv_name, "sizes": list(b.cvv_sizes), "required": b.cvv_required},
            "beats": list(b.beats),
        }
        for b in BRANDS
    ]


#: One prefix width's runs ``(lo, hi, brand_id)``: sorted, disjoint, inclusive.
_Runs = tuple[tuple[int, int, str], ...]

# prefix_table()'s runs, kept with the index they were read from.
_prefix_runs: tuple[tuple[dict[str, Brand], ...], tuple[tuple[int, _Runs], ...]] | None = None


def _runs_of(index: tuple[dict[str, Brand], ...]) -> tuple[tuple[int, _Runs], ...]:
    """The prefix index as runs of consecutive prefixes won by one brand, longest
    width first."""
    table = []
    for width in range(len(index) - 1, 0, -1):
        runs: list[tuple[int, int, str]] = []
        for value, brand_id in sorted((int(key), brand.id) for key, brand in index[width].items()):
            if runs and runs[-1][2] == brand_id and runs[-1][1] == value - 1:
                runs[-1] = (runs[-1][0], value, brand_id)
            else:
                runs.append((value, value, brand_id))
        if runs:
            table.append((width, tuple(runs)))
    return tuple(table)


def prefix_table() -> list[list[Any]]:
    """Brand detection as JSON-able data, for the browser's one detection routine
    (``static/checkout_kit/brands.js``).

    ``[[width, [[lo, hi, brand_id], ...]], ...]``, longest width first: the index
    :func:`detect_brand` looks up, as sorted disjoint ranges of prefixes of that many
    digits, each with the brand that wins it (``beats`` already applied). A number's
    brand is that of the first range holding its leading ``width`` digits, so the
    browser only looks up and never settles a tie of its own.
    """
    global _prefix_runs
    # Read from the index itself, not from BRANDS again, so that the browser's answer
    # is Python's by construction; kept, as walking the index takes milliseconds.
    if _prefix_runs is None or _prefix_runs[0] is not _PREFIX_INDEX:
        _prefix_runs = (_PREFIX_INDEX, _runs_of(_PREFIX_INDEX))
    return [[width, [list(run) for run in runs]] for width, runs in _prefix_runs[1]]
