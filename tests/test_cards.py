"""Tests for checkout_kit.cards: vectors from tests/vectors and hypothesis properties."""

from __future__ import annotations

import dataclasses
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from checkout_kit import cards
from checkout_kit.cards import (
    BRANDS,
    BRANDS_BY_ID,
    Expiry,
    candidate_brands,
    check_number,
    detect_brand,
    expiry_from_parts,
    format_number,
    luhn_valid,
    mask_number,
    normalize_number,
    parse_expiry,
    validate_card,
)
from checkout_kit.errors import CardError

VECTORS = Path(__file__).parent / "vectors"


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def reference_luhn(number: str) -> bool:
    """A deliberately plain Luhn to compare the fast one against."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0 and total > 0


# --------------------------------------------------------------------------- vectors

@pytest.mark.parametrize("card", load("test_cards.json")["cards"], ids=lambda c: c["number"])
def test_official_test_cards(card: dict[str, Any]) -> None:
    assert luhn_valid(card["number"])
    brand = detect_brand(card["number"])
    assert brand is not None and brand.id == card["brand"]
    assert check_number(card["number"]).is_valid


@pytest.mark.parametrize("case", load("brands.json")["cases"], ids=lambda c: c["number"])
def test_brand_ranges(case: dict[str, Any]) -> None:
    brand = detect_brand(case["number"])
    assert (brand.id if brand else None) == case["brand"]


@pytest.mark.parametrize("case", load("expiry.json")["combined"], ids=lambda c: c["value"])
def test_combined_expiry_forms(case: dict[str, Any]) -> None:
    if isinstance(case["expect"], list):
        assert parse_expiry(case["value"]) == Expiry(*case["expect"])
    else:
        with pytest.raises(CardError) as info:
            parse_expiry(case["value"])
        assert info.value.errors == {"expDateMonthYear": case["expect"]}


@pytest.mark.parametrize("case", load("expiry.json")["parts"], ids=str)
def test_expiry_parts(case: dict[str, Any]) -> None:
    if isinstance(case["expect"], list):
        assert expiry_from_parts(case["month"], case["year"]) == Expiry(*case["expect"])
    else:
        with pytest.raises(CardError) as info:
            expiry_from_parts(case["month"], case["year"])
        assert info.value.errors == case["expect"]


_VALIDATION = load("validation.json")
_FIELD_TO_ARG = {
    "cardNumber": "number",
    "expDateMonth": "exp_month",
    "expDateYear": "exp_year",
    "expDateMonthYear": "exp_date",
    "cvv": "cvv",
    "name": "name",
}


_RULES = {"modern": cards.MODERN, "legacy": cards.LEGACY}
_JS_VALIDATION = load("validation_js.json")


@pytest.mark.parametrize(
    ("now", "case"),
    [(_VALIDATION["now"], c) for c in _VALIDATION["cases"]]
    + [(_JS_VALIDATION["now"], c) for c in _JS_VALIDATION["cases"]],
    ids=lambda c: c["id"] if isinstance(c, dict) else "",
)
def test_validation_vectors(now: str, case: dict[str, Any]) -> None:
    """Both vector files (tests/e2e/test_parity.py runs them in Chromium too)."""
    kwargs = {_FIELD_TO_ARG[k]: v for k, v in case["card"].items()}
    rules = _RULES[case.get("rules", "modern")]
    result = validate_card(now=datetime.fromisoformat(now), rules=rules, **kwargs)
    assert result.errors == case["errors"]
    assert (result.brand.id if result.brand else None) == case["brand"]
    assert result.is_valid is (not case["errors"])


# --------------------------------------------------------------------------- units

def test_normalize_drops_spaces_and_dashes_only() -> None:
    assert normalize_number(" 4242-4242 4242 4242 ") == "4242424242424242"
    for bad in ("4242.4242", "4242/4242", "４２４２", "4242\t4242"):
        with pytest.raises(CardError) as info:
            normalize_number(bad)
        assert info.value.errors == {"cardNumber": "CardNumber_Invalid"}


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: validate_card(4242424242424242, exp_date="12/30", cvv="123"), "cardNumber"),
        (lambda: validate_card("4242424242424242", exp_date="12/30", cvv=123), "cvv"),
        (lambda: validate_card("4242424242424242", exp_date=1230, cvv="123"), "expDateMonthYear"),
        (lambda: validate_card("4242424242424242", exp_date="12/30", name=b"IVAN"), "name"),
        (lambda: luhn_valid(4242424242424242), "cardNumber"),
        (lambda: detect_brand(None), "cardNumber"),
        (lambda: check_number(42), "cardNumber"),
        (lambda: mask_number(4242424242424242), "cardNumber"),
        (lambda: parse_expiry(1230), "expDateMonthYear"),
    ],
)
def test_wrong_types_raise_card_error(call: Any, field: str) -> None:
    with pytest.raises(CardError) as info:
        call()
    assert set(info.value.errors) == {field}
    assert "4242424242424242" not in str(info.value)


def test_all_zero_number_fails_luhn() -> None:
    assert not luhn_valid("0000000000000000")
    assert not luhn_valid("")
    assert not luhn_valid("0")


def test_partial_numbers_as_typed() -> None:
    assert {b.id for b in candidate_brands("2")} == {"mir", "mastercard", "jcb"}
    # "22" is no brand yet: both brands starting 22 remain, in table order.
    assert detect_brand("22") is None
    assert [b.id for b in candidate_brands("22")] == ["mastercard", "mir"]
    assert [b.id for b in candidate_brands("220")] == ["mir"]
    assert [b.id for b in candidate_brands("2221")] == ["mastercard"]
    assert detect_brand("2201") is BRANDS_BY_ID["mir"]
    assert detect_brand("2221") is BRANDS_BY_ID["mastercard"]
    assert candidate_brands("") == BRANDS
    assert candidate_brands("4x") == ()
    progress = check_number("4242 4242")
    assert progress.is_potentially_valid and not progress.is_valid
    assert progress.error == "CardNumber_Invalid"
    done_wrong = check_number("5555555555554445")  # Mastercard is 16 digits only
    assert not done_wrong.is_potentially_valid
    visa_wrong = check_number("4242424242424241")  # Visa may still grow to 18/19
    assert visa_wrong.is_potentially_valid and not visa_wrong.is_valid
    assert not check_number("42x").is_potentially_valid


def test_six_catch_all_does_not_swallow_unionpay_or_discover() -> None:
    assert detect_brand("6") is BRANDS_BY_ID["maestro"]
    assert detect_brand("62") is BRANDS_BY_ID["unionpay"]
    assert detect_brand("6011") is BRANDS_BY_ID["discover"]
    assert detect_brand("65") is BRANDS_BY_ID["discover"]


def test_mask_and_format() -> None:
    assert mask_number("4242 4242 4242 4242") == "424242******4242"
    assert mask_number("378282246310005") == "378282*****0005"
    assert mask_number("12345") == "*2345"
    assert format_number("378282246310005") == "3782 822463 10005"
    assert format_number("4242424242424242") == "4242 4242 4242 4242"
    assert format_number("4242424242424242424") == "4242 4242 4242 4242424"


def test_expiry_helpers() -> None:
    exp = Expiry(2030, 12)
    assert exp.yymm() == "3012" and exp.mm_yy() == "12/30"
    last_day = datetime(2030, 12, 31, 23, 59, tzinfo=UTC)
    assert not exp.is_expired(last_day)
    assert exp.is_expired(datetime(2031, 1, 1, tzinfo=UTC))
    with pytest.raises(CardError):
        Expiry(2030, 13)


def test_validate_uses_clock_default() -> None:
    # With the real clock, a card expiring next year is valid and one from 2001 is not.
    next_year = datetime.now(UTC).year + 1
    assert validate_card("4242424242424242", exp_month=1, exp_year=next_year, cvv="123").is_valid
    assert not validate_card("4242424242424242", exp_date="01/01", cvv="123").is_valid


def test_month_index_follows_the_clock_across_a_month_boundary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    end_of_november = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC).timestamp()
    monkeypatch.setattr(cards, "_month_cache", (0.0, 0.0, 0))
    monkeypatch.setattr(cards.time, "time", lambda: end_of_november)
    card = dict(exp_date="11/26", cvv="123")
    assert validate_card("4242424242424242", **card).is_valid
    monkeypatch.setattr(cards.time, "time", lambda: end_of_november + 1)
    assert validate_card("4242424242424242", **card).errors == {
        "expDateMonthYear": "ExpDateMonthYear_Invalid"
    }


def test_cvv_optional_when_not_required() -> None:
    result = validate_card("4242424242424242", exp_date="12/30", require_cvv=False,
                           now=datetime(2026, 1, 1, tzinfo=UTC))
    assert result.is_valid


def test_errors_and_reprs_never_show_the_number_or_cvv() -> None:
    number, cvv = "4111111111111111", "987"
    result = validate_card(number, exp_date="13/99", cvv=cvv)
    assert number not in repr(result) and cvv not in repr(result)
    assert number not in repr(check_number(number))
    try:
        normalize_number(number + "?")
    except CardError as exc:
        assert number not in str(exc)
    else:  # pragma: no cover
        pytest.fail("expected CardError")


def test_brand_table_is_json_data() -> None:
    table = cards.brand_table()
    assert json.loads(json.dumps(table)) == table
    assert {row["id"] for row in table} == {
        "visa", "mastercard", "mir", "maestro", "american-express", "jcb", "unionpay",
        "diners-club", "discover", "humo", "uzcard", "troy",
    }
    mir = next(row for row in table if row["id"] == "mir")
    assert mir["patterns"] == [[2200, 2204]] and "mastercard" in mir["beats"]


def test_prefix_table_is_the_detection_index() -> None:
    """The browser's detection data (static/checkout_kit/brands.js reads it) holds every
    prefix of the index detect_brand looks up, with the same brand, and nothing else:
    longest width first, each width's runs sorted and disjoint."""
    table = cards.prefix_table()
    assert json.loads(json.dumps(table)) == table
    index = cards._PREFIX_INDEX
    assert [width for width, _ in table] == sorted(
        (w for w in range(1, len(index)) if index[w]), reverse=True)
    for width, runs in table:
        assert runs == sorted(runs)
        assert all(hi < next_lo for (_, hi, _), (next_lo, _, _) in itertools.pairwise(runs))
        held = {str(n): brand_id for lo, hi, brand_id in runs for n in range(lo, hi + 1)}
        assert held == {key: brand.id for key, brand in index[width].items()}, width


def test_prefix_table_follows_the_table() -> None:
    """A brand added to the table is in the browser's data, ties settled as in Python."""
    acme = dataclasses.replace(BRANDS_BY_ID["visa"], id="acme", patterns=((7770, 7779),))
    rival = dataclasses.replace(acme, id="rival", patterns=((7775, 7775),), beats=("acme",))
    runs = dict(cards._runs_of(cards._build_prefix_index((*BRANDS, acme, rival))))
    assert [run for run in runs[4] if run[2] in ("acme", "rival")] == [
        (7770, 7774, "acme"), (7775, 7775, "rival"), (7776, 7779, "acme")]


# --------------------------------------------------------------------------- properties

digits16 = st.text(alphabet="0123456789", min_size=12, max_size=19)


@given(digits16)
def test_luhn_matches_reference(number: str) -> None:
    assert luhn_valid(number) == reference_luhn(number)


@given(digits16, st.data())
def test_any_single_changed_digit_breaks_luhn(number: str, data: st.DataObject) -> None:
    # Complete the number so it is valid, then change one digit.
    body = number[:-1]
    assume(body.strip("0"))  # an all-zero body has no valid completion
    valid = next(body + d for d in "0123456789" if reference_luhn(body + d))
    pos = data.draw(st.integers(0, len(valid) - 1))
    new_digit = data.draw(st.sampled_from([d for d in "0123456789" if d != valid[pos]]))
    changed = valid[:pos] + new_digit + valid[pos + 1:]
    assert luhn_valid(valid)
    assert not luhn_valid(changed)


def _matches(brand_id: str, number: str) -> list[int]:
    """Lengths of every pattern of ``brand_id`` that a full number matches."""
    return [
        len(str(lo))
        for lo, hi in BRANDS_BY_ID[brand_id].patterns
        if lo <= int(number[: len(str(lo))]) <= hi
    ]


def test_an_undeclared_tie_stops_the_table() -> None:
    """Two brands claiming one prefix at one width need ``beats``; without it the index
    builder refuses the table (so importing cards would fail)."""
    visa, mir = BRANDS_BY_ID["visa"], BRANDS_BY_ID["mir"]
    rival = dataclasses.replace(mir, id="rival", patterns=((2203, 2210),), beats=())
    with pytest.raises(ValueError, match="mir and rival both claim prefix 2203"):
        cards._build_prefix_index((visa, mir, rival))
    settled = dataclasses.replace(rival, beats=("mir",))
    index = cards._build_prefix_index((visa, mir, settled))
    assert index[4]["2203"] is settled and index[4]["2202"] is mir and index[1]["4"] is visa


def _published() -> dict[str, list[tuple[int, int]]]:
    table = load("brands.json")["published"]
    return {
        brand: [(int(r.split("-")[0]), int(r.split("-")[-1])) for r in ranges]
        for brand, ranges in table.items()
        if not brand.startswith("_")
    }


def _published_owner(
    number: str, published: dict[str, list[tuple[int, int]]]
) -> str | None:
    """The brand whose published range holding ``number`` is longest (``None``: no
    range holds it), computed from the published list alone."""
    owners = [
        (len(str(a)), owner)
        for owner, ranges in published.items()
        for a, b in ranges
        if a <= int(number[: len(str(a))]) <= b
    ]
    if not owners:
        return None
    width = max(w for w, _ in owners)
    best = [owner for w, owner in owners if w == width]
    assert len(best) == 1, (number, best)  # the published lists never tie
    return best[0]


def _detected(number: str) -> str | None:
    found = detect_brand(number)
    return None if found is None else found.id


def test_brand_table_covers_every_published_network() -> None:
    assert set(_published()) == set(BRANDS_BY_ID)


@pytest.mark.parametrize("brand_id", sorted(_published()))
def test_brand_table_is_the_published_ranges(brand_id: str) -> None:
    """Each published range's first and last 16-digit numbers (``lo`` then zeros, ``hi``
    then nines), and the numbers just below and above it, go to the brand whose published
    range holding them is longest (Troy's 650052 over Discover's 65 over Maestro's 6), or
    to none: a table narrower or wider than its network's ranges fails here."""
    published = _published()
    for lo, hi in published[brand_id]:
        width = len(str(lo))
        numbers = [str(lo).ljust(16, "0"), str(hi).ljust(16, "9")]
        numbers += [str(n).ljust(16, pad) for n, pad in ((lo - 1, "9"), (hi + 1, "0"))
                    if len(str(n)) == width]  # 9 + 1 is no longer a one-digit prefix
        for number in numbers:
            assert _detected(number) == _published_owner(number, published), number


def test_troy_owns_the_whole_9792_prefix() -> None:
    for prefix in ("979200", "979289", "979290", "979295", "979299"):
        assert _detected(prefix.ljust(16, "0")) == "troy", prefix
    for prefix in ("979199", "979300"):
        assert _detected(prefix.ljust(16, "0")) is None, prefix


@settings(max_examples=300)
@given(st.text(alphabet="0123456789", min_size=6, max_size=19))
def test_detected_brand_is_the_unique_most_specific_match(number: str) -> None:
    scores = {b.id: max(_matches(b.id, number), default=0) for b in BRANDS}
    best = max(scores.values())
    brand = detect_brand(number)
    if best == 0:
        assert brand is None
        return
    assert brand is not None and scores[brand.id] == best
    rivals = [i for i, s in scores.items() if s == best and i != brand.id]
    for rival in rivals:
        assert rival in brand.beats, (brand.id, rival, number)


@given(st.sampled_from([c["number"] for c in load("test_cards.json")["cards"]]),
       st.integers(1, 19))
def test_prefixes_of_valid_numbers_are_potentially_valid(number: str, cut: int) -> None:
    digits = normalize_number(number)
    assert check_number(digits[:cut]).is_potentially_valid


@given(st.text(alphabet="0123456789", min_size=1, max_size=19))
def test_luhn_on_normalised_digits_agrees_with_the_typed_form(digits: str) -> None:
    assert cards.luhn_digits_valid(digits) == cards.luhn_valid(digits) == reference_luhn(digits)
