"""Python and the browser agree: on validation (shared vectors and a random sweep)
and on cryptograms (300 random valid cards of every brand built in Chromium, opened
in Python)."""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from checkout_kit import cryptogram
from checkout_kit.cards import BRANDS, LEGACY, MODERN, Brand, detect_brand, validate_card

from .conftest import LiveSandbox

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors"
FIELD_TO_ARG = {
    "cardNumber": "number",
    "expDateMonth": "exp_month",
    "expDateYear": "exp_year",
    "expDateMonthYear": "exp_date",
    "cvv": "cvv",
    "name": "name",
}
JS_VALIDATE_ALL = """([cases, now, rules]) => cases.map(
    (card, i) => cp.sandbox.validate(card, now, rules[i]))"""
RULES = {"modern": MODERN, "legacy": LEGACY}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTOR_DIR / name).read_text("utf-8"))
    return data


def python_verdict(card: dict[str, str], now: datetime, rules: str = "modern") -> dict[str, Any]:
    result = validate_card(
        now=now, rules=RULES[rules], **{FIELD_TO_ARG[k]: v for k, v in card.items()}
    )
    return {"errors": result.errors, "brand": result.brand.id if result.brand else None}


def js_verdicts(
    page: Any, cards: list[dict[str, str]], now: str, rules: list[str] | None = None
) -> list[dict[str, Any]]:
    results = page.evaluate(JS_VALIDATE_ALL, [cards, now, rules or ["modern"] * len(cards)])
    return [{"errors": r["errors"], "brand": r["brand"]} for r in results]


@pytest.fixture
def checkout_page(page: Any, shop: str) -> Any:
    page.goto(f"{shop}/checkout.html")
    return page


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("vector_file", ["validation.json", "validation_js.json"])
def test_vector_files(checkout_page: Any, vector_file: str) -> None:
    """The shared file (the lead's) and the JS-specific one: Python and JS both give
    the expected codes and brand for every case, under its rules (modern or legacy)."""
    vectors = load(vector_file)
    now = datetime.fromisoformat(vectors["now"])
    cases = vectors["cases"]
    rules = [c.get("rules", "modern") for c in cases]
    got = js_verdicts(checkout_page, [c["card"] for c in cases], vectors["now"], rules)
    for case, js, ruleset in zip(cases, got, rules, strict=True):
        expected = {"errors": case["errors"], "brand": case["brand"]}
        assert python_verdict(case["card"], now, ruleset) == expected, case["id"]
        assert js == expected, case["id"]


# Pieces the random sweep glues together: digits, separators, letters and the
# characters on which Python and JavaScript disagree (whitespace, Unicode digits).
ATOMS = [
    "0", "1", "2", "4", "5", "9", "12", "13", "30", "2030", "4242", "00", "2200", "5614",
    " ", "-", "/", ".", ",", "a", "Z", "ivan", "\t", "\n", "\x1c", "\x85", "\xa0", "\ufeff",
    "\u3000", "\u2013", "٣", "２", "é", "Иван",
]


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(ATOMS) for _ in range(rng.randint(0, 6)))


def random_luhn_number(rng: random.Random, brand: Brand) -> str:
    """A random number of ``brand``: prefix from one of its ranges, Luhn-valid."""
    while True:
        lo, hi = rng.choice(brand.patterns)
        prefix = str(rng.randint(lo, hi))
        length = rng.choice(brand.lengths)
        body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
        for check in "0123456789":
            number = body + check
            if validate_card(number, exp_date="12/40", cvv="123").errors.get("cardNumber") is None:
                break
        if detect_brand(number) is brand:  # a longer prefix of another brand may win
            return number


def random_card(rng: random.Random) -> dict[str, str]:
    card: dict[str, str] = {}
    if rng.random() < 0.9:
        card["cardNumber"] = (
            random_luhn_number(rng, rng.choice(BRANDS)) if rng.random() < 0.5
            else random_text(rng)
        )
    if rng.random() < 0.5:
        card["expDateMonthYear"] = random_text(rng)
    else:
        for field in ("expDateMonth", "expDateYear"):
            if rng.random() < 0.9:
                card[field] = random_text(rng)
    if rng.random() < 0.9:
        card["cvv"] = rng.choice(["", "123", "1234", "12", random_text(rng)])
    if rng.random() < 0.4:
        card["name"] = random_text(rng)
    return card


@pytest.mark.parametrize("rules", ["modern", "legacy"])
def test_random_sweep_matches_python(checkout_page: Any, rules: str) -> None:
    rng = random.Random(20261127)
    now = "2026-11-27T12:00:00+00:00"
    cards = [random_card(rng) for _ in range(2000)]
    got = js_verdicts(checkout_page, cards, now, [rules] * len(cards))
    mismatches = [
        (card, js, py)
        for card, js in zip(cards, got, strict=True)
        if js != (py := python_verdict(card, datetime.fromisoformat(now), rules))
    ]
    assert mismatches == []


# --------------------------------------------------------------------------- cryptograms


def formatted_number(rng: random.Random, number: str, brand: Brand) -> str:
    style = rng.choice(["plain", "gaps", "dashes"])
    if style == "plain":
        return number
    cuts = [0, *(g for g in brand.gaps if g < len(number)), len(number)]
    parts = [number[a:b] for a, b in itertools.pairwise(cuts)]
    return (" " if style == "gaps" else "-").join(parts)


def expiry_fields(rng: random.Random, year: int, month: int) -> dict[str, str]:
    yy, mm = f"{year % 100:02d}", f"{month:02d}"
    choice = rng.randrange(5)
    if choice == 0:
        return {"expDateMonth": str(month), "expDateYear": yy}
    if choice == 1:
        return {"expDateMonth": mm, "expDateYear": str(year)}
    return {"expDateMonthYear": [f"{mm}/{yy}", f"{mm}{yy}", f"{month}/{year}"][choice - 2]}


CARDS_PER_BRAND = 300


def test_300_random_cards_of_every_brand_round_trip(
    checkout_page: Any, live_sandbox: LiveSandbox
) -> None:
    rng = random.Random(4242)
    today = datetime.now(UTC)
    cases = []
    for i in range(CARDS_PER_BRAND * len(BRANDS)):
        brand = BRANDS[i % len(BRANDS)]
        number = random_luhn_number(rng, brand)
        ahead = rng.randint(1, 12 * 20 - 2)
        months = today.year * 12 + today.month - 1 + ahead
        year, month = divmod(months, 12)
        month += 1
        cvv = "".join(rng.choice("0123456789") for _ in range(rng.choice(brand.cvv_sizes)))
        if not brand.cvv_required and rng.random() < 0.5:
            cvv = ""
        # Any printable ASCII but "@", the packet's separator (no real Public ID has one,
        # and the legacy script's CVV may: docs/gateway.md §2.5).
        printable = [chr(c) for c in range(0x20, 0x7F) if c != ord("@")]
        public_id = "".join(rng.choice(printable) for _ in range(rng.randint(1, 40)))
        card = {"cardNumber": formatted_number(rng, number, brand), "cvv": cvv,
                **expiry_fields(rng, year, month)}
        cases.append({"publicId": public_id, "card": card,
                      "expect": (number, month, year, cvv, public_id)})
    packets = checkout_page.evaluate(
        """async (cases) => {
            const out = [];
            for (const c of cases) {
                out.push(await new cp.Checkout({publicId: c.publicId})
                    .createPaymentCryptogram(c.card).catch((errors) => ({errors})));
            }
            return out;
        }""",
        cases,
    )
    version = live_sandbox.sandbox.settings.key_version
    assert len(packets) == CARDS_PER_BRAND * len(BRANDS)
    seen_brands: Counter[Brand | None] = Counter()
    for case, packet in zip(cases, packets, strict=True):
        assert isinstance(packet, str), (case["card"], packet)
        assert len(packet) == 362  # full-length ciphertext every time
        opened = cryptogram.decrypt(packet, live_sandbox.sandbox.keys)
        assert opened.header.key_version == version
        got = (opened.card_number, opened.exp_month, opened.exp_year, opened.cvv,
               opened.public_id)
        assert got == tuple(case["expect"]), case["card"]
        seen_brands[detect_brand(opened.card_number or "")] += 1
    assert seen_brands == dict.fromkeys(BRANDS, CARDS_PER_BRAND)


# A deterministic crypto.getRandomValues (mulberry32, fixed seed) that also hands out
# a 0x00 every 7th byte, so the padding's redraw-zeros path runs on every packet.
SEEDED_RANDOM = """(() => {
    let seed = 0x5eed1234, served = 0;
    window.__zeros = 0;
    const next = () => {
        seed = (seed + 0x6d2b79f5) | 0;
        let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) & 0xff;
    };
    crypto.getRandomValues = (array) => {
        const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
        for (let i = 0; i < bytes.length; i++) {
            bytes[i] = ++served % 7 === 0 ? 0 : next();
            if (bytes[i] === 0) window.__zeros++;
        }
        return array;
    };
})();"""

FIND_LEADING_ZERO = """async (card) => {
    for (let attempt = 1; attempt <= 20000; attempt++) {
        const packet = await new cp.Checkout({publicId: 'pk_zero'}).createPaymentCryptogram(card);
        if (atob(packet.slice(18)).charCodeAt(0) === 0) return {packet, attempt, zeros: __zeros};
    }
    return null;
}"""


def test_ciphertext_with_a_leading_zero_byte_keeps_full_length(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    """A ciphertext below 2**(8*(k-1)) is still sent as k bytes (362-char packet)."""
    page.add_init_script(SEEDED_RANDOM)
    page.goto(f"{shop}/checkout.html")
    card = {"cardNumber": "4242 4242 4242 4242", "expDateMonthYear": "12/40", "cvv": "123"}
    found = page.evaluate(FIND_LEADING_ZERO, card)
    assert found is not None, "no leading-zero ciphertext in 20000 packets"
    assert found["zeros"] > 0  # the stub did hand out zeros for the padding to redraw
    packet = found["packet"]
    assert len(packet) == 362
    opened = cryptogram.decrypt(packet, live_sandbox.sandbox.keys)
    assert (opened.card_number, opened.exp_month, opened.exp_year, opened.cvv,
            opened.public_id) == ("4242424242424242", 12, 2040, "123", "pk_zero")
