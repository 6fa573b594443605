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

from ...cards import luhn_valid

__all__ = ["DEFAULT", "EXTRA_DECLINES", "TEST_CARDS", "CardBehaviour", "behaviour_for"]


@dataclass(frozen=True, slots=True)
class CardBehaviour:
    """How the sandbox treats one card number."""

    label: str
    three_ds: bool
    charge_reason: int  # ReasonCode of a cryptogram payment (0 = approved)
    token_reason: int | None  # ReasonCode of a token payment; None: never tokenised


_OK, _NSF = 0, 5051

# (label, number, 3-D Secure, cryptogram outcome, token outcome) — docs/gateway.md §8.
_TABLE: tuple[tuple[str, str, bool, int, int | None], ...] = (
    ("Visa", "4242424242424242", True, _OK, _OK),
    ("Mastercard", "5555555555554444", True, _OK, _OK),
    ("MIR", "2200000000000004", True, _OK, _OK),
    ("Visa", "4012888888881881", True, _NSF, None),
    ("Mastercard", "5105105105105100", True, _NSF, None),
    ("MIR", "2202202202202200", True, _NSF, None),
    ("Visa", "4000000000003055", False, _OK, _OK),
    ("Mastercard", "5205000000003055", False, _OK, _OK),
    ("MIR", "2202000000003055", False, _OK, _OK),
    ("Visa", "4111111111111111", False, _OK, _NSF),
    ("Mastercard", "5200828282828210", False, _OK, _NSF),
    ("MIR", "2200000022222222", False, _OK, _NSF),
    ("Visa", "4000056655665556", False, _NSF, None),
    ("Mastercard", "5404000000000043", False, _NSF, None),
    ("MIR", "2203000000000043", False, _NSF, None),
)

TEST_CARDS: dict[str, CardBehaviour] = {
    number: CardBehaviour(f"{label}, {'with' if tds else 'no'} 3-D Secure", tds, charge, token)
    for label, number, tds, charge, token in _TABLE
}

#: Reason codes that have a magic decline card.
EXTRA_REASON_CODES: tuple[int, ...] = (
    5001, 5003, 5004, 5005, 5006, 5007, 5012, 5013, 5014, 5015, 5019, 5033, 5034, 5036,
    5041, 5043, 5054, 5057, 5059, 5061, 5063, 5065, 5082, 5091, 5092, 5096, 5204, 5300,
)


def _with_check_digit(body: str) -> str:
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


EXTRA_DECLINES: dict[str, CardBehaviour] = {
    _with_check_digit(f"400000{code}00000"): CardBehaviour(
        f"Visa, declines {code}", False, code, code)
    for code in EXTRA_REASON_CODES
}

DEFAULT = CardBehaviour("any other valid card", False, _OK, _OK)


def behaviour_for(number: str) -> CardBehaviour:
    """The behaviour of a (normalized) card number."""
    return TEST_CARDS.get(number) or EXTRA_DECLINES.get(number) or DEFAULT
