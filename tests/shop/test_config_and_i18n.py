"""Settings checked at init_app, per-app state, and the gettext catalogs."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask

from checkout_kit.shop import CheckoutKit, ConfigurationError
from checkout_kit.shop.config import (
    PRODUCTION_API_URL,
    PRODUCTION_CHECKOUT_SCRIPT,
    PRODUCTION_WIDGET_SCRIPT,
)
from checkout_kit.shop.i18n import TRANSLATIONS_DIR
from checkout_kit.shop.state import state

from .conftest import Shop, make_shop, shop_catalog

BASE: dict[str, Any] = {"SECRET_KEY": "s", "CHECKOUT_KIT_PUBLIC_ID": "pk_live",
                        "CHECKOUT_KIT_API_SECRET": "secret"}


def app_with(tmp_path: Path, **config: Any) -> Flask:
    app = Flask("cfg", instance_path=str(tmp_path))
    app.config.update({**BASE, **config})
    return app


def test_production_points_at_cloudpayments(tmp_path: Path) -> None:
    app = app_with(tmp_path)
    CheckoutKit(app)
    settings = state(app).settings
    assert (settings.api_url, settings.checkout_script_url, settings.widget_script_url) == (
        PRODUCTION_API_URL, PRODUCTION_CHECKOUT_SCRIPT, PRODUCTION_WIDGET_SCRIPT)
    assert PRODUCTION_API_URL == "https://api.cloudpayments.ru"
    assert settings.database_url == f"sqlite:///{tmp_path}/checkout_kit.sqlite3"
    assert "secret" not in repr(settings)


def test_the_apps_session_cookie_policy_is_left_alone(tmp_path: Path) -> None:
    # The session policy is the app's: the kit recommends SameSite=Lax (docs/shop.md)
    # but sets nothing, not even where the app's config lacks the key.
    app = app_with(tmp_path)
    del app.config["SESSION_COOKIE_SAMESITE"]
    CheckoutKit(app)
    assert "SESSION_COOKIE_SAMESITE" not in app.config


@pytest.mark.parametrize(("config", "key"), [
    ({"CHECKOUT_KIT_PUBLIC_ID": None}, "CHECKOUT_KIT_PUBLIC_ID"),
    ({"CHECKOUT_KIT_API_SECRET": ""}, "CHECKOUT_KIT_API_SECRET"),
    ({"SECRET_KEY": None}, "SECRET_KEY"),
    ({"CHECKOUT_KIT_MODE": "popup"}, "CHECKOUT_KIT_MODE"),
    ({"CHECKOUT_KIT_SANDBOX": "yes"}, "CHECKOUT_KIT_SANDBOX"),
    ({"CHECKOUT_KIT_SANDBOX": True}, "CHECKOUT_KIT_SANDBOX_URL"),
    ({"CHECKOUT_KIT_SANDBOX": True, "CHECKOUT_KIT_SANDBOX_URL": "ftp://x"},
     "CHECKOUT_KIT_SANDBOX_URL"),
    ({"CHECKOUT_KIT_SANDBOX": True, "CHECKOUT_KIT_SANDBOX_URL": "/sandbox"},
     "CHECKOUT_KIT_API_TRANSPORT"),
    ({"CHECKOUT_KIT_SANDBOX_URL": "http://127.0.0.1:8787"}, "CHECKOUT_KIT_SANDBOX_URL"),
    ({"CHECKOUT_KIT_URL_PREFIX": "pay/"}, "CHECKOUT_KIT_URL_PREFIX"),
    ({"CHECKOUT_KIT_TERM_URL_MAX_AGE": 0}, "CHECKOUT_KIT_TERM_URL_MAX_AGE"),
    ({"CHECKOUT_KIT_LANGUAGE": "xx"}, "CHECKOUT_KIT_LANGUAGE"),
    ({"CHECKOUT_KIT_DEFAULT_LANGUAGE": "de"}, "CHECKOUT_KIT_DEFAULT_LANGUAGE"),
    ({"CHECKOUT_KIT_API_TRANSPORT": object()}, "CHECKOUT_KIT_API_TRANSPORT"),
    ({"CHECKOUT_KIT_PUBLICID": "typo"}, "CHECKOUT_KIT_PUBLICID"),
])
def test_a_missing_or_invalid_setting_names_its_key(tmp_path: Path, config: dict[str, Any],
                                                   key: str) -> None:
    app = app_with(tmp_path, **config)
    with pytest.raises(ConfigurationError) as caught:
        CheckoutKit().init_app(app)
    assert caught.value.key == key and key in str(caught.value)
    assert "checkout_kit" not in app.extensions


def test_two_apps_share_nothing(tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes]
                                ) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = make_shop(tmp_path / "a", cloudpayments_sandbox_keys)
    b = make_shop(tmp_path / "b", cloudpayments_sandbox_keys, CHECKOUT_KIT_URL_PREFIX="/pay")
    assert state(a.app) is not state(b.app)
    paid = a.create("order-1")
    assert b.client.get(f"/pay/pay/{paid.id}").status_code == 404
    assert a.client.get(f"/checkout/pay/{paid.id}").status_code == 200
    assert b.create("order-1").id != paid.id  # same invoice, another ledger
    assert state(a.app).ledger is not state(b.app).ledger


def test_init_app_twice_is_refused(shop: Shop) -> None:
    with pytest.raises(RuntimeError):
        CheckoutKit(shop.app)


# --------------------------------------------------------------------------- catalogs


def test_compiled_catalogs_match_their_po_files() -> None:
    pos = sorted(TRANSLATIONS_DIR.glob("*/LC_MESSAGES/checkout_kit.po"))
    assert {p.parent.parent.name for p in pos} >= {"ru", "en"}
    for po_path in pos:
        with po_path.open("rb") as fh:
            po = read_po(fh)
        with po_path.with_suffix(".mo").open("rb") as fh:
            mo = read_mo(fh)
        expected = {m.id: m.string for m in po if m.id and m.string and not m.fuzzy}
        compiled = {m.id: m.string for m in mo if m.id}
        assert compiled == expected, f"{po_path}: run pybabel compile (docs/shop.md)"


def test_every_message_is_translated_into_russian() -> None:
    with (TRANSLATIONS_DIR / "checkout_kit.pot").open("rb") as fh:
        template = {m.id for m in read_po(fh) if m.id}
    with (TRANSLATIONS_DIR / "ru" / "LC_MESSAGES" / "checkout_kit.po").open("rb") as fh:
        ru = {m.id: m.string for m in read_po(fh) if m.id}
    assert template == set(ru) and all(ru.values())


def test_language_from_accept_language_or_config(tmp_path: Path,
                                                 cloudpayments_sandbox_keys: dict[int, bytes]
                                                 ) -> None:
    shop = make_shop(tmp_path, cloudpayments_sandbox_keys)
    payment = shop.create()
    url = f"/checkout/pay/{payment.id}/form"
    assert 'lang="en"' in shop.client.get(url, headers={"Accept-Language": "en-GB"}).text
    assert "Номер карты" in shop.client.get(url, headers={"Accept-Language": "ru"}).text
    assert "Номер карты" in shop.client.get(url, headers={"Accept-Language": "de"}).text
    (tmp_path / "fixed").mkdir()
    fixed = make_shop(tmp_path / "fixed", cloudpayments_sandbox_keys, CHECKOUT_KIT_LANGUAGE="en")
    other = fixed.create()
    page = fixed.client.get(f"/checkout/pay/{other.id}/form", headers={"Accept-Language": "ru"})
    assert "Card number" in page.text


def test_a_shop_adds_a_language(tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes]
                                ) -> None:
    folder = shop_catalog(tmp_path / "i18n", "de", {"Card number": "Kartennummer"})
    shop = make_shop(tmp_path, cloudpayments_sandbox_keys,
                     CHECKOUT_KIT_TRANSLATION_DIRS=[folder])
    payment = shop.create()
    page = shop.client.get(f"/checkout/pay/{payment.id}/form", headers={"Accept-Language": "de"})
    assert 'lang="de"' in page.text and "Kartennummer" in page.text
    assert "Security code" in page.text  # untranslated entries fall back to the msgid


def test_the_form_page_data_lives_and_dies_with_its_app(
        tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    shop = make_shop(tmp_path, cloudpayments_sandbox_keys)
    payment = shop.create()
    shop.form_page(payment.id, **{"Accept-Language": "en"})
    shop.form_page(payment.id, **{"Accept-Language": "en"})
    kit = shop.state
    assert list(kit.form_data) == ["en"]  # written once, kept on the app's state
    catalogs = weakref.ref(kit.catalogs)
    kit.ledger.engine.dispose()
    kit.client.close()
    del shop, kit, payment
    gc.collect()
    assert catalogs() is None  # nothing module-wide keeps a dead app's catalogs


def test_the_kit_reaches_the_current_apps_settings(tmp_path: Path) -> None:
    # kit.settings is the public way to the checked settings (the README upgrades the
    # ledger with kit.settings.database_url); one kit serving two apps answers per app.
    kit = CheckoutKit()
    first, second = app_with(tmp_path / "a"), app_with(tmp_path / "b")
    kit.init_app(first)
    kit.init_app(second)
    with first.app_context():
        assert kit.settings is state(first).settings
        assert kit.settings.database_url == f"sqlite:///{tmp_path / 'a'}/checkout_kit.sqlite3"
    with second.app_context():
        assert kit.settings.database_url.endswith(f"{tmp_path / 'b'}/checkout_kit.sqlite3")
    with pytest.raises(RuntimeError):
        kit.settings  # noqa: B018 - outside an app context there is no current app
    with first.app_context(), pytest.raises(AttributeError):
        kit.settings.database_url = "sqlite://"  # type: ignore[misc]  # frozen
