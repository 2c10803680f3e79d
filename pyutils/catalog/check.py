"""`make check`: is each dataset on disk complete? One table row per dataset.

    python -m pyutils.catalog.check --data DATA [--annots ANNOTS] [DATASET ...]

A video dataset is checked to the end of its `make <dataset>-ready` chain: a video per annotated
id, frames per video ($(DATA)/<dataset>/frames, from its manifest), AdaCLIP splits in ANNOTS.

With datasets named (DATASETS="a b"), a test: exit status 1 when one of them is not complete
(missing, partial or corrupt). Without, a report of all of them: exit status 0 whatever it
finds, and it says so.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import orjson
from rich.table import Table

from pyutils.catalog.datasets import (
    COMPLETE_STAMP,
    DATASETS,
    PLACED_STAMP,
    Dataset,
    find_dataset,
    inspect,
)
from pyutils.catalog.layout import COMPLETE, MISSING, Inspection, Where
from pyutils.core.cli import Parser
from pyutils.core.errors import EXIT_ITEM_FAILURES, run_cli
from pyutils.core.report import log, stdout_console

DEFAULT_ANNOTS = Path("annots")


def fix_command(dataset: Dataset, data: Path, inspection: Inspection, annots: Path) -> str:
    if inspection.status == COMPLETE:
        return ""
    make = f"make {dataset.ready or dataset.name} DATA={shlex.quote(str(data))}"
    if annots != DEFAULT_ANNOTS and dataset.chain:
        make += f" ANNOTS={shlex.quote(str(annots))}"
    if inspection.status == MISSING:
        return make
    root = data / dataset.folder
    if dataset.chain:
        # The chain's steps redo only what is missing once their stamps are gone.
        steps = dataset.chain.steps
        stamps = [root / COMPLETE_STAMP]
        stamps += [dataset.step_folder(s, data, annots) / s.stamp(dataset.name) for s in steps]
        stamps = [stamp for stamp in stamps if stamp.exists()] or stamps[:1]
        return f"rm -f {' '.join(shlex.quote(str(s)) for s in stamps)} && {make}"
    # Removing the stamps re-places every part from the verified archives in downloads/.
    quoted = shlex.quote(str(root))
    return f"rm -f {quoted}/{PLACED_STAMP}* {quoted}/{COMPLETE_STAMP} && {make}"


def human_size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _what_is_missing(dataset: Dataset, found: Inspection) -> str:
    if found.status == MISSING:  # a list of every absent file says nothing more than this
        return f"nothing on disk yet: {dataset.summary}"
    return "; ".join(found.problems)


def check(names: list[str], data: Path, annots: Path = DEFAULT_ANNOTS) -> list[dict[str, Any]]:
    """One row per dataset: name, status, files, size (bytes), what is missing, the fix."""
    rows = []
    for dataset in [find_dataset(n) for n in names] or DATASETS.values():
        found = inspect(dataset, data, Where(annots=annots))
        rows.append(
            {
                "dataset": dataset.name,
                "status": found.status,
                "files": found.files,
                "size": found.size,
                "missing": _what_is_missing(dataset, found),
                "fix": fix_command(dataset, data, found, annots),
            }
        )
    return rows


def incomplete(rows: list[dict[str, Any]]) -> int:
    """How many datasets are not complete, missing ones included."""
    return sum(row["status"] != COMPLETE for row in rows)


def table(rows: list[dict[str, Any]], data: Path) -> Table:
    table = Table(title=f"datasets in {data}")
    for column in ("dataset", "status", "files", "size", "what is missing", "fix"):
        table.add_column(column, overflow="fold")
    for row in rows:
        files, size = f"{row['files']:,}", human_size(row["size"])
        table.add_row(row["dataset"], row["status"], files, size, row["missing"], row["fix"])
    return table


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m pyutils.catalog.check",
        description=__doc__,
        make_names={"datasets": "DATASETS", "data": "DATA", "annots": "ANNOTS"},
    )
    parser.add_argument("datasets", nargs="*", help=f"default: all of {', '.join(DATASETS)}")
    parser.add_argument("--data", default="datasets", help="dataset root ($(DATA))")
    parser.add_argument(
        "--annots", type=Path, default=DEFAULT_ANNOTS, help="AdaCLIP splits folder ($(ANNOTS))"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the rows as one JSON object for scripts (make check JSON=1)",
    )
    args = parser.parse_args(argv)
    rows = check(args.datasets, Path(args.data), args.annots)
    if args.json:
        summary = {"data": str(args.data), "incomplete": incomplete(rows), "datasets": rows}
        sys.stdout.buffer.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        stdout_console().print(table(rows, Path(args.data)))
    if args.datasets:
        return EXIT_ITEM_FAILURES if incomplete(rows) else 0
    log(
        f"check: {incomplete(rows)} of {len(rows)} datasets not complete; a report, exit status 0"
        " (name datasets in DATASETS= to fail when one is not complete)"
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
