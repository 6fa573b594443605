"""What another site's page can do to the sandbox from a real browser: nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from .conftest import LiveSandbox

FORM = """([action, fields, enctype]) => {
    const form = document.createElement('form');
    form.method = 'POST';
    form.action = action;
    form.enctype = enctype;
    for (const [name, value] of Object.entries(fields)) {
        const input = document.createElement('input');
        input.type = 'hidden';
        input.name = name;
        input.value = value;
        form.appendChild(input);
    }
    document.body.appendChild(form);
    form.submit();
}"""


def test_cross_site_requests_cannot_drive_the_controls(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    sandbox = live_sandbox.sandbox
    before = sandbox.clock.offset
    page.goto(f"{shop}/blank.html")
    # A "simple" fetch (no preflight): text/plain carrying JSON.
    page.evaluate("""(url) => fetch(url, {method: 'POST', mode: 'no-cors',
        headers: {'Content-Type': 'text/plain'}, body: '{"days": 30}'}).catch(() => null)""",
                  f"{live_sandbox.url}/_sandbox/clock/advance")
    # A JSON fetch needs a preflight the controls never grant: the browser refuses it.
    refused = page.evaluate("""(url) => fetch(url, {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: '{"days": 30}'})
        .then(() => 'sent', (e) => e.name)""", f"{live_sandbox.url}/_sandbox/clock/advance")
    assert refused == "TypeError"
    # A form, the classic: text/plain makes the body '{"days": 30, "x":"="}'.
    with page.expect_navigation():
        page.evaluate(FORM, [f"{live_sandbox.url}/_sandbox/clock/advance",
                             {'{"days": 30, "x":"': '"}'}, "text/plain"])
    body = json.loads(page.locator("body").inner_text())
    assert body == {"Success": False,
                    "Message": "The sandbox controls take Content-Type: application/json"}
    assert abs(sandbox.clock.offset - before) < timedelta(hours=1)  # no 30 days added


def test_a_forged_three_ds_callback_redirects_nowhere(
    page: Any, shop: str, live_sandbox: LiveSandbox
) -> None:
    """A page posting ThreeDSCallback with its own URLs lands on a 400, not on them."""
    page.goto(f"{shop}/blank.html")
    md = json.dumps({"TransactionId": 1, "ThreeDsCallbackId": "x" * 32,
                     "SuccessUrl": f"{shop}/stolen", "FailUrl": f"{shop}/stolen"})
    with page.expect_navigation():
        page.evaluate(FORM, [f"{live_sandbox.url}/payments/ThreeDSCallback",
                             {"MD": md, "PaRes": "x"}, "application/x-www-form-urlencoded"])
    assert page.url == f"{live_sandbox.url}/payments/ThreeDSCallback"
    assert json.loads(page.locator("body").inner_text())["Success"] is False
