"""The sandbox's test cards, as data.

``TEST_CARDS`` is exactly the gateway's documented table (docs/gateway.md §8): which cards
ask for 3-D Secure and how a cryptogram payment and a later token payment end
(``0`` approved, ``5051`` insufficient funds, ``None`` where the table says "—",
because a declined card never gets a token).

``EXTRA_DECLINES`` is the sandbox's own addition: one Visa number per reason code,
``400000`` + the code + ``00000`` + a Luhn digit, that declines a cryptogram payment
with that code (no 3-D Secure). A declined payment issues no token, so these cards
never reach a token payment. Any other valid card is approved without 3-D Secure.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...cards import detect_brand, luhn_valid
from ...reasons import REASONS

__all__ = ["DEFAULT", "EXTRA_DECLINES", "TEST_CARDS", "CardBehaviour", "behaviour_for"]


@dataclass(frozen=True, slots=True)
class CardBehaviour:
    """How the sandbox treats one card number."""

    label: str
    three_ds: bool
    charge_reason: int  # ReasonCode of a cryptogram payment (0 = approved)
    token_reason: int | None  # ReasonCode of a token payment; None: never tokenised


_OK, _NSF = 0, 5051

# (number, 3-D Secure, cryptogram outcome, token outcome) — docs/gateway.md §8; the
# brand shown is checkout_kit.cards'.
_TABLE: tuple[tuple[str, bool, int, int | None], ...] = (
    ("4242424242424242", True, _OK, _OK),
    ("5555555555554444", True, _OK, _OK),
    ("2200000000000004", True, _OK, _OK),
    ("4012888888881881", True, _NSF, None),
    ("5105105105105100", True, _NSF, None),
    ("2202202202202200", True, _NSF, None),
    ("4000000000003055", False, _OK, _OK),
    ("5205000000003055", False, _OK, _OK),
    ("2202000000003055", False, _OK, _OK),
    ("4111111111111111", False, _OK, _NSF),
    ("5200828282828210", False, _OK, _NSF),
    ("2200000022222222", False, _OK, _NSF),
    ("4000056655665556", False, _NSF, None),
    ("5404000000000043", False, _NSF, None),
    ("2203000000000043", False, _NSF, None),
)


def _brand(number: str) -> str:
    brand = detect_brand(number)
    if brand is None:  # pragma: no cover - every card here is of a known brand
        raise ValueError(f"no brand for test card {number[:6]}…")
    return brand.name


TEST_CARDS: dict[str, CardBehaviour] = {
    number: CardBehaviour(f"{_brand(number)}, {'with' if tds else 'no'} 3-D Secure",
                          tds, charge, token)
    for number, tds, charge, token in _TABLE
}

#: Decline codes the sandbox gives by rules of their own, not by a magic card:
#: insufficient funds (the documented cards), an unreadable cryptogram, 3-D Secure.
_OWN_RULES = frozenset({_NSF, 5030, 5206, 5207})

#: Reason codes that have a magic decline card: every decline (5xxx) of
#: :data:`checkout_kit.reasons.REASONS` but those.
EXTRA_REASON_CODES: tuple[int, ...] = tuple(
    code for code in sorted(REASONS) if 5000 <= code < 6000 and code not in _OWN_RULES)


def _with_check_digit(body: str) -> str:
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


_EXTRA_NUMBERS = {code: _with_check_digit(f"400000{code}00000") for code in EXTRA_REASON_CODES}

EXTRA_DECLINES: dict[str, CardBehaviour] = {
    number: CardBehaviour(f"{_brand(number)}, declines {code}", False, code, code)
    for code, number in _EXTRA_NUMBERS.items()
}

DEFAULT = CardBehaviour("any other valid card", False, _OK, _OK)


def behaviour_for(number: str) -> CardBehaviour:
    """The behaviour of a (normalized) card number."""
    return TEST_CARDS.get(number) or EXTRA_DECLINES.get(number) or DEFAULT
