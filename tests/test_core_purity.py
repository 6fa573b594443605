"""The core imports neither Flask nor the network (a fresh interpreter proves it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CORE = [
    "checkout_kit",
    "checkout_kit.errors",
    "checkout_kit.money",
    "checkout_kit.reasons",
    "checkout_kit.cards",
    "checkout_kit.cryptogram",
    "checkout_kit.notifications",
    "checkout_kit.webhooks",
    "checkout_kit.testing",
    "checkout_kit.threeds",
    "checkout_kit.models",
    "checkout_kit.urls",
    "checkout_kit.jsoncodec",
]
FORBIDDEN = ["flask", "werkzeug", "httpx", "sqlalchemy", "wtforms", "socket", "http.client"]


#: The sandbox's rules: no Flask, no network, and no database either (the state is
#: written by checkout_kit.sandbox.store, outside them).
SANDBOX_RULES = sorted(
    f"checkout_kit.sandbox.rules.{path.stem}"
    for path in (Path(__file__).parents[1] / "checkout_kit" / "sandbox" / "rules").glob("*.py")
    if path.stem != "__init__"
)


@pytest.mark.parametrize("modules,forbidden", [
    (CORE, FORBIDDEN), (SANDBOX_RULES, [*FORBIDDEN, "sqlite3"]),
], ids=["core", "sandbox-rules"])
def test_core_imports_no_flask_and_no_network(modules: list[str], forbidden: list[str]) -> None:
    code = (
        "import sys\n"
        f"for name in {modules!r}: __import__(name)\n"
        f"print([m for m in {forbidden!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("module,heavy", [
    ("checkout_kit.cli", "click"), ("checkout_kit.sandbox.runtime", "httpx"),
])
def test_the_check_itself_can_fail(module: str, heavy: str) -> None:
    code = f"import sys, {module}; print({heavy!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
