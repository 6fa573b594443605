"""Sizes of the sandbox's browser scripts and the cryptogram's speed in Chromium.

    python benchmarks/bench_browser.py

Sizes are of the scripts as the sandbox serves them (the checkout script with its
brand table and public key injected): raw, minified, and gzipped (level 9) both raw
and minified. The minifier is terser (``npx --yes terser@5 -c -m``) when npm can
fetch it; otherwise a conservative built-in pass that only drops comments, blank
lines and indentation (newlines are kept, so automatic semicolon insertion cannot
change the code). The output says which one ran.

The timing is the median, over many calls in headless Chromium, from calling
``createPaymentCryptogram`` to holding the cryptogram (validation, padding, one
2048-bit modular exponentiation, base64), plus the first call, which also parses
the key. Targets: checkout script ≤ 10 KB minified+gzipped, median < 20 ms.
Prints PASS/FAIL per target and always exits 0.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from werkzeug.serving import make_server

from checkout_kit.sandbox import create_sandbox_app

SIZE_TARGET = 10 * 1024
TIME_TARGET_MS = 20.0
CALLS = 200
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCRIPTS = {
    "checkout (/checkout.js)": "/checkout.js",
    "widget bundle (/bundles/cloudpayments.js)": "/bundles/cloudpayments.js",
    "widget frame (/widget/frame.js)": "/widget/frame.js",
}


def terser(source: bytes) -> bytes | None:
    """Minify with terser through npx, or None when it cannot be had."""
    npx = shutil.which("npx")
    if npx is None:
        return None
    try:
        done = subprocess.run(
            [npx, "--yes", "terser@5", "--compress", "--mangle", "--ecma", "2020"],
            input=source, capture_output=True, timeout=180, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 and done.stdout else None


def strip_comments(source: bytes) -> bytes:
    """Drop comments, indentation and blank lines; keep every newline between code.

    A small scanner that knows strings, template literals and regular-expression
    literals, so ``//`` or ``/*`` inside them is left alone.
    """
    text, out, i = source.decode("utf-8"), [], 0
    n = len(text)
    last = ""  # last significant character, to tell a regex from a division
    while i < n:
        c = text[i]
        if c in "'\"`":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i, last = j + 1, c
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c == "/" and (last == "" or last in "(,=:[!&|?{};+-*%<>~^\n"):
            j, in_class = i + 1, False
            while j < n and (in_class or text[j] != "/"):
                if text[j] == "\\":
                    j += 1
                elif text[j] == "[":
                    in_class = True
                elif text[j] == "]":
                    in_class = False
                j += 1
            out.append(text[i:j + 1])
            i, last = j + 1, "/"
        else:
            out.append(c)
            if not c.isspace():
                last = c
            i += 1
    lines = (line.strip() for line in "".join(out).splitlines())
    return ("\n".join(line for line in lines if line) + "\n").encode("utf-8")


def pick_minifier() -> tuple[str, Callable[[bytes], bytes]]:
    if terser(b"let a = 1;") is not None:
        def run(source: bytes) -> bytes:
            return terser(source) or strip_comments(source)
        return "terser 5 (npx, -c -m)", run
    return "built-in comment/indentation stripper (terser unavailable)", strip_comments


def gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def sizes(scripts: dict[str, bytes]) -> bool:
    name, minify = pick_minifier()
    print(f"minifier: {name}")
    print(f"{'script':45} {'raw':>8} {'min':>8} {'raw.gz':>8} {'min.gz':>8}")
    ok = True
    for label, source in scripts.items():
        small = minify(source)
        print(f"{label:45} {len(source):8} {len(small):8} {gz(source):8} {gz(small):8}")
        if label.startswith("checkout"):
            ok = gz(small) <= SIZE_TARGET
            verdict = "PASS" if ok else "FAIL"
            print(f"  {verdict}: checkout script {gz(small) / 1024:.1f} KB minified+gzipped "
                  f"(target <= {SIZE_TARGET // 1024} KB; ratio {gz(small) / SIZE_TARGET:.2f}; "
                  f"{gz(source) / 1024:.1f} KB gzipped unminified)")
    return ok


TIMING_JS = """async (n) => {
    const checkout = new cp.Checkout({publicId: 'test_api_00000000000000000000001'});
    const card = {cardNumber: '4242 4242 4242 4242', expDateMonthYear: '12/35', cvv: '123'};
    const times = [];
    for (let i = 0; i < n; i++) {
        const start = performance.now();
        await checkout.createPaymentCryptogram(card);
        times.push(performance.now() - start);
    }
    // performance.now() is coarsened (0.1 ms) in pages that are not cross-origin
    // isolated, so also time a whole batch for a precise mean.
    const start = performance.now();
    for (let i = 0; i < n; i++) await checkout.createPaymentCryptogram(card);
    return {times, batchMean: (performance.now() - start) / n};
}"""


def timing(base_url: str) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("SKIP: timing (playwright is not installed)")
        return
    if not os.access(CHROMIUM, os.X_OK):
        print(f"SKIP: timing ({CHROMIUM} is missing)")
        return
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.route("**/favicon.ico", lambda route: route.abort())
        page.goto(f"{base_url}/widget/frame")  # a sandbox page that loads /checkout.js
        page.wait_for_function("() => !!(window.cp && window.cp.Checkout)")
        measured = page.evaluate(TIMING_JS, CALLS + 1)
        browser.close()
    times = measured["times"]
    cold, warm = times[0], times[1:]
    median = statistics.median(warm)
    p95 = sorted(warm)[int(len(warm) * 0.95)]
    verdict = "PASS" if median < TIME_TARGET_MS else "FAIL"
    print(f"createPaymentCryptogram in Chromium: first call {cold:.2f} ms (parses the key), "
          f"median {median:.2f} ms, p95 {p95:.2f} ms over {CALLS} calls; "
          f"batch mean {measured['batchMean']:.3f} ms")
    print(f"  {verdict}: median {median:.2f} ms (target < {TIME_TARGET_MS:.0f} ms; "
          f"ratio {median / TIME_TARGET_MS:.3f} of the budget)")


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log lines
    logging.getLogger("checkout_kit.sandbox").setLevel(logging.CRITICAL)
    app = create_sandbox_app()
    client = app.test_client()
    scripts = {label: client.get(url).data for label, url in SCRIPTS.items()}
    sizes(scripts)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        timing(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
