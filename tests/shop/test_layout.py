"""The shop package's layout says what it is: no import circle, the state in a module
that imports nothing of the package back, the instance in ``app.extensions``."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from flask import Flask

from checkout_kit.ledger import upgrade
from checkout_kit.shop import CheckoutKit, mount_sandbox
from checkout_kit.shop.state import STATE_KEY, KitState, state

SHOP = Path(__file__).resolve().parents[2] / "checkout_kit" / "shop"


def _imports(module: Path) -> set[str]:
    """The shop modules ``module`` imports, at the top or inside functions (a lazy
    import still closes a circle), leaving out ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and ast.unparse(block.test) == "TYPE_CHECKING" for node in ast.walk(block)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.ImportFrom) or node.level != 1:
            continue
        if node.module:
            found.add(node.module.split(".")[0])
        else:
            found.update(alias.name for alias in node.names)
    return {name for name in found if (SHOP / f"{name}.py").is_file()}


GRAPH = {path.stem: _imports(path) for path in SHOP.glob("*.py")}


def test_no_module_of_the_shop_package_imports_itself_back() -> None:
    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(GRAPH[start])
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(GRAPH.get(name, ()))
        return seen

    circles = sorted(name for name in GRAPH if name in reach(name))
    assert circles == []


def test_the_state_module_imports_only_settings_and_catalogs() -> None:
    assert GRAPH["state"] <= {"config", "i18n"}
    assert "extension" not in GRAPH["views"] | GRAPH["notification_routes"] | GRAPH["cli"]


def test_app_extensions_hold_the_instance_and_the_cli_uses_it(tmp_path: Path) -> None:
    made: list[str] = []

    class MyKit(CheckoutKit):
        def create_payment(self, **kwargs: Any) -> Any:
            made.append(kwargs["invoice_id"])
            return super().create_payment(**kwargs)

    app = Flask("layout_shop", instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="s")
    mount_sandbox(app, state_path=None)
    kit = MyKit(app)
    assert app.extensions["checkout_kit"] is kit
    assert isinstance(app.extensions[STATE_KEY], KitState)
    assert state(app) is app.extensions[STATE_KEY]
    upgrade(state(app).settings.database_url)
    result = app.test_cli_runner().invoke(args=[
        "checkout", "create", "--invoice", "A-1", "--amount", "10.00", "--description", "d"])
    assert result.exit_code == 0, result.output
    assert made == ["A-1"]  # the shop's own subclass, not a new CheckoutKit
    state(app).ledger.engine.dispose()
    state(app).client.close()
