"""The client's modules import one another one way: each module of the sans-I/O core
imports only those before it (docs/architecture.md), the shells sit on the core, and
only the attempts touch httpx, so that each module reads without the ones after it."""

from __future__ import annotations

import ast
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[1] / "checkout_kit" / "client"

#: The sans-I/O core, bottom up: a call's words, reading answers, the operations, the
#: client's settings and one call's attempts.
CORE = ["_call", "_answers", "_operations", "_attempts"]


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """The modules of checkout_kit.client that ``path`` imports, and the top-level
    packages it imports from outside checkout_kit."""
    siblings, outside = set(), set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                siblings.add(node.module.split(".")[0])
            else:
                siblings.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            outside.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            outside.update(alias.name.split(".")[0] for alias in node.names)
    return siblings, outside


GRAPH = {path.stem: _imports(path) for path in CLIENT.glob("*.py")}


def test_each_core_module_imports_only_those_before_it() -> None:
    for index, name in enumerate(CORE):
        siblings, _ = GRAPH[name]
        assert siblings <= set(CORE[:index]), f"{name} imports {sorted(siblings)}"
    assert GRAPH["_operations"][0] == {"_call", "_answers"}  # the graph is real
    for shell in ("_sync", "_async"):
        assert GRAPH[shell][0] >= {"_call", "_operations", "_attempts"}


def test_only_the_attempts_touch_httpx() -> None:
    # Describing a call and reading its answer need no HTTP library at all.
    assert [name for name in CORE if "httpx" in GRAPH[name][1]] == ["_attempts"]


def test_the_client_modules_form_no_import_cycle() -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name in done:
            return
        for child in GRAPH.get(name, (set(), set()))[0]:
            visit(child, (*path, name))
        done.add(name)

    for name in GRAPH:
        visit(name, ())
    assert "__init__" in done and len(done) > len(CORE)
