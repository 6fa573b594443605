"""The built wheel ships the static files, the templates and py.typed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tracked(folder: str) -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return {line for line in out.stdout.splitlines() if line}


@pytest.mark.slow
def test_wheel_ships_static_templates_and_types(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("checkout_kit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "checkout_kit/py.typed" in names
    expected = _tracked("static") | _tracked("templates")
    assert expected, "static/ and templates/ must not be empty"
    missing = {f for f in expected if f"checkout_kit/{f}" not in names}
    assert not missing
    assert any(n.endswith(".js") for n in names if n.startswith("checkout_kit/static/"))
    assert any(n.endswith(".html") for n in names if n.startswith("checkout_kit/templates/"))
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "checkout-kit = checkout_kit.cli:main" in text
    assert "checkout_kit = checkout_kit.pytest_plugin" in text
