"""The demo shop: a product, a Pay button per mode, the test cards, a ledger page with
the actions each payment's status allows, and the ``checkout-kit demo`` command."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from checkout_kit.cli import main
from checkout_kit.errors import (
    APIConnectionError,
    AuthenticationError,
    PaymentDeclined,
    UnknownOutcomeError,
)
from checkout_kit.ledger import PaymentStatus
from checkout_kit.ledger import states as ledger_states
from checkout_kit.sandbox import TEST_CARDS, SandboxSettings, sandbox_of
from checkout_kit.shop import demo
from checkout_kit.shop.demo import (
    HOLD_PERIOD,
    LEDGER_PAGE_SIZE,
    actions_for,
    create_demo_app,
    default_instance_path,
)
from checkout_kit.shop.state import state

from .conftest import NO_3DS, field_value, path_of

ROOT = Path(__file__).resolve().parents[2]
EN = {"Accept-Language": "en-US,en;q=0.9"}
RU = {"Accept-Language": "ru-RU,ru;q=0.9"}

S = PaymentStatus
#: What the ledger page offers in each status (issue 15 §7), written out by hand.
EXPECTED_ACTIONS: dict[PaymentStatus, tuple[str, ...]] = {
    S.CREATED: ("cancel",),
    S.PROCESSING: (),
    S.AWAITING_3DS: (),
    S.AUTHORIZED: ("confirm", "void"),
    S.SUCCEEDED: ("refund",),
    S.FAILED: ("cancel",),
    S.CANCELLED: (),
    S.REFUNDED: (),
    S.UNKNOWN: (),
}
#: How to reach each status through the state machine (after ``created``).
PATHS: dict[PaymentStatus, tuple[PaymentStatus, ...]] = {
    S.CREATED: (),
    S.PROCESSING: (S.PROCESSING,),
    S.AWAITING_3DS: (S.PROCESSING, S.AWAITING_3DS),
    S.AUTHORIZED: (S.PROCESSING, S.AUTHORIZED),
    S.SUCCEEDED: (S.PROCESSING, S.SUCCEEDED),
    S.FAILED: (S.PROCESSING, S.FAILED),
    S.CANCELLED: (S.CANCELLED,),
    S.REFUNDED: (S.PROCESSING, S.SUCCEEDED, S.REFUNDED),
    S.UNKNOWN: (S.PROCESSING, S.UNKNOWN),
}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    made = create_demo_app(tmp_path / "instance")
    yield made
    state(made).client.close()
    state(made).ledger.engine.dispose()


def place(app: Flask, status: PaymentStatus, invoice: str, scheme: str = "charge") -> str:
    """A payment of the demo's ledger moved to ``status`` through the state machine."""
    ledger = state(app).ledger
    payment = ledger.create_payment(invoice_id=invoice, amount="1490.00", currency="RUB",
                                    description="Kettle", scheme=scheme)
    for number, step in enumerate(PATHS[status], start=1):
        tx = 1_000_000 + number if step in ledger_states.PAID else None
        extra = {"gateway_transaction_id": tx} if tx else {}
        if step is S.REFUNDED:
            extra["refunded_amount"] = payment.amount
        ledger.transition(payment.id, step, note=f"test: {step}", **extra)
    return payment.id


def sections(html: str) -> dict[str, str]:
    """Each payment's section of the ledger page, by payment id."""
    return dict(re.findall(r'<section class="demo-payment"[^>]*data-payment="([^"]+)"'
                           r'.*?>(.*?)</section>', html, re.S))


def buttons(section: str) -> tuple[str, ...]:
    return tuple(re.findall(r'data-action="([a-z]+)"', section))


def message(html: str) -> tuple[str, str]:
    """The ledger page's message after an action: (kind, text)."""
    found = re.search(r'<p class="demo-message[^"]*"[^>]*data-kind="(\w+)"[^>]*>(.*?)</p>',
                      html, re.S)
    assert found, "no message on the page"
    return found.group(1), unescape(found.group(2)).strip()


def act(app: Flask, client: Any, payment_id: str, action: str, headers: dict[str, str],
        **form: str) -> tuple[str, str]:
    """POST a ledger button as the page does (the shop page's token is the ledger's:
    a payment with no buttons has no form), then read the message it left."""
    token = field_value(client.get("/", headers=headers).text, "csrf_token")
    done = client.post(f"/ledger/{payment_id}/{action}", data={"csrf_token": token, **form},
                       headers=headers)
    assert done.status_code == 303
    return message(client.get(path_of(done.headers["Location"]), headers=headers).text)


def pay(app: Flask, client: Any, scheme: str) -> str:
    """Buy on the home page and pay on the card form (no 3-D Secure); the payment id."""
    token = field_value(client.get("/", headers=EN).text, "csrf_token")
    bought = client.post("/buy", data={"csrf_token": token, "mode": "form", "scheme": scheme},
                         headers=EN)
    assert bought.status_code == 303 and "/checkout/pay/" in bought.headers["Location"]
    form = client.get(path_of(bought.headers["Location"]))
    payment_id = path_of(bought.headers["Location"]).split("/")[3]
    packet = sandbox_of(app.wsgi_app.sandbox).make_cryptogram(NO_3DS)  # type: ignore[attr-defined]
    paid = client.post(f"/checkout/pay/{payment_id}/form",
                       data={"csrf_token": field_value(form.text, "csrf_token"),
                             "cryptogram": packet})
    assert paid.status_code == 303
    return str(payment_id)


# --------------------------------------------------------------------------- buying


def test_demo_buys_pays_and_acts_from_the_ledger(app: Flask, tmp_path: Path) -> None:
    client = app.test_client()
    home = client.get("/", headers=EN)
    assert home.status_code == 200
    assert 'value="form"' in home.text and 'value="widget"' in home.text
    assert "/sandbox/_sandbox/transactions" in home.text
    assert client.post("/buy", data={"mode": "form"}).status_code == 400  # no CSRF token
    payment_id = pay(app, client, "auth")
    # Bought in English: the payment pages describe it in English.
    assert state(app).ledger.get(payment_id).description == "The Samovar-2000 kettle"
    ledger = client.get("/ledger", headers=EN)
    assert payment_id in ledger.text and 'data-status="authorized"' in ledger.text
    assert "processing → funds held" in ledger.text
    assert act(app, client, payment_id, "confirm", EN) == (
        "success", "Confirmed: RUB\u00a01,490.00 taken.")
    assert state(app).ledger.get(payment_id).status is PaymentStatus.SUCCEEDED
    kind, text = act(app, client, payment_id, "void", EN)
    assert (kind, text) == ("error", "This payment cannot be voided: it is paid")
    assert (tmp_path / "instance" / "checkout_kit.sqlite3").is_file()


def test_demo_is_a_checkout_kit_command() -> None:
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert result.exit_code == 0 and "--port" in result.output


def test_a_demo_post_without_a_session_is_refused_not_a_500(app: Flask) -> None:
    # The demo's buttons share the payment form's CSRF (forms.csrf_meta): a POST with
    # no session cookie at all is a 400, and so is a token of another page.
    client = app.test_client()
    refused = client.post("/buy", data={"csrf_token": "x", "mode": "form", "scheme": "auth"})
    assert refused.status_code == 400
    token = field_value(client.get("/").text, "csrf_token")
    bought = client.post("/buy", data={"csrf_token": token, "mode": "form", "scheme": "auth"})
    assert bought.status_code == 303


# --------------------------------------------------------------------------- §7 actions


def test_each_status_gets_exactly_the_actions_it_allows() -> None:
    assert {status: tuple(a.key for a in actions_for(status))
            for status in PaymentStatus} == EXPECTED_ACTIONS


def test_the_actions_come_from_the_state_machines_table(monkeypatch: pytest.MonkeyPatch) -> None:
    # Change the table, and the buttons follow: nothing else lists them per status.
    changed = dict(ledger_states.TRANSITIONS)
    changed[S.SUCCEEDED] = frozenset()  # no refunds
    changed[S.AUTHORIZED] = frozenset({S.SUCCEEDED, S.UNKNOWN})  # no void
    monkeypatch.setattr(ledger_states, "TRANSITIONS", changed)
    assert [a.key for a in actions_for(S.SUCCEEDED)] == []
    assert [a.key for a in actions_for(S.AUTHORIZED)] == ["confirm"]


def test_the_ledger_page_shows_only_the_allowed_buttons(app: Flask) -> None:
    ids = {status: place(app, status, f"order-{status}") for status in PaymentStatus}
    page = sections(app.test_client().get("/ledger", headers=EN).text)
    assert {status: buttons(page[payment_id]) for status, payment_id in ids.items()} == (
        EXPECTED_ACTIONS)
    # An amount field only where the action takes one.
    assert 'name="amount"' in page[ids[S.SUCCEEDED]]
    assert 'name="amount"' not in page[ids[S.CREATED]]


def test_cancel_gives_up_on_an_unpaid_order(app: Flask) -> None:
    payment_id = place(app, S.CREATED, "order-unpaid")
    client = app.test_client()
    assert act(app, client, payment_id, "cancel", EN) == (
        "success", "Cancelled: this order will not be paid.")
    assert state(app).ledger.get(payment_id).status is S.CANCELLED


# --------------------------------------------------------------------------- §7 messages


@pytest.mark.parametrize(("status", "action", "headers", "expected"), [
    (S.CREATED, "refund", EN, "This payment cannot be refunded: it is not paid yet"),
    (S.CREATED, "refund", RU, "По этому платежу нельзя сделать возврат: он ещё не оплачен"),
    (S.AUTHORIZED, "refund", EN,
     "This payment cannot be refunded: the money is held, not taken yet"),
    (S.REFUNDED, "void", EN, "This payment cannot be voided: it is refunded in full"),
    (S.UNKNOWN, "cancel", EN, "This payment cannot be cancelled: the gateway's answer was "
                              "lost; reconcile settles it"),
])
def test_a_refused_action_is_said_in_words(app: Flask, status: PaymentStatus, action: str,
                                           headers: dict[str, str], expected: str) -> None:
    # A page opened before the status changed still has the button: the refusal names
    # the status in words, not the exception.
    payment_id = place(app, status, "order-stale", scheme="auth")
    kind, text = act(app, app.test_client(), payment_id, action, headers)
    assert (kind, text) == ("error", expected)
    assert "Error" not in text


def test_amount_problems_are_said_in_words(app: Flask) -> None:
    client = app.test_client()
    paid = place(app, S.SUCCEEDED, "order-paid")
    held = place(app, S.AUTHORIZED, "order-held", scheme="auth")
    assert act(app, client, paid, "refund", EN, amount="12,5x") == (
        "error", "The amount is not valid: write it like 100.00.")
    assert act(app, client, paid, "refund", EN, amount="2000") == (
        "error", "At most RUB\u00a01,490.00 is left to refund.")
    assert act(app, client, held, "confirm", RU, amount="1500") == (
        "error", "Подтвердить можно не больше 1\u00a0490,00\u00a0₽: столько заблокировано.")
    assert state(app).ledger.get(paid).status is S.SUCCEEDED


@pytest.mark.parametrize(("error", "expected"), [
    (AuthenticationError("HTTP 401"),
     "The gateway refused the shop's Public ID and API secret."),
    (APIConnectionError("connect timeout"),
     "The gateway could not be reached, and nothing was done. Try again in a minute."),
    (UnknownOutcomeError("read timeout"),
     "The gateway's answer was lost: whether it was done is settled by reconcile."),
    (PaymentDeclined("declined", reason_code=5051),
     "The gateway declined it: Insufficient funds on the card"),
])
def test_gateway_errors_are_said_in_words(app: Flask, monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture,
                                          error: Exception, expected: str) -> None:
    held = place(app, S.AUTHORIZED, "order-held", scheme="auth")

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(state(app).service, "void", refused)
    with caplog.at_level("INFO", logger="checkout_kit.shop.demo"):
        assert act(app, app.test_client(), held, "void", EN) == ("error", expected)
    # The developer still finds the exception's class in the log.
    assert type(error).__name__ in caplog.text


def test_a_partial_refund_says_how_much(app: Flask) -> None:
    client = app.test_client()
    paid = pay(app, client, "charge")
    assert act(app, client, paid, "refund", RU, amount="100") == (
        "success", "Возвращено 100,00\u00a0₽.")
    assert act(app, client, paid, "refund", EN) == ("success", "Refunded RUB\u00a01,390.00.")
    assert state(app).ledger.get(paid).status is S.REFUNDED


# --------------------------------------------------------------------------- §7 the page


RU_TIME = re.compile(r"\d{1,2} [а-я]{3,4}\.? \d{4}\s?г\., \d{2}:\d{2}:\d{2}")
EN_TIME = re.compile(r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}:\d{2}\s[AP]M")


@pytest.mark.parametrize(("headers", "pattern"), [(RU, RU_TIME), (EN, EN_TIME)])
def test_times_are_in_the_page_locale_without_microseconds(
        app: Flask, headers: dict[str, str], pattern: re.Pattern[str]) -> None:
    place(app, S.SUCCEEDED, "order-paid")
    html = app.test_client().get("/ledger", headers=headers).text
    times = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', html)
    assert len(times) == 1 + 1 + len(PATHS[S.SUCCEEDED])  # created, then each event
    for stamp, text in times:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", stamp), stamp
        assert pattern.fullmatch(unescape(text).replace("\u202f", " ")), text
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", html)


def test_the_history_folds(app: Flask) -> None:
    payment_id = place(app, S.REFUNDED, "order-refunded")
    section = sections(app.test_client().get("/ledger", headers=EN).text)[payment_id]
    folded = re.search(r'<details class="demo-history">\s*<summary>History \(4\)</summary>'
                       r'(.*?)</details>', section, re.S)
    assert folded, section
    assert folded.group(1).count("<li>") == 4 and "paid → refunded" in folded.group(1)


def test_the_ledger_is_paginated(app: Flask) -> None:
    count = 2 * LEDGER_PAGE_SIZE + 3
    ids = [place(app, S.CREATED, f"order-{n:02d}") for n in range(count)]
    client = app.test_client()
    seen: list[str] = []
    url: str | None = "/ledger"
    pages = []
    while url is not None:
        html = client.get(url, headers=EN).text
        pages.append(html)
        seen.extend(sections(html))
        found = re.search(r'<a rel="next" href="([^"]+)">', html)
        url = unescape(found.group(1)) if found else None
    assert [len(sections(html)) for html in pages] == [LEDGER_PAGE_SIZE, LEDGER_PAGE_SIZE, 3]
    assert sorted(seen) == sorted(ids) and len(set(seen)) == count
    assert 'rel="prev"' not in pages[0] and "Page 1" in pages[0]
    assert re.search(r'<a rel="prev" href="/ledger\?page=2">', pages[2]) and "Page 3" in pages[2]
    assert re.search(r'<a rel="prev" href="/ledger">', pages[1])
    assert client.get("/ledger?page=0").status_code == 404
    # An action on the second page comes back to it.
    on_second = next(iter(sections(pages[1])))
    token = field_value(pages[1], "csrf_token")
    done = client.post(f"/ledger/{on_second}/cancel",
                       data={"csrf_token": token, "page": "2"}, headers=EN)
    assert path_of(done.headers["Location"]) == "/ledger?page=2"


def test_a_hold_shows_when_it_ends(app: Flask) -> None:
    held = place(app, S.AUTHORIZED, "order-held", scheme="auth")
    paid = place(app, S.SUCCEEDED, "order-paid")
    page = sections(app.test_client().get("/ledger", headers=EN).text)
    held_at = next(e.created_at for e in state(app).ledger.history(held)
                   if e.new_status is S.AUTHORIZED)
    deadline = (held_at + timedelta(days=7)).isoformat(timespec="seconds")
    assert f'data-hold-deadline="{deadline}"' in page[held]
    text = unescape(re.sub(r"<[^>]+>|\s+", " ", page[held]))
    assert "Hold ends by" in text and "Computed by the demo" in text
    assert "plus 7 days, the longest the gateway keeps a hold" in text
    assert "data-hold-deadline" not in page[paid]


def test_the_hold_period_is_the_documented_one() -> None:
    gateway = (ROOT / "docs" / "gateway.md").read_text(encoding="utf-8")
    assert "must be confirmed within up to 7 days" in gateway
    assert HOLD_PERIOD == timedelta(days=7) == SandboxSettings().auth_expiry


# --------------------------------------------------------------------------- §8 home page


def test_the_test_cards_are_spaced_and_declines_named(app: Flask) -> None:
    client = app.test_client()
    en = client.get("/", headers=EN).text
    ru = client.get("/", headers=RU).text
    for number in TEST_CARDS:
        spaced = " ".join(number[i:i + 4] for i in range(0, 16, 4))
        assert f'<code class="demo-number">{spaced}</code>' in en
        assert number not in en
    assert en.count("declined: insufficient funds on the card (5051)") == 6
    assert ru.count("отказ: недостаточно средств на карте (5051)") == 6
    assert "Visa, with 3-D Secure" in en and "Visa, с 3-D Secure" in ru


def test_the_home_page_speaks_the_buyers_language(app: Flask) -> None:
    client = app.test_client()
    ru = client.get("/", headers=RU).text
    en = client.get("/", headers=EN).text
    assert '<html lang="ru">' in ru and '<html lang="en">' in en
    assert "Чайник «Самовар-2000»" in ru and "The Samovar-2000 kettle" in en
    assert "1\u00a0490,00\u00a0₽" in unescape(ru) and "RUB\u00a01,490.00" in unescape(en)
    english = ["Test cards", "Payment page", "Card form", "Payment widget", "Scheme",
               "One stage", "Two stages", "|Pay|", "Number", "Ledger", "Sandbox transactions",
               "Any future expiry", "approved", "declined"]
    ru_text, en_text = (re.sub(r"<[^>]+>", "|", html) for html in (ru, en))
    assert [text for text in english if text in ru_text] == []
    assert [text for text in english if text not in en_text] == []
    for russian in ("Тестовые карты", "Страница оплаты", "Платёжный виджет", "Оплатить",
                    "Журнал платежей", "Одностадийная", "одобрена"):
        assert russian in ru
    # The ledger page too.
    assert "Журнал платежей" in client.get("/ledger", headers=RU).text
    assert "No payments yet." in client.get("/ledger", headers=EN).text


# --------------------------------------------------------------------------- §8 instance


@pytest.mark.parametrize(("environ", "platform", "expected"), [
    ({"XDG_DATA_HOME": "/data/xdg"}, "linux", "/data/xdg/checkout_kit/demo"),
    ({}, "linux", "/home/u/.local/share/checkout_kit/demo"),
    ({"XDG_DATA_HOME": "relative/dir"}, "linux", "/home/u/.local/share/checkout_kit/demo"),
    ({"XDG_DATA_HOME": ""}, "freebsd", "/home/u/.local/share/checkout_kit/demo"),
    ({"XDG_DATA_HOME": "/data/xdg"}, "darwin",
     "/home/u/Library/Application Support/checkout_kit/demo"),
    ({"LOCALAPPDATA": "/c/Users/u/AppData/Local"}, "win32",
     "/c/Users/u/AppData/Local/checkout_kit/demo"),
    ({}, "win32", "/home/u/AppData/Local/checkout_kit/demo"),
])
def test_the_demo_keeps_its_instance_in_the_users_data_folder(
        environ: dict[str, str], platform: str, expected: str) -> None:
    assert default_instance_path(environ, platform, Path("/home/u")) == Path(expected)


def _served_once(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Make ``checkout-kit demo`` return at once instead of serving (it closes what
    it opened, as Ctrl-C does)."""
    from checkout_kit.sandbox.web import app as sandbox_web

    served: list[Any] = []

    def serve_once(server: Any, sandbox: Any) -> None:
        served.append(server)
        server.server_close()
        sandbox.save()
        sandbox.close()

    monkeypatch.setattr(sandbox_web, "serve_until_interrupted", serve_once)
    return served


def test_the_demo_command_prints_its_instance_first_and_leaves_the_cwd_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    served = _served_once(monkeypatch)
    result = CliRunner().invoke(main, ["demo", "--port", "0"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "data" / "checkout_kit" / "demo"
    assert result.output.splitlines()[0] == f"checkout_kit demo: instance folder {folder}"
    assert {p.name for p in folder.iterdir()} >= {
        "checkout_kit.sqlite3", "sandbox.sqlite3", "secret_key"}
    assert list(work.iterdir()) == [] and len(served) == 1

    elsewhere = tmp_path / "chosen"
    again = CliRunner().invoke(main, ["demo", "--port", "0", "--instance", str(elsewhere)])
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[0] == f"checkout_kit demo: instance folder {elsewhere}"
    assert (elsewhere / "checkout_kit.sqlite3").is_file() and list(work.iterdir()) == []


def test_create_demo_app_without_a_folder_uses_the_data_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(demo.sys, "platform", "linux")
    made = create_demo_app()
    try:
        assert Path(made.instance_path) == tmp_path / "data" / "checkout_kit" / "demo"
    finally:
        state(made).client.close()
        state(made).ledger.engine.dispose()
