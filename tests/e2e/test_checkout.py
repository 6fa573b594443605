"""The sandbox's checkout script in Chromium: both APIs, form handling, every code."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from checkout_kit import cryptogram
from checkout_kit.cards import LEGACY, validate_card

from .conftest import PUBLIC_ID, LiveSandbox

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "validation.json").read_text("utf-8")
)
ALL_CODES = {
    "CardNumber_Empty", "CardNumber_Invalid", "ExpDateMonth_Empty", "ExpDateMonth_Invalid",
    "ExpDateYear_Empty", "ExpDateYear_Invalid", "ExpDateMonthYear_Empty",
    "ExpDateMonthYear_Invalid", "Cvv_Empty", "Cvv_Invalid", "Name_Empty", "Name_Invalid",
    "Name_TooLong", "Name_TooShort",
}
CARD_FIELDS = ["cardNumber", "expDateMonth", "expDateYear", "expDateMonthYear", "cvv"]
ARGS = {"cardNumber": "number", "expDateMonth": "exp_month", "expDateYear": "exp_year",
        "expDateMonthYear": "exp_date", "cvv": "cvv", "name": "name"}
RU_INVALID_NUMBER = "В номере карты допущены ошибки"


def open_checkout(page: Any, shop: str, *, now: str | None = None) -> None:
    if now is not None:
        page.clock.set_fixed_time(now)
    page.goto(f"{shop}/checkout.html")


def decrypt(live: LiveSandbox, packet: str) -> cryptogram.DecryptedPacket:
    return cryptogram.decrypt(packet, live.sandbox.keys)


def fill(page: Any, number: str, month: str, year: str, cvv: str, holder: str = "") -> None:
    page.fill("#number", number)
    page.fill("#month", month)
    page.fill("#year", year)
    page.fill("#cvv", cvv)
    page.fill("#holder", holder)


# --------------------------------------------------------------------------- modern API


def test_modern_api_reads_the_form_and_clears_card_fields(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    open_checkout(page, shop)
    fill(page, "4242 4242 4242 4242", "12", "2030", "123", "IVAN PETROV")
    packet = page.evaluate("checkout.createPaymentCryptogram()")
    opened = decrypt(live_sandbox, packet)
    assert (opened.card_number, opened.exp_month, opened.exp_year, opened.cvv,
            opened.public_id) == ("4242424242424242", 12, 2030, "123", PUBLIC_ID)
    for selector in ("#number", "#month", "#year", "#cvv"):
        assert page.input_value(selector) == ""
    assert page.input_value("#holder") == "IVAN PETROV"  # not card data: kept
    assert page.page_errors == []


def test_modern_api_takes_card_data_without_a_container(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    open_checkout(page, shop)
    packet = page.evaluate("""() => new cp.Checkout({publicId: 'pk_other'}).createPaymentCryptogram(
        {cardNumber: '5555-5555-5555-4444', expDateMonthYear: '0731', cvv: 321})""")
    opened = decrypt(live_sandbox, packet)
    assert (opened.card_number, opened.exp_month, opened.exp_year, opened.cvv,
            opened.public_id) == ("5555555555554444", 7, 2031, "321", "pk_other")


def test_modern_api_rejects_with_field_codes(page: Any, shop: str) -> None:
    open_checkout(page, shop)
    errors = page.evaluate("""() => new cp.Checkout({publicId: 'x'})
        .createPaymentCryptogram(
            {cardNumber: '424242424242424', expDateMonthYear: '12/30', cvv: '91'})
        .then(() => null, (e) => e)""")
    assert errors == {"cardNumber": "CardNumber_Invalid", "cvv": "Cvv_Invalid"}


def test_packet_layout(page: Any, shop: str, live_sandbox: LiveSandbox) -> None:
    open_checkout(page, shop)
    packets = page.evaluate("""async () => {
        const c = new cp.Checkout({publicId: 'x'});
        const card = {
            cardNumber: '2200000000000004', expDateMonth: '3', expDateYear: '31', cvv: '007'};
        return [await c.createPaymentCryptogram(card), await c.createPaymentCryptogram(card)];
    }""")
    version = live_sandbox.sandbox.settings.key_version
    for packet in packets:
        assert len(packet) == 362
        assert packet[:18] == "01" "220000" "0004" "3103" f"{version:02d}"
        assert len(base64.b64decode(packet[18:], validate=True)) == 256
        assert cryptogram.parse(packet).key_version == version
    assert packets[0] != packets[1]  # fresh random padding each time


def test_vectors_through_both_apis(page: Any, shop: str, live_sandbox: LiveSandbox) -> None:
    """Every case of the shared vector file through createPaymentCryptogram and
    createCryptogramPacket, with the browser clock set to the file's ``now``."""
    open_checkout(page, shop, now=VECTORS["now"])
    outcomes = page.evaluate(
        """async (cases) => {
            const out = [];
            for (const c of cases) {
                const modern = await new cp.Checkout({publicId: 'v'})
                    .createPaymentCryptogram(c.card)
                    .then((packet) => ({packet}), (errors) => ({errors}));
                const legacy = new cp.Checkout('v', document.createElement('div'))
                    .createCryptogramPacket(c.card);
                out.push({modern, legacy});
            }
            return out;
        }""",
        VECTORS["cases"],
    )
    seen: set[str] = set()
    now = datetime.fromisoformat(VECTORS["now"])
    for case, outcome in zip(VECTORS["cases"], outcomes, strict=True):
        expected = case["errors"]
        modern, legacy = outcome["modern"], outcome["legacy"]
        seen.update(expected.values())
        if expected:
            assert modern == {"errors": expected}, case["id"]
        else:
            opened = decrypt(live_sandbox, modern["packet"])
            digits = case["card"]["cardNumber"].replace(" ", "").replace("-", "")
            assert opened.card_number == digits, case["id"]
            assert opened.cvv == case["card"]["cvv"].strip()
        # The legacy API answers as the legacy script would (cards.LEGACY).
        legacy_errors = validate_card(
            now=now, rules=LEGACY, **{ARGS[k]: v for k, v in case["card"].items()}
        ).errors
        if legacy_errors:
            assert legacy["success"] is False and legacy["packet"] is None, case["id"]
            assert set(legacy["messages"]) == set(legacy_errors), case["id"]
            assert all(isinstance(t, str) and t for t in legacy["messages"].values())
        else:
            assert legacy["success"] is True and legacy["messages"] is None, case["id"]
            digits = case["card"]["cardNumber"].replace(" ", "")
            assert legacy["packet"].startswith(f"01{digits[:6]}{digits[-4:]}"), case["id"]
            # What the legacy script lets through, the gateway's decryptor opens.
            opened = decrypt(live_sandbox, legacy["packet"])
            assert opened.card_number == digits, case["id"]
            assert opened.cvv == case["card"]["cvv"].strip(), case["id"]
            assert opened.public_id == "v", case["id"]
    assert seen == ALL_CODES  # the vectors exercise every checkout.js code


# --------------------------------------------------------------------------- form rules


@pytest.mark.parametrize("field", CARD_FIELDS)
def test_named_card_inputs_are_refused(page: Any, shop: str, field: str) -> None:
    open_checkout(page, shop)
    result = page.evaluate(
        """(field) => {
            const form = document.createElement('form');
            const input = document.createElement('input');
            input.setAttribute('data-cp', field);
            input.setAttribute('name', field);
            form.appendChild(input);
            const tries = {};
            try { new cp.Checkout({publicId: 'x', container: form}); tries.ctor = 'ok'; }
            catch (e) { tries.ctor = e.message; }
            // Named after construction: refused when the cryptogram is asked for.
            input.removeAttribute('name');
            const checkout = new cp.Checkout('x', form);
            input.setAttribute('name', 'card');
            try { checkout.createCryptogramPacket(); tries.call = 'ok'; }
            catch (e) { tries.call = e.message; }
            return tries;
        }""",
        field,
    )
    assert "must not contain attribute 'name'" in result["ctor"]
    assert "must not contain attribute 'name'" in result["call"]


def test_named_cardholder_input_is_allowed(page: Any, shop: str) -> None:
    open_checkout(page, shop)  # the example page's data-cp="name" input has a name
    assert page.get_attribute("#holder", "name") == "holder"
    assert page.evaluate("typeof checkout.createPaymentCryptogram") == "function"


def test_field_in_form_and_argument_throws(page: Any, shop: str) -> None:
    open_checkout(page, shop)
    message = page.evaluate("""() => {
        try { checkout.createPaymentCryptogram({cvv: '123'}); return 'no error'; }
        catch (e) { return e.message; }
    }""")
    assert "both in the form and in cardData" in message


def test_combined_expiry_field(page: Any, shop: str, live_sandbox: LiveSandbox) -> None:
    open_checkout(page, shop)
    packet = page.evaluate("""() => {
        const form = document.createElement('div');
        form.innerHTML = '<input data-cp="cardNumber" value="4000 0000 0000 3055">' +
            '<input data-cp="expDateMonthYear" value="5/2032"><input data-cp="cvv" value="555">';
        return new cp.Checkout({publicId: 'x', container: form}).createPaymentCryptogram();
    }""")
    opened = decrypt(live_sandbox, packet)
    assert (opened.exp_month, opened.exp_year) == (5, 2032)


def test_constructor_checks_its_arguments(page: Any, shop: str) -> None:
    open_checkout(page, shop)
    messages = page.evaluate("""() => [
        () => new cp.Checkout({}),
        () => new cp.Checkout(''),
        () => new cp.Checkout(42),
        () => new cp.Checkout('x', 'not an element'),
        () => new cp.Checkout({publicId: 'x', container: {}}),
        () => new cp.Checkout('x', undefined, 'nonsense'),
    ].map((make) => { try { make(); return 'ok'; } catch (e) { return e.name; } })""")
    assert messages == ["TypeError"] * 6


# --------------------------------------------------------------------------- legacy API


def test_legacy_api_result_shape_and_russian_messages(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    open_checkout(page, shop)
    fill(page, "4242 4242 4242 4241", "13", "30", "")
    failed = page.evaluate(
        "new cp.Checkout('test_api_x', document.getElementById('payment-form'))"
        ".createCryptogramPacket()"
    )
    assert failed == {
        "success": False,
        "packet": None,
        "messages": {
            "cardNumber": RU_INVALID_NUMBER,
            "expDateMonth": "Некорректное значение месяца",
            "cvv": "Введите CVC код",
            "name": "Введите имя",
        },
    }
    assert page.input_value("#number") == "4242 4242 4242 4241"  # kept on failure
    fill(page, "4111111111111111", "1", "2031", "999", "A B")
    # The legacy constructor's container defaults to document.body.
    ok = page.evaluate("new cp.Checkout('test_api_x').createCryptogramPacket()")
    assert ok["success"] is True and ok["messages"] is None
    opened = decrypt(live_sandbox, ok["packet"])
    assert (opened.card_number, opened.exp_month, opened.exp_year, opened.cvv,
            opened.public_id) == ("4111111111111111", 1, 2031, "999", "test_api_x")
    assert page.input_value("#number") == ""


def test_legacy_messages_follow_the_page_language(page: Any, shop: str) -> None:
    open_checkout(page, shop)
    result = page.evaluate("""() => {
        document.documentElement.lang = 'en';
        return new cp.Checkout('x', document.createElement('div'))
            .createCryptogramPacket({cardNumber: '', expDateMonthYear: '', cvv: '12'});
    }""")
    assert result["messages"] == {
        "cardNumber": "Enter the card number",
        "expDateMonthYear": "Enter the month/year",
        "cvv": "The CVV code is not valid",
    }


def test_legacy_cvv_mode_makes_a_03_packet(page: Any, shop: str, live_sandbox: LiveSandbox) -> None:
    open_checkout(page, shop)
    result = page.evaluate("""() => {
        const c = new cp.Checkout('x', document.createElement('div'), 'cvv');
        return [c.createCryptogramPacket({cvv: '12'}), c.createCryptogramPacket({cvv: '4321'})];
    }""")
    assert result[0]["success"] is False and set(result[0]["messages"]) == {"cvv"}
    packet = result[1]["packet"]
    assert packet.startswith(f"03{live_sandbox.sandbox.settings.key_version:02d}")
    assert decrypt(live_sandbox, packet).cvv == "4321"


LEGACY_ONLY = """(card) => [
    new cp.Checkout('test_api_x', document.createElement('div')).createCryptogramPacket(card),
    new cp.Checkout({publicId: 'test_api_x'}).createPaymentCryptogram(card)
        .then((packet) => ({packet}), (errors) => ({errors})),
]"""


def test_legacy_api_keeps_the_legacy_scripts_rules(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    """Where the legacy script and current checkout.js disagree, each API gives its own
    script's answer (docs/gateway.md §2.5, §7.4)."""
    open_checkout(page, shop, now="2026-11-27T12:00:00Z")

    def both(card: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
        legacy, modern = page.evaluate(f"async (card) => Promise.all(({LEGACY_ONLY})(card))", card)
        return legacy, modern

    # A Visa with a four-digit CVV: the legacy script only looks for three digits.
    legacy, modern = both({"cardNumber": "4242 4242 4242 4242", "expDateMonthYear": "12/30",
                           "cvv": "1234"})
    assert legacy["success"] is True and modern == {"errors": {"cvv": "Cvv_Invalid"}}
    assert decrypt(live_sandbox, legacy["packet"]).cvv == "1234"
    # Dashes: separators to checkout.js, errors to the legacy script.
    legacy, modern = both({"cardNumber": "4242-4242-4242-4242", "expDateMonthYear": "12/30",
                           "cvv": "123"})
    assert legacy["messages"] == {"cardNumber": RU_INVALID_NUMBER}
    assert decrypt(live_sandbox, modern["packet"]).card_number == "4242424242424242"
    # Humo: checkout.js waives the CVV, the legacy script requires it.
    legacy, modern = both({"cardNumber": "9860000000000000", "expDateMonthYear": "12/30",
                           "cvv": ""})
    assert legacy["messages"] == {"cvv": "Введите CVC код"}
    assert decrypt(live_sandbox, modern["packet"]).cvv == ""
    # Amex: exactly four digits for the legacy script.
    legacy, _ = both({"cardNumber": "378282246310005", "expDateMonthYear": "12/30",
                      "cvv": "123"})
    assert set(legacy["messages"]) == {"cvv"}
    # A past expiry and a three-digit year: no expiry window, year modulo 100.
    legacy, modern = both({"cardNumber": "4242424242424242", "expDateMonth": "1",
                           "expDateYear": "120", "cvv": "123"})
    assert legacy["success"] is True
    assert modern == {"errors": {"expDateYear": "ExpDateYear_Invalid"}}
    opened = decrypt(live_sandbox, legacy["packet"])
    assert (opened.exp_month, opened.exp_year) == (1, 2020)
