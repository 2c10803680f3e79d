"""`make annots-verify`: are the generated splits the paper's, and if not, how do they differ?

The paper's checksums are the table in the repository's `annots/README.md` (the one source of
truth, read here). With `--reference DIR` (a copy of AdaCLIP's `annots/` folder) a differing file
is compared video by video.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from pyutils import REPOSITORY
from pyutils.core.cli import Parser
from pyutils.core.errors import EXIT_ITEM_FAILURES, UserError, run_cli
from pyutils.core.jsonio import read_json, read_text

# The paper's checksums live in the repository, whatever folder the splits were generated into.
PAPER_CHECKSUMS = REPOSITORY / "annots" / "README.md"

# A checksum row of annots/README.md: | `didemo/test.json` | 246,267 | <sha256> |
_ROW = re.compile(r"^\|\s*`?([\w./-]+\.json)`?\s*\|\s*([\d,]+)\s*\|\s*([0-9a-f]{64})\s*\|", re.M)


@dataclass(frozen=True)
class PaperFile:
    path: str  # relative to the annots folder, e.g. "didemo/test.json"
    size: int
    sha256: str


def paper_checksums(readme: Path) -> list[PaperFile]:
    text = read_text(readme, hint="it holds the paper's checksums")
    rows = [PaperFile(p, int(size.replace(",", "")), sha) for p, size, sha in _ROW.findall(text)]
    if not rows:
        raise UserError(f"{readme}: no checksum table rows (| file | bytes | sha256 |) found")
    return rows


def describe_difference(generated: Path, reference: Path, examples: int = 3) -> str:
    """Videos added, missing and changed in `generated` relative to `reference`."""
    ours, theirs = read_json(generated), read_json(reference)
    added = [v for v in ours if v not in theirs]
    missing = [v for v in theirs if v not in ours]
    changed = [v for v in ours if v in theirs and ours[v] != theirs[v]]
    if not (added or missing or changed):
        return "same videos and values; key order or number formatting differs"
    parts = []
    for label, videos in (("added", added), ("missing", missing), ("changed", changed)):
        if videos:
            shown = ", ".join(videos[:examples]) + (", ..." if len(videos) > examples else "")
            parts.append(f"{len(videos)} {label} ({shown})")
    return "videos " + ", ".join(parts)


def verify(
    annots: Path, reference: Path | None, checksums: Path = PAPER_CHECKSUMS
) -> tuple[list[str], int]:
    """One line per paper file, and the exit status (1 if a generated file differs)."""
    lines, generated, differing = [], 0, 0
    for paper in paper_checksums(checksums):
        path = annots / paper.path
        if not path.is_file():
            lines.append(f"{paper.path}: not generated")
            continue
        generated += 1
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() == paper.sha256:
            lines.append(f"{paper.path}: identical to the paper's split")
            continue
        differing += 1
        sizes = f"{len(data):,} bytes, paper {paper.size:,}"
        line = f"{paper.path}: DIFFERS from the paper's split ({sizes})"
        copy = reference / paper.path if reference else None
        if copy is not None and copy.is_file():
            line += f": {describe_difference(path, copy)}"
            if hashlib.sha256(copy.read_bytes()).hexdigest() != paper.sha256:
                line += f" [note: {copy} is not the paper's file either]"
        elif copy is not None:
            line += f" (no reference copy at {copy})"
        lines.append(line)
    if not generated:
        raise UserError(f"{annots}: no generated split to verify; run `make annots DATASET=...`")
    return lines, EXIT_ITEM_FAILURES if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m pyutils.adaclip.verify", description=__doc__, same_names=True)
    parser.add_argument("--annots", type=Path, default=Path("annots"), help="generated splits")
    parser.add_argument(
        "--reference", type=Path, help="a copy of AdaCLIP's annots/ to compare differing files with"
    )
    args = parser.parse_args(argv)
    lines, status = verify(args.annots, args.reference)
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    run_cli(main)
