"""The pages' languages: gettext catalogs, chosen by config or by ``Accept-Language``.

The package ships ``translations/<lang>/LC_MESSAGES/checkout_kit.po`` and the compiled
``.mo`` for Russian and English (msgids are English). Runtime reads them with the
standard library's :mod:`gettext`; Babel extracts and compiles them (``docs/shop.md``
has the commands) and formats the pages' amounts
(:func:`checkout_kit.money.display_amount`). A shop adds a language, or rewords ours, by
putting its own ``checkout_kit.mo`` catalogs in ``CHECKOUT_KIT_TRANSLATION_DIRS``:
their entries win, ours fill the gaps.
"""

from __future__ import annotations

import gettext
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

__all__ = [
    "CHECKOUT_CODES",
    "DOMAIN",
    "N_",
    "TRANSLATIONS_DIR",
    "Catalogs",
]

DOMAIN = "checkout_kit"
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated later, where it is shown."""
    return message


#: The text for each checkout.js error code (docs/gateway.md §2.7), by field.
CHECKOUT_CODES: Mapping[str, str] = {
    "CardNumber_Empty": N_("Enter the card number"),
    "CardNumber_Invalid": N_("The card number has a mistake"),
    "ExpDateMonth_Empty": N_("Enter the month"),
    "ExpDateMonth_Invalid": N_("The month is not valid"),
    "ExpDateYear_Empty": N_("Enter the year"),
    "ExpDateYear_Invalid": N_("The year is not valid"),
    "ExpDateMonthYear_Empty": N_("Enter the expiry date"),
    "ExpDateMonthYear_Invalid": N_("The expiry date is not valid"),
    "Cvv_Empty": N_("Enter the security code"),
    "Cvv_Invalid": N_("The security code is not valid"),
    "Name_Empty": N_("Enter the cardholder's name"),
    "Name_Invalid": N_("The name has characters a card cannot carry"),
    "Name_TooLong": N_("The name is too long"),
    "Name_TooShort": N_("The name is too short"),
}


@lru_cache(maxsize=64)
def _languages_in(directory: Path) -> frozenset[str]:
    if not directory.is_dir():
        return frozenset()
    return frozenset(p.parent.parent.name for p in directory.glob(f"*/LC_MESSAGES/{DOMAIN}.mo"))


class Catalogs:
    """The catalogs of one app: ours plus the shop's directories (theirs first)."""

    def __init__(self, extra_dirs: Iterable[Path] = (), default: str = "ru") -> None:
        self.dirs: tuple[Path, ...] = (*extra_dirs, TRANSLATIONS_DIR)
        self.languages: tuple[str, ...] = tuple(sorted(
            set().union(*(_languages_in(d) for d in self.dirs))))
        if default not in self.languages:
            raise ValueError(f"no catalog for the default language {default!r}")
        self.default = default
        self._cache: dict[str, gettext.NullTranslations] = {}

    def choose(self, configured: str | None, accept: object) -> str:
        """``configured`` when set, else the best of ``Accept-Language`` (a werkzeug
        ``LanguageAccept``), else the default."""
        if configured is not None:
            return configured if configured in self.languages else self.default
        best = getattr(accept, "best_match", None)
        chosen = best(self.languages) if best is not None else None
        return str(chosen) if chosen else self.default

    def get(self, language: str) -> gettext.NullTranslations:
        """The translations for ``language`` (the shop's catalogs fall back to ours)."""
        found = self._cache.get(language)
        if found is None:
            found = gettext.NullTranslations()
            chain: gettext.NullTranslations | None = None
            for directory in self.dirs:
                path = directory / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
                if not path.is_file():
                    continue
                with path.open("rb") as fh:
                    catalog = gettext.GNUTranslations(fh)
                if chain is None:
                    chain = found = catalog
                else:
                    chain.add_fallback(catalog)
                    chain = catalog
            self._cache[language] = found
        return found
