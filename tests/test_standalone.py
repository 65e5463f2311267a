"""The repo stands alone: nothing points outside it, and every citation of docs/api-notes.md
names a section that exists there."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTES = ROOT / "docs" / "api-notes.md"
# a title ends at the punctuation that closes a citation
CITED_TITLE = re.compile(r"\b((?:Reading|Endpoint): [^;:,)|\"`]+?)\s*(?=[;:,)|\"`]|\.(?:\s|$)|$)")
CITED_SECTION = re.compile(r"docs/api-notes\.md, (?!Reading:|Endpoint:)([A-Z][^;:,)|\"`.]*?)\s*(?=[;:,)|\"`.]|$)")


def tracked_files():
    try:
        listed = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def flowing_text(path: Path) -> str:
    """The file's text with comment markers and line breaks gone, so a citation wrapped over
    two comment lines reads as one."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if path.suffix == ".md":  # headings are titles, not citations
        lines = [line for line in lines if not line.startswith("#")]
    return " ".join(re.sub(r"^\s*(#|--|//)?\s*", "", line) for line in lines)


# The folder beside the repo that the API docs were compiled in, and their file: a user's
# clone has neither. Spelled in parts so that a search of the repo finds no pointer here either.
OUTSIDE_POINTERS = tuple("".join(parts) for parts in (("../", "shared"), ("SP", "EC.md"), ("SP", "EC ")))


def test_nothing_points_outside_the_repo():
    offenders = []
    for path in tracked_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern in OUTSIDE_POINTERS:
            if pattern in text:
                offenders.append(f"{path.relative_to(ROOT)}: {pattern!r}")
    assert not offenders, offenders


def test_every_cited_section_of_the_api_notes_exists():
    titles = {m.group(1).strip() for m in re.finditer(r"^#{2,3} (.+)$", NOTES.read_text(), re.M)}
    cited = {}
    for path in tracked_files():
        if path.suffix not in {".py", ".md", ".sql", ".yml", ".toml", ".json", ""}:
            continue
        text = flowing_text(path)
        found = {m.group(1) for m in CITED_TITLE.finditer(text)}
        if "api-notes.md" in text:
            found |= {m.group(1) for m in CITED_SECTION.finditer(text)}
        for title in found:
            cited.setdefault(title.strip(), set()).add(str(path.relative_to(ROOT)))
    assert len(cited) > 20, "the citation pattern found too little to check"
    missing = {title: sorted(where) for title, where in cited.items() if title not in titles}
    assert not missing, missing
