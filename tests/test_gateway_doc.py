"""docs/gateway.md is where the code's facts come from: every citation must resolve."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = ROOT / "docs" / "gateway.md"
CITING = ("checkout_kit", "static", "templates", "docs", "tests", "examples", "benchmarks")
#: ``docs/gateway.md §3.4``, also ``docs/gateway.md §3.4, §3.5`` and ``§1.7/§1.8``.
CITATION = re.compile(r"docs/gateway\.md\s+((?:§\d+(?:\.\d+)?(?:\s*(?:,|/|and|-|–)\s*)?)+)")


def _sections() -> set[str]:
    text = GATEWAY.read_text(encoding="utf-8")
    return set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, re.M))


def _files() -> list[Path]:
    found = [ROOT / "README.md"]
    for folder in CITING:
        found += [p for p in (ROOT / folder).rglob("*") if p.is_file()
                  and p.suffix in {".py", ".md", ".js", ".html", ".json", ".css", ".txt"}]
    return found


def test_sections_are_numbered_one_to_eleven() -> None:
    sections = _sections()
    assert {str(n) for n in range(1, 12)} <= sections
    assert {"1.1", "1.10", "2.7", "3.7", "5.4", "6.2", "7.4"} <= sections


def test_every_citation_names_an_existing_section() -> None:
    sections = _sections()
    cited: dict[str, set[str]] = {}
    for path in _files():
        for match in CITATION.finditer(path.read_text(encoding="utf-8", errors="replace")):
            for number in re.findall(r"§(\d+(?:\.\d+)?)", match.group(1)):
                cited.setdefault(number, set()).add(str(path.relative_to(ROOT)))
    assert len(cited) > 10
    missing = {number: files for number, files in cited.items() if number not in sections}
    assert not missing


def test_no_citation_of_the_internal_reference_remains() -> None:
    stale = [str(p.relative_to(ROOT)) for p in _files()
             if re.search(r"\breference §|cloudpayments\.md", p.read_text("utf-8", "replace"),
                          re.I)]
    assert not stale


def test_every_unconfirmed_point_states_the_choice() -> None:
    text = GATEWAY.read_text(encoding="utf-8")
    points = text.split("**UNCONFIRMED:**")[1:]
    assert len(points) >= 20
    for point in points:
        body = point.split("\n\n")[0]
        assert "**checkout_kit:**" in body, body[:80]
