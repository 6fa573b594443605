"""Response hardening for the payment pages: CSP with a nonce, no caching, no referrer.

Each page says which origins it needs (the checkout or widget script, the bank's
frame or form target); :func:`page_policy` builds a Content-Security-Policy that
allows those and nothing else. Our own script runs by nonce; no page has inline
event handlers or inline scripts.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from flask import g
from werkzeug.wrappers import Response

__all__ = ["PagePolicy", "harden", "nonce", "page_policy"]

_NONCE_KEY = "checkout_kit_nonce"
_POLICY_KEY = "checkout_kit_policy"


def nonce() -> str:
    """This request's script nonce (made on first use)."""
    value: str | None = g.get(_NONCE_KEY)
    if value is None:
        value = secrets.token_urlsafe(18)
        setattr(g, _NONCE_KEY, value)
    return value


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


@dataclass(frozen=True)
class PagePolicy:
    """The origins one page needs, beyond its own site."""

    scripts: tuple[str, ...] = ()
    frames: tuple[str, ...] = ()
    form_actions: tuple[str, ...] = ("'self'",)
    connect: tuple[str, ...] = ()
    #: the widget script styles its overlay with style attributes
    inline_styles: bool = False
    #: the page may be framed by our own pages (the 3-D Secure frame's last stop)
    framed_by_self: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def header(self, script_nonce: str) -> str:
        """The Content-Security-Policy value."""
        styles = ["'self'", "'unsafe-inline'"] if self.inline_styles else ["'self'"]
        directives = {
            "default-src": ["'none'"],
            "script-src": [f"'nonce-{script_nonce}'", *self.scripts],
            "style-src": styles,
            "img-src": ["'self'", "data:"],
            "connect-src": ["'self'", *self.connect],
            "frame-src": list(self.frames) or ["'none'"],
            "form-action": list(self.form_actions) or ["'none'"],
            "frame-ancestors": ["'self'"] if self.framed_by_self else ["'none'"],
            "base-uri": ["'none'"],
        }
        return "; ".join(f"{name} {' '.join(_unique(values))}"
                         for name, values in directives.items())


def page_policy(policy: PagePolicy) -> None:
    """Declare the policy of the page this request renders."""
    setattr(g, _POLICY_KEY, policy)


def harden(response: Response, *, payment_page: bool = True) -> Response:
    """Add the security headers (called on every response of the blueprint)."""
    policy: PagePolicy = g.get(_POLICY_KEY) or PagePolicy()
    response.headers["Content-Security-Policy"] = policy.header(nonce())
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if not policy.framed_by_self:
        response.headers["X-Frame-Options"] = "DENY"
    if payment_page:
        response.headers["Cache-Control"] = "no-store"
    return response
