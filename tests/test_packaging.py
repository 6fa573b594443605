"""The built wheel ships the static files, the templates and py.typed, and works once
installed: a clean virtual environment serves the browser scripts from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Run by the venv's python, from a directory away from the source tree: serve the
#: sandbox's browser side from the installed package and report what came back.
SERVE_FROM_INSTALLED = """
import json, checkout_kit
from checkout_kit.sandbox import create_sandbox_app
client = create_sandbox_app().test_client()
pages = {}
for path in ("/checkout.js", "/bundles/cloudpayments.js", "/widget/frame", "/widget/frame.js"):
    response = client.get(path)
    pages[path] = [response.status_code, response.mimetype, response.get_data(as_text=True)]
print(json.dumps({"module": checkout_kit.__file__, "pages": pages}))
"""


def _tracked(folder: str) -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return {line for line in out.stdout.splitlines() if line}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(outdir)],
        cwd=ROOT, check=True, capture_output=True,
    )
    (built,) = outdir.glob("checkout_kit-*.whl")
    return built


@pytest.mark.slow
def test_wheel_ships_static_templates_and_types(wheel: Path) -> None:
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
    assert any(n.endswith("/licenses/LICENSE") for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert any(line.split()[1].startswith("click") for line in requires)


@pytest.mark.slow
def test_installed_wheel_serves_the_browser_scripts(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    # System site-packages provide the dependencies offline; the wheel itself goes in
    # with --no-deps, and nothing from the source tree is on the path.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, capture_output=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    str(wheel)], check=True, capture_output=True, env=env, cwd=tmp_path)
    # --no-deps installed nothing: the system's packages must meet the wheel's own
    # requirements (names and version pins), or the wheel is broken for its users.
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True,
                           text=True, env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    done = subprocess.run([str(python), "-c", SERVE_FROM_INSTALLED], check=True,
                          capture_output=True, text=True, env=env, cwd=workdir)
    report = json.loads(done.stdout)
    module = Path(report["module"]).resolve()
    assert module.is_relative_to(venv.resolve()), module
    assert not module.is_relative_to(ROOT)
    pages = report["pages"]
    for path, (status, _mimetype, _body) in pages.items():
        assert status == 200, path
    assert pages["/checkout.js"][1] == "application/javascript"
    assert "cp.Checkout" in pages["/checkout.js"][2]
    assert "/*@config*/ null" not in pages["/checkout.js"][2]  # the key was injected
    assert "cp.CloudPayments" in pages["/bundles/cloudpayments.js"][2]
    frame = pages["/widget/frame"]
    assert frame[1] == "text/html" and "<form" in frame[2] and "/widget/frame.js" in frame[2]
