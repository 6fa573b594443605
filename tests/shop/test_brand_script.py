"""One card-brand detection routine for the browser side (issue 15 §9).

The shop's card form (``static/checkout_kit/checkout_kit.js``) and the sandbox's
checkout script (``static/js/checkout.js``) both detect brands with
``static/checkout_kit/brands.js``, from the data of :mod:`checkout_kit.cards`: no script
under ``static/`` reads a brand's ranges, holds one of its prefixes or writes the
routine again. Chromium runs the routine against Python in
``tests/e2e/test_brand_detection.py``.
"""

from __future__ import annotations

import json
import re

from checkout_kit import cards
from checkout_kit._resources import resource_dir
from checkout_kit.jsoncodec import loads

from .conftest import Shop

STATIC = resource_dir("static")
SHARED = "checkout_kit/brands.js"
ROUTINE = "function checkoutKitBrandDetector("


def scripts() -> dict[str, str]:
    """Every script under ``static/``, by its path there."""
    return {path.relative_to(STATIC).as_posix(): path.read_text("utf-8")
            for path in sorted(STATIC.rglob("*.js"))}


def test_no_script_reads_a_brands_ranges() -> None:
    """Detection of its own needs a brand's prefix ranges (``patterns``) and tie rule
    (``beats``); the one routine reads ``cards.prefix_table()`` instead."""
    readers = {name for name, text in scripts().items()
               if re.search(r"\.(patterns|beats)\b", text)}
    assert readers == set()


def test_no_script_holds_a_brand_prefix() -> None:
    """No range end of cards.BRANDS of three digits or more (``2200``, ``6011``,
    ``650052``…) is written in a script: the prefixes arrive as data."""
    ends = {str(n) for brand in cards.BRANDS for lo, hi in brand.patterns
            for n in (lo, hi) if n >= 100}
    found = {(name, number) for name, text in scripts().items()
             for number in re.findall(r"(?<![0-9])[0-9]{3,}(?![0-9])", text) if number in ends}
    assert found == set()


def test_the_routine_is_written_once_and_used_by_both_scripts() -> None:
    sources = scripts()
    assert [name for name, text in sources.items() if ROUTINE in text] == [SHARED]
    for user in ("checkout_kit/checkout_kit.js", "js/checkout.js"):
        assert "checkoutKitBrandDetector(" in sources[user], user


def test_the_form_page_and_the_sandbox_serve_the_one_routine(shop: Shop) -> None:
    shared = (STATIC / SHARED).read_text("utf-8")
    payment = shop.create()
    response = shop.client.get(f"/checkout/pay/{payment.id}/form")
    html = response.text

    # The form page loads it as a script of its own, by the page's nonce (the CSP
    # allows no other script of the shop's), before the page script that calls it.
    policy = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)  # type: ignore[union-attr]
    tag = re.search(r'<script nonce="([^"]+)" src="([^"]+/brands\.js)"></script>', html)
    assert tag is not None and tag.group(1) == nonce
    assert html.index(tag.group(0)) < html.index("checkout_kit.js")
    served = shop.client.get(tag.group(2))
    assert served.status_code == 200 and served.get_data(as_text=True) == shared
    raw = re.search(r'id="checkout-kit-data">(.*?)</script>', html, re.S)
    data = loads(raw.group(1))  # type: ignore[union-attr]
    assert data["brands"] == cards.brand_table()
    assert data["prefixes"] == cards.prefix_table()

    # The sandbox's checkout script carries the same file, spliced in, and the same data.
    script = shop.client.get("/sandbox/checkout.js").get_data(as_text=True)
    assert shared in script and "/*@brands*/" not in script
    config = json.loads(re.search(r"const CONFIG = (\{.*?\});\n", script).group(1))  # type: ignore[union-attr]
    assert config["brands"] == cards.brand_table()
    assert config["prefixes"] == cards.prefix_table()
