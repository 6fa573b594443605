"""The extension's settings: every key, its default and its check, in one table.

All keys start with ``CHECKOUT_KIT_``. :func:`load_settings` reads them from
``app.config`` once, at ``init_app``, and raises one :class:`ConfigurationError` naming
every key that is missing or invalid (a misspelt key with the one it resembles), so
that a broken deployment fails at start-up rather than at the first payment, and is
fixed in one go.

Production (``CHECKOUT_KIT_SANDBOX = False``) points the API client, the checkout
script and the widget at CloudPayments' own hosts (docs/gateway.md §3.1, §6.1, §7.1).
Sandbox mode points all three at one sandbox: either one running at a URL
(``CHECKOUT_KIT_SANDBOX_URL = "http://127.0.0.1:8787"``) or one mounted in the same
process (``CHECKOUT_KIT_SANDBOX_URL = "/sandbox"`` with an in-process
``CHECKOUT_KIT_API_TRANSPORT``; :func:`checkout_kit.shop.mount_sandbox` sets both).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from ..client._attempts import worst_case_seconds
from ..errors import CheckoutKitError
from ..ledger.retention import DEFAULT_RETENTION_DAYS
from ..notifications import codec_for
from ..webhooks import SenderCheck

__all__ = [
    "DEFAULTS",
    "PREFIX",
    "PRODUCTION_API_URL",
    "PRODUCTION_CHECKOUT_SCRIPT",
    "PRODUCTION_WIDGET_SCRIPT",
    "ConfigurationError",
    "Problems",
    "Settings",
    "load_settings",
    "origin_of",
]

PREFIX = "CHECKOUT_KIT_"

#: CloudPayments' hosts (docs/gateway.md §3.1, §6.1, §7.1); the scripts must be
#: loaded from there, never self-hosted.
PRODUCTION_API_URL = "https://api.cloudpayments.ru"
PRODUCTION_CHECKOUT_SCRIPT = "https://checkout.cloudpayments.ru/checkout.js"
PRODUCTION_WIDGET_SCRIPT = "https://widget.cloudpayments.ru/bundles/cloudpayments.js"

_MODES = ("form", "widget")


class ConfigurationError(CheckoutKitError):
    """Settings are missing or invalid: ``key`` names the first, ``problems`` lists
    every ``(key, message)`` found at once (:meth:`of`)."""

    def __init__(self, key: str, message: str, *,
                 problems: Iterable[tuple[str, str]] = ()) -> None:
        self.problems: tuple[tuple[str, str], ...] = tuple(problems) or ((key, message),)
        if len(self.problems) == 1:
            super().__init__(f"{key}: {message}")
        else:
            super().__init__(f"{len(self.problems)} settings are wrong: " + "; ".join(
                f"{k}: {m}" for k, m in self.problems))
        self.key = key

    @classmethod
    def of(cls, problems: Iterable[tuple[str, str]]) -> ConfigurationError:
        """One error for several problems (its message lists them all)."""
        found = tuple(problems)
        return cls(*found[0], problems=found)


_T = TypeVar("_T")


class Problems:
    """The problems found so far while checking settings (all are reported at once)."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def check(self, value: Callable[[], _T], fallback: _T) -> _T:
        """``value()``, or ``fallback`` once its problem is noted."""
        try:
            return value()
        except ConfigurationError as exc:
            self.found.extend(exc.problems)
            return fallback

    def add(self, key: str, message: str) -> None:
        """Note one problem."""
        self.found.append((key, message))

    def raise_any(self) -> None:
        """Raise a :class:`ConfigurationError` naming every problem, if there is one."""
        if self.found:
            raise ConfigurationError.of(self.found)


#: Every key (without the prefix) and its default; ``None`` means "derived" or "off".
DEFAULTS: dict[str, Any] = {
    "PUBLIC_ID": None,            # required
    "API_SECRET": None,           # required
    "SANDBOX": False,
    "SANDBOX_URL": None,          # required in sandbox mode: absolute URL or a path
    "API_URL": None,              # derived: production host or the sandbox
    "API_TRANSPORT": None,        # an httpx transport (an in-process sandbox)
    "CHECKOUT_SCRIPT_URL": None,  # derived
    "WIDGET_SCRIPT_URL": None,    # derived
    "WIDGET_ORIGINS": None,       # derived: the widget script's origin
    "DATABASE_URL": None,         # derived: SQLite in the instance folder
    "MODE": "form",               # "form" (our card form) or "widget"
    "URL_PREFIX": "/checkout",
    "LANGUAGE": None,             # None: from Accept-Language
    "DEFAULT_LANGUAGE": "ru",
    "TRANSLATION_DIRS": (),       # extra gettext catalogs (<dir>/<lang>/LC_MESSAGES/*.mo)
    "TERM_URL_MAX_AGE": 3600,     # seconds a signed TermUrl stays valid
    "THREEDS_IFRAME": False,      # show the bank page in a frame when the gateway allows
    "PENDING_REFRESH": 3,         # seconds between reloads of the pending page
    "PENDING_LOOKUP_INTERVAL": 10,  # at most one gateway lookup per payment this often
    "HTTP_TIMEOUT": 30.0,
    "HTTP_RETRIES": 3,            # extra attempts on connection failures, 429 and 5xx
    # Seconds after which the ledger takes a call without an answer for a dead worker's
    # (PaymentService's stale_after): above the longest call HTTP_TIMEOUT and
    # HTTP_RETRIES allow.
    "STALE_AFTER": 600,
    # Notifications (docs/notifications.md). The encoding configured at the gateway; a
    # POST's declared charset wins over it.
    "NOTIFICATION_ENCODING": "utf-8",
    "NOTIFICATION_IP_CHECK": False,   # the sender-IP allow-list; the HMAC is the authority
    "NOTIFICATION_NETWORKS": None,    # CIDR ranges; None: webhooks.GATEWAY_NETWORKS
    "NOTIFICATION_PROXY_HOPS": 0,     # proxies of our own in front of the app (X-Forwarded-For)
    # False is the explicit opt-out that takes X-Content-HMAC alone (over the decoded
    # text, which a re-encoded body still matches): docs/notifications.md.
    "NOTIFICATION_REQUIRE_CONTENT_HMAC": True,
    # Days the audit log keeps a notification's body as received; after that
    # `flask checkout notifications purge` keeps a masked copy (ledger.retention).
    "NOTIFICATION_RETENTION_DAYS": DEFAULT_RETENTION_DAYS,
}


@dataclass(frozen=True)
class Settings:
    """The checked settings of one app."""

    public_id: str
    api_secret: str = ""  # never printed: repr=False below
    sandbox: bool = False
    api_url: str = PRODUCTION_API_URL
    api_transport: httpx.BaseTransport | None = None
    checkout_script_url: str = PRODUCTION_CHECKOUT_SCRIPT
    widget_script_url: str = PRODUCTION_WIDGET_SCRIPT
    widget_origins: tuple[str, ...] = ("https://widget.cloudpayments.ru",)
    database_url: str = "sqlite://"
    mode: str = "form"
    url_prefix: str = "/checkout"
    language: str | None = None
    default_language: str = "ru"
    translation_dirs: tuple[Path, ...] = ()
    term_url_max_age: int = 3600
    threeds_iframe: bool = False
    pending_refresh: int = 3
    pending_lookup_interval: float = 10.0
    http_timeout: float = 30.0
    http_retries: int = 3
    stale_after: float = 600.0
    notification_encoding: str = "utf-8"
    notification_require_content_hmac: bool = True
    notification_retention_days: int = DEFAULT_RETENTION_DAYS
    sender_check: SenderCheck = field(default_factory=SenderCheck)

    def __repr__(self) -> str:
        return (f"Settings(public_id={self.public_id!r}, sandbox={self.sandbox}, "
                f"api_url={self.api_url!r}, mode={self.mode!r})")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an absolute URL; ``'self'`` for a path on this site
    (the form CSP source lists take)."""
    parts = urlsplit(url)
    if not parts.scheme:
        return "'self'"
    return f"{parts.scheme}://{parts.netloc}"


def _text(key: str, value: Any, *, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise ConfigurationError(PREFIX + key, "is required")
        return ""
    if not isinstance(value, str) or value != value.strip():
        raise ConfigurationError(PREFIX + key, "must be a string without surrounding spaces")
    return value


def _url(key: str, value: Any, *, allow_path: bool = False) -> str:
    text = _text(key, value).rstrip("/")
    parts = urlsplit(text)
    if parts.scheme in ("http", "https") and parts.netloc:
        return text
    if allow_path and not parts.scheme and not parts.netloc and text.startswith("/"):
        return text
    what = "an http(s) URL or a path starting with /" if allow_path else "an http(s) URL"
    raise ConfigurationError(PREFIX + key, f"must be {what}, got {value!r}")


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(PREFIX + key, f"must be True or False, got {value!r}")
    return value


def _positive(key: str, value: Any, kind: Callable[[Any], Any] = int) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigurationError(PREFIX + key, f"must be a positive number, got {value!r}")
    return kind(value)


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
        raise ConfigurationError(PREFIX + key, f"must be a whole number 0..10, got {value!r}")
    return value


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigurationError(PREFIX + key, f"must be one of {', '.join(choices)}; "
                                               f"got {value!r}")
    return str(value)


def _language(key: str, value: Any) -> str:
    text = _text(key, value)
    if not text.replace("_", "").replace("-", "").isalnum() or len(text) > 16:
        raise ConfigurationError(PREFIX + key, f"is not a language code: {value!r}")
    return text


def _encoding(key: str, value: Any) -> str:
    text = _text(key, value)
    try:
        codec_for(text)
    except ValueError:
        raise ConfigurationError(PREFIX + key, f"must be utf-8 or windows-1251, got {value!r}"
                                 ) from None
    return text


def _sender_check(raw: Mapping[str, Any]) -> SenderCheck:
    enabled = _bool("NOTIFICATION_IP_CHECK", raw["NOTIFICATION_IP_CHECK"])
    hops = _count("NOTIFICATION_PROXY_HOPS", raw["NOTIFICATION_PROXY_HOPS"])
    networks = raw["NOTIFICATION_NETWORKS"]
    if networks is not None and (isinstance(networks, str) or not all(
            isinstance(n, str) for n in networks)):
        raise ConfigurationError(PREFIX + "NOTIFICATION_NETWORKS", "must be a list of CIDR "
                                                                   "ranges")
    try:
        return SenderCheck.from_config(networks, enabled=enabled, proxy_hops=hops)
    except ValueError as exc:
        raise ConfigurationError(PREFIX + "NOTIFICATION_NETWORKS", str(exc)) from None


def _unknown_key(key: str) -> str:
    """Why ``key`` (with the prefix) is refused, with the key it resembles."""
    # Compared without the prefix, which every key shares.
    close = difflib.get_close_matches(key[len(PREFIX):], list(DEFAULTS), n=1, cutoff=0.75)
    hint = f"; did you mean {PREFIX}{close[0]}?" if close else " (a typo?)"
    return "is not a checkout_kit setting" + hint


def load_settings(config: Mapping[str, Any], instance_path: str) -> Settings:
    """Check the app's ``CHECKOUT_KIT_*`` keys and derive the rest (see module doc).

    Raises one :class:`ConfigurationError` listing every problem found."""
    problems = Problems()
    settings = _load(config, instance_path, problems)
    problems.raise_any()
    assert settings is not None
    return settings


def _load(config: Mapping[str, Any], instance_path: str, problems: Problems) -> Settings | None:
    check = problems.check
    for key in sorted(k for k in config if k.startswith(PREFIX)
                      and k[len(PREFIX):] not in DEFAULTS):
        problems.add(key, _unknown_key(key))
    raw = {key: config.get(PREFIX + key, default) for key, default in DEFAULTS.items()}

    sandbox = check(lambda: _bool("SANDBOX", raw["SANDBOX"]), None)
    transport = raw["API_TRANSPORT"]
    if transport is not None and not isinstance(transport, httpx.BaseTransport):
        problems.add(PREFIX + "API_TRANSPORT", "must be an httpx.BaseTransport")
    defaults: tuple[str, str, str] | None = None
    if sandbox:
        base = check(lambda: _url("SANDBOX_URL", raw["SANDBOX_URL"], allow_path=True), None)
        if base is not None:
            if base.startswith("/") and raw["API_URL"] is None and transport is None:
                # A mounted sandbox is reachable from the browser by its path, but the
                # server needs a way to call it too.
                problems.add(PREFIX + "API_TRANSPORT", "is required when CHECKOUT_KIT_"
                             "SANDBOX_URL is a path (use mount_sandbox)")
            default_api = "http://sandbox.invalid" + base if base.startswith("/") else base
            defaults = (default_api, f"{base}/checkout.js", f"{base}/bundles/cloudpayments.js")
    elif sandbox is False:
        if raw["SANDBOX_URL"] is not None:
            problems.add(PREFIX + "SANDBOX_URL", "is set but CHECKOUT_KIT_SANDBOX is False")
        defaults = (PRODUCTION_API_URL, PRODUCTION_CHECKOUT_SCRIPT, PRODUCTION_WIDGET_SCRIPT)
    if defaults is None:  # no sandbox setting to derive the URLs from: check what is set
        defaults = ("https://api.invalid", "/checkout.js", "/bundles/cloudpayments.js")
    api_url = check(lambda: _url("API_URL", raw["API_URL"] or defaults[0]), "")
    checkout_script = check(lambda: _url("CHECKOUT_SCRIPT_URL", raw["CHECKOUT_SCRIPT_URL"]
                                         or defaults[1], allow_path=True), "")
    widget_script = check(lambda: _url("WIDGET_SCRIPT_URL", raw["WIDGET_SCRIPT_URL"]
                                       or defaults[2], allow_path=True), "")
    origins = raw["WIDGET_ORIGINS"]
    if origins is None:
        origins = (origin_of(widget_script),) if widget_script else ()
    if isinstance(origins, str) or not all(isinstance(o, str) for o in origins):
        problems.add(PREFIX + "WIDGET_ORIGINS", "must be a list of origins")
        origins = ()

    database_url = raw["DATABASE_URL"]
    if database_url is None:
        database_url = "sqlite:///" + str(Path(instance_path) / "checkout_kit.sqlite3")
    database_url = check(lambda: _text("DATABASE_URL", database_url), "")

    prefix = check(lambda: _text("URL_PREFIX", raw["URL_PREFIX"], required=False), "")
    if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
        problems.add(PREFIX + "URL_PREFIX",
                     f"must start with / and not end with one, got {prefix!r}")
    language = raw["LANGUAGE"]
    dirs = raw["TRANSLATION_DIRS"]
    if isinstance(dirs, str | Path) or not all(isinstance(d, str | Path) for d in dirs):
        problems.add(PREFIX + "TRANSLATION_DIRS", "must be a list of directories")
        dirs = ()
    timeout = check(lambda: _positive("HTTP_TIMEOUT", raw["HTTP_TIMEOUT"], float), None)
    retries = check(lambda: _count("HTTP_RETRIES", raw["HTTP_RETRIES"]), None)
    stale_after = check(lambda: _positive("STALE_AFTER", raw["STALE_AFTER"], float), None)
    if timeout is not None and retries is not None and stale_after is not None:
        check(lambda: _check_stale_after(timeout, retries, stale_after), None)
    values: dict[str, Any] = {
        "notification_encoding": check(lambda: _encoding(
            "NOTIFICATION_ENCODING", raw["NOTIFICATION_ENCODING"]), ""),
        "notification_require_content_hmac": check(lambda: _bool(
            "NOTIFICATION_REQUIRE_CONTENT_HMAC", raw["NOTIFICATION_REQUIRE_CONTENT_HMAC"]),
            True),
        "notification_retention_days": check(lambda: _positive(
            "NOTIFICATION_RETENTION_DAYS", raw["NOTIFICATION_RETENTION_DAYS"]), 1),
        "sender_check": check(lambda: _sender_check(raw), None),
        "public_id": check(lambda: _text("PUBLIC_ID", raw["PUBLIC_ID"]), ""),
        "api_secret": check(lambda: _text("API_SECRET", raw["API_SECRET"]), ""),
        "mode": check(lambda: _choice("MODE", raw["MODE"], _MODES), "form"),
        "language": None if language is None else check(
            lambda: _language("LANGUAGE", language), None),
        "default_language": check(lambda: _language(
            "DEFAULT_LANGUAGE", raw["DEFAULT_LANGUAGE"]), ""),
        "term_url_max_age": check(lambda: _positive(
            "TERM_URL_MAX_AGE", raw["TERM_URL_MAX_AGE"]), 1),
        "threeds_iframe": check(lambda: _bool("THREEDS_IFRAME", raw["THREEDS_IFRAME"]), False),
        "pending_refresh": check(lambda: _positive(
            "PENDING_REFRESH", raw["PENDING_REFRESH"]), 1),
        "pending_lookup_interval": check(lambda: _positive(
            "PENDING_LOOKUP_INTERVAL", raw["PENDING_LOOKUP_INTERVAL"], float), 1.0),
    }
    if problems.found:
        return None
    # Only a problem leaves these None.
    assert timeout is not None and retries is not None and stale_after is not None
    return Settings(
        **values,
        sandbox=bool(sandbox),
        api_url=api_url,
        api_transport=transport,
        checkout_script_url=checkout_script,
        widget_script_url=widget_script,
        widget_origins=tuple(origins),
        database_url=database_url,
        url_prefix=prefix,
        translation_dirs=tuple(Path(d) for d in dirs),
        http_timeout=timeout,
        http_retries=retries,
        stale_after=stale_after,
    )


def _check_stale_after(timeout: float, retries: int, stale_after: float) -> None:
    """Refuse settings under which a call still waiting for the gateway could be taken
    for a dead worker's (issue 14 §1.2), before anything is opened. The key named is
    the one that breaks settings otherwise at their defaults: the timeout, the retries,
    or STALE_AFTER itself."""

    def fits(t: float, r: int, s: float) -> bool:
        return s > worst_case_seconds(t, max_retries=r)

    if fits(timeout, retries, stale_after):
        return
    default_t, default_r = float(DEFAULTS["HTTP_TIMEOUT"]), int(DEFAULTS["HTTP_RETRIES"])
    default_s = float(DEFAULTS["STALE_AFTER"])
    if timeout != default_t and fits(default_t, retries, stale_after):
        key = "HTTP_TIMEOUT"
    elif retries != default_r and fits(timeout, default_r, stale_after):
        key = "HTTP_RETRIES"
    elif stale_after != default_s:
        key = "STALE_AFTER"
    else:
        key = "HTTP_TIMEOUT"
    worst = worst_case_seconds(timeout, max_retries=retries)
    raise ConfigurationError(
        PREFIX + key,
        f"with HTTP_TIMEOUT={timeout:g} and HTTP_RETRIES={retries} one gateway call may "
        f"take {worst:g} s (every attempt, and up to 60 s before each retry), not less "
        f"than {PREFIX}STALE_AFTER ({stale_after:g} s): a call still waiting for the "
        "gateway would be taken for a dead worker's. Lower the timeout or the retries, "
        f"or raise {PREFIX}STALE_AFTER")
