"""``create_sandbox_app``: what the app does with a bug in a view."""

from __future__ import annotations

import pytest
from flask import Flask

from checkout_kit.sandbox import create_sandbox_app


class Bug(Exception):
    """Raised by the broken views below."""


def _broken_app(keys: dict[int, bytes]) -> Flask:
    app = create_sandbox_app(keys=keys)

    def boom() -> str:
        raise Bug("a bug")

    app.add_url_rule("/boom", "boom", boom)
    app.add_url_rule("/payments/boom", "api_boom", boom)
    return app


def test_a_bug_is_a_500_page_in_production(cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    app = _broken_app(cloudpayments_sandbox_keys)
    web = app.test_client()
    page = web.get("/boom")
    assert page.status_code == 500 and page.get_data(as_text=True) == "Sandbox internal error"
    api = web.get("/payments/boom")
    assert api.status_code == 500 and api.get_json() == {
        "Success": False, "Message": "Sandbox internal error"}


@pytest.mark.parametrize("config", ["TESTING", "PROPAGATE_EXCEPTIONS"])
def test_a_bug_propagates_under_testing(cloudpayments_sandbox_keys: dict[int, bytes],
                                        config: str) -> None:
    """Under app.testing or PROPAGATE_EXCEPTIONS the test sees the bug itself, not a 500."""
    app = _broken_app(cloudpayments_sandbox_keys)
    app.config[config] = True
    web = app.test_client()
    for path in ("/boom", "/payments/boom"):
        with pytest.raises(Bug):
            web.get(path)
