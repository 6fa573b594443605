"""The buyer's language on every payment page (issue 15 §5, §8): decline reasons from
the reason table, amounts as the reader writes them (one formatter for the pages, the
shop's own templates and the demo's ledger), labels and titles, the sandbox's bank
page, and the form's trust line."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import render_template_string

from checkout_kit.ledger import PaymentStatus
from checkout_kit.money import display_amount
from checkout_kit.reasons import REASONS
from checkout_kit.shop.demo import create_demo_app
from checkout_kit.shop.state import state
from checkout_kit.shop.views import decline_reason

from .conftest import (
    DECLINED,
    NO_3DS,
    WITH_3DS,
    Shop,
    field_value,
    form_of,
    make_shop,
    path_of,
    shop_catalog,
)
from .test_widget_and_results import page_data

NBSP = "\u00a0"
EN = {"Accept-Language": "en-US,en;q=0.9"}
RU = {"Accept-Language": "ru-RU,ru;q=0.9"}
LANGS = {"en": EN, "ru": RU}
#: 1490.00 RUB as each page language writes it (Babel, no-break spaces).
PRICE = {"ru": f"1{NBSP}490,00{NBSP}₽", "en": f"RUB{NBSP}1,490.00"}


def pay_in(shop: Shop, payment_id: str, card: str, headers: dict[str, str]) -> Any:
    """Shop.pay in a browser that asks for ``headers``' language."""
    _, token = shop.form_page(payment_id, **headers)
    data = {"csrf_token": token, "cryptogram": shop.sandbox.make_cryptogram(card),
            "name": "IVAN PETROV", "email": "payer@example.com"}
    return shop.client.post(f"/checkout/pay/{payment_id}/form", data=data, headers=headers)


# --------------------------------------------------------------------------- decline reasons


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_a_declined_card_is_explained_in_the_page_language(shop: Shop, lang: str) -> None:
    payment = shop.create()
    page = pay_in(shop, payment.id, DECLINED, LANGS[lang])
    assert page.status_code == 200 and 'id="ck-message"' in page.text
    stored = shop.state.ledger.get(payment.id)
    # The gateway's CardHolderMessage is Russian (the payment's CultureName)...
    assert stored.cardholder_message == "Недостаточно средств на карте"
    # ...the page says it in its own language, from the reason table.
    assert REASONS[5051].message(lang) in page.text
    other = REASONS[5051].message("ru" if lang == "en" else "en")
    assert other not in page.text


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_a_failed_3ds_is_explained_in_the_page_language(shop: Shop, lang: str) -> None:
    payment = shop.create()
    threeds = pay_in(shop, payment.id, WITH_3DS, LANGS[lang])
    term_url, fields = shop.bank(threeds.text, action="decline")
    back = shop.client.post(path_of(term_url), data=fields)
    page = shop.client.get(path_of(back.headers["Location"]), headers=LANGS[lang])
    assert 'data-result="failure"' in page.text
    assert shop.state.ledger.get(payment.id).reason_code == 5206
    expected = {"en": "3-D Secure authentication failed",
                "ru": "3-D Secure авторизация не пройдена"}
    assert f'data-field="reason">{expected[lang]}</p>' in page.text
    assert expected["ru" if lang == "en" else "en"] not in page.text


def test_a_language_a_shop_adds_gets_the_tables_english_unless_its_catalog_says(
        tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    folder = shop_catalog(tmp_path / "i18n", "de", {
        "Insufficient funds on the card": "Nicht genug Guthaben auf der Karte"})
    shop = make_shop(tmp_path, cloudpayments_sandbox_keys,
                     CHECKOUT_KIT_TRANSLATION_DIRS=[folder])
    try:
        german = {"Accept-Language": "de"}
        declined = shop.create("order-de")
        page = pay_in(shop, declined.id, DECLINED, german)
        assert 'lang="de"' in page.text and "Nicht genug Guthaben auf der Karte" in page.text
        with shop.app.test_request_context(headers=german):
            # Untranslated: the table's English, not its Russian.
            assert decline_reason(5206, "3-D Secure авторизация не пройдена") == (
                "3-D Secure authentication failed")
            assert decline_reason(None, "gateway text") == "gateway text"
            assert decline_reason(None, None) is None
    finally:
        shop.state.ledger.engine.dispose()
        shop.state.client.close()


def test_a_decline_without_a_reason_says_declined_not_approved(
        shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    # The form used to look up code 0 ("Payment approved") for a decline that came
    # without a reason code or a message.
    real = shop.state.service.pay

    def bare(*args: Any, **kwargs: Any) -> Any:
        return replace(real(*args, **kwargs), reason_code=None, cardholder_message=None)

    monkeypatch.setattr(shop.state.service, "pay", bare)
    payment = shop.create()
    for headers, text in ((EN, "The payment was declined. Try another card."),
                          (RU, "Платёж отклонён. Попробуйте другую карту.")):
        page = pay_in(shop, payment.id, DECLINED, headers)
        assert f'id="ck-message">{text}</p>' in page.text
        assert "approved" not in page.text and "успешно" not in page.text


# --------------------------------------------------------------------------- amounts


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_every_payment_page_writes_the_amount_as_its_reader_does(shop: Shop, lang: str) -> None:
    headers = LANGS[lang]
    pay_word = {"en": "Pay", "ru": "Оплатить"}[lang]
    price = PRICE[lang]
    assert price == display_amount(Decimal("1490.00"), "RUB", lang)
    form_payment = shop.create("order-form", amount="1490.00")
    form, _ = shop.form_page(form_payment.id, **headers)
    assert f'data-field="amount">{price}</p>' in form
    assert f'<span id="ck-pay-label">{pay_word} {price}</span>' in form
    widget_payment = shop.create("order-widget", amount="1490.00")
    widget = shop.client.get(f"/checkout/pay/{widget_payment.id}/widget", headers=headers)
    assert f'data-field="amount">{price}</p>' in widget.text
    assert f'id="ck-open">{pay_word} {price}</button>' in widget.text
    pending = shop.client.get(f"/checkout/payments/{widget_payment.id}", headers=headers)
    assert f'data-field="amount">{price}</p>' in pending.text
    done = pay_in(shop, form_payment.id, NO_3DS, headers)
    success = shop.client.get(path_of(done.headers["Location"]), headers=headers)
    assert f'data-field="amount">{price}</p>' in success.text
    for page in (form, widget.text, pending.text, success.text):
        assert "1490.00 RUB" not in page  # the gateway's form (the widget's JSON keeps it)


def test_the_shops_own_templates_and_e_mails_use_the_same_formatter(shop: Shop) -> None:
    amount = Decimal("1490.00")
    template = ("{{ checkout_kit_money(amount, 'RUB') }}|"
                "{{ checkout_kit_money(amount, 'RUB', 'en') }}")
    with shop.app.test_request_context(headers=EN):
        assert render_template_string(template, amount=amount) == f"{PRICE['en']}|{PRICE['en']}"
    # An e-mail rendered outside a request: the kit's default language (ru).
    with shop.app.app_context():
        assert render_template_string(template, amount=amount) == f"{PRICE['ru']}|{PRICE['en']}"


def test_the_demo_ledger_writes_amounts_with_the_same_formatter(tmp_path: Path) -> None:
    app = create_demo_app(tmp_path)
    client = app.test_client()
    index = client.get("/")
    client.post("/buy", data={"csrf_token": field_value(index.text, "csrf_token"),
                              "mode": "form", "scheme": "charge"})
    try:
        for lang, headers in LANGS.items():
            ledger = client.get("/ledger", headers=headers)
            assert f'<span data-field="amount">{PRICE[lang]}</span>' in ledger.text
            assert "1490.00 RUB" not in ledger.text
    finally:
        state(app).client.close()
        state(app).ledger.engine.dispose()


# --------------------------------------------------------------------------- labels and titles


def test_the_expiry_placeholder_matches_its_label(shop: Shop) -> None:
    payment = shop.create()
    ru, _ = shop.form_page(payment.id, **RU)
    en, _ = shop.form_page(payment.id, **EN)
    assert "Срок действия (ММ/ГГ)" in ru and 'placeholder="ММ/ГГ"' in ru
    assert "Expiry (MM/YY)" in en and 'placeholder="MM/YY"' in en


@pytest.mark.parametrize(("scheme", "en", "ru"), [
    ("auth", "Funds held", "Средства заблокированы"),
    ("charge", "Payment successful", "Оплата прошла успешно"),
])
def test_a_hold_is_titled_funds_held_and_a_charge_successful(
        shop: Shop, scheme: str, en: str, ru: str) -> None:
    payment = shop.create(scheme=scheme)
    done = shop.pay(payment.id, NO_3DS)
    status = shop.state.ledger.get(payment.id).status
    assert status is (PaymentStatus.AUTHORIZED if scheme == "auth" else PaymentStatus.SUCCEEDED)
    for headers, title in ((EN, en), (RU, ru)):
        page = shop.client.get(path_of(done.headers["Location"]), headers=headers).text
        assert f"<title>{title}</title>" in page
        assert f'data-status="{status.value}">{title}</h1>' in page
    held = shop.client.get(path_of(done.headers["Location"]), headers=EN).text
    assert ("held on your card" in held) is (scheme == "auth")
    assert ("Payment successful" in held) is (scheme == "charge")


def test_the_widget_pages_result_link_is_gender_neutral(shop: Shop) -> None:
    payment = shop.create()
    ru = shop.client.get(f"/checkout/pay/{payment.id}/widget", headers=RU).text
    en = shop.client.get(f"/checkout/pay/{payment.id}/widget", headers=EN).text
    assert "Оплата завершена — показать результат" in ru and "Я оплатил" not in ru
    assert "Payment complete — show the result" in en and "I have paid" not in en


@pytest.mark.parametrize(("headers", "lang", "words"), [
    (EN, "en", ("Sandbox Bank", "One-time code (any value)", ">Confirm</button>",
                ">Decline</button>", ">Cancel</button>", "<dt>Amount</dt>")),
    (RU, "ru", ("Тестовый банк", "Одноразовый код (любой)", ">Подтвердить</button>",
                ">Отклонить</button>", ">Отменить</button>", "<dt>Сумма</dt>")),
    ({}, "ru", ("Тестовый банк", ">Подтвердить</button>")),  # the gateway's default
])
def test_the_sandbox_bank_page_speaks_the_buyers_language(
        shop: Shop, headers: dict[str, str], lang: str, words: tuple[str, ...]) -> None:
    payment = shop.create()
    threeds = shop.pay(payment.id, WITH_3DS)
    acs = form_of(threeds.text, "ck-acs")
    bank = shop.client.post(path_of(acs["action"]), data=acs["fields"], headers=headers)
    assert bank.status_code == 200 and f'<html lang="{lang}">' in bank.text
    for word in words:
        assert word in bank.text
    done = shop.client.post("/sandbox/acs/complete", data={**acs["fields"], "action": "confirm"},
                            headers=headers)
    returning = {"en": "Returning to the shop…", "ru": "Возвращаемся в магазин…"}[lang]
    assert done.status_code == 200 and returning in done.text


# --------------------------------------------------------------------------- trust line


@pytest.mark.parametrize(("headers", "sentence", "back"), [
    (EN, "Card data is encrypted in your browser and never reaches the shop",
     "Back to the shop"),
    (RU, "Данные карты шифруются в вашем браузере и не попадают в магазин",
     "Вернуться в магазин"),
])
def test_the_form_has_a_trust_line_and_a_way_back_to_the_shop(
        shop: Shop, headers: dict[str, str], sentence: str, back: str) -> None:
    payment = shop.create(fail_url="https://shop.example/cart?order=1&from=pay")
    form, _ = shop.form_page(payment.id, **headers)
    assert sentence in form
    for brand_id, name in (("visa", "Visa"), ("mastercard", "Mastercard"), ("mir", "MIR"),
                           ("maestro", "Maestro")):
        assert f'data-brand="{brand_id}">{name}</span>' in form
    assert (f'<a class="ck-back" href="https://shop.example/cart?order=1&amp;from=pay">'
            f"{back}</a>") in form
    without = shop.create("order-2")
    assert without.fail_url is None
    form_without, _ = shop.form_page(without.id, **headers)
    assert sentence in form_without and 'class="ck-back"' not in form_without


def test_the_form_data_carries_the_expired_card_text(shop: Shop) -> None:
    payment = shop.create()
    ru = page_data(shop.client.get(f"/checkout/pay/{payment.id}/form", headers=RU).text)
    en = page_data(shop.client.get(f"/checkout/pay/{payment.id}/form", headers=EN).text)
    assert (ru["expired"], en["expired"]) == ("Срок действия карты истёк", "The card has expired")
