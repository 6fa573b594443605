"""The built wheel ships the static files, the templates and py.typed, and works on its
own: a fresh virtual environment holding the wheel and the dependencies it declares (and
nothing else) passes ``pip check``, serves the browser scripts and runs the demo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from html import unescape
from importlib.metadata import distributions
from pathlib import Path

import httpx
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


def _clean_env() -> dict[str, str]:
    """This process's environment without what would put another python's packages, or
    the source tree, on the new venv's path."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages, whether this run is in a venv or not)
    holding the built wheel and the dependencies it declares, nothing else.

    The dependencies are resolved by ``pip wheel`` from the package index this test run's
    pip is configured with, pinned to the versions installed here, into a wheelhouse;
    the venv then installs from that wheelhouse alone (``--no-index``)."""
    env = _clean_env()
    root = tmp_path_factory.mktemp("installed")
    house = root / "wheelhouse"
    pins = root / "constraints.txt"
    pins.write_text("".join(
        f"{dist.metadata['Name']}=={dist.version}\n" for dist in distributions()
        if dist.metadata["Name"] and dist.metadata["Name"].lower() != "checkout-kit"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(house), "-c", str(pins),
         str(wheel)], capture_output=True, text=True, env=env, cwd=root)
    assert built.returncode == 0, "pip wheel of the wheel's dependencies:\n" + built.stderr
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True,
                   env=env)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links",
                    str(house), str(wheel)], check=True, capture_output=True, env=env, cwd=root)
    return venv


@pytest.mark.slow
def test_installed_wheel_holds_its_own_dependencies(installed: Path) -> None:
    python = installed / "bin" / "python"
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True,
                           text=True, env=_clean_env(), cwd=installed)
    assert check.returncode == 0, check.stdout + check.stderr
    # Only the wheel and what it declares: no test tool came along.
    names = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"],
                           capture_output=True, text=True, check=True, env=_clean_env())
    listed = {line.split("==")[0].lower() for line in names.stdout.split()}
    assert "checkout-kit" in listed and {"flask", "httpx", "sqlalchemy", "alembic"} <= listed
    assert "babel" in listed  # the pages format amounts with it (money.display_amount)
    assert not listed & {"pytest", "hypothesis", "playwright", "flask-wtf"}


@pytest.mark.slow
def test_installed_wheel_serves_the_browser_scripts(installed: Path, tmp_path: Path) -> None:
    python = installed / "bin" / "python"
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    done = subprocess.run([str(python), "-c", SERVE_FROM_INSTALLED], check=True,
                          capture_output=True, text=True, env=_clean_env(), cwd=workdir)
    report = json.loads(done.stdout)
    module = Path(report["module"]).resolve()
    assert module.is_relative_to(installed.resolve()), module
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


def _field(html: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', html)
    assert match, f"no input {name}"
    return unescape(match.group(1))


@pytest.mark.slow
def test_installed_demo_serves_the_form_the_script_and_the_widget(
    installed: Path, tmp_path: Path, served: Callable[..., AbstractContextManager[str]],
) -> None:
    # The console script of the venv, in a folder away from the source tree: the demo
    # shop, its payment form, the checkout script and the widget frame come from the wheel.
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    command = [str(installed / "bin" / "checkout-kit"), "demo", "--host", "127.0.0.1",
               "--port", "0", "--instance", str(workdir / "instance")]
    with served(command, "shop", env=_clean_env(), cwd=workdir) as base, \
            httpx.Client(base_url=base, timeout=30) as http:
        home = http.get("/")
        assert home.status_code == 200
        bought = http.post("/buy", data={"csrf_token": _field(home.text, "csrf_token"),
                                         "mode": "form", "scheme": "charge"})
        assert bought.status_code == 303, bought.text
        form = http.get(bought.headers["Location"])
        assert form.status_code == 200 and "/checkout/pay/" in str(form.url)
        # Card inputs carry no name: the shop's server never receives card data.
        number = re.search(r'<input[^>]*data-cp="cardNumber"[^>]*>', form.text)
        assert number and " name=" not in number.group(0)
        script_src = re.search(r'<script src="([^"]+)"></script>', form.text)
        assert script_src, "the form page loads no checkout script"
        script = http.get(script_src.group(1))
        assert script.status_code == 200 and "cp.Checkout" in script.text
        frame = http.get("/sandbox/widget/frame")
        assert frame.status_code == 200 and "/widget/frame.js" in frame.text
