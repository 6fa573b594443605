"""The core imports neither Flask nor the network (a fresh interpreter proves it)."""

from __future__ import annotations

import subprocess
import sys

CORE = [
    "checkout_kit",
    "checkout_kit.errors",
    "checkout_kit.money",
    "checkout_kit.reasons",
    "checkout_kit.cards",
    "checkout_kit.cryptogram",
    "checkout_kit.notifications",
    "checkout_kit.webhooks",
    "checkout_kit.threeds",
    "checkout_kit.models",
]
FORBIDDEN = ["flask", "werkzeug", "httpx", "sqlalchemy", "wtforms", "socket", "http.client"]


def test_core_imports_no_flask_and_no_network() -> None:
    code = (
        "import sys\n"
        f"for name in {CORE!r}: __import__(name)\n"
        f"print([m for m in {FORBIDDEN!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_check_itself_can_fail() -> None:
    code = "import sys, checkout_kit.cli; print('click' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
