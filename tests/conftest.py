"""Suite-wide test settings."""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# CI runs on a loaded 2-core machine: RSA and in-process HTTP examples can take longer
# than hypothesis's default 200 ms deadline without anything being wrong.
settings.register_profile(
    "checkout_kit", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("checkout_kit")


@contextlib.contextmanager
def _served(command: list[str], banner: str, *, env: dict[str, str],
            cwd: Path) -> Iterator[str]:
    """``command`` (a server on 127.0.0.1, port 0) as a process; yields the URL that its
    ``banner`` line names, and stops the process afterwards."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, cwd=cwd)
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        for line in proc.stdout:  # the banner names the port the OS picked
            seen.append(line)
            found = re.search(banner + r"\s+(http://127\.0\.0\.1:\d+)", line)
            if found:
                # Keep reading, so that a chatty server never blocks on a full pipe.
                threading.Thread(target=proc.stdout.read, daemon=True).start()
                yield found.group(1)
                break
        else:
            pytest.fail(f"{command} exited without its banner:\n" + "".join(seen))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            proc.kill()
            proc.wait()


@pytest.fixture
def served() -> Callable[..., AbstractContextManager[str]]:
    """``with served(command, banner, env=..., cwd=...) as url``: a server process for
    the length of the block."""
    return _served


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``start(upgraded=True, **config)``: a new process of a shop on ``tmp_path``
    (:func:`tests.shop.conftest.start_process`), each stopped after the test."""
    started: list[Any] = []

    from tests.shop.conftest import start_process, stop_process

    def start_one(**options: Any) -> Any:
        started.append(start_process(tmp_path, **options))
        return started[-1]

    yield start_one
    for shop in started:
        stop_process(shop)
