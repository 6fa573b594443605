"""Where the shipped static files and templates are.

In a wheel they sit inside the package (``checkout_kit/static``); in a source
checkout or an editable install they are the top-level ``static/`` and ``templates/``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """The directory ``name`` (``"static"`` or ``"templates"``), wherever it was installed."""
    inside = _PACKAGE / name
    if inside.is_dir():
        return inside
    return _PACKAGE.parent / name
