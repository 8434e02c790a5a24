"""Citations of docs/ hold: every `docs/<page>.md §N` named in code, tests, sandbox READMEs,
the README and the docs themselves is a page that exists with a heading numbered N, and
nothing points at the sources the docs were written from, outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
THIS_FILE = Path(__file__).resolve()
CODE_FOLDERS = ("services", "shared", "cli", "sandboxes", "bench", "tests")
SKIPPED_PARTS = frozenset({".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"})

_NUMBER = r"\d+(?:\.\d+)*"
# `docs/page.md`, then any sections: `§5`, `§5.2, §6.2`, `§7.1-§7.4`, `§12 point 4`.
CITATION = re.compile(
    rf"docs/(?P<page>[\w-]+\.md)(?P<sections>(?:,?[ ]*(?:and[ ]+)?§{_NUMBER}(?:-§?{_NUMBER})?)*)"
)
SECTION = re.compile(rf"§({_NUMBER})")
HEADING = re.compile(rf"^#{{2,6}}[ ]+({_NUMBER})\.?[ ]", re.MULTILINE)
# The names of the sources docs/ summarises, in any case; comments cite docs/ instead, whose
# pages are named apart from them so that no citation can be read as one of the sources.
SOURCE_NAMES = re.compile(
    r"(?<![\w-])(?:broker|design|style|visma-api|basware-api)\.md", re.IGNORECASE
)
OUTSIDE = ("../shared", "/work/shared")


def citations_in(text: str) -> list[tuple[str, list[str], int, int]]:
    """(page, sections, start, end) of every docs/ citation in `text`."""
    return [
        (m["page"], SECTION.findall(m["sections"]), m.start(), m.end())
        for m in CITATION.finditer(text)
    ]


def headings(page: Path) -> set[str]:
    return set(HEADING.findall(page.read_text(encoding="utf-8")))


def scanned_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    for folder in CODE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if SKIPPED_PARTS.intersection(path.parts) or path.resolve() == THIS_FILE:
                continue
            if path.suffix in (".py", ".md") and path.is_file():
                files.append(path)
    return files


def problems_in(path: Path, known: dict[str, set[str]], *, root: Path = ROOT) -> list[str]:
    """What is wrong with the citations of one file (empty when they all hold). In a docs/
    page, a bare `§N` means a section of that page."""
    found: list[str] = []
    own_page = path.name if path.parent == root / "docs" else None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{path.relative_to(root)}:{number}"
        covered: list[tuple[int, int]] = []
        for page, sections, start, end in citations_in(line):
            covered.append((start, end))
            if page not in known:
                found.append(f"{where}: docs/{page} does not exist")
                continue
            found.extend(
                f"{where}: docs/{page} has no section §{s}"
                for s in sections
                if s not in known[page]
            )
        for bare in SECTION.finditer(line):
            if any(start <= bare.start() < end for start, end in covered):
                continue
            if own_page is None:
                found.append(f"{where}: §{bare[1]} names no docs/ page on its line")
            elif bare[1] not in known[own_page]:
                found.append(f"{where}: docs/{own_page} has no section §{bare[1]}")
        found.extend(
            f"{where}: cites {name!r}, a source outside the repository; cite docs/ instead"
            for name in SOURCE_NAMES.findall(line)
        )
        found.extend(
            f"{where}: points outside the repository ({outside})"
            for outside in OUTSIDE
            if outside in line
        )
    return found


@pytest.fixture(scope="module")
def known_sections() -> dict[str, set[str]]:
    return {page.name: headings(page) for page in DOCS.glob("*.md")}


def test_a_citation_is_read_with_all_its_sections() -> None:
    text = (
        "see (docs/visma-net.md §5.2, §6.2), docs/event-broker.md §3.1-§3.4"
        " and docs/architecture.md."
    )
    assert [(page, sections) for page, sections, _, _ in citations_in(text)] == [
        ("visma-net.md", ["5.2", "6.2"]),
        ("event-broker.md", ["3.1", "3.4"]),
        ("architecture.md", []),
    ]


def test_headings_are_numbered_sections(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## 4. Polling\n\ntext\n\n### 4.2 Pitfalls\n## Unnumbered\n")
    assert headings(page) == {"4", "4.2"}


def test_a_broken_citation_is_reported(tmp_path: Path, known_sections: dict[str, set[str]]) -> None:
    source = tmp_path / "module.py"
    source.write_text(
        "# fine (docs/event-broker.md §3.1)\n"
        "# no such section (docs/event-broker.md §99)\n"
        "# no such page (docs/nowhere.md)\n"
        "# bare §3\n"
        "# old name (BROKER.md), ../shared/visma-api.md, docs/basware-api.md\n"
    )
    reported = problems_in(source, known_sections, root=tmp_path)
    assert reported == [
        "module.py:2: docs/event-broker.md has no section §99",
        "module.py:3: docs/nowhere.md does not exist",
        "module.py:4: §3 names no docs/ page on its line",
        "module.py:5: docs/basware-api.md does not exist",
        "module.py:5: cites 'BROKER.md', a source outside the repository; cite docs/ instead",
        "module.py:5: cites 'visma-api.md', a source outside the repository; cite docs/ instead",
        "module.py:5: cites 'basware-api.md', a source outside the repository; cite docs/ instead",
        "module.py:5: points outside the repository (../shared)",
    ]


def test_every_citation_names_a_page_and_section_that_exist(
    known_sections: dict[str, set[str]],
) -> None:
    files = scanned_files()
    cited = [c for path in files for c in citations_in(path.read_text(encoding="utf-8"))]
    # The pattern must find the citations the code is known to make, or this test proves nothing.
    assert {page for page, _, _, _ in cited} >= {
        "visma-net.md",
        "basware-p2p.md",
        "event-broker.md",
        "architecture.md",
    }
    problems = [problem for path in files for problem in problems_in(path, known_sections)]
    assert problems == []


def test_the_expected_pages_exist(known_sections: dict[str, set[str]]) -> None:
    assert set(known_sections) >= {
        "visma-net.md",
        "basware-p2p.md",
        "event-broker.md",
        "architecture.md",
        "operator-guide.md",
    }
    assert all(known_sections.values()), "every page has numbered sections"
