"""``create_sandbox_app``: what the app does with a bug in a view."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from checkout_kit.sandbox import create_sandbox_app, sandbox_of


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


def test_serving_until_interrupted_stops_the_worker_and_keeps_the_state(
        tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    # The one serve loop of the sandbox's and the demo's commands: on Ctrl-C the
    # server is closed and the sandbox saved and closed.
    from checkout_kit.sandbox.web.app import serve_until_interrupted

    class Server:
        closed = False

        def serve_forever(self) -> None:
            raise KeyboardInterrupt

        def server_close(self) -> None:
            self.closed = True

    path = tmp_path / "state.sqlite3"
    sandbox = sandbox_of(create_sandbox_app(state_path=path, keys=cloudpayments_sandbox_keys))
    saved: list[bool] = []
    original_save = sandbox.save
    sandbox.save = lambda: (saved.append(True), original_save())[1]  # type: ignore[method-assign]
    server = Server()
    serve_until_interrupted(server, sandbox)  # type: ignore[arg-type]
    assert server.closed and saved == [True]
