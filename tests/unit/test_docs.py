"""The README and docs/ say only what is there: a short README, links that resolve (files and
headings), and every `aiclicks-pipeline` command and option, `make` target and sync setting they
name exists in the parser, the Makefile and the code. Pure: it reads files and builds the CLI's
argparse parser, nothing runs."""

import ast
import dataclasses
import functools
import re
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

from aiclicks_pipeline.cli import _subparsers, build_parser
from aiclicks_pipeline.settings import ENDPOINTS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 150

# Shown on purpose as what the CLI refuses (docs/command-line.md): they must stay unknown.
WRONG_ON_PURPOSE_COMMANDS = {"rn"}
WRONG_ON_PURPOSE_OPTIONS = {"--initial-day"}
# Options of other tools the pages quote, by tool: pytest, pip, dlt, dbt.
OTHER_TOOLS_OPTIONS = {
    "--numprocesses", "--maxprocesses", "--dist", "--durations", "--strict-markers",  # pytest
    "--upgrade",  # pip
    "--state-paths",  # dlt pipeline drop
    "--project-dir", "--profiles-dir",  # dbt
}
BENCH_MAIN = ROOT / "bench" / "__main__.py"

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
COMMAND = re.compile(r"aiclicks-pipeline\s+([a-z][a-z0-9_-]*)")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
MAKE_TARGET = re.compile(r"(?<![\w-])make\s+([a-z][a-z0-9_-]*)")
SETTING_ROW = re.compile(r"^\|\s*`([a-z][a-z0-9_]*)`\s*\|", re.M)


def code_lines(text: str) -> Iterator[Tuple[str, bool]]:
    """Each piece of code in a page: (a fenced block's line, True) and (an inline code span,
    False). A block's indented line continues the command of the line before it."""
    in_block = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_block = not in_block
            continue
        if in_block:
            yield line, True
        else:
            for span in CODE_SPAN.finditer(line):
                yield span.group(1), False


def commands_and_options(text: str) -> Iterator[Tuple[str, str, List[str]]]:
    """(code, command or "", options) for every piece of code naming `aiclicks-pipeline` options:
    the command is the one the code names, or in a block the one its unindented line named."""
    current = ""
    for code, in_block in code_lines(text):
        named = COMMAND.search(code)
        if named:
            current = named.group(1)
        elif in_block and not code.startswith((" ", "\t")):
            current = ""
        elif not in_block:
            # a span like `run --transform` or `status --worst 4`: its first word is the command
            first = code.split()[0] if code.split() else ""
            current = first if first in subcommands() else ""
        yield code, current, OPTION.findall(code.split("#", 1)[0] if in_block else code)


@functools.lru_cache(maxsize=None)
def subcommands() -> Dict[str, Set[str]]:
    parser = build_parser()
    top = {o for action in parser._actions for o in action.option_strings}
    return {
        name: top | {o for action in sub._actions for o in action.option_strings}
        for name, sub in _subparsers(parser).items()
    }


@functools.lru_cache(maxsize=None)
def bench_options() -> Set[str]:
    return set(re.findall(r"add_argument\(\s*\"(--[a-z0-9-]+)\"", BENCH_MAIN.read_text()))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip())
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(page: Path) -> Set[str]:
    found: Set[str] = set()
    seen: Dict[str, int] = {}
    in_block = False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            in_block = not in_block
        elif not in_block and re.match(r"#{1,6} ", line):
            base = slug(line.lstrip("#"))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def prose(text: str) -> str:
    """The page without its fenced blocks (a link inside code is not a link)."""
    kept, in_block = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_block = not in_block
        elif not in_block:
            kept.append(CODE_SPAN.sub("", line))
    return "\n".join(kept)


def broken_links(page: Path) -> List[str]:
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return broken


def test_the_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_the_readme_lists_every_table_of_the_endpoint_table():
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", README.read_text(), re.M))
    assert set(ENDPOINTS) <= listed, f"missing from the README's tables: {set(ENDPOINTS) - listed}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert not broken_links(page)


def test_a_broken_link_or_heading_is_found(tmp_path):
    (tmp_path / "there.md").write_text("# A page\n\n## Its `first` section: one\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#its-first-section-one) [ok](#here)\n## Here\n"
        "[gone](missing.md) [gone](there.md#no-such-heading) `[code](missing.md)`\n"
        "```\n[in a block](missing-too.md)\n```\n"
    )
    assert broken_links(page) == [
        f"missing.md: no file {tmp_path / 'missing.md'}",
        "there.md#no-such-heading: no heading #no-such-heading in there.md",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_and_option_exists(page):
    commands = subcommands()
    every_option = set().union(*commands.values())
    unknown = []
    for code, command, options in commands_and_options(page.read_text()):
        for named in COMMAND.findall(code):
            if named not in commands and named not in WRONG_ON_PURPOSE_COMMANDS:
                unknown.append(f"command {named!r} in {code!r}")
        if "python -m bench" in code:
            known = bench_options()
        elif command in commands:
            known = commands[command] | OTHER_TOOLS_OPTIONS
        else:
            known = every_option | OTHER_TOOLS_OPTIONS
        unknown += [
            f"{option} in {code!r}"
            for option in options
            if option not in known and option not in WRONG_ON_PURPOSE_OPTIONS
        ]
    assert not unknown


def test_what_is_shown_as_wrong_stays_wrong():
    commands = subcommands()
    assert not WRONG_ON_PURPOSE_COMMANDS & set(commands)
    assert not WRONG_ON_PURPOSE_OPTIONS & set().union(*commands.values())


def test_an_option_of_the_wrong_command_is_found():
    text = "`aiclicks-pipeline status --worst 4` `run --worst 4`\n```\naiclicks-pipeline plan \\\n    --no-such\n```\n"
    found = [(command, options) for _, command, options in commands_and_options(text) if options]
    assert found == [("status", ["--worst"]), ("run", ["--worst"]), ("plan", ["--no-such"])]
    assert "--worst" not in subcommands()["run"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_make_target_exists(page):
    targets = set(re.findall(r"^([a-z][a-z0-9_-]*):", (ROOT / "Makefile").read_text(), re.M))
    named = {t for code, _ in code_lines(page.read_text()) for t in MAKE_TARGET.findall(code)}
    assert named <= targets, f"not in the Makefile: {named - targets}"


@functools.lru_cache(maxsize=None)
def names_in_the_code() -> Set[str]:
    """Every parameter name (those of `aiclicks_source` are its settings) and every string the
    package's modules hold, and each dotted part of one (`sources.aiclicks.checkpoint_requests`);
    and dlt's own pipeline settings (`destination_type`, `staging_type`)."""
    from dlt.pipeline.configuration import PipelineConfiguration

    names = {field.name for field in dataclasses.fields(PipelineConfiguration)}
    for module in (ROOT / "aiclicks_pipeline").rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.update(node.value.split("."))
    return names


def test_every_setting_of_the_configuration_page_exists_in_the_code():
    settings = SETTING_ROW.findall((ROOT / "docs" / "configuration.md").read_text())
    assert {"api_key", "initial_days", "checkpoint_requests", "destination_type"} <= set(settings)
    missing = [name for name in settings if name not in names_in_the_code()]
    assert not missing, f"docs/configuration.md names settings the code does not read: {missing}"
