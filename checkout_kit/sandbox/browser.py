"""The sandbox's browser side: checkout script, widget script and widget frame.

(Being written; the sandbox app registers :data:`bp` unconditionally.)
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("cp_browser", __name__)
