"""The sandbox's test cards are derived from the core's tables, not retyped."""

from __future__ import annotations

from checkout_kit.cards import detect_brand
from checkout_kit.reasons import REASONS
from checkout_kit.sandbox.rules.testcards import EXTRA_DECLINES, TEST_CARDS, behaviour_for


def test_every_decline_code_has_a_magic_card_but_those_with_rules_of_their_own() -> None:
    codes = {card.charge_reason for card in EXTRA_DECLINES.values()}
    declines = {code for code in REASONS if 5000 <= code < 6000}
    assert codes == declines - {5051, 5030, 5206, 5207}
    for number, card in EXTRA_DECLINES.items():
        assert behaviour_for(number) is card and card.token_reason == card.charge_reason


def test_labels_name_the_brand_of_checkout_kit_cards() -> None:
    for number, card in [*TEST_CARDS.items(), *EXTRA_DECLINES.items()]:
        brand = detect_brand(number)
        assert brand is not None and card.label.startswith(f"{brand.name}, "), number
