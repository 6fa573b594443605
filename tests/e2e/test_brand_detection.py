"""Both browsers detect card brands as Python does, with one routine (issue 15 §9).

The shop's card form and the sandbox's checkout script both run
``static/checkout_kit/brands.js`` over ``cards.brand_table()`` and
``cards.prefix_table()``. In Chromium, every card number of ``tests/vectors`` (and
each of its prefixes, as the payer types it), both ends of every published range and
a seeded sweep get the brand ``cards.detect_brand`` gives; and a brand added to
``cards.BRANDS`` is detected in both browsers with no JavaScript edited.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import pytest

from checkout_kit import cards
from checkout_kit.errors import CardError

from .conftest import LiveSandbox
from .test_shop_form import LiveShop, start_shop, watch

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors"

# The form's own input handler, run for each number: it detects the brand and marks
# the input with it, as it does while a payer types.
FORM_DETECT_ALL = """(numbers) => {
    const input = document.getElementById('ck-number');
    return numbers.map((number) => {
        input.value = number;
        input.dispatchEvent(new Event('input', { bubbles: true }));
        return input.dataset.brand || null;
    });
}"""
SANDBOX_DETECT_ALL = "(numbers) => numbers.map((n) => cp.sandbox.detectBrand(n))"
#: Typed text that JavaScript would read as a number where Python reads no prefix
#: ("3e2" is 300 to JavaScript, Diners Club's range; "0x12C" is 300 too).
ODDITIES = ["3e20000000000000", "0x12C0000000000000", "6.011000000000000",
            "+4242424242424242", "\u0664242424242424242", "22\u00a00000000000000",
            "30\t50000000000000", "1e30", "Infinity"]


def _load(name: str) -> Any:
    return json.loads((VECTOR_DIR / name).read_text("utf-8"))


def vector_numbers() -> list[str]:
    """Every card number written in tests/vectors, as written there."""
    numbers = [case["number"] for case in _load("brands.json")["cases"]]
    numbers += [card["number"] for card in _load("test_cards.json")["cards"]]
    numbers += [card["number"] for card in _load("sandbox_cards.json")["cards"]]
    for name in ("validation.json", "validation_js.json"):
        numbers += [case["card"]["cardNumber"] for case in _load(name)["cases"]
                    if "cardNumber" in case["card"]]
    return numbers


def published_edges() -> list[str]:
    """Both ends of every range the networks publish (tests/vectors/brands.json), and
    the numbers just outside them, as 16 digits."""
    edges = []
    for brand, ranges in _load("brands.json")["published"].items():
        if brand.startswith("_"):
            continue
        for text in ranges:
            lo, hi = int(text.split("-")[0]), int(text.split("-")[-1])
            edges += [str(lo).ljust(16, "0"), str(hi).ljust(16, "9"),
                      str(lo - 1).ljust(16, "9"), str(hi + 1).ljust(16, "0")]
    return edges


def digit_numbers() -> list[str]:
    """What the form's handler detects on: the digits of every vector number and of
    every published edge, each prefix of them, and a seeded sweep."""
    found: set[str] = set()
    for number in vector_numbers() + published_edges():
        try:
            digits = cards.normalize_number(number)
        except CardError:
            continue  # not a number the form could be typed with
        found.update(digits[:cut] for cut in range(1, len(digits) + 1))
    rng = random.Random(915)
    found.update("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 19)))
                 for _ in range(500))
    return sorted(found)


def python_brands(numbers: list[str]) -> list[str | None]:
    return [brand.id if (brand := cards.detect_brand(n)) else None for n in numbers]


def open_form(page: Any, shop: LiveShop, invoice: str) -> None:
    payment = shop.create(invoice)
    page.goto(payment.checkout_url + "/form", wait_until="load")


def test_the_card_form_detects_as_python(
    page: Any, live_sandbox: LiveSandbox, tmp_path: Path,
) -> None:
    numbers = digit_numbers()
    watch(page)
    live_shop = start_shop(live_sandbox, tmp_path)
    try:
        open_form(page, live_shop, "brands-vectors")
        assert page.evaluate(FORM_DETECT_ALL, numbers) == python_brands(numbers)
    finally:
        live_shop.stop()
    assert page.page_errors == [] and page.csp_errors == []


def test_the_sandbox_checkout_script_detects_as_python(page: Any, shop: str) -> None:
    # As typed, too: spaces, dashes, tabs, full-width digits (cards.detect_brand drops
    # spaces and dashes, as cp.sandbox.detectBrand does).
    numbers = digit_numbers() + [n for n in vector_numbers() if n] + ODDITIES
    page.goto(f"{shop}/checkout.html")
    assert page.evaluate(SANDBOX_DETECT_ALL, numbers) == python_brands(numbers)
    assert page.page_errors == []


def test_a_brand_added_to_the_table_is_detected_in_both_browsers(
    page: Any, live_sandbox: LiveSandbox, shop: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A brand in cards.BRANDS (here ``7777…``, which no network has) reaches both
    browsers as data: the form's badge and the sandbox's detection name it."""
    acme = dataclasses.replace(cards.BRANDS_BY_ID["visa"], id="acme", name="Acme",
                               patterns=((7777, 7777),))
    brands = (*cards.BRANDS, acme)
    # What importing cards with the brand in its table would have built.
    monkeypatch.setattr(cards, "BRANDS", brands)
    monkeypatch.setattr(cards, "_PREFIX_INDEX", cards._build_prefix_index(brands))
    shop_with_acme = start_shop(live_sandbox, tmp_path)  # its form data made afresh
    try:
        open_form(page, shop_with_acme, "brands-acme")
        page.type("#ck-number", "7777000000000000")
        assert page.text_content("#ck-brand") == "Acme"
        assert page.get_attribute("#ck-number", "data-brand") == "acme"
        page.fill("#ck-number", "")
        page.type("#ck-number", "4242")
        assert page.text_content("#ck-brand") == "Visa"
    finally:
        shop_with_acme.stop()
    page.goto(f"{shop}/checkout.html")
    assert page.evaluate(SANDBOX_DETECT_ALL, ["7777000000000000", "7776000000000000"]) == [
        "acme", None]
    assert page.evaluate(
        "() => cp.sandbox.validate({cardNumber: '7777 0000 0000 0000'}).brand") == "acme"
