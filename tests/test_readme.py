"""The README's examples run as written, and their shown results are checked."""

from __future__ import annotations

import contextlib
import doctest
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from checkout_kit import cryptogram
from checkout_kit.client import CloudPaymentsClient
from checkout_kit.errors import PaymentDeclined
from checkout_kit.sandbox.cli import DEFAULT_PORT

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")
#: Marks a python block that talks to a running ``checkout-kit sandbox``.
NEEDS_SANDBOX = "<!-- needs: checkout-kit sandbox -->"
#: Marks the python block that is a whole app, ``app.py``: run as a file, not inline.
APP_FILE = "<!-- file: app.py -->"
PYTHON_BLOCK = r"(<!-- [^>]* -->\n)?```python\n(.*?)```"
DEFAULT_BASE = f"http://127.0.0.1:{DEFAULT_PORT}"


def _python_blocks(*, needs_sandbox: bool) -> list[str]:
    return [code for marker, code in re.findall(PYTHON_BLOCK, TEXT, re.S)
            if marker.strip() != APP_FILE and bool(marker) == needs_sandbox]


def test_readme_console_examples_show_true_results() -> None:
    blocks = re.findall(r"```pycon\n(.*?)```", TEXT, re.S)
    assert len(blocks) >= 2
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for number, block in enumerate(blocks):
        runner.run(parser.get_doctest(block, {}, f"README[{number}]", str(README), 0))
    result = runner.summarize(verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_readme_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # in a scratch folder, whatever a block writes
    blocks = _python_blocks(needs_sandbox=False)
    assert len(blocks) >= 1
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
    assert "ship A-17 succeeded" in capsys.readouterr().out


#: What a buyer does in the README's app, in its own process: the product page, Buy,
#: the card form (the page script's cryptogram, made by the mounted sandbox), the result.
_BUYER = textwrap.dedent("""
    import re

    from app import app, kit
    from checkout_kit.shop.state import state

    client = app.test_client()
    page = client.get("/")
    assert page.status_code == 200 and "<button>Buy</button>" in page.text, page.text
    bought = client.post("/buy")
    assert bought.status_code == 303, bought.text
    payment_id = bought.headers["Location"].rsplit("/", 1)[1]
    form = client.get(bought.headers["Location"] + "/form")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]*)"', form.text).group(1)
    packet = state(app).sandbox.make_cryptogram("4000000000003055")
    paid = client.post(f"/checkout/pay/{payment_id}/form", data={
        "csrf_token": token, "cryptogram": packet, "name": "IVAN PETROV",
        "email": "payer@example.com"})
    assert paid.status_code in (200, 303), paid.text
    with app.app_context():
        payment = kit.get(payment_id)
    print("result", payment.invoice_id, payment.status, payment.gateway_transaction_id)
""")


def test_readme_app_runs_as_a_file_across_a_restart(tmp_path: Path) -> None:
    match = re.search(re.escape(APP_FILE) + r"\n```python\n(.*?)```", TEXT, re.S)
    assert match is not None
    (tmp_path / "app.py").write_text(match.group(1), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}

    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        return done.stdout

    results = []
    for _ in range(2):  # the second process is the shop restarted
        out = run("-c", _BUYER)
        result = re.search(r"^result (\S+) succeeded (\d+)$", out, re.M)
        assert result is not None, out
        assert f"paid: {result.group(1)} 1490.00" in out  # the signal, once the ledger knew
        results.append((result.group(1), int(result.group(2))))
    (first, first_tx), (second, second_tx) = results
    assert first != second and second_tx > first_tx  # one sandbox across the restart
    listed = run("-m", "flask", "--app", "app.py", "checkout", "payments", "--json")
    rows = [json.loads(line) for line in listed.splitlines()]
    assert {(row["invoice_id"], row["status"]) for row in rows} == {
        (first, "succeeded"), (second, "succeeded")}
    assert (tmp_path / "instance").is_dir()


def test_readme_states_the_two_commands() -> None:
    # The first command runs the demo; the test command follows the marker .ci/run reads.
    first = re.search(r"```bash\n(.*?)\n```", TEXT, re.S)
    assert first is not None and first.group(1).endswith("checkout-kit demo")
    assert f"http://127.0.0.1:{DEFAULT_PORT}/" in TEXT
    assert re.search(
        r"<!-- test-command -->\n```bash\n.*pytest( -n auto --dist worksteal)?\n```", TEXT)
    assert "checkout-kit sandbox" in TEXT
    assert "Basic auth" in TEXT
    for image in re.findall(r'src="(docs/images/[^"]+)"', TEXT):
        assert (ROOT / image).is_file(), image


def _cli_server(served: Callable[..., AbstractContextManager[str]], args: list[str],
                banner: str) -> AbstractContextManager[str]:
    """``checkout-kit ARGS`` (this source tree) on a free 127.0.0.1 port; its URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return served([sys.executable, "-m", "checkout_kit.cli", *args, "--host", "127.0.0.1",
                   "--port", "0"], banner, env=env, cwd=ROOT)


@pytest.fixture
def sandbox_base(served: Callable[..., AbstractContextManager[str]]) -> Iterator[str]:
    """A real ``checkout-kit sandbox`` process on a free 127.0.0.1 port."""
    with _cli_server(served, ["sandbox"], "API base URL") as url:
        yield url


def test_readme_first_command_serves_the_demo(
    tmp_path: Path, served: Callable[..., AbstractContextManager[str]],
) -> None:
    with _cli_server(served, ["demo", "--instance", str(tmp_path / "instance")],
                     "shop") as url:
        page = httpx.get(url + "/", headers={"Accept-Language": "en"}, timeout=30)
        assert page.status_code == 200 and "Test cards" in page.text
        # The cards the README names, as the page writes them.
        assert "4000 0000 0000 3055" in page.text and "5555 5555 5555 4444" in page.text
        russian = httpx.get(url + "/", headers={"Accept-Language": "ru"}, timeout=30)
        assert "Тестовые карты" in russian.text
    assert (tmp_path / "instance" / "checkout_kit.sqlite3").is_file()


def _screenshot_script() -> Any:
    """``examples/screenshot.py`` as a module (not run: taking the shots is slow)."""
    spec = importlib.util.spec_from_file_location("screenshot", ROOT / "examples" / "screenshot.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_screenshots_are_the_ones_the_script_takes_and_the_docs_show() -> None:
    shots = _screenshot_script().SHOTS
    assert len(shots) == len(set(shots))
    # Issue 15: the form, waiting, result, bank and ledger pages at 1280 and 375 px in
    # ru and en, and the README's widget.
    assert {f"{page}-{lang}-{width}.png" for page in ("form", "waiting", "result", "bank",
                                                      "ledger")
            for lang in ("ru", "en") for width in (1280, 375)} <= set(shots)
    images = ROOT / "docs" / "images"
    assert {p.name for p in images.iterdir()} == set(shots)
    shown: set[str] = set()
    for doc in (README, *sorted((ROOT / "docs").glob("*.md"))):
        shown.update(re.findall(r"(?:docs/)?images/([\w.-]+\.png)", doc.read_text("utf-8")))
    assert shown == set(shots)
    # The README shows the Russian form page.
    assert re.search(r'<img src="docs/images/form-ru-\d+\.png"', TEXT)


def test_readme_charge_against_a_running_sandbox(sandbox_base: str) -> None:
    (block,) = _python_blocks(needs_sandbox=True)
    assert DEFAULT_BASE in block
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.replace(DEFAULT_BASE, sandbox_base), str(README), "exec"), {})
    # A fresh sandbox, so the printed line is exactly the one the README shows.
    shown = re.search(r"print\(.*\)\s+# (.+)", block)
    assert shown is not None
    assert out.getvalue().strip() == shown.group(1).strip()
    assert out.getvalue().startswith("Completed ")


def test_readme_is_right_that_the_published_key_is_declined(sandbox_base: str) -> None:
    from checkout_kit.sandbox import DEFAULT_PUBLIC_ID, DEFAULT_SECRET

    client = CloudPaymentsClient(DEFAULT_PUBLIC_ID, DEFAULT_SECRET, base_url=sandbox_base)
    packet = cryptogram.build("4000 0000 0000 3055", "12/40", "123", DEFAULT_PUBLIC_ID)
    with pytest.raises(PaymentDeclined) as declined:
        client.charge(Decimal("1.00"), ip_address="203.0.113.7", cryptogram=packet)
    assert declined.value.reason_code == 5030
