"""The sandbox's rule modules form no import cycle (tests/test_core_purity.py checks
that they import neither Flask, nor the network, nor a database)."""

from __future__ import annotations

import ast
from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "checkout_kit" / "sandbox" / "rules"


def _rule_imports(path: Path) -> set[str]:
    """The rule modules ``path`` imports, at run time or for type checking alone."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_the_rule_modules_form_no_import_cycle() -> None:
    graph = {p.stem: _rule_imports(p) for p in RULES.glob("*.py")}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name in done:
            return
        for child in graph.get(name, ()):
            visit(child, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())
    assert graph["engine"] >= {"subscriptions", "orders", "outbox"}  # the graph is real
