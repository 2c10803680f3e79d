"""The README, `make help` and docs/ stay in step: the README is the newcomer's guide (short, the
two commands first, every target in its table, every page linked), and each page opens with its
commands."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def make_help_targets() -> list[str]:
    out = subprocess.run(
        ["make", "-s", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split()[0] for line in out.splitlines()[1:] if line.startswith("  ")]


def readme_table_targets() -> set[str]:
    text = README.read_text()
    table = text[text.index("## Targets") : text.index("## Variables")]
    return set(re.findall(r"^\| `([^`]+)` \|", table, flags=re.M))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+ (.+)$", page.read_text(), flags=re.M)}


def test_readme_is_a_short_guide_with_the_two_commands_first():
    lines = README.read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; detail belongs in docs/"
    first_screen = "\n".join(lines[:25])
    block = re.search(r"```bash\n(.*?)```", first_screen, flags=re.S)
    assert block, "the first screen has no command block"
    commands = [ln.split("#")[0].strip() for ln in block.group(1).splitlines() if ln.strip()]
    assert commands == ["make demo", "make test"]


def test_every_make_help_target_has_a_readme_row_and_no_row_is_stale():
    targets = make_help_targets()
    assert "frames" in targets and "preflight" in targets  # the parse found the real list
    rows = readme_table_targets()
    assert sorted(set(targets) - rows) == [], "targets missing from the README's table"
    assert sorted(rows - set(targets)) == [], "README rows for targets make help does not list"


def test_every_docs_page_is_linked_from_the_readme_and_opens_with_commands():
    pages = sorted(DOCS.glob("*.md"))
    assert len(pages) >= 10
    readme_links = set(LINK.findall(README.read_text()))
    for page in pages:
        assert f"docs/{page.name}" in readme_links, f"{page.name} is not linked from the README"
        body = [ln for ln in page.read_text().splitlines() if ln.strip()]
        assert body[0].startswith("# "), f"{page.name} does not start with its title"
        assert body[1].startswith("```"), f"{page.name} does not open with its commands"


def test_every_local_link_and_anchor_resolves():
    for page in [README, *sorted(DOCS.glob("*.md"))]:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            assert resolved.exists(), f"{page.name}: link to missing {target}"
            if anchor:
                assert anchor in anchors(resolved), f"{page.name}: no heading for {target}"
